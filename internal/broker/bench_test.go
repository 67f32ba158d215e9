package broker

import (
	"bytes"
	"context"
	"stompbox/internal/stomp"
	"stompbox/internal/stomp/stomptest"
	"stompbox/internal/testutil"
	"stompbox/internal/transport"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEncodeMessage encodes one MESSAGE frame with appendFrame into a
// reused buffer: the path for frames that are not fanned out.
func BenchmarkEncodeMessage(b *testing.B) {
	f := stomptest.Frame(stomp.CmdMessage, strings.Repeat("x", 256),
		stomp.HdrSubscription, "sub-0", stomp.HdrMessageID, "k3-42", stomp.HdrDestination, "/topic/room-1",
		stomp.HdrContentType, "text/plain;charset=utf-8", "x-sender", "홍길동")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = stomp.AppendFrame(buf[:0], f, stomp.V12)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodeFanout is the broker's fan-out encoding of one message to
// 1,000 subscribers: message.encoded once, then a per-subscriber head from
// session.encode, each into a reused buffer as the writer does.
func BenchmarkEncodeFanout(b *testing.B) {
	const subscribers = 1000
	s := &Session{idStr: "k3"}
	subs := make([]*Subscription, subscribers)
	for i := range subs {
		subs[i] = &Subscription{sess: s, id: "sub-" + strconv.Itoa(i)}
	}
	headers := []stomp.Header{{Key: stomp.HdrContentType, Value: "text/plain;charset=utf-8"}, {Key: "x-sender", Value: "홍길동"}}
	body := bytes.Repeat([]byte("x"), 256)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		m := &message{dest: "/topic/room-1", headers: headers, body: body}
		for i, sub := range subs {
			buf = s.encode(buf[:0], &outItem{sub: sub, msg: m, seq: uint64(i)}, stomp.V12)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/delivery")
}

// discardTransport is an in-memory transport for benchmarks. Its first Read
// returns a scripted chunk (the client's CONNECT and SUBSCRIBE); later Reads
// block until Close or the context ends. Write discards, counting bytes,
// frames and MESSAGE frames, the last also into a counter shared by all.
type discardTransport struct {
	script    []byte
	scripted  bool          // touched only by the session's reader
	delivered *atomic.Int64 // shared by every transport of a benchmark
	closed    chan struct{}
	closeOnce sync.Once
	closeCode atomic.Int32
	bytes     atomic.Int64
	frames    atomic.Int64
}

func newDiscardTransport(script []byte, delivered *atomic.Int64) *discardTransport {
	return &discardTransport{script: script, delivered: delivered, closed: make(chan struct{})}
}

func (t *discardTransport) Read(ctx context.Context) ([]byte, error) {
	if !t.scripted {
		t.scripted = true
		return t.script, nil
	}
	select {
	case <-t.closed:
		return nil, transport.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// WriteBy makes discardTransport a transport.DeadlineWriter, as the WebSocket
// transport is, so the session writes without a context per write.
func (t *discardTransport) WriteBy(_ time.Time, frames [][]byte) error {
	return t.Write(context.Background(), frames)
}

func (t *discardTransport) Write(ctx context.Context, frames [][]byte) error {
	select {
	case <-t.closed:
		return transport.ErrClosed
	default:
	}
	// An element may hold several frames back to back (transport.Write);
	// each ends with a NUL, and the benchmark's bodies hold none.
	var n, count, messages int64
	for _, f := range frames {
		n += int64(len(f))
		count += int64(bytes.Count(f, []byte{0}))
		messages += int64(bytes.Count(f, []byte("MESSAGE\n")))
	}
	t.bytes.Add(n)
	t.frames.Add(count)
	t.delivered.Add(messages)
	return nil
}

func (t *discardTransport) Close(code int, reason string) error {
	t.closeOnce.Do(func() {
		t.closeCode.Store(int32(code))
		close(t.closed)
	})
	return nil
}

func (t *discardTransport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

// BenchmarkBrokerFanout publishes 256-byte messages with Broker.Publish to
// one topic with 1,000 subscribed sessions over discardTransports, and
// reports deliveries per second. Each op is one Publish; the timer runs
// until every delivery has reached its transport.
//
// window bounds messages in flight: the publisher waits when the writers
// are this far behind. At 256 (under the outbox's 1,024 frames, so that no
// session is cut off as a slow consumer) each writer finds many frames
// queued and writes them together: the full-speed case. At 1 every publish
// waits for all its deliveries, so every delivery is its own write, as when
// messages come spaced out: the per-delivery cost of the path (queueing, a
// writer goroutine, encoding) with nothing to share it.
func BenchmarkBrokerFanout(b *testing.B) {
	for _, window := range []int64{256, 1} {
		b.Run("window="+strconv.FormatInt(window, 10), func(b *testing.B) {
			benchmarkBrokerFanout(b, window)
		})
	}
}

func benchmarkBrokerFanout(b *testing.B, window int64) {
	const (
		subscribers = 1000
		topic       = "/topic/bench"
	)
	br := New(Config{}, testutil.Logger(b))
	script := []byte("CONNECT\naccept-version:1.2\nhost:bench\nheart-beat:0,0\n\n\x00" +
		"SUBSCRIBE\nid:0\ndestination:" + topic + "\nreceipt:subscribed\n\n\x00")
	var delivered atomic.Int64
	ts := make([]*discardTransport, subscribers)
	var wg sync.WaitGroup
	for i := range ts {
		ts[i] = newDiscardTransport(script, &delivered)
		wg.Go(func() {
			br.Serve(context.Background(), ts[i], transport.Info{Transport: "bench", Remote: "127.0.0.1:" + strconv.Itoa(10000+i)})
		})
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Timeout)
		defer cancel()
		if err := br.Close(ctx); err != nil {
			b.Error(err)
		}
		wg.Wait()
	}()
	testutil.CheckFor(b, "every session to be subscribed", func() bool {
		for _, t := range ts {
			if t.frames.Load() < 2 { // CONNECTED, RECEIPT
				return false
			}
		}
		return true
	})
	// waitFor spins until n deliveries arrived, failing if a session died.
	waitFor := func(n int64) {
		deadline := time.Now().Add(testutil.Timeout)
		for delivered.Load() < n {
			if time.Now().After(deadline) {
				for _, t := range ts {
					if t.isClosed() {
						b.Fatalf("a session closed with code %d", t.closeCode.Load())
					}
				}
				b.Fatalf("timed out: %d of %d deliveries", delivered.Load(), n)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	headers := []stomp.Header{{Key: stomp.HdrContentType, Value: "text/plain;charset=utf-8"}}
	body := bytes.Repeat([]byte("x"), 256)
	var sent int64
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Publish(topic, headers, body, 0); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent >= window {
			waitFor((sent - window + 1) * subscribers)
		}
	}
	b.StartTimer() // b.Loop stopped it; the deliveries still in flight count too
	waitFor(sent * subscribers)
	b.StopTimer()
	for _, t := range ts {
		if t.isClosed() {
			b.Fatalf("a session closed with code %d during the benchmark", t.closeCode.Load())
		}
	}
	b.ReportMetric(float64(sent*subscribers)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkTopicSubscribe files 10,000 subscriptions under one topic, as
// 10,000 idle browsers in one room do, then removes them. Subscribing
// appends into spare capacity, so its bytes per op grow linearly; removing
// copies the list each time.
func BenchmarkTopicSubscribe(b *testing.B) {
	const n = 10000
	br := New(Config{}, testutil.Logger(b))
	subs := make([]*Subscription, n)
	for i := range subs {
		subs[i] = &Subscription{}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range subs {
			br.addTopicSub("/topic/room", s)
		}
		for _, s := range subs {
			br.removeTopicSub("/topic/room", s)
		}
	}
}
