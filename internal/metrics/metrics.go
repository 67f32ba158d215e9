// Package metrics serves stompbox's figures at GET /metrics in the
// Prometheus text format (issue 24): connections, sessions and
// subscriptions, STOMP frames, messages, chat posts, latencies, limits and
// queues, the cluster's log, and the Go runtime and process figures.
//
// It sits above the parts and owns no figure: each part counts for itself
// with plain atomics and a read method (broker.Stats, store.Stats,
// files.Stats, …), and Metrics reads them at each scrape, so that a part
// never imports the metrics library and a server without a scraper pays
// nothing but the counting. The exposition is
// github.com/VictoriaMetrics/metrics, a Set per server (never the
// library's global default set); the latency histograms, which the parts
// keep in internal/latency, are written as Prometheus histograms
// (_bucket{le=…}, _sum, _count) with the library's metadata helper (see
// writeHistogram).
//
// It must not import the root package, internal/web or anything that
// serves clients: metrics reads the parts, nothing reads metrics.
package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"stompbox/internal/auth"
	"stompbox/internal/broker"
	"stompbox/internal/cluster"
	"stompbox/internal/files"
	"stompbox/internal/latency"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strconv"
	"strings"
	"sync"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Namespace prefixes every stompbox metric (Prometheus naming: one
// application prefix, base units, _total on counters).
const Namespace = "stompbox_"

// ContentType is the Prometheus text exposition format, version 0.0.4,
// which every Prometheus-compatible scraper reads.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// LatencyBounds are the le bounds, in seconds, of the latency histograms:
// from 100 µs (a RECEIPT for a topic SEND, a commit on an SSD) to 10 s (a
// commit behind a Raspberry Pi's SD card flushing, a quorum write during
// an election), about 2.5 times apart, so that one bucket tells a fast
// disk from a slow one and sixteen lines per histogram stay cheap to keep.
// The library's default buckets start at 5 ms, above most of our commits.
var LatencyBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// The parts Metrics reads, each as the one method it calls. Sources
// leaves out, with a nil field, the parts a server does not have.
type (
	// Broker is *broker.Broker.
	Broker interface{ Stats() broker.Stats }
	// Limiter is *ratelimit.Limiter.
	Limiter interface {
		HeldSends() (sends uint64, waited time.Duration)
		Refusals() (logins, posts uint64)
	}
	// Store is *store.Store.
	Store interface{ Stats() *store.WriterStats }
	// Files is *files.Service.
	Files interface{ Stats() files.Stats }
	// SockJS is *sockjs.Server.
	SockJS interface{ Sessions() int }
	// Cluster is *cluster.Log: Status asks the log's leader, Stats reads
	// this node's counters.
	Cluster interface {
		Status(ctx context.Context) (proto.ClusterStatus, error)
		Stats() cluster.LogStats
	}
)

// Sources are the parts of one server. A nil field is left out of the
// figures (a single node has no Cluster). Do not store a nil pointer in an
// interface field: it would not be nil.
type Sources struct {
	Broker    Broker
	Limiter   Limiter
	Store     Store
	Files     Files
	SockJS    []SockJS
	Passwords *auth.Gate // the password-check queue (auth.Service.Gate)
	Cluster   Cluster
	Version   string // the build's version, as stompbox_build_info's label
	// HTTPConnsRefused counts the HTTP connections refused by
	// -max-http-conns-per-ip since start; nil when there is no such limit.
	HTTPConnsRefused func() uint64
}

// Metrics is one server's /metrics. Safe for concurrent use: scrapes take
// turns (see Write).
type Metrics struct {
	src Sources
	set *vm.Set

	mu    sync.Mutex      // one scrape at a time: update sets the series, then the set writes them
	hists []namedHist     // the latency histograms read by the last update
	start time.Time       // when New ran, for stompbox_uptime_seconds
	bound []time.Duration // LatencyBounds as durations, for latency.Hist.Cumulative
}

// namedHist is one latency histogram of a scrape.
type namedHist struct {
	name string
	h    *latency.Hist
}

// New returns the metrics of the parts in src.
func New(src Sources) *Metrics {
	// Metadata (# HELP and # TYPE) is a switch of the library, not of a
	// Set; every Set in the process wants it, so turning it on here,
	// again for each server, changes nothing for another.
	vm.ExposeMetadata(true)
	m := &Metrics{src: src, set: vm.NewSet(), start: time.Now()}
	for _, b := range LatencyBounds {
		m.bound = append(m.bound, time.Duration(b*float64(time.Second)))
	}
	m.set.RegisterMetricsWriter(m.writeHistograms)
	m.set.RegisterMetricsWriter(vm.WriteProcessMetrics) // go_* (runtime/metrics and MemStats) and process_* (CPU, memory, I/O)
	m.set.RegisterMetricsWriter(vm.WriteFDMetrics)      // process_open_fds and process_max_fds: each connection holds one
	return m
}

// ServeHTTP writes the metrics. Access control is the caller's: main
// serves it on -metrics-addr as it is, and on the main port only to an
// administrator.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	m.Write(r.Context(), &buf)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes()) // a scraper that went away has nobody to tell
}

// Write reads every part and writes the metrics to w. A scrape holds the
// lock while it reads and formats, never while a client reads the result
// (ServeHTTP buffers): two scrapers never see counters set out of order.
// ctx bounds the cluster's status query.
func (m *Metrics) Write(ctx context.Context, w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.update(ctx)
	m.set.WritePrometheus(w)
}

// counter sets the counter series name (a family name with any labels).
func (m *Metrics) counter(name string, v uint64) {
	m.set.GetOrCreateCounter(Namespace + name).Set(v)
}

// seconds sets the counter series name to a duration in seconds.
func (m *Metrics) seconds(name string, d time.Duration) {
	m.set.GetOrCreateFloatCounter(Namespace + name).Set(d.Seconds())
}

// gauge sets the gauge series name.
func (m *Metrics) gauge(name string, v float64) {
	m.set.GetOrCreateGauge(Namespace+name, nil).Set(v)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// label is name{key="value"}, value escaped as the text format asks
// (backslash, double quote and line feed).
func label(name, key, value string) string {
	return name + "{" + key + `="` + labelEscaper.Replace(value) + `"}`
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// update reads the parts and sets every series. Each part's read method
// copies its figures at once, so one part's figures are from one moment.
func (m *Metrics) update(ctx context.Context) {
	m.hists = m.hists[:0]
	src := &m.src
	m.gauge(label("build_info", "version", src.Version), 1)
	m.gauge("uptime_seconds", time.Since(m.start).Seconds())
	if src.Broker != nil {
		m.updateBroker(src.Broker.Stats())
	}
	var sockjs int
	for _, sj := range src.SockJS {
		sockjs += sj.Sessions()
	}
	m.gauge("sockjs_sessions", float64(sockjs))
	if l := src.Limiter; l != nil {
		held, waited := l.HeldSends()
		m.counter("flow_held_sends_total", held)
		m.seconds("flow_held_seconds_total", waited)
		logins, posts := l.Refusals()
		m.counter(label("refusals_total", "limit", "login-rate"), logins)
		m.counter(label("refusals_total", "limit", "user-send-rate"), posts)
	}
	if st := src.Store; st != nil {
		ws := st.Stats()
		m.counter("store_transactions_total", uint64(ws.Transactions))
		m.counter("store_writes_total", uint64(ws.Writes))
		m.counter("store_retried_groups_total", uint64(ws.Retried))
		m.counter("chat_messages_stored_total", uint64(ws.Messages))
		m.hists = append(m.hists, namedHist{"store_commit_seconds", &ws.Commit}, namedHist{"store_write_wait_seconds", &ws.Wait})
	}
	if g := src.Passwords; g != nil {
		m.gauge("password_check_slots", float64(cap(g.Slots)))
		m.gauge("password_checks_running", float64(len(g.Slots)))
		m.gauge("password_checks_waiting", float64(g.Waiting.Load()))
		m.gauge("password_checks_waiting_peak", float64(g.Peak.Load()))
		m.counter("password_checks_refused_total", g.Busy.Load())
	}
	if f := src.Files; f != nil {
		fs := f.Stats()
		m.counter("uploads_total", fs.Uploads)
		m.counter("upload_bytes_total", fs.UploadBytes)
		m.counter(label("refusals_total", "limit", "max-upload"), fs.RefusedTooLarge)
		m.counter(label("refusals_total", "limit", "upload-quota"), fs.RefusedQuota)
		m.counter(label("refusals_total", "limit", "min-free"), fs.RefusedNoSpace)
		m.gauge("thumbnails_waiting", float64(fs.ThumbnailsWaiting))
		m.gauge("thumbnails_running", float64(fs.ThumbnailsRunning))
		m.counter("thumbnails_total", fs.Thumbnails)
		m.counter("thumbnails_failed_total", fs.ThumbnailsFailed)
	}
	if f := src.HTTPConnsRefused; f != nil {
		m.counter(label("refusals_total", "limit", "max-http-conns-per-ip"), f())
	}
	if c := src.Cluster; c != nil {
		m.updateCluster(ctx, c)
	}
}

// updateBroker sets the broker's series.
func (m *Metrics) updateBroker(bs broker.Stats) {
	for t, n := range bs.Connections {
		m.gauge(label("connections", "transport", t), float64(n))
	}
	for t, n := range bs.Accepted {
		m.counter(label("connections_accepted_total", "transport", t), n)
	}
	m.gauge("stomp_sessions", float64(bs.STOMPSessions))
	m.gauge("users_online", float64(bs.UsersOnline))
	m.gauge("subscriptions", float64(bs.Subscriptions))
	for cmd, n := range bs.FramesIn {
		m.counter(label("stomp_frames_received_total", "command", cmd), n)
	}
	for cmd, n := range bs.FramesOut {
		m.counter(label("stomp_frames_sent_total", "command", cmd), n)
	}
	m.counter("messages_published_total", bs.Published)
	m.counter("messages_delivered_total", bs.Delivered)
	m.counter("slow_consumer_disconnects_total", bs.SlowConsumers)
	for limit, n := range bs.Refusals {
		m.counter(label("refusals_total", "limit", limit), n)
	}
	q := bs.Queues
	m.gauge("queues", float64(q.Queues))
	m.gauge("queue_held_messages", float64(q.HeldMessages))
	m.gauge("queue_held_bytes", float64(q.HeldBytes))
	m.counter("queue_expired_total", q.Expired)
	m.counter(label("refusals_total", "limit", "queue"), q.Refused)
	m.gauge("publishers_held", float64(q.PublishersHeld))
	m.counter("memory_mark_held_sends_total", q.MemoryHolds)
	m.hists = append(m.hists, namedHist{"stomp_send_receipt_seconds", &bs.Receipts})
}

// updateCluster sets the cluster's series. The log's end and leader come
// from the stream's leader: when it does not answer (no quorum), the log
// has no leader as far as this node can tell, and the rest still shows.
func (m *Metrics) updateCluster(ctx context.Context, c Cluster) {
	ls := c.Stats()
	m.counter("cluster_writes_unstored_total", ls.Unstored)
	m.hists = append(m.hists, namedHist{"cluster_quorum_write_seconds", &ls.QuorumWrites})
	st, err := c.Status(ctx)
	m.gauge("cluster_log_applied", float64(st.Applied))
	m.counter("cluster_apply_failures_total", uint64(st.Failed))
	m.gauge("cluster_replicas", float64(st.Replicas))
	m.gauge("cluster_has_leader", boolGauge(err == nil && st.Leader != ""))
	m.gauge("cluster_is_leader", boolGauge(err == nil && st.Leader != "" && st.Leader == st.Node))
	if err != nil {
		// Unknown is NaN, not the last reading nor 0 ("not behind").
		m.gauge("cluster_log_end", math.NaN())
		m.gauge("cluster_log_behind", math.NaN())
		m.gauge("cluster_replicas_current", math.NaN())
		return
	}
	current := 0
	for _, p := range st.Peers {
		if p.Current && !p.Offline {
			current++
		}
	}
	m.gauge("cluster_log_end", float64(st.LogEnd))
	m.gauge("cluster_log_behind", float64(st.Behind))
	m.gauge("cluster_replicas_current", float64(current))
}

// writeHistograms writes the latency histograms update read, as Prometheus
// histograms in seconds. The library's own histogram types count their
// samples themselves (Update); ours are counted by the parts, in
// internal/latency (the store's, for one, also feed the admin statistics
// and the load tool), and the library takes no bucket counts from
// outside. So the library writes each family's metadata and this writes
// its lines, in the form its PrometheusHistogram writes them.
func (m *Metrics) writeHistograms(w io.Writer) {
	for _, nh := range m.hists {
		writeHistogram(w, Namespace+nh.name, nh.h, m.bound)
	}
}

func writeHistogram(w io.Writer, name string, h *latency.Hist, bounds []time.Duration) {
	vm.WriteMetadataIfNeeded(w, name, "histogram")
	for i, n := range h.Cumulative(bounds) {
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, strconv.FormatFloat(LatencyBounds[i], 'g', -1, 64), n)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n", name, h.N)
	fmt.Fprintf(w, "%s_sum %s\n", name, strconv.FormatFloat(h.Sum.Seconds(), 'g', -1, 64))
	fmt.Fprintf(w, "%s_count %d\n", name, h.N)
}
