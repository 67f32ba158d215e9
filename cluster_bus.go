package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"stompbox/internal/stomp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Cluster bus subjects. A destination, user or node name is always one
// subject token, base64url without padding (busToken): '.', '*', '>' and
// spaces in it can never split a subject or act as a wildcard.
const (
	busTopicSubject      = "stompbox.bus.topic."    // + token(destination): topic messages; every node subscribes to stompbox.bus.topic.*
	busQueueSubject      = "stompbox.bus.queue."    // + token(destination): queue offers, requests to the queue group busQueueGroup
	busQueueReadySubject = "stompbox.bus.qready."   // + token(destination): a node has its first consumer of the queue
	busUserSubject       = "stompbox.bus.user."     // + token(user): messages for a user's sessions
	busPresenceSubject   = "stompbox.bus.presence." // + token(node): a node's presence deltas, snapshots, beats and goodbye
	busSyncSubject       = "stompbox.bus.sync"      // body: a node name, or empty for every node: publish a presence snapshot
	busQueueGroup        = "stompbox"               // the NATS queue group of every queue subject: one node takes each offer
)

// Cluster bus timing and bounds.
const (
	presenceBeat = time.Second // how often a node says it is alive; the beat carries its presence sequence number
	// presenceTTL is how long a node may stay silent before the others drop
	// it and its users: three beats, so that one late beat (a GC pause, a
	// busy route) does not make a whole node's users flicker.
	presenceTTL       = 3 * presenceBeat
	presencePartBytes = 256 << 10       // presence per NATS message at most; NATS's default max_payload is 1 MiB
	queueOfferTimeout = 2 * time.Second // a node that took a queue message answers at once; past this it is an error
	queueOfferTries   = 3               // nodes asked in turn when the chosen one has just lost its consumers
	busInboxDepth     = 64 << 10        // messages waiting for recvLoop; past it NATS drops and reports a slow consumer
	busFlushTimeout   = 5 * time.Second // round trip to the NATS server when the bus starts and stops
)

// Cluster bus wire values: what nodes say to each other.
const (
	busWireVersion    = 1             // first byte of every topic, queue and user message (appendBusMessage)
	queueReplyTaken   = "taken"       // offer answer: in this node's queue now
	queueReplyFull    = "full"        // offer answer: this node's queue is full (errQueueFull)
	queueReplyRefused = "no-consumer" // offer answer: no consumer here any more; ask another node
	presenceKindDelta = "delta"       // changes since the previous sequence number
	presenceKindSnap  = "snapshot"    // everything, in parts; the last part completes it
	presenceKindBeat  = "beat"        // alive, at this sequence number
	presenceKindBye   = "bye"         // the node leaves: drop its users now
	connectedKey      = ""            // the presence key of being connected at all (NoteOnline, RemoteOnline)
)

// Cluster bus errors.
var (
	errBusClosed       = errors.New("cluster bus closed")
	errBadBusMessage   = errors.New("cluster bus: malformed message")
	errQueueNoAnswer   = stomp.NewError("queue did not answer in time")
	errBusNoConnection = errors.New("cluster bus: no NATS connection or broker")
)

// clusterBus spreads over the nodes of a cluster, on core NATS, what a
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
// It is the broker's Bus (broker_bus.go), attached by newClusterBus.
//
// Goroutines, all ended and awaited by Close: recvLoop (every
// subscription's messages, in the order the connection got them),
// presenceLoop (the only publisher of presence, so that its sequence
// numbers are in wire order; beats and expiry) and queueLoop (offers held
// queue messages to other nodes). Every method may be called concurrently.
type clusterBus struct {
	nc   *nats.Conn // the lead's connection; the bus never closes it
	b    *Broker
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
	changed map[presenceKey]struct{}       // local entries changed since the last delta
	nodes   map[string]*remoteNode         // the other live nodes, by name
}

// clusterBus is the broker's Bus.
var _ Bus = (*clusterBus)(nil)

// presenceKey is one user at one presence key.
type presenceKey struct{ key, user string }

// remoteNode is what this node knows of another node's presence.
type remoteNode struct {
	inst     string
	seq      uint64    // state is complete up to this sequence number, when synced
	synced   bool      // false after a gap, until a snapshot arrives
	lastSeen time.Time // anything from the node; presenceTTL after it the node is gone
	asked    time.Time // when we last asked it for a snapshot
	state    map[string]map[string]struct{}
	snap     map[string]map[string]struct{} // the snapshot being received, part by part
	snapSeq  uint64
}

// presenceMsg is what nodes publish on busPresenceSubject, as JSON.
type presenceMsg struct {
	Kind string          `json:"kind"`
	Node string          `json:"node"`
	Inst string          `json:"inst"`
	Seq  uint64          `json:"seq"`
	Part int             `json:"part,omitempty"` // snapshot part, from 0
	Last bool            `json:"last,omitempty"` // the snapshot's last part
	Set  []presenceGroup `json:"set,omitempty"`
}

// presenceGroup is a change of, or in a snapshot all of, one presence key.
type presenceGroup struct {
	Key string   `json:"key"`
	On  []string `json:"on,omitempty"`
	Off []string `json:"off,omitempty"`
}

// newClusterBus joins b to the cluster over nc, as node (a name unique in
// the cluster), and attaches itself to b. Call it before b serves: the bus
// learns of connected users and room presence from the changes it sees, and
// queues made before it stay local. nc belongs to the caller, who closes it
// after Close; it must echo (no nats.NoEcho), because a node delivers its
// own topic messages as NATS brings them back. log gets the bus's own
// faults.
func newClusterBus(nc *nats.Conn, b *Broker, node string, log *slog.Logger) (*clusterBus, error) {
	switch {
	case nc == nil || b == nil:
		return nil, errBusNoConnection
	case node == "":
		return nil, errors.New("cluster bus: empty node name")
	case nc.Opts.NoEcho:
		return nil, errors.New("cluster bus: the NATS connection must echo: a node delivers its own messages as they come back")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cb := &clusterBus{
		nc: nc, b: b, node: node, inst: rand.Text(), log: log.With("node", node),
		ctx: ctx, cancel: cancel,
		in:          make(chan *nats.Msg, busInboxDepth),
		qsubs:       make(map[string]*nats.Subscription),
		presenceDue: make(chan struct{}, 1),
		snapshotDue: make(chan struct{}, 1),
		queuesDue:   make(chan struct{}, 1),
		local:       make(map[string]map[string]struct{}),
		changed:     make(map[presenceKey]struct{}),
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
func (cb *clusterBus) Close() error {
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
		cb.sendPresence(presenceMsg{Kind: presenceKindBye})
		if err := cb.nc.FlushTimeout(busFlushTimeout); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("cluster bus: flush: %w", err))
		}
	})
	return errors.Join(errs...)
}

// unsubscribe ends subs. A connection closed under it has ended them already.
func (cb *clusterBus) unsubscribe(subs []*nats.Subscription) error {
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

// busToken is s as one NATS subject token.
func busToken(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// publishRaw publishes data on subj. A failure is logged once until a
// publish works again: the callers (loops, the store's writer) have nobody
// to return it to, and a dead connection would otherwise log every beat.
func (cb *clusterBus) publishRaw(subj string, data []byte) {
	if err := cb.nc.Publish(subj, data); err != nil {
		if !cb.pubFailing.Swap(true) {
			cb.log.Error("cluster publish failed", "err", err, "subject", subj)
		}
		return
	}
	cb.pubFailing.Store(false)
}

// PublishTopic sends a topic message to every node, this one included
// (Bus). It returns NATS's error (a closed connection, a message over
// max_payload); the caller's session then gets "internal error" and the
// log the rest.
func (cb *clusterBus) PublishTopic(dest string, headers []stomp.Header, body []byte) error {
	return cb.publish(busTopicSubject, "", busMessage{dest: dest, headers: headers, body: body})
}

// PublishUser sends a message for user's sessions to every node (Bus).
func (cb *clusterBus) PublishUser(user, dest string, headers []stomp.Header, body []byte) error {
	return cb.publish(busUserSubject, user, busMessage{dest: dest, headers: headers, body: body})
}

// publish sends m to every node: to its topic (user "") or to user's
// sessions (prefix busUserSubject).
func (cb *clusterBus) publish(prefix, user string, m busMessage) error {
	if cb.ctx.Err() != nil {
		return errBusClosed
	}
	token := m.dest
	if prefix == busUserSubject {
		token = user
	}
	if err := cb.nc.Publish(prefix+busToken(token), appendBusMessage(nil, user, m)); err != nil {
		return fmt.Errorf("cluster publish: %w", err)
	}
	return nil
}

// busMessage is a topic, queue or user message as the bus carries it.
type busMessage struct {
	dest    string
	headers []stomp.Header
	body    []byte
}

// appendBusMessage appends the bus form of m for user's sessions (user ""
// for topics and queues): busWireVersion; the destination, the user and
// each header's key and value as a uvarint length and the bytes, with the
// header count as a uvarint before the headers; then the body to the end.
func appendBusMessage(dst []byte, user string, m busMessage) []byte {
	n := 1 + 3*binary.MaxVarintLen32 + len(m.dest) + len(user) + len(m.body)
	for _, h := range m.headers {
		n += 2*binary.MaxVarintLen32 + len(h.Key) + len(h.Value)
	}
	dst = slices.Grow(dst, n)
	dst = append(dst, busWireVersion)
	dst = appendBusString(dst, m.dest)
	dst = appendBusString(dst, user)
	dst = binary.AppendUvarint(dst, uint64(len(m.headers)))
	for _, h := range m.headers {
		dst = appendBusString(dst, h.Key)
		dst = appendBusString(dst, h.Value)
	}
	return append(dst, m.body...)
}

func appendBusString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// decodeBusMessage reverses appendBusMessage. The message's body shares
// data's memory (nats.go gives each message its own).
func decodeBusMessage(data []byte) (user string, m busMessage, err error) {
	if len(data) == 0 || data[0] != busWireVersion {
		return "", busMessage{}, errBadBusMessage
	}
	d := busDecoder{rest: data[1:]}
	dest := d.string()
	user = d.string()
	n := d.uvarint()
	if d.bad || n > uint64(len(d.rest))/2 { // each header takes two bytes at least
		return "", busMessage{}, errBadBusMessage
	}
	var headers []stomp.Header
	if n > 0 {
		headers = make([]stomp.Header, n)
		for i := range headers {
			headers[i].Key = d.string()
			headers[i].Value = d.string()
		}
	}
	if d.bad || dest == "" {
		return "", busMessage{}, errBadBusMessage
	}
	return user, busMessage{dest: dest, headers: headers, body: d.rest}, nil
}

// busDecoder reads appendBusMessage's fields; bad sticks once a read runs
// past the end.
type busDecoder struct {
	rest []byte
	bad  bool
}

func (d *busDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.rest)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.rest = d.rest[n:]
	return v
}

func (d *busDecoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.rest)) {
		d.bad = true
		return ""
	}
	s := string(d.rest[:n])
	d.rest = d.rest[n:]
	return s
}

// recvLoop handles every subscription's messages, one at a time in the
// order the connection received them, which keeps each publisher's order.
// Nothing it calls blocks: deliveries go to session outboxes.
func (cb *clusterBus) recvLoop() {
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

func (cb *clusterBus) dispatch(m *nats.Msg) {
	switch subj := m.Subject; {
	case strings.HasPrefix(subj, busTopicSubject):
		if _, msg, err := decodeBusMessage(m.Data); err != nil {
			cb.log.Error("cluster message dropped", "err", err, "subject", subj)
		} else {
			cb.b.DeliverRemoteTopic(msg.dest, msg.headers, msg.body)
		}
	case strings.HasPrefix(subj, busUserSubject):
		if user, msg, err := decodeBusMessage(m.Data); err != nil || user == "" {
			cb.log.Error("cluster message dropped", "err", err, "subject", subj)
		} else {
			cb.b.DeliverRemoteUser(user, msg.dest, msg.headers, msg.body)
		}
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

// offerResult is how a queue offer went, short of an error.
type offerResult int

const (
	offerTaken   offerResult = iota // a node has it in its queue
	offerRefused                    // the node chosen had just lost its consumers
	offerNobody                     // no node consumes the queue
)

// SendQueue hands a message to one consumer of queue dest somewhere in the
// cluster (Bus): one node in the queue's group takes it into its local
// queue and answers, so a RECEIPT for the SEND means it is in some node's
// queue, and a full one is refused (errQueueFull) as on a single node. When
// no node has a consumer it reports taken=false: the broker holds the
// message in this node's queue (up to its depth), and the bus offers it
// again when a node announces one, and every presenceBeat (offerHeld). It
// runs on the sender's reader goroutine and waits for the answer, at most
// queueOfferTimeout (errQueueNoAnswer; the message may then have been
// taken or not).
func (cb *clusterBus) SendQueue(ctx context.Context, dest string, headers []stomp.Header, body []byte) (bool, error) {
	if cb.ctx.Err() != nil {
		return false, errBusClosed
	}
	subj := busQueueSubject + busToken(dest)
	data := appendBusMessage(nil, "", busMessage{dest: dest, headers: headers, body: body})
	for range queueOfferTries {
		res, err := cb.offer(ctx, subj, data)
		if err != nil {
			return false, err
		}
		if res == offerTaken {
			return true, nil
		}
		if res == offerNobody {
			break
		}
	}
	return false, nil
}

// offer asks the queue group of subj to take data.
func (cb *clusterBus) offer(ctx context.Context, subj string, data []byte) (offerResult, error) {
	ctx, cancel := context.WithTimeout(ctx, queueOfferTimeout)
	defer cancel()
	reply, err := cb.nc.RequestWithContext(ctx, subj, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return offerNobody, nil
	case errors.Is(err, context.DeadlineExceeded):
		return 0, errQueueNoAnswer
	case err != nil:
		return 0, fmt.Errorf("cluster queue offer: %w", err)
	}
	switch string(reply.Data) {
	case queueReplyTaken:
		return offerTaken, nil
	case queueReplyFull:
		return 0, errQueueFull
	}
	return offerRefused, nil
}

// takeOffer answers a queue offer made to this node: into the local queue
// if it still has a consumer here, else refused so that the sender asks
// another node.
func (cb *clusterBus) takeOffer(m *nats.Msg) {
	reply := queueReplyRefused
	if _, msg, err := decodeBusMessage(m.Data); err != nil {
		cb.log.Error("cluster queue offer refused", "err", err, "subject", m.Subject)
	} else if taken, err := cb.b.TakeRemoteQueue(msg.dest, msg.headers, msg.body); err != nil {
		reply = queueReplyFull
	} else if taken {
		reply = queueReplyTaken
	}
	if err := m.Respond([]byte(reply)); err != nil {
		cb.log.Error("cluster queue answer failed", "err", err, "subject", m.Subject)
	}
}

// QueueConsumersChanged makes this node a member of queue dest's group
// while the queue has a consumer here, and not otherwise (Bus). The queue
// calls it when its first consumer comes and its last goes (outside its
// lock), queueLoop every beat; it reads the current count, so calls that
// race settle on the truth.
func (cb *clusterBus) QueueConsumersChanged(dest string) {
	cb.qmu.Lock()
	defer cb.qmu.Unlock()
	if cb.qclosed {
		return
	}
	want := cb.b.QueueConsumers(dest) > 0
	sub, have := cb.qsubs[dest]
	switch {
	case want && !have:
		token := busToken(dest)
		s, err := cb.nc.ChanQueueSubscribe(busQueueSubject+token, busQueueGroup, cb.in)
		if err != nil {
			cb.log.Error("cluster queue subscribe failed", "err", err, "destination", dest)
			return
		}
		cb.qsubs[dest] = s
		// Nodes holding messages for the queue offer them now. This is
		// published after the subscription on the same connection, so the
		// server knows the new member by the time they ask.
		cb.publishRaw(busQueueReadySubject+token, nil)
	case !want && have:
		if err := cb.unsubscribe([]*nats.Subscription{sub}); err != nil {
			cb.log.Error("cluster queue unsubscribe failed", "err", err, "destination", dest)
		}
		delete(cb.qsubs, dest)
		wake(cb.queuesDue) // what is held here, or comes back unacknowledged, goes elsewhere
	}
}

// HeldIdle is told that a queue holds messages with no consumer here (Bus).
func (cb *clusterBus) HeldIdle() {
	wake(cb.queuesDue)
}

// queueLoop offers the messages that queues hold while they have no
// consumer here to the other nodes, when woken (a node announced a
// consumer, this node lost its last one) and every beat.
func (cb *clusterBus) queueLoop() {
	defer cb.wg.Done()
	for {
		select {
		case <-cb.ctx.Done():
			return
		case <-cb.queuesDue:
			cb.offerHeld()
		}
	}
}

// offerHeld offers each idle queue's messages in order, and gives back
// what nobody took, stopping at the first refusal. A message whose offer
// timed out is given back too, so it may reach two consumers: at least
// once here, rather than lost.
func (cb *clusterBus) offerHeld() {
	for _, name := range cb.b.Queues() {
		if cb.ctx.Err() != nil {
			return
		}
		cb.QueueConsumersChanged(name) // heals a subscribe that failed
		subj := ""
		cb.b.OfferIdleQueue(name, func(dest string, headers []stomp.Header, body []byte) bool {
			if subj == "" {
				subj = busQueueSubject + busToken(name)
			}
			res, err := cb.offer(cb.ctx, subj, appendBusMessage(nil, "", busMessage{dest: dest, headers: headers, body: body}))
			if err != nil && cb.ctx.Err() == nil && !errors.Is(err, errQueueFull) {
				cb.log.Warn("held queue message not offered", "err", err, "destination", name)
			}
			return err == nil && res == offerTaken
		})
	}
}

// NoteOnline records that user's first session on this node connected
// (on) or their last went, under connectedKey (Bus).
func (cb *clusterBus) NoteOnline(user string, on bool) {
	cb.NotePresence(connectedKey, user, on)
}

// NotePresence records a change of this node's presence for the next
// delta (Bus): the caller holds its own lock.
func (cb *clusterBus) NotePresence(key, user string, on bool) {
	cb.pmu.Lock()
	users := cb.local[key]
	if on {
		if users == nil {
			users = make(map[string]struct{})
			cb.local[key] = users
		}
		users[user] = struct{}{}
	} else if users != nil {
		delete(users, user)
		if len(users) == 0 {
			delete(cb.local, key)
		}
	}
	cb.changed[presenceKey{key, user}] = struct{}{}
	cb.pmu.Unlock()
	wake(cb.presenceDue)
}

// RemoteOnline reports whether user is connected to another live node.
func (cb *clusterBus) RemoteOnline(user string) bool {
	cb.pmu.RLock()
	defer cb.pmu.RUnlock()
	for _, n := range cb.nodes {
		if _, ok := n.state[connectedKey][user]; ok {
			return true
		}
	}
	return false
}

// RemotePresence returns the users present at key on other live nodes,
// unsorted, with a user on two nodes named twice.
func (cb *clusterBus) RemotePresence(key string) []string {
	cb.pmu.RLock()
	defer cb.pmu.RUnlock()
	var users []string
	for _, n := range cb.nodes {
		for u := range n.state[key] {
			users = append(users, u)
		}
	}
	return users
}

// presenceLoop is the only goroutine that publishes presence: deltas when
// local presence changed, a snapshot when asked, a beat every presenceBeat.
// Each beat it also drops the nodes silent for presenceTTL and wakes
// queueLoop.
func (cb *clusterBus) presenceLoop() {
	defer cb.wg.Done()
	beat := time.NewTicker(presenceBeat)
	defer beat.Stop()
	for {
		select {
		case <-cb.ctx.Done():
			return
		case <-cb.presenceDue:
			cb.publishChanges()
		case <-cb.snapshotDue:
			cb.publishSnapshot()
		case now := <-beat.C:
			cb.sendPresence(presenceMsg{Kind: presenceKindBeat, Seq: cb.seq})
			cb.expireNodes(now)
			wake(cb.queuesDue)
		}
	}
}

// publishChanges publishes the local changes since the last delta, as the
// state they ended in, in as many numbered parts as they need.
func (cb *clusterBus) publishChanges() {
	cb.pmu.Lock()
	keys := slices.SortedFunc(maps.Keys(cb.changed), func(a, b presenceKey) int {
		return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.user, b.user))
	})
	sp := presenceSplitter{budget: cb.partBudget()}
	for _, k := range keys {
		_, on := cb.local[k.key][k.user]
		sp.add(k.key, k.user, on)
	}
	clear(cb.changed)
	cb.pmu.Unlock()
	for _, part := range sp.done() {
		cb.seq++
		cb.sendPresence(presenceMsg{Kind: presenceKindDelta, Seq: cb.seq, Set: part})
	}
}

// publishSnapshot publishes all of this node's presence under a new
// sequence number, in parts; it covers the changes not yet in a delta.
func (cb *clusterBus) publishSnapshot() {
	cb.pmu.Lock()
	sp := presenceSplitter{budget: cb.partBudget()}
	for key, users := range cb.local {
		for u := range users {
			sp.add(key, u, true)
		}
	}
	clear(cb.changed)
	cb.pmu.Unlock()
	parts := sp.done()
	if len(parts) == 0 {
		parts = [][]presenceGroup{nil}
	}
	cb.seq++
	for i, part := range parts {
		cb.sendPresence(presenceMsg{Kind: presenceKindSnap, Seq: cb.seq, Part: i, Last: i == len(parts)-1, Set: part})
	}
}

// partBudget is how many bytes of presence go in one NATS message.
func (cb *clusterBus) partBudget() int {
	if mp := int(cb.nc.MaxPayload()); mp > 0 && mp/2 < presencePartBytes {
		return mp / 2
	}
	return presencePartBytes
}

func (cb *clusterBus) sendPresence(pm presenceMsg) {
	pm.Node, pm.Inst = cb.node, cb.inst
	data, err := json.Marshal(pm)
	if err != nil {
		cb.log.Error("cluster presence not encoded", "err", err)
		return
	}
	cb.publishRaw(busPresenceSubject+busToken(cb.node), data)
}

// presenceSplitter cuts presence into groups that fit the budget per
// message, by an upper bound of their JSON size.
type presenceSplitter struct {
	budget int
	size   int
	cur    []presenceGroup
	parts  [][]presenceGroup
}

func (s *presenceSplitter) add(key, user string, on bool) {
	n := jsonLen(user) + 1
	last := len(s.cur) - 1
	if last < 0 || s.cur[last].Key != key || s.size+n > s.budget {
		head := jsonLen(key) + len(`{"key":,"on":[],"off":[]},`)
		if len(s.cur) > 0 && s.size+head+n > s.budget {
			s.parts = append(s.parts, s.cur)
			s.cur, s.size = nil, 0
		}
		s.cur = append(s.cur, presenceGroup{Key: key})
		s.size += head
		last = len(s.cur) - 1
	}
	if g := &s.cur[last]; on {
		g.On = append(g.On, user)
	} else {
		g.Off = append(g.Off, user)
	}
	s.size += n
}

func (s *presenceSplitter) done() [][]presenceGroup {
	if len(s.cur) > 0 {
		s.parts = append(s.parts, s.cur)
	}
	return s.parts
}

// jsonLen bounds the length of s as a JSON string: encoding/json writes
// control characters and <, >, & as \u00XX, and U+2028/9 as six bytes for
// three (counted as two per byte of any non-ASCII character).
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 6
		case c == '"' || c == '\\' || c >= 0x80:
			n += 2
		default:
			n++
		}
	}
	return n
}

// applyPresence takes in a node's presence message and tells the broker's
// remote presence hooks which lists changed.
func (cb *clusterBus) applyPresence(data []byte) {
	var pm presenceMsg
	if err := json.Unmarshal(data, &pm); err != nil || pm.Node == "" {
		cb.log.Error("cluster presence dropped", "err", err)
		return
	}
	if pm.Inst == cb.inst {
		return // our own, back from NATS
	}
	now := time.Now()
	changed := make(map[string]struct{})
	ask := false
	cb.pmu.Lock()
	n := cb.nodes[pm.Node]
	if n != nil && n.inst != pm.Inst {
		cb.dropNodeLocked(pm.Node, n, changed) // restarted: the last run's word is void
		n = nil
	}
	if n == nil && pm.Kind != presenceKindBye {
		n = &remoteNode{inst: pm.Inst, state: make(map[string]map[string]struct{})}
		cb.nodes[pm.Node] = n
	}
	if n != nil {
		n.lastSeen = now
		ask = cb.applyLocked(pm, n, changed)
		if ask && now.Sub(n.asked) >= presenceBeat {
			n.asked = now
		} else {
			ask = false
		}
	}
	cb.pmu.Unlock()
	if ask {
		cb.publishRaw(busSyncSubject, []byte(pm.Node))
	}
	cb.presenceChanged(changed)
}

// applyLocked applies pm to n and reports whether n must be asked for a
// snapshot: it skipped a sequence number, or we joined after it started.
func (cb *clusterBus) applyLocked(pm presenceMsg, n *remoteNode, changed map[string]struct{}) bool {
	switch pm.Kind {
	case presenceKindBye:
		cb.dropNodeLocked(pm.Node, n, changed)
	case presenceKindSnap:
		if pm.Part == 0 {
			n.snap, n.snapSeq = make(map[string]map[string]struct{}), pm.Seq
		}
		if n.snap == nil || n.snapSeq != pm.Seq {
			n.snap, n.synced = nil, false // a part went missing
			return true
		}
		for _, g := range pm.Set {
			for _, u := range g.On {
				addPresence(n.snap, g.Key, u)
			}
		}
		if !pm.Last {
			return false
		}
		for key, users := range n.state {
			for u := range users {
				if _, ok := n.snap[key][u]; !ok {
					cb.setRemoteLocked(n, key, u, false, changed)
				}
			}
		}
		for key, users := range n.snap {
			for u := range users {
				cb.setRemoteLocked(n, key, u, true, changed)
			}
		}
		n.snap, n.seq, n.synced = nil, pm.Seq, true
	case presenceKindDelta:
		if !n.synced || pm.Seq != n.seq+1 {
			n.synced = false
			return true
		}
		for _, g := range pm.Set {
			for _, u := range g.On {
				cb.setRemoteLocked(n, g.Key, u, true, changed)
			}
			for _, u := range g.Off {
				cb.setRemoteLocked(n, g.Key, u, false, changed)
			}
		}
		n.seq = pm.Seq
	case presenceKindBeat:
		if !n.synced || pm.Seq != n.seq {
			n.synced = false
			return true
		}
	}
	return false
}

func addPresence(m map[string]map[string]struct{}, key, user string) {
	users := m[key]
	if users == nil {
		users = make(map[string]struct{})
		m[key] = users
	}
	users[user] = struct{}{}
}

// setRemoteLocked sets whether user is present at key on node n, and adds
// key to changed when that changes the cluster's list for key.
func (cb *clusterBus) setRemoteLocked(n *remoteNode, key, user string, on bool, changed map[string]struct{}) {
	if _, had := n.state[key][user]; had == on {
		return
	}
	before := cb.presentLocked(key, user)
	if on {
		addPresence(n.state, key, user)
	} else {
		delete(n.state[key], user)
		if len(n.state[key]) == 0 {
			delete(n.state, key)
		}
	}
	if cb.presentLocked(key, user) != before {
		changed[key] = struct{}{}
	}
}

// presentLocked reports whether user is present at key anywhere.
func (cb *clusterBus) presentLocked(key, user string) bool {
	if _, ok := cb.local[key][user]; ok {
		return true
	}
	for _, n := range cb.nodes {
		if _, ok := n.state[key][user]; ok {
			return true
		}
	}
	return false
}

// dropNodeLocked forgets node name and everyone on it.
func (cb *clusterBus) dropNodeLocked(name string, n *remoteNode, changed map[string]struct{}) {
	for key, users := range n.state {
		for u := range users {
			cb.setRemoteLocked(n, key, u, false, changed)
		}
	}
	delete(cb.nodes, name)
}

// expireNodes drops the nodes silent for presenceTTL.
func (cb *clusterBus) expireNodes(now time.Time) {
	changed := make(map[string]struct{})
	var gone []string
	cb.pmu.Lock()
	for name, n := range cb.nodes {
		if now.Sub(n.lastSeen) > presenceTTL {
			cb.dropNodeLocked(name, n, changed)
			gone = append(gone, name)
		}
	}
	cb.pmu.Unlock()
	for _, name := range gone {
		cb.log.Info("cluster node silent, its users dropped", "peer", name, "silent-for", presenceTTL)
	}
	cb.presenceChanged(changed)
}

// presenceChanged runs the broker's remote presence hooks for each key
// whose list changed (not for connectedKey: isOnline asks when it needs to).
func (cb *clusterBus) presenceChanged(changed map[string]struct{}) {
	for key := range changed {
		if key == connectedKey {
			continue
		}
		cb.b.RemotePresenceChanged(key)
	}
}
