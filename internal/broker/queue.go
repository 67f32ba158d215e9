package broker

import (
	"slices"
	"strconv"
	"sync"
)

// queue is a /queue/ destination: each message goes to exactly one consumer,
// round-robin, and waits in memory (up to QueueDepth) while there is none.
// In a cluster the queue of each node holds that node's consumers; the bus
// picks the node (see Bus.SendQueue) and is told when the first consumer
// comes and the last goes.
//
// Locking: mu guards consumers, next and pending. Delivery under mu only
// pushes onto outboxes, which never blocks.
type queue struct {
	name  string
	depth int
	bus   Bus // the broker's bus when the queue was made; nil on a single node

	mu        sync.Mutex
	consumers []*Subscription
	next      int
	pending   []*message
}

// queueFor returns the queue named dest, creating it.
func (b *Broker) queueFor(dest string) *queue {
	b.mu.RLock()
	q := b.queues[dest]
	b.mu.RUnlock()
	if q != nil {
		return q
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if q = b.queues[dest]; q == nil {
		q = &queue{name: dest, depth: b.cfg.QueueDepth, bus: b.loadBus()}
		b.queues[dest] = q
	}
	return q
}

// lookupQueue returns the queue named dest, nil if there is none.
func (b *Broker) lookupQueue(dest string) *queue {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.queues[dest]
}

// put delivers m to the next consumer, or holds it. A full queue refuses m,
// so that a message acknowledged with a RECEIPT is never silently dropped.
func (q *queue) put(m *message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deliverLocked(m, nil) {
		return nil
	}
	if len(q.pending) >= q.depth {
		return ErrQueueFull
	}
	q.pending = append(q.pending, m)
	return nil
}

// offer is put for a message the cluster bus chose this node for
// (Broker.TakeRemoteQueue): it is
// refused (false) when the queue has no consumer here any more, so that
// the bus asks another node rather than hold it where nobody reads.
func (q *queue) offer(m *message) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.consumers) == 0 {
		return false, nil
	}
	if q.deliverLocked(m, nil) {
		return true, nil
	}
	if len(q.pending) >= q.depth {
		return false, ErrQueueFull
	}
	q.pending = append(q.pending, m)
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
	held := q.pending
	q.pending = nil
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
	q.mu.Lock()
	q.consumers = append(q.consumers, sub)
	first := len(q.consumers) == 1
	waiting := q.pending
	q.pending = nil
	for i, m := range waiting {
		if !q.deliverLocked(m, nil) {
			q.pending = append(q.pending, waiting[i:]...)
			break
		}
	}
	q.mu.Unlock()
	if first && q.bus != nil {
		q.bus.QueueConsumersChanged(q.name)
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
