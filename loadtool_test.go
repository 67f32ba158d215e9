package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"stompbox/internal/bench"
	"stompbox/internal/latency"
	"stompbox/internal/proto"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseBenchReport splits a "bench k=v k=v" line into a map.
func parseBenchReport(t testing.TB, line string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "bench ")
	if !ok {
		t.Fatalf("report %q does not start with \"bench \"", line)
	}
	m := map[string]string{}
	for _, kv := range strings.Fields(rest) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("report field %q is not key=value", kv)
		}
		m[k] = v
	}
	return m
}

// wantFields checks that the report has each key and that the zero-only
// counters are "0".
func wantFields(t *testing.T, m map[string]string, keys []string, zero []string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("report lacks %s: %v", k, m)
		}
	}
	for _, k := range zero {
		if m[k] != "0" {
			t.Errorf("%s = %q, want 0 (report %v)", k, m[k], m)
		}
	}
}

func TestLoadToolFanout(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{bench.WS, bench.SockJSWS, bench.SockJSXHR} {
		t.Run(transport, func(t *testing.T) {
			srv := startServer(t)
			var out, progress bytes.Buffer
			args := []string{"fanout", "-url", "http://" + srv.HTTPAddr(), "-transport", transport,
				"-subs", "20", "-count", "200", "-window", "10", "-max-lag", "50", "-duration", testTimeout.String(),
				"-pid", strconv.Itoa(os.Getpid()), "-label", "self"}
			if err := bench.Run(context.Background(), args, &out, &progress); err != nil {
				t.Fatalf("bench: %v\n%s\n%s", err, out.String(), progress.String())
			}
			m := parseBenchReport(t, out.String())
			wantFields(t, m, []string{"msgs_per_s", "p50_ms", "p99_ms", "max_ms", "server_cpu_s", "server_rss_peak_mib", "server_rss_mib"},
				[]string{"lost", "dup", "ooo", "subs_dropped"})
			if m["sent"] != "200" || m["delivered"] != "4000" || m["samples"] != "4000" {
				t.Errorf("sent %s delivered %s samples %s, want 200, 4000, 4000", m["sent"], m["delivered"], m["samples"])
			}
			if m["scenario"] != "fanout" || m["transport"] != transport || m["server"] != "self" {
				t.Errorf("report names %v", m)
			}
		})
	}
}

// TestLoadToolRoomsSpread spreads the people over two servers with
// -sub-urls (here two spellings of one server's address: the split, not
// a cluster, is under test): everyone connects and nothing is lost.
func TestLoadToolRoomsSpread(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	base := "http://" + srv.HTTPAddr()
	var out, progress bytes.Buffer
	args := []string{"rooms", "-url", base, "-sub-urls", base + "," + base + "/", "-conns", "5", "-rooms", "2", "-users", "5",
		"-interval", "20ms", "-count", "40", "-duration", "5s"}
	if err := bench.Run(context.Background(), args, &out, &progress); err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), progress.String())
	}
	m := parseBenchReport(t, out.String())
	// Rooms of 3 and 2 people (perRoom 3): deliveries depend on who spoke,
	// so check that nothing was lost and all five were there.
	if m["servers"] != "2" || m["sent"] != "40" || m["lost"] != "0" || m["conns"] != "5" {
		t.Errorf("report %v", m)
	}
}

func TestLoadToolRooms(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	var out, progress bytes.Buffer
	// 6 people in 2 rooms as 3 accounts, a message every 20 ms each, 60 in all.
	args := []string{"rooms", "-url", "http://" + srv.HTTPAddr(), "-conns", "6", "-rooms", "2", "-users", "3",
		"-interval", "20ms", "-count", "60", "-duration", "5s"}
	if err := bench.Run(context.Background(), args, &out, &progress); err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), progress.String())
	}
	m := parseBenchReport(t, out.String())
	wantFields(t, m, []string{"msgs_per_s", "p50_ms", "p99_ms", "max_ms", "setup_s"},
		[]string{"lost", "dup", "ooo", "refused", "send_errors", "dropped"})
	// Each message reaches the 3 people of its room, its sender included.
	if m["sent"] != "60" || m["delivered"] != "180" {
		t.Errorf("sent %s delivered %s, want 60 and 180", m["sent"], m["delivered"])
	}
	// The server's writer saw the same run: each message one write, in at
	// least one commit (the tool reads these as the first account, the
	// fresh server's administrator).
	commits, _ := strconv.Atoi(m["store_commits"])
	if m["store_writes"] != "60" || commits < 1 || commits > 60 {
		t.Errorf("store saw %s writes in %s commits, want 60 in 1..60 (report %v)", m["store_writes"], m["store_commits"], m)
	}
	wait, _ := strconv.ParseFloat(m["store_wait_p99_ms"], 64)
	p99, _ := strconv.ParseFloat(m["store_commit_p99_ms"], 64)
	most, _ := strconv.ParseFloat(m["store_commit_max_ms"], 64)
	if wait <= 0 || p99 <= 0 || p99 > most {
		t.Errorf("store wait p99 %v ms, commit p99 %v ms, max %v ms", wait, p99, most)
	}
}

func TestLoadToolIdle(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	var out, progress bytes.Buffer
	args := []string{"idle", "-url", "http://" + srv.HTTPAddr(), "-conns", "50", "-hold", "10ms", "-duration", "8s",
		"-pid", strconv.Itoa(os.Getpid())}
	if err := bench.Run(context.Background(), args, &out, &progress); err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), progress.String())
	}
	m := parseBenchReport(t, out.String())
	wantFields(t, m, []string{"rss_per_conn_kib", "server_rss_mib"}, []string{"connect_failed", "dropped", "lost"})
	if m["held"] != "50" || m["check_received"] != "50" {
		t.Errorf("held %s received %s, want 50 and 50", m["held"], m["check_received"])
	}
}

func TestLoadToolRefusesRemoteServers(t *testing.T) {
	for _, u := range []string{"http://192.0.2.1:8080", "ftp://127.0.0.1", "http://10.0.0.1"} {
		cfg, err := bench.ParseArgs([]string{"fanout", "-url", u}, &bytes.Buffer{})
		if err == nil {
			t.Errorf("%s accepted: %+v", u, cfg)
		}
	}
}

func TestLoadToolHistogram(t *testing.T) {
	var h latency.Hist
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * 100 * time.Microsecond) // 0.1 ms … 100 ms
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if got < tc.want || float64(got) > float64(tc.want)*1.02 {
			t.Errorf("quantile(%v) = %v, want %v within +2%%", tc.q, got, tc.want)
		}
	}
	s := bench.NewSeqTracker(4)
	for _, seq := range []int{0, 2, 1, 2, 70} {
		s.Observe(seq)
	}
	if s.Distinct != 4 || s.Dup != 1 || s.Ooo != 1 {
		t.Errorf("distinct %d dup %d ooo %d, want 4 1 1", s.Distinct, s.Dup, s.Ooo)
	}
}

// BenchmarkLoadToolFanout runs the fanout scenario in process (100
// subscribers, 500 messages of 256 bytes per iteration) so that
// -cpuprofile and -memprofile show where the server spends its time; the
// client's share of the profile is the load tool's.
func BenchmarkLoadToolFanout(b *testing.B) {
	srv := startServer(b)
	cfg := bench.Config{Scenario: "fanout", URL: "http://" + srv.HTTPAddr(), WSPath: "/ws", SockJSPath: proto.DefaultSockJSPath,
		Transport: bench.WS, Dest: bench.DefaultDest, Subs: 100, Count: 500, Size: bench.DefaultSize,
		Window: bench.DefaultWindow, MaxLag: bench.DefaultMaxLag, Duration: time.Minute, Conns: 1, Rooms: 1, Interval: time.Second, VHost: "/"}
	b.ReportAllocs()
	var delivered float64
	start := time.Now()
	for b.Loop() {
		r, err := bench.RunScenario(context.Background(), cfg, io.Discard)
		if err != nil {
			b.Fatalf("%v: %s", err, r)
		}
		delivered += float64(cfg.Subs * cfg.Count)
	}
	b.ReportMetric(delivered/time.Since(start).Seconds(), "deliveries/s")
}

// TestLoadToolIdleHeapProfile writes a heap profile and goroutine count
// while 2,000 idle connections are held in process, when
// STOMPBOX_BENCH_HEAPPROFILE names the output file; it is a measuring aid
// for docs/benchmarks.md, not a check, and skips otherwise.
func TestLoadToolIdleHeapProfile(t *testing.T) {
	out := os.Getenv("STOMPBOX_BENCH_HEAPPROFILE")
	if out == "" {
		t.Skip("set STOMPBOX_BENCH_HEAPPROFILE=FILE to write the profile")
	}
	const n = 2000
	srv := startServer(t, func(c *Config) { c.MaxConnections = 2 * n })
	before := runtime.NumGoroutine()
	d := bench.NewDialer("http://"+srv.HTTPAddr(), "/ws", proto.DefaultSockJSPath, bench.WS)
	cfg := bench.Config{VHost: "/"}
	conns, failed, err := bench.DialMany(context.Background(), d, n, nil, cfg.ConnectFrame(), func(i int, c *bench.Conn) error {
		return bench.Subscribe(context.Background(), c, "0", bench.DefaultDest)
	})
	defer bench.CloseAll(conns)
	if err != nil {
		t.Fatalf("%d failed: %v", failed, err)
	}
	runtime.GC()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d connections (client and server in this process): %d goroutines more, heap in use %d KiB, stacks %d KiB",
		n, runtime.NumGoroutine()-before, ms.HeapInuse>>10, ms.StackInuse>>10)
}
