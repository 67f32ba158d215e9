package broker

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// queue is a /queue/ destination: each message goes to exactly one consumer,
// round-robin, and waits in memory while there is none, within the caps of
// queue_limits.go (count, bytes, expiry). In a cluster the queue of each
// node holds that node's consumers; the bus picks the node (see
// Bus.SendQueue) and is told when the first consumer comes and the last
// goes.
//
// Locking: mu guards consumers, next, pending, bytes and gone; the broker's
// mu, when both are taken, comes first. Delivery under mu only pushes onto
// outboxes, which never blocks.
type queue struct {
	name    string
	b       *Broker
	bus     Bus          // the broker's bus when the queue was made; nil on a single node
	touched atomic.Int64 // last looked up, Unix nanoseconds of the broker's clock

	mu        sync.Mutex
	consumers []*Subscription
	next      int
	pending   []*message
	bytes     int64 // of pending, as the caps count them
	gone      bool  // forgotten by sweepQueues: look the name up again
}

// queueFor returns the queue named dest, creating it, for a subscriber.
func (b *Broker) queueFor(dest string) *queue {
	q, _ := b.openQueue(dest, false)
	return q
}

// openQueue returns the queue named dest, creating it; with bounded, it
// refuses to make one more than MaxQueues (a SEND's queue; subscribers
// are bounded by their subscription limits).
func (b *Broker) openQueue(dest string, bounded bool) (*queue, error) {
	now := b.cfg.Now().UnixNano()
	b.mu.RLock()
	q := b.queues[dest]
	b.mu.RUnlock()
	if q != nil {
		q.touched.Store(now)
		return q, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if q = b.queues[dest]; q == nil {
		if lim := b.cfg.MaxQueues; bounded && lim > 0 && len(b.queues) >= lim {
			return nil, b.refuseQueue(errTooManyQueues, strconv.Itoa(lim), "max-queues")
		}
		q = &queue{name: dest, b: b, bus: b.loadBus()}
		b.queues[dest] = q
		b.armSweep()
	}
	q.touched.Store(now)
	return q, nil
}

// lookupQueue returns the queue named dest, nil if there is none.
func (b *Broker) lookupQueue(dest string) *queue {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.queues[dest]
}

// putQueue hands m, stamped with its expiry, to the queue dest: to a
// consumer, else held within the caps. A queue forgotten meanwhile is
// looked up again.
func (b *Broker) putQueue(dest string, m *message) error {
	for {
		q, err := b.openQueue(dest, true)
		if err != nil {
			return err
		}
		if err := q.put(m); err != errQueueGone {
			return err
		}
	}
}

// errQueueGone: the queue was forgotten between its lookup and its use.
var errQueueGone = errors.New("queue forgotten")

// put delivers m to the next consumer, or holds it. A full queue refuses m,
// so that a message acknowledged with a RECEIPT is never silently dropped.
func (q *queue) put(m *message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return errQueueGone
	}
	if q.deliverLocked(m, nil) {
		return nil
	}
	return q.holdLocked(m)
}

// offer is put for a message the cluster bus chose this node for
// (Broker.TakeRemoteQueue): it is
// refused (false) when the queue has no consumer here any more, so that
// the bus asks another node rather than hold it where nobody reads. The
// caps hold here as for a SEND to this node.
func (q *queue) offer(m *message) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.consumers) == 0 {
		return false, nil
	}
	if q.deliverLocked(m, nil) {
		return true, nil
	}
	if err := q.holdLocked(m); err != nil {
		return false, err
	}
	return true, nil
}

// takeIdle removes and returns what the queue holds while it has no
// consumer here, for the cluster bus to offer to other nodes; nothing
// while it has one. What no one took goes back with putFront.
func (q *queue) takeIdle() []*message {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.consumers) > 0 {
		return nil
	}
	q.dropExpiredLocked(q.b.cfg.Now().UnixMilli())
	held := q.pending
	q.pending = nil
	q.releaseLocked(held)
	return held
}

// consumerCount is how many consumers the queue has on this node.
func (q *queue) consumerCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.consumers)
}

// deliverLocked hands m to the next consumer that takes it, preferring one
// other than avoid.
func (q *queue) deliverLocked(m *message, avoid *Subscription) bool {
	n := len(q.consumers)
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < n; i++ {
			sub := q.consumers[(q.next+i)%n]
			if pass == 0 && sub == avoid && n > 1 {
				continue
			}
			if sub.deliver(m) {
				q.next = (q.next + i + 1) % n
				return true
			}
		}
		if avoid == nil {
			break
		}
	}
	return false
}

// addConsumer adds sub and hands it whatever was waiting. The first
// consumer makes the node a consumer of the queue in the cluster.
func (q *queue) addConsumer(sub *Subscription) {
	q.revive()
	q.mu.Lock()
	q.consumers = append(q.consumers, sub)
	first := len(q.consumers) == 1
	q.dropExpiredLocked(q.b.cfg.Now().UnixMilli())
	waiting := q.pending
	q.pending = nil
	for i, m := range waiting {
		if !q.deliverLocked(m, nil) {
			q.pending = append(q.pending, waiting[i:]...)
			q.releaseLocked(waiting[:i])
			break
		}
	}
	if len(q.pending) == 0 {
		q.releaseLocked(waiting)
	}
	q.mu.Unlock()
	if first && q.bus != nil {
		q.bus.QueueConsumersChanged(q.name)
	}
}

// revive files q under its name again if sweepQueues forgot it while a
// SUBSCRIBE was on its way to it (its hooks took longer than
// idleQueueGrace) and no new queue took the name meanwhile.
func (q *queue) revive() {
	q.mu.Lock()
	gone := q.gone
	q.mu.Unlock()
	if !gone {
		return
	}
	b := q.b
	b.mu.Lock()
	defer b.mu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone && b.queues[q.name] == nil {
		b.queues[q.name] = q
		q.gone = false
	}
}

// removeConsumer drops sub. With the last consumer gone the node stops
// consuming the queue in the cluster.
func (q *queue) removeConsumer(sub *Subscription) {
	q.mu.Lock()
	last := false
	if i := slices.Index(q.consumers, sub); i >= 0 {
		q.consumers = slices.Delete(q.consumers, i, i+1)
		if q.next >= len(q.consumers) {
			q.next = 0
		}
		last = len(q.consumers) == 0
	}
	q.mu.Unlock()
	if last && q.bus != nil {
		q.bus.QueueConsumersChanged(q.name)
	}
}

// redeliver puts back messages whose delivery to from was not acknowledged,
// ahead of newer ones, trying other consumers first. In a cluster, what is
// left on a node without consumers goes on to other nodes (Bus.HeldIdle).
func (q *queue) redeliver(msgs []*message, from *Subscription) {
	if q.putFront(msgs, from) && q.bus != nil {
		q.bus.HeldIdle()
	}
}

// putFront delivers msgs, oldest first, to consumers other than avoid if
// possible, and holds the rest at the head of the queue. It reports whether
// it held messages while the queue has no consumer here.
func (q *queue) putFront(msgs []*message, avoid *Subscription) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, m := range msgs {
		if !q.deliverLocked(m, avoid) {
			// Nobody can take it now: it waits at the head of the queue.
			q.pending = append(slices.Clone(msgs[i:]), q.pending...)
			q.countHeldLocked(msgs[i:])
			return len(q.consumers) == 0
		}
	}
	return false
}

// removeSub detaches sub from its topic or queue and tells the unsubscribe hooks.
func (b *Broker) removeSub(sub *Subscription) {
	if sub.removed.Swap(true) {
		return // already ended (Broker.EndAccess, revoke.go)
	}
	b.stats.subscriptions.Add(-1)
	if sub.q != nil {
		sub.q.removeConsumer(sub)
	} else {
		b.removeTopicSub(sub.key, sub)
	}
	for _, fn := range b.unsubHook {
		fn(sub.sess, sub)
	}
}

// requeue returns unacknowledged queue deliveries to their queues, oldest
// first. Topic deliveries are simply dropped: a topic has no one else to
// give them to.
func requeue(pending []*pendingAck) {
	sortPending(pending)
	for i := 0; i < len(pending); {
		sub := pending[i].sub
		j := i
		var msgs []*message
		for ; j < len(pending) && pending[j].sub == sub; j++ {
			msgs = append(msgs, pending[j].msg)
		}
		if sub.q != nil {
			sub.q.redeliver(msgs, sub)
		}
		i = j
	}
}

func sortPending(p []*pendingAck) {
	slices.SortFunc(p, func(a, b *pendingAck) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
}

func parseUint(s string) (uint64, error) {
	return strconv.ParseUint(s, 10, 64)
}
