package broker

import (
	"context"
	"fmt"
	"runtime/debug"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// queue_limits.go: what bounds the memory of /queue/ messages held while
// nobody consumes them (issue 22): bytes over all queues and per queue,
// the number of queues, an expiry for every held message, and who may use
// queues at all. Flow control above the memory mark is in flow.go.
//
// What it promises:
//   - A message held for a queue is counted in bytes (body, headers and
//     destination) from the moment it is held until it is delivered,
//     handed to another node, or dropped at its expiry. A SEND that would
//     take a queue past -queue-mib-per-queue or all queues past -queue-mib
//     is refused with an ERROR naming the limit (and the receipt-id of
//     the SEND): nothing receipted is dropped, save at its expiry.
//   - Every queue message expires: at the sender's STOMP expires header
//     (Unix milliseconds, as ActiveMQ), never later than -queue-ttl after
//     the SEND. The expiry travels with the message as its expires header,
//     so that a node that takes it from another keeps it.
//   - Messages given back unacknowledged (a consumer left, NACK) are held
//     again whatever the caps: they were receipted. They are bounded by
//     the consumers' unacknowledged windows.
//   - A queue with no consumer and nothing held is forgotten after
//     idleQueueGrace, so fresh names do not pile up; at most -max-queues
//     exist at once, and a SEND that would make one more is refused.

// hdrExpires is the SEND and MESSAGE header of a message's expiry, in
// Unix milliseconds (ActiveMQ's; STOMP 1.2 leaves it to the server).
const hdrExpires = "expires"

// idleQueueGrace is how long an empty queue without consumers is kept
// after it was last used before it is forgotten. It also covers the time
// between a SUBSCRIBE finding its queue and attaching to it.
const idleQueueGrace = time.Minute

// queueSweepEvery is how often held messages are checked for expiry and
// idle queues forgotten, while any queue exists.
const queueSweepEvery = time.Second

// returnFreedBytes: a sweep whose expiries freed this much gives the
// memory back to the system at once (debug.FreeOSMemory), so that a
// flood's memory does not stay with the process after its messages went.
const returnFreedBytes = 8 << 20

// Queue refusals. Each says "queue is full" first, so that errors.Is
// (ErrQueueFull) holds for all of them, here and when another node
// refused (RemoteQueueFull).
var (
	errQueueBytesPerQueue = stomp.NewError("queue is full: too many bytes held for this queue")
	errQueueBytes         = stomp.NewError("queue is full: too many bytes held for all queues")
	errTooManyQueues      = stomp.NewError("queue is full: too many queues")
	errAnonymousQueue     = stomp.NewError("anonymous connections may not use queue destinations; log in (-anonymous-queues)")
)

// queueState is the broker's count of what its queues hold.
type queueState struct {
	heldBytes atomic.Int64  // bytes of held messages over all queues
	heldMsgs  atomic.Int64  // held messages over all queues
	expired   atomic.Uint64 // held messages dropped at their expiry, since start
	refused   atomic.Uint64 // queue SENDs refused by a cap, since start
	armed     atomic.Bool   // a sweep is scheduled

	// Flow control above the memory mark (flow.go).
	heapAt      atomic.Int64  // when heap was last sampled, Unix nanoseconds
	heap        atomic.Uint64 // the last sample
	lastGC      atomic.Int64  // when a held publisher last asked for a collection
	memHeldNow  atomic.Int64  // publishers held by the memory mark now
	memHeldEver atomic.Uint64 // SENDs held by the memory mark since start
}

// QueueStats are the figures of held queue messages.
type QueueStats struct {
	Queues         int    // queues that exist now
	HeldMessages   int64  // messages held while nobody consumed them
	HeldBytes      int64  // their bytes, as the caps count them
	Expired        uint64 // held messages dropped at their expiry, since start
	Refused        uint64 // SENDs refused by -queue-mib, -queue-mib-per-queue or -max-queues, since start
	PublishersHeld int64  // sessions whose reading is held by the memory mark now
	MemoryHolds    uint64 // SENDs held by the memory mark, since start
}

// QueueStats copies the figures of held queue messages.
func (b *Broker) QueueStats() QueueStats {
	b.mu.RLock()
	n := len(b.queues)
	b.mu.RUnlock()
	return QueueStats{
		Queues:         n,
		HeldMessages:   b.ql.heldMsgs.Load(),
		HeldBytes:      b.ql.heldBytes.Load(),
		Expired:        b.ql.expired.Load(),
		Refused:        b.ql.refused.Load(),
		PublishersHeld: b.ql.memHeldNow.Load(),
		MemoryHolds:    b.ql.memHeldEver.Load(),
	}
}

// refuseQueue counts a queue refusal and names its limit and option.
func (b *Broker) refuseQueue(base *stomp.Error, limit, option string) error {
	b.ql.refused.Add(1)
	return fmt.Errorf("%w: at most %s (-%s)", base, limit, option)
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// RemoteQueueFull is the error of a queue refusal that another node
// answered with text (its ERROR message): errors.Is(err, ErrQueueFull)
// holds, and the client sees the same words as on that node.
func RemoteQueueFull(text string) error {
	rest, ok := strings.CutPrefix(text, ErrQueueFull.Error())
	if !ok {
		rest = ": " + text
	}
	if rest == "" {
		return ErrQueueFull
	}
	return fmt.Errorf("%w%s", ErrQueueFull, rest)
}

// denyAnonymousQueues registers the hooks that keep sessions without a
// user off queue destinations, when the config asks for it.
func (b *Broker) denyAnonymousQueues() {
	if !b.cfg.DenyAnonymousQueues {
		return
	}
	for _, p := range b.cfg.QueuePrefixes {
		b.OnSend(p, func(_ context.Context, s *Session, _ *stomp.Frame) error {
			if s.User == "" {
				return errAnonymousQueue
			}
			return nil
		})
		b.OnSubscribe(p, func(_ context.Context, s *Session, _ *Subscription, _ *stomp.Frame) error {
			if s.User == "" {
				return errAnonymousQueue
			}
			return nil
		})
	}
}

// messageSize is what a held message counts against the caps: its body,
// headers and destination, and a little for the structures around them.
func messageSize(m *message) int64 {
	n := 128 + len(m.dest) + len(m.body)
	for _, h := range m.headers {
		n += len(h.Key) + len(h.Value) + 32
	}
	return int64(n)
}

// stampExpiry sets m's expiry, once, when it is first routed to a queue:
// the sender's expires header if it is sooner than QueueTTL from now,
// else QueueTTL from now. The header is set to the expiry, so that it
// travels to another node with the message. It reports false for a
// message that expired already: it is dropped, not held.
func (b *Broker) stampExpiry(m *message) bool {
	now := b.cfg.Now().UnixMilli()
	limit := now + b.cfg.QueueTTL.Milliseconds()
	exp := limit
	i := -1
	for j, h := range m.headers {
		if h.Key == hdrExpires {
			i = j
			if v, err := strconv.ParseInt(h.Value, 10, 64); err == nil && v > 0 && v < limit {
				exp = v
			}
			break
		}
	}
	m.expires = exp
	hs := make([]stomp.Header, 0, len(m.headers)+1)
	hs = append(hs, m.headers...)
	if i >= 0 {
		hs[i].Value = strconv.FormatInt(exp, 10)
	} else {
		hs = append(hs, stomp.Header{Key: hdrExpires, Value: strconv.FormatInt(exp, 10)})
	}
	m.headers = hs
	m.size = messageSize(m)
	if exp <= now {
		b.ql.expired.Add(1)
		return false
	}
	return true
}

// readExpiry sets the expiry and size of a message that came from another
// node from its expires header (stamped by the node it was sent to),
// capped by this node's QueueTTL.
func (b *Broker) readExpiry(m *message) {
	limit := b.cfg.Now().UnixMilli() + b.cfg.QueueTTL.Milliseconds()
	m.expires = limit
	for _, h := range m.headers {
		if h.Key == hdrExpires {
			if v, err := strconv.ParseInt(h.Value, 10, 64); err == nil && v > 0 && v < limit {
				m.expires = v
			}
			break
		}
	}
	m.size = messageSize(m)
}

// expiredAt reports whether m's expiry has passed at now (Unix ms).
func (m *message) expiredAt(now int64) bool {
	return m.expires != 0 && m.expires <= now
}

// holdLocked keeps m in q, within the caps. The caller holds q.mu.
func (q *queue) holdLocked(m *message) error {
	b := q.b
	if len(q.pending) >= b.cfg.QueueDepth {
		b.ql.refused.Add(1)
		return fmt.Errorf("%w: at most %d messages held for one queue", ErrQueueFull, b.cfg.QueueDepth)
	}
	if lim := b.cfg.QueueBytesPerQueue; lim > 0 && q.bytes+m.size > lim {
		return b.refuseQueue(errQueueBytesPerQueue, mib(lim), "queue-mib-per-queue")
	}
	if lim := b.cfg.QueueBytes; lim > 0 {
		if b.ql.heldBytes.Add(m.size) > lim {
			b.ql.heldBytes.Add(-m.size)
			return b.refuseQueue(errQueueBytes, mib(lim), "queue-mib")
		}
	} else {
		b.ql.heldBytes.Add(m.size)
	}
	q.bytes += m.size
	b.ql.heldMsgs.Add(1)
	q.pending = append(q.pending, m)
	b.armSweep()
	return nil
}

// countHeldLocked counts msgs, just put back at the head of q's pending
// messages, as held, past the caps if need be (they were receipted).
func (q *queue) countHeldLocked(msgs []*message) {
	var n int64
	for _, m := range msgs {
		n += m.size
	}
	q.bytes += n
	q.b.ql.heldBytes.Add(n)
	q.b.ql.heldMsgs.Add(int64(len(msgs)))
	if len(msgs) > 0 {
		q.b.armSweep()
	}
}

// releaseLocked uncounts msgs, which left q's pending messages.
func (q *queue) releaseLocked(msgs []*message) {
	var n int64
	for _, m := range msgs {
		n += m.size
	}
	q.bytes -= n
	q.b.ql.heldBytes.Add(-n)
	q.b.ql.heldMsgs.Add(-int64(len(msgs)))
}

// dropExpiredLocked removes the held messages whose expiry passed and
// returns their bytes.
func (q *queue) dropExpiredLocked(now int64) int64 {
	kept := q.pending[:0]
	var gone []*message
	for _, m := range q.pending {
		if m.expiredAt(now) {
			gone = append(gone, m)
		} else {
			kept = append(kept, m)
		}
	}
	if len(gone) == 0 {
		return 0
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	n := q.bytes
	q.releaseLocked(gone)
	q.b.ql.expired.Add(uint64(len(gone)))
	return n - q.bytes
}

// armSweep schedules a sweep unless one is scheduled.
func (b *Broker) armSweep() {
	if b.ql.armed.CompareAndSwap(false, true) {
		time.AfterFunc(queueSweepEvery, b.sweepTick)
	}
}

// sweepTick sweeps, and schedules the next sweep while queues exist and
// the broker is open.
func (b *Broker) sweepTick() {
	more := b.sweepQueues()
	b.ql.armed.Store(false)
	b.mu.RLock()
	closed := b.closed
	b.mu.RUnlock()
	if more && !closed {
		b.armSweep()
	}
}

// sweepQueues drops expired held messages and forgets the queues that
// have had no consumer, nothing held and no use for idleQueueGrace. It
// reports whether any queue is left.
func (b *Broker) sweepQueues() bool {
	now := b.cfg.Now()
	b.mu.RLock()
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	b.mu.RUnlock()
	var idle []*queue
	var dropped int64
	for _, q := range qs {
		q.mu.Lock()
		dropped += q.dropExpiredLocked(now.UnixMilli())
		if q.idleLocked(now) {
			idle = append(idle, q)
		}
		q.mu.Unlock()
	}
	if dropped >= returnFreedBytes {
		// An idle server may not collect for minutes, and then keeps
		// what it freed: give back now what a burst of expiries freed.
		debug.FreeOSMemory()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, q := range idle {
		q.mu.Lock()
		if q.idleLocked(now) && b.queues[q.name] == q {
			delete(b.queues, q.name)
			q.gone = true
		}
		q.mu.Unlock()
	}
	return len(b.queues) > 0
}

// idleLocked reports whether q may be forgotten at now.
func (q *queue) idleLocked(now time.Time) bool {
	return len(q.consumers) == 0 && len(q.pending) == 0 && now.UnixNano()-q.touched.Load() >= int64(idleQueueGrace)
}
