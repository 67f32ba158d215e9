package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"stompbox/internal/auth"
	"stompbox/internal/ratelimit"
	"stompbox/internal/stomp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Flow control (issue 15): a connection over its SEND rate is slowed to the
// rate, never cut off. These tests use a real clock, so a flood takes as
// long as the rate says (about 48 s for 1,000 frames at the default 20 a
// second after a burst of 40); they run in parallel with each other, so the
// package waits for them about once.

// floodFrames is how many SENDs each flood test makes, as issue 15 asks.
const floodFrames = 1000

// defaultLimits sets the rate limits stompbox runs with when no option is
// given, read from its option table.
func defaultLimits(c *Config) {
	d, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		panic(err) // the option table's own defaults do not parse
	}
	c.RateLimits = d.RateLimits
}

// minFloodTime is the least time n SENDs can take at the default
// per-connection rate: the burst passes at once, the rest at the rate. A
// flood that finished sooner was not held back.
func minFloodTime(n int) time.Duration {
	return time.Duration(float64(n-ratelimit.DefaultSendRate*ratelimit.RateBurstFactor) / ratelimit.DefaultSendRate * float64(time.Second))
}

// sendFrame is a SEND to dest with a receipt, encoded as a 1.2 client does.
func sendFrame(dest, body, receipt string) []byte {
	return fmt.Appendf(nil, "SEND\ndestination:%s\nreceipt:%s\ncontent-length:%d\n\n%s\x00", dest, receipt, len(body), body)
}

// flood writes n SENDs with receipts r0…r(n-1) to dest as fast as the
// connection takes them, from its own goroutine: once the server holds the
// connection back, these writes block, as they would in any client. It
// returns a channel that yields the first write error, or nil when all are
// written.
func flood(c *stompClient, dest string, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.write(sendFrame(dest, fmt.Sprint(i), fmt.Sprint("r", i))); err != nil {
				done <- fmt.Errorf("write SEND %d: %w", i, err)
				return
			}
		}
		done <- nil
	}()
	return done
}

// expectFloodReceipts reads n RECEIPTs r0… in order; any other frame (an
// ERROR above all) fails the test. Only the test's goroutine may call it.
func expectFloodReceipts(t *testing.T, c *stompClient, n int) {
	t.Helper()
	for i := range n {
		f := c.expect(stomp.CmdReceipt)
		if got, want := f.Value(stomp.HdrReceiptID), fmt.Sprint("r", i); got != want {
			t.Fatalf("receipt %d: %q, want %q", i, got, want)
		}
	}
}

// TestFlowControlThousandSends: one connection sends 1,000 SENDs with
// receipts as fast as it can under the default limits, over /ws, TCP, and
// SockJS xhr-streaming and xhr-polling (the real sockjs-client and
// @stomp/stompjs in Node, where holding back means leaving xhr_send
// unanswered). Every SEND is receipted in order, the subscriber gets all
// 1,000 in order, no ERROR comes and the connection stays open; it took at
// least as long as the rate allows. The four floods run at once (about 48 s
// together): they wait on the rate, not on the cores.
func TestFlowControlThousandSends(t *testing.T) {
	t.Parallel()
	node := nodeRequirements(t)
	srv := startServer(t, defaultLimits)
	type result struct {
		transport string
		elapsed   time.Duration
		err       error
	}
	results := make(chan result)
	floods := 0
	for _, transport := range []string{"ws", "tcp"} {
		dial := func() *stompClient {
			if transport == "ws" {
				c, _ := dialWS(t, srv, "v12.stomp")
				return c
			}
			return dialTCP(t, srv.TCPAddr())
		}
		sub, pub := dial(), dial()
		sub.connect()
		pub.connect()
		dest := "/topic/flood-" + transport
		sub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:"+dest)
		floods++
		go func() {
			elapsed, err := floodAndCheck(pub, sub, dest)
			results <- result{transport, elapsed, err}
		}()
	}
	for _, transport := range []string{"xhr-streaming", "xhr-polling"} {
		floods++
		go func() {
			elapsed, err := floodSockJS(t.Context(), node, sockjsBase(srv), transport)
			results <- result{transport, elapsed, err}
		}()
	}
	for range floods {
		r := <-results
		switch {
		case r.err != nil:
			t.Errorf("%s: %v", r.transport, r.err)
		case r.elapsed < minFloodTime(floodFrames):
			t.Errorf("%s: %d SENDs receipted in %v: faster than the rate allows (%v)", r.transport, floodFrames, r.elapsed, minFloodTime(floodFrames))
		default:
			t.Logf("%s: %d SENDs receipted in %v (%.1f a second)", r.transport, floodFrames, r.elapsed.Round(time.Millisecond), floodFrames/r.elapsed.Seconds())
		}
	}
}

// floodTimeout bounds the wait for any one frame of a flood: far above the
// 50 ms between two SENDs at the default rate, a hang guard only.
const floodTimeout = 30 * time.Second

// nextFrame is stompClient.next for goroutines other than the test's: it
// returns an error instead of failing the test.
func nextFrame(c *stompClient) (*stomp.Frame, error) {
	select {
	case f, ok := <-c.frames:
		if !ok {
			return nil, fmt.Errorf("connection closed: %v", <-c.done)
		}
		return f, nil
	case <-time.After(floodTimeout):
		return nil, errors.New("timed out waiting for a frame")
	}
}

// floodAndCheck floods dest from pub with floodFrames SENDs and checks that
// every one is receipted in order with no ERROR, that sub receives them all
// in order, and that pub is still open afterwards. It returns the time from
// the first SEND to the last RECEIPT.
func floodAndCheck(pub, sub *stompClient, dest string) (time.Duration, error) {
	start := time.Now()
	written := flood(pub, dest, floodFrames)
	for i := range floodFrames {
		f, err := nextFrame(pub)
		if err != nil {
			return 0, fmt.Errorf("waiting for receipt %d: %w", i, err)
		}
		if f.Command != stomp.CmdReceipt || f.Value(stomp.HdrReceiptID) != fmt.Sprint("r", i) {
			return 0, fmt.Errorf("frame %d: %s %v %q, want RECEIPT r%d", i, f.Command, f.Headers, f.Body, i)
		}
	}
	elapsed := time.Since(start)
	if err := <-written; err != nil {
		return 0, err
	}
	if err := pub.write(sendFrame(dest, "still open", "last")); err != nil {
		return 0, fmt.Errorf("after the flood: %w", err)
	}
	for i := range floodFrames + 1 {
		want := fmt.Sprint(i)
		if i == floodFrames {
			want = "still open"
		}
		f, err := nextFrame(sub)
		if err != nil {
			return 0, fmt.Errorf("subscriber, message %d: %w", i, err)
		}
		if f.Command != stomp.CmdMessage || string(f.Body) != want {
			return 0, fmt.Errorf("subscriber, message %d: %s %q, want %q", i, f.Command, f.Body, want)
		}
	}
	return elapsed, nil
}

// floodSockJS runs testdata/stompjs/flood.mjs over one SockJS transport and
// checks what it reports. runNode fails its test from the test's own
// goroutine; this one returns errors, so that floods can run at once.
func floodSockJS(ctx context.Context, node, sockjsURL, transport string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, nodeScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(nodeScriptDir, "flood.mjs"))
	cmd.Env = append(os.Environ(), "STOMPBOX_SOCKJS_URL="+sockjsURL, "STOMPBOX_TRANSPORT="+transport,
		fmt.Sprint("STOMPBOX_COUNT=", floodFrames))
	cmd.WaitDelay = nodeKillGrace
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("flood.mjs: %w\nstderr: %s\nstdout: %s", err, stderr.Bytes(), out)
	}
	var got struct {
		Receipts, Messages int
		InOrder, Connected bool
		Errors             []string
		ElapsedMS          int64 `json:"elapsedMs"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &got); err != nil {
		return 0, fmt.Errorf("flood.mjs output %q: %w", out, err)
	}
	if got.Receipts != floodFrames || got.Messages != floodFrames || !got.InOrder || !got.Connected || len(got.Errors) > 0 {
		return 0, fmt.Errorf("flood.mjs: %+v", got)
	}
	return time.Duration(got.ElapsedMS) * time.Millisecond, nil
}

// TestFlowControlHeldStillReceives: while a connection is held back, its
// other subscriptions' messages and the server's heart-beats keep reaching
// it, and it is not taken for silent when it is read again. It is not
// parallel: its 100 ms heart-beats have 200 ms of grace, which the CPU of
// the parallel browser and cluster tests in this process can eat.
func TestFlowControlHeldStillReceives(t *testing.T) {
	srv := startServer(t, func(c *Config) {
		c.RateLimits.SendRate = 1 // burst 2: the 6 SENDs below are held about 4 s
		c.HeartBeat = 100 * time.Millisecond
	})
	var beats atomic.Int32
	conn, err := net.Dial("tcp", srv.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	held := newStompClient(t, func(b []byte) error { _, err := conn.Write(b); return err }, func() { conn.Close() },
		func() ([]byte, error) {
			buf := make([]byte, 64<<10)
			n, err := conn.Read(buf)
			if n > 0 && len(bytes.Trim(buf[:n], "\r\n")) == 0 {
				beats.Add(1) // nothing but EOLs: a heart-beat
			}
			return buf[:n], err
		})
	// The client asks for the server's heart-beats every 100 ms and promises
	// its own every 100 ms, which it sends, unread, while it is held.
	held.connect("accept-version:1.2", "heart-beat:100,100")
	stopBeats := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopBeats:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("\n")); err != nil {
					return
				}
			}
		}
	}()
	defer close(stopBeats)
	held.roundTrip(stomp.CmdSubscribe, "", "id:other", "destination:/topic/other")
	other := dialTCP(t, srv.TCPAddr())
	other.connect()

	written := flood(held, "/topic/held", 6)
	expectFloodReceipts(t, held, 2) // the burst
	beatsBefore := beats.Load()
	for i := range 3 {
		other.roundTrip(stomp.CmdSend, fmt.Sprint("to the held one ", i), "destination:/topic/other")
	}
	// The held SENDs come due one a second, the last after about 4 s; the
	// deliveries of other's messages must not wait for them.
	var messages []string
	for next := 2; next < 6; {
		switch f := held.next(); f.Command {
		case stomp.CmdMessage:
			messages = append(messages, string(f.Body))
		case stomp.CmdReceipt:
			if got, want := f.Value(stomp.HdrReceiptID), fmt.Sprint("r", next); got != want {
				t.Fatalf("receipt %q, want %q", got, want)
			}
			next++
		default:
			t.Fatalf("while held: %s %v", f.Command, f.Headers)
		}
	}
	if want := []string{"to the held one 0", "to the held one 1", "to the held one 2"}; fmt.Sprint(messages) != fmt.Sprint(want) {
		t.Fatalf("while held, got messages %q, want %q before the last receipt", messages, want)
	}
	if n := beats.Load() - beatsBefore; n < 3 {
		t.Errorf("%d server heart-beats while held, want some every 100 ms", n)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	held.roundTrip(stomp.CmdSend, "after", "destination:/topic/held") // the connection is still open
}

// heldConnectionBytes is the most heap one connection held back by its
// rate may cost beyond an idle one: the chunk it has read but not yet
// parsed and the frame it holds, each bounded by -max-frame. It costs no
// goroutine: the reader that waits is the connection's own. README and
// docs/benchmarks.md quote these figures.
const heldConnectionBytes = 2 * stomp.DefaultMaxFrame

// TestFlowControlFiftyHeld: 50 connections held back at once add no
// goroutine and no more heap than heldConnectionBytes each, and all of them
// finish with every SEND receipted. It is not parallel: it counts the
// process's goroutines and heap, which other tests would move.
func TestFlowControlFiftyHeld(t *testing.T) {
	const conns, sends = 50, 8 // rate 1/s, burst 2: each is held about 6 s
	srv := startServer(t, func(c *Config) { c.RateLimits = ratelimit.Limits{SendRate: 1, ConnsPerIP: conns} })
	clients := make([]*stompClient, conns)
	for i := range clients {
		clients[i] = dialTCP(t, srv.TCPAddr())
		clients[i].connect("accept-version:1.2", "heart-beat:0,0")
	}
	goroutines, heap := settledUse()
	lim := srv.limiter
	for i, c := range clients {
		// The 8 small SENDs fit the socket buffers, so the writing ends
		// at once and its goroutine with it, while the server holds back
		// reading them.
		if err := <-flood(c, fmt.Sprint("/topic/held-", i), sends); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, "every connection held", func() bool { return heldSends(lim) >= conns })
	heldGoroutines, heldHeap := settledUse()
	extra, grown := heldGoroutines-goroutines, int64(heldHeap)-int64(heap)
	t.Logf("%d connections held: %+d goroutines, %+d heap bytes (%.0f each)", conns, extra, grown, float64(grown)/conns)
	// A goroutine per held connection would add 50; a writer or two busy
	// with a receipt at that moment is all that may show.
	if extra >= conns/2 {
		t.Errorf("%d more goroutines with %d connections held", extra, conns)
	}
	if grown > conns*heldConnectionBytes {
		t.Errorf("heap grew %d bytes with %d connections held, more than %d each", grown, conns, heldConnectionBytes)
	}
	for _, c := range clients {
		expectFloodReceipts(t, c, sends)
	}
}

// settledUse is the goroutine count and live heap after a collection.
func settledUse() (goroutines int, heap uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

// TestPasswordGateQueues: with many password checks at once no more run
// than the gate has slots, every one finishes, and past the queue's bound a
// check is refused with "server busy, retry" at once.
func TestPasswordGateQueues(t *testing.T) {
	g := &auth.Gate{Slots: make(chan struct{}, 2), MaxQueue: 8, MaxWait: time.Minute}
	var running, most atomic.Int32
	release := make(chan struct{})
	results := make(chan error, 20)
	for range 10 { // 2 run, 8 wait
		go func() {
			results <- g.Do(context.Background(), func() {
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
				running.Add(-1)
			})
		}()
	}
	checkFor(t, "2 running and 8 queued", func() bool { return running.Load() == 2 && g.Waiting.Load() == 8 })
	if err := g.Do(context.Background(), func() { t.Error("ran past a full queue") }); err != auth.ErrServerBusy {
		t.Fatalf("11th check: %v, want errServerBusy", err)
	}
	close(release)
	for range 10 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if most.Load() != 2 {
		t.Fatalf("%d checks ran at once, want at most 2", most.Load())
	}
	if g.Peak.Load() != 8 || g.Busy.Load() != 1 {
		t.Fatalf("peak %d, busy %d", g.Peak.Load(), g.Busy.Load())
	}

	// A check that waits longer than maxWait is refused, not left hanging.
	g = &auth.Gate{Slots: make(chan struct{}, 1), MaxQueue: 8, MaxWait: 10 * time.Millisecond}
	hold := make(chan struct{})
	go g.Do(context.Background(), func() { <-hold })
	checkFor(t, "the slot taken", func() bool { return len(g.Slots) == 1 })
	if err := g.Do(context.Background(), func() {}); err != auth.ErrServerBusy {
		t.Fatalf("after maxWait: %v", err)
	}
	close(hold)
}

// TestLoginStormBusy: when the password queue is full, a STOMP CONNECT with
// a password gets an ERROR "server busy, retry" and POST /api/login a 503
// with Retry-After, and neither counts as a wrong password.
func TestLoginStormBusy(t *testing.T) {
	srv := startServer(t)
	addUser(t, srv, "kim", testPassword)
	block := make(chan struct{})
	gate := srv.auth.Gate
	for range cap(gate.Slots) { // take every slot
		go gate.Do(context.Background(), func() { <-block })
	}
	defer close(block)
	checkFor(t, "every slot taken", func() bool { return len(gate.Slots) == cap(gate.Slots) })
	gate.MaxQueue = 0 // and no room to wait

	c := dialTCP(t, srv.TCPAddr())
	c.send(stomp.CmdConnect, "", "accept-version:1.2", "login:kim", "passcode:"+testPassword)
	if e := c.expect(stomp.CmdError); e.Value(stomp.HdrMessage) != "server busy, retry" {
		t.Fatalf("CONNECT: ERROR %v", e.Headers)
	}
	status, h, body := httpAs(t, srv, "", "POST", "/api/login", `{"username":"kim","password":"`+testPassword+`"}`)
	if status != 503 || h.Get("Retry-After") != fmt.Sprint(auth.BusyRetryAfter) || !strings.Contains(body, "server busy, retry") {
		t.Fatalf("login: %d %q %s", status, h.Get("Retry-After"), body)
	}
	if n := srv.auth.FailedLogins("kim"); n != 0 {
		t.Fatalf("busy refusals counted as %d failed logins", n)
	}
}

// TestFlowControlSockJSSendsInTurn: while a SockJS session is held back, a
// second xhr_send request waits for the first (without reading its body),
// so two send requests in flight at once still have their frames carried
// out in the order they were sent, and both are answered once admitted.
func TestFlowControlSockJSSendsInTurn(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *Config) {
		c.RateLimits.SendRate = 1                  // burst 2: the 10 SENDs take about 8 s
		c.SockJSHeartbeat = 200 * time.Millisecond // an empty poll returns soon, so the poller stops soon
	})
	sub := dialTCP(t, srv.TCPAddr())
	sub.connect()
	sub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/turns")

	base := sockjsSessionURL(sockjsBase(srv), "")
	post := func(path string, msgs ...string) (int, string, error) {
		var body []byte
		if msgs != nil {
			body, _ = json.Marshal(msgs)
		}
		resp, err := http.Post(base+path, "text/plain", bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	if code, b, err := post("xhr"); err != nil || b != "o\n" {
		t.Fatalf("open: %d %q %v", code, b, err)
	}
	if code, _, err := post("xhr_send", "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00"); err != nil || code != http.StatusNoContent {
		t.Fatalf("CONNECT: %d %v", code, err)
	}
	if _, b, err := post("xhr"); err != nil || !strings.Contains(b, "CONNECTED") {
		t.Fatalf("CONNECTED: %q %v", b, err)
	}
	// Keep polling, as a client does: a session with no receiving request
	// for -sockjs-disconnect-delay is closed.
	polling := make(chan struct{})
	stopPolling := make(chan struct{})
	go func() {
		defer close(polling)
		for {
			select {
			case <-stopPolling:
				return
			default:
			}
			if code, _, err := post("xhr"); err != nil || code != http.StatusOK {
				return
			}
		}
	}()
	defer func() { close(stopPolling); <-polling }()
	sends := func(from, to int) []string {
		var msgs []string
		for i := from; i < to; i++ {
			msgs = append(msgs, fmt.Sprintf("SEND\ndestination:/topic/turns\n\n%d\x00", i))
		}
		return msgs
	}
	answered := make(chan string, 2)
	go func() {
		code, _, err := post("xhr_send", sends(0, 5)...)
		answered <- fmt.Sprint("first ", code, " ", err)
	}()
	lim := srv.limiter
	checkFor(t, "the first request held", func() bool { return heldSends(lim) >= 1 })
	go func() {
		code, _, err := post("xhr_send", sends(5, 10)...)
		answered <- fmt.Sprint("second ", code, " ", err)
	}()
	for i := range 10 {
		if m := sub.expect(stomp.CmdMessage); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q", i, m.Body)
		}
	}
	for _, want := range []string{"first 204 <nil>", "second 204 <nil>"} {
		if got := <-answered; got != want {
			t.Fatalf("answered %q, want %q", got, want)
		}
	}
}

// TestLoginStormQueues: 20 password CONNECTs at once all get CONNECTED
// through the password gate: those past its slots (one a core) waited their
// turn, none was refused. (TestPasswordGateQueues shows that no more than
// the slots run at once.)
func TestLoginStormQueues(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.RateLimits.ConnsPerIP = 0 })
	addUser(t, srv, "kim", testPassword)
	gate := srv.auth.Gate
	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", srv.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	errs := make(chan error, n)
	for _, c := range conns {
		go func() {
			_, err := c.Write(fmt.Appendf(nil, "CONNECT\naccept-version:1.2\nlogin:kim\npasscode:%s\nheart-beat:0,0\n\n\x00", testPassword))
			if err == nil {
				buf := make([]byte, 9)
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				if _, err = io.ReadFull(c, buf); err == nil && string(buf) != "CONNECTED" {
					err = fmt.Errorf("got %q", buf)
				}
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if gate.Peak.Load() < 1 || gate.Busy.Load() != 0 {
		t.Fatalf("peak waiting %d, busy %d: want some queued, none refused", gate.Peak.Load(), gate.Busy.Load())
	}
}

// heldSends is how many SENDs lim has held back since start.
func heldSends(lim *ratelimit.Limiter) uint64 {
	n, _ := lim.HeldSends()
	return n
}
