package broker

import (
	"stompbox/internal/stomp"
)

// flow.go: the broker's use of the rate limiter (internal/ratelimit):
// admitting a connection against the per-address limit, and holding a
// session's reader back to its SEND rate (flow control).

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
func (s *Session) holdForRate() error {
	l := s.b.cfg.Limiter
	wait := l.SendDelay(s, s.User)
	if wait <= 0 {
		return nil
	}
	if !l.Hold(wait, s.ended) {
		return errDisconnected
	}
	return nil
}

// ended reports whether the session is over or closing: its outbox closed
// (the client left, a slow-consumer cut-off, shutdown) or its context done.
func (s *Session) ended() bool {
	return s.out.isClosed() || s.ctx.Err() != nil
}
