package main

import (
	"context"
	"fmt"
	"slices"
	"stompbox/internal/stomp"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
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

// TestClusterNodeBehindAPurgeStopsUntilRestarted purges the log past a
// running node's position (as a compaction does while the node is cut off
// from the others, so that nobody heard how far it applied): when it reads
// again it meets the gap and stops applying without damage, says so in
// its log and its cluster status, refuses writes with a clear error and
// keeps serving history, and signals the program to exit (run, so that
// systemd restarts it); restarted, it restores the newest snapshot and
// has every message.
func TestClusterNodeBehindAPurgeStopsUntilRestarted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cc := newClusterChat(t, 3)
	a := cc.nodes[0].server(t)
	nd := cc.nodes[1]
	cut := nd.server(t)
	kim := clusterLogin(t, a.TCPAddr(), "kim")
	for i := range 5 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("everywhere %d", i)), "destination:/pub/chat/message")
	}
	cc.waitConverged(cc.nodes...)
	release := cut.clog.HoldApplier()
	defer release()
	for i := range 10 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("while it was cut off %d", i)), "destination:/pub/chat/message")
	}
	snap, err := a.compactor.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.clog.Js.Stream(ctx, "STOMPBOX")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(snap.Seq+1)); err != nil {
		t.Fatal(err)
	}
	// Every copy of the log has applied the purge: a copy that had not
	// would hand the node the entries, and it would catch up.
	for _, n := range cc.nodes {
		ns := n.server(t).cluster.Ns
		checkFor(t, n.spec.Name+"'s copy of the log to start after the snapshot", func() bool {
			jsz, err := ns.Jsz(&natsserver.JSzOptions{Accounts: true, Streams: true})
			if err != nil {
				return false
			}
			for _, acc := range jsz.AccountDetails {
				for _, sd := range acc.Streams {
					if sd.Name == "STOMPBOX" {
						return sd.State.FirstSeq == snap.Seq+1
					}
				}
			}
			return false
		})
	}
	at := cut.clog.Applied.Load()
	release()
	defer func() {
		if t.Failed() {
			st, err := cut.clog.Status(ctx)
			first, last := logBounds(t, a)
			t.Logf("snapshot at %d, the node stood at %d; now: %+v (%v); the log runs %d…%d; the cut-off node's log:\n%s", snap.Seq, at, st, err, first, last, nd.log.String())
		}
	}()
	checkFor(t, "the cut-off node to report that it stopped", func() bool {
		st, err := cut.clog.Status(ctx)
		return err == nil && strings.Contains(st.Stopped, "compacted away")
	})
	select {
	case <-cut.gapped(): // run exits on it, and the restart restores the snapshot
	default:
		t.Error("the node's gapped signal is not closed")
	}
	if !strings.Contains(nd.log.String(), "compacted away while it was cut off") {
		t.Errorf("the node's log does not say why it stopped:\n%s", nd.log.String())
	}
	if got := cut.clog.Applied.Load(); got != at {
		t.Errorf("the node applied %d past the gap (it stood at %d)", got, at)
	}
	lee := clusterLogin(t, cut.TCPAddr(), "lee")
	lee.roundTrip(stomp.CmdSubscribe, "", "id:e", "destination:/user/queue/errors")
	lee.send(stomp.CmdSend, chatBody("TALK", cc.room.ID, "refused"), "destination:/pub/chat/message", "receipt:r")
	if f := lee.nextWithin(10 * time.Second); f.Command == stomp.CmdReceipt || !strings.Contains(string(f.Body), "restarted") {
		t.Errorf("STOMP SEND on the stopped node: %s %v %s", f.Command, f.Headers, f.Body)
	}
	if got := roomHistory(t, cut, cc.room.ID); len(got) != 6 { // "lee joined." and 5 posts
		t.Errorf("history on the stopped node (%d): %v", len(got), got)
	}
	cc.stop(nd)
	if err := cc.start(nd); err != nil {
		t.Fatal(err)
	}
	cc.waitConverged(cc.nodes...)
	if got, want := roomHistory(t, nd.server(t), cc.room.ID), roomHistory(t, a, cc.room.ID); !slices.Equal(got, want) || len(got) != 16 {
		t.Fatalf("the restarted node's history (%d):\n%v\nnode 1's (%d):\n%v", len(got), got, len(want), want)
	}
}
