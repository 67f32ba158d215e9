package broker

import (
	"stompbox/internal/stomp"
	"sync"
	"sync/atomic"
)

// subscription.go: one SUBSCRIBE of one session: its ack mode, its
// deliveries, and the replay gate (hold, Replay, release) of subscribe hooks.

// ackMode is a subscription's ack header (STOMP 1.2 §SUBSCRIBE "ack Header").
type ackMode uint8

const (
	ackAuto ackMode = iota
	ackClient
	ackClientIndividual
)

// Subscription is one SUBSCRIBE of one session.
type Subscription struct {
	sess *Session
	id   string   // the client's subscription id
	Dest string   // as the client wrote it
	key  string   // topic key (dest, or a user key for /user/ destinations)
	kind destKind // destTopic, destQueue or destUser
	ack  ackMode
	q    *queue // for destQueue
	// removed is set by UNSUBSCRIBE (and session end, and EndAccess); the
	// writer skips topic deliveries for it that were queued but not yet
	// written.
	removed atomic.Bool
	// attached is set when a subscribe hook filed the subscription itself
	// (Attach); only the reader goroutine reads or writes it.
	attached bool

	// Replay gate, see hold and release. holding is read on every delivery
	// without the lock; mu guards held and the transition.
	holding atomic.Bool
	mu      sync.Mutex
	held    []*message
}

// deliver hands m to the subscription's session. It never blocks. It
// reports false when the session could not take it (closing or overflowed).
func (sub *Subscription) deliver(m *message) bool {
	if sub.holding.Load() {
		sub.mu.Lock()
		if sub.holding.Load() {
			sub.held = append(sub.held, m)
			sub.mu.Unlock()
			return true
		}
		sub.mu.Unlock()
	}
	return sub.sess.deliver(sub, m)
}

// Hold makes the subscription buffer live messages instead of delivering
// them, so that a hook can replay history first. The hook must call release.
func (sub *Subscription) Hold() {
	sub.holding.Store(true)
}

// Release delivers the messages held since hold, except stored ones with
// an id at or below replayed (already sent by the replay), then resumes live
// delivery. Together with hold this gives a replay with no gap and no
// duplicate: a message is either in the replayed range or held.
func (sub *Subscription) Release(replayed int64) {
	for {
		sub.mu.Lock()
		held := sub.held
		sub.held = nil
		if len(held) == 0 {
			sub.holding.Store(false)
			sub.mu.Unlock()
			return
		}
		sub.mu.Unlock()
		for _, m := range held {
			if m.storeID == 0 || m.storeID > replayed {
				sub.sess.deliver(sub, m)
			}
		}
	}
}

// Replay sends one stored message to this subscription only, ahead of any
// held live ones. Hooks call it between hold and release.
func (sub *Subscription) Replay(headers []stomp.Header, body []byte, storeID int64) bool {
	return sub.sess.deliver(sub, &message{dest: sub.Dest, headers: headers, body: body, storeID: storeID})
}
