package broker

import (
	"context"
	"fmt"
	"log/slog"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strings"
	"sync"
	"sync/atomic"
)

// broker.go: the Broker: destinations and their classes, the sessions it
// serves, subscribers of topics and user destinations, hooks, and the
// routing of what is published, here or over the Bus.

// destKind is the routing class of a destination.
type destKind int

const (
	destInvalid destKind = iota
	destTopic
	destQueue
	destApp
	destUser
)

// Broker errors, shown to clients in ERROR frames.
var (
	errBadDestination     = stomp.NewError("invalid destination")
	errUnknownDestination = stomp.NewError("destination matches no configured prefix")
	errUserSend           = stomp.NewError("clients cannot send to user destinations")
	errAppSubscribe       = stomp.NewError("cannot subscribe to an application destination")
	errNoHandler          = stomp.NewError("no handler for this application destination")
	ErrQueueFull          = stomp.NewError("queue is full")
	errShuttingDown       = stomp.NewError("server shutting down")
	errTooManyConnections = stomp.NewError("too many connections")
	errSlowConsumer       = stomp.NewError("slow consumer: outbound queue overflowed")
	errTooManyUnacked     = stomp.NewError("too many unacknowledged messages")
	errTooManySubs        = stomp.NewError("too many subscriptions")
	errTooManyUserSubs    = stomp.NewError("too many subscriptions for this user over all connections")
	errDuplicateSub       = stomp.NewError("duplicate subscription id")
	errAlreadyConnected   = stomp.NewError("already connected")
	errBadAckMode         = stomp.NewError("invalid ack mode")
	errUnknownTx          = stomp.NewError("unknown transaction")
	errDuplicateTx        = stomp.NewError("transaction already started")
	errClientSilent       = stomp.NewError("no data from client within the heart-beat interval")
	errConnectTimeout     = stomp.NewError("no CONNECT frame in time")
)

// checkDestination rejects destinations that could alias another one: every
// authorization rule matches destinations as plain strings, so "..", "//",
// percent-encoding and control characters are refused rather than cleaned.
func checkDestination(d string) error {
	if len(d) < 2 || d[0] != '/' || len(d) > 512 {
		return errBadDestination
	}
	if strings.Contains(d, "//") || strings.Contains(d, "/./") || strings.Contains(d, "/../") ||
		strings.HasSuffix(d, "/..") || strings.HasSuffix(d, "/.") || strings.HasSuffix(d, "/") {
		return errBadDestination
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; c < 0x21 || c == 0x7f || c == '%' || c == '\\' || c == '*' || c == '#' || c == '?' {
			return errBadDestination
		}
	}
	return nil
}

// classify returns the routing class of d and the part after its prefix.
func (b *Broker) classify(d string) (destKind, string) {
	if strings.HasPrefix(d, b.cfg.UserPrefix) {
		return destUser, d[len(b.cfg.UserPrefix)-1:]
	}
	for _, p := range b.cfg.AppPrefixes {
		if strings.HasPrefix(d, p) {
			return destApp, d[len(p)-1:]
		}
	}
	for _, p := range b.cfg.QueuePrefixes {
		if strings.HasPrefix(d, p) {
			return destQueue, d
		}
	}
	for _, p := range b.cfg.TopicPrefixes {
		if strings.HasPrefix(d, p) {
			return destTopic, d
		}
	}
	return destInvalid, ""
}

// Broker routes frames between sessions. It owns every session's lifetime
// from Serve until Serve returns, and Close ends them all.
//
// Locking: mu guards the maps; it is held only to look up or copy, never
// across I/O or channel waits. Topic subscriber lists are copy-on-write, so a
// publisher iterates a snapshot without any lock.
type Broker struct {
	cfg Config
	log *slog.Logger

	nextSession atomic.Uint64
	wg          sync.WaitGroup // one per running Serve

	mu        sync.RWMutex
	closed    bool
	sessions  map[*Session]struct{}
	topics    map[string][]*Subscription // destination (or user key) → subscribers, copy-on-write
	queues    map[string]*queue
	users     map[string]int // user name → live sessions, for isOnline
	userSubs  map[string]int // user name → live subscriptions, for MaxUserSubscriptions
	routes    []appRoute
	subHooks  []destHook
	sendHooks []destHook
	unsubHook []func(s *Session, sub *Subscription)
	onRemote  []func(dest string)

	transports map[string]int    // transport → live sessions, for Stats; a transport seen stays at 0
	accepted   map[string]uint64 // transport → sessions admitted since start, for Stats
	stats      counters          // frames, messages, refusals and receipts since start (stats.go)
	ql         queueState        // held queue messages and the memory mark (queue_limits.go, flow.go)

	// bus spreads what the broker delivers and does not store over the
	// nodes of a cluster (bus.go). It is nil on a single node, and
	// then every path below is the local one. Set by AttachBus before the
	// broker serves; read with loadBus.
	bus atomic.Pointer[attachedBus]
}

// New returns a broker ready to Serve connections.
func New(cfg Config, log *slog.Logger) *Broker {
	cfg.setDefaults()
	b := &Broker{
		cfg:      cfg,
		log:      log,
		sessions: make(map[*Session]struct{}),
		topics:   make(map[string][]*Subscription),
		queues:   make(map[string]*queue),
		users:    make(map[string]int),
		userSubs: make(map[string]int),

		transports: make(map[string]int),
		accepted:   make(map[string]uint64),
	}
	// Every subscription that ends gives back its user's slot: removeSub
	// runs these hooks for UNSUBSCRIBE and for a closing session alike.
	b.OnUnsubscribe(func(s *Session, _ *Subscription) { b.releaseUserSub(s.User) })
	b.denyAnonymousQueues()
	return b
}

// reserveUserSub counts one more subscription for user, or returns
// errTooManyUserSubs past MaxUserSubscriptions. The session's reader calls
// it before filing a subscription, and releaseUserSub when the
// subscription ends (by UNSUBSCRIBE, by the session going, or because a
// subscribe hook refused it). Check and count happen under one lock, so
// two connections of one user cannot both take the last slot.
func (b *Broker) reserveUserSub(user string) error {
	if user == "" || b.cfg.MaxUserSubscriptions <= 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.userSubs[user] >= b.cfg.MaxUserSubscriptions {
		return b.stats.refuse(limitUserSubscriptions, errTooManyUserSubs, b.cfg.MaxUserSubscriptions)
	}
	b.userSubs[user]++
	return nil
}

// releaseUserSub undoes one reserveUserSub.
func (b *Broker) releaseUserSub(user string) {
	if user == "" || b.cfg.MaxUserSubscriptions <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.userSubs[user]--; b.userSubs[user] <= 0 {
		delete(b.userSubs, user)
	}
}

// UserSubCount is how many subscriptions user holds over all sessions
// (counted only while MaxUserSubscriptions is on).
func (b *Broker) UserSubCount(user string) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.userSubs[user]
}

// destHook runs before a SUBSCRIBE or client SEND on destinations with its
// prefix. A subscribe hook may replay history into the new subscription (see
// subscription.hold); an error refuses the frame with an ERROR.
type destHook struct {
	prefix string
	fn     func(ctx context.Context, s *Session, sub *Subscription, f *stomp.Frame) error
}

// OnSubscribe registers a hook for SUBSCRIBE frames whose destination starts
// with prefix. Register hooks before serving.
func (b *Broker) OnSubscribe(prefix string, fn func(ctx context.Context, s *Session, sub *Subscription, f *stomp.Frame) error) {
	b.subHooks = append(b.subHooks, destHook{prefix, fn})
}

// OnSend registers a hook for client SEND frames to broker destinations
// (topics and queues) starting with prefix. sub is nil. Register before serving.
func (b *Broker) OnSend(prefix string, fn func(ctx context.Context, s *Session, f *stomp.Frame) error) {
	b.sendHooks = append(b.sendHooks, destHook{prefix, func(ctx context.Context, s *Session, _ *Subscription, f *stomp.Frame) error {
		return fn(ctx, s, f)
	}})
}

// OnUnsubscribe registers fn to be told when a subscription ends, by
// UNSUBSCRIBE or because its session went. fn runs on the session's reader
// goroutine and must not block. Register before serving.
func (b *Broker) OnUnsubscribe(fn func(s *Session, sub *Subscription)) {
	b.unsubHook = append(b.unsubHook, fn)
}

func runHooks(ctx context.Context, hooks []destHook, s *Session, sub *Subscription, f *stomp.Frame, dest string) error {
	for _, h := range hooks {
		if strings.HasPrefix(dest, h.prefix) {
			if err := h.fn(ctx, s, sub, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// register adds a session, refusing it when the broker is closed or full.
func (b *Broker) register(s *Session) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errShuttingDown
	}
	if len(b.sessions) >= b.cfg.MaxConnections {
		return b.stats.refuse(limitConnections, errTooManyConnections, b.cfg.MaxConnections)
	}
	b.sessions[s] = struct{}{}
	b.transports[s.info.Transport]++
	b.accepted[s.info.Transport]++
	b.wg.Add(1)
	return nil
}

// setUser records that s speaks for user, for user destinations and presence.
func (b *Broker) setUser(s *Session, user string) {
	if user == "" {
		return
	}
	b.mu.Lock()
	b.users[user]++
	if b.users[user] == 1 {
		// Under b.mu, so that the cluster hears of a user's comings and
		// goings in the order they happened here (see Bus).
		b.noteOnline(user, true)
	}
	b.mu.Unlock()
}

// unregister removes s and everything it subscribed to.
func (b *Broker) unregister(s *Session) {
	b.cfg.Limiter.ConnClosed(s, s.info.Remote)
	if s.connected {
		b.stats.stompSessions.Add(-1)
	}
	b.mu.Lock()
	delete(b.sessions, s)
	b.transports[s.info.Transport]--
	if s.User != "" && s.connected {
		b.users[s.User]--
		if b.users[s.User] <= 0 {
			delete(b.users, s.User)
			b.noteOnline(s.User, false)
		}
	}
	b.mu.Unlock()
}

// IsOnline reports whether user has a connected session: here, or on
// another live node of the cluster when a bus is attached. It is a
// lock-protected map lookup and never blocks (chatConfig.Online).
func (b *Broker) IsOnline(user string) bool {
	b.mu.RLock()
	here := b.users[user] > 0
	b.mu.RUnlock()
	if here {
		return true
	}
	if bus := b.loadBus(); bus != nil {
		return bus.RemoteOnline(user)
	}
	return false
}

// Limits returns the frame limits the broker's parsers enforce, for
// transports that bound their messages to match (the WebSocket read limit).
func (b *Broker) Limits() stomp.Limits {
	return b.cfg.Limits
}

// SessionCount returns the number of live sessions.
func (b *Broker) SessionCount() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.sessions)
}

// HasSubscribers reports whether anyone on this node subscribes to key.
func (b *Broker) HasSubscribers(key string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.topics[key]) > 0
}

// HasUserSubscribers reports whether a session of user on this node
// subscribes to the user destination dest (with or without the user
// prefix, as SendToUser takes it). A SUBSCRIBE counts once the broker has
// read it: until then a SendToUser finds nobody, as it should.
func (b *Broker) HasUserSubscribers(user, dest string) bool {
	if user == "" {
		return false
	}
	return b.HasSubscribers(userKey(user, 0, b.userDest(dest)))
}

// userDest spells a user destination with the user prefix, as the
// subscriptions are filed: "/queue/x" and "/user/queue/x" are the same.
func (b *Broker) userDest(dest string) string {
	if strings.HasPrefix(dest, b.cfg.UserPrefix) {
		return dest
	}
	return strings.TrimSuffix(b.cfg.UserPrefix, "/") + dest
}

// addTopicSub adds sub to the subscribers of key.
func (b *Broker) addTopicSub(key string, sub *Subscription) {
	b.mu.Lock()
	// Readers (publishTopic and friends) take the slice under the lock and
	// range over it after releasing it, never past their own length, so an
	// append into spare capacity is invisible to them. Copying the whole
	// list on every subscribe instead made 10,000 subscribers of one topic
	// cost about 400 MB of copies while they connected. Removal still
	// copies: it changes elements a reader may be ranging over.
	b.topics[key] = append(b.topics[key], sub)
	b.mu.Unlock()
}

// removeTopicSub removes sub from key's subscribers, copying the list.
func (b *Broker) removeTopicSub(key string, sub *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.topics[key]
	for i, s := range old {
		if s == sub {
			if len(old) == 1 {
				delete(b.topics, key)
				return
			}
			subs := make([]*Subscription, 0, len(old)-1)
			subs = append(subs, old[:i]...)
			b.topics[key] = append(subs, old[i+1:]...)
			return
		}
	}
}

// userKey is the topic key under which a user's subscriptions to a /user/
// destination are filed. Anonymous sessions get a key of their own, so a
// /user/queue/errors subscription still reaches exactly that connection.
func userKey(user string, sessionID uint64, dest string) string {
	if user == "" {
		return fmt.Sprintf("\x00s%d\x00%s", sessionID, dest)
	}
	return "\x00u" + user + "\x00" + dest
}

// routeTopic delivers m to the subscribers of its topic on every node: over
// the cluster bus when one is attached (this node gets its own message back
// from NATS, so there is one delivery path and one order), else here. It
// never blocks on a subscriber.
func (b *Broker) routeTopic(m *message) error {
	if bus := b.loadBus(); bus != nil {
		return bus.PublishTopic(m.dest, m.headers, m.body)
	}
	b.publishTopic(m.dest, m)
	return nil
}

// routeQueue hands m to one consumer of its queue somewhere in the cluster
// (Bus.SendQueue), or, when no node consumes it or on a single node, to the
// local queue, which holds it until a consumer comes (here or, offered by
// the bus, on another node). ctx bounds the wait for the node that takes it.
func (b *Broker) routeQueue(ctx context.Context, m *message) error {
	if !b.stampExpiry(m) {
		return nil // expired before it was routed: the sender asked for it to go
	}
	if bus := b.loadBus(); bus != nil {
		if taken, err := bus.SendQueue(ctx, m.dest, m.headers, m.body); err != nil || taken {
			return err
		}
	}
	return b.putQueue(m.dest, m)
}

// publishTopic delivers m to the subscribers filed under key on this node
// only. Stored chat messages and presence lists take this path; messages
// that every node must see go through routeTopic.
func (b *Broker) publishTopic(key string, m *message) {
	b.mu.RLock()
	subs := b.topics[key]
	b.mu.RUnlock()
	for _, sub := range subs {
		sub.deliver(m)
	}
}

// SendToLocalUser is SendToUser for this node's sessions only: for what
// every node does anyway, such as a notification produced by applying a
// log entry, which each node delivers to its own sessions.
func (b *Broker) SendToLocalUser(user, dest string, headers []stomp.Header, body []byte) {
	b.stats.published.Add(1)
	dest = b.userDest(dest)
	b.publishTopic(userKey(user, 0, dest), &message{dest: dest, headers: headers, body: body})
}

// sendToSession delivers to one session's subscriptions of a user
// destination. The session is on this node, so this never crosses the
// cluster (appRequest.Reply, Spring's @SendToUser to the sender only).
func (b *Broker) sendToSession(s *Session, dest string, headers []stomp.Header, body []byte) {
	b.stats.published.Add(1)
	dest = b.userDest(dest)
	m := &message{dest: dest, headers: headers, body: body}
	b.mu.RLock()
	subs := b.topics[userKey(s.User, s.id, dest)]
	b.mu.RUnlock()
	for _, sub := range subs {
		if sub.sess == s {
			sub.deliver(m)
		}
	}
}

// Close tells every session the server is shutting down, closes them, and
// waits until every Serve call has returned or ctx ends; then it closes the
// transports of the sessions still running, and reports ctx's error.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	sessions := make([]*Session, 0, len(b.sessions))
	for s := range b.sessions {
		sessions = append(sessions, s)
	}
	b.mu.Unlock()
	for _, s := range sessions {
		s.fail(errShuttingDown, transport.CloseGoingAway)
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Sessions still running are stuck: a writer waiting out its write
		// deadline on a client that reads nothing, or a handler. Dropping
		// their connections ends their reads and writes now; a WebSocket's
		// Close would wait on the very client that is stuck. Cancelling
		// their contexts ends a handler that waits, such as a post waiting
		// for a cluster log that no longer applies: its reader is in the
		// handler, not in a read, so no closed connection would reach it.
		for _, s := range sessions {
			s.cancel()
			if hc, ok := s.t.(transport.HardCloser); ok {
				hc.CloseNow()
			} else {
				s.t.Close(transport.CloseGoingAway, errShuttingDown.Error())
			}
		}
		return fmt.Errorf("close broker: %w", ctx.Err())
	}
}
