package sockjs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/transport"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSockJSPollingNoLossNoReorder has the app write a numbered stream in
// bursts while the client polls; every message must arrive once, in order.
func TestSockJSPollingNoLossNoReorder(t *testing.T) {
	const total = 500
	app := func(tr transport.Conn, _ transport.Info) {
		ctx := context.Background()
		for i := 0; i < total; {
			var burst [][]byte
			for j := 0; j < 7 && i < total; j++ {
				burst = append(burst, fmt.Appendf(nil, "%d", i))
				i++
			}
			if err := tr.Write(ctx, burst); err != nil {
				return
			}
			runtime.Gosched()
		}
		_, _ = tr.Read(ctx) // until the session ends
	}
	env := newSockJSEnv(t, Options{}, app)
	url := env.sessionURL()
	env.expectBody("POST", url+"/xhr", "", 200, "o\n")
	next := 0
	for polls := 0; next < total; polls++ {
		if polls > total {
			t.Fatalf("too many polls; got up to %d", next)
		}
		_, body := env.do("POST", url+"/xhr", "", nil)
		var msgs []string
		if err := sockjsUnmarshalStrict(strings.TrimSuffix(strings.TrimPrefix(body, "a"), "\n"), &msgs); err != nil {
			t.Fatalf("poll %q: %v", body, err)
		}
		for _, m := range msgs {
			if m != fmt.Sprint(next) {
				t.Fatalf("got %s, want %d", m, next)
			}
			next++
		}
	}
}

// TestSockJSSessionReaped checks the whole life of HTTP sessions: after the
// client stops polling the session is reaped after DisconnectDelay, the app's
// Read returns io.EOF, Sessions() drops to 0 and no goroutine is left.
func TestSockJSSessionReaped(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, Options{DisconnectDelay: 50 * time.Millisecond, Websocket: true}, app)
	env.do("GET", env.base+"/info", "", nil)
	before := runtime.NumGoroutine()

	url := env.sessionURL()
	env.expectBody("POST", url+"/xhr", "", 200, "o\n")
	env.expectBody("POST", url+"/xhr_send", `["a"]`, 204, "")
	a := sockjsRecv(t, accepted)
	if m := sockjsRecv(t, a.msgs); string(m) != "a" {
		t.Fatalf("read %q", m)
	}
	resp := env.open("POST", env.sessionURL()+"/xhr_streaming", "", nil)
	br := bufio.NewReader(resp.Body)
	sockjsReadUntil(t, br, "\n")
	sockjsReadUntil(t, br, "o\n")
	b := sockjsRecv(t, accepted)
	resp.Body.Close() // an abort: the session is interrupted

	for _, s := range []*sockjsAccepted{a, b} {
		if err := sockjsRecv(t, s.end); !errors.Is(err, io.EOF) {
			t.Fatalf("app Read: %v, want io.EOF", err)
		}
	}
	sockjsCheckFor(t, 5*time.Second, func() error {
		if n := env.srv.Sessions(); n != 0 {
			return fmt.Errorf("%d sessions live", n)
		}
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
	// A reaped session is unknown.
	env.expectBody("POST", url+"/xhr_send", `["a"]`, 404, "404 page not found\n")
}

// TestSockJSAbortInterrupts checks that a receiver vanishing mid-poll closes
// the session with 1002 (sockjs-protocol HandlingClose.test_abort_*).
func TestSockJSAbortInterrupts(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, Options{}, app)
	url := env.sessionURL()
	env.expectBody("POST", url+"/xhr", "", 200, "o\n")
	a := sockjsRecv(t, accepted)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/xhr", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := env.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	env.waitAttached(url)
	cancel()
	<-done
	if err := sockjsRecv(t, a.end); !errors.Is(err, io.EOF) {
		t.Fatalf("app Read: %v", err)
	}
	env.expectBody("POST", url+"/xhr", "", 200, "c[1002,\"Connection interrupted\"]\n")
	if err := a.tr.Write(context.Background(), [][]byte{[]byte("late")}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Write after interrupt: %v", err)
	}
}

func TestSockJSSlowConsumer(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, Options{}, app)
	url := env.sessionURL()
	env.expectBody("POST", url+"/xhr", "", 200, "o\n")
	a := sockjsRecv(t, accepted)
	chunk := [][]byte{[]byte(strings.Repeat("x", 64<<10))}
	var err error
	for i := 0; i < 2*sockjsMaxQueueBytes/len(chunk[0]) && err == nil; i++ {
		err = a.tr.Write(context.Background(), chunk)
	}
	if !errors.Is(err, errSockJSSlowConsumer) {
		t.Fatalf("Write past the bound: %v", err)
	}
	if err := sockjsRecv(t, a.end); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("app Read: %v", err)
	}
	env.expectBody("POST", url+"/xhr", "", 200, "c[1008,\"Slow consumer\"]\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.tr.Write(ctx, chunk); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a done ctx: %v", err)
	}
}

// TestSockJSCloseServer checks Close: a streaming receiver gets "Go away!",
// apps return, no session is left and later requests get 503.
func TestSockJSCloseServer(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, Options{}, app)
	url := env.sessionURL()
	resp := env.open("POST", url+"/xhr_streaming", "", nil)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	sockjsReadUntil(t, br, "\n")
	sockjsReadUntil(t, br, "o\n")
	a := sockjsRecv(t, accepted)
	idle := env.sessionURL()
	env.expectBody("POST", idle+"/xhr", "", 200, "o\n")
	b := sockjsRecv(t, accepted)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sockjsReadUntil(t, br, "\n"); got != "c[3000,\"Go away!\"]\n" {
		t.Fatalf("streaming receiver got %q", got)
	}
	for _, s := range []*sockjsAccepted{a, b} {
		if err := sockjsRecv(t, s.end); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("app Read: %v", err)
		}
	}
	if n := env.srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions after Close", n)
	}
	if r, _ := env.do("POST", env.sessionURL()+"/xhr", "", nil); r.StatusCode != 503 {
		t.Fatalf("request after Close: %d", r.StatusCode)
	}
}

// TestSockJSCloseDeadline checks that Close gives up when its ctx ends
// while an app ignores the end of its session.
func TestSockJSCloseDeadline(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	stubborn := func(transport.Conn, transport.Info) {
		started <- struct{}{}
		<-release
	}
	env := newSockJSEnv(t, Options{}, stubborn)
	defer close(release) // before the cleanup's Close, which then succeeds
	env.expectBody("POST", env.sessionURL()+"/xhr", "", 200, "o\n")
	sockjsRecv(t, started)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := env.srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want deadline exceeded", err)
	}
}

// TestSockJSSessionCycles opens and ends many sessions on every transport
// kind and checks that nothing accumulates: sessions, goroutines.
func TestSockJSSessionCycles(t *testing.T) {
	const cycles = 1000
	closeAtOnce := func(tr transport.Conn, _ transport.Info) {
		_ = tr.Close(transport.CloseSockJSGoAway, sockjsframe.ReasonGoAway)
	}
	env := newSockJSEnv(t, Options{Websocket: true, DisconnectDelay: 10 * time.Millisecond}, closeAtOnce)
	env.do("GET", env.base+"/info", "", nil)
	before := runtime.NumGoroutine()
	for i := range cycles {
		url := env.sessionURL()
		switch i % 4 {
		case 0:
			env.expectBody("POST", url+"/xhr", "", 200, "o\n")
		case 1:
			env.expectBody("GET", url+"/jsonp?c=f", "", 200, "/**/f(\"o\");\r\n")
		case 2:
			env.expectBody("GET", url+"/eventsource", "", 200, "\r\ndata: o\r\n\r\ndata: c[3000,\"Go away!\"]\r\n\r\n")
		case 3:
			c := env.dial("/000/x/websocket")
			sockjsWSExpect(t, c, "o")
			sockjsWSExpect(t, c, `c[3000,"Go away!"]`)
			if _, err := sockjsWSRead(t, c); websocket.CloseStatus(err) != transport.CloseSockJSGoAway {
				t.Fatalf("cycle %d: %v", i, err)
			}
		}
	}
	sockjsCheckFor(t, 10*time.Second, func() error {
		if n := env.srv.Sessions(); n != 0 {
			return fmt.Errorf("%d sessions live", n)
		}
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
}
