package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"stompbox/internal/auth"
	"stompbox/internal/bench"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"stompbox/internal/transport"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// access_end_test.go: access ends when it ends (issue 22, item 4). A
// canary posted after each access-ending event (leaving the room, logout,
// token revocation, password change, account deletion) never reaches the
// old connection, over WebSocket, SockJS (its websocket and xhr-polling
// transports) and STOMP over TCP; the event on one cluster node ends the
// connection on another.

// accessEndWait bounds how long a test waits for an ended connection to
// be told and closed. The server does it as the event's op commits, so
// this is a liveness bound, not a measurement.
const accessEndWait = 5 * time.Second

// accessFixture is a server with alice (the administrator), bob, and a
// private room of alice's that bob is a member of.
type accessFixture struct {
	srv        *server
	alice, bob store.User
	room       store.Room
}

func newAccessFixture(t *testing.T, mutate ...func(*Config)) *accessFixture {
	t.Helper()
	f := &accessFixture{srv: startServer(t, mutate...)}
	f.alice = addUser(t, f.srv, "alice", testPassword)
	f.bob = addUser(t, f.srv, "bob", testPassword)
	ctx := context.Background()
	var err error
	if f.room, err = f.srv.chat.CreateRoom(ctx, f.alice, chat.NewRoom{Name: "secret", Kind: store.RoomPrivate}); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.chat.AddMember(ctx, f.alice, f.room.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	return f
}

// canary posts a message of alice's to the room and returns its text.
func (f *accessFixture) canary(t *testing.T, srv *server) string {
	t.Helper()
	text := fmt.Sprintf("canary-%d", time.Now().UnixNano())
	if _, err := srv.chat.Post(context.Background(), f.alice, chat.Input{Type: proto.MsgTalk, RoomID: f.room.ID, Message: text}); err != nil {
		t.Fatalf("post the canary: %v", err)
	}
	return text
}

// accessDialer connects a test client to base (http://host:port) with
// the headers of an authenticated upgrade (a cookie or a bearer token).
type accessDialer struct {
	name string
	dial func(t testing.TB, base string, h http.Header) *stompClient
}

var accessDialers = []accessDialer{
	{"ws", dialWSHeader},
	{"sockjs-websocket", dialSockJSWSHeader},
	{"sockjs-xhr", dialSockJSXHRHeader},
}

func dialWSHeader(t testing.TB, base string, h http.Header) *stompClient {
	t.Helper()
	return dialWebSocketClient(t, "ws"+strings.TrimPrefix(base, "http")+proto.DefaultWSPath, h, false)
}

func dialSockJSWSHeader(t testing.TB, base string, h http.Header) *stompClient {
	t.Helper()
	return dialWebSocketClient(t, "ws"+strings.TrimPrefix(sockjsSessionURL(base+proto.DefaultSockJSPath, "websocket"), "http"), h, true)
}

func dialWebSocketClient(t testing.TB, url string, h http.Header, sockjs bool) *stompClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h, Subprotocols: transport.Subprotocols})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(32 << 20)
	write := func(b []byte) error { return c.Write(context.Background(), websocket.MessageText, b) }
	read := func() ([]byte, error) {
		_, b, err := c.Read(context.Background())
		return b, err
	}
	if sockjs {
		write = func(b []byte) error {
			return c.Write(context.Background(), websocket.MessageText, bench.SockJSArray(b))
		}
		read = func() ([]byte, error) {
			for {
				_, b, err := c.Read(context.Background())
				if err != nil {
					return nil, err
				}
				if chunk, err := bench.SockJSPayload(b); err != nil || chunk != nil {
					return chunk, err
				}
			}
		}
	}
	return newStompClient(t, write, func() { c.CloseNow() }, read)
}

func dialSockJSXHRHeader(t testing.TB, base string, h http.Header) *stompClient {
	t.Helper()
	session := sockjsSessionURL(base+proto.DefaultSockJSPath, "")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	post := func(path string, body []byte) ([]byte, int, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", session+path, bytes.NewReader(body))
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return b, resp.StatusCode, err
	}
	if b, code, err := post("xhr", nil); err != nil || code != http.StatusOK || string(b) != "o\n" {
		t.Fatalf("open: %q %d %v", b, code, err)
	}
	return newStompClient(t, func(b []byte) error {
		msg, _ := json.Marshal([]string{string(b)})
		_, code, err := post("xhr_send", msg)
		if err == nil && code != http.StatusNoContent {
			err = fmt.Errorf("xhr_send status %d", code)
		}
		return err
	}, cancel, func() ([]byte, error) {
		for {
			b, code, err := post("xhr", nil)
			if err != nil {
				return nil, err
			}
			if code != http.StatusOK {
				return nil, fmt.Errorf("xhr status %d", code)
			}
			if chunk, err := bench.SockJSPayload(b); err != nil || chunk != nil {
				return chunk, err
			}
		}
	})
}

// cookieHeader and bearerHeader are the headers of an authenticated upgrade.
func cookieHeader(c *http.Cookie) http.Header {
	return http.Header{"Cookie": {c.String()}}
}

func bearerHeader(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// subscribeRoom subscribes c to the room's messages and to the personal
// notifications, and waits until both are in place.
func subscribeRoom(c *stompClient, roomID int64) {
	c.t.Helper()
	c.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+proto.RoomDestination(roomID))
	c.roundTrip(stomp.CmdSubscribe, "", "id:notes", "destination:/user/queue/notifications")
}

// expectEnded waits for the server to end c: an ERROR "session ended",
// then the connection closed, within accessEndWait. No frame may carry
// the canary text (canary() is called once the connection is told, as
// the server ends it before it answers the event). It returns how long
// the close took from start.
func expectEnded(t *testing.T, c *stompClient, start time.Time, canary func() string) time.Duration {
	t.Helper()
	var text string
	var took time.Duration
	sawError := false
	deadline := time.After(accessEndWait)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				took = time.Since(start)
				if !sawError {
					t.Fatal("the connection closed without an ERROR frame")
				}
				if text == "" {
					canary() // posted after the close: the closed connection cannot get it
				}
				return took
			}
			if text != "" && strings.Contains(string(f.Body), text) {
				t.Fatalf("the canary reached the old connection: %s %q", f.Command, f.Body)
			}
			if f.Command == stomp.CmdError {
				if msg := f.Value(stomp.HdrMessage); msg != "session ended" {
					t.Fatalf("ERROR %q, want \"session ended\"", msg)
				}
				sawError = true
				if text == "" {
					text = canary()
				}
			}
		case <-deadline:
			if text == "" {
				text = canary()
			}
			// Give the canary its chance to arrive, then fail.
			timeout := time.After(time.Second)
			for {
				select {
				case f, ok := <-c.frames:
					if ok && strings.Contains(string(f.Body), text) {
						t.Fatalf("no ERROR and no close in %v, and the canary reached the old connection", accessEndWait)
					}
					if !ok {
						t.Fatalf("closed without ERROR after %v", accessEndWait)
					}
				case <-timeout:
					t.Fatalf("the connection was neither told nor closed in %v", accessEndWait)
				}
			}
		}
	}
}

// accessEvent is one way access ends, with the credential bob's old
// connection uses (a fresh one per run).
type accessEvent struct {
	name string
	// cred returns the upgrade headers, or for TCP the CONNECT headers,
	// of bob's connection.
	cred func(t *testing.T, f *accessFixture) (http.Header, []string)
	// prepare does the slow part of the event (a login, a password hash)
	// and returns the event itself, which the test times.
	prepare func(t *testing.T, f *accessFixture, h http.Header) func()
}

func bobCookie(t *testing.T, f *accessFixture) (http.Header, []string) {
	return cookieHeader(loginCookie(t, f.srv, "bob")), nil
}

func bobToken(t *testing.T, f *accessFixture) (http.Header, []string) {
	tok, err := f.srv.auth.CreateToken(context.Background(), f.bob, fmt.Sprintf("bot-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	return bearerHeader(tok), []string{"login:bob", "passcode:" + tok}
}

func bobPassword(t *testing.T, f *accessFixture) (http.Header, []string) {
	h, _ := bobCookie(t, f)
	return h, []string{"login:bob", "passcode:" + testPassword}
}

// apiCall sends an HTTP request to srv with headers h and returns the status.
func apiCall(t *testing.T, srv *server, method, path string, h http.Header, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+srv.HTTPAddr()+path, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

var closingEvents = []accessEvent{
	{"logout", bobCookie, func(t *testing.T, f *accessFixture, h http.Header) func() {
		return func() {
			if code := apiCall(t, f.srv, "POST", "/api/logout", h, ""); code != http.StatusNoContent {
				t.Fatalf("logout: %d", code)
			}
		}
	}},
	{"token-revoked", bobToken, func(t *testing.T, f *accessFixture, h http.Header) func() {
		toks, err := f.srv.store.ListTokens(context.Background(), f.bob.ID)
		if err != nil || len(toks) != 1 {
			t.Fatalf("tokens: %v %v", toks, err)
		}
		cookie := cookieHeader(loginCookie(t, f.srv, "bob"))
		return func() {
			if code := apiCall(t, f.srv, "DELETE", "/api/tokens/"+toks[0].Name, cookie, ""); code != http.StatusNoContent {
				t.Fatalf("revoke: %d", code)
			}
		}
	}},
	{"password-changed", bobPassword, func(t *testing.T, f *accessFixture, _ http.Header) func() {
		hash, err := auth.HashPassword("a whole new password", auth.DefaultArgonParams())
		if err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := f.srv.store.SetPassword(context.Background(), "bob", hash); err != nil {
				t.Fatal(err)
			}
		}
	}},
	{"account-deleted", bobPassword, func(t *testing.T, f *accessFixture, _ http.Header) func() {
		return func() {
			if err := f.srv.store.DeleteUser(context.Background(), "bob"); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

// TestAccessEndsClosesConnections: after logout, token revocation,
// password change and account deletion, bob's old connection gets an
// ERROR "session ended" and closes, and a canary posted to the private
// room afterwards never reaches it: over WebSocket, SockJS (websocket and
// xhr-polling) and STOMP over TCP.
func TestAccessEndsClosesConnections(t *testing.T) {
	t.Parallel()
	for _, ev := range closingEvents {
		t.Run(ev.name, func(t *testing.T) {
			t.Parallel()
			dialers := append([]accessDialer(nil), accessDialers...)
			if ev.name != "logout" { // a cookie session has no TCP form
				dialers = append(dialers, accessDialer{"tcp", nil})
			}
			for _, d := range dialers {
				t.Run(d.name, func(t *testing.T) {
					f := newAccessFixture(t)
					h, connectHeaders := ev.cred(t, f)
					var c *stompClient
					if d.dial == nil {
						c = dialTCP(t, f.srv.TCPAddr())
						c.connect(append([]string{"accept-version:1.2", "heart-beat:0,0"}, connectHeaders...)...)
					} else {
						c = d.dial(t, "http://"+f.srv.HTTPAddr(), h)
						c.connect()
					}
					subscribeRoom(c, f.room.ID)
					before := f.canary(t, f.srv) // reaches bob while he may read
					if m := c.expect(stomp.CmdMessage); !strings.Contains(string(m.Body), before) {
						t.Fatalf("bob did not get the room's message before the event: %q", m.Body)
					}
					event := ev.prepare(t, f, h)
					start := time.Now()
					event()
					took := expectEnded(t, c, start, func() string { return f.canary(t, f.srv) })
					t.Logf("%s over %s: connection closed %v after the event began", ev.name, d.name, took.Round(time.Microsecond))
				})
			}
		})
	}
}

// TestAccessEndsOnLeave: when bob leaves the private room, his live
// subscriptions to it end on the spot: his page is told (ACCESS_ENDED
// on /user/queue/notifications), a canary posted afterwards never
// reaches him, and his connection stays open.
func TestAccessEndsOnLeave(t *testing.T) {
	t.Parallel()
	for _, d := range append(accessDialers, accessDialer{"tcp", nil}) {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			f := newAccessFixture(t)
			var c *stompClient
			h, _ := bobCookie(t, f)
			if d.dial == nil {
				c = dialTCP(t, f.srv.TCPAddr())
				c.connect("accept-version:1.2", "heart-beat:0,0", "login:bob", "passcode:"+testPassword)
			} else {
				c = d.dial(t, "http://"+f.srv.HTTPAddr(), h)
				c.connect()
			}
			subscribeRoom(c, f.room.ID)
			c.send(stomp.CmdSubscribe, "", "id:presence", "destination:"+proto.RoomDestination(f.room.ID)+chat.PresenceSuffix, "receipt:presence")
			for f := c.next(); f.Command != stomp.CmdReceipt; f = c.next() {
			}
			if code := apiCall(t, f.srv, "POST", fmt.Sprintf("/api/rooms/%d/leave", f.room.ID), h, ""); code/100 != 2 {
				t.Fatalf("leave: %d", code)
			}
			expectAccessEnded(t, c, f.room.ID, chat.AccessLeft, func() string { return f.canary(t, f.srv) })
		})
	}
}

// expectAccessEnded waits for the ACCESS_ENDED notice for room, then
// posts the canary and checks that it does not arrive while the
// connection stays usable.
func expectAccessEnded(t *testing.T, c *stompClient, roomID int64, reason string, canary func() string) {
	t.Helper()
	deadline := time.After(accessEndWait)
	for told := false; !told; {
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatalf("connection closed (%v): leaving a room must not end it", <-c.done)
			}
			if f.Command != stomp.CmdMessage || f.Value(stomp.HdrDestination) != "/user/queue/notifications" {
				continue // the LEAVE message, presence lists
			}
			var n struct {
				Type   string `json:"type"`
				RoomID int64  `json:"roomId"`
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(f.Body, &n); err != nil || n.Type != proto.MsgAccessEnded || n.RoomID != roomID || n.Reason != reason {
				t.Fatalf("notification %s, want ACCESS_ENDED for room %d (%s)", f.Body, roomID, reason)
			}
			told = true
		case <-deadline:
			text := canary()
			for {
				select {
				case f := <-c.frames:
					if f != nil && strings.Contains(string(f.Body), text) {
						t.Fatalf("not told in %v, and the canary reached the old subscription", accessEndWait)
					}
				case <-time.After(time.Second):
					t.Fatalf("the page was not told in %v", accessEndWait)
				}
			}
		}
	}
	text := canary()
	// Every frame the server sent before the receipt is in once it is.
	c.send(stomp.CmdBegin, "", "transaction:probe", "receipt:probe")
	for {
		f := c.next()
		if strings.Contains(string(f.Body), text) {
			t.Fatalf("the canary reached a subscription that ended: %s", f.Body)
		}
		if f.Command == stomp.CmdReceipt {
			return
		}
	}
}

// TestAccessEndsAcrossCluster: the ending event on node 1, the old
// connection on node 2. lee leaves the private room on node 1 and his
// subscription on node 2 ends (his page there is told); lee logs out on
// node 1 and his connection on node 2 closes. A canary posted on node 1
// afterwards never reaches node 2's old connection.
func TestAccessEndsAcrossCluster(t *testing.T) {
	t.Parallel()
	cc := newClusterChat(t, 3)
	a, b := cc.nodes[0].server(t), cc.nodes[1].server(t)
	ctx := context.Background()
	room, err := a.chat.CreateRoom(ctx, cc.kim, chat.NewRoom{Name: "secret", Kind: store.RoomPrivate})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.chat.AddMember(ctx, cc.kim, room.ID, "lee"); err != nil {
		t.Fatal(err)
	}
	canary := func() string {
		text := fmt.Sprintf("canary-%d", time.Now().UnixNano())
		if _, err := a.chat.Post(ctx, cc.kim, chat.Input{Type: proto.MsgTalk, RoomID: room.ID, Message: text}); err != nil {
			t.Fatalf("post the canary on node 1: %v", err)
		}
		return text
	}
	cookie := cookieHeader(loginCookie(t, b, "lee"))
	cc.waitConverged(cc.nodes...)

	t.Run("leave", func(t *testing.T) {
		c := dialWSHeader(t, "http://"+b.HTTPAddr(), cookie)
		c.connect()
		subscribeRoom(c, room.ID)
		if code := apiCall(t, a, "POST", fmt.Sprintf("/api/rooms/%d/leave", room.ID), cookie, ""); code/100 != 2 {
			t.Fatalf("leave on node 1: %d", code)
		}
		expectAccessEnded(t, c, room.ID, chat.AccessLeft, canary)
	})
	if err := a.chat.AddMember(ctx, cc.kim, room.ID, "lee"); err != nil {
		t.Fatal(err)
	}
	cc.waitConverged(cc.nodes...)
	t.Run("logout", func(t *testing.T) {
		var conns []*stompClient
		for _, d := range accessDialers { // WebSocket and both SockJS transports
			c := d.dial(t, "http://"+b.HTTPAddr(), cookie)
			c.connect()
			subscribeRoom(c, room.ID)
			conns = append(conns, c)
		}
		start := time.Now()
		if code := apiCall(t, a, "POST", "/api/logout", cookie, ""); code != http.StatusNoContent {
			t.Fatalf("logout on node 1: %d", code)
		}
		for i, c := range conns {
			took := expectEnded(t, c, start, canary)
			t.Logf("logout on node 1: the %s connection on node 2 closed %v after", accessDialers[i].name, took.Round(time.Microsecond))
		}
	})
}
