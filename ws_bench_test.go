package main

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"stompbox/internal/stomp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkWSDelivery publishes one 256-byte message at a time to 100
// WebSocket subscribers of the real server and waits until every one has it
// before the next: each delivery is then a write of its own, as when
// messages arrive spaced out (bench fanout -rate 50), which is the per-
// delivery cost that batching hides at full speed. Allocations include the
// in-process clients' reads.
func BenchmarkWSDelivery(b *testing.B) {
	const (
		subscribers = 100
		topic       = "/topic/bench"
	)
	srv := startServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var delivered atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	for range subscribers {
		c, _, err := websocket.Dial(ctx, "ws://"+srv.HTTPAddr()+"/ws", &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		hello := "CONNECT\naccept-version:1.2\nhost:bench\nheart-beat:0,0\n\n\x00" +
			"SUBSCRIBE\nid:0\ndestination:" + topic + "\nreceipt:sub\n\n\x00"
		if err := c.Write(ctx, websocket.MessageText, []byte(hello)); err != nil {
			b.Fatal(err)
		}
		var got []byte
		for !bytes.Contains(got, []byte("RECEIPT\n")) {
			_, m, err := c.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got = append(got, m...)
		}
		wg.Go(func() {
			for {
				_, m, err := c.Read(ctx)
				if err != nil {
					return
				}
				delivered.Add(int64(bytes.Count(m, []byte("MESSAGE\n"))))
			}
		})
	}
	headers := []stomp.Header{{Key: stomp.HdrContentType, Value: "text/plain;charset=utf-8"}}
	body := bytes.Repeat([]byte("x"), 256)
	var sent int64
	b.ReportAllocs()
	for b.Loop() {
		if err := srv.broker.Publish(topic, headers, body, 0); err != nil {
			b.Fatal(err)
		}
		sent++
		deadline := time.Now().Add(testTimeout)
		for delivered.Load() < sent*subscribers {
			if time.Now().After(deadline) {
				b.Fatalf("timed out: %d of %d deliveries", delivered.Load(), sent*subscribers)
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sent*subscribers), "ns/delivery")
	cancel()
}

// BenchmarkIdleConnection opens WebSocket connections to the real server
// that CONNECT and SUBSCRIBE and then stay silent, as most of a chat's
// connections do, and reports what the server keeps for each: live heap
// (heap-B/conn) and goroutine stacks (stack-B/conn), measured after a
// collection. Each op is idleConns connections, opened, measured and
// closed. The clients are bare sockets that read nothing once subscribed,
// so their share of the heap is the socket alone (about 250 bytes); the
// figures are the runtime's, not the process's RSS, which `stompbox bench
// idle` measures.
func BenchmarkIdleConnection(b *testing.B) {
	const idleConns = 1000
	srv := startServer(b, func(c *Config) { c.RateLimits.ConnsPerIP = 0 })
	addr := srv.HTTPAddr()
	hello := []byte("CONNECT\naccept-version:1.2\nhost:bench\nheart-beat:0,0\n\n\x00" +
		"SUBSCRIBE\nid:0\ndestination:/topic/idle\nreceipt:sub\n\n\x00")
	var heap, stack float64
	for b.Loop() {
		conns := make([]net.Conn, 0, idleConns)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		for range idleConns {
			c, err := dialRawSTOMP(addr, hello)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / idleConns
		stack += float64(int64(after.StackInuse)-int64(before.StackInuse)) / idleConns
		for _, c := range conns {
			c.Close()
		}
		checkFor(b, "the idle sessions to end", func() bool { return srv.broker.SessionCount() == 0 })
	}
	b.ReportMetric(heap/float64(b.N), "heap-B/conn")
	b.ReportMetric(stack/float64(b.N), "stack-B/conn")
}
