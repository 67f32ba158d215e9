package main

import (
	"fmt"
	"net"
	"slices"
	"stompbox/internal/ratelimit"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTenThousandConnectCyclesLeaveNothingBehind is the 1,000-cycle test
// of broker_test.go ten times over, with the rate limiter on and a third of
// the clients dropping the socket without DISCONNECT: sessions, goroutines,
// open files and the limiter's per-connection state all return to their
// baseline.
func TestTenThousandConnectCyclesLeaveNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 connections")
	}
	srv := startServer(t, func(c *Config) {
		c.RateLimits = ratelimit.Limits{SendRate: 1000, ConnsPerIP: 100}
	})
	connectCycles(t, srv, 10000)
	conns, ips := srv.limiter.Tracked()
	if conns != 0 || ips != 0 {
		t.Errorf("rate limiter kept %d connection buckets and %d addresses", conns, ips)
	}
}

// TestSlowConsumerLeavesOthersOnTime extends TestSlowConsumerIsCutOff: while
// a client that reads nothing is filled up and cut off, two subscribers
// that read (TCP and WebSocket) keep getting every message. It logs their
// delivery latency (publish to arrival); as a figure, not an assertion.
func TestSlowConsumerLeavesOthersOnTime(t *testing.T) {
	srv := startServer(t)
	slow, err := net.Dial("tcp", srv.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:1\ndestination:/topic/flood\nreceipt:s\n\n\x00")
	tcpSub := dialTCP(t, srv.TCPAddr())
	wsSub, _ := dialWS(t, srv, "v12.stomp")
	pub := dialTCP(t, srv.TCPAddr())
	for _, c := range []*stompClient{tcpSub, wsSub, pub} {
		c.connect()
	}
	tcpSub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/flood")
	wsSub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/flood")
	checkFor(t, "four sessions", func() bool { return srv.broker.SessionCount() == 4 })

	const n, batch = 1000, 50
	pad := strings.Repeat("x", 16<<10)
	type reader struct {
		name      string
		c         *stompClient
		got       atomic.Int64
		latencies []time.Duration // written by the reader goroutine, read after wg.Wait
	}
	readers := []*reader{{name: "tcp", c: tcpSub}, {name: "ws", c: wsSub}}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() { // ends after n messages or at the first bad frame
			defer wg.Done()
			for range n {
				select {
				case f, ok := <-r.c.frames:
					if !ok || f.Command != stomp.CmdMessage {
						return
					}
					sent, err := strconv.ParseInt(string(f.Body[:19]), 10, 64)
					if err != nil {
						return
					}
					r.latencies = append(r.latencies, time.Since(time.Unix(0, sent)))
					r.got.Add(1)
				case <-time.After(testTimeout):
					return
				}
			}
		}()
	}
	var cutAt int64 = -1
	for i := 0; i < n; i += batch {
		for range batch {
			pub.send(stomp.CmdSend, fmt.Sprintf("%019d", time.Now().UnixNano())+pad, "destination:/topic/flood")
		}
		want := int64(i + batch)
		checkFor(t, "the readers to keep up", func() bool {
			return readers[0].got.Load() >= want && readers[1].got.Load() >= want
		})
		if cutAt < 0 && srv.broker.SessionCount() == 3 {
			cutAt = want
		}
	}
	wg.Wait()
	checkFor(t, "the slow consumer to be cut off", func() bool { return srv.broker.SessionCount() == 3 })
	for _, r := range readers {
		if len(r.latencies) != n {
			t.Fatalf("%s got %d of %d messages", r.name, len(r.latencies), n)
		}
		if testing.Verbose() {
			worst := slices.Index(r.latencies, slices.Max(r.latencies))
			t.Logf("%s: slowest delivery was message %d", r.name, worst)
		}
		slices.Sort(r.latencies)
		t.Logf("%s subscriber latency over %d messages of 16 KiB: p50 %v, p99 %v, max %v",
			r.name, n, r.latencies[n/2].Round(time.Microsecond), r.latencies[n*99/100].Round(time.Microsecond), r.latencies[n-1].Round(time.Microsecond))
	}
	if cutAt > 0 {
		t.Logf("slow consumer cut off by the time %d messages were published", cutAt)
	} else {
		t.Logf("slow consumer cut off after all %d messages were published (the 2 s grace ran out)", n)
	}
}
