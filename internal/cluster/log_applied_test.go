package cluster

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestAppliedBound checks the compactor's purge point against the
// nodes' answers: the lowest applied position of those that answer, none
// when an online copy of the log is silent, an offline one not waited
// for, a stopped node holding nothing back.
func TestAppliedBound(t *testing.T) {
	ns, nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c := &Compactor{l: &Log{Js: js, ns: ns, node: "n1"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	info := &jetstream.StreamInfo{Cluster: &jetstream.ClusterInfo{Leader: "n1", Replicas: []*jetstream.PeerInfo{
		{Name: "n2"}, {Name: "n3", Offline: true}}}}
	cases := []struct {
		name    string
		answers []appliedReply
		want    uint64
	}{
		{"every node caught up", []appliedReply{{Node: "n1", Applied: 100}, {Node: "n2", Applied: 100}}, 101},
		{"a node behind", []appliedReply{{Node: "n1", Applied: 100}, {Node: "n2", Applied: 40}}, 41},
		{"an online copy silent", []appliedReply{{Node: "n1", Applied: 100}}, 0},
		{"a stopped node", []appliedReply{{Node: "n1", Applied: 100}, {Node: "n2", Applied: 3, Stopped: true}}, 101},
	}
	for _, tc := range cases {
		var subs []*nats.Subscription
		for _, a := range tc.answers {
			b, _ := json.Marshal(a)
			sub, err := nc.Subscribe(appliedSubject, func(m *nats.Msg) { m.Respond(b) })
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub)
		}
		nc.Flush()
		if got := c.appliedBound(context.Background(), info, 101); got != tc.want {
			t.Errorf("%s: purge below %d, want %d", tc.name, got, tc.want)
		}
		for _, s := range subs {
			s.Unsubscribe()
		}
	}
}
