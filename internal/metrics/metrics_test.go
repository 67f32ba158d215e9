package metrics

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime"
	"stompbox/internal/auth"
	"stompbox/internal/broker"
	"stompbox/internal/cluster"
	"stompbox/internal/files"
	"stompbox/internal/latency"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strings"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Fakes of the parts, with figures the test knows.
type (
	fakeBroker  struct{ st broker.Stats }
	fakeLimiter struct{}
	fakeStore   struct{ st store.WriterStats }
	fakeFiles   struct{}
	fakeSockJS  int
	fakeCluster struct {
		st  proto.ClusterStatus
		err error
	}
)

func (f *fakeBroker) Stats() broker.Stats              { return f.st }
func (fakeLimiter) HeldSends() (uint64, time.Duration) { return 3, 1500 * time.Millisecond }
func (fakeLimiter) Refusals() (uint64, uint64)         { return 4, 5 }
func (f *fakeStore) Stats() *store.WriterStats         { st := f.st; return &st }
func (fakeFiles) Stats() files.Stats {
	return files.Stats{Uploads: 2, UploadBytes: 2048, ThumbnailsWaiting: 1, RefusedNoSpace: 3}
}
func (n fakeSockJS) Sessions() int                                         { return int(n) }
func (f *fakeCluster) Status(context.Context) (proto.ClusterStatus, error) { return f.st, f.err }
func (f *fakeCluster) Stats() cluster.LogStats {
	var h latency.Hist
	h.Add(20 * time.Millisecond)
	return cluster.LogStats{QuorumWrites: h, Unstored: 1}
}

// scrape writes m and parses it with the Prometheus text parser.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	var buf bytes.Buffer
	m.Write(context.Background(), &buf)
	p := expfmt.NewTextParser(model.LegacyValidation)
	mf, err := p.TextToMetricFamilies(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, buf.String())
	}
	return mf
}

// value is the value of the series of family name whose labels include
// want (key=value pairs), NaN if there is none.
func value(mf map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := mf[name]
	if f == nil {
		return math.NaN()
	}
next:
	for _, m := range f.Metric {
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == k && l.GetValue() == v)
			}
			if !found {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.Counter.GetValue()
		case dto.MetricType_GAUGE:
			return m.Gauge.GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return math.NaN()
}

// TestWriteParses: what Write writes is the Prometheus text format that
// Prometheus's own parser reads, every family typed and named by the
// conventions, with the parts' figures as the parts gave them.
func TestWriteParses(t *testing.T) {
	var receipts latency.Hist
	for _, d := range []time.Duration{50 * time.Microsecond, 2 * time.Millisecond, 3 * time.Second} {
		receipts.Add(d)
	}
	b := &fakeBroker{st: broker.Stats{
		Connections:   map[string]int{"ws": 2, "tcp": 0},
		Accepted:      map[string]uint64{"ws": 7, "tcp": 1},
		STOMPSessions: 2, UsersOnline: 1, Subscriptions: 5,
		FramesIn:  map[string]uint64{"SEND": 9, "CONNECT": 2},
		FramesOut: map[string]uint64{"MESSAGE": 11, "RECEIPT": 9},
		Published: 9, Delivered: 11, SlowConsumers: 1,
		Refusals: map[string]uint64{"max-subscriptions": 6},
		Receipts: receipts,
		Queues:   broker.QueueStats{Queues: 3, HeldMessages: 4, HeldBytes: 4096, Expired: 2, Refused: 7, PublishersHeld: 1, MemoryHolds: 8},
	}}
	st := &fakeStore{st: store.WriterStats{Transactions: 4, Writes: 8, Messages: 3}}
	st.st.Commit.Add(time.Millisecond)
	gate := &auth.Gate{Slots: make(chan struct{}, 4)}
	gate.Busy.Add(2)
	cl := &fakeCluster{st: proto.ClusterStatus{Node: "pi1", Leader: "pi1", Applied: 40, LogEnd: 42, Behind: 2, Replicas: 3, Failed: 1}}
	m := New(Sources{Broker: b, Limiter: fakeLimiter{}, Store: st, Files: fakeFiles{}, SockJS: []SockJS{fakeSockJS(1), fakeSockJS(2)},
		Passwords: gate, Cluster: cl, Version: `v1.2 "q"`, HTTPConnsRefused: func() uint64 { return 9 }})
	mf := scrape(t, m)

	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"stompbox_connections", []string{"transport=ws"}, 2},
		{"stompbox_connections", []string{"transport=tcp"}, 0},
		{"stompbox_connections_accepted_total", []string{"transport=ws"}, 7},
		{"stompbox_stomp_sessions", nil, 2},
		{"stompbox_sockjs_sessions", nil, 3},
		{"stompbox_subscriptions", nil, 5},
		{"stompbox_stomp_frames_received_total", []string{"command=SEND"}, 9},
		{"stompbox_stomp_frames_sent_total", []string{"command=MESSAGE"}, 11},
		{"stompbox_messages_published_total", nil, 9},
		{"stompbox_messages_delivered_total", nil, 11},
		{"stompbox_slow_consumer_disconnects_total", nil, 1},
		{"stompbox_refusals_total", []string{"limit=max-subscriptions"}, 6},
		{"stompbox_refusals_total", []string{"limit=login-rate"}, 4},
		{"stompbox_refusals_total", []string{"limit=user-send-rate"}, 5},
		{"stompbox_flow_held_sends_total", nil, 3},
		{"stompbox_flow_held_seconds_total", nil, 1.5},
		{"stompbox_store_transactions_total", nil, 4},
		{"stompbox_chat_messages_stored_total", nil, 3},
		{"stompbox_store_commit_seconds", nil, 1},
		{"stompbox_stomp_send_receipt_seconds", nil, 3},
		{"stompbox_password_check_slots", nil, 4},
		{"stompbox_password_checks_refused_total", nil, 2},
		{"stompbox_uploads_total", nil, 2},
		{"stompbox_upload_bytes_total", nil, 2048},
		{"stompbox_thumbnails_waiting", nil, 1},
		{"stompbox_refusals_total", []string{"limit=min-free"}, 3},
		{"stompbox_refusals_total", []string{"limit=max-http-conns-per-ip"}, 9},
		{"stompbox_refusals_total", []string{"limit=queue"}, 7},
		{"stompbox_queues", nil, 3},
		{"stompbox_queue_held_messages", nil, 4},
		{"stompbox_queue_held_bytes", nil, 4096},
		{"stompbox_queue_expired_total", nil, 2},
		{"stompbox_publishers_held", nil, 1},
		{"stompbox_memory_mark_held_sends_total", nil, 8},
		{"stompbox_cluster_log_applied", nil, 40},
		{"stompbox_cluster_log_behind", nil, 2},
		{"stompbox_cluster_is_leader", nil, 1},
		{"stompbox_cluster_has_leader", nil, 1},
		{"stompbox_cluster_quorum_write_seconds", nil, 1},
		{"stompbox_build_info", []string{`version=v1.2 "q"`}, 1},
	}
	for _, tt := range tests {
		if got := value(mf, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	// The receipt histogram's buckets: 50 µs, 2 ms and 3 s against bounds
	// from 100 µs to 10 s, with the exact sum.
	h := mf["stompbox_stomp_send_receipt_seconds"].Metric[0].Histogram
	wantCum := map[float64]uint64{0.0001: 1, 0.001: 1, 0.0025: 2, 2.5: 2, 5: 3, 10: 3}
	for _, bk := range h.Bucket {
		if want, ok := wantCum[bk.GetUpperBound()]; ok && bk.GetCumulativeCount() != want {
			t.Errorf("le=%v: %d, want %d", bk.GetUpperBound(), bk.GetCumulativeCount(), want)
		}
	}
	if len(h.Bucket) != len(LatencyBounds)+1 || math.Abs(h.GetSampleSum()-3.00205) > 1e-9 {
		t.Errorf("%d buckets, sum %v; want %d (with +Inf) and 3.00205", len(h.Bucket), h.GetSampleSum(), len(LatencyBounds)+1)
	}

	for name, f := range mf {
		typ := f.GetType()
		switch {
		case !strings.HasPrefix(name, Namespace) && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_"):
			t.Errorf("%s: neither stompbox_ nor Go or process", name)
		case typ == dto.MetricType_UNTYPED:
			t.Errorf("%s has no # TYPE", name)
		case strings.HasPrefix(name, Namespace) && (typ == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total"):
			t.Errorf("%s is a %v: counters, and only they, end in _total", name, typ)
		case strings.HasPrefix(name, Namespace) && typ == dto.MetricType_HISTOGRAM && !strings.HasSuffix(name, "_seconds"):
			t.Errorf("%s: a latency histogram is in seconds", name)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes"} {
		if mf[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if runtime.GOOS == "linux" && mf["process_resident_memory_bytes"] == nil {
		t.Error("no process_resident_memory_bytes")
	}
}

// TestClusterUnreachable: when the log's leader does not answer, the
// position known here still shows, and what is unknown is NaN, not 0.
func TestClusterUnreachable(t *testing.T) {
	cl := &fakeCluster{st: proto.ClusterStatus{Node: "pi2", Applied: 17, Replicas: 3}, err: errors.New("no quorum")}
	mf := scrape(t, New(Sources{Cluster: cl}))
	if v := value(mf, "stompbox_cluster_log_applied"); v != 17 {
		t.Errorf("applied %v, want 17", v)
	}
	if v := value(mf, "stompbox_cluster_has_leader"); v != 0 {
		t.Errorf("has_leader %v, want 0", v)
	}
	if v := value(mf, "stompbox_cluster_log_behind"); !math.IsNaN(v) || mf["stompbox_cluster_log_behind"] == nil {
		t.Errorf("behind %v, want NaN", v)
	}
}

// TestLatencyBounds: the histogram bounds are what Prometheus accepts
// (ascending, positive), by the library's own check.
func TestLatencyBounds(t *testing.T) {
	if err := vm.ValidateBuckets(LatencyBounds); err != nil {
		t.Fatal(err)
	}
}
