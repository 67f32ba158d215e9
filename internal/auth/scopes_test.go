package auth

import (
	"context"
	"errors"
	"stompbox/internal/apperr"
	"stompbox/internal/store"
	"stompbox/internal/store/storetest"
	"stompbox/internal/testutil"
	"testing"
	"time"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"", "post,read", false},
		{"post", "post", false},
		{"read, POST", "post,read", false},
		{"admin,read,admin", "read,admin", false},
		{"write", "", true},
		{"post,", "", true},
	}
	for _, tt := range tests {
		got, err := ParseScopes(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseScopes(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"30", now.Add(30 * 24 * time.Hour), false},
		{"7d", now.Add(7 * 24 * time.Hour), false},
		{"2027-01-01", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"2027-01-01T08:00:00+09:00", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), false},
		{"0", time.Time{}, true},
		{"-3", time.Time{}, true},
		{"soon", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := ParseExpiry(tt.in, now)
		if (err != nil) != tt.bad || !got.Equal(tt.want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

// TestTokenScopesAndExpiry: a token has its scopes (post and read by
// default, admin only for an administrator), a token cannot make tokens,
// and an expired token signs nobody in.
func TestTokenScopesAndExpiry(t *testing.T) {
	clock := testutil.NewClock()
	s := storetest.Open(t, clock)
	a := newTestAuth(t, s, false)
	ctx := context.Background()
	admin := mustRegister(t, a, "root") // the first account
	kim := mustRegister(t, a, "kim")

	def, err := a.CreateToken(ctx, kim, "bot")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := a.UserByToken(ctx, def); err != nil || u.Scopes != "post,read" || u.Login == "" {
		t.Fatalf("default token: %+v, %v", u, err)
	}
	if _, err := a.CreateTokenWith(ctx, kim, TokenSpec{Name: "x", Scopes: "admin"}); !errors.Is(err, apperr.ErrForbidden) {
		t.Fatalf("admin scope for a member: %v", err)
	}
	ops, err := a.CreateTokenWith(ctx, admin, TokenSpec{Name: "ops", Scopes: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.UserByToken(ctx, ops)
	if err != nil || !Allows(u, ScopeAdmin) || Allows(u, ScopeRead) {
		t.Fatalf("admin token: %+v, %v", u, err)
	}
	if _, err := a.CreateToken(ctx, u, "child"); !errors.Is(err, apperr.ErrForbidden) {
		t.Fatalf("a token made a token: %v", err)
	}
	if !Allows(store.User{}, ScopeAdmin) {
		t.Fatal("a password or session login must carry all of its account's powers")
	}
	if _, err := a.CreateTokenWith(ctx, kim, TokenSpec{Name: "past", Expires: s.Now().Add(-time.Second)}); !errors.Is(err, apperr.ErrBadRequest) {
		t.Fatalf("expiry in the past: %v", err)
	}
	short, err := a.CreateTokenWith(ctx, kim, TokenSpec{Name: "short", Expires: s.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.UserByToken(ctx, short); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := a.UserByToken(ctx, short); !errors.Is(err, apperr.ErrNotLoggedIn) {
		t.Fatalf("expired token: %v", err)
	}
	if _, err := a.UserByLogin(ctx, "kim", short); !errors.Is(err, apperr.ErrBadCredentials) {
		t.Fatalf("expired token as a STOMP passcode: %v", err)
	}
}
