package chat_test

import (
	"context"
	"runtime"
	"stompbox/internal/auth/authtest"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"stompbox/internal/store/storetest"
	"testing"
)

// BenchmarkPost measures durable chat sends (synchronous=FULL) through
// chatService.Post, the path of every STOMP SEND: validate, store, wait
// for the commit, publish. "group" shares one transaction and fsync among
// the senders queued at the time; "tx-per-message" commits each alone.
// Senders post in a closed loop, so a commit can hold at most the senders
// not already waiting in the previous one: throughput grows with senders
// until the writer's CPU, not fsync, is the limit.
//
//	go test -run '^$' -bench BenchmarkPost -benchtime 20000x .
func BenchmarkPost(b *testing.B) {
	for _, bc := range []struct {
		name     string
		maxBatch int
		senders  int
	}{
		{"group/senders=64", 0, 64},
		{"tx-per-message/senders=64", 1, 64},
		{"group/senders=256", 0, 256},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := store.OpenDir(context.Background(), b.TempDir(), store.Options{MaxBatch: bc.maxBatch})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			a := authtest.New(b, s, false)
			c, err := chat.New(s, chat.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			u := authtest.Register(b, a, "bench")
			in := chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: "a typical chat line of some forty characters"}
			ctx := context.Background()

			b.ReportAllocs()
			b.SetParallelism(max(1, bc.senders/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Post(ctx, u, in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			storetest.ReportCommits(b, s)
		})
	}
}
