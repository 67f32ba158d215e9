package broker

import (
	"stompbox/internal/stomp"
	"sync"
	"time"
)

// outbox.go: a session's bounded outbound queue, the hand-off
// between its producers and its one writer, and the slow-consumer bounds.

// outItem is one queued outbound frame: a MESSAGE for a subscription, or a
// server frame.
type outItem struct {
	sub       *Subscription
	msg       *message
	seq       uint64
	frame     *stomp.Frame
	ver       stomp.Version // on CONNECTED: the negotiated version, from here on
	heartBeat time.Duration // on CONNECTED: how often the writer must send
}

// outbox is a session's bounded outbound queue. Producers (publishers, the
// reader, the heart-beat timer) push without blocking; the writer takes
// everything queued at once, which coalesces bursts into one transport
// write. It holds no memory while empty, so an idle connection costs little.
//
// Writer hand-off: running is true from the moment a push (or close) finds
// no writer and calls start, until a writer's take finds the outbox empty
// and returns more=false; both happen under mu, so a push either sees the
// running writer (which will take its item) or starts a new one: no item is
// left behind and no two writers write. After the writer has seen the
// outbox closed, running stays true and nothing starts another.
//
// Bounds: past maxItems or maxBytes the reader counts as slow; if it stays
// slow for slowConsumerGrace, or reaches outboxHardFactor times the bounds,
// push refuses and the session is cut off. A short burst or a GC pause on the
// client is tolerated; a reader that stopped reading is not.
type outbox struct {
	mu        sync.Mutex
	items     []outItem
	bytes     int
	slowSince time.Time // when the bounds were first passed; zero while under them
	heartBeat bool      // the heart-beat timer fired since the last take
	closed    bool
	running   bool         // a writer runs (or was started); see writer hand-off
	burst     uint16       // how many items the writer's last take found: the next burst's first array
	final     *stomp.Frame // sent after items when closed
	code      int          // close code for the transport
	start     func()       // starts a writer; called under mu
	maxItems  int
	maxBytes  int
}

func (o *outbox) init(maxItems, maxBytes int, start func()) {
	o.maxItems, o.maxBytes, o.start = maxItems, maxBytes, start
}

// push queues it. It reports false if the outbox is closed or the reader is
// too slow (see outbox).
func (o *outbox) push(it outItem, size int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	if len(o.items) >= o.maxItems || o.bytes+size > o.maxBytes {
		now := time.Now()
		if o.slowSince.IsZero() {
			o.slowSince = now
		}
		if now.Sub(o.slowSince) > slowConsumerGrace ||
			len(o.items) >= outboxHardFactor*o.maxItems || o.bytes+size > outboxHardFactor*o.maxBytes {
			return false
		}
	}
	if len(o.items) == 0 && cap(o.items) < int(o.burst) {
		// A connection that receives a steady stream gets an array for a
		// burst like its last at once, rather than growing one from 1.
		o.items = make([]outItem, 0, o.burst)
	}
	o.items = append(o.items, it)
	o.bytes += size
	o.wakeLocked()
	return true
}

// pushHeartBeat asks the writer for a heart-beat (see session.writeLoop).
func (o *outbox) pushHeartBeat() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		o.heartBeat = true
		o.wakeLocked()
	}
}

// wakeLocked starts a writer unless one runs.
func (o *outbox) wakeLocked() {
	if !o.running {
		o.running = true
		o.start()
	}
}

// closeWith closes the outbox; final, if any, is written after what is
// queued, then the transport closes with code. Only the first close counts.
func (o *outbox) closeWith(final *stomp.Frame, code int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.closed = true
	o.final = final
	o.code = code
	o.wakeLocked()
}

func (o *outbox) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// outboxKeepItems is the largest queue array an idle outbox keeps: enough
// for messages that come one at a time (a chat, a paced feed) to be queued
// without an allocation each, 96 bytes per connection.
const outboxKeepItems = 2

// taken is what one take hands the writer besides the items.
type taken struct {
	more      bool         // false: nothing to do, and the writer must return
	heartBeat bool         // a heart-beat is due
	closed    bool         // the outbox is closed: write final, then close the transport
	final     *stomp.Frame // the last frame, when closed
	code      int          // the transport's close code, when closed
}

// take hands the queued items to the writer, in exchange for dst, the
// writer's array, emptied and cleared. Only the running writer calls it.
// When there is nothing to do it marks the writer as gone and reports
// more=false, in the same critical section (see outbox).
func (o *outbox) take(dst []outItem) ([]outItem, taken) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.items) == 0 && !o.heartBeat && !o.closed {
		o.running = false
		if cap(o.items) > outboxKeepItems {
			// An idle connection keeps no burst-sized queue array; the
			// writer's scratch space, which is pooled, takes it back.
			if cap(o.items) > cap(dst) {
				dst = o.items[:0]
			}
			o.items = nil
		}
		return dst, taken{}
	}
	// The arrays change hands: the writer gets the queued items, the outbox
	// the writer's emptied array for what is pushed while it writes. Neither
	// side copies, and a steady stream grows no array per burst (it had been
	// 6 % of the server's CPU in a paced fan-out, and most of its garbage).
	dst, o.items = o.items, dst[:0]
	o.burst = uint16(min(len(dst), maxKeptItems))
	o.bytes = 0
	o.slowSince = time.Time{}
	t := taken{more: true, heartBeat: o.heartBeat, closed: o.closed, final: o.final, code: o.code}
	o.heartBeat = false
	o.final = nil
	return dst, t
}
