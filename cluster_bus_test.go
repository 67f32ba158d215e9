package main

import (
	"fmt"
	"slices"
	"stompbox/internal/broker"
	"stompbox/internal/chat"
	"stompbox/internal/cluster"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startNATS runs a NATS server inside the test process on a loopback port
// and shuts it down when the test ends, after everything registered later.
func startNATS(t testing.TB) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// clusterNode is one node of a test cluster: a broker with its own NATS
// connection and bus.
type clusterNode struct {
	name string
	b    *broker.Broker
	addr string // STOMP over TCP, for bare brokers
	nc   *nats.Conn
	bus  *cluster.Bus
}

// joinCluster gives b its own connection to ns and a bus as node name. At
// the end of the test the bus closes, then the connection.
func joinCluster(t testing.TB, ns *natsserver.Server, b *broker.Broker, name string) *clusterNode {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := cluster.NewBus(nc, b, name, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bus.Close(); err != nil {
			t.Errorf("close bus %s: %v", name, err)
		}
	})
	return &clusterNode{name: name, b: b, nc: nc, bus: bus}
}

// startClusterBrokers starts n bare brokers (open authentication, see
// startBroker) joined into one cluster over one NATS server.
func startClusterBrokers(t testing.TB, n int) []*clusterNode {
	t.Helper()
	ns := startNATS(t)
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		b, addr := startBroker(t, broker.Config{}, nil)
		nodes[i] = joinCluster(t, ns, b, fmt.Sprintf("node-%c", 'a'+i))
		nodes[i].addr = addr
	}
	return nodes
}

// flush makes sure the NATS server has every subscription the nodes made
// so far (the test cluster has one server: no routes to wait for).
func flush(t testing.TB, nodes ...*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		if err := n.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// messagesUntilSync returns the MESSAGE frames that come before the answer
// to a sync probe: everything the server had queued for c by then.
func (c *stompClient) messagesUntilSync() []*stomp.Frame {
	c.t.Helper()
	id := fmt.Sprintf("sync-%d", time.Now().UnixNano())
	c.send(stomp.CmdBegin, "", "transaction:"+id, "receipt:"+id)
	var msgs []*stomp.Frame
	for {
		f := c.next()
		if f.Command == stomp.CmdReceipt && f.Value(stomp.HdrReceiptID) == id {
			break
		}
		if f.Command != stomp.CmdMessage {
			c.t.Fatalf("got %s %v while syncing", f.Command, f.Headers)
		}
		msgs = append(msgs, f)
	}
	c.roundTrip(stomp.CmdAbort, "", "transaction:"+id)
	return msgs
}

func bodies(msgs []*stomp.Frame) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Body)
	}
	return out
}

// TestClusterBusTopic: a message sent to a topic on node a reaches its
// subscribers on every node, a included, exactly once and in the order
// sent, whatever the destination's characters.
func TestClusterBusTopic(t *testing.T) {
	nodes := startClusterBrokers(t, 3)
	tests := []struct {
		name   string
		dest   string
		server bool // published by the server (Broker.Publish), not a client SEND
	}{
		{"topic", "/topic/greetings", false},
		{"sub prefix", "/sub/news/today", false},
		{"dots and greater-than", "/topic/a.b.>", false},
		{"room topic without the chat app", "/sub/chat/room/1", false},
		{"server publish", "/topic/server.side>", true},
	}
	const count = 200
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var subs []*stompClient
			for _, n := range nodes {
				c := dialTCP(t, n.addr)
				c.connect()
				c.roundTrip(stomp.CmdSubscribe, "", "id:s", "destination:"+tt.dest)
				subs = append(subs, c)
			}
			pub := dialTCP(t, nodes[0].addr)
			pub.connect()
			send := func(body string) {
				if tt.server {
					if err := nodes[0].b.Publish(tt.dest, []stomp.Header{{Key: "x-custom", Value: "yes"}}, []byte(body), 0); err != nil {
						t.Fatal(err)
					}
					return
				}
				pub.send(stomp.CmdSend, body, "destination:"+tt.dest, "x-custom:yes")
			}
			for i := range count {
				send(strconv.Itoa(i))
			}
			send("end")
			for i, c := range subs {
				for want := range count {
					m := c.expect(stomp.CmdMessage)
					if string(m.Body) != strconv.Itoa(want) || m.Value(stomp.HdrDestination) != tt.dest || m.Value("x-custom") != "yes" {
						t.Fatalf("%s: message %d: %v %q", nodes[i].name, want, m.Headers, m.Body)
					}
				}
				if m := c.expect(stomp.CmdMessage); string(m.Body) != "end" { // and nothing twice
					t.Fatalf("%s: after %d messages got %q, want end", nodes[i].name, count, m.Body)
				}
			}
		})
	}
}

// TestClusterBusQueue: queue messages go to exactly one consumer in the
// cluster; they wait while nobody consumes and move on when a node's
// consumers go.
func TestClusterBusQueue(t *testing.T) {
	nodes := startClusterBrokers(t, 3)

	t.Run("spread over nodes, each once", func(t *testing.T) {
		const dest, count = "/queue/work.items", 100
		var consumers []*stompClient
		for _, n := range nodes[:2] {
			c := dialTCP(t, n.addr)
			c.connect()
			c.roundTrip(stomp.CmdSubscribe, "", "id:q", "destination:"+dest)
			consumers = append(consumers, c)
		}
		flush(t, nodes...)
		pub := dialTCP(t, nodes[2].addr) // a node without consumers
		pub.connect()
		for i := range count - 1 {
			pub.send(stomp.CmdSend, strconv.Itoa(i), "destination:"+dest)
		}
		// Each SEND returns once a node has the message in its queue, so
		// with this receipt every message is in some consumer's outbox.
		pub.roundTrip(stomp.CmdSend, strconv.Itoa(count-1), "destination:"+dest)
		seen := make(map[string]int)
		for i, c := range consumers {
			got := bodies(c.messagesUntilSync())
			if len(got) == 0 {
				t.Errorf("%s's consumer got nothing of %d", nodes[i].name, count)
			}
			for _, b := range got {
				seen[b]++
			}
		}
		for i := range count {
			if n := seen[strconv.Itoa(i)]; n != 1 {
				t.Errorf("message %d delivered %d times", i, n)
			}
		}
		if len(seen) != count {
			t.Errorf("%d distinct messages, want %d", len(seen), count)
		}
	})

	t.Run("held while nobody consumes", func(t *testing.T) {
		const dest = "/queue/later"
		pub := dialTCP(t, nodes[0].addr)
		pub.connect()
		for _, b := range []string{"one", "two", "three"} {
			pub.roundTrip(stomp.CmdSend, b, "destination:"+dest)
		}
		c := dialTCP(t, nodes[1].addr)
		c.connect()
		c.send(stomp.CmdSubscribe, "", "id:q", "destination:"+dest)
		for _, want := range []string{"one", "two", "three"} {
			if m := c.expect(stomp.CmdMessage); string(m.Body) != want {
				t.Fatalf("got %q, want %q", m.Body, want)
			}
		}
	})

	t.Run("unacknowledged moves to another node", func(t *testing.T) {
		const dest = "/queue/handover"
		x := dialTCP(t, nodes[1].addr)
		x.connect()
		x.roundTrip(stomp.CmdSubscribe, "", "id:q", "destination:"+dest, "ack:client-individual")
		flush(t, nodes...)
		pub := dialTCP(t, nodes[0].addr)
		pub.connect()
		pub.roundTrip(stomp.CmdSend, "job", "destination:"+dest)
		if m := x.expect(stomp.CmdMessage); string(m.Body) != "job" {
			t.Fatalf("got %q", m.Body)
		}
		y := dialTCP(t, nodes[2].addr)
		y.connect()
		y.roundTrip(stomp.CmdSubscribe, "", "id:q", "destination:"+dest)
		flush(t, nodes...)
		x.close() // gone without an ACK: node b has no consumer left
		if m := y.expect(stomp.CmdMessage); string(m.Body) != "job" {
			t.Fatalf("got %q", m.Body)
		}
	})
}

// TestClusterBusUser: a user message reaches the user's sessions on every
// node once, and nobody else; isOnline sees users on other nodes.
func TestClusterBusUser(t *testing.T) {
	nodes := startClusterBrokers(t, 3)
	var alice []*stompClient
	for _, n := range []*clusterNode{nodes[0], nodes[1], nodes[1]} {
		c := dialTCP(t, n.addr)
		c.connect("accept-version:1.2", "login:alice")
		c.roundTrip(stomp.CmdSubscribe, "", "id:n", "destination:/user/queue/notifications")
		alice = append(alice, c)
	}
	bob := dialTCP(t, nodes[0].addr)
	bob.connect("accept-version:1.2", "login:bob")
	bob.roundTrip(stomp.CmdSubscribe, "", "id:n", "destination:/user/queue/notifications")
	checkFor(t, "alice online on node c", func() bool { return nodes[2].b.IsOnline("alice") })
	if nodes[2].b.IsOnline("carol") {
		t.Fatal("carol is online nowhere")
	}

	nodes[2].b.SendToUser("alice", "/queue/notifications", nil, []byte("for alice"))
	nodes[2].b.SendToUser("alice", "/user/queue/notifications", nil, []byte("end"))
	nodes[2].b.SendToUser("bob", "/queue/notifications", nil, []byte("for bob"))
	for i, c := range alice {
		for _, want := range []string{"for alice", "end"} {
			if m := c.expect(stomp.CmdMessage); string(m.Body) != want || m.Value(stomp.HdrDestination) != "/user/queue/notifications" {
				t.Fatalf("alice %d: got %v %q, want %q", i, m.Headers, m.Body, want)
			}
		}
	}
	if m := bob.expect(stomp.CmdMessage); string(m.Body) != "for bob" {
		t.Fatalf("bob got %q", m.Body)
	}

	for _, c := range alice {
		c.close()
	}
	checkFor(t, "alice offline on node c", func() bool { return !nodes[2].b.IsOnline("alice") })
}

// TestClusterBusChatPresence: room presence and typing cross nodes; a room's
// stored messages do not (every node delivers those from the log); a node
// that goes leaves presence within the TTL, or at once when it says so.
func TestClusterBusChatPresence(t *testing.T) {
	tests := []struct {
		name   string
		leave  func(a *clusterNode)
		within time.Duration
	}{
		{"connection lost", func(a *clusterNode) { a.nc.Close() }, cluster.PresenceTTL + 2*cluster.PresenceBeat},
		{"bus closed", func(a *clusterNode) { a.bus.Close() }, cluster.PresenceBeat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := startNATS(t)
			fa, fb := newSTOMPChatFixture(t, "kim", "lee"), newSTOMPChatFixture(t, "kim", "lee")
			if fa.room.ID != fb.room.ID {
				t.Fatalf("room ids %d and %d", fa.room.ID, fb.room.ID)
			}
			a := joinCluster(t, ns, fa.srv.broker, "node-a")
			b := joinCluster(t, ns, fb.srv.broker, "node-b")
			room := fa.roomDest()

			lee := fb.login(t, "lee")
			lee.send(stomp.CmdSubscribe, "", "id:p", "destination:"+room+chat.PresenceSuffix)
			if p := string(lee.expect(stomp.CmdMessage).Body); p != `{"online":[]}` {
				t.Fatalf("first presence %s", p)
			}
			lee.roundTrip(stomp.CmdSubscribe, "", "id:t", "destination:"+room+chat.TypingSuffix)

			kim := fa.login(t, "kim")
			kim.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+room)
			if p := string(lee.expect(stomp.CmdMessage).Body); p != `{"online":["kim"]}` {
				t.Fatalf("presence on b after kim came to a: %s", p)
			}
			if !b.b.IsOnline("kim") {
				t.Fatal("kim is not online for node b")
			}
			kim.roundTrip(stomp.CmdSend, fmt.Sprintf(`{"roomId":%d}`, fa.room.ID), "destination:/pub/chat/typing")
			if m := lee.expect(stomp.CmdMessage); m.Value(stomp.HdrSubscription) != "t" || !strings.Contains(string(m.Body), `"user":"kim"`) {
				t.Fatalf("typing on b: %v %s", m.Headers, m.Body)
			}

			// A stored message is delivered by its node only: the bus must
			// not carry it, or it would come twice once the log does.
			lee.send(stomp.CmdSubscribe, "", "id:room", "destination:"+room, "receipt:joined")
			if p := string(lee.expect(stomp.CmdMessage).Body); p != `{"online":["kim","lee"]}` {
				t.Fatalf("presence after lee came: %s", p)
			}
			lee.expect(stomp.CmdReceipt)
			kim.send(stomp.CmdSend, chatBody("TALK", fa.room.ID, "stored, not relayed"), "destination:/pub/chat/message", "receipt:posted")
			if m := kim.expect(stomp.CmdMessage); !strings.Contains(string(m.Body), "stored, not relayed") {
				t.Fatalf("kim got %v %s", m.Headers, m.Body)
			}
			kim.expect(stomp.CmdReceipt)
			kim.roundTrip(stomp.CmdSend, fmt.Sprintf(`{"roomId":%d}`, fa.room.ID), "destination:/pub/chat/typing")
			if m := lee.expect(stomp.CmdMessage); m.Value(stomp.HdrSubscription) != "t" {
				t.Fatalf("lee got %v %s before the typing that followed it", m.Headers, m.Body)
			}
			// And a room takes no plain SEND on any node.
			rogue := fa.login(t, "kim")
			rogue.send(stomp.CmdSend, "x", "destination:"+room)
			if f := rogue.expect(stomp.CmdError); !strings.Contains(f.Value(stomp.HdrMessage), "/pub/chat/message") {
				t.Fatalf("plain SEND to a room: %v", f.Headers)
			}

			start := time.Now()
			tt.leave(a)
			if p := string(lee.expect(stomp.CmdMessage).Body); p != `{"online":["lee"]}` {
				t.Fatalf("presence after node a went: %s", p)
			}
			if took := time.Since(start); took > tt.within {
				t.Errorf("kim left b's presence after %v, want within %v", took, tt.within)
			}
			if b.b.IsOnline("kim") {
				t.Error("kim still online for node b")
			}
		})
	}
}

// TestClusterBusPresenceLateJoiner: a node that joins learns who is already
// present elsewhere from the others' snapshots.
func TestClusterBusPresenceLateJoiner(t *testing.T) {
	ns := startNATS(t)
	fa, fb := newSTOMPChatFixture(t, "kim", "lee"), newSTOMPChatFixture(t, "kim", "lee")
	joinCluster(t, ns, fa.srv.broker, "node-a")
	kim := fa.login(t, "kim")
	kim.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+fa.roomDest())

	b := joinCluster(t, ns, fb.srv.broker, "node-b")
	checkFor(t, "kim online for node b", func() bool { return b.b.IsOnline("kim") })
	checkFor(t, "kim in the room for node b", func() bool {
		return slices.Contains(b.bus.RemotePresence(fb.roomDest()+chat.PresenceSuffix), "kim")
	})
	lee := fb.login(t, "lee")
	lee.send(stomp.CmdSubscribe, "", "id:p", "destination:"+fb.roomDest()+chat.PresenceSuffix)
	if p := string(lee.expect(stomp.CmdMessage).Body); p != `{"online":["kim"]}` {
		t.Fatalf("presence on b: %s", p)
	}
}

// TestClusterBusPresenceGap: a node that missed a delta asks for a
// snapshot and ends up with the truth.
func TestClusterBusPresenceGap(t *testing.T) {
	nodes := startClusterBrokers(t, 2)
	a, b := nodes[0], nodes[1]
	kim := dialTCP(t, a.addr)
	kim.connect("accept-version:1.2", "login:kim")
	checkFor(t, "kim online for node b", func() bool { return b.b.IsOnline("kim") })
	// A delta that skips sequence numbers, as if NATS had dropped some:
	// node b must not apply it, nor the next real delta (lee), until a
	// snapshot from node a has made it whole again.
	a.bus.SendPresence(cluster.PresenceMsg{Kind: cluster.PresenceKindDelta, Seq: 1 << 40, Set: []cluster.PresenceGroup{{Key: cluster.ConnectedKey, On: []string{"ghost"}}}})
	lee := dialTCP(t, a.addr)
	lee.connect("accept-version:1.2", "login:lee")
	checkFor(t, "lee online for node b", func() bool { return b.b.IsOnline("lee") })
	if b.b.IsOnline("ghost") || !b.b.IsOnline("kim") {
		t.Fatal("node b applied a delta out of sequence or lost kim")
	}
}
