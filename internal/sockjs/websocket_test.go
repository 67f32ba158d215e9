package sockjs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/transport"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dial dials a WebSocket URL under env.base ("/000/x/websocket" or
// "/websocket").
func (e *sockjsEnv) dial(path string, protocols ...string) *websocket.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(e.base, "http") + path
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		e.t.Fatalf("dial %s: %v", u, err)
	}
	e.t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func sockjsWSRead(t *testing.T, c *websocket.Conn) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, p, err := c.Read(ctx)
	return string(p), err
}

func sockjsWSExpect(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	got, err := sockjsWSRead(t, c)
	if err != nil || got != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

func sockjsWSSend(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// TestSockJSWebSocketTransports runs the same exchange over the framed and
// raw WebSocket transports: open, messages both ways, application close.
func TestSockJSWebSocketTransports(t *testing.T) {
	tests := []struct {
		name, path, transport string
		send                  []string // client messages
		reads                 []string // what the app's Read returns
		open                  string   // "" for raw
		write                 string   // what the client receives for Write("x","y")
		closing               []string // messages before the WebSocket close
	}{
		{
			name: "framed", path: "/000/s1/websocket", transport: "sockjs-websocket",
			send: []string{"", "[]", `["a","b"]`, `"c"`}, reads: []string{"a", "b", "c"},
			open: "o", write: `a["x","y"]`, closing: []string{`c[3000,"Go away!"]`},
		},
		{
			name: "raw", path: "/websocket", transport: "sockjs-raw-websocket",
			send: []string{"hello\uffff", `["not","decoded"]`}, reads: []string{"hello\uffff", `["not","decoded"]`},
			write: "x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, accepted := sockjsRecorder()
			env := newSockJSEnv(t, Options{Websocket: true}, app)
			c := env.dial(tt.path, "v10.stomp", "v12.stomp", "v11.stomp")
			if c.Subprotocol() != "v12.stomp" {
				t.Fatalf("subprotocol %q", c.Subprotocol())
			}
			if tt.open != "" {
				sockjsWSExpect(t, c, tt.open)
			}
			a := sockjsRecv(t, accepted)
			if a.info.Transport != tt.transport || a.info.Subprotocol != "v12.stomp" || a.info.Remote == "" {
				t.Fatalf("connInfo %+v", a.info)
			}
			for _, m := range tt.send {
				sockjsWSSend(t, c, m)
			}
			for _, want := range tt.reads {
				if got := sockjsRecv(t, a.msgs); string(got) != want {
					t.Fatalf("app read %q, want %q", got, want)
				}
			}
			if err := a.tr.Write(context.Background(), [][]byte{[]byte("x"), []byte("y")}); err != nil {
				t.Fatal(err)
			}
			sockjsWSExpect(t, c, tt.write)
			if tt.name == "raw" {
				sockjsWSExpect(t, c, "y")
			}
			if err := a.tr.Close(transport.CloseSockJSGoAway, sockjsframe.ReasonGoAway); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.closing {
				sockjsWSExpect(t, c, want)
			}
			_, err := sockjsWSRead(t, c)
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != transport.CloseSockJSGoAway || ce.Reason != sockjsframe.ReasonGoAway {
				t.Fatalf("close: %v", err)
			}
			if err := sockjsRecv(t, a.end); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("app Read after Close: %v", err)
			}
			if err := a.tr.Write(context.Background(), [][]byte{[]byte("late")}); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("Write after Close: %v", err)
			}
			sockjsCheckFor(t, 5*time.Second, func() error {
				if n := env.srv.Sessions(); n != 0 {
					return fmt.Errorf("%d sessions", n)
				}
				return nil
			})
		})
	}
}

// TestSockJSWebSocketClientGoesAway checks that a client closing the
// connection ends the session: Read returns io.EOF, no session or goroutine
// is left. The same session id may be used by two connections at once.
func TestSockJSWebSocketClientGoesAway(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, Options{Websocket: true}, app)
	env.do("GET", env.base+"/info", "", nil)
	before := runtime.NumGoroutine()

	c1 := env.dial("/000/same/websocket")
	c2 := env.dial("/000/same/websocket")
	sockjsWSExpect(t, c1, "o")
	sockjsWSExpect(t, c2, "o")
	a, b := sockjsRecv(t, accepted), sockjsRecv(t, accepted)
	if n := env.srv.Sessions(); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	_ = c1.Close(websocket.StatusNormalClosure, "")
	_ = c2.CloseNow()
	for _, s := range []*sockjsAccepted{a, b} {
		if err := sockjsRecv(t, s.end); !errors.Is(err, io.EOF) {
			t.Fatalf("app Read: %v", err)
		}
	}
	sockjsCheckFor(t, 5*time.Second, func() error {
		if n := env.srv.Sessions(); n != 0 {
			return fmt.Errorf("%d sessions", n)
		}
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
}

func TestSockJSWebSocketBrokenFraming(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, Options{Websocket: true}, app)
	c := env.dial("/000/x/websocket")
	sockjsWSExpect(t, c, "o")
	a := sockjsRecv(t, accepted)
	sockjsWSSend(t, c, `["a`)
	// No c frame: the WebSocket is closed at once with 1002.
	_, err := sockjsWSRead(t, c)
	if websocket.CloseStatus(err) != websocket.StatusProtocolError {
		t.Fatalf("read after broken framing: %v", err)
	}
	if err := sockjsRecv(t, a.end); !errors.Is(err, io.EOF) {
		t.Fatalf("app Read: %v", err)
	}
}

func TestSockJSWebSocketHeartbeat(t *testing.T) {
	env := newSockJSEnv(t, Options{Websocket: true, Heartbeat: 20 * time.Millisecond}, nil)
	c := env.dial("/000/x/websocket")
	for _, want := range []string{"o", "h", "h"} {
		sockjsWSExpect(t, c, want)
	}
}

func TestSockJSWebSocketHTTPErrors(t *testing.T) {
	tests := []struct {
		name, method, path string
		opts               Options
		hdr                map[string]string
		status             int
	}{
		{"plain-get", "GET", "/0/0/websocket", Options{Websocket: true}, nil, 400},
		{"connection-close", "GET", "/0/0/websocket", Options{Websocket: true},
			map[string]string{"Upgrade": "WebSocket", "Connection": "close"}, 400},
		{"post-upgrade", "POST", "/0/0/websocket", Options{Websocket: true},
			map[string]string{"Upgrade": "WebSocket", "Connection": "Upgrade"}, 405},
		{"post", "POST", "/0/0/websocket", Options{Websocket: true}, nil, 405},
		{"post-raw", "POST", "/websocket", Options{Websocket: true}, nil, 405},
		{"plain-get-raw", "GET", "/websocket", Options{Websocket: true}, nil, 400},
		{"disabled", "GET", "/0/0/websocket", Options{}, nil, 404},
		{"disabled-raw", "GET", "/websocket", Options{}, nil, 404},
		{"origin-refused", "GET", "/0/0/websocket",
			Options{Websocket: true, CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "http://ok.test" }},
			map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Origin": "http://evil.test",
				"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw=="}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSockJSEnv(t, tt.opts, nil)
			resp, body := env.do(tt.method, env.base+tt.path, "", tt.hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 405 && (body != "" || resp.Header.Get("Allow") != "GET" || resp.Header.Get("Content-Type") != "") {
				t.Fatalf("405: %q %v", body, resp.Header)
			}
		})
	}
}

// TestSockJSHixie76 speaks the hixie-76 draft over a raw socket, as the
// suite's Websocket.test_haproxy does, then exchanges frames.
func TestSockJSHixie76(t *testing.T) {
	env := newSockJSEnv(t, Options{Websocket: true}, nil)
	host := strings.TrimPrefix(env.ts.URL, "http://")
	path := sockjsTestPrefix + "/000/h/websocket"
	nc, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"+
		"Origin: http://%s\r\nSec-WebSocket-Key1: 4 @1  46546xW%%0l 1 5\r\nSec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n\r\n",
		path, host, host)
	br := bufio.NewReader(nc)
	// The headers come before the client sends its 8-byte key.
	head := sockjsReadUntil(t, br, "\r\n\r\n")
	for _, want := range []string{
		"HTTP/1.1 101 ", "\r\nUpgrade: WebSocket\r\n", "\r\nConnection: Upgrade\r\n",
		"\r\nSec-WebSocket-Origin: http://" + host + "\r\n",
		"\r\nSec-WebSocket-Location: ws://" + host + path + "\r\n",
	} {
		if !strings.Contains(head, want) {
			t.Fatalf("handshake lacks %q:\n%s", want, head)
		}
	}
	if strings.Contains(strings.ToLower(head), "content-length") {
		t.Fatalf("handshake has Content-Length:\n%s", head)
	}
	if _, err := nc.Write([]byte("aaaaaaaa")); err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, 16)
	if _, err := io.ReadFull(br, answer); err != nil {
		t.Fatal(err)
	}
	if want := "\xca4\x00\xd8\xa5\x08G\x97,\xd5qZ\xba\xbfC{"; string(answer) != want {
		t.Fatalf("answer %q, want %q", answer, want)
	}
	if got := sockjsReadUntil(t, br, "\xff"); got != "\x00o\xff" {
		t.Fatalf("open frame %q", got)
	}
	if _, err := nc.Write([]byte("\x00[\"a\",\"한\"]\xff")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\x00a[\"a\"]\xff", "\x00a[\"한\"]\xff"} { // echoed one by one
		if got := sockjsReadUntil(t, br, "\xff"); got != want {
			t.Fatalf("echo frame %q, want %q", got, want)
		}
	}
	if _, err := nc.Write([]byte{0xff, 0x00}); err != nil { // closing frame
		t.Fatal(err)
	}
	sockjsCheckFor(t, 5*time.Second, func() error {
		if n := env.srv.Sessions(); n != 0 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
}

func TestSockJSHixie76Key(t *testing.T) {
	tests := []struct {
		key  string
		want uint32
		ok   bool
	}{
		{"4 @1  46546xW%0l 1 5", 829309203, true},
		{"12998 5 Y3 1  .P00", 259970620, true},
		{"123", 0, false},              // no spaces
		{"1 2 3", 0, false},            // 123 / 2 is not whole
		{"99999999999999 9", 0, false}, // overflow
	}
	for _, tt := range tests {
		got, ok := hixie76Key(tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("hixie76Key(%q) = %d, %v; want %d, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

// TestSockJSCloseServerWebSocket checks that Close sends c[3000,"Go away!"]
// and a WebSocket close to framed sessions and waits for their apps.
func TestSockJSCloseServerWebSocket(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, Options{Websocket: true}, app)
	c := env.dial("/000/x/websocket")
	sockjsWSExpect(t, c, "o")
	raw := env.dial("/websocket")
	a, b := sockjsRecv(t, accepted), sockjsRecv(t, accepted)
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		closed <- env.srv.Close(ctx)
	}()
	sockjsWSExpect(t, c, `c[3000,"Go away!"]`)
	for _, conn := range []*websocket.Conn{c, raw} {
		if _, err := sockjsWSRead(t, conn); websocket.CloseStatus(err) != transport.CloseSockJSGoAway {
			t.Fatalf("after go away: %v", err)
		}
	}
	if err := sockjsRecv(t, closed); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*sockjsAccepted{a, b} {
		select {
		case err := <-s.end:
			if !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("app Read: %v", err)
			}
		default:
			t.Fatal("Close returned before the app did")
		}
	}
	if n := env.srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions after Close", n)
	}
}

func TestSockJSWireClose(t *testing.T) {
	long := strings.Repeat("é", 70) // 140 bytes
	tests := []struct {
		code       int
		reason     string
		wantCode   int
		wantReason string
	}{
		{3000, "Go away!", 3000, "Go away!"},
		{1002, "Broken framing.", 1002, "Broken framing."},
		{1008, "Slow consumer", 1008, "Slow consumer"},
		{2010, "Another connection still open", 1000, "Another connection still open"},
		{1005, "", 1000, ""},
		{4999, long, 4999, strings.Repeat("é", 61)},
	}
	for _, tt := range tests {
		code, reason := sockjsWireClose(tt.code, tt.reason)
		if code != tt.wantCode || reason != tt.wantReason {
			t.Errorf("sockjsWireClose(%d, %q) = %d, %q", tt.code, tt.reason, code, reason)
		}
	}
}
