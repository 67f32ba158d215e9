package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"stompbox/internal/cluster"
	"stompbox/internal/stomp"
	"strings"
	"testing"
)

// TestClusterGrowsToFiveAndBackToThree adds two nodes to a three-node
// cluster (the log keeps 3 copies; the meta group has 5 members), writes
// through a new node, then stops two of the first nodes for good, one at
// a time, removing each with cluster remove before stopping the next:
// after each removal the log has 3 current copies on live nodes, and at
// the end JetStream's meta group names only the 3 live nodes. Writes go
// on and every live node has the whole history.
func TestClusterGrowsToFiveAndBackToThree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cc := newClusterChat(t, 3)
	a := cc.nodes[0].server(t)
	kim := clusterLogin(t, a.TCPAddr(), "kim")
	for i := range 10 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("three nodes %d", i)), "destination:/pub/chat/message")
	}
	d, e := cc.addNode(), cc.addNode()
	cc.startAll(d, e)
	checkFor(t, "the meta group to have 5 members", func() bool { return len(cluster.JetStreamNodes(a.cluster.Ns)) == 5 })
	lee := clusterLogin(t, e.server(t).TCPAddr(), "lee")
	for i := range 10 {
		lee.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, fmt.Sprintf("five nodes %d", i)), "destination:/pub/chat/message")
	}
	cc.waitConverged(cc.nodes...)
	if st, err := a.clog.Status(ctx); err != nil || st.Replicas != 3 || len(st.Peers) != 3 {
		t.Fatalf("the log's copies in a five-node cluster: %+v, %v", st, err)
	}
	live := []*testNode{cc.nodes[0], d, e, cc.nodes[1]}
	for _, gone := range []*testNode{cc.nodes[2], cc.nodes[1]} {
		cc.stop(gone)
		live = slices.DeleteFunc(live, func(n *testNode) bool { return n == gone })
		var removed []string
		checkFor(t, gone.spec.Name+" to be removable", func() bool {
			var err error
			removed, err = a.clog.RemovePeer(ctx, gone.spec.Name)
			switch {
			case err == nil:
				return true
			case errors.Is(err, cluster.ErrPeerOnline):
			case strings.Contains(err.Error(), "temporarily unavailable"): // a meta leader election after the stop
				t.Logf("remove %s: %v; again", gone.spec.Name, err)
			default:
				t.Fatalf("remove %s: %v", gone.spec.Name, err)
			}
			return false
		})
		if !slices.Contains(removed, cluster.MetaGroup) {
			t.Errorf("remove %s: removed from %v, want the meta group among them", gone.spec.Name, removed)
		}
		checkFor(t, "3 current copies of the log on live nodes after removing "+gone.spec.Name, func() bool {
			st, err := a.clog.Status(ctx)
			if err != nil || len(st.Peers) != 3 {
				return false
			}
			for _, p := range st.Peers {
				if !p.Current || p.Offline || !slices.ContainsFunc(live, func(n *testNode) bool { return n.spec.Name == p.Name }) {
					return false
				}
			}
			return true
		})
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", cc.room.ID, "after removing "+gone.spec.Name), "destination:/pub/chat/message")
	}
	var names []string
	for _, n := range live {
		names = append(names, n.spec.Name)
	}
	slices.Sort(names)
	for _, n := range live {
		checkFor(t, n.spec.Name+"'s meta group to name only the live nodes", func() bool {
			return slices.Equal(cluster.JetStreamNodes(n.server(t).cluster.Ns), names)
		})
	}
	cc.waitConverged(live...)
	want := roomHistory(t, a, cc.room.ID)
	if len(want) != 23 { // "lee joined.", 20 posts and 2 after the removals
		t.Fatalf("history (%d): %v", len(want), want)
	}
	for _, n := range live[1:] {
		if got := roomHistory(t, n.server(t), cc.room.ID); !slices.Equal(got, want) {
			t.Fatalf("%s's history:\n%v\nn1's:\n%v", n.spec.Name, got, want)
		}
	}
}
