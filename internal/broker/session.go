package broker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// session.go: a session's life and its reader: Serve, reading frames
// within the heart-beat or CONNECT timeout, failing with an ERROR, queueing
// deliveries and server frames for the writer, and cleaning up at the end.

// Session is one connected STOMP client. Its reader runs on the goroutine
// that called Broker.Serve. Its writer is a goroutine the session owns and
// waits for, started only while the outbox has something to write (see
// writeLoop): an idle connection has one goroutine, not two. Only the writer
// writes to the transport; everyone else calls deliver or send, which never
// block (see outbox).
type Session struct {
	b      *Broker
	t      transport.Conn
	info   transport.Info
	id     uint64
	idStr  string
	log    *slog.Logger    // slog.New(sessionLog{s})
	ctx    context.Context // ends when the session ends; for hooks and handlers
	cancel context.CancelFunc
	out    outbox
	wg     sync.WaitGroup // the writer goroutine, while one runs

	// Owned by whichever writer goroutine runs (one at a time; the outbox
	// lock hands them over from one to the next).
	ver     stomp.Version        // from the CONNECTED item on; ERRORs before CONNECT use 1.2 rules
	hbEvery time.Duration        // from the CONNECTED item: how often the server must send
	hb      *time.Timer          // fires hbEvery after the last write; nil until heart-beats are on
	json    transport.JSONWriter // the transport, when it carries STOMP bytes in JSON strings (SockJS); set by Serve
	writer  func()               // s.writeLoop, bound once: "go s.writeLoop()" would allocate a closure per start

	// Set once during CONNECT by the reader, read-only afterwards.
	connected bool
	version   stomp.Version
	User      string
	logUser   atomic.Pointer[string]        // user, for sessionLog, which any goroutine may run
	Principal any                           // from the Authenticator: the chat's user record, nil for anonymous
	logins    atomic.Pointer[sessionLogins] // the credentials the session rests on (revoke.go); any goroutine reads it
	hbRecv    time.Duration                 // how often the client promised to send

	// Owned by the reader goroutine.
	parser *stomp.Parser
	subs   subSet                    // by client id; see also endedSubs
	txs    map[string][]*stomp.Frame // open transactions

	// Deliveries awaiting ACK. Publishers add, the reader removes.
	ackMu    sync.Mutex
	unacked  map[uint64]*pendingAck
	delivery atomic.Uint64 // per-session message-id sequence
	failed   atomic.Bool

	// endedSubs counts subscriptions that EndAccess ended (revoke.go)
	// since the reader last dropped them from subs; any goroutine adds.
	endedSubs atomic.Int32
}

// pendingAck is one delivery in a client ack mode that the client has not yet ACKed.
type pendingAck struct {
	seq uint64
	sub *Subscription
	msg *message
}

// Serve runs a STOMP session over t until the client leaves, a protocol
// error ends it, or the broker closes. It closes t before returning. ctx
// should be the server's base context (never an HTTP request's context after
// a hijack).
func (b *Broker) Serve(ctx context.Context, t transport.Conn, info transport.Info) {
	s := &Session{b: b, t: t, info: info, id: b.nextSession.Add(1)}
	s.idStr = strconv.FormatUint(s.id, 36)
	s.log = slog.New(sessionLog{s})
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	// A transport whose reads do not watch s.ctx (a transport.DeadlineReader) ends
	// when it is closed: by the client, by the session's writer after an
	// ERROR, or by Broker.Close, which fails every session and closes the
	// transports of those still running when its grace period ends. A
	// context.AfterFunc on ctx that closed it cost every idle connection
	// 160 bytes for that last case alone.
	if jw, ok := t.(transport.JSONWriter); ok && jw.JSONStrings() {
		s.json = jw
	}
	s.writer = s.writeLoop
	s.out.init(b.cfg.OutboxFrames, b.cfg.OutboxBytes, s.startWriter)
	s.parser = stomp.NewParser(b.cfg.Limits)
	// txs and unacked are made on first use: most connections never open
	// a transaction or subscribe with client acks. subs starts empty.
	if err := b.admit(s); err != nil {
		s.log.Warn("connection refused", "err", err)
		s.out.closeWith(errorFrame(err), transport.CloseGoingAway)
		s.wg.Wait()
		return
	}
	defer b.wg.Done()
	s.log.Debug("session started")
	err := s.readLoop()
	if !s.failed.Load() && err != nil {
		switch _, visible := stomp.ClientMessage(err); {
		case visible:
			if errors.Is(err, stomp.ErrFrameTooLarge) {
				b.stats.refusals[limitFrame].Add(1)
			}
			s.log.Warn("protocol error", "err", err)
			s.fail(err, transport.CloseProtocol)
		case errors.As(err, new(*frameError)) && !errors.Is(err, context.DeadlineExceeded):
			s.fail(err, transport.CloseInternal) // our fault while handling a frame (a store error): logged, "internal error" to the client
		case errors.Is(err, context.DeadlineExceeded):
			s.log.Warn("client went silent", "timeout", s.readTimeout())
			if s.connected {
				s.fail(errClientSilent, transport.ClosePolicy)
			} else {
				s.fail(errConnectTimeout, transport.ClosePolicy)
			}
		default: // the transport ended: the client went away
			s.log.Debug("read ended", "err", err)
		}
	}
	s.cleanup()
	b.unregister(s)
	s.out.closeWith(nil, 0)
	s.wg.Wait()
	s.log.Debug("session ended")
}

// sessionLog is a connection's log handler. It holds only its session and
// adds the connection's attributes (conn, remote, transport, and user once
// logged in) when a record is logged. A handler that kept them, formatted
// or not, cost every idle connection 170 bytes or more for lines it mostly
// never logs; a one-pointer struct fits in the slog.Handler interface
// without an allocation, and Logger checks Enabled before anything is
// built. Safe for concurrent use: it reads only fields that never change
// and the atomic logUser.
type sessionLog struct{ s *Session }

func (l sessionLog) attrs() []slog.Attr {
	s := l.s
	a := []slog.Attr{slog.String("conn", s.idStr), slog.String("remote", s.info.Remote), slog.String("transport", s.info.Transport)}
	if u := s.logUser.Load(); u != nil {
		a = append(a, slog.String("user", *u))
	}
	return a
}

func (l sessionLog) Enabled(ctx context.Context, lv slog.Level) bool {
	return l.s.b.log.Handler().Enabled(ctx, lv)
}

func (l sessionLog) Handle(ctx context.Context, r slog.Record) error {
	return l.s.b.log.Handler().WithAttrs(l.attrs()).Handle(ctx, r)
}

func (l sessionLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.s.b.log.Handler().WithAttrs(append(l.attrs(), attrs...))
}

func (l sessionLog) WithGroup(name string) slog.Handler {
	return l.s.b.log.Handler().WithAttrs(l.attrs()).WithGroup(name)
}

// frameError carries the frame that caused an error, for the ERROR's receipt-id.
type frameError struct {
	err   error
	frame *stomp.Frame
}

func (e *frameError) Error() string { return e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }

// fail ends the session with an ERROR frame describing err, then closes the
// transport with code. Any goroutine may call it; only the first call counts.
// Errors that are not protocol errors are logged here and shown to the client
// as "internal error".
func (s *Session) fail(err error, code int) {
	if !s.failed.CompareAndSwap(false, true) {
		return
	}
	if err == errSlowConsumer {
		s.b.stats.slowConsumers.Add(1)
	}
	if _, visible := stomp.ClientMessage(err); !visible {
		s.log.Error("session failed", "err", err)
	}
	// The session's context is not cancelled here: the writer sends the ERROR
	// and then closes the transport, which ends the reader. Cancelling first
	// would make a WebSocket transport drop the connection before the ERROR.
	s.out.closeWith(errorFrame(err), code)
}

// errorFrame builds an ERROR frame for err, with the receipt-id of the frame
// that caused it (STOMP 1.2 §ERROR).
func errorFrame(err error) *stomp.Frame {
	msg, _ := stomp.ClientMessage(err)
	f := &stomp.Frame{Command: stomp.CmdError}
	f.Add(stomp.HdrMessage, msg)
	if errors.Is(err, stomp.ErrVersionUnsupported) {
		f.Add(stomp.HdrVersion, stomp.SupportedVersions)
	}
	var fe *frameError
	if errors.As(err, &fe) {
		if r, ok := fe.frame.Get(stomp.HdrReceipt); ok {
			f.Add(stomp.HdrReceiptID, r)
		}
	}
	f.Add(stomp.HdrContentType, "text/plain")
	f.Body = []byte(msg + "\n")
	return f
}

// readTimeout is how long the reader waits for the next chunk.
func (s *Session) readTimeout() time.Duration {
	if !s.connected {
		return s.b.cfg.ConnectTimeout
	}
	if s.hbRecv > 0 {
		return s.hbRecv * heartBeatGrace
	}
	return 0
}

// readLoop reads and handles frames until the client leaves or an error.
func (s *Session) readLoop() error {
	for {
		chunk, err := s.read()
		if err != nil {
			if s.ctx.Err() != nil {
				return context.Canceled
			}
			return err
		}
		s.parser.Feed(chunk)
		for {
			f, err := s.parser.Next()
			if err != nil {
				return err
			}
			if f == nil {
				break
			}
			s.b.stats.frameIn(f.Command)
			if err := s.handle(f); err != nil {
				if errors.Is(err, errDisconnected) {
					return nil
				}
				return &frameError{err: err, frame: f}
			}
		}
	}
}

var errDisconnected = errors.New("client disconnected")

// read returns the next chunk from the transport within readTimeout. A
// timeout is reported as context.DeadlineExceeded whichever way the
// transport bounds its reads.
func (s *Session) read() ([]byte, error) {
	d := s.readTimeout()
	if r, ok := s.t.(transport.DeadlineReader); ok {
		var deadline time.Time
		if d > 0 {
			deadline = time.Now().Add(d)
		}
		chunk, err := r.ReadBy(deadline)
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, context.DeadlineExceeded
		}
		return chunk, err
	}
	ctx := s.ctx
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(s.ctx, d)
		defer cancel()
	}
	return s.t.Read(ctx)
}

// send queues a server frame (RECEIPT, CONNECTED) for the writer.
func (s *Session) send(it outItem) {
	if !s.out.push(it, 64+len(it.frame.Body)) && !s.out.isClosed() {
		s.fail(errSlowConsumer, transport.ClosePolicy)
	}
}

// deliver queues a MESSAGE for sub. It never blocks; on overflow the session
// is failed as a slow consumer and false is returned.
func (s *Session) deliver(sub *Subscription, m *message) bool {
	seq := s.delivery.Add(1)
	if sub.ack != ackAuto {
		s.ackMu.Lock()
		if len(s.unacked) >= s.b.cfg.MaxUnacked {
			s.ackMu.Unlock()
			s.fail(errTooManyUnacked, transport.ClosePolicy)
			return false
		}
		if s.unacked == nil {
			s.unacked = make(map[uint64]*pendingAck)
		}
		s.unacked[seq] = &pendingAck{seq: seq, sub: sub, msg: m}
		s.ackMu.Unlock()
	}
	if s.out.push(outItem{sub: sub, msg: m, seq: seq}, 96+len(m.body)+len(m.dest)) {
		s.b.stats.delivered.Add(1)
		return true
	}
	if sub.ack != ackAuto {
		s.ackMu.Lock()
		delete(s.unacked, seq)
		s.ackMu.Unlock()
	}
	if !s.out.isClosed() {
		s.log.Warn("slow consumer", "queued", s.b.cfg.OutboxFrames)
		s.fail(errSlowConsumer, transport.ClosePolicy)
	}
	return false
}

// cleanup runs once the reader is done: subscriptions go, open transactions
// are aborted (STOMP 1.2 §BEGIN) and unacked queue messages are redelivered.
func (s *Session) cleanup() {
	for sub := range s.subs.all {
		s.b.removeSub(sub)
	}
	s.txs = nil
	s.ackMu.Lock()
	pending := make([]*pendingAck, 0, len(s.unacked))
	for _, p := range s.unacked {
		pending = append(pending, p)
	}
	s.unacked = nil
	s.ackMu.Unlock()
	requeue(pending)
}
