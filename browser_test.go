package main

// This file is the harness for tests that drive a real Chromium through
// chromedp. It owns the browser process of each test: start, per-person browser
// contexts, console capture, screenshots, and shutdown in t.Cleanup.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// defaultChromiumPath is where Debian's chromium package installs the browser;
// .ci/run installs it there. $CHROMIUM overrides it for other machines.
const defaultChromiumPath = "/usr/bin/chromium"

// browserStartTimeout bounds the first command of a browser: process start,
// DevTools handshake and the first tab. A cold start on a busy 2-core CI machine
// takes a few seconds; a hang past this is a broken install, not slowness.
const browserStartTimeout = 60 * time.Second

// browserActionTimeout bounds one evalAsync or screenshot call whose context has
// no deadline, so a page that never settles fails the test with a message
// instead of running into go test's -timeout.
const browserActionTimeout = 30 * time.Second

// browserStopTimeout bounds the graceful close of a browser in t.Cleanup; after
// it the process is killed by cancelling its context.
const browserStopTimeout = 10 * time.Second

// browserWindowWidth and browserWindowHeight fix the viewport so screenshots of
// the same page are comparable between runs and machines.
const (
	browserWindowWidth  = 1280
	browserWindowHeight = 800
)

// screenshotDir is where screenshot writes PNGs, relative to the repository
// root (the package directory, which is go test's working directory). It is
// gitignored; CI keeps it as an artifact.
const screenshotDir = "artifacts/screenshots"

// testInCI reports whether the test runs in CI, where a missing browser or
// node_modules is a broken setup to fail on, never a reason to skip.
func testInCI() bool {
	return os.Getenv("CI") == "true"
}

// skipOrFail skips the test on a developer machine that lacks a tool, and
// fails it in CI, where .ci/run must have installed the tool.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if testInCI() {
		t.Fatalf("%s (CI=true: .ci/run must install it)", msg)
	}
	t.Skip(msg)
}

// chromiumPath returns the browser executable: $CHROMIUM if set, else
// defaultChromiumPath. It calls skipOrFail when the file is not executable.
func chromiumPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = defaultChromiumPath
	}
	if _, err := exec.LookPath(path); err != nil {
		skipOrFail(t, "chromium not found: %v", err)
	}
	return path
}

// lockedBuffer collects the browser's stdout and stderr, which chromedp writes
// from its own goroutine while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// browserOutputTailLines bounds how much of Chromium's own output a failing
// test logs: a crash or a flag error shows in the last lines, and the rest is
// start-up chatter.
const browserOutputTailLines = 40

// browserOutputTail returns the last browserOutputTailLines lines of Chromium's
// output without the D-Bus errors that it prints on every start on a machine
// without a session bus, which would otherwise bury the useful lines.
func browserOutputTail(out string) string {
	var keep []string
	for line := range strings.Lines(out) {
		if strings.Contains(line, ":ERROR:dbus/") || strings.TrimSpace(line) == "" {
			continue
		}
		keep = append(keep, strings.TrimRight(line, "\n"))
	}
	if len(keep) > browserOutputTailLines {
		keep = keep[len(keep)-browserOutputTailLines:]
	}
	return strings.Join(keep, "\n")
}

// newBrowser starts a headless Chromium for this test and returns the chromedp
// context of its first tab, already open on about:blank. Use it directly for a
// one-person test, or pass it to newBrowserContext once per person.
//
// The browser has its own empty profile in t.TempDir, no network access other
// than what the page asks for (background networking, component updates, sync
// and QUIC are off, as the machine has no outside network), and a fixed window
// size. Console messages and uncaught exceptions of the tab go to the test log
// prefixed "browser:". If Chromium is missing, the test is skipped, or fails
// when CI=true.
//
// The returned context must only be used by one goroutine at a time (chromedp
// runs one tab per context). t.Cleanup closes the browser, waits for the
// process to exit, and, if the test failed, logs the browser's own output.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	output := &lockedBuffer{}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,  // CI runs as root, where the sandbox cannot start
		chromedp.DisableGPU, // no GPU on the machines; avoids GPU-process crashes
		chromedp.NoFirstRun, // no welcome page or first-run dialogs
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is small in containers
		chromedp.WindowSize(browserWindowWidth, browserWindowHeight),
		chromedp.CombinedOutput(output),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)

	stopConsole := func() {}
	t.Cleanup(func() {
		stopCtx, stopCancel := context.WithTimeout(ctx, browserStopTimeout)
		if err := chromedp.Cancel(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("browser: close: %v", err)
		}
		stopCancel()
		cancel()      // kills the process if the graceful close timed out, and waits for it
		allocCancel() // waits until the allocator has released the process
		stopConsole()
		if t.Failed() {
			if out := browserOutputTail(output.String()); out != "" {
				t.Logf("browser: process output (last lines, D-Bus noise dropped):\n%s", out)
			}
		}
	})

	startBrowserTab(t, ctx, "start browser")
	stopConsole = logConsole(t, ctx, "browser")
	return ctx
}

// newBrowserContext opens a new tab in its own browser context (like an
// incognito window: no cookies, storage or cache shared with any other) of the
// browser that newBrowser returned, so one test can act as several people.
// name labels its console lines in the test log ("alice:") and is meant for
// screenshot names too.
//
// The returned context belongs to one goroutine at a time; different people's
// contexts may be used from different goroutines. t.Cleanup closes the tab and
// disposes of the browser context, before the browser itself stops.
func newBrowserContext(t *testing.T, browser context.Context, name string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	stopConsole := func() {}
	t.Cleanup(func() {
		cancel() // closes the tab and disposes of its browser context, then returns
		stopConsole()
	})
	startBrowserTab(t, ctx, "open browser context "+name)
	stopConsole = logConsole(t, ctx, name)
	return ctx
}

// startBrowserTab runs a no-op on ctx so that the browser (for a first context)
// and the tab exist before the test derives timeouts from ctx: chromedp ties
// the browser's lifetime to the context of the first Run, so that Run must not
// carry a timeout itself. A start that hangs is reported after
// browserStartTimeout.
func startBrowserTab(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }() // ends when Do returns or ctx is cancelled in Cleanup
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(browserStartTimeout):
		t.Fatalf("%s: no answer after %v", what, browserStartTimeout)
	}
}

// logConsole copies the tab's console messages, uncaught exceptions and
// browser log entries into the test log until ctx ends. It returns a function
// that waits for the copying goroutine to end; call it after ctx is cancelled
// and before the test completes, since t.Log after completion panics.
func logConsole(t *testing.T, ctx context.Context, label string) (wait func()) {
	messages := chromedp.Console(ctx) // subscribes now, so nothing after this is lost
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return // ctx cancelled or the tab closed: the test is ending
			}
			where := ""
			if m.URL != "" {
				where = fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
			}
			t.Logf("%s: console %s%s", label, m, where)
		}
	}()
	return func() { <-done }
}

// withDefaultTimeout returns ctx bounded by browserActionTimeout unless it
// already has a deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, browserActionTimeout)
}

// evalAsync evaluates the JavaScript expression js in the tab of ctx, awaits
// it if it is a Promise, and decodes its JSON value into out (a pointer, or nil
// to ignore the value). A thrown exception or rejected Promise is returned as
// an error carrying the JavaScript message. Write several statements as an
// async IIFE: `(async () => { ...; return x })()`.
//
// The call is bounded by ctx's deadline, or browserActionTimeout if it has none.
func evalAsync(ctx context.Context, js string, out any) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return fmt.Errorf("evaluate %.60q: %w", js, err)
	}
	if out == nil {
		return nil
	}
	if raw == nil {
		return fmt.Errorf("evaluate %.60q: result is undefined", js)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("evaluate %.60q: decode %s: %w", js, raw, err)
	}
	return nil
}

// screenshot saves a full-page PNG of the tab of ctx as
// artifacts/screenshots/<test name>-<name>.png at the repository root, and
// logs its path. A failure to capture or write is a test error, not fatal, so
// it can be called on the way out of a failing test.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 selects PNG
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(screenshotDir, screenshotFileName(t.Name(), name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// screenshotFileName turns a test name such as "TestChat/korean" and a shot
// name into one safe file name.
func screenshotFileName(testName, shot string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
				return r
			}
			return '_'
		}, s)
	}
	return clean(testName) + "-" + clean(shot) + ".png"
}

// TestBrowserHarness proves the harness and the vendored clients work in the
// installed Chromium with no outside network: the page loads
// ui/static/vendor/*.js from a loopback server, the globals the UI relies on
// exist, evalAsync awaits Promises and reports exceptions, two people's
// browser contexts do not share storage, and a screenshot is written.
func TestBrowserHarness(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("GET /vendor/", http.StripPrefix("/vendor/", http.FileServer(http.Dir("ui/static/vendor"))))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "testdata/browser/harness.html")
	})
	srv := httptest.NewServer(mux) // listens on 127.0.0.1:0
	t.Cleanup(srv.Close)

	browser := newBrowser(t)
	alice := newBrowserContext(t, browser, "alice")
	bob := newBrowserContext(t, browser, "bob")
	for _, ctx := range []context.Context{alice, bob} {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
			t.Fatalf("navigate: %v", err)
		}
	}

	t.Run("vendored globals", func(t *testing.T) {
		var types map[string]string
		js := `({sockjs: typeof window.SockJS, client: typeof (window.StompJs && window.StompJs.Client)})`
		if err := evalAsync(alice, js, &types); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"sockjs": "function", "client": "function"}
		if !maps.Equal(types, want) {
			t.Errorf("typeof globals = %v, want %v", types, want)
		}
	})

	t.Run("evalAsync awaits promises", func(t *testing.T) {
		var got int
		if err := evalAsync(alice, `new Promise(r => setTimeout(() => r(41 + 1), 10))`, &got); err != nil {
			t.Fatal(err)
		}
		if got != 42 {
			t.Errorf("got %d, want 42", got)
		}
		if err := evalAsync(alice, `Promise.resolve()`, nil); err != nil {
			t.Errorf("undefined into nil out: %v", err)
		}
	})

	t.Run("evalAsync reports exceptions", func(t *testing.T) {
		err := evalAsync(alice, `(async () => { throw new Error("boom 42") })()`, nil)
		if err == nil || !strings.Contains(err.Error(), "boom 42") {
			t.Errorf("err = %v, want one mentioning boom 42", err)
		}
	})

	t.Run("browser contexts are isolated", func(t *testing.T) {
		if err := evalAsync(alice, `localStorage.setItem("who", "alice")`, nil); err != nil {
			t.Fatal(err)
		}
		var got *string
		if err := evalAsync(bob, `localStorage.getItem("who")`, &got); err != nil {
			t.Fatal(err)
		}
		if got != nil {
			t.Errorf("bob sees alice's localStorage: %q", *got)
		}
	})

	screenshot(t, alice, "vendored-clients")
	want := filepath.Join(screenshotDir, screenshotFileName(t.Name(), "vendored-clients"))
	if st, err := os.Stat(want); err != nil || st.Size() == 0 {
		t.Errorf("screenshot file %s: %v", want, err)
	}
}
