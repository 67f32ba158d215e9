package sockjs

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"stompbox/internal/transport"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var sockjsUpdate = flag.Bool("sockjs-update", false, "rewrite the golden files in testdata/sockjs")

// sockjsEnv runs one SockJS endpoint on a real socket (127.0.0.1:0).
type sockjsEnv struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	base   string // ts.URL + prefix
	client *http.Client
}

const sockjsTestPrefix = "/a/b/stomp" // nested, to show any prefix works

// newSockJSEnv starts an endpoint with opts (Prefix defaults to
// sockjsTestPrefix) running app for every session (nil: echo).
func newSockJSEnv(t *testing.T, opts Options, app func(transport.Conn, transport.Info)) *sockjsEnv {
	t.Helper()
	return newSockJSEnvServer(t, opts, app, nil)
}

// newSockJSEnvServer is newSockJSEnv with the http.Server configured by
// configure (if not nil) before it starts.
func newSockJSEnvServer(t *testing.T, opts Options, app func(transport.Conn, transport.Info), configure func(*http.Server)) *sockjsEnv {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = sockjsTestPrefix
	}
	if app == nil {
		app = sockjsEcho
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := New(opts, log, app)
	ts := httptest.NewUnstartedServer(srv)
	if configure != nil {
		configure(ts.Config)
	}
	ts.Start()
	env := &sockjsEnv{
		t:    t,
		srv:  srv,
		ts:   ts,
		base: ts.URL + opts.Prefix,
		// No keep-alive: every connection ends with its request, so
		// goroutine counts settle.
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close sockjs server: %v", err)
		}
		ts.Close()
	})
	return env
}

// sockjsEcho writes every message back, as the suite's /echo service does.
func sockjsEcho(t transport.Conn, _ transport.Info) {
	ctx := context.Background()
	for {
		m, err := t.Read(ctx)
		if err != nil {
			return
		}
		if err := t.Write(ctx, [][]byte{m}); err != nil {
			return
		}
	}
}

// sockjsAccepted is one session as a recording app saw it.
type sockjsAccepted struct {
	tr   transport.Conn
	info transport.Info
	msgs chan []byte // what Read returned, in order
	end  chan error  // Read's final error
}

// sockjsRecorder returns an app that hands each session to the test and
// records what Read returns; the test writes and closes.
func sockjsRecorder() (func(transport.Conn, transport.Info), chan *sockjsAccepted) {
	ch := make(chan *sockjsAccepted, 16)
	return func(tr transport.Conn, info transport.Info) {
		a := &sockjsAccepted{tr: tr, info: info, msgs: make(chan []byte, 1024), end: make(chan error, 1)}
		ch <- a
		for {
			m, err := tr.Read(context.Background())
			if err != nil {
				a.end <- err
				return
			}
			a.msgs <- m
		}
	}, ch
}

func sockjsRecv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting on channel")
		panic("unreachable")
	}
}

var sockjsSessionCounter atomic.Int64

// sessionURL returns a fresh session URL (server 000).
func (e *sockjsEnv) sessionURL() string {
	return fmt.Sprintf("%s/000/t%d", e.base, sockjsSessionCounter.Add(1))
}

// do performs a request and returns the response with its whole body.
func (e *sockjsEnv) do(method, url, body string, hdr map[string]string) (*http.Response, string) {
	e.t.Helper()
	resp := e.open(method, url, body, hdr)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(b)
}

// open performs a request and returns the response with its body unread.
func (e *sockjsEnv) open(method, url, body string, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// expectBody fails unless a request answers status and body.
func (e *sockjsEnv) expectBody(method, url, body string, status int, want string) {
	e.t.Helper()
	resp, got := e.do(method, url, body, nil)
	if resp.StatusCode != status || got != want {
		e.t.Fatalf("%s %s: got %d %q, want %d %q", method, url, resp.StatusCode, got, status, want)
	}
}

func sockjsReadUntil(t *testing.T, r *bufio.Reader, delim string) string {
	t.Helper()
	s, err := sockjsReadUntilErr(r, delim)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sockjsReadUntilErr reads up to and including delim; safe off the test
// goroutine.
func sockjsReadUntilErr(r *bufio.Reader, delim string) (string, error) {
	var b strings.Builder
	for !strings.HasSuffix(b.String(), delim) {
		c, err := r.ReadByte()
		if err != nil {
			return b.String(), fmt.Errorf("read until %q: %w (got %q)", delim, err, b.String())
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// waitAttached waits until the session at url has a receiver attached.
func (e *sockjsEnv) waitAttached(url string) {
	e.t.Helper()
	id := url[strings.LastIndexByte(url, '/')+1:]
	sockjsCheckFor(e.t, 5*time.Second, func() error {
		sess, _, err := e.srv.session(id, nil, transport.Info{})
		if err != nil || sess == nil {
			return fmt.Errorf("no session %s: %v", id, err)
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		if sess.recv == nil {
			return fmt.Errorf("session %s: no receiver attached", id)
		}
		return nil
	})
}

// sockjsCheckFor polls cond until it returns nil or timeout passes.
func sockjsCheckFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sockjsGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "sockjs", name)
	if *sockjsUpdate {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -sockjs-update)", name, err)
	}
	if string(got) != string(want) {
		t.Fatalf("golden %s mismatch:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestSockJSGreetingAndNotFound(t *testing.T) {
	env := newSockJSEnv(t, Options{Websocket: true}, nil)
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "", 200},
		{"GET", "/", 200},
		{"POST", "/", 405},
		{"GET", "/a", 404},
		{"GET", "/a.html", 404},
		{"GET", "//", 404},
		{"GET", "///", 404},
		{"GET", "/a/a", 404},
		{"GET", "/a/a/", 404},
		{"POST", "//xhr", 404},
		{"POST", "/a./a/xhr", 404},
		{"POST", "/a/a./xhr", 404},
		{"POST", "/./../xhr", 404},
		{"POST", "/a/a/unknown", 404},
		{"POST", "////xhr", 404},
		{"GET", "/a/a/xhr", 405},
		{"POST", "/a/a/eventsource", 405},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			// Raw path: the client must not clean it.
			req, _ := http.NewRequest(tt.method, env.ts.URL, nil)
			req.URL.Path = sockjsTestPrefix + tt.path
			resp, err := env.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 200 {
				if string(body) != "Welcome to SockJS!\n" || resp.Header.Get("Content-Type") != "text/plain; charset=UTF-8" {
					t.Fatalf("greeting %q %q", body, resp.Header.Get("Content-Type"))
				}
			}
			if tt.status == 405 && (resp.Header.Get("Allow") == "" || len(body) != 0 || resp.Header.Get("Content-Type") != "") {
				t.Fatalf("405: Allow %q, body %q, content-type %q", resp.Header.Get("Allow"), body, resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestSockJSInfo(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		origin string
	}{
		{"websocket-origin", Options{Websocket: true}, "http://example.test"},
		{"no-websocket-no-origin", Options{}, ""},
		{"cookie-null-origin", Options{Websocket: true, CookieNeeded: true}, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSockJSEnv(t, tt.opts, nil)
			hdr := map[string]string{}
			if tt.origin != "" {
				hdr["Origin"] = tt.origin
			}
			var entropies []uint32
			for range 2 {
				resp, body := env.do("GET", env.base+"/info", "", hdr)
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=UTF-8" {
					t.Fatalf("info: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				var info sockjsInfo
				if err := sockjsUnmarshalStrict(body, &info); err != nil {
					t.Fatalf("info body %q: %v", body, err)
				}
				if info.Websocket != tt.opts.Websocket || info.CookieNeeded != tt.opts.CookieNeeded ||
					len(info.Origins) != 1 || info.Origins[0] != "*:*" {
					t.Fatalf("info %+v", info)
				}
				entropies = append(entropies, info.Entropy)
				sockjsCheckHeaders(t, resp.Header, map[string]string{
					"Cache-Control":                    "no-store, no-cache, no-transform, must-revalidate, max-age=0",
					"Set-Cookie":                       "",
					"Expires":                          "",
					"Access-Control-Allow-Origin":      sockjsCond(tt.origin != "", tt.origin, "*"),
					"Access-Control-Allow-Credentials": sockjsCond(tt.origin != "", "true", ""),
				})
			}
			if entropies[0] == entropies[1] {
				t.Fatalf("entropy repeated: %v", entropies)
			}
		})
	}
}

func sockjsCond[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

func sockjsCheckHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestSockJSPreflight(t *testing.T) {
	env := newSockJSEnv(t, Options{Websocket: true}, nil)
	tests := []struct {
		path, methods, origin, reqHeaders string
	}{
		{"/info", "OPTIONS, GET", "test", ""},
		{"/info", "OPTIONS, GET", "null", "a, b, c"},
		{"/abc/abc/xhr", "OPTIONS, POST", "test", "a, b, c"},
		{"/abc/abc/xhr_send", "OPTIONS, POST", "http://x.test", ""},
		{"/abc/abc/xhr_streaming", "OPTIONS, POST", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+"/"+tt.origin, func(t *testing.T) {
			hdr := map[string]string{"Access-Control-Request-Method": "POST"}
			if tt.origin != "" {
				hdr["Origin"] = tt.origin
			}
			if tt.reqHeaders != "" {
				hdr["Access-Control-Request-Headers"] = tt.reqHeaders
			}
			resp, body := env.do("OPTIONS", env.base+tt.path, "", hdr)
			if resp.StatusCode != 204 || body != "" {
				t.Fatalf("preflight: %d %q", resp.StatusCode, body)
			}
			sockjsCheckHeaders(t, resp.Header, map[string]string{
				"Cache-Control":                    "public, max-age=31536000",
				"Access-Control-Max-Age":           "31536000",
				"Access-Control-Allow-Methods":     tt.methods,
				"Access-Control-Allow-Origin":      sockjsCond(tt.origin != "", tt.origin, "*"),
				"Access-Control-Allow-Credentials": sockjsCond(tt.origin != "", "true", ""),
				"Access-Control-Allow-Headers":     tt.reqHeaders,
			})
			if exp, err := http.ParseTime(resp.Header.Get("Expires")); err != nil || time.Until(exp) < 300*24*time.Hour {
				t.Fatalf("Expires %q: %v", resp.Header.Get("Expires"), err)
			}
		})
	}
}

func TestSockJSIframe(t *testing.T) {
	env := newSockJSEnv(t, Options{}, nil)
	var etag string
	for _, p := range []string{"/iframe.html", "/iframe-a.html", "/iframe-.html", "/iframe-0.1.2.html",
		"/iframe-0.1.2abc-dirty.2144.html", "/iframe-a.html?t=1234"} {
		t.Run(p, func(t *testing.T) {
			resp, body := env.do("GET", env.base+p, "", nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=UTF-8" {
				t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			sockjsGolden(t, "iframe.html", []byte(body))
			if !strings.HasPrefix(resp.Header.Get("Cache-Control"), "public, max-age=31536000") ||
				resp.Header.Get("Expires") == "" || resp.Header.Get("Last-Modified") != "" || resp.Header.Get("Set-Cookie") != "" {
				t.Fatalf("cache headers %v", resp.Header)
			}
			if etag == "" {
				etag = resp.Header.Get("ETag")
			}
			if resp.Header.Get("ETag") != etag || etag == "" {
				t.Fatalf("ETag %q, want stable %q", resp.Header.Get("ETag"), etag)
			}
		})
	}
	for _, p := range []string{"/iframe.htm", "/iframe", "/IFRAME.HTML", "/IFRAME", "/iframe.HTML", "/iframe.xml", "/iframe-/.html"} {
		t.Run(p, func(t *testing.T) {
			if resp, _ := env.do("GET", env.base+p, "", nil); resp.StatusCode != 404 {
				t.Fatalf("status %d, want 404", resp.StatusCode)
			}
		})
	}
	t.Run("if-none-match", func(t *testing.T) {
		resp, body := env.do("GET", env.base+"/iframe.html", "", map[string]string{"If-None-Match": etag})
		if resp.StatusCode != 304 || body != "" || resp.Header.Get("Content-Type") != "" {
			t.Fatalf("%d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
	})
}

func TestSockJSCookie(t *testing.T) {
	env := newSockJSEnv(t, Options{CookieNeeded: true}, nil)
	tests := []struct {
		name, method, path, cookie, want string
	}{
		{"xhr-dummy", "POST", "/xhr", "", "JSESSIONID=dummy; Path=/"},
		{"xhr-echo", "POST", "/xhr", "abcdef", "JSESSIONID=abcdef; Path=/"},
		{"xhr_streaming", "POST", "/xhr_streaming", "", "JSESSIONID=dummy; Path=/"},
		{"eventsource", "GET", "/eventsource", "", "JSESSIONID=dummy; Path=/"},
		{"htmlfile", "GET", "/htmlfile?c=cb", "", "JSESSIONID=dummy; Path=/"},
		{"jsonp", "GET", "/jsonp?c=cb", "x1", "JSESSIONID=x1; Path=/"},
		{"preflight", "OPTIONS", "/xhr", "", "JSESSIONID=dummy; Path=/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.cookie != "" {
				hdr["Cookie"] = "JSESSIONID=" + tt.cookie
			}
			resp := env.open(tt.method, env.sessionURL()+tt.path, "", hdr)
			resp.Body.Close()
			if got := resp.Header.Get("Set-Cookie"); got != tt.want {
				t.Fatalf("Set-Cookie %q, want %q", got, tt.want)
			}
		})
	}
	for _, p := range []string{"/info", "/iframe.html"} {
		if resp, _ := env.do("GET", env.base+p, "", nil); resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("%s sets a cookie", p)
		}
	}
}

// TestSockJSMountedOnServeMux mounts two endpoints under prefixes of an
// http.ServeMux, as the application does.
func TestSockJSMountedOnServeMux(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	for _, p := range []string{"/ws-stomp", "/deep/er/sockjs"} {
		s := New(Options{Prefix: p}, log, sockjsEcho)
		mux.Handle(p, s)
		mux.Handle(p+"/", s)
		t.Cleanup(func() { _ = s.Close(context.Background()) })
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	env := &sockjsEnv{t: t, ts: ts, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	for _, p := range []string{"/ws-stomp", "/deep/er/sockjs"} {
		env.base = ts.URL + p
		env.expectBody("GET", env.base, "", 200, "Welcome to SockJS!\n")
		url := env.sessionURL()
		env.expectBody("POST", url+"/xhr", "", 200, "o\n")
		env.expectBody("POST", url+"/xhr_send", `["hi"]`, 204, "")
		env.expectBody("POST", url+"/xhr", "", 200, "a[\"hi\"]\n")
	}
}

// TestSockJSServerTimeouts runs the transports behind an http.Server with
// read and write timeouts far shorter than a long poll. net/http lifts the
// read deadline once a request is read and clears both on hijack; receivers
// set a write deadline before each write. Together they must let polls,
// streams and WebSockets outlive the server's timeouts.
func TestSockJSServerTimeouts(t *testing.T) {
	env := newSockJSEnvServer(t, Options{Websocket: true, Heartbeat: 150 * time.Millisecond}, nil, func(s *http.Server) {
		s.ReadTimeout = 50 * time.Millisecond
		s.WriteTimeout = 50 * time.Millisecond
	})
	t.Run("xhr", func(t *testing.T) {
		url := env.sessionURL()
		env.expectBody("POST", url+"/xhr", "", 200, "o\n")
		env.expectBody("POST", url+"/xhr", "", 200, "h\n")
		env.expectBody("POST", url+"/xhr_send", `["x"]`, 204, "")
		env.expectBody("POST", url+"/xhr", "", 200, "a[\"x\"]\n")
	})
	t.Run("xhr_streaming", func(t *testing.T) {
		resp := env.open("POST", env.sessionURL()+"/xhr_streaming", "", nil)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		sockjsReadUntil(t, br, "\n")
		for _, want := range []string{"o\n", "h\n", "h\n"} {
			if got := sockjsReadUntil(t, br, "\n"); got != want {
				t.Fatalf("frame %q, want %q", got, want)
			}
		}
	})
	t.Run("websocket", func(t *testing.T) {
		c := env.dial("/000/x/websocket")
		for _, want := range []string{"o", "h", "h"} {
			sockjsWSExpect(t, c, want)
		}
		sockjsWSSend(t, c, `["x"]`)
		sockjsWSExpect(t, c, `a["x"]`)
	})
}

// TestSockJSCheckOrigin checks that CheckOrigin guards every request, not
// only the WebSocket upgrade.
func TestSockJSCheckOrigin(t *testing.T) {
	allow := func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || o == "http://ok.test"
	}
	env := newSockJSEnv(t, Options{CheckOrigin: allow}, nil)
	url := env.sessionURL()
	tests := []struct {
		name, method, url, origin string
		status                    int
	}{
		{"xhr-refused", "POST", url + "/xhr", "http://evil.test", 403},
		{"xhr-allowed", "POST", url + "/xhr", "http://ok.test", 200},
		{"send-refused", "POST", url + "/xhr_send", "http://evil.test", 403},
		{"send-no-origin", "POST", url + "/xhr_send", "", 204},
		{"info-refused", "GET", env.base + "/info", "http://evil.test", 403},
		{"preflight-refused", "OPTIONS", url + "/xhr", "http://evil.test", 403},
		{"eventsource-refused", "GET", env.sessionURL() + "/eventsource", "null", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.origin != "" {
				hdr["Origin"] = tt.origin
			}
			body := ""
			if strings.HasSuffix(tt.url, "_send") {
				body = `["x"]`
			}
			resp, _ := env.do(tt.method, tt.url, body, hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 200 && resp.Header.Get("Access-Control-Allow-Origin") != tt.origin {
				t.Fatalf("ACAO %q", resp.Header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
}
