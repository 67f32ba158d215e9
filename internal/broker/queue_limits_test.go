package broker

import (
	"context"
	"errors"
	"net"
	"slices"
	"stompbox/internal/stomp"
	"stompbox/internal/testutil"
	"stompbox/internal/transport"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const qtTimeout = 10 * time.Second

// startTestBroker serves a broker for cfg on a loopback TCP port.
func startTestBroker(t *testing.T, cfg Config) (*Broker, string) {
	t.Helper()
	b := New(cfg, testutil.Logger(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := transport.ServeTCP(ln, func(c transport.Conn, info transport.Info) { b.Serve(context.Background(), c, info) }, testutil.Logger(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), qtTimeout)
		defer cancel()
		ln.Close()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close broker: %v", err)
		}
		ts.Close()
	})
	return b, ln.Addr().String()
}

// qtClient is a bare STOMP 1.2 client over TCP.
type qtClient struct {
	t      *testing.T
	conn   net.Conn
	frames chan *stomp.Frame
}

func dialQT(t *testing.T, addr string, connectHeaders ...string) *qtClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &qtClient{t: t, conn: conn, frames: make(chan *stomp.Frame, 10000)}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(c.frames)
		p := stomp.NewParser(stomp.Limits{MaxFrame: 1 << 20, MaxHeaders: 100, MaxHeaderLine: 1 << 16})
		p.Commands = stomp.ServerCommands
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				p.Feed(buf[:n])
				for {
					f, err := p.Next()
					if err != nil || f == nil {
						break
					}
					c.frames <- f
				}
			}
			if err != nil {
				return
			}
		}
	}()
	c.send(stomp.CmdConnect, nil, append([]string{"accept-version:1.2", "host:x", "heart-beat:0,0"}, connectHeaders...)...)
	c.expect(stomp.CmdConnected)
	return c
}

func (c *qtClient) send(cmd string, body []byte, headers ...string) {
	f := &stomp.Frame{Command: cmd, Body: body}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		f.Add(k, v)
	}
	c.conn.Write(stomp.AppendFrame(nil, f, stomp.V12)) // a write error shows as the connection closed
}

// next returns the next frame, nil once the connection closed.
func (c *qtClient) next(within time.Duration) (*stomp.Frame, bool) {
	select {
	case f, ok := <-c.frames:
		return f, ok
	case <-time.After(within):
		return nil, true
	}
}

// expect returns the next frame, failing unless its command is one of
// cmds, separated by |.
func (c *qtClient) expect(cmds string) *stomp.Frame {
	c.t.Helper()
	f, open := c.next(qtTimeout)
	if !open || f == nil {
		c.t.Fatalf("no %s frame (connection open: %v)", cmds, open)
	}
	if !slices.Contains(strings.Split(cmds, "|"), f.Command) {
		c.t.Fatalf("got %s %v %q, want %s", f.Command, f.Headers, f.Body, cmds)
	}
	return f
}

// TestQueueFloodBounded is issue 22's flood with small caps: anonymous
// SENDs of 60 KB bodies to fresh queue names. What the queues hold stays
// under -queue-mib, every SEND is either receipted (and then delivered to
// a later consumer) or refused with an ERROR naming the limit and
// carrying the SEND's receipt-id.
func TestQueueFloodBounded(t *testing.T) {
	const (
		total    = 1 << 20
		perQueue = 150 << 10
		sends    = 300
	)
	b, addr := startTestBroker(t, Config{QueueBytes: total, QueueBytesPerQueue: perQueue, MaxQueues: 100, MemoryMark: -1})
	body := []byte(strings.Repeat("x", 60<<10))
	receipted := map[string]int{} // destination → receipted SENDs
	refusals := map[string]int{}  // the option an ERROR named → count
	var peak int64
	c := dialQT(t, addr)
	for i := range sends {
		dest := "/queue/junk-" + strconv.Itoa(i)
		if i%10 == 9 {
			dest = "/queue/junk-0" // some to one queue, past its own cap
		}
		id := "r" + strconv.Itoa(i)
		c.send(stomp.CmdSend, body, "destination:"+dest, "receipt:"+id)
		f := c.expect(stomp.CmdReceipt + "|" + stomp.CmdError)
		if got := f.Value(stomp.HdrReceiptID); got != id {
			t.Fatalf("%s receipt-id %q, want %q", f.Command, got, id)
		}
		if f.Command == stomp.CmdReceipt {
			receipted[dest]++
		} else {
			msg := f.Value(stomp.HdrMessage)
			_, opt, ok := strings.Cut(msg, "(-")
			if !ok || !strings.HasPrefix(msg, "queue is full") {
				t.Fatalf("ERROR %q names no limit", msg)
			}
			refusals[strings.TrimSuffix(opt, ")")]++
			c = dialQT(t, addr) // an ERROR ends the connection (STOMP 1.2)
		}
		peak = max(peak, b.QueueStats().HeldBytes)
	}
	st := b.QueueStats()
	t.Logf("receipted to %d queues, refusals %v, peak held %d bytes, now %+v", len(receipted), refusals, peak, st)
	if peak > total {
		t.Fatalf("queues held %d bytes, over the cap of %d", peak, total)
	}
	if refusals["queue-mib"] == 0 || refusals["queue-mib-per-queue"] == 0 {
		t.Fatalf("refusals %v: want both -queue-mib and -queue-mib-per-queue", refusals)
	}
	// Everything receipted is delivered to a consumer that comes later.
	cons := dialQT(t, addr)
	want := 0
	for dest, n := range receipted {
		cons.send(stomp.CmdSubscribe, nil, "id:"+dest, "destination:"+dest)
		want += n
	}
	got := map[string]int{}
	for range want {
		f := cons.expect(stomp.CmdMessage)
		got[f.Value(stomp.HdrDestination)]++
	}
	for dest, n := range receipted {
		if got[dest] != n {
			t.Fatalf("%s: %d delivered, %d receipted", dest, got[dest], n)
		}
	}
	testutil.CheckFor(t, "held bytes back to 0", func() bool { return b.QueueStats().HeldBytes == 0 })
}

// TestQueueExpiry: a held message is dropped at its expiry (the sender's
// expires header, capped by -queue-ttl), and never delivered after it.
func TestQueueExpiry(t *testing.T) {
	clock := testutil.NewClock()
	b, addr := startTestBroker(t, Config{QueueTTL: time.Hour, Now: clock.Now, MemoryMark: -1})
	c := dialQT(t, addr)
	soon := clock.Now().Add(10 * time.Second).UnixMilli()
	late := clock.Now().Add(3 * time.Hour).UnixMilli() // past -queue-ttl: capped to an hour
	c.send(stomp.CmdSend, []byte("soon"), "destination:/queue/a", "expires:"+strconv.FormatInt(soon, 10), "receipt:1")
	c.expect(stomp.CmdReceipt)
	c.send(stomp.CmdSend, []byte("late"), "destination:/queue/a", "expires:"+strconv.FormatInt(late, 10), "receipt:2")
	c.expect(stomp.CmdReceipt)
	c.send(stomp.CmdSend, []byte("plain"), "destination:/queue/b", "receipt:3")
	c.expect(stomp.CmdReceipt)
	if st := b.QueueStats(); st.HeldMessages != 3 {
		t.Fatalf("held %d, want 3", st.HeldMessages)
	}
	clock.Advance(11 * time.Second)
	b.sweepQueues()
	if st := b.QueueStats(); st.HeldMessages != 2 || st.Expired != 1 {
		t.Fatalf("after 11 s: %+v, want 2 held, 1 expired", st)
	}
	// A consumer now gets what has not expired, with its expiry.
	cons := dialQT(t, addr)
	cons.send(stomp.CmdSubscribe, nil, "id:a", "destination:/queue/a")
	m := cons.expect(stomp.CmdMessage)
	if string(m.Body) != "late" {
		t.Fatalf("got %q, want the message that has not expired", m.Body)
	}
	if exp := m.Value("expires"); exp != strconv.FormatInt(clock.Now().Add(-11*time.Second+time.Hour).UnixMilli(), 10) {
		t.Fatalf("expires %q: want the send time plus -queue-ttl", exp)
	}
	clock.Advance(time.Hour)
	b.sweepQueues()
	if st := b.QueueStats(); st.HeldMessages != 0 || st.HeldBytes != 0 || st.Expired != 2 {
		t.Fatalf("after an hour: %+v, want nothing held, 2 expired", st)
	}
	cons.send(stomp.CmdSubscribe, nil, "id:b", "destination:/queue/b", "receipt:s")
	if f := cons.expect(stomp.CmdReceipt); f == nil {
		t.Fatal("no receipt")
	}
	if f, _ := cons.next(200 * time.Millisecond); f != nil {
		t.Fatalf("got %s %q after its expiry", f.Command, f.Body)
	}
}

// TestMaxQueues: a SEND that would make one queue more than -max-queues
// is refused with an ERROR naming the limit; a queue with nothing held
// and no consumer is forgotten after idleQueueGrace, which makes room.
func TestMaxQueues(t *testing.T) {
	clock := testutil.NewClock()
	b, addr := startTestBroker(t, Config{MaxQueues: 2, Now: clock.Now, MemoryMark: -1})
	c := dialQT(t, addr)
	for i := range 2 {
		c.send(stomp.CmdSend, []byte("x"), "destination:/queue/q"+strconv.Itoa(i), "receipt:r")
		c.expect(stomp.CmdReceipt)
	}
	c.send(stomp.CmdSend, []byte("x"), "destination:/queue/q2", "receipt:over")
	f := c.expect(stomp.CmdError)
	if msg := f.Value(stomp.HdrMessage); !strings.Contains(msg, "too many queues: at most 2 (-max-queues)") || f.Value(stomp.HdrReceiptID) != "over" {
		t.Fatalf("ERROR %v", f.Headers)
	}
	// q0 is consumed and left: empty and idle, it goes after the grace.
	cons := dialQT(t, addr)
	cons.send(stomp.CmdSubscribe, nil, "id:1", "destination:/queue/q0")
	cons.expect(stomp.CmdMessage)
	cons.send(stomp.CmdUnsubscribe, nil, "id:1", "receipt:u")
	cons.expect(stomp.CmdReceipt)
	clock.Advance(idleQueueGrace)
	b.sweepQueues()
	if n := b.QueueStats().Queues; n != 1 {
		t.Fatalf("%d queues, want 1 (q1 holds a message)", n)
	}
	c = dialQT(t, addr)
	c.send(stomp.CmdSend, []byte("x"), "destination:/queue/q2", "receipt:r")
	c.expect(stomp.CmdReceipt)
}

// TestAnonymousQueues: with DenyAnonymousQueues (the server's default,
// -anonymous-queues=false), a session without a user may neither SEND to
// nor SUBSCRIBE to a queue; a named one may.
func TestAnonymousQueues(t *testing.T) {
	_, addr := startTestBroker(t, Config{DenyAnonymousQueues: true, MemoryMark: -1})
	for _, cmd := range []string{stomp.CmdSend, stomp.CmdSubscribe} {
		c := dialQT(t, addr)
		c.send(cmd, []byte("x"), "destination:/queue/a", "id:1", "receipt:r")
		f := c.expect(stomp.CmdError)
		if !strings.Contains(f.Value(stomp.HdrMessage), "anonymous") || f.Value(stomp.HdrReceiptID) != "r" {
			t.Fatalf("%s: ERROR %v", cmd, f.Headers)
		}
	}
	c := dialQT(t, addr, "login:alice")
	c.send(stomp.CmdSend, []byte("x"), "destination:/queue/a", "receipt:r")
	c.expect(stomp.CmdReceipt)
	c.send(stomp.CmdSubscribe, nil, "destination:/queue/a", "id:1")
	c.expect(stomp.CmdMessage)
}

// TestMemoryMarkHoldsPublishers: above the memory mark a publisher's SEND
// is not handled (no RECEIPT; its reader is held) while consumers go on
// receiving; once the heap is back below it, the SEND goes through.
func TestMemoryMarkHoldsPublishers(t *testing.T) {
	var heap atomic.Uint64
	b, addr := startTestBroker(t, Config{MemoryMark: 100 << 20, HeapBytes: heap.Load})
	cons := dialQT(t, addr)
	cons.send(stomp.CmdSubscribe, nil, "id:1", "destination:/topic/t", "receipt:s")
	cons.expect(stomp.CmdReceipt)
	pub := dialQT(t, addr)
	heap.Store(200 << 20)
	time.Sleep(2 * heapSampleEvery) // the next SEND samples the new figure
	pub.send(stomp.CmdSend, []byte("held"), "destination:/queue/work", "receipt:held")
	testutil.CheckFor(t, "the publisher held", func() bool { return b.QueueStats().PublishersHeld == 1 })
	if err := b.Publish("/topic/t", nil, []byte("still flowing"), 0); err != nil {
		t.Fatal(err)
	}
	if m := cons.expect(stomp.CmdMessage); string(m.Body) != "still flowing" {
		t.Fatalf("consumer got %q", m.Body)
	}
	if f, _ := pub.next(300 * time.Millisecond); f != nil {
		t.Fatalf("held publisher got %s %v", f.Command, f.Headers)
	}
	heap.Store(50 << 20)
	if f := pub.expect(stomp.CmdReceipt); f.Value(stomp.HdrReceiptID) != "held" {
		t.Fatalf("receipt %v", f.Headers)
	}
	if st := b.QueueStats(); st.PublishersHeld != 0 || st.MemoryHolds != 1 {
		t.Fatalf("%+v: want none held now, one hold in all", st)
	}
}

// TestRemoteQueueFull: a refusal from another node keeps its words and
// is still ErrQueueFull.
func TestRemoteQueueFull(t *testing.T) {
	for _, text := range []string{"queue is full", "queue is full: too many queues: at most 2 (-max-queues)", "something else"} {
		err := RemoteQueueFull(text)
		msg, _ := stomp.ClientMessage(err)
		if !errors.Is(err, ErrQueueFull) || !strings.Contains(msg, strings.TrimPrefix(text, "queue is full")) {
			t.Errorf("%q: %v (%q)", text, err, msg)
		}
	}
}
