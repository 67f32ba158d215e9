package main

import (
	"context"
	"fmt"
	"slices"
	"stompbox/internal/stomp"
	"testing"
)

// TestClusterCompactionKeepsSlowNodesEntries compacts the log while one
// running node has not applied the newest entries (its applier held, as a
// slow or restarting node's would be): the log keeps what that node still
// needs, and once it reads again it catches up without a gap, its applier
// running. When every node has applied everything, the next compaction
// purges right up to its snapshot.
func TestClusterCompactionKeepsSlowNodesEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cc := newClusterChat(t, 3)
	a := cc.nodes[0].server(t)
	slow := cc.nodes[1].server(t)
	kim := clusterLogin(t, a.TCPAddr(), "kim")
	for i := range 10 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("applied everywhere %d", i)), "destination:/pub/chat/message")
	}
	cc.waitConverged(cc.nodes...)
	release := slow.clog.HoldApplier()
	defer release()
	held := slow.clog.Applied.Load()
	for i := range 30 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("not yet on the slow node %d", i)), "destination:/pub/chat/message")
	}
	snap, err := a.compactor.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, last := logBounds(t, a)
	if got := slow.clog.Applied.Load(); got != held {
		t.Fatalf("the held node applied %d, want it still at %d", got, held)
	}
	if snap.Seq <= held+1 || first > held+1 {
		t.Fatalf("snapshot at %d, the slow node at %d: the log runs %d…%d, want it to keep everything after %d", snap.Seq, held, first, last, held)
	}
	release()
	cc.waitConverged(cc.nodes...)
	if st, err := slow.clog.Status(ctx); err != nil || st.Stopped != "" {
		t.Fatalf("the slow node's status after catching up: %+v, %v", st, err)
	}
	if got, want := roomHistory(t, slow, cc.room.ID), roomHistory(t, a, cc.room.ID); !slices.Equal(got, want) || len(got) != 41 { // "lee joined." and 40 posts
		t.Fatalf("the slow node's history (%d):\n%v\nnode 1's (%d):\n%v", len(got), got, len(want), want)
	}
	// Everyone has applied everything: the next compaction purges up to
	// its snapshot, and the slow node goes on applying.
	kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, "after the catch-up"), "destination:/pub/chat/message")
	cc.waitConverged(cc.nodes...)
	snap, err = a.compactor.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first, last := logBounds(t, a); first != snap.Seq+1 {
		t.Fatalf("snapshot at %d with every node caught up; the log runs %d…%d, want it to start right after the snapshot", snap.Seq, first, last)
	}
	kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, "after the second compaction"), "destination:/pub/chat/message")
	cc.waitConverged(cc.nodes...)
	if got, want := roomHistory(t, slow, cc.room.ID), roomHistory(t, a, cc.room.ID); !slices.Equal(got, want) || len(got) != 43 {
		t.Fatalf("the slow node's history after the second compaction (%d):\n%v\nnode 1's (%d):\n%v", len(got), got, len(want), want)
	}
}
