package broker

import (
	"errors"
	"fmt"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strings"
	"time"
)

// requireHeader returns a header the spec makes mandatory for f's command.
func requireHeader(f *stomp.Frame, key string) (string, error) {
	v, ok := f.Get(key)
	if !ok || v == "" {
		return "", fmt.Errorf("%w %q", stomp.ErrMissingHeader, key)
	}
	return v, nil
}

// handle acts on one client frame. It runs on the reader goroutine. An error
// ends the session with an ERROR frame; errDisconnected ends it cleanly.
func (s *Session) handle(f *stomp.Frame) error {
	if !s.connected {
		if f.Command != stomp.CmdConnect && f.Command != stomp.CmdStomp {
			return stomp.ErrNotConnected
		}
		return s.handleConnect(f)
	}
	if s.endedSubs.Load() != 0 {
		s.dropEndedSubs() // before the frame: its id and its slot are free again
	}
	var err error
	switch f.Command {
	case stomp.CmdConnect, stomp.CmdStomp:
		return errAlreadyConnected
	case stomp.CmdSend:
		err = s.handleSend(f)
	case stomp.CmdSubscribe:
		err = s.handleSubscribe(f)
	case stomp.CmdUnsubscribe:
		err = s.handleUnsubscribe(f)
	case stomp.CmdAck, stomp.CmdNack:
		err = s.handleAck(f)
	case stomp.CmdBegin, stomp.CmdCommit, stomp.CmdAbort:
		err = s.handleTx(f)
	case stomp.CmdDisconnect:
		s.receipt(f)
		s.out.closeWith(nil, transport.CloseNormal)
		return errDisconnected
	}
	if errors.Is(err, errSendRefused) {
		return nil // refused, reason sent, connection kept; no RECEIPT: nothing happened
	}
	if err != nil {
		return err
	}
	s.receipt(f)
	return nil
}

// hasSubscription reports whether the session subscribed to dest. Only the
// reader goroutine (handlers, hooks) may call it.
func (s *Session) hasSubscription(dest string) bool {
	for sub := range s.subs.all {
		if sub.Dest == dest {
			return true
		}
	}
	return false
}

// receipt answers f's receipt header, if any. Callers invoke it only once
// f's effect has happened (STOMP 1.2 §RECEIPT).
func (s *Session) receipt(f *stomp.Frame) {
	if r, ok := f.Get(stomp.HdrReceipt); ok {
		rf := &stomp.Frame{Command: stomp.CmdReceipt, Headers: []stomp.Header{{Key: stomp.HdrReceiptID, Value: r}}}
		s.send(outItem{frame: rf})
	}
}

// handleConnect negotiates the version and heart-beats, authenticates, and
// answers CONNECTED (STOMP 1.2 §"Connecting").
func (s *Session) handleConnect(f *stomp.Frame) error {
	accept, hasAccept := f.Get(stomp.HdrAcceptVersion)
	v, err := stomp.NegotiateVersion(accept, hasAccept, s.info.Subprotocol)
	if err != nil {
		return err
	}
	if f.Command == stomp.CmdStomp && v == stomp.V10 {
		return stomp.ErrUnknownCommand // the STOMP command exists only from 1.1 on
	}
	cx, cy, err := stomp.ParseHeartBeat(f.Get(stomp.HdrHeartBeat))
	if err != nil {
		return err
	}
	sx := int(s.b.cfg.HeartBeat / time.Millisecond)
	send, recv := stomp.NegotiateHeartBeat(cx, cy, sx, sx)
	user, principal, err := s.b.cfg.Auth.AuthenticateSTOMP(s.ctx, s.info, f)
	if err != nil {
		return err
	}
	s.Principal = principal
	s.noteLogins(principal, user)
	s.version, s.User, s.connected = v, user, true
	s.b.stats.stompSessions.Add(1) // unregister takes it back
	s.hbRecv = time.Duration(recv) * time.Millisecond
	s.parser.Version = v
	s.b.setUser(s, user)
	if user != "" {
		s.logUser.Store(&user)
	}
	cf := &stomp.Frame{Command: stomp.CmdConnected}
	cf.Add(stomp.HdrVersion, v.String())
	cf.Add(stomp.HdrHeartBeat, fmt.Sprintf("%d,%d", sx, sx))
	cf.Add(stomp.HdrSession, s.idStr)
	cf.Add(stomp.HdrServer, s.b.cfg.ServerName)
	if user != "" {
		cf.Add(stomp.HdrUserName, user)
	}
	s.send(outItem{frame: cf, ver: v, heartBeat: time.Duration(send) * time.Millisecond})
	s.log.Debug("connected", "version", v.String(), "hb-send", send, "hb-recv", recv)
	return nil
}

// handleSend routes a SEND, or files it under its transaction.
func (s *Session) handleSend(f *stomp.Frame) error {
	if err := s.holdForRate(); err != nil {
		return err
	}
	dest, err := requireHeader(f, stomp.HdrDestination)
	if err != nil {
		return err
	}
	if err := checkDestination(dest); err != nil {
		return err
	}
	if tx, ok := f.Get(stomp.HdrTransaction); ok {
		return s.addToTx(tx, f)
	}
	// SEND→RECEIPT is timed from here, after any rate hold (counted
	// apart, in the limiter's HeldSends), to the RECEIPT queued.
	_, receipted := f.Get(stomp.HdrReceipt)
	var start time.Time
	if receipted {
		start = time.Now()
	}
	if err := s.doSend(f, dest); err != nil {
		return err
	}
	if receipted {
		s.b.stats.observeReceipt(time.Since(start))
	}
	return nil
}

// doSend carries out a SEND: to an application handler, a topic or a queue.
func (s *Session) doSend(f *stomp.Frame, dest string) error {
	kind, rest := s.b.classify(dest)
	switch kind {
	case destApp:
		return s.b.dispatchApp(s, f, dest, rest)
	case destUser:
		return errUserSend
	case destTopic, destQueue:
		if err := runHooks(s.ctx, s.b.sendHooks, s, nil, f, dest); err != nil {
			return err
		}
		m := &message{dest: dest, headers: userHeaders(f), body: f.Body}
		s.b.stats.published.Add(1)
		if kind == destTopic {
			return s.b.routeTopic(m)
		}
		return s.b.routeQueue(s.ctx, m)
	}
	return errUnknownDestination
}

// userHeaders returns the SEND headers a MESSAGE carries on: content-type
// and custom headers, without the ones the broker sets or consumes. Only the
// first of repeated headers is kept, as that is the one that counts.
func userHeaders(f *stomp.Frame) []stomp.Header {
	var out []stomp.Header
	for i, h := range f.Headers {
		switch h.Key {
		case stomp.HdrDestination, stomp.HdrReceipt, stomp.HdrTransaction, stomp.HdrContentLength,
			stomp.HdrMessageID, stomp.HdrSubscription, stomp.HdrAck, stomp.HdrLogin, stomp.HdrPasscode:
			continue
		}
		if repeated(f.Headers[:i], h.Key) {
			continue
		}
		out = append(out, h)
	}
	return out
}

func repeated(hs []stomp.Header, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}

// handleSubscribe registers a subscription (STOMP 1.2 §SUBSCRIBE).
func (s *Session) handleSubscribe(f *stomp.Frame) error {
	dest, err := requireHeader(f, stomp.HdrDestination)
	if err != nil {
		return err
	}
	if err := checkDestination(dest); err != nil {
		return err
	}
	id, ok := f.Get(stomp.HdrID)
	if !ok || id == "" {
		if s.version != stomp.V10 {
			return fmt.Errorf("%w %q", stomp.ErrMissingHeader, stomp.HdrID)
		}
		id = dest // STOMP 1.0 made id optional; the destination names the subscription
	}
	if s.subs.get(id) != nil {
		return errDuplicateSub
	}
	if s.subs.len() >= s.b.cfg.MaxSubscriptions {
		return s.b.stats.refuse(limitSubscriptions, errTooManySubs, s.b.cfg.MaxSubscriptions)
	}
	sub := &Subscription{sess: s, id: id, Dest: dest}
	switch mode := f.Value(stomp.HdrAck); mode {
	case "", "auto":
	case "client":
		sub.ack = ackClient
	case "client-individual":
		if s.version == stomp.V10 {
			return errBadAckMode
		}
		sub.ack = ackClientIndividual
	default:
		return errBadAckMode
	}
	kind, _ := s.b.classify(dest)
	sub.kind, sub.key = kind, dest
	switch kind {
	case destApp:
		return errAppSubscribe
	case destInvalid:
		return errUnknownDestination
	case destUser:
		sub.key = userKey(s.User, s.id, dest)
	}
	if err := s.b.reserveUserSub(s.User); err != nil {
		return err
	}
	s.subs.add(sub)
	// Hooks run after the subscription is filed in s.subs (so cleanup finds
	// it) and may hold it to replay history before it goes live.
	if kind == destQueue {
		sub.q = s.b.queueFor(dest)
	}
	if err := runHooks(s.ctx, s.b.subHooks, s, sub, f, dest); err != nil {
		s.subs.remove(id)
		s.b.releaseUserSub(s.User)
		return err
	}
	if kind == destQueue {
		sub.q.addConsumer(sub)
	} else if !sub.attached {
		s.b.addTopicSub(sub.key, sub)
	}
	s.b.stats.subscriptions.Add(1) // removeSub takes it back
	return nil
}

// Attach files a held subscription with the broker so that live messages
// reach it (into its hold buffer). Subscribe hooks call hold, then Attach,
// then replay, then release.
func (sub *Subscription) Attach() {
	if !sub.attached {
		sub.attached = true
		sub.sess.b.addTopicSub(sub.key, sub)
	}
}

// handleUnsubscribe removes a subscription; delivery stops at once.
// Unacknowledged queue messages go back to the queue.
func (s *Session) handleUnsubscribe(f *stomp.Frame) error {
	id, ok := f.Get(stomp.HdrID)
	if !ok || id == "" {
		if s.version != stomp.V10 {
			return fmt.Errorf("%w %q", stomp.ErrMissingHeader, stomp.HdrID)
		}
		if id, ok = f.Get(stomp.HdrDestination); !ok {
			return fmt.Errorf("%w %q", stomp.ErrMissingHeader, stomp.HdrID)
		}
	}
	sub := s.subs.get(id)
	if sub == nil {
		return nil // already gone: nothing to stop
	}
	s.subs.remove(id)
	s.b.removeSub(sub)
	requeue(s.takeUnacked(func(p *pendingAck) bool { return p.sub == sub }))
	return nil
}

// ackID returns the delivery an ACK or NACK refers to: the 1.2 id header,
// or message-id in 1.0 and 1.1 (STOMP 1.2 §ACK; STOMP 1.1 §ACK).
func (s *Session) ackID(f *stomp.Frame) (string, error) {
	key := stomp.HdrID
	if s.version != stomp.V12 {
		key = stomp.HdrMessageID
	}
	return requireHeader(f, key)
}

// handleAck files an ACK/NACK under its transaction or applies it.
func (s *Session) handleAck(f *stomp.Frame) error {
	id, err := s.ackID(f)
	if err != nil {
		return err
	}
	if tx, ok := f.Get(stomp.HdrTransaction); ok {
		return s.addToTx(tx, f)
	}
	s.applyAck(f.Command == stomp.CmdAck, id)
	return nil
}

// applyAck settles the delivery id. In client mode it is cumulative: every
// earlier delivery of the same subscription is settled too (STOMP 1.2 §SUBSCRIBE).
// NACKed queue messages are redelivered, to another consumer if there is one.
// An id that is unknown (already settled, or never sent) is ignored.
func (s *Session) applyAck(ack bool, id string) {
	prefix := s.idStr + "-"
	if !strings.HasPrefix(id, prefix) {
		return
	}
	seq, err := parseUint(id[len(prefix):])
	if err != nil {
		return
	}
	s.ackMu.Lock()
	p, ok := s.unacked[seq]
	s.ackMu.Unlock()
	if !ok {
		return
	}
	var settled []*pendingAck
	if p.sub.ack == ackClient {
		settled = s.takeUnacked(func(q *pendingAck) bool { return q.sub == p.sub && q.seq <= seq })
	} else {
		settled = s.takeUnacked(func(q *pendingAck) bool { return q.seq == seq })
	}
	if !ack {
		requeue(settled)
	}
}

// takeUnacked removes and returns the pending deliveries that match, oldest first.
func (s *Session) takeUnacked(match func(*pendingAck) bool) []*pendingAck {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	var out []*pendingAck
	for seq, p := range s.unacked {
		if match(p) {
			out = append(out, p)
			delete(s.unacked, seq)
		}
	}
	sortPending(out)
	return out
}

// handleTx runs BEGIN, COMMIT and ABORT (STOMP 1.2 §BEGIN, §COMMIT, §ABORT).
// A transaction's SENDs, ACKs and NACKs take effect only at COMMIT.
func (s *Session) handleTx(f *stomp.Frame) error {
	tx, err := requireHeader(f, stomp.HdrTransaction)
	if err != nil {
		return err
	}
	frames, open := s.txs[tx]
	switch f.Command {
	case stomp.CmdBegin:
		if open {
			return errDuplicateTx
		}
		if len(s.txs) >= maxOpenTx {
			return errTooManyTx
		}
		if s.txs == nil {
			s.txs = make(map[string][]*stomp.Frame)
		}
		s.txs[tx] = nil
		return nil
	case stomp.CmdAbort:
		if !open {
			return errUnknownTx
		}
		delete(s.txs, tx)
		return nil
	}
	if !open {
		return errUnknownTx
	}
	delete(s.txs, tx)
	for _, tf := range frames {
		if tf.Command == stomp.CmdSend {
			if err := s.doSend(tf, tf.Value(stomp.HdrDestination)); err != nil && !errors.Is(err, errSendRefused) {
				return &frameError{err: err, frame: f}
			}
			continue
		}
		id, _ := s.ackID(tf)
		s.applyAck(tf.Command == stomp.CmdAck, id)
	}
	return nil
}

// Transaction bounds: a transaction is held in memory until COMMIT.
const (
	maxOpenTx    = 16   // open transactions per connection
	maxTxFrames  = 1000 // frames in one transaction
	maxTxPending = 4 << 20
)

var (
	errTooManyTx = stomp.NewError("too many open transactions")
	errTxTooBig  = stomp.NewError("transaction too large")
)

// addToTx files f under transaction tx.
func (s *Session) addToTx(tx string, f *stomp.Frame) error {
	frames, open := s.txs[tx]
	if !open {
		return errUnknownTx
	}
	size := len(f.Body)
	for _, tf := range frames {
		size += len(tf.Body)
	}
	if len(frames) >= maxTxFrames || size > maxTxPending {
		return errTxTooBig
	}
	s.txs[tx] = append(frames, f)
	return nil
}
