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
	if spec := os.Getenv(childNodeEnv); spec != "" {
		os.Exit(runChildNode(spec)) // a cluster node for a test that kills it (cluster_nodes_test.go)
	}
	before := len(ourGoroutines())
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

// waitForGoroutines waits until no more than n goroutines of ours run, and
// returns the stacks of the extra ones if that does not happen in time.
// The runtime's own long-lived goroutines (the signal loop that the fuzzer
// starts) are not counted.
func waitForGoroutines(n int, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		extra := ourGoroutines()
		if len(extra) <= n {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(extra, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ourGoroutines returns the stacks of running goroutines other than the
// runtime's permanent helpers.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "os/signal.signal_recv") {
			continue
		}
		out = append(out, g)
	}
	return out
}
