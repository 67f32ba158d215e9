package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"stompbox/internal/auth"
	"stompbox/internal/broker"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"stompbox/internal/testutil"
	"stompbox/internal/transport"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testTimeout bounds every wait in the tests; it is a hang guard, not a
// performance assertion.
const testTimeout = testutil.Timeout

// testLogger is testutil.Logger.
func testLogger(t testing.TB) *slog.Logger { return testutil.Logger(t) }

// startServer runs a server on loopback ports with its data in a temp dir,
// and shuts it down when the test ends.
func startServer(t testing.TB, mutate ...func(*Config)) *server {
	t.Helper()
	return startServerWith(t, nil, mutate...)
}

// startServerWith is startServer with the HTTP handler wrapped, so that a
// test can add pages of its own on the server's origin.
func startServerWith(t testing.TB, wrap func(http.Handler) http.Handler, mutate ...func(*Config)) *server {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", StompAddr: "127.0.0.1:0", DataDir: t.TempDir(), HeartBeat: broker.DefaultHeartBeat}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := newServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		srv.httpSrv.Handler = wrap(srv.httpSrv.Handler)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// startBroker runs a bare broker (open authentication: the login header
// names the user) on a loopback TCP port, for tests of broker features
// that the chat layer would otherwise gate. setup registers handlers and
// hooks before any connection exists.
func startBroker(t testing.TB, cfg broker.Config, setup func(*broker.Broker)) (*broker.Broker, string) {
	t.Helper()
	b := broker.New(cfg, testLogger(t))
	if setup != nil {
		setup(b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := transport.ServeTCP(ln, func(c transport.Conn, info transport.Info) { b.Serve(context.Background(), c, info) }, testLogger(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		ln.Close()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close broker: %v", err)
		}
		ts.Close()
	})
	return b, ln.Addr().String()
}

// addUser registers an account with a password on a running server.
func addUser(t testing.TB, srv *server, name, password string) store.User {
	t.Helper()
	u, err := srv.auth.Register(context.Background(), auth.Registration{Username: name, DisplayName: name, Password: password})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return u
}

// checkFor polls cond until it holds or the test timeout passes.
func checkFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.CheckFor(t, what, cond)
}

// stompClient is a minimal STOMP client for the tests: it writes raw bytes
// or frames and collects every frame the server sends, in order.
type stompClient struct {
	t      testing.TB
	write  func([]byte) error
	close  func()
	frames chan *stomp.Frame
	done   chan error // the read error that ended the connection
	ver    stomp.Version
}

func newStompClient(t testing.TB, write func([]byte) error, closeFn func(), read func() ([]byte, error)) *stompClient {
	c := &stompClient{t: t, write: write, close: closeFn, frames: make(chan *stomp.Frame, 100000), done: make(chan error, 1), ver: stomp.V12}
	p := stomp.NewParser(stomp.Limits{MaxFrame: 16 << 20, MaxHeaders: 1000, MaxHeaderLine: 1 << 20})
	p.Commands = stomp.ServerCommands
	go func() {
		defer close(c.frames)
		for {
			b, err := read()
			if err != nil {
				c.done <- err
				return
			}
			p.Feed(b)
			for {
				f, err := p.Next()
				if err != nil {
					c.done <- err
					return
				}
				if f == nil {
					break
				}
				if f.Command == stomp.CmdConnected {
					if v := f.Value(stomp.HdrVersion); v != "" {
						p.Version = map[string]stomp.Version{"1.0": stomp.V10, "1.1": stomp.V11, "1.2": stomp.V12}[v]
					}
				}
				c.frames <- f
			}
		}
	}()
	t.Cleanup(closeFn)
	return c
}

// dialTCP connects a test client to the STOMP TCP port.
func dialTCP(t testing.TB, addr string) *stompClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	return newStompClient(t, func(b []byte) error { _, err := conn.Write(b); return err },
		func() { conn.Close() },
		func() ([]byte, error) {
			n, err := conn.Read(buf)
			if n > 0 {
				return buf[:n], nil
			}
			return nil, err
		})
}

// dialWS connects a test client to /ws with the given subprotocols.
func dialWS(t testing.TB, srv *server, subprotocols ...string) (*stompClient, *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+srv.HTTPAddr()+"/ws", &websocket.DialOptions{Subprotocols: subprotocols})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(32 << 20)
	return newStompClient(t, func(b []byte) error { return c.Write(context.Background(), websocket.MessageText, b) },
		func() { c.CloseNow() },
		func() ([]byte, error) {
			_, b, err := c.Read(context.Background())
			return b, err
		}), c
}

// sendRaw writes bytes as they are.
func (c *stompClient) sendRaw(s string) {
	c.t.Helper()
	if err := c.write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes a frame built from a command, "key:value" headers and a body.
func (c *stompClient) send(cmd string, body string, headers ...string) {
	c.t.Helper()
	if err := c.trySend(cmd, body, headers...); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// trySend is send that returns the write's error instead of failing the
// test: the server may be gone (a killed cluster node).
func (c *stompClient) trySend(cmd, body string, headers ...string) error {
	f := &stomp.Frame{Command: cmd, Body: []byte(body)}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		f.Add(k, v)
	}
	return c.write(stomp.AppendFrame(nil, f, c.ver))
}

// next returns the next frame, failing the test if none comes in time.
func (c *stompClient) next() *stomp.Frame {
	c.t.Helper()
	return c.nextWithin(testTimeout)
}

// nextWithin is next with another wait: a cluster's write may wait out a
// leader election (publishTimeout) before it is answered.
func (c *stompClient) nextWithin(d time.Duration) *stomp.Frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection closed (%v) while waiting for a frame", <-c.done)
		}
		return f
	case <-time.After(d):
		c.t.Fatalf("no frame in %v", d)
	}
	return nil
}

// expect returns the next frame and fails unless it has the command.
func (c *stompClient) expect(cmd string) *stomp.Frame {
	c.t.Helper()
	f := c.next()
	if f.Command != cmd {
		c.t.Fatalf("got %s %v %q, want %s", f.Command, f.Headers, stomp.Truncate(string(f.Body), 200), cmd)
	}
	return f
}

// expectClosed waits for the server to close the connection.
func (c *stompClient) expectClosed() {
	c.t.Helper()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return
			}
			c.t.Fatalf("got %s %v %q, want the connection closed", f.Command, f.Headers, f.Body)
		case <-time.After(testTimeout):
			c.t.Fatal("timed out waiting for the connection to close")
		}
	}
}

// connect sends CONNECT (1.2 unless headers say otherwise) and returns CONNECTED.
func (c *stompClient) connect(headers ...string) *stomp.Frame {
	c.t.Helper()
	if len(headers) == 0 {
		headers = []string{"accept-version:1.2", "host:stompbox", "heart-beat:0,0"}
	}
	c.send(stomp.CmdConnect, "", headers...)
	f := c.expect(stomp.CmdConnected)
	c.ver = map[string]stomp.Version{"1.0": stomp.V10, "1.1": stomp.V11, "1.2": stomp.V12}[f.Value(stomp.HdrVersion)]
	return f
}

// roundTrip sends a frame with a receipt and waits for it: afterwards the
// server has carried out every earlier frame of this client.
func (c *stompClient) roundTrip(cmd, body string, headers ...string) {
	c.t.Helper()
	id := fmt.Sprintf("r%d", time.Now().UnixNano())
	c.send(cmd, body, append(headers, "receipt:"+id)...)
	f := c.expect(stomp.CmdReceipt)
	if got := f.Value(stomp.HdrReceiptID); got != id {
		c.t.Fatalf("receipt-id %q, want %q", got, id)
	}
}

// sync makes sure every frame the server sent before now has arrived.
func (c *stompClient) sync() {
	c.roundTrip(stomp.CmdBegin+"", "", "transaction:sync-probe")
	c.roundTrip(stomp.CmdAbort, "", "transaction:sync-probe")
}

// goroutineBaseline returns the goroutine count once it has settled.
func goroutineBaseline() int {
	runtime.GC()
	return runtime.NumGoroutine()
}

// dialRawSTOMP opens a WebSocket connection with nothing but a socket: it
// writes the upgrade request and one masked text frame holding hello, then
// reads until the server's RECEIPT has come, and returns the socket. The
// server's frames are not parsed; the RECEIPT's command is looked for.
func dialRawSTOMP(addr string, hello []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
	// A client frame is masked (RFC 6455 §5.3): the server's own header
	// encoder with the mask bit set, then a zero key, which leaves the
	// payload as it is.
	frame := transport.AppendWSHeader(nil, transport.WSOpText, len(hello))
	frame[1] |= 0x80
	frame = append(append(frame, 0, 0, 0, 0), hello...)
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		c.Close()
		return nil, err
	}
	var got []byte
	buf := make([]byte, 512)
	for !bytes.Contains(got, []byte("RECEIPT\n")) {
		n, err := c.Read(buf)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("read %q: %w", got, err)
		}
		got = append(got, buf[:n]...)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// newServer builds a server from cfg without listening yet; the program
// itself starts with newServerContext, which Ctrl-C can abandon.
func newServer(cfg Config, log *slog.Logger) (*server, error) {
	return newServerContext(context.Background(), cfg, log)
}
