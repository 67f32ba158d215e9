package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"stompbox/internal/ratelimit"
	"stompbox/internal/stomp"
	"strings"
	"sync"
	"testing"
	"time"
)

// frozenClock stops the limiter's clock, so that bucket refills never make
// a test depend on how fast it runs; advance moves it on. As the limiter's
// sleep it advances itself, so a reader held back by its rate goes on at
// once, and slept tells how long it was held in all.
type frozenClock struct {
	mu    sync.Mutex
	t     time.Time
	total time.Duration // sum of sleeps
}

func (c *frozenClock) sleep(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.total += d
	c.mu.Unlock()
}

func (c *frozenClock) slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *frozenClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *frozenClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startLimitedServer starts a server with lim and a frozen limiter clock.
func startLimitedServer(t *testing.T, lim ratelimit.Limits) (*server, *frozenClock) {
	t.Helper()
	srv := startServer(t, func(c *Config) { c.RateLimits = lim })
	clock := &frozenClock{t: time.Unix(1_700_000_000, 0)}
	srv.limiter.Now = clock.now
	srv.limiter.Sleep = clock.sleep
	return srv, clock
}

// TestSendRateHoldsConnection: past its burst a connection is slowed to its
// rate, not refused: every SEND is carried out, in order, and receipted, and
// the reader was held for exactly the time the rate asks. Another connection
// sending at the same time is not held at all.
func TestSendRateHoldsConnection(t *testing.T) {
	srv, clock := startLimitedServer(t, ratelimit.Limits{SendRate: 2}) // burst 4
	flood, calm := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
	flood.connect()
	calm.connect()
	calm.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/rate")
	const n = 10
	for i := range n {
		flood.send(stomp.CmdSend, fmt.Sprint(i), "destination:/topic/rate", fmt.Sprintf("receipt:r%d", i))
	}
	for i := range n {
		if r := flood.expect(stomp.CmdReceipt); r.Value(stomp.HdrReceiptID) != fmt.Sprintf("r%d", i) {
			t.Fatalf("receipt %d: %v", i, r.Headers)
		}
	}
	// The burst of 4 passes at once; each of the 6 after it waits 500 ms.
	if got, want := clock.slept(), time.Duration(n-2*ratelimit.RateBurstFactor)*500*time.Millisecond; got != want {
		t.Fatalf("held %v in all, want %v", got, want)
	}
	for i := range n {
		if m := calm.expect(stomp.CmdMessage); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q", i, m.Body)
		}
	}
	// calm has its own bucket: its burst is whole, nothing waits.
	before := clock.slept()
	for range 2 * ratelimit.RateBurstFactor {
		calm.roundTrip(stomp.CmdSend, "calm", "destination:/topic/other")
	}
	if clock.slept() != before {
		t.Fatal("a connection within its rate was held")
	}
	flood.roundTrip(stomp.CmdSend, "still open", "destination:/topic/rate")
	if m := calm.expect(stomp.CmdMessage); string(m.Body) != "still open" {
		t.Fatalf("after the hold: %q", m.Body)
	}
	if n := func() uint64 { n, _ := srv.limiter.HeldSends(); return n }(); n != 7 {
		t.Errorf("held counter %d, want 7", n)
	}
	flood.close()
	calm.close()
	checkFor(t, "no sessions left", func() bool { return srv.broker.SessionCount() == 0 })
	if n := func() int { n, _ := srv.limiter.Tracked(); return n }(); n != 0 {
		t.Errorf("%d connection buckets left after every connection closed", n)
	}
}

// TestSendRatePerUser: one user's connections share a bucket, so a second
// tab does not double the allowance: the third SEND over both waits for
// the refill. Another user is not held.
func TestSendRatePerUser(t *testing.T) {
	srv, clock := startLimitedServer(t, ratelimit.Limits{UserSendRate: 1}) // burst 2
	addUser(t, srv, "kim", "password-kim")
	addUser(t, srv, "lee", "password-lee")
	login := func(name string) *stompClient {
		c := dialTCP(t, srv.TCPAddr())
		c.connect("accept-version:1.2", "login:"+name, "passcode:password-"+name, "heart-beat:0,0")
		return c
	}
	kim1, kim2, lee := login("kim"), login("kim"), login("lee")
	kim1.roundTrip(stomp.CmdSend, "1", "destination:/topic/u")
	kim2.roundTrip(stomp.CmdSend, "2", "destination:/topic/u")
	if clock.slept() != 0 {
		t.Fatalf("held %v within the burst", clock.slept())
	}
	kim1.roundTrip(stomp.CmdSend, "3", "destination:/topic/u")
	if got := clock.slept(); got != time.Second {
		t.Fatalf("third SEND of kim held %v, want 1s", got)
	}
	lee.roundTrip(stomp.CmdSend, "1", "destination:/topic/u")
	lee.roundTrip(stomp.CmdSend, "2", "destination:/topic/u")
	if got := clock.slept(); got != time.Second {
		t.Fatalf("lee was held: %v in all", got)
	}
}

// TestConnectionsPerIP: past the limit a connection is refused with an
// ERROR; once one closes, a new one is admitted. Refused connections do
// not count.
func TestConnectionsPerIP(t *testing.T) {
	srv, _ := startLimitedServer(t, ratelimit.Limits{ConnsPerIP: 2})
	a, b := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
	a.connect()
	// b's socket is counted once the server has taken it from the accept
	// queue, which the WebSocket's own accept below could beat.
	checkFor(t, "b to be counted", func() bool { return srv.broker.SessionCount() == 2 })
	// The limit spans transports. The refusal comes as soon as the socket is
	// handed over, before any CONNECT (as for the TCP clients below): a
	// CONNECT sent now could meet a connection already closed.
	ws, _ := dialWS(t, srv, "v12.stomp")
	if e := ws.expect(stomp.CmdError); e.Value(stomp.HdrMessage) != "too many connections from this address: at most 2 (-max-conns-per-ip)" {
		t.Fatalf("ERROR %v", e.Headers)
	}
	ws.expectClosed()
	b.connect()
	for range 3 { // refusals leave the count alone
		c := dialTCP(t, srv.TCPAddr())
		c.expect(stomp.CmdError)
		c.expectClosed()
	}
	a.close()
	checkFor(t, "a to go", func() bool { return srv.broker.SessionCount() == 1 })
	c := dialTCP(t, srv.TCPAddr())
	c.connect()
}

// TestLoginRatePerIP: past the per-address allowance, login and
// registration attempts get 429 with a JSON error at once, whatever the
// credentials; other requests pass.
func TestLoginRatePerIP(t *testing.T) {
	srv, clock := startLimitedServer(t, ratelimit.Limits{LoginsPerIP: 3})
	addUser(t, srv, "kim", "password-kim")
	base := "http://" + srv.HTTPAddr()
	post := func(path, body string) (int, string) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	wrong := `{"username":"kim","password":"wrong-password"}`
	for i := range 3 {
		if code, _ := post("/api/login", wrong); code == http.StatusTooManyRequests {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if code, msg := post("/api/login", `{"username":"kim","password":"password-kim"}`); code != http.StatusTooManyRequests || msg == "" {
		t.Fatalf("4th attempt: %d %q", code, msg)
	}
	if code, _ := post("/api/register", `{"username":"x","password":"password-x"}`); code != http.StatusTooManyRequests {
		t.Fatalf("register: %d", code)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	clock.advance(time.Minute / 3) // one attempt back
	if code, _ := post("/api/login", `{"username":"kim","password":"password-kim"}`); code != http.StatusOK {
		t.Fatalf("after refill: %d", code)
	}
}
