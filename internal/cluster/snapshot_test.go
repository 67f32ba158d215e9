package cluster

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startJetStream runs a single in-process NATS server with JetStream and
// returns a Conn to it (one replica).
func startJetStream(t *testing.T) *Conn {
	t.Helper()
	_, nc := startNATS(t)
	return &Conn{Nc: nc, Replicas: 1}
}

// startNATS runs a single in-process NATS server with JetStream on a
// random loopback port, its store in t.TempDir(), and connects to it;
// both end with the test.
func startNATS(t *testing.T) (*natsserver.Server, *nats.Conn) {
	t.Helper()
	ns := startNATSUsers(t, nil)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return ns, nc
}

// startNATSUsers is startNATS's server, with these users (nil: no
// authentication), and no connection.
func startNATSUsers(t *testing.T, users []*natsserver.User) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return ns
}

func TestSnapshotsStoreListFetchPrune(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snaps, err := OpenSnapshots(ctx, startJetStream(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := snaps.Newest(ctx); err != nil || ok {
		t.Fatalf("an empty bucket's newest: ok %v, %v", ok, err)
	}
	dir := t.TempDir()
	put := func(seq uint64, body string) {
		p := filepath.Join(dir, "in.db")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := snaps.Put(ctx, seq, p, "n1"); err != nil {
			t.Fatal(err)
		}
	}
	// Position 100 sorts after 9 (the names are zero-padded).
	put(9, "at nine")
	put(100, "at one hundred")
	put(20, "at twenty")
	newest, ok, err := snaps.Newest(ctx)
	if err != nil || !ok || newest.Seq != 100 || newest.Node != "n1" {
		t.Fatalf("newest: %+v, %v, %v", newest, ok, err)
	}
	out := filepath.Join(dir, "out.db")
	if err := snaps.Fetch(ctx, newest, out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, []byte("at one hundred")) {
		t.Fatalf("fetched %q", b)
	}
	if err := snaps.Fetch(ctx, newest, out); err == nil {
		t.Fatal("fetch over an existing file succeeded")
	}
	// Pruning below 20 keeps 20 and 100: a node never deletes a snapshot
	// newer than its own.
	if err := snaps.PruneBelow(ctx, 20); err != nil {
		t.Fatal(err)
	}
	all, err := snaps.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, s := range all {
		seqs = append(seqs, s.Seq)
	}
	if len(seqs) != 2 || seqs[0] != 20 || seqs[1] != 100 {
		t.Fatalf("after pruning below 20: %v", seqs)
	}
}

func TestSnapshotsRestorePlan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snaps, err := OpenSnapshots(ctx, startJetStream(t))
	if err != nil {
		t.Fatal(err)
	}
	empty := []struct {
		name      string
		applied   uint64
		inCluster bool
		first     uint64
		restore   bool
		fails     bool
	}{
		{"new cluster", 0, false, 0, false, false},
		{"log starts after the node", 5, true, 6, false, false},
		{"behind a compaction, no snapshot", 5, true, 50, false, true},
	}
	for _, c := range empty {
		_, ok, err := snaps.RestorePlan(ctx, c.applied, c.inCluster, c.first)
		if ok != c.restore || (err != nil) != c.fails {
			t.Errorf("%s (no snapshot): restore %v, err %v", c.name, ok, err)
		}
	}
	p := filepath.Join(t.TempDir(), "s.db")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.Put(ctx, 40, p, "n1"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		applied   uint64
		inCluster bool
		first     uint64
		restore   bool
		fails     bool
	}{
		{"new node", 0, false, 1, true, false},
		{"new node after compaction", 0, false, 41, true, false},
		{"node at 0 in a cluster", 0, true, 1, false, false},
		{"current node", 45, true, 41, false, false},
		{"node just at the edge", 40, true, 41, false, false},
		{"node behind the compaction", 10, true, 41, true, false},
		{"snapshot older than the log's start", 10, true, 60, false, true},
	}
	for _, c := range cases {
		snap, ok, err := snaps.RestorePlan(ctx, c.applied, c.inCluster, c.first)
		if ok != c.restore || (err != nil) != c.fails || ok && snap.Seq != 40 {
			t.Errorf("%s: restore %v (%+v), err %v", c.name, ok, snap, err)
		}
	}
}

func TestLogEntriesFollow(t *testing.T) {
	l := &Log{}
	l.Applied.Store(10)
	for _, c := range []struct {
		seq  uint64
		skip bool
		gap  bool
	}{
		{9, true, false},
		{10, true, false},
		{11, false, false},
		{11, true, false}, // handed to the writer already
		{12, false, false},
		{14, false, true},
	} {
		skip, err := l.checkFollows(c.seq)
		if skip != c.skip || errors.Is(err, errLogGap) != c.gap {
			t.Errorf("entry %d: skip %v, err %v", c.seq, skip, err)
		}
	}
	if err := checkStart(10, 11); err != nil {
		t.Errorf("start at 10, log from 11: %v", err)
	}
	if err := checkStart(0, 0); err != nil {
		t.Errorf("start at 0, empty log: %v", err)
	}
	if err := checkStart(0, 2); !errors.Is(err, errLogGap) {
		t.Errorf("start at 0, log from 2: %v", err)
	}
}
