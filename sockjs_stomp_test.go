package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"stompbox/internal/bench"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func sockjsSessionURL(base, transport string) string {
	return fmt.Sprintf("%s/%03d/%x/%s", base, rand.IntN(1000), rand.Uint64(), transport)
}

func sockjsBase(srv *server) string { return "http://" + srv.HTTPAddr() + proto.DefaultSockJSPath }

// dialSockJSWS connects a test client through SockJS's websocket transport.
func dialSockJSWS(t testing.TB, srv *server) *stompClient {
	t.Helper()
	return dialSockJSWSAt(t, sockjsBase(srv))
}

func dialSockJSWSAt(t testing.TB, base string) *stompClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := "ws" + strings.TrimPrefix(sockjsSessionURL(base, "websocket"), "http")
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: transport.Subprotocols})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(32 << 20)
	return newStompClient(t, func(b []byte) error {
		return c.Write(context.Background(), websocket.MessageText, bench.SockJSArray(b))
	}, func() { c.CloseNow() }, func() ([]byte, error) {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return nil, err
			}
			if chunk, err := bench.SockJSPayload(b); err != nil || chunk != nil {
				return chunk, err
			}
		}
	})
}

// dialSockJSXHR connects a test client through SockJS's xhr-polling transport:
// a POST to /xhr for each batch received, a POST to /xhr_send for each send.
func dialSockJSXHR(t testing.TB, srv *server) *stompClient {
	t.Helper()
	return dialSockJSXHRAt(t, sockjsBase(srv))
}

func dialSockJSXHRAt(t testing.TB, sockjsBase string) *stompClient {
	t.Helper()
	base := sockjsSessionURL(sockjsBase, "")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	post := func(path string, body []byte) ([]byte, int, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return b, resp.StatusCode, err
	}
	// The first poll opens the session; sends before it would get 404.
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

// TestSockJSCarriesSTOMP checks a session's life over SockJS: CONNECT, the
// user from the HTTP layer, a protocol error closing the SockJS session, and
// nothing left behind.
func TestSockJSCarriesSTOMP(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	for name, dial := range map[string]func(testing.TB, *server) *stompClient{"websocket": dialSockJSWS, "xhr": dialSockJSXHR} {
		t.Run(name, func(t *testing.T) {
			c := dialSockJS(t, srv, dial)
			c.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/sj")
			c.send(stomp.CmdSend, strings.Repeat("가", 10000), "destination:/topic/sj")
			if m := c.expect(stomp.CmdMessage); len(m.Body) != 30000 {
				t.Fatalf("body of %d bytes", len(m.Body))
			}
			c.send(stomp.CmdSend, "", "destination:/nowhere")
			c.expect(stomp.CmdError)
			c.expectClosed()
		})
	}
	checkFor(t, "sessions to end", func() bool {
		n := srv.broker.SessionCount()
		for _, sj := range srv.sockjs {
			n += sj.Sessions()
		}
		return n == 0
	})
}

func dialSockJS(t *testing.T, srv *server, dial func(testing.TB, *server) *stompClient) *stompClient {
	c := dial(t, srv)
	c.connect()
	return c
}

// TestSockJSBehindPathPrefixProxy runs STOMP over SockJS through a reverse
// proxy that publishes stompbox under /chat/ and strips the prefix, as the
// README's nginx configuration does.
func TestSockJSBehindPathPrefixProxy(t *testing.T) {
	srv := startServer(t)
	target, _ := url.Parse("http://" + srv.HTTPAddr())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // stream at once, like proxy_buffering off
	front := httptest.NewServer(http.StripPrefix("/chat", proxy))
	t.Cleanup(front.Close)
	base := front.URL + "/chat" + proto.DefaultSockJSPath
	for name, dial := range map[string]func(testing.TB, string) *stompClient{"websocket": dialSockJSWSAt, "xhr": dialSockJSXHRAt} {
		t.Run(name, func(t *testing.T) {
			sub, pub := dial(t, base), dial(t, base)
			sub.connect()
			pub.connect()
			sub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/proxied")
			pub.roundTrip(stomp.CmdSend, "프록시 통과", "destination:/topic/proxied")
			if m := sub.expect(stomp.CmdMessage); string(m.Body) != "프록시 통과" {
				t.Fatalf("body %q", m.Body)
			}
		})
	}
}

// TestSockJSHeartBeatEOL: a STOMP heart-beat over SockJS is an EOL inside
// an array frame, a["\n"], like any other STOMP bytes (the writer escapes
// it for SockJS transports).
func TestSockJSHeartBeatEOL(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.HeartBeat = 300 * time.Millisecond })
	base := sockjsSessionURL(sockjsBase(srv), "")
	post := func(path, body string) string {
		t.Helper()
		resp, err := http.Post(base+path, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("POST %s: read body: %v", path, err)
		}
		return string(got)
	}
	if got := post("xhr", ""); got != "o\n" {
		t.Fatalf("open: %q", got)
	}
	post("xhr_send", `["CONNECT\naccept-version:1.2\nheart-beat:0,300\n\n\u0000"]`)
	if got := post("xhr", ""); !strings.Contains(got, `heart-beat:300,300`) {
		t.Fatalf("CONNECTED: %q", got)
	}
	if got := post("xhr", ""); got != "a[\"\\n\"]\n" {
		t.Fatalf("heart-beat frame %q, want a[\"\\n\"]", got)
	}
}
