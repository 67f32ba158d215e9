package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The cluster's snapshots and compaction (internal/cluster/snapshot*.go,
// store_snapshot.go): a node joining after the log was compacted restores
// the snapshot and applies the tail; deleted text leaves every node's
// disk; a single node's data folder becomes a cluster.

// logBounds is the log's first and last sequence as node srv sees them.
func logBounds(t testing.TB, srv *server) (first, last uint64) {
	t.Helper()
	first, last, _, err := srv.snaps.LogBounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return first, last
}

// TestClusterJoinAfterCompaction compacts the log of a running cluster
// (a snapshot is stored, the log purged below it) and then adds a node:
// it restores the snapshot, applies the tail, and serves the whole
// history, since-id included, and signs in the old accounts.
func TestClusterJoinAfterCompaction(t *testing.T) {
	t.Parallel()
	cc := newClusterChat(t, 3)
	a := cc.nodes[0].server(t)
	kim := clusterLogin(t, a.TCPAddr(), "kim")
	for i := range 60 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("before the snapshot %d", i)), "destination:/pub/chat/message")
	}
	cc.waitConverged(cc.nodes...)
	snap, err := a.compactor.Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first, last := logBounds(t, a)
	if snap.Seq < 60 || first != snap.Seq+1 {
		t.Fatalf("snapshot at %d; the log now runs %d…%d, want it to start right after the snapshot", snap.Seq, first, last)
	}
	for i := range 5 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("after the snapshot %d", i)), "destination:/pub/chat/message")
	}
	d := cc.addNode()
	cc.startAll(d)
	if l := d.log.String(); !strings.Contains(l, "restored the newest snapshot") {
		t.Errorf("the new node's log does not tell of restoring the snapshot:\n%s", l)
	}
	dsrv := d.server(t)
	want := roomHistory(t, a, cc.room.ID)
	if got := roomHistory(t, dsrv, cc.room.ID); !slices.Equal(got, want) || len(got) != 66 { // "lee joined." and 65 posts
		t.Fatalf("the new node's history (%d messages):\n%v\nnode 1's (%d):\n%v", len(got), got, len(want), want)
	}
	// since-id across the snapshot's edge, on the new node.
	mid := strings.SplitN(want[57], ":", 2)[0]
	lee := clusterLogin(t, dsrv.TCPAddr(), "lee")
	lee.send(stomp.CmdSubscribe, "", "id:room", "destination:"+proto.RoomDestination(cc.room.ID), "since-id:"+mid, "receipt:s")
	for _, line := range want[58:] {
		m := decodeChat(t, lee.expect(stomp.CmdMessage))
		if id := strings.SplitN(line, ":", 2)[0]; strconv.FormatInt(m.ID, 10) != id {
			t.Fatalf("since-id replay on the new node: got id %d, want %s", m.ID, id)
		}
	}
	lee.expect(stomp.CmdReceipt)
	// New writes on the new node reach the others.
	lee.send(stomp.CmdSend, chatBody("TALK", cc.room.ID, "from the restored node"), "destination:/pub/chat/message", "receipt:w")
	if m := decodeChat(t, lee.expect(stomp.CmdMessage)); m.Message != "from the restored node" {
		t.Fatalf("on the restored node: %+v", m)
	}
	lee.expect(stomp.CmdReceipt)
	cc.waitConverged(cc.nodes...)
	if got, want := roomHistory(t, a, cc.room.ID), roomHistory(t, dsrv, cc.room.ID); !slices.Equal(got, want) || len(got) != 67 {
		t.Fatalf("histories after a write on the restored node:\n%v\n%v", got, want)
	}
}

// filesHolding lists the files under dir whose raw bytes contain text.
func filesHolding(t testing.TB, dir, text string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking (a compaction)
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(text)) {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClusterDeletedTextGone deletes a message with a unique text and
// compacts the log: the text is then in no file under any node's data
// folder (the log's blocks, JetStream's raft logs, the database and its
// WAL), while it was in every node's before.
func TestClusterDeletedTextGone(t *testing.T) {
	t.Parallel()
	cc := newClusterChat(t, 3)
	a := cc.nodes[0].server(t)
	ctx := context.Background()
	canary := fmt.Sprintf("canary-%x", time.Now().UnixNano())
	kim := clusterLogin(t, a.TCPAddr(), "kim")
	for i := range 10 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("kept %d", i)), "destination:/pub/chat/message")
	}
	kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, canary), "destination:/pub/chat/message")
	for i := range 10 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("kept too %d", i)), "destination:/pub/chat/message")
	}
	cc.waitConverged(cc.nodes...)
	var id int64
	for _, line := range roomHistory(t, a, cc.room.ID) {
		if strings.HasSuffix(line, ":"+canary) {
			id, _ = strconv.ParseInt(strings.SplitN(line, ":", 2)[0], 10, 64)
		}
	}
	for _, nd := range cc.nodes {
		if got := filesHolding(t, nd.spec.Dir, canary); len(got) == 0 {
			t.Fatalf("node %s: the canary is in none of its files before the deletion: the test looks in the wrong place", nd.spec.Name)
		}
	}
	if err := a.chat.Delete(ctx, cc.kim, cc.room.ID, id); err != nil {
		t.Fatal(err)
	}
	cc.waitConverged(cc.nodes...)
	if _, err := a.compactor.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	// Each node scrubs at its next check after the log's start moved
	// (every 30 s); the test asks for it at once, and again while a node
	// has not yet applied the purge.
	deadline := time.Now().Add(20 * time.Second)
	for _, nd := range cc.nodes {
		for {
			if err := nd.server(t).compactor.Check(ctx); err != nil {
				t.Fatal(err)
			}
			got := filesHolding(t, nd.spec.Dir, canary)
			if len(got) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s still holds the deleted text in %v", nd.spec.Name, got)
			}
			time.Sleep(200 * time.Millisecond)
			if err := nd.server(t).compactor.Scrub(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, nd := range cc.nodes { // and nothing brought it back
		if got := filesHolding(t, nd.spec.Dir, canary); len(got) > 0 {
			t.Fatalf("node %s holds the deleted text again in %v", nd.spec.Name, got)
		}
	}
}
