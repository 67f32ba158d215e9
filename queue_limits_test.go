package main

import (
	"io"
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
