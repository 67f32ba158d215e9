package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"stompbox/internal/auth"
	"stompbox/internal/chat"
	"stompbox/internal/cli"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// access_tokens_test.go: what a credential may do, and for how long
// (issue 22, items 4 and 9): a revoked token's connection cannot post,
// changes made with `stompbox user` while the server runs end the
// connections they concern, tokens have scopes and expire, and webhooks
// go only where an administrator allows.

// roomMessages returns the texts of the fixture's room, as alice reads them.
func (f *accessFixture) roomMessages(t *testing.T) []string {
	t.Helper()
	ms, err := f.srv.chat.Messages(context.Background(), f.alice, f.room.ID, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Message)
	}
	return out
}

// TestRevokedTokenCannotPost: a token revoked behind the server's back
// (another process wrote the database; the periodic check is off) leaves
// its connection open for a moment, but the connection's next SEND is
// refused with an ERROR "session ended" and stores nothing.
func TestRevokedTokenCannotPost(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t) // -login-check is off in tests unless asked for
	_, connect := bobToken(t, f)
	c := dialTCP(t, f.srv.TCPAddr())
	c.connect(append([]string{"accept-version:1.2", "heart-beat:0,0"}, connect...)...)
	c.roundTrip(stomp.CmdSend, chatBody(proto.MsgTalk, f.room.ID, "before"), "destination:/pub/chat/message")

	other, err := store.OpenDir(context.Background(), f.srv.cfg.DataDir, store.Options{CloseCheckpoint: store.CheckpointPassive})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := other.ListTokens(context.Background(), f.bob.ID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens %v, %v", toks, err)
	}
	if err := other.DeleteToken(context.Background(), f.bob.ID, toks[0].Name); err != nil {
		t.Fatal(err)
	}
	other.Close()

	c.send(stomp.CmdSend, chatBody(proto.MsgTalk, f.room.ID, "after revocation"), "destination:/pub/chat/message", "receipt:late")
	if e := c.next(); e.Command != stomp.CmdError || e.Value(stomp.HdrMessage) != "session ended" {
		t.Fatalf("SEND after revocation: %s %v %q, want ERROR \"session ended\"", e.Command, e.Headers, e.Body)
	}
	c.expectClosed()
	for _, m := range f.roomMessages(t) {
		if m == "after revocation" {
			t.Fatal("a revoked token's SEND was stored")
		}
	}
}

// TestUserCommandEndsConnections: `stompbox user passwd` and `stompbox user
// del` write the database of a running single node directly; the server
// finds the ended logins at its next check (-login-check) and closes the
// connections: over STOMP TCP (password login) and WebSocket (cookie).
func TestUserCommandEndsConnections(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t, func(c *Config) { c.LoginCheck = 100 * time.Millisecond })
	addUser(t, f.srv, "carol", testPassword)
	if err := f.srv.chat.AddMember(context.Background(), f.alice, f.room.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		args []string
	}{
		{"bob", []string{"passwd", "bob", "--password-stdin"}},
		{"carol", []string{"del", "carol"}},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			tcp := dialTCP(t, f.srv.TCPAddr())
			tcp.connect("accept-version:1.2", "heart-beat:0,0", "login:"+tc.user, "passcode:"+testPassword)
			ws := dialWSHeader(t, "http://"+f.srv.HTTPAddr(), cookieHeader(loginCookie(t, f.srv, tc.user)))
			ws.connect()
			subscribeRoom(tcp, f.room.ID)
			subscribeRoom(ws, f.room.ID)
			start := time.Now()
			if err := cli.User(context.Background(), f.srv.cfg.DataDir, tc.args, strings.NewReader("a whole new password\n"), io.Discard); err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]*stompClient{"tcp": tcp, "ws": ws} {
				took := expectEnded(t, c, start, func() string { return f.canary(t, f.srv) })
				t.Logf("user %s: the %s connection closed %v after the command began (check every 100ms)", tc.args[0], name, took.Round(time.Millisecond))
			}
		})
	}
}

// TestTokenScopes: a post-only token posts to its rooms but cannot read
// them (history, room subscriptions) or call the administrator's APIs;
// an administrator's token reaches those only with the admin scope, which
// nobody else may have; a token cannot make tokens.
func TestTokenScopes(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t)
	ctx := context.Background()
	postOnly, err := f.srv.auth.CreateTokenWith(ctx, f.bob, auth.TokenSpec{Name: "poster", Scopes: "post"})
	if err != nil {
		t.Fatal(err)
	}
	aliceDefault, err := f.srv.auth.CreateToken(ctx, f.alice, "bot")
	if err != nil {
		t.Fatal(err)
	}
	aliceAdmin, err := f.srv.auth.CreateTokenWith(ctx, f.alice, auth.TokenSpec{Name: "ops", Scopes: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.auth.CreateTokenWith(ctx, f.bob, auth.TokenSpec{Name: "sneaky", Scopes: "post,admin"}); err == nil {
		t.Error("a non-administrator got an admin-scoped token")
	}
	msgs := fmt.Sprintf("/api/rooms/%d/messages", f.room.ID)
	for _, tc := range []struct {
		name, token, method, path, body string
		want                            int
	}{
		{"post-only posts", postOnly, "POST", msgs, `{"type":"TALK","message":"from the bot"}`, http.StatusCreated},
		{"post-only reads no history", postOnly, "GET", msgs, "", http.StatusForbidden},
		{"post-only lists no rooms", postOnly, "GET", "/api/rooms", "", http.StatusForbidden},
		{"post-only no backup", postOnly, "GET", "/api/admin/backup", "", http.StatusForbidden},
		{"token makes no token", postOnly, "POST", "/api/tokens", `{"name":"child"}`, http.StatusForbidden},
		{"admin's default token: no backup", aliceDefault, "GET", "/api/admin/backup", "", http.StatusForbidden},
		{"admin's default token: no stats", aliceDefault, "GET", "/api/admin/stats", "", http.StatusForbidden},
		{"admin's default token reads", aliceDefault, "GET", msgs, "", http.StatusOK},
		{"admin-scoped token: stats", aliceAdmin, "GET", "/api/admin/stats", "", http.StatusOK},
		{"admin-scoped token reads no history", aliceAdmin, "GET", msgs, "", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiCall(t, f.srv, tc.method, tc.path, bearerHeader(tc.token), tc.body); got != tc.want {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
			}
		})
	}
	// Over STOMP: the post-only token posts, but cannot subscribe to the room.
	c := dialTCP(t, f.srv.TCPAddr())
	c.connect("accept-version:1.2", "heart-beat:0,0", "login:bob", "passcode:"+postOnly)
	c.roundTrip(stomp.CmdSend, chatBody(proto.MsgTalk, f.room.ID, "bot over stomp"), "destination:/pub/chat/message")
	c.send(stomp.CmdSubscribe, "", "id:1", "destination:"+proto.RoomDestination(f.room.ID), "receipt:sub")
	if e := c.next(); e.Command != stomp.CmdError || !strings.Contains(e.Value(stomp.HdrMessage), "scope") {
		t.Fatalf("room SUBSCRIBE with a post-only token: %s %v", e.Command, e.Headers)
	}
	// Tokens made over the API take scopes and an expiry.
	cookie := cookieHeader(loginCookie(t, f.srv, "bob"))
	if got := apiCall(t, f.srv, "POST", "/api/tokens", cookie, `{"name":"reader","scopes":["read"],"expires":30}`); got != http.StatusCreated {
		t.Fatalf("POST /api/tokens with scopes and expiry: %d", got)
	}
	if got := apiCall(t, f.srv, "POST", "/api/tokens", cookie, `{"name":"boss","scopes":["admin"]}`); got != http.StatusForbidden {
		t.Fatalf("POST /api/tokens admin scope for a non-administrator: %d, want 403", got)
	}
	toks, _ := f.srv.store.ListTokens(ctx, f.bob.ID)
	for _, tk := range toks {
		if tk.Name == "reader" && (tk.Scopes != "read" || tk.ExpiresAt == nil) {
			t.Fatalf("token reader stored as %+v", tk)
		}
	}
}

// TestExpiredTokenRefused: a token past its expiry is refused over HTTP
// and STOMP, and the connection it opened is closed at the next check.
func TestExpiredTokenRefused(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t, func(c *Config) { c.LoginCheck = 100 * time.Millisecond })
	tok, err := f.srv.auth.CreateTokenWith(context.Background(), f.bob, auth.TokenSpec{Name: "short", Expires: time.Now().Add(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	msgs := fmt.Sprintf("/api/rooms/%d/messages", f.room.ID)
	if got := apiCall(t, f.srv, "GET", msgs, bearerHeader(tok), ""); got != http.StatusOK {
		t.Fatalf("fresh token: %d", got)
	}
	c := dialTCP(t, f.srv.TCPAddr())
	c.connect("accept-version:1.2", "heart-beat:0,0", "login:bob", "passcode:"+tok)
	subscribeRoom(c, f.room.ID)
	expectEnded(t, c, time.Now(), func() string { return f.canary(t, f.srv) })
	if got := apiCall(t, f.srv, "GET", msgs, bearerHeader(tok), ""); got != http.StatusUnauthorized {
		t.Fatalf("expired token over HTTP: %d, want 401", got)
	}
	late := dialTCP(t, f.srv.TCPAddr())
	late.send(stomp.CmdConnect, "", "accept-version:1.2", "login:bob", "passcode:"+tok)
	if e := late.next(); e.Command != stomp.CmdError {
		t.Fatalf("CONNECT with an expired token: %s", e.Command)
	}
}

// TestWebhookAllowList: webhook targets come only from the administrator's
// list, never a loopback, link-local or unspecified address even when
// listed or reached through a name; webhooks are off without a list.
func TestWebhookAllowList(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(hook.Close)
	f := newAccessFixture(t, func(c *Config) {
		c.WebhookAllow = []string{"127.0.0.1", "localhost", "169.254.0.0/16", "::1", "*.hooks.example"}
	})
	cookie := cookieHeader(loginCookie(t, f.srv, "bob"))
	for _, tc := range []struct {
		url  string
		want int
	}{
		{hook.URL + "/hook", http.StatusBadRequest}, // listed, but loopback
		{"http://169.254.169.254/latest/meta-data", http.StatusBadRequest},
		{"http://[::1]:8080/", http.StatusBadRequest},
		{"http://0.0.0.0:8080/", http.StatusBadRequest},
		{"http://localhost:8080/", http.StatusBadRequest},
		{"http://10.1.2.3/hook", http.StatusForbidden}, // not listed
		{"https://ntfy.hooks.example/bob", http.StatusNoContent},
	} {
		if got := apiCall(t, f.srv, "PUT", "/api/me/webhook", cookie, fmt.Sprintf(`{"url":%q}`, tc.url)); got != tc.want {
			t.Errorf("webhook %s: %d, want %d", tc.url, got, tc.want)
		}
	}
	// A loopback URL stored anyway (set before the list existed): the
	// POST is refused where the address is dialed.
	if err := f.srv.store.SetWebhook(context.Background(), f.bob.ID, strings.Replace(hook.URL, "127.0.0.1", "localhost", 1)+"/hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.chat.Post(context.Background(), f.alice, chat.Input{Type: proto.MsgTalk, RoomID: f.room.ID, Message: "hey @bob"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the webhook queue's workers run at once; give them their chance
	if n := hits.Load(); n != 0 {
		t.Fatalf("a webhook reached a loopback address %d times", n)
	}

	off := newAccessFixture(t)
	if got := apiCall(t, off.srv, "PUT", "/api/me/webhook", cookieHeader(loginCookie(t, off.srv, "bob")), `{"url":"https://ntfy.hooks.example/bob"}`); got != http.StatusForbidden {
		t.Errorf("webhook with no allow-list: %d, want 403", got)
	}
}

// TestUserTokenCommandScopes: `stompbox user token` takes --scopes and
// --expires, and gives the admin scope to administrators only.
func TestUserTokenCommandScopes(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t)
	ctx := context.Background()
	var out strings.Builder
	if err := cli.User(ctx, f.srv.cfg.DataDir, []string{"token", "bob", "poster", "--scopes", "post", "--expires", "7"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	u, err := f.srv.auth.UserByToken(ctx, tok)
	if err != nil || u.Scopes != "post" {
		t.Fatalf("token from the command: %+v, %v", u, err)
	}
	toks, _ := f.srv.store.ListTokens(ctx, f.bob.ID)
	if len(toks) != 1 || toks[0].ExpiresAt == nil || toks[0].ExpiresAt.Before(time.Now().Add(6*24*time.Hour)) {
		t.Fatalf("stored %+v", toks)
	}
	if err := cli.User(ctx, f.srv.cfg.DataDir, []string{"token", "bob", "boss", "--scopes", "admin"}, nil, io.Discard); err == nil {
		t.Fatal("the command gave a member an admin-scoped token")
	}
	if err := cli.User(ctx, f.srv.cfg.DataDir, []string{"token", "alice", "ops", "--scopes", "admin"}, nil, io.Discard); err != nil {
		t.Fatalf("admin-scoped token for the administrator: %v", err)
	}
}
