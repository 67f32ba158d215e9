package broker

import (
	"context"
	"errors"
	"maps"
	"slices"
	"stompbox/internal/stomp"
)

// bus.go: the broker's side of a cluster. The broker owns the Bus
// interface and calls nothing of the cluster but it; the cluster bus
// (cluster_bus*.go) implements it and hands remote traffic back through the
// exported methods below.

// Bus spreads over the nodes of a cluster what the broker delivers and does
// not store: topic messages, queue messages, messages for a user's
// sessions, and presence. Without one (a single node) the broker delivers
// everything itself, here.
//
// What the broker promises:
//   - A bus is attached once, with AttachBus, before the broker serves, and
//     is called until DetachBus. What happened before AttachBus (sessions
//     already connected, queues already made) is not told to it.
//   - Methods are called from the broker's goroutines (sessions' readers and
//     writers, the application's publishers), concurrently.
//   - NoteOnline and NotePresence are called with the lock held under which
//     the change was counted (the broker's, or the application's for room
//     presence), so that the bus sees the changes of one key in the order
//     they happened. They, RemoteOnline, RemotePresence, HeldIdle and
//     QueueConsumersChanged must not block; QueueConsumersChanged is called
//     with no broker lock held and may call back (QueueConsumers).
//
// What the bus promises:
//   - PublishTopic and PublishUser reach every node, this one included, as
//     DeliverRemoteTopic and DeliverRemoteUser: the broker does not deliver
//     them here itself, so there is one delivery path and one order.
//   - SendQueue has one node with a consumer of the queue take the message
//     (its broker's TakeRemoteQueue) and waits for the answer, bounded by
//     ctx and a timeout of its own; it reports taken=false, nil when no node
//     consumes the queue, and the broker then holds the message here.
//   - Held queue messages (HeldIdle, and every round of its own) are offered
//     to other nodes through Queues, QueueConsumers and OfferIdleQueue.
//   - Other nodes' presence changes are told with RemotePresenceChanged.
//   - The bus owns its goroutines, and calls the broker from them only
//     through the exported methods of this file, which never block on a
//     client (deliveries go to session outboxes). It detaches itself
//     (DetachBus) when it closes, after its goroutines ended.
type Bus interface {
	// PublishTopic sends a topic message to every node. An error (the bus
	// closed, the message too large for it) is the sender's.
	PublishTopic(dest string, headers []stomp.Header, body []byte) error
	// PublishUser sends a message for user's sessions subscribed to the
	// user destination dest to every node.
	PublishUser(user, dest string, headers []stomp.Header, body []byte) error
	// SendQueue hands a queue message to one consumer somewhere in the
	// cluster: taken reports that a node has it in its queue.
	SendQueue(ctx context.Context, dest string, headers []stomp.Header, body []byte) (taken bool, err error)
	// QueueConsumersChanged says that queue dest got its first consumer on
	// this node or lost its last (QueueConsumers has the count).
	QueueConsumersChanged(dest string)
	// HeldIdle says that a queue holds messages with no consumer here.
	HeldIdle()

	// NoteOnline says that user's first session on this node connected (on)
	// or their last went.
	NoteOnline(user string, on bool)
	// NotePresence says that user is (on) or is no longer present at key,
	// a presence list such as a room's, on this node.
	NotePresence(key, user string, on bool)
	// RemoteOnline reports whether user is connected to another live node.
	RemoteOnline(user string) bool
	// RemotePresence returns the users present at key on the other live
	// nodes, unsorted.
	RemotePresence(key string) []string
}

// attachedBus holds the attached Bus, so that it can sit in an
// atomic.Pointer.
type attachedBus struct{ Bus }

var errBusAttached = errors.New("broker: a bus is attached already")

// AttachBus makes bus carry the broker's cluster traffic from now on. Call
// it once, before the broker serves; it fails if a bus is attached. (It is
// atomic only so that a bus attached to a broker whose listeners already
// run, as in tests, is not a data race.)
func (b *Broker) AttachBus(bus Bus) error {
	if !b.bus.CompareAndSwap(nil, &attachedBus{bus}) {
		return errBusAttached
	}
	return nil
}

// DetachBus undoes AttachBus if bus is the one attached: the broker is a
// single node again.
func (b *Broker) DetachBus(bus Bus) {
	if h := b.bus.Load(); h != nil && h.Bus == bus {
		b.bus.CompareAndSwap(h, nil)
	}
}

// loadBus returns the attached bus, nil on a single node.
func (b *Broker) loadBus() Bus {
	if h := b.bus.Load(); h != nil {
		return h.Bus
	}
	return nil
}

// noteOnline tells the bus that user's first session connected (on) or
// their last went. The caller holds b.mu (see Bus). Without a bus it does
// nothing.
func (b *Broker) noteOnline(user string, on bool) {
	if bus := b.loadBus(); bus != nil {
		bus.NoteOnline(user, on)
	}
}

// NotePresence tells the cluster that user is (on) or is no longer (off)
// present at key on this node: a destination is being in that place (a
// room's presence list). The caller holds the lock under which it counted
// the change, so that the cluster sees the changes of one key in the order
// they happened; the bus only updates memory under its own leaf lock and
// never blocks. Without a bus it does nothing.
func (b *Broker) NotePresence(key, user string, on bool) {
	if bus := b.loadBus(); bus != nil {
		bus.NotePresence(key, user, on)
	}
}

// RemotePresence returns the users present at dest on the other live
// nodes of the cluster, unsorted; nil without a bus.
func (b *Broker) RemotePresence(dest string) []string {
	if bus := b.loadBus(); bus != nil {
		return bus.RemotePresence(dest)
	}
	return nil
}

// OnRemotePresence registers fn to be told that who is present at dest on
// other nodes changed (someone came or left there, or a node went away),
// so that the application can send its local subscribers the new list. fn
// runs on a cluster bus goroutine and must not block. Register before
// serving; without a bus it is never called.
func (b *Broker) OnRemotePresence(fn func(dest string)) {
	b.onRemote = append(b.onRemote, fn)
}

// RemotePresenceChanged runs the OnRemotePresence hooks for key. The bus
// calls it when the presence at key on other nodes changed.
func (b *Broker) RemotePresenceChanged(key string) {
	for _, fn := range b.onRemote {
		fn(key)
	}
}

// DeliverRemoteTopic delivers a topic message that came over the bus (from
// any node, this one included) to this node's subscribers of dest.
func (b *Broker) DeliverRemoteTopic(dest string, headers []stomp.Header, body []byte) {
	b.publishTopic(dest, &message{dest: dest, headers: headers, body: body})
}

// DeliverRemoteUser delivers a message that came over the bus to user's
// sessions on this node subscribed to the user destination dest.
func (b *Broker) DeliverRemoteUser(user, dest string, headers []stomp.Header, body []byte) {
	b.publishTopic(userKey(user, 0, dest), &message{dest: dest, headers: headers, body: body})
}

// TakeRemoteQueue takes a queue message the bus chose this node for into
// the local queue dest (queue.offer): taken is false when the queue has no
// consumer here any more, so that the bus asks another node; a full queue
// refuses it with errQueueFull.
func (b *Broker) TakeRemoteQueue(dest string, headers []stomp.Header, body []byte) (taken bool, err error) {
	q := b.lookupQueue(dest)
	if q == nil {
		return false, nil // no consumer here
	}
	m := &message{dest: dest, headers: headers, body: body}
	b.readExpiry(m)
	if m.expiredAt(b.cfg.Now().UnixMilli()) {
		b.ql.expired.Add(1)
		return true, nil // its time is up: taken, and gone
	}
	return q.offer(m)
}

// Queues returns the names of the broker's queues, for the bus's rounds.
func (b *Broker) Queues() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Collect(maps.Keys(b.queues))
}

// QueueConsumers is how many consumers queue dest has on this node.
func (b *Broker) QueueConsumers(dest string) int {
	if q := b.lookupQueue(dest); q != nil {
		return q.consumerCount()
	}
	return 0
}

// OfferIdleQueue takes what queue dest holds while it has no consumer on
// this node (nothing while it has one) and hands the messages, oldest
// first, to offer, which reports whether another node took each. At the
// first one not taken it stops, and that one and the rest go back to the
// head of the queue.
func (b *Broker) OfferIdleQueue(dest string, offer func(dest string, headers []stomp.Header, body []byte) bool) {
	q := b.lookupQueue(dest)
	if q == nil {
		return
	}
	held := q.takeIdle()
	for i, m := range held {
		if !offer(m.dest, m.headers, m.body) {
			q.putFront(held[i:], nil)
			return
		}
	}
}
