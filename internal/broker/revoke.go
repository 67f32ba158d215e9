package broker

import (
	"slices"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
)

// revoke.go: access that ends while a connection lives (issue 22). A
// session remembers the login keys of the credential it authenticated
// with (its principal's LoginKeys: the account, the login session, the
// API token, the password); when one of them ends, CloseLogins ends the
// session, and when the account loses a room, EndAccess ends its
// subscriptions to the room's destinations. Both act on this node's
// sessions only: in a cluster every node applies the op that ended the
// access and calls them for its own sessions (chat's effects hook).

// LoginKeyer is implemented by a principal (Authenticator) whose session
// rests on credentials that may end: LoginKeys names them. The keys are
// opaque to the broker; the application makes and matches them.
type LoginKeyer interface {
	LoginKeys() []string
}

// sessionLogins is what a session rests on, set once at CONNECT.
type sessionLogins struct {
	user string // the session's user, for its /user/ destinations
	keys []string
}

// errSessionEnded closes a connection whose login ended (STOMP 1.2 §ERROR:
// the server sends ERROR, then closes).
var errSessionEnded = stomp.NewError("session ended")

// noteLogins records the login keys of principal, if it has any. The
// reader calls it during CONNECT, before the session subscribes to
// anything.
func (s *Session) noteLogins(principal any, user string) {
	if lk, ok := principal.(LoginKeyer); ok {
		if keys := lk.LoginKeys(); len(keys) > 0 {
			s.logins.Store(&sessionLogins{user: user, keys: keys})
		}
	}
}

// restsOn reports whether the session authenticated with the login key.
func (s *Session) restsOn(key string) bool {
	l := s.logins.Load()
	return l != nil && slices.Contains(l.keys, key)
}

// Ended reports whether the session is ending: an ERROR was queued (its
// login ended, it broke a limit, the server is closing) and its
// connection is about to close. Handlers that act for the client check
// it, so that a frame read just before the end does nothing.
func (s *Session) Ended() bool { return s.failed.Load() }

// sessionsOn returns this node's sessions that rest on one of keys.
func (b *Broker) sessionsOn(keys []string) []*Session {
	var out []*Session
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.sessions {
		for _, k := range keys {
			if s.restsOn(k) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// CloseLogins ends every session on this node that rests on one of keys:
// it gets an ERROR "session ended" and its connection closes (WebSocket
// and SockJS with code 1008). It never blocks and returns how many
// sessions it ended.
func (b *Broker) CloseLogins(keys ...string) int {
	if len(keys) == 0 {
		return 0
	}
	ss := b.sessionsOn(keys)
	for _, s := range ss {
		s.log.Info("login ended: closing the connection")
		s.fail(errSessionEnded, transport.ClosePolicy)
	}
	return len(ss)
}

// LiveLogins returns the distinct login keys this node's sessions rest
// on, for a check that their credentials still exist.
func (b *Broker) LiveLogins() []string {
	seen := make(map[string]bool)
	var keys []string
	b.mu.RLock()
	for s := range b.sessions {
		if l := s.logins.Load(); l != nil {
			for _, k := range l.keys {
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
	}
	b.mu.RUnlock()
	return keys
}

// EndAccess ends, on this node, the subscriptions to any of dests (topic
// destinations, as subscribed) of the sessions that rest on login, as if
// each had sent UNSUBSCRIBE: nothing more is delivered to them, not even
// what was queued and not yet written; they stop counting toward the
// connection's and the user's subscription limits, and their ids are
// free for new subscriptions (from the session's next frame on). An
// UNSUBSCRIBE of an ended id, which a client told of the end will
// usually send, is answered as any UNSUBSCRIBE of an id that is gone:
// without an ERROR, with its RECEIPT. Each such session that subscribes
// to userDest (a /user/ destination) is then sent body there. It never
// blocks and returns how many subscriptions it ended.
func (b *Broker) EndAccess(login string, dests []string, userDest string, headers []stomp.Header, body []byte) int {
	var ended []*Subscription
	var told []*Session
	b.mu.RLock()
	for _, d := range dests {
		for _, sub := range b.topics[d] {
			if sub.sess.restsOn(login) {
				ended = append(ended, sub)
			}
		}
	}
	for s := range b.sessions {
		if s.restsOn(login) {
			told = append(told, s)
		}
	}
	b.mu.RUnlock()
	for _, sub := range ended {
		b.removeSub(sub) // once: the session's own UNSUBSCRIBE or end finds it removed
		// Its reader drops it from the session's subscriptions (only the
		// reader touches them) before the next frame, so that it no longer
		// counts toward MaxSubscriptions nor holds its id. removeSub gave
		// back the user's slot (MaxUserSubscriptions) already.
		sub.sess.endedSubs.Add(1)
	}
	if userDest == "" || body == nil {
		return len(ended)
	}
	m := &message{dest: userDest, headers: headers, body: body}
	for _, s := range told {
		key := userKey(s.logins.Load().user, s.id, userDest)
		b.mu.RLock()
		subs := b.topics[key]
		b.mu.RUnlock()
		for _, sub := range subs {
			if sub.sess == s {
				b.stats.published.Add(1)
				sub.deliver(m)
			}
		}
	}
	return len(ended)
}

// dropEndedSubs takes the subscriptions EndAccess ended out of the
// session's subscriptions, as handleUnsubscribe would have: their client
// acknowledgements pending are settled (topic deliveries are dropped).
// Only the reader goroutine calls it.
func (s *Session) dropEndedSubs() {
	s.endedSubs.Store(0) // before the walk: an end after it is seen next time
	var gone []*Subscription
	for sub := range s.subs.all {
		if sub.removed.Load() {
			gone = append(gone, sub)
		}
	}
	for _, sub := range gone {
		s.subs.remove(sub.id)
		requeue(s.takeUnacked(func(p *pendingAck) bool { return p.sub == sub }))
	}
}
