package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"stompbox/internal/chat"
	"stompbox/internal/cluster"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strconv"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkClusterCatchUp measures how long a new node takes to build its
// database from the log: the log holds one account and n chat posts
// (STOMPBOX_CATCHUP_MESSAGES, default 100,000), and each iteration starts
// a node on an empty data folder and waits until it has applied them all.
// Reported: seconds per million messages. The stream is a single
// in-process JetStream (R1): the cost measured is reading and applying.
//
//	go test -run '^$' -bench BenchmarkClusterCatchUp -benchtime 3x .
func BenchmarkClusterCatchUp(b *testing.B) {
	n := 100_000
	if v := os.Getenv("STOMPBOX_CATCHUP_MESSAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: b.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats not ready")
	}
	b.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	cc := &cluster.Conn{Nc: nc, Node: "writer", Replicas: 1}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	l, err := cluster.OpenLog(ctx, cc, nil, log)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now().UnixMilli()
	entries := [][]byte{}
	add := func(op store.Op) {
		data, err := store.EncodeOp(op, at, "writer", "")
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, data)
	}
	add(&store.UserCreateOp{NewUser: store.NewUser{Username: "kim", DisplayName: "kim", PasswordHash: "x"}})
	for i := range n {
		add(&chat.PostOp{Type: proto.MsgTalk, RoomID: 1, UserID: 1, Sender: "kim", Message: fmt.Sprintf("message %d: the quick brown fox jumps over the lazy dog", i)})
	}
	for i := 0; i < len(entries); i += 1000 {
		var acks []jetstream.PubAckFuture
		for _, data := range entries[i:min(i+1000, len(entries))] {
			f, err := l.Js.PublishAsync(cluster.LogSubject, data)
			if err != nil {
				b.Fatal(err)
			}
			acks = append(acks, f)
		}
		for _, f := range acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		st, err := store.OpenDir(ctx, dir, store.Options{Log: log})
		if err != nil {
			b.Fatal(err)
		}
		chat, err := chat.New(st, chat.Config{Log: log})
		if err != nil {
			b.Fatal(err)
		}
		node, err := cluster.OpenLog(ctx, &cluster.Conn{Nc: nc, Node: "new", Replicas: 1}, st, log)
		if err != nil {
			b.Fatal(err)
		}
		st.SetReplicator(node)
		b.StartTimer()
		if err := node.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var count int
		if err := st.Rdb.QueryRow(`SELECT count(*) FROM messages`).Scan(&count); err != nil || count != n {
			b.Fatalf("messages applied: %d, %v; want %d", count, err, n)
		}
		node.Close()
		chat.Close()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e6/float64(n), "s/million")
}
