package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"stompbox/internal/bench"
	"stompbox/internal/proto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadToolSoak runs a few seconds of the soak in process: 6 people in
// 2 rooms, a trickle to 6 subscribers, churn with a slow consumer. It
// checks the report and the samples, not the figures: client and server
// share this process, so its goroutines and RSS are both of theirs.
func TestLoadToolSoak(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	var out, progress bytes.Buffer
	args := []string{"soak", "-url", "http://" + srv.HTTPAddr(), "-pid", strconv.Itoa(os.Getpid()),
		"-duration", "3s", "-sample", "500ms", "-warmup", "500ms",
		"-conns", "6", "-rooms", "2", "-users", "3", "-interval", "100ms",
		"-subs", "6", "-rate", "20", "-churn-rate", "20", "-slow-every", "40"}
	if err := bench.Run(context.Background(), args, &out, &progress); err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), progress.String())
	}
	t.Logf("%s%s", progress.String(), out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	m := parseBenchReport(t, lines[len(lines)-1])
	wantFields(t, m, []string{"samples", "rss_first_mib", "rss_last_mib", "rss_max_mib", "goroutines_first", "goroutines_last",
		"goroutines_max", "heap_inuse_first_mib", "heap_inuse_last_mib", "sent", "delivered", "p99_ms", "churn_cycles", "slow_cut",
		"server_cpu_s", "flat"},
		[]string{"lost", "chat_lost", "fanout_lost", "dup", "ooo", "dropped", "send_errors", "stats_errors", "churn_errors", "slow_uncut"})
	if m["scenario"] != "soak" || m["transport"] != bench.Mixed {
		t.Errorf("report names %v", m)
	}
	if n, _ := strconv.Atoi(m["churn_cycles"]); n == 0 {
		t.Errorf("churn_cycles = %s, want some", m["churn_cycles"])
	}
	for _, k := range []string{"chat_sent", "fanout_sent", "churn_sent", "delivered"} {
		if n, _ := strconv.Atoi(m[k]); n == 0 {
			t.Errorf("%s = %s, want some", k, m[k])
		}
	}
	if m["flat"] != "true" && m["flat"] != "false" {
		t.Errorf("flat = %q", m["flat"])
	}
	samples := lines[:len(lines)-1]
	if len(samples) == 0 || strconv.Itoa(len(samples)) != m["samples"] {
		t.Fatalf("%d sample lines, report says %s:\n%s", len(samples), m["samples"], out.String())
	}
	for _, line := range samples {
		rest, ok := strings.CutPrefix(line, "soak ")
		if !ok {
			t.Fatalf("sample line %q", line)
		}
		s := parseBenchReport(t, "bench "+rest)
		wantFields(t, s, []string{"t_s", "rss_mib", "heap_inuse_mib", "stomp_sessions", "sockjs_sessions", "conns", "msgs_per_s",
			"p99_ms", "lost", "dup", "ooo", "churn", "errors"}, nil)
		if g, _ := strconv.Atoi(s["goroutines"]); g <= 0 {
			t.Errorf("sample without the server's goroutines: %q", line)
		}
	}
}

func TestLoadToolSoakVerdict(t *testing.T) {
	flatRun := func(rss func(i int) int64, g func(i int) int) []bench.SoakSample {
		ss := make([]bench.SoakSample, 8)
		for i := range ss {
			ss[i] = bench.SoakSample{At: time.Duration(i) * time.Second, Rss: rss(i), Ok: true, Stats: proto.AdminStats{Goroutines: g(i)}}
		}
		return ss
	}
	const mib = 1 << 20
	tests := []struct {
		name    string
		samples []bench.SoakSample
		flat    bool
	}{
		{"steady", flatRun(func(int) int64 { return 100 * mib }, func(int) int { return 1000 }), true},
		{"warm-up growth only", flatRun(func(i int) int64 { return int64(min(i, 2)) * 50 * mib }, func(i int) int { return 500 + 250*min(i, 2) }), true},
		{"small absolute goroutine drift", flatRun(func(int) int64 { return 100 * mib }, func(i int) int { return 100 + 3*i }), true},
		{"memory leak", flatRun(func(i int) int64 { return int64(100+10*i) * mib }, func(int) int { return 1000 }), false},
		{"goroutine leak", flatRun(func(int) int64 { return 100 * mib }, func(i int) int { return 1000 + 40*i }), false},
		{"too few samples", flatRun(func(int) int64 { return 100 * mib }, func(int) int { return 1000 })[:3], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if flat, why := bench.SoakVerdict(tc.samples); flat != tc.flat {
				t.Errorf("flat = %v (%s), want %v", flat, why, tc.flat)
			}
		})
	}
	var tr bench.SeqTracker
	tr.Seen = make([]uint64, 3)
	for _, s := range []int{0, 1, 5, 63, 64, 130} {
		tr.Observe(s)
	}
	for _, tc := range []struct {
		n    int64
		want int64
	}{{0, 0}, {1, 1}, {6, 3}, {64, 4}, {65, 5}, {131, 6}, {1000, 6}} {
		if got := bench.SeenBelow(&tr, tc.n); got != tc.want {
			t.Errorf("seenBelow(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// cancelOnSample collects the tool's stdout and cancels the run at the
// first sample line, as a Ctrl-C would.
type cancelOnSample struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnSample) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.HasPrefix(p, []byte("soak ")) {
		w.cancel()
	}
	return w.buf.Write(p)
}

// TestLoadToolSoakInterrupted cancels a minute-long soak at its first
// sample: the load stops, the deliveries drain and the summary comes out.
func TestLoadToolSoakInterrupted(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnSample{cancel: cancel}
	var progress bytes.Buffer
	args := []string{"soak", "-url", "http://" + srv.HTTPAddr(), "-pid", strconv.Itoa(os.Getpid()),
		"-duration", "1m", "-sample", "300ms", "-conns", "4", "-rooms", "2", "-users", "2", "-interval", "100ms",
		"-subs", "3", "-rate", "10", "-churn-rate", "10", "-slow-every", "0"}
	err := bench.Run(ctx, args, out, &progress)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled\n%s\n%s", err, out.buf.String(), progress.String())
	}
	lines := strings.Split(strings.TrimSpace(out.buf.String()), "\n")
	m := parseBenchReport(t, lines[len(lines)-1])
	wantFields(t, m, []string{"samples", "rss_first_mib", "goroutines_last", "flat"}, []string{"lost", "dropped", "churn_errors"})
	if m["samples"] != "1" || m["flat"] != "false" {
		t.Errorf("samples %s flat %s, want 1 and false", m["samples"], m["flat"])
	}
}
