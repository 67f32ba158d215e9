package broker

import (
	"runtime"
	"runtime/metrics"
	"stompbox/internal/stomp"
	"time"
)

// flow.go: the broker's use of the rate limiter (internal/ratelimit):
// admitting a connection against the per-address limit, and holding a
// session's reader back to its SEND rate (flow control); and the memory
// mark, above which every publisher's reader is held until the heap is
// back below it (RabbitMQ's memory alarm), rather than the process growing.

// errTooManyFromAddr refuses a connection past -max-conns-per-ip; the
// ERROR names the limit (see counters.refuse).
var errTooManyFromAddr = stomp.NewError("too many connections from this address")

// admit counts a new connection against its address and registers it with
// the broker. It replaces a bare register in Serve; unregister gives the
// address's count back when the session goes.
func (b *Broker) admit(s *Session) error {
	l := b.cfg.Limiter
	if !l.ConnOpened(s.info.Remote) {
		return b.stats.refuse(limitConnsPerIP, errTooManyFromAddr, l.Limits().ConnsPerIP)
	}
	if err := b.register(s); err != nil {
		l.ConnClosed(s, s.info.Remote)
		return err
	}
	return nil
}

// holdForRate delays the reader, and so the reading of the connection, until
// the SEND it is about to handle is within the connection's and the user's
// rates. While it waits, nothing more is read: over TCP and WebSocket the
// client's socket buffers fill and its writes block, over SockJS its
// xhr_send request stays unanswered. The session's writer goes on
// delivering (messages, receipts, heart-beats) meanwhile. It returns
// errDisconnected if the session ends during the wait.
//
// Then, above the memory mark, it holds the reader the same way until the
// heap is back below it (holdForMemory).
func (s *Session) holdForRate() error {
	l := s.b.cfg.Limiter
	wait := l.SendDelay(s, s.User)
	if wait > 0 && !l.Hold(wait, s.ended) {
		return errDisconnected
	}
	return s.holdForMemory()
}

// Memory mark timing.
const (
	heapSampleEvery = 100 * time.Millisecond // the heap is read at most this often, whoever asks
	memoryHoldStep  = 50 * time.Millisecond  // a held reader looks at the heap, and whether its session ended, this often
	// memoryGCEvery: while publishers are held, a collection is asked for
	// at most this often. Held publishers allocate nothing, so the
	// collector might otherwise not run, and the heap not be seen to fall,
	// for a long time.
	memoryGCEvery = 5 * time.Second
)

// holdForMemory holds the session's reader while the heap is above
// Config.MemoryMark: its SEND is not handled and nothing more is read,
// so the client's writes block as with TCP flow control. Consumers go on
// reading, which is what brings the heap down. It returns errDisconnected
// if the session ends during the wait.
func (s *Session) holdForMemory() error {
	b := s.b
	if !b.overMemoryMark() {
		return nil
	}
	b.ql.memHeldEver.Add(1)
	b.ql.memHeldNow.Add(1)
	defer b.ql.memHeldNow.Add(-1)
	for b.overMemoryMark() {
		if s.ended() {
			return errDisconnected
		}
		b.collectIfHeld()
		time.Sleep(memoryHoldStep)
	}
	return nil
}

// overMemoryMark reports whether the heap, sampled at most every
// heapSampleEvery, is above the mark.
func (b *Broker) overMemoryMark() bool {
	mark := b.cfg.MemoryMark
	if mark <= 0 {
		return false
	}
	now := time.Now().UnixNano()
	if at := b.ql.heapAt.Load(); now-at >= int64(heapSampleEvery) && b.ql.heapAt.CompareAndSwap(at, now) {
		b.ql.heap.Store(b.cfg.HeapBytes())
	}
	return b.ql.heap.Load() > uint64(mark)
}

// collectIfHeld runs a collection, on one held reader at a time, at most
// every memoryGCEvery.
func (b *Broker) collectIfHeld() {
	now := time.Now().UnixNano()
	if last := b.ql.lastGC.Load(); now-last >= int64(memoryGCEvery) && b.ql.lastGC.CompareAndSwap(last, now) {
		runtime.GC()
		b.ql.heapAt.Store(0) // sample again at once
	}
}

// heapBytes is the Go heap's bytes in objects, live or not yet swept
// (runtime/metrics), the default of Config.HeapBytes.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// ended reports whether the session is over or closing: its outbox closed
// (the client left, a slow-consumer cut-off, shutdown) or its context done.
func (s *Session) ended() bool {
	return s.out.isClosed() || s.ctx.Err() != nil
}
