package main

import (
	"context"
	"math"
	"net"
	"net/http"
	"os"
	"stompbox/internal/auth"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics GETs url (with an Authorization header if token is set),
// expects status, and parses a 200's body with the Prometheus text parser.
func scrapeMetrics(t *testing.T, url, token string, status int) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d", url, resp.StatusCode, status)
	}
	if status != http.StatusOK {
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mf
}

// metricValue is the value of the series of family name whose labels
// include want ("key=value"), a histogram's being its count; 0 when the
// series does not exist (yet), as Prometheus counts an absent counter.
func metricValue(t *testing.T, mf map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f := mf[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		match := true
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			has := false
			for _, l := range m.Label {
				has = has || (l.GetName() == k && l.GetValue() == v)
			}
			match = match && has
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.Counter.GetValue()
		case dto.MetricType_GAUGE:
			return m.Gauge.GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.Histogram.GetSampleCount())
		}
		t.Fatalf("%s is a %v", name, f.GetType())
	}
	return 0
}

// TestMetricsMoveWithTraffic scrapes -metrics-addr before and after real
// traffic (a STOMP client sends to a topic with a receipt, a subscriber
// receives it, a chat post is stored, a limit refuses a subscription) and
// checks, through Prometheus's own parser, that the counters and
// histograms moved with it.
func TestMetricsMoveWithTraffic(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.MetricsAddr = "127.0.0.1:0"; c.MaxSubscriptions = 2 })
	url := "http://" + srv.metricsLn.Addr() + "/metrics"
	addUser(t, srv, "root", testPassword) // the first account: the administrator
	kim, lee := addUser(t, srv, "kim", testPassword), addUser(t, srv, "lee", testPassword)
	room, err := srv.chat.CreateRoom(context.Background(), kim, chat.NewRoom{Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.chat.Join(context.Background(), lee, room.ID); err != nil {
		t.Fatal(err)
	}
	before := scrapeMetrics(t, url, "", http.StatusOK)

	login := func(name string) *stompClient {
		c := dialTCP(t, srv.TCPAddr())
		c.connect("accept-version:1.2", "login:"+name, "passcode:"+testPassword)
		return c
	}
	sender, receiver := login("kim"), login("lee")
	receiver.roundTrip(stomp.CmdSubscribe, "", "id:t", "destination:/topic/metrics")
	receiver.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+proto.RoomDestination(room.ID))
	sender.roundTrip(stomp.CmdSend, "hello", "destination:/topic/metrics")
	if f := receiver.expect(stomp.CmdMessage); string(f.Body) != "hello" {
		t.Fatalf("topic message %q", f.Body)
	}
	sender.roundTrip(stomp.CmdSend, chatBody("TALK", room.ID, "stored, then delivered"), "destination:/pub/chat/message")
	if m := decodeChat(t, receiver.expect(stomp.CmdMessage)); m.Message != "stored, then delivered" || m.ID == 0 {
		t.Fatalf("chat message %+v", m)
	}
	// A third subscription passes -max-subscriptions 2: refused, counted.
	receiver.send(stomp.CmdSubscribe, "", "id:3", "destination:/topic/other")
	if e := receiver.expect(stomp.CmdError); !strings.Contains(e.Value(stomp.HdrMessage), "-max-subscriptions") {
		t.Fatalf("ERROR %v", e.Headers)
	}
	receiver.expectClosed()
	checkFor(t, "the refused session gone", func() bool { return srv.broker.SessionCount() == 1 })
	after := scrapeMetrics(t, url, "", http.StatusOK)

	grew := []struct {
		name   string
		labels []string
		by     float64 // at least
	}{
		{"stompbox_stomp_frames_received_total", []string{"command=SEND"}, 2},
		{"stompbox_stomp_frames_received_total", []string{"command=SUBSCRIBE"}, 3},
		{"stompbox_stomp_frames_received_total", []string{"command=CONNECT"}, 2},
		{"stompbox_stomp_frames_sent_total", []string{"command=MESSAGE"}, 2},
		{"stompbox_stomp_frames_sent_total", []string{"command=RECEIPT"}, 4},
		{"stompbox_stomp_frames_sent_total", []string{"command=ERROR"}, 1},
		{"stompbox_connections_accepted_total", []string{"transport=tcp"}, 2},
		{"stompbox_messages_published_total", nil, 2},
		{"stompbox_messages_delivered_total", nil, 2},
		{"stompbox_chat_messages_stored_total", nil, 1},
		{"stompbox_store_transactions_total", nil, 1},
		{"stompbox_refusals_total", []string{"limit=max-subscriptions"}, 1},
		{"stompbox_stomp_send_receipt_seconds", nil, 2}, // histogram counts
		{"stompbox_store_commit_seconds", nil, 1},
		{"stompbox_store_write_wait_seconds", nil, 1},
	}
	for _, g := range grew {
		b, a := metricValue(t, before, g.name, g.labels...), metricValue(t, after, g.name, g.labels...)
		if a-b < g.by {
			t.Errorf("%s%v went from %v to %v, want it up by at least %v", g.name, g.labels, b, a, g.by)
		}
	}
	for _, g := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"stompbox_connections", []string{"transport=tcp"}, 1}, // the sender; the refused receiver is gone
		{"stompbox_stomp_sessions", nil, 1},
		{"stompbox_subscriptions", nil, 0},
		{"stompbox_users_online", nil, 1},
	} {
		if v := metricValue(t, after, g.name, g.labels...); v != g.want {
			t.Errorf("%s%v = %v, want %v", g.name, g.labels, v, g.want)
		}
	}
	if sum := after["stompbox_stomp_send_receipt_seconds"].Metric[0].Histogram.GetSampleSum(); !(sum > 0) || math.IsInf(sum, 0) {
		t.Errorf("receipt latency sum %v", sum)
	}
	if metricValue(t, after, "go_goroutines") < 1 {
		t.Error("no go_goroutines")
	}

	// The README lists every stompbox metric.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range after {
		if strings.HasPrefix(name, "stompbox_") && !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README's Metrics section does not list %s", name)
		}
	}
}

// TestMetricsAdminOnlyOnMainPort: on the public port /metrics needs an
// administrator: 401 without a login, 403 for a member's token, 200 for
// an administrator's token.
func TestMetricsAdminOnlyOnMainPort(t *testing.T) {
	srv := startServer(t)
	url := "http://" + srv.HTTPAddr() + "/metrics"
	root := addUser(t, srv, "root", testPassword) // the first account: the administrator
	kim := addUser(t, srv, "kim", testPassword)
	ctx := context.Background()
	adminToken, err := srv.auth.CreateTokenWith(ctx, root, auth.TokenSpec{Name: "prometheus", Scopes: auth.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	memberToken, err := srv.auth.CreateTokenWith(ctx, kim, auth.TokenSpec{Name: "curious", Scopes: "read,post"})
	if err != nil {
		t.Fatal(err)
	}
	scrapeMetrics(t, url, "", http.StatusUnauthorized)
	scrapeMetrics(t, url, memberToken, http.StatusForbidden)
	mf := scrapeMetrics(t, url, adminToken, http.StatusOK)
	if mf["stompbox_build_info"] == nil || mf["stompbox_store_commit_seconds"] == nil {
		t.Errorf("admin scrape lacks stompbox_build_info or stompbox_store_commit_seconds: %d families", len(mf))
	}
	if srv.metricsLn != nil {
		t.Error("-metrics-addr is off by default, yet a metrics listener runs")
	}
}

// TestMetricsListenerClosedOnShutdown: the -metrics-addr listener serves
// only /metrics, and Shutdown closes it.
func TestMetricsListenerClosedOnShutdown(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", DataDir: t.TempDir()}
	srv, err := newServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	addr := srv.metricsLn.Addr()
	scrapeMetrics(t, "http://"+addr+"/metrics", "", http.StatusOK)
	scrapeMetrics(t, "http://"+addr+"/api/admin/stats", "", http.StatusNotFound)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("metrics listener %s still accepts after Shutdown", addr)
	}
}

// TestMetricsCluster: on a three-node cluster each node shows the log it
// applies: one leader among them, every replica current and nothing
// behind once a post has reached all three, and the quorum write timed on
// the node that took the post.
func TestMetricsCluster(t *testing.T) {
	cc := newClusterChat(t, 3)
	a := cc.nodes[0].server(t)
	token, err := a.auth.CreateTokenWith(context.Background(), cc.kim, auth.TokenSpec{Name: "prometheus", Scopes: auth.ScopeAdmin}) // kim is the administrator
	if err != nil {
		t.Fatal(err)
	}
	kim := clusterLogin(t, a.TCPAddr(), "kim")
	kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, "replicated"), "destination:/pub/chat/message")
	cc.waitConverged(cc.nodes...) // the token too, which came first in the log
	leaders := 0.0
	for i, nd := range cc.nodes {
		srv := nd.server(t)
		var mf map[string]*dto.MetricFamily
		// The leader's view of the replicas may lag the applies a moment.
		checkFor(t, "every replica current", func() bool {
			mf = scrapeMetrics(t, "http://"+srv.HTTPAddr()+"/metrics", token, http.StatusOK)
			return metricValue(t, mf, "stompbox_cluster_log_behind") == 0 && metricValue(t, mf, "stompbox_cluster_replicas_current") == 3
		})
		for _, g := range []struct {
			name string
			want float64
		}{{"stompbox_cluster_has_leader", 1}, {"stompbox_cluster_replicas", 3}, {"stompbox_cluster_apply_failures_total", 0}} {
			if v := metricValue(t, mf, g.name); v != g.want {
				t.Errorf("node %d: %s = %v, want %v", i+1, g.name, v, g.want)
			}
		}
		if v := metricValue(t, mf, "stompbox_cluster_log_applied"); v < 1 {
			t.Errorf("node %d: applied %v", i+1, v)
		}
		leaders += metricValue(t, mf, "stompbox_cluster_is_leader")
		if i == 0 && metricValue(t, mf, "stompbox_cluster_quorum_write_seconds") < 1 {
			t.Errorf("node 1 took the post, yet timed no quorum write")
		}
	}
	if leaders != 1 {
		t.Errorf("%v nodes say they lead the log, want 1", leaders)
	}
}
