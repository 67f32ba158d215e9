package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if goroutines started by the tests outlive them:
// every session, writer, timer and listener must have an owner that ends it.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 && !testing.Short() {
		http.DefaultClient.CloseIdleConnections()
		if leaked := waitForGoroutines(before, 10*time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests (%d at start):\n%s\n", before, leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitForGoroutines waits until no more than n goroutines run, and returns
// the stacks of the extra ones if that does not happen in time.
func waitForGoroutines(n int, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		if runtime.NumGoroutine() <= n {
			return ""
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			var out []string
			for _, g := range strings.Split(stacks, "\n\n") {
				if !strings.Contains(g, "testing.(*M).Run") && !strings.Contains(g, "runtime.goexit") || strings.Contains(g, "stompbox") {
					out = append(out, g)
				}
			}
			return strings.Join(out, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
