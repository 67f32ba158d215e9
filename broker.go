package main

import (
	"context"
	"fmt"
	"log/slog"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Broker defaults. Each is an option in main.go.
const (
	defaultMaxSubscriptions = 256 // per connection; a chat UI needs one per open room plus a few user queues
	// defaultMaxUserSubscriptions bounds one user's subscriptions over all
	// of their connections: eight connections full to -max-subscriptions.
	// The web UI takes at most 204 per tab (200 rooms, presence, typing,
	// two user queues), so someone in 200 rooms keeps ten tabs, with room
	// for a dropped connection the server has not noticed yet. Without it,
	// one account holding connections from many addresses could file up
	// to -max-connections × -max-subscriptions subscriptions.
	defaultMaxUserSubscriptions = 8 * defaultMaxSubscriptions
	defaultMaxConnections       = 20000            // a Pi 4 holds this many idle sockets comfortably
	defaultHeartBeat            = 10 * time.Second // Spring's simple broker and stompjs both default to 10 s
	defaultConnectTimeout       = 10 * time.Second // a socket that never sends CONNECT is dropped
	defaultWriteTimeout         = 5 * time.Second  // a client that cannot take a write in 5 s is gone or hostile
	defaultOutboxFrames         = 1024             // frames queued for one reader before it counts as slow
	defaultOutboxBytes          = 4 << 20          // bytes queued for one reader before it counts as slow, as NATS max_pending
	outboxHardFactor            = 2                // past this many times the bounds a reader is cut off at once
	slowConsumerGrace           = 2 * time.Second  // a reader may stay over the bounds this long (a GC pause, a burst) before it is cut off
	defaultQueueDepth           = 10000            // messages a /queue/ destination holds while nobody consumes
	defaultMaxUnacked           = 1024             // deliveries awaiting ACK in client modes, per connection
	heartBeatGrace              = 2                // a client may be this many times late before it is considered gone
)

// brokerConfig holds the broker's options. Zero values take the defaults.
type brokerConfig struct {
	TopicPrefixes    []string // 1:N destinations; default /sub/ (the seed) and /topic/ (Spring)
	QueuePrefixes    []string // 1:1 competing consumers; default /queue/
	AppPrefixes      []string // routed to application handlers; default /pub/ and /app/
	UserPrefix       string   // per-user destinations; default /user/
	Limits           stomp.Limits
	MaxSubscriptions int
	// MaxUserSubscriptions bounds the subscriptions of one user name over
	// all their sessions; 0 means no limit (it takes no default here, as a
	// zero Config in tests turns limits off). Anonymous sessions have only
	// the per-connection MaxSubscriptions.
	MaxUserSubscriptions int
	MaxConnections       int
	HeartBeat            time.Duration // what the server offers and asks for; 0 disables heart-beats
	ConnectTimeout       time.Duration
	WriteTimeout         time.Duration
	OutboxFrames         int
	OutboxBytes          int
	QueueDepth           int
	MaxUnacked           int
	ServerName           string        // the CONNECTED server header
	Auth                 authenticator // nil accepts everyone, naming them by their login header
	Limiter              *rateLimiter  // SEND and per-address connection limits (ratelimit.go); nil: none
}

func (c *brokerConfig) setDefaults() {
	if c.TopicPrefixes == nil {
		c.TopicPrefixes = []string{"/sub/", "/topic/"}
	}
	if c.QueuePrefixes == nil {
		c.QueuePrefixes = []string{"/queue/"}
	}
	if c.AppPrefixes == nil {
		c.AppPrefixes = []string{"/pub/", "/app/"}
	}
	if c.UserPrefix == "" {
		c.UserPrefix = "/user/"
	}
	if c.Limits == (stomp.Limits{}) {
		c.Limits = stomp.DefaultLimits()
	}
	setDefault(&c.MaxSubscriptions, defaultMaxSubscriptions)
	setDefault(&c.MaxConnections, defaultMaxConnections)
	setDefault(&c.ConnectTimeout, defaultConnectTimeout)
	setDefault(&c.WriteTimeout, defaultWriteTimeout)
	setDefault(&c.OutboxFrames, defaultOutboxFrames)
	setDefault(&c.OutboxBytes, defaultOutboxBytes)
	setDefault(&c.QueueDepth, defaultQueueDepth)
	setDefault(&c.MaxUnacked, defaultMaxUnacked)
	if c.ServerName == "" {
		c.ServerName = "stompbox/" + buildVersion
	}
	if c.Auth == nil {
		c.Auth = openAuth{}
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// authenticator decides who a CONNECT frame speaks for.
type authenticator interface {
	// AuthenticateSTOMP returns the user name for the connection ("" for an
	// anonymous one) and an optional principal (the application's user
	// record) that handlers and hooks read from the session. An error
	// refuses the connection: protocol errors are shown, others logged.
	AuthenticateSTOMP(ctx context.Context, info transport.Info, connect *stomp.Frame) (name string, principal any, err error)
}

// openAuth trusts the HTTP layer's user, then the login header. It is the
// broker's default for tests and for deployments without the chat store.
type openAuth struct{}

func (openAuth) AuthenticateSTOMP(_ context.Context, info transport.Info, f *stomp.Frame) (string, any, error) {
	if info.User != "" {
		return info.User, nil, nil
	}
	return f.Value(stomp.HdrLogin), nil, nil
}

// limitError is a refusal by a configured limit. Its message names the
// option and its value, so that whoever hits it knows what to raise:
// "too many subscriptions: at most 256 (-max-subscriptions)". It wraps the
// sentinel, so errors.Is still matches.
func limitError(base *stomp.Error, option string, value int) error {
	return fmt.Errorf("%w: at most %d (-%s)", base, value, option)
}

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
	errQueueFull          = stomp.NewError("queue is full")
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
	cfg brokerConfig
	log *slog.Logger

	nextSession atomic.Uint64
	wg          sync.WaitGroup // one per running Serve

	mu        sync.RWMutex
	closed    bool
	sessions  map[*session]struct{}
	topics    map[string][]*subscription // destination (or user key) → subscribers, copy-on-write
	queues    map[string]*queue
	users     map[string]int // user name → live sessions, for isOnline
	userSubs  map[string]int // user name → live subscriptions, for MaxUserSubscriptions
	routes    []appRoute
	subHooks  []destHook
	sendHooks []destHook
	unsubHook []func(s *session, sub *subscription)
	onUser    []func(user string, online bool)
	onRemote  []func(dest string)

	// bus spreads what the broker delivers and does not store over the
	// nodes of a cluster (cluster_bus.go). It is nil on a single node, and
	// then every path below is the local one. newClusterBus sets it before
	// the broker serves; it is atomic only so that a bus attached to a
	// broker whose listeners already run (as tests do) is not a data race.
	bus atomic.Pointer[clusterBus]
}

// newBroker returns a broker ready to Serve connections.
func newBroker(cfg brokerConfig, log *slog.Logger) *Broker {
	cfg.setDefaults()
	b := &Broker{
		cfg:      cfg,
		log:      log,
		sessions: make(map[*session]struct{}),
		topics:   make(map[string][]*subscription),
		queues:   make(map[string]*queue),
		users:    make(map[string]int),
		userSubs: make(map[string]int),
	}
	// Every subscription that ends gives back its user's slot: removeSub
	// runs these hooks for UNSUBSCRIBE and for a closing session alike.
	b.OnUnsubscribe(func(s *session, _ *subscription) { b.releaseUserSub(s.user) })
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
		return limitError(errTooManyUserSubs, "max-user-subscriptions", b.cfg.MaxUserSubscriptions)
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

// userSubCount is how many subscriptions user holds over all sessions
// (counted only while MaxUserSubscriptions is on).
func (b *Broker) userSubCount(user string) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.userSubs[user]
}

// destHook runs before a SUBSCRIBE or client SEND on destinations with its
// prefix. A subscribe hook may replay history into the new subscription (see
// subscription.hold); an error refuses the frame with an ERROR.
type destHook struct {
	prefix string
	fn     func(ctx context.Context, s *session, sub *subscription, f *stomp.Frame) error
}

// OnSubscribe registers a hook for SUBSCRIBE frames whose destination starts
// with prefix. Register hooks before serving.
func (b *Broker) OnSubscribe(prefix string, fn func(ctx context.Context, s *session, sub *subscription, f *stomp.Frame) error) {
	b.subHooks = append(b.subHooks, destHook{prefix, fn})
}

// OnSend registers a hook for client SEND frames to broker destinations
// (topics and queues) starting with prefix. sub is nil. Register before serving.
func (b *Broker) OnSend(prefix string, fn func(ctx context.Context, s *session, f *stomp.Frame) error) {
	b.sendHooks = append(b.sendHooks, destHook{prefix, func(ctx context.Context, s *session, _ *subscription, f *stomp.Frame) error {
		return fn(ctx, s, f)
	}})
}

// OnUnsubscribe registers fn to be told when a subscription ends, by
// UNSUBSCRIBE or because its session went. fn runs on the session's reader
// goroutine and must not block. Register before serving.
func (b *Broker) OnUnsubscribe(fn func(s *session, sub *subscription)) {
	b.unsubHook = append(b.unsubHook, fn)
}

// TopicUsers returns the distinct user names subscribed to a topic, for
// presence ("who is in this room").
func (b *Broker) TopicUsers(dest string) []string {
	b.mu.RLock()
	subs := b.topics[dest]
	b.mu.RUnlock()
	seen := make(map[string]bool, len(subs))
	var users []string
	for _, sub := range subs {
		if u := sub.sess.user; u != "" && !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	return users
}

// OnPresence registers fn to be told when a user's first session connects
// and last session goes. fn runs on the connecting or leaving session's
// goroutine and must not block. Register before serving.
func (b *Broker) OnPresence(fn func(user string, online bool)) {
	b.onUser = append(b.onUser, fn)
}

// notePresence tells the cluster that user is (on) or is no longer (off)
// present at key on this node: connectedKey is being connected at all
// (isOnline), a destination is being in that place (a room's presence list). The caller
// holds the lock under which it counted the change, so that the cluster
// sees the changes of one key in the order they happened; notePresence
// only updates memory under the bus's own leaf lock and never blocks.
// Without a bus it does nothing.
func (b *Broker) notePresence(key, user string, on bool) {
	if cb := b.bus.Load(); cb != nil {
		cb.notePresence(key, user, on)
	}
}

// remotePresence returns the users present at dest on the other live
// nodes of the cluster, unsorted; nil without a bus.
func (b *Broker) remotePresence(dest string) []string {
	if cb := b.bus.Load(); cb != nil {
		return cb.remotePresence(dest)
	}
	return nil
}

// OnRemotePresence registers fn to be told that who is present at dest on
// other nodes changed (someone came or left there, or a node went away),
// so that the application can send its local subscribers the new list. fn
// runs on a cluster bus goroutine and must not block. Register before
// serving; without a bus it is never called.
func (b *Broker) OnRemotePresence(fn func(dest string)) {
	b.onRemote = append(b.onRemote, fn)
}

func runHooks(ctx context.Context, hooks []destHook, s *session, sub *subscription, f *stomp.Frame, dest string) error {
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
func (b *Broker) register(s *session) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errShuttingDown
	}
	if len(b.sessions) >= b.cfg.MaxConnections {
		return limitError(errTooManyConnections, "max-connections", b.cfg.MaxConnections)
	}
	b.sessions[s] = struct{}{}
	b.wg.Add(1)
	return nil
}

// setUser records that s speaks for user, for user destinations and presence.
func (b *Broker) setUser(s *session, user string) {
	if user == "" {
		return
	}
	b.mu.Lock()
	b.users[user]++
	first := b.users[user] == 1
	if first {
		// Under b.mu, so that the cluster hears of a user's comings and
		// goings in the order they happened here (see notePresence).
		b.notePresence(connectedKey, user, true)
	}
	b.mu.Unlock()
	if first {
		for _, fn := range b.onUser {
			fn(user, true)
		}
	}
}

// unregister removes s and everything it subscribed to.
func (b *Broker) unregister(s *session) {
	b.cfg.Limiter.connClosed(s)
	b.mu.Lock()
	delete(b.sessions, s)
	last := false
	if s.user != "" && s.connected {
		b.users[s.user]--
		if b.users[s.user] <= 0 {
			delete(b.users, s.user)
			last = true
			b.notePresence(connectedKey, s.user, false)
		}
	}
	b.mu.Unlock()
	if last {
		for _, fn := range b.onUser {
			fn(s.user, false)
		}
	}
}

// isOnline reports whether user has a connected session: here, or on
// another live node of the cluster when a bus is attached. It is a
// lock-protected map lookup and never blocks (chatConfig.Online).
func (b *Broker) isOnline(user string) bool {
	b.mu.RLock()
	here := b.users[user] > 0
	b.mu.RUnlock()
	if here {
		return true
	}
	if cb := b.bus.Load(); cb != nil {
		return cb.remoteOnline(user)
	}
	return false
}

// sessionCount returns the number of live sessions.
func (b *Broker) sessionCount() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.sessions)
}

// hasSubscribers reports whether anyone on this node subscribes to key.
func (b *Broker) hasSubscribers(key string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.topics[key]) > 0
}

// addTopicSub adds sub to the subscribers of key.
func (b *Broker) addTopicSub(key string, sub *subscription) {
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
func (b *Broker) removeTopicSub(key string, sub *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.topics[key]
	for i, s := range old {
		if s == sub {
			if len(old) == 1 {
				delete(b.topics, key)
				return
			}
			subs := make([]*subscription, 0, len(old)-1)
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

// Publish delivers a message to every subscriber of a topic destination, or
// to one consumer of a queue destination, on every node of the cluster. It
// never blocks on a subscriber. headers are user headers (content-type and
// custom ones); storeID is the message's id in the chat store, 0 if it is
// not stored. A stored message is delivered on this node only: every node
// delivers stored messages from the replicated log itself. In a cluster a
// queue message waits, at most queueOfferTimeout, for the node that takes
// it (clusterBus.sendQueue).
func (b *Broker) Publish(dest string, headers []stomp.Header, body []byte, storeID int64) error {
	m := &message{dest: dest, headers: headers, body: body, storeID: storeID}
	switch kind, _ := b.classify(dest); kind {
	case destTopic:
		if storeID != 0 {
			b.publishTopic(dest, m)
			return nil
		}
		return b.routeTopic(m)
	case destQueue:
		return b.routeQueue(context.Background(), m)
	default:
		return errUnknownDestination
	}
}

// routeTopic delivers m to the subscribers of its topic on every node: over
// the cluster bus when one is attached (this node gets its own message back
// from NATS, so there is one delivery path and one order), else here. It
// never blocks on a subscriber.
func (b *Broker) routeTopic(m *message) error {
	if cb := b.bus.Load(); cb != nil {
		return cb.publish(busTopicSubject, "", m)
	}
	b.publishTopic(m.dest, m)
	return nil
}

// routeQueue hands m to one consumer of its queue somewhere in the cluster,
// or holds it (see clusterBus.sendQueue); on a single node, to the local
// queue. ctx bounds the wait for the node that takes it.
func (b *Broker) routeQueue(ctx context.Context, m *message) error {
	if cb := b.bus.Load(); cb != nil {
		return cb.sendQueue(ctx, m)
	}
	return b.queueFor(m.dest).put(m)
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

// SendToUser delivers a message to every session of user subscribed to the
// user destination dest (a path such as "/user/queue/notifications" or
// "/queue/notifications"; the user prefix is added when missing), on every
// node of the cluster. Call it once per event, on one node. A bus that
// cannot publish logs the error: the caller (the store's writer) has
// nobody to tell.
func (b *Broker) SendToUser(user, dest string, headers []stomp.Header, body []byte) {
	if !strings.HasPrefix(dest, b.cfg.UserPrefix) {
		dest = strings.TrimSuffix(b.cfg.UserPrefix, "/") + dest
	}
	m := &message{dest: dest, headers: headers, body: body}
	if cb := b.bus.Load(); cb != nil && user != "" {
		if err := cb.publish(busUserSubject, user, m); err != nil {
			b.log.Error("user message not sent to the cluster", "err", err, "user", user, "destination", dest)
		}
		return
	}
	b.publishTopic(userKey(user, 0, dest), m)
}

// SendToLocalUser is SendToUser for this node's sessions only: for what
// every node does anyway, such as a notification produced by applying a
// log entry, which each node delivers to its own sessions.
func (b *Broker) SendToLocalUser(user, dest string, headers []stomp.Header, body []byte) {
	if !strings.HasPrefix(dest, b.cfg.UserPrefix) {
		dest = strings.TrimSuffix(b.cfg.UserPrefix, "/") + dest
	}
	b.publishTopic(userKey(user, 0, dest), &message{dest: dest, headers: headers, body: body})
}

// sendToSession delivers to one session's subscriptions of a user
// destination. The session is on this node, so this never crosses the
// cluster (appRequest.Reply, Spring's @SendToUser to the sender only).
func (b *Broker) sendToSession(s *session, dest string, headers []stomp.Header, body []byte) {
	if !strings.HasPrefix(dest, b.cfg.UserPrefix) {
		dest = strings.TrimSuffix(b.cfg.UserPrefix, "/") + dest
	}
	m := &message{dest: dest, headers: headers, body: body}
	b.mu.RLock()
	subs := b.topics[userKey(s.user, s.id, dest)]
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
	sessions := make([]*session, 0, len(b.sessions))
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
		// Close would wait on the very client that is stuck.
		for _, s := range sessions {
			if hc, ok := s.t.(transport.HardCloser); ok {
				hc.CloseNow()
			} else {
				s.t.Close(transport.CloseGoingAway, errShuttingDown.Error())
			}
		}
		return fmt.Errorf("close broker: %w", ctx.Err())
	}
}
