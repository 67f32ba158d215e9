package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var sockjsUpdate = flag.Bool("sockjs-update", false, "rewrite the golden files in testdata/sockjs")

// sockjsEnv runs one SockJS endpoint on a real socket (127.0.0.1:0).
type sockjsEnv struct {
	t      *testing.T
	srv    *sockjsServer
	ts     *httptest.Server
	base   string // ts.URL + prefix
	client *http.Client
}

const sockjsTestPrefix = "/a/b/stomp" // nested, to show any prefix works

// newSockJSEnv starts an endpoint with opts (Prefix defaults to
// sockjsTestPrefix) running app for every session (nil: echo).
func newSockJSEnv(t *testing.T, opts sockjsOptions, app func(transport, connInfo)) *sockjsEnv {
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
	srv := newSockJS(opts, log, app)
	ts := httptest.NewServer(srv)
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
func sockjsEcho(t transport, _ connInfo) {
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
	tr   transport
	info connInfo
	msgs chan []byte // what Read returned, in order
	end  chan error  // Read's final error
}

// sockjsRecorder returns an app that hands each session to the test and
// records what Read returns; the test writes and closes.
func sockjsRecorder() (func(transport, connInfo), chan *sockjsAccepted) {
	ch := make(chan *sockjsAccepted, 16)
	return func(tr transport, info connInfo) {
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

// sockjsSessionURL returns a fresh session URL (server 000).
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
		sess, _, err := e.srv.session(id, false, connInfo{})
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
	env := newSockJSEnv(t, sockjsOptions{Websocket: true}, nil)
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
		opts   sockjsOptions
		origin string
	}{
		{"websocket-origin", sockjsOptions{Websocket: true}, "http://example.test"},
		{"no-websocket-no-origin", sockjsOptions{}, ""},
		{"cookie-null-origin", sockjsOptions{Websocket: true, CookieNeeded: true}, "null"},
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
				if err := jsonUnmarshalStrict(body, &info); err != nil {
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
					"Access-Control-Allow-Origin":      cond(tt.origin != "", tt.origin, "*"),
					"Access-Control-Allow-Credentials": cond(tt.origin != "", "true", ""),
				})
			}
			if entropies[0] == entropies[1] {
				t.Fatalf("entropy repeated: %v", entropies)
			}
		})
	}
}

func cond[T any](c bool, a, b T) T {
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
	env := newSockJSEnv(t, sockjsOptions{Websocket: true}, nil)
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
				"Access-Control-Allow-Origin":      cond(tt.origin != "", tt.origin, "*"),
				"Access-Control-Allow-Credentials": cond(tt.origin != "", "true", ""),
				"Access-Control-Allow-Headers":     tt.reqHeaders,
			})
			if exp, err := http.ParseTime(resp.Header.Get("Expires")); err != nil || time.Until(exp) < 300*24*time.Hour {
				t.Fatalf("Expires %q: %v", resp.Header.Get("Expires"), err)
			}
		})
	}
}

func TestSockJSIframe(t *testing.T) {
	env := newSockJSEnv(t, sockjsOptions{}, nil)
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

// TestSockJSTransportFraming opens a session on each receiving transport,
// sends ["x"] with the matching send URL and checks every byte that comes
// back, including a control character and an HTML-sensitive message.
func TestSockJSTransportFraming(t *testing.T) {
	tests := []struct {
		kind, method, query string
		delim               string // ends every frame envelope
		prelude             string // "" for none; "*" for "check length only"
		open, msg, special  string // expected envelopes of o, a["x"], a["</script>\u0000"]
		sendPath, sendBody  string
		sendStatus          int
		sendReply           string
		contentType         string
	}{
		{
			kind: "xhr", method: "POST", delim: "\n", open: "o\n", msg: "a[\"x\"]\n", special: "a[\"</script>\\u0000\"]\n",
			sendPath: "xhr_send", sendBody: `["x"]`, sendStatus: 204,
			contentType: "application/javascript; charset=UTF-8",
		},
		{
			kind: "xhr_streaming", method: "POST", delim: "\n", prelude: strings.Repeat("h", 2048) + "\n",
			open: "o\n", msg: "a[\"x\"]\n", special: "a[\"</script>\\u0000\"]\n",
			sendPath: "xhr_send", sendBody: `["x"]`, sendStatus: 204,
			contentType: "application/javascript; charset=UTF-8",
		},
		{
			kind: "eventsource", method: "GET", delim: "\r\n\r\n", prelude: "\r\n",
			open: "data: o\r\n\r\n", msg: "data: a[\"x\"]\r\n\r\n", special: "data: a[\"</script>\\u0000\"]\r\n\r\n",
			sendPath: "xhr_send", sendBody: `["x"]`, sendStatus: 204,
			contentType: "text/event-stream",
		},
		{
			kind: "htmlfile", method: "GET", query: "?c=%63allback", delim: "</script>\r\n", prelude: "*",
			open: "<script>\np(\"o\");\n</script>\r\n", msg: "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n",
			special:  "<script>\np(\"a[\\\"\\u003c/script\\u003e\\\\u0000\\\"]\");\n</script>\r\n",
			sendPath: "xhr_send", sendBody: `["x"]`, sendStatus: 204,
			contentType: "text/html; charset=UTF-8",
		},
		{
			kind: "jsonp", method: "GET", query: "?c=cb.x_1", delim: ");\r\n",
			open: "/**/cb.x_1(\"o\");\r\n", msg: "/**/cb.x_1(\"a[\\\"x\\\"]\");\r\n",
			special:  "/**/cb.x_1(\"a[\\\"\\u003c/script\\u003e\\\\u0000\\\"]\");\r\n",
			sendPath: "jsonp_send", sendBody: "d=%5B%22x%22%5D", sendStatus: 200, sendReply: "ok",
			contentType: "application/javascript; charset=UTF-8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			app, accepted := sockjsRecorder()
			env := newSockJSEnv(t, sockjsOptions{}, app)
			url := env.sessionURL()
			streaming := tt.prelude != ""

			send := func(body string) {
				t.Helper()
				hdr := map[string]string{}
				if tt.sendPath == "jsonp_send" {
					hdr["Content-Type"] = "application/x-www-form-urlencoded"
				}
				resp, got := env.do("POST", url+"/"+tt.sendPath, body, hdr)
				if resp.StatusCode != tt.sendStatus || got != tt.sendReply {
					t.Fatalf("send: %d %q", resp.StatusCode, got)
				}
				sockjsCheckHeaders(t, resp.Header, map[string]string{
					"Content-Type":  "text/plain; charset=UTF-8",
					"Cache-Control": "no-store, no-cache, no-transform, must-revalidate, max-age=0",
				})
			}

			resp := env.open(tt.method, url+"/"+tt.kind+tt.query, "", nil)
			defer resp.Body.Close()
			sockjsCheckHeaders(t, resp.Header, map[string]string{
				"Content-Type":  tt.contentType,
				"Cache-Control": "no-store, no-cache, no-transform, must-revalidate, max-age=0",
			})
			if streaming && resp.Header.Get("X-Accel-Buffering") != "no" {
				t.Errorf("X-Accel-Buffering %q", resp.Header.Get("X-Accel-Buffering"))
			}
			br := bufio.NewReader(resp.Body)
			switch tt.prelude {
			case "":
			case "*":
				p := sockjsReadUntil(t, br, "\r\n\r\n")
				if len(p) <= 1024 {
					t.Fatalf("htmlfile prelude only %d bytes", len(p))
				}
				sockjsGolden(t, "htmlfile_prelude.html", []byte(strings.TrimRight(p, " \r\n")))
			default:
				if p := sockjsReadUntil(t, br, tt.prelude[len(tt.prelude)-1:]); p != tt.prelude {
					t.Fatalf("prelude %q", p)
				}
			}
			a := sockjsRecv(t, accepted)
			if want := "sockjs-" + strings.ReplaceAll(tt.kind, "_", "-"); a.info.Transport != want {
				t.Errorf("connInfo.Transport %q, want %q", a.info.Transport, want)
			}
			if a.info.Remote == "" {
				t.Error("connInfo.Remote empty")
			}
			next := func(resp **http.Response, br **bufio.Reader, want string) {
				t.Helper()
				if !streaming {
					(*resp).Body.Close()
					*resp = env.open(tt.method, url+"/"+tt.kind+tt.query, "", nil)
					*br = bufio.NewReader((*resp).Body)
				}
				if got := sockjsReadUntil(t, *br, tt.delim); got != want {
					t.Fatalf("frame %q, want %q", got, want)
				}
			}
			// The open frame was the whole first poll.
			if got := sockjsReadUntil(t, br, tt.delim); got != tt.open {
				t.Fatalf("open frame %q, want %q", got, tt.open)
			}
			send(tt.sendBody)
			if m := sockjsRecv(t, a.msgs); string(m) != "x" {
				t.Fatalf("app read %q", m)
			}
			if err := a.tr.Write(context.Background(), [][]byte{[]byte("x")}); err != nil {
				t.Fatal(err)
			}
			next(&resp, &br, tt.msg)
			if err := a.tr.Write(context.Background(), [][]byte{[]byte("</script>\x00")}); err != nil {
				t.Fatal(err)
			}
			next(&resp, &br, tt.special)
			if err := a.tr.Close(3000, "Go away!"); err != nil {
				t.Fatal(err)
			}
			closeFrame := strings.Replace(tt.open, "o", `c[3000,"Go away!"]`, 1)
			if tt.kind == "htmlfile" || tt.kind == "jsonp" {
				closeFrame = strings.Replace(tt.open, "o", `c[3000,\"Go away!\"]`, 1)
			}
			next(&resp, &br, closeFrame)
			if err := sockjsRecv(t, a.end); !errors.Is(err, errTransportClosed) {
				t.Fatalf("app Read after Close: %v", err)
			}
			if streaming { // the response ends after the close frame
				if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
					t.Fatalf("after close frame: %q %v", rest, err)
				}
			}
		})
	}
}

// jsonUnmarshalStrict decodes s into v.
func jsonUnmarshalStrict(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func TestSockJSSendErrors(t *testing.T) {
	env := newSockJSEnv(t, sockjsOptions{}, nil)
	url := env.sessionURL()
	env.expectBody("POST", url+"/xhr", "", 200, "o\n")
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name, path, body string
		hdr              map[string]string
		status           int
		contains         string
	}{
		{"xhr-unknown-session", "/000/nosuch/xhr_send", `["x"]`, nil, 404, ""},
		{"jsonp-unknown-session", "/000/nosuch/jsonp_send", "d=%5B%5D", form, 404, ""},
		{"xhr-broken", "xhr_send", `["x`, nil, 500, "Broken JSON encoding."},
		{"xhr-not-array", "xhr_send", `"x"`, nil, 500, "Broken JSON encoding."},
		{"xhr-not-strings", "xhr_send", `[1]`, nil, 500, "Broken JSON encoding."},
		{"xhr-null-element", "xhr_send", `["a",null]`, nil, 500, "Broken JSON encoding."},
		{"xhr-empty", "xhr_send", ``, nil, 500, "Payload expected."},
		{"xhr-space", "xhr_send", " \n", nil, 500, "Payload expected."},
		{"xhr-too-big", "xhr_send", `["` + strings.Repeat("x", sockjsMaxMessageBytes) + `"]`, nil, 413, ""},
		{"jsonp-broken", "jsonp_send", "d=%5B%22x", form, 500, "Broken JSON encoding."},
		{"jsonp-empty", "jsonp_send", "", form, 500, "Payload expected."},
		{"jsonp-empty-d", "jsonp_send", "d=", form, 500, "Payload expected."},
		{"jsonp-no-d", "jsonp_send", "p=p", form, 500, "Payload expected."},
		{"xhr-empty-array", "xhr_send", `[]`, nil, 204, ""},
		{"jsonp-plain", "jsonp_send", `["%61bc"]`, map[string]string{"Content-Type": "text/plain"}, 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := url + "/" + tt.path
			if strings.HasPrefix(tt.path, "/") {
				u = env.base + tt.path
			}
			resp, body := env.do("POST", u, tt.body, tt.hdr)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.contains) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, body, tt.status, tt.contains)
			}
		})
	}
	// Only the two valid sends reached the app, in order.
	env.expectBody("POST", url+"/xhr", "", 200, "a[\"%61bc\"]\n")
}

func TestSockJSCallbackValidation(t *testing.T) {
	env := newSockJSEnv(t, sockjsOptions{}, nil)
	for _, kind := range []string{"htmlfile", "jsonp"} {
		tests := []struct{ query, want string }{
			{"", `"callback" parameter required`},
			{"?c=", `"callback" parameter required`},
			{"?c=%20", `invalid "callback" parameter`},
			{"?c=*", `invalid "callback" parameter`},
			{"?c=abc(", `invalid "callback" parameter`},
			{"?c=abc%28", `invalid "callback" parameter`},
			{"?c=a%3Cb", `invalid "callback" parameter`},
		}
		for _, tt := range tests {
			t.Run(kind+tt.query, func(t *testing.T) {
				resp, body := env.do("GET", env.base+"/a/a/"+kind+tt.query, "", nil)
				if resp.StatusCode != 500 || !strings.Contains(body, tt.want) {
					t.Fatalf("%d %q", resp.StatusCode, body)
				}
			})
		}
	}
	if env.srv.Sessions() != 0 {
		t.Fatalf("rejected requests created %d sessions", env.srv.Sessions())
	}
}

// TestSockJSResponseLimit checks that a streaming response ends once
// ResponseLimit bytes of frames went out, and that the next response picks up
// the session where it stopped.
func TestSockJSResponseLimit(t *testing.T) {
	tests := []struct {
		kind, method, query, delim string
	}{
		{"xhr_streaming", "POST", "", "\n"},
		{"eventsource", "GET", "", "\r\n\r\n"},
		{"htmlfile", "GET", "?c=cb", "</script>\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			env := newSockJSEnv(t, sockjsOptions{ResponseLimit: 4096}, nil)
			url := env.sessionURL()
			resp := env.open(tt.method, url+"/"+tt.kind+tt.query, "", nil)
			br := bufio.NewReader(resp.Body)
			sockjsReadUntil(t, br, map[string]string{"xhr_streaming": "\n", "eventsource": "\r\n", "htmlfile": "\r\n\r\n"}[tt.kind])
			sent := len(sockjsReadUntil(t, br, tt.delim)) // o counts too
			msg := strings.Repeat("x", 128)
			frames := 0
			for ; sent < 4096; frames++ {
				env.expectBody("POST", url+"/xhr_send", `["`+msg+`"]`, 204, "")
				f := sockjsReadUntil(t, br, tt.delim)
				if !strings.Contains(f, msg) {
					t.Fatalf("frame %q", f)
				}
				sent += len(f)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("response did not end after %d frames: %q %v", frames, rest, err)
			}
			resp.Body.Close()
			// The session lives on: a message sent now reaches the next
			// response.
			env.expectBody("POST", url+"/xhr_send", `["after"]`, 204, "")
			env.expectBody("POST", url+"/xhr", "", 200, "a[\"after\"]\n")
		})
	}
}

func TestSockJSHeartbeat(t *testing.T) {
	env := newSockJSEnv(t, sockjsOptions{Heartbeat: 20 * time.Millisecond}, nil)
	t.Run("xhr", func(t *testing.T) {
		url := env.sessionURL()
		env.expectBody("POST", url+"/xhr", "", 200, "o\n")
		env.expectBody("POST", url+"/xhr", "", 200, "h\n")
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
}

// TestSockJSSecondReceiver checks 2010 for a second receiver while the
// first keeps working.
func TestSockJSSecondReceiver(t *testing.T) {
	for _, kind := range []string{"xhr", "xhr_streaming"} {
		t.Run(kind, func(t *testing.T) {
			env := newSockJSEnv(t, sockjsOptions{}, nil)
			url := env.sessionURL()
			if kind == "xhr" {
				env.expectBody("POST", url+"/xhr", "", 200, "o\n")
			}
			// A polling response has no header before its frame: read it on
			// another goroutine.
			first := make(chan string, 1)
			go func() {
				resp, err := env.client.Post(url+"/"+kind, "text/plain", nil)
				if err != nil {
					first <- err.Error()
					return
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				skip := map[string]int{"xhr": 0, "xhr_streaming": 2}[kind] // prelude, o
				var line string
				for i := 0; i <= skip && err == nil; i++ {
					line, err = sockjsReadUntilErr(br, "\n")
				}
				first <- line + fmt.Sprint(err)
			}()
			env.waitAttached(url)
			env.expectBody("POST", url+"/xhr", "", 200, "c[2010,\"Another connection still open\"]\n")
			if kind == "xhr_streaming" {
				_, body := env.do("POST", url+"/xhr_streaming", "", nil)
				if want := strings.Repeat("h", 2048) + "\nc[2010,\"Another connection still open\"]\n"; body != want {
					t.Fatalf("second streaming receiver got %q", body)
				}
			}
			env.expectBody("POST", url+"/xhr_send", `["still"]`, 204, "")
			if got := sockjsRecv(t, first); got != "a[\"still\"]\n<nil>" {
				t.Fatalf("first receiver got %q", got)
			}
		})
	}
}

// TestSockJSPollingNoLossNoReorder has the app write a numbered stream in
// bursts while the client polls; every message must arrive once, in order.
func TestSockJSPollingNoLossNoReorder(t *testing.T) {
	const total = 500
	app := func(tr transport, _ connInfo) {
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
	env := newSockJSEnv(t, sockjsOptions{}, app)
	url := env.sessionURL()
	env.expectBody("POST", url+"/xhr", "", 200, "o\n")
	next := 0
	for polls := 0; next < total; polls++ {
		if polls > total {
			t.Fatalf("too many polls; got up to %d", next)
		}
		_, body := env.do("POST", url+"/xhr", "", nil)
		var msgs []string
		if err := jsonUnmarshalStrict(strings.TrimSuffix(strings.TrimPrefix(body, "a"), "\n"), &msgs); err != nil {
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
	env := newSockJSEnv(t, sockjsOptions{DisconnectDelay: 50 * time.Millisecond, Websocket: true}, app)
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
	env := newSockJSEnv(t, sockjsOptions{}, app)
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
	if err := a.tr.Write(context.Background(), [][]byte{[]byte("late")}); !errors.Is(err, errTransportClosed) {
		t.Fatalf("Write after interrupt: %v", err)
	}
}

func TestSockJSSlowConsumer(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, sockjsOptions{}, app)
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
	if err := sockjsRecv(t, a.end); !errors.Is(err, errTransportClosed) {
		t.Fatalf("app Read: %v", err)
	}
	env.expectBody("POST", url+"/xhr", "", 200, "c[1008,\"Slow consumer\"]\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.tr.Write(ctx, chunk); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a done ctx: %v", err)
	}
}

func TestSockJSCookie(t *testing.T) {
	env := newSockJSEnv(t, sockjsOptions{CookieNeeded: true}, nil)
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
		s := newSockJS(sockjsOptions{Prefix: p}, log, sockjsEcho)
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

// TestSockJSCloseServer checks Close: a streaming receiver gets "Go away!",
// apps return, no session is left and later requests get 503.
func TestSockJSCloseServer(t *testing.T) {
	app, accepted := sockjsRecorder()
	env := newSockJSEnv(t, sockjsOptions{}, app)
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
		if err := sockjsRecv(t, s.end); !errors.Is(err, errTransportClosed) {
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
