package broker

import (
	"context"
	"stompbox/internal/ratelimit"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"time"
)

// config.go: the broker's options and their defaults, the
// Authenticator that names a CONNECT's user, and the errors of limits.

// Broker defaults. Each is an option in main.go.
const (
	DefaultMaxSubscriptions = 256 // per connection; a chat UI needs one per open room plus a few user queues
	// DefaultMaxUserSubscriptions bounds one user's subscriptions over all
	// of their connections: eight connections full to -max-subscriptions.
	// The web UI takes at most 204 per tab (200 rooms, presence, typing,
	// two user queues), so someone in 200 rooms keeps ten tabs, with room
	// for a dropped connection the server has not noticed yet. Without it,
	// one account holding connections from many addresses could file up
	// to -max-connections × -max-subscriptions subscriptions.
	DefaultMaxUserSubscriptions = 8 * DefaultMaxSubscriptions
	DefaultMaxConnections       = 20000            // a Pi 4 holds this many idle sockets comfortably
	DefaultHeartBeat            = 10 * time.Second // Spring's simple broker and stompjs both default to 10 s
	defaultConnectTimeout       = 10 * time.Second // a socket that never sends CONNECT is dropped
	defaultWriteTimeout         = 5 * time.Second  // a client that cannot take a write in 5 s is gone or hostile
	defaultOutboxFrames         = 1024             // frames queued for one reader before it counts as slow
	defaultOutboxBytes          = 4 << 20          // bytes queued for one reader before it counts as slow, as NATS max_pending
	outboxHardFactor            = 2                // past this many times the bounds a reader is cut off at once
	slowConsumerGrace           = 2 * time.Second  // a reader may stay over the bounds this long (a GC pause, a burst) before it is cut off
	defaultQueueDepth           = 10000            // messages a /queue/ destination holds while nobody consumes
	defaultMaxUnacked           = 1024             // deliveries awaiting ACK in client modes, per connection
	heartBeatGrace              = 2                // a client may be this many times late before it is considered gone
	defaultServerName           = "stompbox"       // the CONNECTED server header when the config names none

	// Held /queue/ messages (issue 22): what the broker keeps in memory for
	// queues nobody consumes is bounded in bytes, in count of queues and in
	// time, with defaults a Raspberry Pi can afford.
	DefaultQueueBytes         = 64 << 20  // bytes held over all queues
	DefaultQueueBytesPerQueue = 4 << 20   // bytes held by one queue
	DefaultMaxQueues          = 10000     // distinct /queue/ destinations at once; an empty queue nobody consumes is forgotten
	DefaultQueueTTL           = time.Hour // longest a held message waits; a SEND's expires header may shorten it, never lengthen it
	// DefaultMemoryMark is the Go heap above which publishers are held by
	// flow control (their SENDs are not read) until it falls back below,
	// as RabbitMQ's memory alarm blocks publishers. 512 MiB leaves a
	// 1 GiB Pi room for the page cache and argon2's 19 MiB per login.
	DefaultMemoryMark = 512 << 20
)

// Config holds the broker's options. Zero values take the defaults.
type Config struct {
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
	ServerName           string             // the CONNECTED server header; default defaultServerName (the server names its version)
	Auth                 Authenticator      // nil accepts everyone, naming them by their login header
	Limiter              *ratelimit.Limiter // SEND and per-address connection limits (internal/ratelimit); nil: none

	// Held queue messages (queue_limits.go). Zero takes the default;
	// QueueBytes, QueueBytesPerQueue, MaxQueues and MemoryMark below zero
	// turn that limit off.
	QueueBytes         int64         // bytes held over all queues while nobody consumes them
	QueueBytesPerQueue int64         // bytes one queue holds
	MaxQueues          int           // distinct queues at once
	QueueTTL           time.Duration // longest a held message waits before it is dropped
	MemoryMark         int64         // Go heap bytes above which publishers are held
	// DenyAnonymousQueues refuses SEND and SUBSCRIBE to /queue/
	// destinations from sessions without a user (the web UI never uses
	// them; see README "Security"). false (tests, bare brokers) allows them.
	DenyAnonymousQueues bool
	// HeapBytes reports the heap for MemoryMark; nil reads runtime/metrics.
	// Tests set it.
	HeapBytes func() uint64
	// Now is the clock of queue expiry; nil is time.Now. Tests set it.
	Now func() time.Time
}

func (c *Config) setDefaults() {
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
	setDefault(&c.MaxSubscriptions, DefaultMaxSubscriptions)
	setDefault(&c.MaxConnections, DefaultMaxConnections)
	setDefault(&c.ConnectTimeout, defaultConnectTimeout)
	setDefault(&c.WriteTimeout, defaultWriteTimeout)
	setDefault(&c.OutboxFrames, defaultOutboxFrames)
	setDefault(&c.OutboxBytes, defaultOutboxBytes)
	setDefault(&c.QueueDepth, defaultQueueDepth)
	setDefault(&c.MaxUnacked, defaultMaxUnacked)
	setDefault(&c.QueueBytes, DefaultQueueBytes)
	setDefault(&c.QueueBytesPerQueue, DefaultQueueBytesPerQueue)
	setDefault(&c.MaxQueues, DefaultMaxQueues)
	setDefault(&c.QueueTTL, DefaultQueueTTL)
	setDefault(&c.MemoryMark, DefaultMemoryMark)
	if c.HeapBytes == nil {
		c.HeapBytes = heapBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ServerName == "" {
		c.ServerName = defaultServerName
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

// Authenticator decides who a CONNECT frame speaks for.
type Authenticator interface {
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
