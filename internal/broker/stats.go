package broker

import (
	"fmt"
	"maps"
	"stompbox/internal/latency"
	"stompbox/internal/stomp"
	"sync"
	"sync/atomic"
	"time"
)

// broker_stats.go: the broker's counters since start, which Stats copies
// for the metrics (internal/metrics reads them at each scrape). Counting
// costs a frame one atomic add; counts the broker keeps under b.mu anyway
// (connections by transport) are kept there. The broker knows nothing of
// the metrics library.

// Frame commands Stats counts, client and server ones (STOMP 1.2 §"Client
// Frames" and §"Server Frames"), in the order of cmdIndex.
var statCommands = [...]string{
	stomp.CmdConnect, stomp.CmdStomp, stomp.CmdSend, stomp.CmdSubscribe, stomp.CmdUnsubscribe,
	stomp.CmdAck, stomp.CmdNack, stomp.CmdBegin, stomp.CmdCommit, stomp.CmdAbort, stomp.CmdDisconnect,
	stomp.CmdConnected, stomp.CmdMessage, stomp.CmdReceipt, stomp.CmdError,
}

const (
	numCommands = len(statCommands)
	cmdMessage  = 12 // statCommands index of MESSAGE, the writer's most frequent frame
)

// cmdIndex is cmd's index in statCommands, -1 for a command the parser
// would not have passed.
func cmdIndex(cmd string) int {
	switch cmd {
	case stomp.CmdConnect:
		return 0
	case stomp.CmdStomp:
		return 1
	case stomp.CmdSend:
		return 2
	case stomp.CmdSubscribe:
		return 3
	case stomp.CmdUnsubscribe:
		return 4
	case stomp.CmdAck:
		return 5
	case stomp.CmdNack:
		return 6
	case stomp.CmdBegin:
		return 7
	case stomp.CmdCommit:
		return 8
	case stomp.CmdAbort:
		return 9
	case stomp.CmdDisconnect:
		return 10
	case stomp.CmdConnected:
		return 11
	case stomp.CmdMessage:
		return cmdMessage
	case stomp.CmdReceipt:
		return 13
	case stomp.CmdError:
		return 14
	}
	return -1
}

// limitID names a limit whose refusals are counted.
type limitID int

// Limits the broker refuses by, each named by the option that sets it
// (main.go's option table), so that a refusal count says what to raise.
const (
	limitConnections       limitID = iota // -max-connections
	limitConnsPerIP                       // -max-conns-per-ip
	limitSubscriptions                    // -max-subscriptions
	limitUserSubscriptions                // -max-user-subscriptions
	limitFrame                            // -max-frame: a frame too large ends its session
	numLimits
)

var limitOptions = [numLimits]string{"max-connections", "max-conns-per-ip", "max-subscriptions", "max-user-subscriptions", "max-frame"}

// counters are the broker's counters. Safe for concurrent use.
type counters struct {
	framesIn      [numCommands]atomic.Uint64 // client frames read, by command
	framesOut     [numCommands]atomic.Uint64 // server frames handed to the transport, by command
	published     atomic.Uint64
	delivered     atomic.Uint64
	slowConsumers atomic.Uint64
	refusals      [numLimits]atomic.Uint64
	subscriptions atomic.Int64 // live subscriptions
	stompSessions atomic.Int64 // sessions past CONNECT

	receiptMu sync.Mutex
	receipts  latency.Hist // receipted SENDs: handled to RECEIPT queued
}

// sentFrames counts the frames of one writer batch, added to the
// broker's counters as the batch goes to the transport: one atomic add
// per command a batch holds, not per frame.
type sentFrames [numCommands]uint64

func (c *sentFrames) add(cmd string) {
	if i := cmdIndex(cmd); i >= 0 {
		c[i]++
	}
}

func (c *counters) addSent(sent *sentFrames) {
	for i, n := range sent {
		if n > 0 {
			c.framesOut[i].Add(n)
		}
	}
}

func (c *counters) frameIn(cmd string) {
	if i := cmdIndex(cmd); i >= 0 {
		c.framesIn[i].Add(1)
	}
}

func (c *counters) observeReceipt(d time.Duration) {
	c.receiptMu.Lock()
	c.receipts.Add(d)
	c.receiptMu.Unlock()
}

// refuse counts a refusal by limit id and returns its error: the sentinel
// base, naming the option and its value so that whoever hits it knows what
// to raise: "too many subscriptions: at most 256 (-max-subscriptions)".
// errors.Is still matches base.
func (c *counters) refuse(id limitID, base *stomp.Error, value int) error {
	c.refusals[id].Add(1)
	return fmt.Errorf("%w: at most %d (-%s)", base, value, limitOptions[id])
}

// Stats are the broker's figures: gauges as of now, counters since start.
type Stats struct {
	Connections   map[string]int    // connections served now, by transport ("ws", "tcp", "sockjs-xhr-streaming", …)
	Accepted      map[string]uint64 // connections admitted since start, by transport
	STOMPSessions int               // connections past CONNECT
	UsersOnline   int               // users with a session on this node
	Subscriptions int               // live subscriptions of every kind (topic, queue, user)
	FramesIn      map[string]uint64 // client frames read, by command; every client command, 0 or not
	FramesOut     map[string]uint64 // server frames handed to the transport (counted before the write), by command; every server command (heart-beats are not frames)
	Published     uint64            // messages published on this node: SENDs to topics and queues, and the application's (chat posts, replies, notifications)
	Delivered     uint64            // MESSAGE deliveries handed to subscribers' sessions
	SlowConsumers uint64            // sessions cut off because their outbox overflowed
	Refusals      map[string]uint64 // refusals by the option of the limit that refused (max-connections, …)
	Receipts      latency.Hist      // receipted SENDs, from handling (after any rate hold) to the RECEIPT queued
	Queues        QueueStats        // held queue messages and the memory mark (queue_limits.go)
}

// Stats copies the broker's figures. Safe for concurrent use; it holds the
// broker's lock only to copy two small maps.
func (b *Broker) Stats() Stats {
	c := &b.stats
	st := Stats{
		STOMPSessions: int(c.stompSessions.Load()),
		Subscriptions: int(c.subscriptions.Load()),
		FramesIn:      make(map[string]uint64, numCommands),
		FramesOut:     make(map[string]uint64, numCommands),
		Published:     c.published.Load(),
		Delivered:     c.delivered.Load(),
		SlowConsumers: c.slowConsumers.Load(),
		Refusals:      make(map[string]uint64, numLimits),
	}
	for i, cmd := range statCommands {
		if stomp.ServerCommands[cmd] {
			st.FramesOut[cmd] = c.framesOut[i].Load()
		} else {
			st.FramesIn[cmd] = c.framesIn[i].Load()
		}
	}
	for i, opt := range limitOptions {
		st.Refusals[opt] = c.refusals[i].Load()
	}
	b.mu.RLock()
	st.Connections = maps.Clone(b.transports)
	st.Accepted = maps.Clone(b.accepted)
	st.UsersOnline = len(b.users)
	b.mu.RUnlock()
	c.receiptMu.Lock()
	st.Receipts = c.receipts
	c.receiptMu.Unlock()
	st.Queues = b.QueueStats()
	return st
}
