package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	start := time.Unix(0, 0)
	tests := []struct {
		name        string
		rate, burst float64
		at          []time.Duration // when each take happens, from start
		want        []bool
	}{
		{"burst then refused", 1, 2, []time.Duration{0, 0, 0}, []bool{true, true, false}},
		{"refills at rate", 2, 2, []time.Duration{0, 0, 0, 500 * time.Millisecond, 500 * time.Millisecond}, []bool{true, true, false, true, false}},
		{"never above burst", 10, 3, []time.Duration{0, time.Hour, time.Hour, time.Hour, time.Hour}, []bool{true, true, true, true, false}},
		{"clock going back", 1, 1, []time.Duration{time.Second, 0, 2 * time.Second}, []bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Bucket
			for i, d := range tt.at {
				if got := b.Allow(start.Add(d), tt.rate, tt.burst); got != tt.want[i] {
					t.Fatalf("take %d at %v: %v, want %v", i, d, got, tt.want[i])
				}
			}
		})
	}
}

// TestTokenBucketReserve: reservations past the burst go into debt, and
// each says how long until its token is there.
func TestTokenBucketReserve(t *testing.T) {
	start := time.Unix(0, 0)
	var b Bucket
	var waits []time.Duration
	for range 5 { // rate 2/s, burst 2: two at once, then one every 500 ms
		waits = append(waits, b.Reserve(start, 2, 2))
	}
	want := []time.Duration{0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	if b.Allow(start.Add(time.Second), 2, 2) {
		t.Fatal("allow took a token from a bucket in debt")
	}
	if w := b.Reserve(start.Add(2*time.Second), 2, 2); w != 0 {
		t.Fatalf("after the debt is paid off: wait %v", w)
	}
}

// TestRateLimiterForgets: the per-user and per-address maps stay bounded.
func TestRateLimiterForgets(t *testing.T) {
	l := New(Limits{LoginsPerIP: 1})
	for i := range MaxRateEntries + 10 {
		l.AllowLogin(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if n := len(l.logins); n > MaxRateEntries {
		t.Fatalf("%d login buckets", n)
	}
	var nilLimiter *Limiter
	if !nilLimiter.AllowLogin("x") || nilLimiter.SendDelay(nil, "") != 0 {
		t.Fatal("a nil limiter limits")
	}
}

// TestRateLimiterRefusals: every login attempt and HTTP post a rate
// refuses is counted, and nothing it allows.
func TestRateLimiterRefusals(t *testing.T) {
	l := New(Limits{LoginsPerIP: 2, UserSendRate: 1})
	now := time.Unix(0, 0)
	l.Now = func() time.Time { return now }
	for range 5 {
		l.AllowLogin("10.0.0.1") // two allowed, three refused
	}
	for range 4 {
		l.AllowUserSend("kim") // burst of two allowed, two refused
	}
	if logins, posts := l.Refusals(); logins != 3 || posts != 2 {
		t.Fatalf("refusals: %d logins, %d posts; want 3 and 2", logins, posts)
	}
	if logins, posts := (*Limiter)(nil).Refusals(); logins != 0 || posts != 0 {
		t.Fatalf("nil limiter refused %d, %d", logins, posts)
	}
}

// TestLoginAddress: the login bucket of an address is one whether the
// caller gives host:port or the bare host, and an IPv6 /64 is one
// address, so that a machine cannot pick fresh addresses to guess on.
func TestLoginAddress(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"10.0.0.1:5000", "10.0.0.1"},
		{"[2001:db8::1]:5000", "2001:db8::2"},
		{"[2001:db8::1]:5000", "[2001:db8:0:0:ffff::9]:1"},
		{"[::ffff:10.0.0.1]:1", "10.0.0.1"},
	} {
		if LoginAddress(tt.a) != LoginAddress(tt.b) {
			t.Errorf("%s (%s) and %s (%s) differ", tt.a, LoginAddress(tt.a), tt.b, LoginAddress(tt.b))
		}
		l := New(Limits{LoginsPerIP: 1})
		l.Now = func() time.Time { return time.Unix(0, 0) }
		if !l.AllowLogin(tt.a) || l.AllowLogin(tt.b) {
			t.Errorf("%s then %s: want one bucket", tt.a, tt.b)
		}
	}
	for _, tt := range []struct{ a, b string }{
		{"10.0.0.1:5000", "10.0.0.2:5000"},
		{"[2001:db8::1]:5000", "[2001:db8:0:1::1]:5000"},
	} {
		if LoginAddress(tt.a) == LoginAddress(tt.b) {
			t.Errorf("%s and %s share %s", tt.a, tt.b, LoginAddress(tt.a))
		}
	}
}
