package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"stompbox/internal/chat"
	"stompbox/internal/cluster"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterSnapshotCost measures what docs/benchmarks.md reports for
// snapshots (section "Cluster: snapshots and compaction"): a three-node
// cluster with STOMPBOX_SNAPSHOT_BENCH chat posts of history (the log's
// entries published directly), the log's bytes on each node's disk and a
// fourth node's join time before a compaction, the compaction's time and
// allocations and the SEND→RECEIPT p99 while it runs, then the log's
// bytes and a fifth node's join time after it. It runs only with the
// variable set:
//
//	STOMPBOX_SNAPSHOT_BENCH=100000 go test -count=1 -v -timeout 30m -run TestClusterSnapshotCost .
func TestClusterSnapshotCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("STOMPBOX_SNAPSHOT_BENCH"))
	if n <= 0 {
		t.Skip("set STOMPBOX_SNAPSHOT_BENCH to the number of messages of history")
	}
	ctx := context.Background()
	// No compaction but the one measured.
	cc := newClusterChat(t, 3, func(s *nodeSpec) { s.SnapshotEvery = 1 << 62 })
	a := cc.nodes[0].server(t)
	began := time.Now()
	at := time.Now().UnixMilli()
	for i := 0; i < n; i += 1000 {
		var acks []jetstream.PubAckFuture
		for j := i; j < min(i+1000, n); j++ {
			data, err := store.EncodeOp(&chat.PostOp{Type: proto.MsgTalk, RoomID: cc.room.ID, UserID: cc.kim.ID, Sender: "kim",
				Message: fmt.Sprintf("message %d: the quick brown fox jumps over the lazy dog", j)}, at, "bench", "")
			if err != nil {
				t.Fatal(err)
			}
			f, err := a.clog.Js.PublishAsync(cluster.LogSubject, data)
			if err != nil {
				t.Fatal(err)
			}
			acks = append(acks, f)
		}
		for _, f := range acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			}
		}
	}
	_, end := logBounds(t, a)
	for _, nd := range cc.nodes {
		for nd.applied(t) < end {
			if time.Since(began) > 10*time.Minute {
				t.Fatalf("node %s applied %d of %d", nd.spec.Name, nd.applied(t), end)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("history: %d posts stored and applied on 3 nodes in %s", n, time.Since(began).Round(time.Millisecond))
	logBytes := func() string {
		var out []string
		for _, nd := range cc.nodes[:3] {
			out = append(out, fmt.Sprintf("%s %.1f MB", nd.spec.Name, float64(dirBytes(t, filepath.Join(nd.spec.Dir, cluster.JetStreamDir)))/1e6))
		}
		return fmt.Sprint(out)
	}
	t.Logf("jetstream folder before compaction: %s", logBytes())
	join := func(what string) {
		d := cc.addNode()
		d.spec.SnapshotEvery = 1 << 62
		start := time.Now()
		cc.startAll(d)
		t.Logf("join %s: node %s served after %s", what, d.spec.Name, time.Since(start).Round(time.Millisecond))
		if got, want := len(roomHistory(t, d.server(t), cc.room.ID)), len(roomHistory(t, a, cc.room.ID)); got != want {
			t.Fatalf("joined node has %d messages, want %d", got, want)
		}
		cc.stop(d)
	}
	join("before compaction (replays the log)")

	// SEND→RECEIPT on node 1, 20 a second, before and while compacting.
	kim := clusterLogin(t, a.TCPAddr(), "kim")
	var mu sync.Mutex
	var lat []time.Duration
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			s := time.Now()
			kim.send(stomp.CmdSend, chatBody("TALK", cc.room.ID, "during "+strconv.Itoa(i)), "destination:/pub/chat/message", "receipt:r"+strconv.Itoa(i))
			kim.expect(stomp.CmdReceipt)
			mu.Lock()
			lat = append(lat, time.Since(s))
			mu.Unlock()
		}
	}()
	p99 := func() (time.Duration, int) {
		mu.Lock()
		defer mu.Unlock()
		l := slices.Clone(lat)
		lat = nil
		slices.Sort(l)
		if len(l) == 0 {
			return 0, 0
		}
		return l[len(l)*99/100], len(l)
	}
	time.Sleep(5 * time.Second)
	base, nb := p99()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cs := time.Now()
	snap, err := a.compactor.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(cs)
	runtime.ReadMemStats(&ms1)
	during, nd := p99()
	close(stop)
	<-done
	t.Logf("compaction: snapshot at %d, %.1f MB, took %s (copy, store, purge, scrub); allocated %.1f MB, heap in use %.1f → %.1f MB (whole test process)",
		snap.Seq, float64(snap.Size)/1e6, took.Round(time.Millisecond), float64(ms1.TotalAlloc-ms0.TotalAlloc)/1e6, float64(ms0.HeapInuse)/1e6, float64(ms1.HeapInuse)/1e6)
	t.Logf("SEND→RECEIPT p99: %s over %d before, %s over %d while compacting", base.Round(time.Microsecond), nb, during.Round(time.Microsecond), nd)
	for _, nd := range cc.nodes[:3] {
		if err := nd.server(t).compactor.Scrub(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("jetstream folder after compaction: %s", logBytes())
	join("after compaction (restores the snapshot)")
}

// dirBytes is the size of the files under dir.
func dirBytes(t testing.TB, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
