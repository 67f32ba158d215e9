package sockjs

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSockJSTestServer runs runSockJSTestServer on 127.0.0.1:0 until the
// test ends and returns its base URL.
func startSockJSTestServer(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunTestServer(ctx, "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)),
			func(a string) { addrs <- a })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("test server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := sockjsRecv(t, done); err != nil {
			t.Errorf("test server returned %v", err)
		}
	})
	return "http://" + addr
}

// TestSockJSTestServer checks the services the conformance suite relies on.
func TestSockJSTestServer(t *testing.T) {
	base := startSockJSTestServer(t)
	env := &sockjsEnv{t: t, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	tests := []struct {
		name, method, path, body, want string
	}{
		{"echo-info", "GET", "/echo/info", "", `"websocket":true,"cookie_needed":false`},
		{"disabled-info", "GET", "/disabled_websocket_echo/info", "", `"websocket":false,"cookie_needed":false`},
		{"cookie-info", "GET", "/cookie_needed_echo/info", "", `"websocket":true,"cookie_needed":true`},
		{"close-open", "POST", "/close/000/c1/xhr", "", "o\n"},
		{"close-closed", "POST", "/close/000/c1/xhr", "", "c[3000,\"Go away!\"]\n"},
		{"echo-open", "POST", "/echo/000/e1/xhr", "", "o\n"},
		{"echo-send", "POST", "/echo/000/e1/xhr_send", `["a","b"]`, ""},
		{"echo-poll", "POST", "/echo/000/e1/xhr", "", "a[\"a\",\"b\"]\n"},
		{"unknown", "GET", "/nope", "", "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.t = t
			_, body := env.do(tt.method, base+tt.path, tt.body, nil)
			if !strings.Contains(body, tt.want) || tt.want == "" && body != "" {
				t.Fatalf("body %q, want %q", body, tt.want)
			}
		})
	}
	// The suite's 4096-byte streaming limit: one 4 KiB message ends the stream.
	env.t = t
	env.expectBody("POST", base+"/echo/000/e2/xhr", "", 200, "o\n")
	resp := env.open("POST", base+"/echo/000/e2/xhr_streaming", "", nil)
	env.expectBody("POST", base+"/echo/000/e2/xhr_send", `["`+strings.Repeat("x", 4096)+`"]`, 204, "")
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.HasSuffix(string(b), "x\"]\n") {
		t.Fatalf("stream did not end after its limit: %v, %d bytes", err, len(b))
	}
}

// TestSockJSProtocolSuite runs the sockjs-protocol 0.3.x suite (a Python 3
// port of sockjs-protocol.py, kept outside this repository) against the
// test server when SOCKJS_PROTOCOL_SUITE names its directory; python3 needs
// unittest2, ws4py and websocket-client. Every test must pass: there are no
// exclusions.
func TestSockJSProtocolSuite(t *testing.T) {
	dir := os.Getenv("SOCKJS_PROTOCOL_SUITE")
	if dir == "" {
		t.Skip("SOCKJS_PROTOCOL_SUITE not set")
	}
	python := os.Getenv("SOCKJS_PYTHON")
	if python == "" {
		python = "python3"
	}
	base := startSockJSTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(dir, "sockjs-protocol.py"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SOCKJS_URL="+base)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("sockjs-protocol suite: %v", err)
	}
}
