package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"stompbox/internal/apperr"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"stompbox/internal/store/storetest"
	"stompbox/internal/testutil"
	"strings"
	"testing"
	"time"
)

// cheapArgon keeps tests fast; production parameters are tested once below.
var cheapArgon = ArgonParams{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func newTestAuth(t testing.TB, s *store.Store, guests bool) *Service {
	t.Helper()
	a, err := New(s, Options{AllowGuests: guests, Argon: cheapArgon})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustRegister(t testing.TB, a *Service, name string) store.User {
	t.Helper()
	u, err := a.Register(context.Background(), Registration{Username: name, Password: "password-" + name})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return u
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse", DefaultArgonParams())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string with the default parameters", h)
	}
	tests := []struct {
		name, pw, hash string
		ok             bool
		err            error
	}{
		{"right", "correct horse", h, true, nil},
		{"wrong", "correct horsf", h, false, nil},
		{"empty", "", h, false, nil},
		{"not phc", "x", "plain", false, errBadHash},
		{"bcrypt", "x", "$2a$10$abcdefghijklmnopqrstuu", false, errBadHash},
		{"bad params", "x", "$argon2id$v=19$m=x,t=1,p=1$AAAA$AAAA", false, errBadHash},
		{"bad version", "x", "$argon2id$v=16$m=64,t=1,p=1$AAAA$AAAA", false, errBadHash},
		{"bad salt", "x", "$argon2id$v=19$m=64,t=1,p=1$!!$AAAA", false, errBadHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := checkPassword(tt.pw, tt.hash)
			if ok != tt.ok || !errors.Is(err, tt.err) {
				t.Errorf("checkPassword = %v, %v; want %v, %v", ok, err, tt.ok, tt.err)
			}
		})
	}
	h2, _ := HashPassword("correct horse", DefaultArgonParams())
	if h == h2 {
		t.Error("two hashes of one password are equal: salt missing")
	}
}

func TestRegisterRules(t *testing.T) {
	s := storetest.Open(t, nil)
	a := newTestAuth(t, s, false)
	ctx := context.Background()

	first := mustRegister(t, a, "alice")
	if !first.IsAdmin {
		t.Error("first account is not admin")
	}
	second := mustRegister(t, a, "Bob")
	if second.IsAdmin {
		t.Error("second account is admin")
	}
	if second.DisplayName != "Bob" {
		t.Errorf("display name = %q, want the username", second.DisplayName)
	}

	tests := []struct {
		name string
		reg  Registration
		want error
	}{
		{"empty name", Registration{Username: "", Password: "longenough"}, apperr.ErrBadRequest},
		{"space in name", Registration{Username: "a b", Password: "longenough"}, apperr.ErrBadRequest},
		{"at sign", Registration{Username: "@a", Password: "longenough"}, apperr.ErrBadRequest},
		{"leading dot", Registration{Username: ".a", Password: "longenough"}, apperr.ErrBadRequest},
		{"too long", Registration{Username: strings.Repeat("a", 33), Password: "longenough"}, apperr.ErrBadRequest},
		{"short password", Registration{Username: "carol", Password: "short"}, apperr.ErrBadRequest},
		{"huge password", Registration{Username: "carol", Password: strings.Repeat("x", MaxPasswordLen+1)}, apperr.ErrBadRequest},
		{"control in display", Registration{Username: "carol", DisplayName: "a\x00b", Password: "longenough"}, apperr.ErrBadRequest},
		{"same name", Registration{Username: "alice", Password: "longenough"}, apperr.ErrNameTaken},
		{"same name other case", Registration{Username: "ALICE", Password: "longenough"}, apperr.ErrNameTaken},
		{"korean name", Registration{Username: "김철수", Password: "longenough"}, nil},
		{"korean duplicate", Registration{Username: "김철수", Password: "longenough"}, apperr.ErrNameTaken},
		{"accented case fold", Registration{Username: "émile", Password: "longenough"}, nil},
		{"accented upper duplicate", Registration{Username: "ÉMILE", Password: "longenough"}, apperr.ErrNameTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Register(ctx, tt.reg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Register = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRegisterInviteOnly(t *testing.T) {
	s := storetest.Open(t, nil)
	a := newTestAuth(t, s, false)
	ctx := context.Background()
	admin := mustRegister(t, a, "admin")
	bob := mustRegister(t, a, "bob")

	if err := a.SetRegistration(ctx, bob, store.RegistrationInvite); !errors.Is(err, apperr.ErrNotAdmin) {
		t.Fatalf("non-admin SetRegistration = %v", err)
	}
	if err := a.SetRegistration(ctx, admin, "closed"); !errors.Is(err, apperr.ErrBadRequest) {
		t.Fatalf("bad mode = %v", err)
	}
	if err := a.SetRegistration(ctx, admin, store.RegistrationInvite); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx, Registration{Username: "carol", Password: "longenough"}); !errors.Is(err, apperr.ErrRegistrationOff) {
		t.Fatalf("register without invite = %v", err)
	}
	if _, err := a.CreateInvite(ctx, bob); !errors.Is(err, apperr.ErrNotAdmin) {
		t.Fatalf("non-admin invite = %v", err)
	}
	code, err := a.CreateInvite(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx, Registration{Username: "carol", Password: "longenough", Invite: "wrong"}); !errors.Is(err, apperr.ErrBadInvite) {
		t.Fatalf("wrong invite = %v", err)
	}
	// A failed invite rolls the account back with it.
	if _, err := s.UserByName(ctx, "carol"); !errors.Is(err, apperr.ErrUnknownUser) {
		t.Fatalf("account survived a bad invite: %v", err)
	}
	if _, err := a.Register(ctx, Registration{Username: "carol", Password: "longenough", Invite: code}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx, Registration{Username: "dave", Password: "longenough", Invite: code}); !errors.Is(err, apperr.ErrBadInvite) {
		t.Fatalf("reused invite = %v", err)
	}
}

func TestLoginSessions(t *testing.T) {
	clock := testutil.NewClock()
	s := storetest.Open(t, clock)
	a := newTestAuth(t, s, false)
	ctx := context.Background()
	alice := mustRegister(t, a, "alice")

	tests := []struct {
		name, user, pw string
		want           error
	}{
		{"ok", "alice", "password-alice", nil},
		{"ok other case", "ALICE", "password-alice", nil},
		{"wrong password", "alice", "password-bob", apperr.ErrBadCredentials},
		{"unknown user", "nobody", "password-alice", apperr.ErrBadCredentials},
		{"empty", "", "", apperr.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, sess, err := a.Login(ctx, tt.user, tt.pw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Login = %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			if u.ID != alice.ID || len(sess.Token) < 40 {
				t.Fatalf("Login returned %+v, token %q", u, sess.Token)
			}
			got, err := a.UserBySession(ctx, sess.Token)
			if err != nil || got.ID != alice.ID {
				t.Fatalf("UserBySession = %+v, %v", got, err)
			}
		})
	}

	_, sess, err := a.Login(ctx, "alice", "password-alice")
	if err != nil {
		t.Fatal(err)
	}
	// Only the hash is stored.
	var n int
	s.Rdb.QueryRow(`SELECT count(*) FROM login_sessions WHERE token_hash = ?`, []byte(sess.Token)).Scan(&n)
	if n != 0 {
		t.Fatal("session token stored in clear")
	}
	if _, err := a.UserBySession(ctx, sess.Token+"x"); !errors.Is(err, apperr.ErrNotLoggedIn) {
		t.Fatalf("tampered token = %v", err)
	}
	if err := a.Logout(ctx, sess.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UserBySession(ctx, sess.Token); !errors.Is(err, apperr.ErrNotLoggedIn) {
		t.Fatalf("after logout = %v", err)
	}

	_, sess, _ = a.Login(ctx, "alice", "password-alice")
	clock.Advance(defaultSessionTTL + time.Second)
	if _, err := a.UserBySession(ctx, sess.Token); !errors.Is(err, apperr.ErrNotLoggedIn) {
		t.Fatalf("expired session = %v", err)
	}

	// A password change ends existing sessions.
	_, sess, _ = a.Login(ctx, "alice", "password-alice")
	h, _ := HashPassword("new-password", cheapArgon)
	if err := s.SetPassword(ctx, "alice", h); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UserBySession(ctx, sess.Token); !errors.Is(err, apperr.ErrNotLoggedIn) {
		t.Fatalf("session after password change = %v", err)
	}
}

func TestLoginThrottle(t *testing.T) {
	clock := testutil.NewClock()
	s := storetest.Open(t, clock)
	a := newTestAuth(t, s, false)
	ctx := context.Background()
	mustRegister(t, a, "alice")
	for i := range MaxLoginFailures {
		if _, _, err := a.Login(ctx, "alice", "wrong-password"); !errors.Is(err, apperr.ErrBadCredentials) {
			t.Fatalf("attempt %d = %v", i, err)
		}
	}
	if _, _, err := a.Login(ctx, "Alice", "password-alice"); !errors.Is(err, apperr.ErrTooManyAttempts) {
		t.Fatalf("after %d failures = %v, want throttled", MaxLoginFailures, err)
	}
	if apperr.HTTPStatus(apperr.ErrTooManyAttempts) != http.StatusTooManyRequests {
		t.Fatal("throttling does not map to 429")
	}
	clock.Advance(loginFailureWindow)
	if _, _, err := a.Login(ctx, "alice", "password-alice"); err != nil {
		t.Fatalf("after the window = %v", err)
	}
}

// TestLoginThrottlePerAddress: wrong passwords lock the account for the
// address they came from (an IPv6 /64 counts as one), never for its
// owner on another address; Options.MaxLoginFailures sets how many.
func TestLoginThrottlePerAddress(t *testing.T) {
	clock := testutil.NewClock()
	s := storetest.Open(t, clock)
	a, err := New(s, Options{Argon: cheapArgon, MaxLoginFailures: 3})
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, a, "alice")
	from := func(addr string) context.Context { return WithRemote(context.Background(), addr) }
	for _, attacker := range []string{"10.0.0.66:4000", "[2001:db8::66]:4000"} {
		for i := range 3 {
			if _, _, err := a.Login(from(attacker), "alice", "wrong-password"); !errors.Is(err, apperr.ErrBadCredentials) {
				t.Fatalf("%s attempt %d = %v", attacker, i, err)
			}
		}
	}
	for _, addr := range []string{"10.0.0.66:4001", "10.0.0.66", "[2001:db8::67]:1"} {
		if _, _, err := a.Login(from(addr), "alice", "password-alice"); !errors.Is(err, apperr.ErrTooManyAttempts) {
			t.Fatalf("from the guessing address %s = %v, want throttled", addr, err)
		}
	}
	for _, addr := range []string{"10.0.0.7:4000", "[2001:db8:0:1::7]:1"} {
		if _, _, err := a.Login(from(addr), "alice", "password-alice"); err != nil {
			t.Fatalf("owner from %s = %v", addr, err)
		}
	}
	if n := a.FailedLogins("alice"); n != 6 {
		t.Fatalf("FailedLogins = %d, want 6 over both guessing addresses", n)
	}
}

func TestAPITokensAndStompLogin(t *testing.T) {
	s := storetest.Open(t, nil)
	a := newTestAuth(t, s, false)
	ctx := context.Background()
	alice := mustRegister(t, a, "alice")
	mustRegister(t, a, "bob")

	tok, err := a.CreateToken(ctx, alice, "bot")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, apiTokenPrefix) {
		t.Fatalf("token %q lacks prefix", tok)
	}
	if _, err := a.CreateToken(ctx, alice, "bot"); !errors.Is(err, apperr.ErrNameTaken) {
		t.Fatalf("duplicate token name = %v", err)
	}
	if _, err := a.CreateToken(ctx, alice, " "); !errors.Is(err, apperr.ErrBadRequest) {
		t.Fatalf("empty token name = %v", err)
	}

	tests := []struct {
		name, login, passcode string
		want                  error
	}{
		{"password", "alice", "password-alice", nil},
		{"token", "alice", tok, nil},
		{"token other user", "bob", tok, apperr.ErrBadCredentials},
		{"bad token", "alice", apiTokenPrefix + "nope", apperr.ErrBadCredentials},
		{"bad password", "alice", "nope-nope", apperr.ErrBadCredentials},
		{"no guests", "visitor", "", apperr.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := a.UserByLogin(ctx, tt.login, tt.passcode)
			if !errors.Is(err, tt.want) {
				t.Fatalf("UserByLogin = %v, want %v", err, tt.want)
			}
			if err == nil && u.ID != alice.ID {
				t.Fatalf("got user %+v", u)
			}
		})
	}

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if u, err := a.UserFromRequest(r); err != nil || u.ID != alice.ID {
		t.Fatalf("UserFromRequest(Bearer) = %+v, %v", u, err)
	}
	if list, err := a.st.ListTokens(ctx, alice.ID); err != nil || len(list) != 1 || list[0].Name != "bot" {
		t.Fatalf("listTokens = %+v, %v", list, err)
	}
	if err := a.RevokeToken(ctx, alice, "bot"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UserByToken(ctx, tok); !errors.Is(err, apperr.ErrNotLoggedIn) {
		t.Fatalf("revoked token = %v", err)
	}
	if err := a.RevokeToken(ctx, alice, "bot"); !errors.Is(err, apperr.ErrNotFound) {
		t.Fatalf("revoking twice = %v", err)
	}
}

func TestGuests(t *testing.T) {
	s := storetest.Open(t, nil)
	ctx := context.Background()
	off := newTestAuth(t, s, false)
	if _, err := off.Guest(ctx, "visitor"); !errors.Is(err, apperr.ErrGuestsDisabled) {
		t.Fatalf("guest while disabled = %v", err)
	}
	on := newTestAuth(t, s, true)
	g, err := on.Guest(ctx, "visitor")
	if err != nil || !g.IsGuest || g.IsAdmin {
		t.Fatalf("Guest = %+v, %v (a guest must never be the first admin)", g, err)
	}
	again, err := on.UserByLogin(ctx, "Visitor", "")
	if err != nil || again.ID != g.ID {
		t.Fatalf("guest reconnect = %+v, %v", again, err)
	}
	// Guests cannot log in with a password, and cannot take a registered name.
	if _, err := on.UserByLogin(ctx, "visitor", "anything-at-all"); !errors.Is(err, apperr.ErrBadCredentials) {
		t.Fatalf("guest password login = %v", err)
	}
	alice := mustRegister(t, on, "alice")
	if !alice.IsAdmin {
		t.Error("first registered account after a guest is not admin")
	}
	if _, err := on.Guest(ctx, "alice"); !errors.Is(err, apperr.ErrNameTaken) {
		t.Fatalf("guest with a registered name = %v", err)
	}
	if _, err := on.Register(ctx, Registration{Username: "visitor", Password: "longenough"}); !errors.Is(err, apperr.ErrNameTaken) {
		t.Fatalf("register a guest's name = %v", err)
	}
	if _, err := on.CreateToken(ctx, g, "x"); !errors.Is(err, apperr.ErrForbidden) {
		t.Fatalf("guest token = %v", err)
	}
}

func TestSessionCookie(t *testing.T) {
	tests := []struct {
		name   string
		tls    bool
		secure bool
	}{
		{"plain http", false, false},
		{"tls", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/login", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			SetSessionCookie(w, r, Session{Token: "tok", Expires: time.Now().Add(time.Hour), TTL: time.Hour})
			cs := w.Result().Cookies()
			if len(cs) != 1 {
				t.Fatalf("%d cookies", len(cs))
			}
			c := cs[0]
			if c.Name != proto.SessionCookieName || c.Value != "tok" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tt.secure || c.Path != "/" || c.MaxAge != 3600 {
				t.Fatalf("cookie = %+v", c)
			}
		})
	}
}
