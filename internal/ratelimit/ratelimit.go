package ratelimit

import (
	"net"
	"net/netip"
	"stompbox/internal/apperr"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Rate limit defaults (issue 6). Each is an option in main.go; 0 turns a
// limit off.
const (
	// DefaultSendRate is SEND frames per second one connection may make,
	// with bursts of rateBurstFactor times that. A person types far slower;
	// a script or a stuck client loop does not.
	DefaultSendRate = 20
	// DefaultUserSendRate is SEND frames per second across all of one
	// user's connections (tabs, phone, bots with the same account), so
	// opening more connections does not multiply the allowance.
	DefaultUserSendRate = 30
	// DefaultConnsPerIP bounds the STOMP connections from one address: a
	// team behind one NAT fits, one machine cannot take every slot of
	// --max-connections. Behind a reverse proxy on the same machine every
	// client shares the proxy's address: raise it or set 0.
	DefaultConnsPerIP = 50
	// DefaultLoginsPerIP is login and registration attempts per minute from
	// one address, on top of the per-account throttle in auth.go: it stops
	// a spray of guesses over many accounts.
	DefaultLoginsPerIP = 30
	// rateBurstFactor: a SEND bucket holds this many seconds of its rate,
	// so a short burst, such as pasting several lines or a reconnect that
	// resends, passes. A login bucket holds one minute's worth.
	RateBurstFactor = 2
	// MaxRateEntries bounds the per-user and per-address bucket maps under a
	// spray of names or addresses; idle buckets are dropped first.
	MaxRateEntries = 10000
)

// Limits configures a rateLimiter. A zero field turns that limit off.
type Limits struct {
	SendRate     int // SEND frames per second per connection
	UserSendRate int // SEND frames per second per user, all connections together
	ConnsPerIP   int // open STOMP connections per client address
	LoginsPerIP  int // login and registration attempts per minute per client address
}

// Bucket is a classic token bucket that may go into debt. It is our
// own few lines rather than golang.org/x/time/rate: we keep thousands of
// buckets in maps under one lock (x/time/rate's Limiter carries a mutex per
// bucket), take from a connection's and its user's bucket in one step, and
// want an injectable clock for tests.
//
// tokens may be negative: reserve hands out tokens that will only exist
// later, and the caller waits for them. Each session's reader holds at most
// one reservation at a time (it waits before reading on), so a bucket's debt
// is bounded by the connections that draw on it.
type Bucket struct {
	tokens float64
	last   time.Time
}

// refill adds the tokens earned since the bucket's last use, up to burst.
// A new bucket starts full. rate is tokens per second.
func (b *Bucket) refill(now time.Time, rate, burst float64) {
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.last = now
}

// Allow takes one token if there is one now, and reports whether it did.
func (b *Bucket) Allow(now time.Time, rate, burst float64) bool {
	b.refill(now, rate, burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Reserve takes one token whether or not it is there yet and returns how
// long until it would have been: the time the caller must wait before it
// acts. 0 means at once.
func (b *Bucket) Reserve(now time.Time, rate, burst float64) time.Duration {
	b.refill(now, rate, burst)
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / rate * float64(time.Second))
}

// full reports whether the bucket has refilled completely by now, so that
// forgetting it changes nothing.
func (b *Bucket) full(now time.Time, rate, burst float64) bool {
	return b.tokens+now.Sub(b.last).Seconds()*rate >= burst
}

// Limiter enforces rateLimits for the broker and the HTTP login route.
// It knows connections only as the keys its callers give it (any comparable
// value, such as the broker's session pointer) with their remote address,
// and users by name. Safe for concurrent use. Its methods answer at once
// (hold excepted): its lock is held only for map and arithmetic work. A SEND
// over its rate is not refused but delayed: sendDelay says for how long, and
// the connection's reader waits that long in hold before it reads on, so the
// client is slowed to its rate, as TCP flow control slows a fast writer.
// Nobody else waits. A nil *rateLimiter allows everything.
type Limiter struct {
	lim   Limits
	Now   func() time.Time    // time.Now; tests freeze it
	Sleep func(time.Duration) // time.Sleep; tests with a frozen clock advance it instead

	held          atomic.Uint64 // SEND frames that had to wait, since start
	heldNano      atomic.Int64  // their waits added up
	refusedLogins atomic.Uint64 // login and registration attempts refused by LoginsPerIP, since start
	refusedPosts  atomic.Uint64 // HTTP message posts refused by UserSendRate, since start

	mu     sync.Mutex
	conns  map[any]*Bucket    // per-connection SEND buckets, by the caller's key; removed by connClosed
	users  map[string]*Bucket // per-user SEND buckets
	ips    map[string]int     // open connections per address
	logins map[string]*Bucket // per-address login buckets
}

// New returns a limiter for lim.
func New(lim Limits) *Limiter {
	return &Limiter{
		lim:    lim,
		Now:    time.Now,
		Sleep:  time.Sleep,
		conns:  make(map[any]*Bucket),
		users:  make(map[string]*Bucket),
		ips:    make(map[string]int),
		logins: make(map[string]*Bucket),
	}
}

// RemoteIP is the address part of host:port, for per-address limits.
func RemoteIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// Limits returns the limits the limiter enforces; none for a nil limiter.
func (l *Limiter) Limits() Limits {
	if l == nil {
		return Limits{}
	}
	return l.lim
}

// ConnOpened counts a connection from remote (host:port) against its
// address, and reports false, counting nothing, past ConnsPerIP. A
// connection it admitted must be given back with connClosed.
func (l *Limiter) ConnOpened(remote string) bool {
	if l == nil {
		return true
	}
	ip := RemoteIP(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.ConnsPerIP > 0 && l.ips[ip] >= l.lim.ConnsPerIP {
		return false
	}
	l.ips[ip]++
	return true
}

// ConnClosed forgets the connection conn from remote: its address count
// and its SEND bucket.
func (l *Limiter) ConnClosed(conn any, remote string) {
	if l == nil {
		return
	}
	ip := RemoteIP(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ips[ip]--; l.ips[ip] <= 0 {
		delete(l.ips, ip)
	}
	delete(l.conns, conn)
}

// SendDelay reserves a token for the next SEND of connection conn in its
// connection bucket and in user's bucket (none for user ""), and returns how
// long the reader must wait before acting on the frame: 0 while both buckets
// have tokens, else until the later of the two reservations comes due.
// Called by the connection's reader for every SEND.
func (l *Limiter) SendDelay(conn any, user string) time.Duration {
	if l == nil {
		return 0
	}
	now := l.Now()
	var wait time.Duration
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := float64(l.lim.SendRate); r > 0 {
		b := l.conns[conn]
		if b == nil {
			b = &Bucket{}
			l.conns[conn] = b
		}
		wait = b.Reserve(now, r, r*RateBurstFactor)
	}
	if r := float64(l.lim.UserSendRate); r > 0 && user != "" {
		wait = max(wait, bucketFor(l.users, user, now, r, r*RateBurstFactor).Reserve(now, r, r*RateBurstFactor))
	}
	return wait
}

// rateHoldStep is how often a reader held back by its rate looks up from
// its wait to see whether its session ended meanwhile (the client left, a
// slow-consumer cut-off, shutdown). Short enough that shutdown is never held
// up by it; a held reader wakes at most 20 times a second.
const rateHoldStep = 50 * time.Millisecond

// Hold waits out wait, a sendDelay, on the reader's goroutine, and counts
// it in held and heldNano. It looks up every rateHoldStep and gives up,
// reporting false, once ended reports true (the connection went). A wait of
// 0 or less returns true at once, uncounted.
func (l *Limiter) Hold(wait time.Duration, ended func() bool) bool {
	if wait <= 0 {
		return true
	}
	l.held.Add(1)
	l.heldNano.Add(int64(wait))
	for wait > 0 {
		if ended() {
			return false
		}
		step := min(wait, rateHoldStep)
		l.Sleep(step)
		wait -= step
	}
	return true
}

// ErrSendRateLimited refuses an HTTP message post past -user-send-rate
// (429 with Retry-After). STOMP SENDs past it are held back instead
// (hold): a connection can be left unread, an HTTP request is better
// answered at once so that a bot can retry.
var ErrSendRateLimited = apperr.New(apperr.ErrRateLimited, "rate limit exceeded: too many messages, slow down")

// AllowUserSend takes a token from user's SEND bucket, the very bucket that
// user's STOMP SENDs draw from (sendDelay), so posting over HTTP does not
// add to the allowance. When the bucket is empty it reports how long until
// the next token, for Retry-After. Called for POST /api/rooms/{id}/messages.
func (l *Limiter) AllowUserSend(user string) (bool, time.Duration) {
	if l == nil || l.lim.UserSendRate <= 0 || user == "" {
		return true, 0
	}
	now := l.Now()
	r := float64(l.lim.UserSendRate)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := bucketFor(l.users, user, now, r, r*RateBurstFactor)
	if b.Allow(now, r, r*RateBurstFactor) {
		return true, 0
	}
	l.refusedPosts.Add(1)
	return false, time.Duration((1 - b.tokens) / r * float64(time.Second))
}

// RetryAfterSeconds is a Retry-After value (RFC 9110 §10.2.3: whole
// seconds) for a wait of d: rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// AllowLogin takes a token from the address's login bucket. addr is a
// client address, host:port or a bare host; an IPv6 /64 counts as one
// address (LoginAddress). The HTTP login and registration routes and a
// STOMP CONNECT with a password draw from the same bucket.
func (l *Limiter) AllowLogin(addr string) bool {
	if l == nil || l.lim.LoginsPerIP <= 0 {
		return true
	}
	ip := LoginAddress(addr)
	now := l.Now()
	burst := float64(l.lim.LoginsPerIP) // a minute's worth at once
	r := burst / 60                     // per minute → per second
	l.mu.Lock()
	ok := bucketFor(l.logins, ip, now, r, burst).Allow(now, r, burst)
	l.mu.Unlock()
	if !ok {
		l.refusedLogins.Add(1)
	}
	return ok
}

// LoginAddress is what login limits count by for a client address
// (host:port or a bare host): the host, and for IPv6 its /64, the block
// one machine may pick addresses from at will. (auth.AddressKey, for the
// per-account throttle, is the same.)
func LoginAddress(addr string) string {
	host := RemoteIP(addr)
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if ip = ip.Unmap(); ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// bucketFor returns m's bucket for key, creating it. When m is at
// maxRateEntries it first drops the buckets that have refilled (forgetting
// them changes nothing), then, if still full, all of them: forgetting beats
// growing without bound. The caller holds the limiter's lock.
func bucketFor(m map[string]*Bucket, key string, now time.Time, rate, burst float64) *Bucket {
	if b := m[key]; b != nil {
		return b
	}
	if len(m) >= MaxRateEntries {
		for k, b := range m {
			if b.full(now, rate, burst) {
				delete(m, k)
			}
		}
		if len(m) >= MaxRateEntries {
			clear(m)
		}
	}
	b := &Bucket{}
	m[key] = b
	return b
}

// HeldSends reports how many SEND frames had to wait for their rate since
// start, and their waits added up.
func (l *Limiter) HeldSends() (sends uint64, waited time.Duration) {
	return l.held.Load(), time.Duration(l.heldNano.Load())
}

// Refusals reports how many login and registration attempts LoginsPerIP
// refused (HTTP 429), and how many HTTP message posts UserSendRate refused
// (HTTP 429), since start. STOMP SENDs are never refused by a rate, only
// held (HeldSends). A nil limiter refuses nothing.
func (l *Limiter) Refusals() (logins, posts uint64) {
	if l == nil {
		return 0, 0
	}
	return l.refusedLogins.Load(), l.refusedPosts.Load()
}

// Tracked reports how many connections hold a SEND bucket and how many
// addresses have open connections: both return to zero once every
// connection has closed (ConnClosed).
func (l *Limiter) Tracked() (conns, addrs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns), len(l.ips)
}
