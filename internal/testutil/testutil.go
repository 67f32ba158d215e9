// Package testutil holds the few helpers every package's tests share: how
// long a test waits for something before it fails, a logger that stays
// silent unless asked, a poll for a condition, a clock the test moves, a recording TCP proxy
// (proxy.go) and a private CA (ca.go). Only tests import it; it
// imports nothing of ours.
package testutil

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeout bounds every wait in a test: generous for a busy 2-core machine
// running tests in parallel, short enough that a hang fails fast.
const Timeout = 10 * time.Second

// Logger returns a logger that writes to the test log when
// STOMPBOX_TEST_LOG is set (use with -v), and is silent otherwise.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("STOMPBOX_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Writer returns an io.Writer that logs each write to t, one line per write.
func Writer(t testing.TB) io.Writer { return tWriter{t} }

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// CheckFor polls cond every few milliseconds and fails the test if it is
// still false after Timeout; what names the condition in the failure.
func CheckFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Clock is a clock that moves only when the test says so. Safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at 2026-01-02 03:04:05 UTC.
func NewClock() *Clock { return NewClockAt(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// NewClockAt returns a clock standing at t.
func NewClockAt(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
