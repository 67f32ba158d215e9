package main

import (
	"io"
	"stompbox/internal/broker"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"testing"
)

// queueOptions starts a server with the queue options parseConfig makes
// of args, on top of the tests' usual configuration.
func queueOptions(t *testing.T, args ...string) *server {
	t.Helper()
	d, err := parseConfig(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, func(c *Config) {
		c.QueueMiB, c.QueueMiBPerQueue, c.MaxQueues, c.QueueTTL = d.QueueMiB, d.QueueMiBPerQueue, d.MaxQueues, d.QueueTTL
		c.MemoryMarkMiB, c.NoAnonQueues = d.MemoryMarkMiB, d.NoAnonQueues
	})
}

// TestAnonymousQueuesOffByDefault: with the default options an anonymous
// connection (/ws without Origin, or TCP) gets an ERROR for a SEND to a
// queue, so the issue 22 flood holds nothing; topics stay open to it.
func TestAnonymousQueuesOffByDefault(t *testing.T) {
	srv := queueOptions(t)
	ws, _ := dialWS(t, srv, "v12.stomp")
	ws.connect()
	ws.roundTrip(stomp.CmdSend, "fine", "destination:/topic/open")
	ws.send(stomp.CmdSend, strings.Repeat("x", 60<<10), "destination:/queue/junk-1", "receipt:r")
	f := ws.expect(stomp.CmdError)
	if !strings.Contains(f.Value(stomp.HdrMessage), "anonymous") || f.Value(stomp.HdrReceiptID) != "r" {
		t.Fatalf("ERROR %v", f.Headers)
	}
	tcp := dialTCP(t, srv.TCPAddr())
	tcp.connect()
	tcp.send(stomp.CmdSubscribe, "", "id:1", "destination:/queue/junk-1")
	tcp.expect(stomp.CmdError)
	if st := srv.broker.QueueStats(); st.HeldBytes != 0 {
		t.Fatalf("held %+v", st)
	}
}

// TestQueueFloodOptions: with -anonymous-queues and -queue-mib 1, issue
// 22's flood of 60 KB SENDs to fresh queue names keeps what is held under
// 1 MiB, and every SEND is receipted or refused with an ERROR naming an
// option.
func TestQueueFloodOptions(t *testing.T) {
	srv := queueOptions(t, "-anonymous-queues", "-queue-mib", "1")
	body := strings.Repeat("x", 60<<10)
	c := dialTCP(t, srv.TCPAddr())
	c.connect()
	receipts, refusals := 0, 0
	const sends = 100
	for i := range sends {
		c.send(stomp.CmdSend, body, "destination:/queue/junk-"+strconv.Itoa(i), "receipt:r"+strconv.Itoa(i))
		switch f := c.next(); f.Command {
		case stomp.CmdReceipt:
			receipts++
		case stomp.CmdError:
			if !strings.Contains(f.Value(stomp.HdrMessage), "(-queue-mib)") {
				t.Fatalf("ERROR %v", f.Headers)
			}
			refusals++
			c = dialTCP(t, srv.TCPAddr())
			c.connect()
		default:
			t.Fatalf("got %s", f.Command)
		}
	}
	st := srv.broker.QueueStats()
	t.Logf("%d receipted, %d refused; %+v", receipts, refusals, st)
	if st.HeldBytes > 1<<20 || receipts+refusals != sends || refusals == 0 || int64(receipts) != st.HeldMessages {
		t.Fatalf("%d receipted, %d refused, %+v: want at most 1 MiB held, the rest refused", receipts, refusals, st)
	}
}

// TestClusterQueueCaps: in a cluster, the node that holds queue messages
// nobody consumes applies its caps: a flood to one queue from two nodes
// keeps each node under -queue-mib-per-queue, every SEND is receipted or
// refused with an ERROR naming it, and a consumer that comes later on one
// node gets every receipted message from both, after which neither node
// holds anything.
func TestClusterQueueCaps(t *testing.T) {
	const perQueue = 200 << 10
	ns := startNATS(t)
	var nodes []*clusterNode
	for i := range 2 {
		b, addr := startBroker(t, broker.Config{QueueBytesPerQueue: perQueue, MemoryMark: -1}, nil)
		n := joinCluster(t, ns, b, "node-"+strconv.Itoa(i))
		n.addr = addr
		nodes = append(nodes, n)
	}
	const dest = "/queue/flood"
	body := strings.Repeat("x", 60<<10)
	receipted := map[string]bool{}
	for _, n := range nodes {
		c := dialTCP(t, n.addr)
		c.connect()
		for i := range 8 {
			id := n.name + "-" + strconv.Itoa(i)
			c.send(stomp.CmdSend, id+body, "destination:"+dest, "receipt:"+id)
			switch f := c.next(); f.Command {
			case stomp.CmdReceipt:
				receipted[id] = true
			case stomp.CmdError:
				if !strings.Contains(f.Value(stomp.HdrMessage), "(-queue-mib-per-queue)") || f.Value(stomp.HdrReceiptID) != id {
					t.Fatalf("ERROR %v", f.Headers)
				}
				c = dialTCP(t, n.addr)
				c.connect()
			}
		}
		if held := n.b.QueueStats().HeldBytes; held > perQueue || held == 0 {
			t.Fatalf("%s holds %d bytes, cap %d", n.name, held, perQueue)
		}
	}
	if len(receipted) == 16 || len(receipted) == 0 {
		t.Fatalf("%d of 16 receipted: want the caps to refuse some", len(receipted))
	}
	cons := dialTCP(t, nodes[1].addr)
	cons.connect()
	cons.send(stomp.CmdSubscribe, "", "id:1", "destination:"+dest)
	for range receipted {
		m := cons.expect(stomp.CmdMessage)
		id, _, _ := strings.Cut(string(m.Body), "x")
		if !receipted[id] {
			t.Fatalf("got %q, not receipted or twice", id)
		}
		delete(receipted, id)
	}
	for _, n := range nodes {
		checkFor(t, n.name+" holding nothing", func() bool { return n.b.QueueStats().HeldBytes == 0 })
	}
}
