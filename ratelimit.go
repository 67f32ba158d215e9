package main

import (
	"fmt"
	"net"
	"net/http"
	"stompbox/internal/apperr"
	"stompbox/internal/stomp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Rate limit defaults (issue 6). Each is an option in main.go; 0 turns a
// limit off.
const (
	// defaultSendRate is SEND frames per second one connection may make,
	// with bursts of rateBurstFactor times that. A person types far slower;
	// a script or a stuck client loop does not.
	defaultSendRate = 20
	// defaultUserSendRate is SEND frames per second across all of one
	// user's connections (tabs, phone, bots with the same account), so
	// opening more connections does not multiply the allowance.
	defaultUserSendRate = 30
	// defaultConnsPerIP bounds the STOMP connections from one address: a
	// team behind one NAT fits, one machine cannot take every slot of
	// --max-connections. Behind a reverse proxy on the same machine every
	// client shares the proxy's address: raise it or set 0.
	defaultConnsPerIP = 50
	// defaultLoginsPerIP is login and registration attempts per minute from
	// one address, on top of the per-account throttle in auth.go: it stops
	// a spray of guesses over many accounts.
	defaultLoginsPerIP = 30
	// rateBurstFactor: a SEND bucket holds this many seconds of its rate,
	// so a short burst, such as pasting several lines or a reconnect that
	// resends, passes. A login bucket holds one minute's worth.
	rateBurstFactor = 2
	// maxRateEntries bounds the per-user and per-address bucket maps under a
	// spray of names or addresses; idle buckets are dropped first.
	maxRateEntries = 10000
)

// errTooManyFromAddr refuses a connection past -max-conns-per-ip; the
// ERROR names the limit (see limitError).
var errTooManyFromAddr = stomp.NewError("too many connections from this address")

// rateLimits configures a rateLimiter. A zero field turns that limit off.
type rateLimits struct {
	SendRate     int // SEND frames per second per connection
	UserSendRate int // SEND frames per second per user, all connections together
	ConnsPerIP   int // open STOMP connections per client address
	LoginsPerIP  int // login and registration attempts per minute per client address
}

// tokenBucket is a classic token bucket that may go into debt. It is our
// own few lines rather than golang.org/x/time/rate: we keep thousands of
// buckets in maps under one lock (x/time/rate's Limiter carries a mutex per
// bucket), take from a connection's and its user's bucket in one step, and
// want an injectable clock for tests.
//
// tokens may be negative: reserve hands out tokens that will only exist
// later, and the caller waits for them. Each session's reader holds at most
// one reservation at a time (it waits before reading on), so a bucket's debt
// is bounded by the connections that draw on it.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// refill adds the tokens earned since the bucket's last use, up to burst.
// A new bucket starts full. rate is tokens per second.
func (b *tokenBucket) refill(now time.Time, rate, burst float64) {
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.last = now
}

// allow takes one token if there is one now, and reports whether it did.
func (b *tokenBucket) allow(now time.Time, rate, burst float64) bool {
	b.refill(now, rate, burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// reserve takes one token whether or not it is there yet and returns how
// long until it would have been: the time the caller must wait before it
// acts. 0 means at once.
func (b *tokenBucket) reserve(now time.Time, rate, burst float64) time.Duration {
	b.refill(now, rate, burst)
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / rate * float64(time.Second))
}

// full reports whether the bucket has refilled completely by now, so that
// forgetting it changes nothing.
func (b *tokenBucket) full(now time.Time, rate, burst float64) bool {
	return b.tokens+now.Sub(b.last).Seconds()*rate >= burst
}

// rateLimiter enforces rateLimits for the broker and the HTTP login route.
// Safe for concurrent use. Its methods answer at once: its lock is held only
// for map and arithmetic work. A SEND over its rate is not refused but
// delayed: sendDelay says for how long, and the session's reader waits that
// long before it reads on (holdForRate), so the client is slowed to its
// rate, as TCP flow control slows a fast writer. Nobody else waits. A nil
// *rateLimiter allows everything.
type rateLimiter struct {
	lim   rateLimits
	now   func() time.Time    // time.Now; tests freeze it
	sleep func(time.Duration) // time.Sleep; tests with a frozen clock advance it instead

	held     atomic.Uint64 // SEND frames that had to wait, since start
	heldNano atomic.Int64  // their waits added up

	mu     sync.Mutex
	conns  map[*session]*tokenBucket // per-connection SEND buckets, removed at disconnect
	users  map[string]*tokenBucket   // per-user SEND buckets
	ips    map[string]int            // open connections per address
	logins map[string]*tokenBucket   // per-address login buckets
}

// newRateLimiter returns a limiter for lim.
func newRateLimiter(lim rateLimits) *rateLimiter {
	return &rateLimiter{
		lim:    lim,
		now:    time.Now,
		sleep:  time.Sleep,
		conns:  make(map[*session]*tokenBucket),
		users:  make(map[string]*tokenBucket),
		ips:    make(map[string]int),
		logins: make(map[string]*tokenBucket),
	}
}

// remoteIP is the address part of host:port, for per-address limits.
func remoteIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// admit counts a new connection against its address and registers it with
// the broker. It replaces a bare register in Serve; the broker calls
// rateLimiter.connClosed when the session goes.
func (b *Broker) admit(s *session) error {
	if err := b.cfg.Limiter.connOpened(s); err != nil {
		return err
	}
	if err := b.register(s); err != nil {
		b.cfg.Limiter.connClosed(s)
		return err
	}
	return nil
}

// connOpened counts s against its address, refusing it past ConnsPerIP.
func (l *rateLimiter) connOpened(s *session) error {
	if l == nil {
		return nil
	}
	ip := remoteIP(s.info.Remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.ConnsPerIP > 0 && l.ips[ip] >= l.lim.ConnsPerIP {
		return limitError(errTooManyFromAddr, "max-conns-per-ip", l.lim.ConnsPerIP)
	}
	l.ips[ip]++
	return nil
}

// connClosed forgets s: its address count and its SEND bucket.
func (l *rateLimiter) connClosed(s *session) {
	if l == nil {
		return
	}
	ip := remoteIP(s.info.Remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ips[ip]--; l.ips[ip] <= 0 {
		delete(l.ips, ip)
	}
	delete(l.conns, s)
}

// sendDelay reserves a token for s's next SEND in its connection bucket
// and its user's bucket, and returns how long the reader must wait before
// acting on the frame: 0 while both buckets have tokens, else until the later
// of the two reservations comes due. Called by the session's reader for every
// SEND.
func (l *rateLimiter) sendDelay(s *session) time.Duration {
	if l == nil {
		return 0
	}
	now := l.now()
	var wait time.Duration
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := float64(l.lim.SendRate); r > 0 {
		b := l.conns[s]
		if b == nil {
			b = &tokenBucket{}
			l.conns[s] = b
		}
		wait = b.reserve(now, r, r*rateBurstFactor)
	}
	if r := float64(l.lim.UserSendRate); r > 0 && s.user != "" {
		wait = max(wait, bucketFor(l.users, s.user, now, r, r*rateBurstFactor).reserve(now, r, r*rateBurstFactor))
	}
	return wait
}

// rateHoldStep is how often a reader held back by its rate looks up from
// its wait to see whether its session ended meanwhile (the client left, a
// slow-consumer cut-off, shutdown). Short enough that shutdown is never held
// up by it; a held reader wakes at most 20 times a second.
const rateHoldStep = 50 * time.Millisecond

// holdForRate delays the reader, and so the reading of the connection, until
// the SEND it is about to handle is within the connection's and the user's
// rates. While it waits, nothing more is read: over TCP and WebSocket the
// client's socket buffers fill and its writes block, over SockJS its
// xhr_send request stays unanswered. The session's writer goes on
// delivering (messages, receipts, heart-beats) meanwhile. It returns
// errDisconnected if the session ends during the wait.
func (s *session) holdForRate() error {
	l := s.b.cfg.Limiter
	wait := l.sendDelay(s)
	if wait <= 0 {
		return nil
	}
	l.held.Add(1)
	l.heldNano.Add(int64(wait))
	for wait > 0 {
		if s.out.isClosed() || s.ctx.Err() != nil {
			return errDisconnected
		}
		step := min(wait, rateHoldStep)
		l.sleep(step)
		wait -= step
	}
	return nil
}

// errSendRateLimited refuses an HTTP message post past -user-send-rate
// (429 with Retry-After). STOMP SENDs past it are held back instead
// (holdForRate): a connection can be left unread, an HTTP request is better
// answered at once so that a bot can retry.
var errSendRateLimited = apperr.New(apperr.KindRateLimited, "rate limit exceeded: too many messages, slow down")

// allowUserSend takes a token from user's SEND bucket, the very bucket that
// user's STOMP SENDs draw from (sendDelay), so posting over HTTP does not
// add to the allowance. When the bucket is empty it reports how long until
// the next token, for Retry-After. Called for POST /api/rooms/{id}/messages.
func (l *rateLimiter) allowUserSend(user string) (bool, time.Duration) {
	if l == nil || l.lim.UserSendRate <= 0 || user == "" {
		return true, 0
	}
	now := l.now()
	r := float64(l.lim.UserSendRate)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := bucketFor(l.users, user, now, r, r*rateBurstFactor)
	if b.allow(now, r, r*rateBurstFactor) {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / r * float64(time.Second))
}

// retryAfterSeconds is a Retry-After value (RFC 9110 §10.2.3: whole
// seconds) for a wait of d: rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// allowLogin takes a token from the address's login bucket.
func (l *rateLimiter) allowLogin(ip string) bool {
	if l == nil || l.lim.LoginsPerIP <= 0 {
		return true
	}
	now := l.now()
	burst := float64(l.lim.LoginsPerIP) // a minute's worth at once
	r := burst / 60                     // per minute → per second
	l.mu.Lock()
	defer l.mu.Unlock()
	return bucketFor(l.logins, ip, now, r, burst).allow(now, r, burst)
}

// bucketFor returns m's bucket for key, creating it. When m is at
// maxRateEntries it first drops the buckets that have refilled (forgetting
// them changes nothing), then, if still full, all of them: forgetting beats
// growing without bound. The caller holds the limiter's lock.
func bucketFor(m map[string]*tokenBucket, key string, now time.Time, rate, burst float64) *tokenBucket {
	if b := m[key]; b != nil {
		return b
	}
	if len(m) >= maxRateEntries {
		for k, b := range m {
			if b.full(now, rate, burst) {
				delete(m, k)
			}
		}
		if len(m) >= maxRateEntries {
			clear(m)
		}
	}
	b := &tokenBucket{}
	m[key] = b
	return b
}

// limitLogins answers 429 with a JSON error to login and registration
// attempts past LoginsPerIP from one address; other requests pass.
func (l *rateLimiter) limitLogins(next http.Handler) http.Handler {
	if l == nil || l.lim.LoginsPerIP <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.URL.Path == "/api/login" || r.URL.Path == "/api/register") &&
			!l.allowLogin(remoteIP(r.RemoteAddr)) {
			w.Header().Set("Retry-After", "60")
			writeJSONError(w, http.StatusTooManyRequests, "too many login attempts from this address; try again in a minute")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// countSetter parses an option that is a count where 0 turns a limit off.
func countSetter(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid count %q (0 or more)", v)
		}
		f(c, n)
		return nil
	}
}
