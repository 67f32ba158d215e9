package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"stompbox/internal/service"
)

// TestSystemdNotify runs stompbox as systemd runs a Type=notify service with
// WatchdogSec=, and checks what systemd is told: first READY=1, at which
// point /healthz already answers; then WATCHDOG=1 pings; on shutdown
// STOPPING=1 and nothing after it (the watchdog goroutine has ended). The
// log is JSON (-log-format json), one object a line.
func TestSystemdNotify(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("systemd's notify socket is a unixgram socket")
	}
	// Not t.TempDir: a socket's path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "sbnotify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	env := map[string]string{
		"NOTIFY_SOCKET": sock.LocalAddr().String(),
		"WATCHDOG_USEC": "100000", // a ping every 50 ms
		"WATCHDOG_PID":  strconv.Itoa(os.Getpid()),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer // browser_test.go
	done := make(chan error, 1)
	go func() {
		args := []string{"-addr", "127.0.0.1:0", "-data", t.TempDir(), "-log-format", "json"}
		done <- run(ctx, func() {}, args, func(k string) string { return env[k] }, io.Discard, &logs)
	}()
	buf := make([]byte, 4096)
	next := func(deadline time.Duration) (string, error) {
		sock.SetReadDeadline(time.Now().Add(deadline))
		n, err := sock.Read(buf)
		return string(buf[:n]), err
	}
	must := func(what string) string {
		t.Helper()
		msg, err := next(testTimeout)
		if err != nil {
			select {
			case runErr := <-done:
				t.Fatalf("waiting for %s: run returned %v; log:\n%s", what, runErr, logs.String())
			default:
				t.Fatalf("waiting for %s: %v", what, err)
			}
		}
		return msg
	}

	ready := must("READY=1")
	state, status, _ := strings.Cut(ready, "\n")
	url, ok := strings.CutPrefix(status, "STATUS=serving ")
	if state != service.Ready || !ok {
		t.Fatalf("first notification %q, want READY=1 with STATUS=serving URL", ready)
	}
	resp, err := http.Get(url + "healthz")
	if err != nil {
		t.Fatalf("READY=1 sent before the server answers: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz at READY=1: %s", resp.Status)
	}
	for i := 0; i < 2; i++ {
		if msg := must("WATCHDOG=1"); msg != service.Watchdog {
			t.Fatalf("notification %q while running, want WATCHDOG=1", msg)
		}
	}

	cancel()
	for msg := must("STOPPING=1"); msg != service.Stopping; msg = must("STOPPING=1") {
		if msg != service.Watchdog {
			t.Fatalf("notification %q during shutdown", msg)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after shutdown")
	}
	// run has returned, so every datagram it sent is queued: a read that
	// would block means there were none after STOPPING=1.
	if msg, err := next(0); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after STOPPING=1: %q, %v", msg, err)
	}

	var running bool
	for line := range strings.Lines(logs.String()) {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("-log-format json wrote a line that is not JSON: %q", line)
		}
		running = running || rec.Msg == "stompbox is running"
	}
	if !running {
		t.Errorf("no JSON record of the start in the log:\n%s", logs.String())
	}
}

// TestLogFormatOption checks -log-format and STOMPBOX_LOG_FORMAT.
func TestLogFormatOption(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string
		want    string
		wantErr bool
	}{
		{"default", nil, "", logFormatText, false},
		{"flag", []string{"-log-format", "json"}, "", logFormatJSON, false},
		{"environment", nil, "json", logFormatJSON, false},
		{"flag beats environment", []string{"-log-format=text"}, "json", logFormatText, false},
		{"unknown", []string{"-log-format", "logfmt"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "STOMPBOX_LOG_FORMAT" {
					return tt.env
				}
				return ""
			}
			c, err := parseConfig(tt.args, getenv, &bytes.Buffer{})
			if (err != nil) != tt.wantErr || c.LogFormat != tt.want {
				t.Fatalf("LogFormat %q, err %v; want %q", c.LogFormat, err, tt.want)
			}
		})
	}
}
