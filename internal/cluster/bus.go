package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"stompbox/internal/broker"
	"stompbox/internal/stomp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// bus.go: the cluster bus itself: joining the cluster and leaving
// it, its goroutines, and the dispatch of what NATS brings to the topic,
// queue and presence parts (cluster_bus_*.go).

// Cluster bus timing and bounds.
const (
	PresenceBeat = time.Second // how often a node says it is alive; the beat carries its presence sequence number
	// PresenceTTL is how long a node may stay silent before the others drop
	// it and its users: three beats, so that one late beat (a GC pause, a
	// busy route) does not make a whole node's users flicker.
	PresenceTTL       = 3 * PresenceBeat
	presencePartBytes = 256 << 10       // presence per NATS message at most; NATS's default max_payload is 1 MiB
	queueOfferTimeout = 2 * time.Second // a node that took a queue message answers at once; past this it is an error
	queueOfferTries   = 3               // nodes asked in turn when the chosen one has just lost its consumers
	busInboxDepth     = 64 << 10        // messages waiting for recvLoop; past it NATS drops and reports a slow consumer
	busFlushTimeout   = 5 * time.Second // round trip to the NATS server when the bus starts and stops
)

// Cluster bus errors.
var (
	errBusClosed       = errors.New("cluster bus closed")
	errBadBusMessage   = errors.New("cluster bus: malformed message")
	errQueueNoAnswer   = stomp.NewError("queue did not answer in time")
	errBusNoConnection = errors.New("cluster bus: no NATS connection or broker")
)

// Bus spreads over the nodes of a cluster, on core NATS, what a
// Broker delivers and does not store. Stored chat messages are not its
// business: every node delivers those from the replicated log.
//
//   - Topics (/topic/…, /sub/… other than stored room messages): a SEND or
//     a server publish goes to NATS only, and every node, this one
//     included, delivers what comes back to its local subscribers. With one
//     path there is no duplicate, and each publisher's order, which NATS
//     keeps per connection, holds on every node.
//   - Queues (/queue/…): a node is in the NATS queue group of a queue while
//     it has a consumer of it. A SEND is a request that exactly one member
//     answers after taking the message into its local queue, where local
//     round robin, acks and redelivery work as on a single node. When no
//     node has a consumer the message waits on the sending node and is
//     offered again as soon as some node announces one (and every beat).
//   - User destinations: SendToUser reaches the user's sessions on every node.
//   - Presence: each node publishes who is connected and who is in which
//     presence list (a room's), as numbered deltas, a beat every
//     presenceBeat carrying the latest number, and full snapshots on
//     request. A receiver that sees a gap asks for a snapshot; a node
//     silent for presenceTTL is dropped with its users, and one that
//     closes its bus says goodbye.
//
// Delivery is NATS core's: at most once. Messages published while a node
// is cut off from NATS are lost for the others (nats.go buffers a few MiB
// while reconnecting).
//
// It is the broker's Bus (internal/broker/bus.go), attached by newClusterBus.
//
// Goroutines, all ended and awaited by Close: recvLoop (every
// subscription's messages, in the order the connection got them),
// presenceLoop (the only publisher of presence, so that its sequence
// numbers are in wire order; beats and expiry) and queueLoop (offers held
// queue messages to other nodes). Every method may be called concurrently.
type Bus struct {
	nc   *nats.Conn // the lead's connection; the bus never closes it
	b    *broker.Broker
	node string // this node's name in the cluster, unique
	inst string // this run of the node: a restarted node is a new one
	log  *slog.Logger

	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the three loops
	closeOnce sync.Once

	in   chan *nats.Msg       // every subscription delivers here, in arrival order
	subs []*nats.Subscription // the wildcard subscriptions; set before the loops start

	qmu     sync.Mutex
	qsubs   map[string]*nats.Subscription // queue destination → this node's queue-group subscription
	qclosed bool                          // Close ran: subscribe no more

	presenceDue chan struct{} // local presence changed (capacity 1, never blocks)
	snapshotDue chan struct{} // a node asked for our snapshot (capacity 1)
	queuesDue   chan struct{} // held queue messages may find a consumer now (capacity 1)

	pubFailing atomic.Bool // a publish failed and was logged; reset by the next that works

	seq uint64 // presence sequence number: presenceLoop's, then Close's

	pmu     sync.RWMutex                   // a leaf lock: taken under b.mu and chatSTOMP.mu, and nothing is taken under it
	local   map[string]map[string]struct{} // presence key → users present on this node
	changed map[PresenceKey]struct{}       // local entries changed since the last delta
	nodes   map[string]*remoteNode         // the other live nodes, by name
}

// clusterBus is the broker's Bus.
var _ broker.Bus = (*Bus)(nil)

// NewBus joins b to the cluster over nc, as node (a name unique in
// the cluster), and attaches itself to b. Call it before b serves: the bus
// learns of connected users and room presence from the changes it sees, and
// queues made before it stay local. nc belongs to the caller, who closes it
// after Close; it must echo (no nats.NoEcho), because a node delivers its
// own topic messages as NATS brings them back. log gets the bus's own
// faults.
func NewBus(nc *nats.Conn, b *broker.Broker, node string, log *slog.Logger) (*Bus, error) {
	switch {
	case nc == nil || b == nil:
		return nil, errBusNoConnection
	case node == "":
		return nil, errors.New("cluster bus: empty node name")
	case nc.Opts.NoEcho:
		return nil, errors.New("cluster bus: the NATS connection must echo: a node delivers its own messages as they come back")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cb := &Bus{
		nc: nc, b: b, node: node, inst: rand.Text(), log: log.With("node", node),
		ctx: ctx, cancel: cancel,
		in:          make(chan *nats.Msg, busInboxDepth),
		qsubs:       make(map[string]*nats.Subscription),
		presenceDue: make(chan struct{}, 1),
		snapshotDue: make(chan struct{}, 1),
		queuesDue:   make(chan struct{}, 1),
		local:       make(map[string]map[string]struct{}),
		changed:     make(map[PresenceKey]struct{}),
		nodes:       make(map[string]*remoteNode),
	}
	for _, subj := range []string{busTopicSubject + "*", busUserSubject + "*", busQueueReadySubject + "*", busPresenceSubject + "*", busSyncSubject} {
		sub, err := nc.ChanSubscribe(subj, cb.in)
		if err != nil {
			cb.unsubscribe(cb.subs)
			cancel()
			return nil, fmt.Errorf("cluster bus: subscribe %s: %w", subj, err)
		}
		cb.subs = append(cb.subs, sub)
	}
	// Once the server has the subscriptions, this node gets everything
	// published after newClusterBus returns.
	if err := nc.FlushTimeout(busFlushTimeout); err != nil {
		cb.unsubscribe(cb.subs)
		cancel()
		return nil, fmt.Errorf("cluster bus: flush: %w", err)
	}
	if err := b.AttachBus(cb); err != nil {
		cb.unsubscribe(cb.subs)
		cancel()
		return nil, fmt.Errorf("cluster bus: %w", err)
	}
	cb.wg.Add(3)
	go cb.recvLoop()
	go cb.presenceLoop()
	go cb.queueLoop()
	// Every node, this one included, answers with a snapshot: the others
	// learn of this node, and this node of them.
	cb.publishRaw(busSyncSubject, nil)
	return cb, nil
}

// Close leaves the cluster: it unsubscribes, stops the loops and waits for
// them, tells the other nodes to drop this node's presence now, and
// detaches from the broker, which is a single node again afterwards.
// Close the broker first (its sessions' departures are published while the
// bus runs) and the NATS connection after. Queue messages held here while
// no node consumed them are lost. Only the first call does anything.
func (cb *Bus) Close() error {
	var errs []error
	cb.closeOnce.Do(func() {
		cb.qmu.Lock()
		cb.qclosed = true
		subs := slices.AppendSeq(slices.Clone(cb.subs), maps.Values(cb.qsubs))
		cb.qsubs = nil
		cb.qmu.Unlock()
		if err := cb.unsubscribe(subs); err != nil {
			errs = append(errs, err)
		}
		cb.cancel()
		cb.wg.Wait()
		cb.b.DetachBus(cb)
		if cb.nc.IsClosed() {
			return
		}
		cb.SendPresence(PresenceMsg{Kind: presenceKindBye})
		if err := cb.nc.FlushTimeout(busFlushTimeout); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("cluster bus: flush: %w", err))
		}
	})
	return errors.Join(errs...)
}

// unsubscribe ends subs. A connection closed under it has ended them already.
func (cb *Bus) unsubscribe(subs []*nats.Subscription) error {
	var errs []error
	for _, s := range subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, fmt.Errorf("cluster bus: unsubscribe %s: %w", s.Subject, err))
		}
	}
	return errors.Join(errs...)
}

// wake wakes the loop waiting on ch without ever blocking: a wake-up
// already pending covers this one too.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// publishRaw publishes data on subj. A failure is logged once until a
// publish works again: the callers (loops, the store's writer) have nobody
// to return it to, and a dead connection would otherwise log every beat.
func (cb *Bus) publishRaw(subj string, data []byte) {
	if err := cb.nc.Publish(subj, data); err != nil {
		if !cb.pubFailing.Swap(true) {
			cb.log.Error("cluster publish failed", "err", err, "subject", subj)
		}
		return
	}
	cb.pubFailing.Store(false)
}

// recvLoop handles every subscription's messages, one at a time in the
// order the connection received them, which keeps each publisher's order.
// Nothing it calls blocks: deliveries go to session outboxes.
func (cb *Bus) recvLoop() {
	defer cb.wg.Done()
	for {
		select {
		case <-cb.ctx.Done():
			return
		case m := <-cb.in:
			cb.dispatch(m)
		}
	}
}

func (cb *Bus) dispatch(m *nats.Msg) {
	switch subj := m.Subject; {
	case strings.HasPrefix(subj, busTopicSubject):
		cb.deliverTopic(m)
	case strings.HasPrefix(subj, busUserSubject):
		cb.deliverUser(m)
	case strings.HasPrefix(subj, busQueueSubject):
		cb.takeOffer(m)
	case strings.HasPrefix(subj, busQueueReadySubject):
		wake(cb.queuesDue)
	case strings.HasPrefix(subj, busPresenceSubject):
		cb.applyPresence(m.Data)
	case subj == busSyncSubject:
		if len(m.Data) == 0 || string(m.Data) == cb.node {
			wake(cb.snapshotDue)
		}
	}
}
