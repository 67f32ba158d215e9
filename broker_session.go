package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ackMode is a subscription's ack header (STOMP 1.2 §SUBSCRIBE "ack Header").
type ackMode uint8

const (
	ackAuto ackMode = iota
	ackClient
	ackClientIndividual
)

// subscription is one SUBSCRIBE of one session.
type subscription struct {
	sess *session
	id   string   // the client's subscription id
	dest string   // as the client wrote it
	key  string   // topic key (dest, or a user key for /user/ destinations)
	kind destKind // destTopic, destQueue or destUser
	ack  ackMode
	q    *queue // for destQueue
	// removed is set by UNSUBSCRIBE (and session end); the writer skips
	// topic deliveries for it that were queued but not yet written.
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
func (sub *subscription) deliver(m *message) bool {
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

// hold makes the subscription buffer live messages instead of delivering
// them, so that a hook can replay history first. The hook must call release.
func (sub *subscription) hold() {
	sub.holding.Store(true)
}

// release delivers the messages held since hold, except stored ones with
// an id at or below replayed (already sent by the replay), then resumes live
// delivery. Together with hold this gives a replay with no gap and no
// duplicate: a message is either in the replayed range or held.
func (sub *subscription) release(replayed int64) {
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
func (sub *subscription) Replay(headers []stomp.Header, body []byte, storeID int64) bool {
	return sub.sess.deliver(sub, &message{dest: sub.dest, headers: headers, body: body, storeID: storeID})
}

// session is one connected STOMP client. Its reader runs on the goroutine
// that called Broker.Serve. Its writer is a goroutine the session owns and
// waits for, started only while the outbox has something to write (see
// writeLoop): an idle connection has one goroutine, not two. Only the writer
// writes to the transport; everyone else calls deliver or send, which never
// block (see outbox).
type session struct {
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
	ver     stomp.Version // from the CONNECTED item on; ERRORs before CONNECT use 1.2 rules
	hbEvery time.Duration // from the CONNECTED item: how often the server must send
	hb      *time.Timer   // fires hbEvery after the last write; nil until heart-beats are on
	json    jsonWriter    // the transport, when it carries STOMP bytes in JSON strings (SockJS); set by Serve
	writer  func()        // s.writeLoop, bound once: "go s.writeLoop()" would allocate a closure per start

	// Set once during CONNECT by the reader, read-only afterwards.
	connected bool
	version   stomp.Version
	user      string
	logUser   atomic.Pointer[string] // user, for sessionLog, which any goroutine may run
	principal any                    // from the authenticator: the chat's user record, nil for anonymous
	hbRecv    time.Duration          // how often the client promised to send

	// Owned by the reader goroutine.
	parser *stomp.Parser
	subs   subSet                    // by client id
	txs    map[string][]*stomp.Frame // open transactions

	// Deliveries awaiting ACK. Publishers add, the reader removes.
	ackMu    sync.Mutex
	unacked  map[uint64]*pendingAck
	delivery atomic.Uint64 // per-session message-id sequence
	failed   atomic.Bool
}

// pendingAck is one delivery in a client ack mode that the client has not yet ACKed.
type pendingAck struct {
	seq uint64
	sub *subscription
	msg *message
}

// Serve runs a STOMP session over t until the client leaves, a protocol
// error ends it, or the broker closes. It closes t before returning. ctx
// should be the server's base context (never an HTTP request's context after
// a hijack).
func (b *Broker) Serve(ctx context.Context, t transport.Conn, info transport.Info) {
	s := &session{b: b, t: t, info: info, id: b.nextSession.Add(1)}
	s.idStr = strconv.FormatUint(s.id, 36)
	s.log = slog.New(sessionLog{s})
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	// A transport whose reads do not watch s.ctx (a deadlineReader) ends
	// when it is closed: by the client, by the session's writer after an
	// ERROR, or by Broker.Close, which fails every session and closes the
	// transports of those still running when its grace period ends. A
	// context.AfterFunc on ctx that closed it cost every idle connection
	// 160 bytes for that last case alone.
	if jw, ok := t.(jsonWriter); ok && jw.JSONStrings() {
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
type sessionLog struct{ s *session }

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
func (s *session) fail(err error, code int) {
	if !s.failed.CompareAndSwap(false, true) {
		return
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
func (s *session) readTimeout() time.Duration {
	if !s.connected {
		return s.b.cfg.ConnectTimeout
	}
	if s.hbRecv > 0 {
		return s.hbRecv * heartBeatGrace
	}
	return 0
}

// readLoop reads and handles frames until the client leaves or an error.
func (s *session) readLoop() error {
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

// deadlineReader is implemented by transports that bound a read with a
// deadline on their socket instead of a context, so that a connection
// blocked in a read holds no context machinery (see wsTransport.ReadBy).
// ReadBy does not watch any context: it returns when data comes, the
// deadline passes (an error matching os.ErrDeadlineExceeded; a zero
// deadline never passes) or the transport is closed. Only the session's
// reader calls it, as it would call Read.
type deadlineReader interface {
	ReadBy(deadline time.Time) ([]byte, error)
}

// read returns the next chunk from the transport within readTimeout. A
// timeout is reported as context.DeadlineExceeded whichever way the
// transport bounds its reads.
func (s *session) read() ([]byte, error) {
	d := s.readTimeout()
	if r, ok := s.t.(deadlineReader); ok {
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
func (s *session) send(it outItem) {
	if !s.out.push(it, 64+len(it.frame.Body)) && !s.out.isClosed() {
		s.fail(errSlowConsumer, transport.ClosePolicy)
	}
}

// deliver queues a MESSAGE for sub. It never blocks; on overflow the session
// is failed as a slow consumer and false is returned.
func (s *session) deliver(sub *subscription, m *message) bool {
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
func (s *session) cleanup() {
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

// startWriter starts a writer goroutine. The outbox calls it, under its
// lock, when something is queued and no writer runs; so there is never more
// than one, and the Add happens before Serve's final Wait.
func (s *session) startWriter() {
	s.wg.Add(1)
	go s.writer()
}

// heartBeatDue runs on the heart-beat timer's goroutine: it asks for a
// writer, which sends an EOL unless it has frames to write anyway.
func (s *session) heartBeatDue() {
	s.out.pushHeartBeat()
}

// writeBatch is a writer's scratch space, pooled so that an idle
// connection holds none and a burst does not allocate it afresh.
type writeBatch struct {
	items []outItem
	raw   []byte // JSON mode: one frame's bytes before escaping
	buf   []byte
	one   [1][]byte // what goes out, as the batch's only element
}

// writeBatches holds writeBatch values between bursts. It is a cache of
// scratch memory shared by all sessions, not state.
var writeBatches = sync.Pool{New: func() any { return new(writeBatch) }}

// maxKeptBatch is the largest batch buffer returned to writeBatches: a
// burst's big buffer is left to the garbage collector.
const maxKeptBatch = 256 << 10

// maxKeptItems is the largest queue array returned to writeBatches (the
// arrays go back and forth between outbox and writer; see outbox.take).
const maxKeptItems = 256

// writeLoop is the session's only writer, started by the outbox when it
// has something to write (startWriter). It drains the outbox in batches,
// and returns when it finds the outbox empty: the next push starts a new
// writer. When the outbox is closed it writes what is left and the final
// frame, then closes the transport and returns for good. Every write has a
// deadline.
func (s *session) writeLoop() {
	defer s.wg.Done()
	wb := writeBatches.Get().(*writeBatch)
	defer func() {
		clear(wb.items[:cap(wb.items)])
		wb.items, wb.one[0] = wb.items[:0], nil
		if cap(wb.items) > maxKeptItems {
			wb.items = nil
		}
		if cap(wb.buf) > maxKeptBatch {
			wb.buf = nil
		}
		if cap(wb.raw) > maxKeptBatch {
			wb.raw = nil
		}
		writeBatches.Put(wb)
	}()
	if s.ver == 0 {
		s.ver = stomp.V12
	}
	for {
		var t taken
		wb.items, t = s.out.take(wb.items[:0])
		if !t.more {
			return
		}
		items := wb.items
		buf := slices.Grow(wb.buf[:0], batchSize(items, s.ver)) // one allocation per burst, not a growslice per frame
		for i := range items {
			if items[i].heartBeat > 0 {
				s.hbEvery = items[i].heartBeat
			}
			if items[i].ver > 0 {
				s.ver = items[i].ver
			}
			// A topic message queued before an UNSUBSCRIBE is dropped: delivery
			// stops at once. Queue messages are still written: an auto-ack one
			// has nobody else to go to (unacked ones were already requeued).
			if it := &items[i]; it.sub != nil && it.sub.q == nil && it.sub.removed.Load() {
				items[i] = outItem{}
				continue
			}
			if s.json != nil {
				buf = s.encodeJSON(buf, &items[i], s.ver, wb)
			} else {
				buf = s.encode(buf, &items[i], s.ver)
			}
			items[i] = outItem{}
		}
		if t.final != nil {
			if s.json != nil {
				wb.raw = stomp.AppendFrame(wb.raw[:0], t.final, s.ver)
				buf = sockjsframe.AppendContent(buf, wb.raw, false)
			} else {
				buf = stomp.AppendFrame(buf, t.final, s.ver)
			}
		}
		wb.buf = buf
		// Every frame was appended to buf, so buf holds them back to back
		// (an append that moves it copies what came before): the batch goes
		// to the transport as one piece, which it writes as one WebSocket
		// message, one TLS record or one SockJS message. (Several frames in
		// one message is STOMP-over-WebSocket practice; stomp.js and Spring
		// split them.)
		out := buf
		if len(out) == 0 && t.heartBeat && !t.closed {
			// STOMP 1.2 §Heart-beating: an EOL when nothing else went out.
			out = heartBeatEOL
			if s.json != nil {
				out = heartBeatEOLJSON
			}
		}
		if len(out) > 0 {
			wb.one[0] = out
			if err := s.write(wb.one[:]); err != nil {
				s.abort(err)
				return
			}
		}
		if t.closed {
			if s.hb != nil {
				s.hb.Stop()
			}
			reason := "bye"
			code := t.code
			if code == 0 {
				code = transport.CloseNormal
			}
			if t.final != nil {
				reason = t.final.Value(stomp.HdrMessage)
			}
			s.t.Close(code, reason)
			return
		}
		if s.hbEvery > 0 && len(out) > 0 {
			if s.hb == nil {
				s.hb = time.AfterFunc(s.hbEvery, s.heartBeatDue)
			} else {
				s.hb.Reset(s.hbEvery)
			}
		}
	}
}

// heartBeatEOL is the server's heart-beat; heartBeatEOLJSON the same
// escaped as JSON string content.
var (
	heartBeatEOL     = []byte{'\n'}
	heartBeatEOLJSON = []byte(`\n`)
)

// jsonWriter is implemented by transports that carry STOMP bytes inside
// JSON strings: SockJS frames every message as a["…"]. When JSONStrings
// reports true, the writer hands each batch to WriteJSON already escaped as
// string content (appendSockJSContent, html off), one message per batch,
// and escapes a MESSAGE's shared tail once per publish
// (message.encodedJSON) rather than every subscriber's transport escaping
// the whole frame again: that was a third of the server's CPU in an
// xhr-streaming fan-out. WriteJSON is called by the writer only; content is
// valid during the call.
type jsonWriter interface {
	JSONStrings() bool
	WriteJSON(deadline time.Time, content []byte) error
}

// batchSize estimates the encoded size of items: the shared MESSAGE tails
// (encoded here once, and cached for the other subscribers) plus a bound
// on the per-delivery headers.
func batchSize(items []outItem, v stomp.Version) int {
	n := 0
	for i := range items {
		if m := items[i].msg; m != nil {
			n += len(m.encoded(v)) + 64 + len(items[i].sub.id) + 2*len(items[i].sub.id)
		} else {
			n += 256 + len(items[i].frame.Body)
		}
	}
	return n
}

// deadlineWriter is implemented by transports that can bound a write with
// a deadline on their socket. The writer then builds no context (a timer and
// its allocations) per write. Only the session's writer calls WriteBy, as
// it would call Write.
type deadlineWriter interface {
	WriteBy(deadline time.Time, frames [][]byte) error
}

// write sends parts with the write deadline. In JSON mode parts is one
// piece of escaped content.
func (s *session) write(parts [][]byte) error {
	if s.json != nil {
		return s.json.WriteJSON(time.Now().Add(s.b.cfg.WriteTimeout), parts[0])
	}
	if w, ok := s.t.(deadlineWriter); ok {
		return w.WriteBy(time.Now().Add(s.b.cfg.WriteTimeout), parts)
	}
	// Not derived from s.ctx: the final ERROR is written after the session
	// was cancelled. The deadline bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.WriteTimeout)
	defer cancel()
	return s.t.Write(ctx, parts)
}

// abort ends a session whose transport failed: nothing more can be written.
// Only the writer calls it; it leaves the outbox closed with its writer
// marked as running, so no other writer ever starts.
func (s *session) abort(err error) {
	s.log.Debug("write failed", "err", err)
	if s.hb != nil {
		s.hb.Stop()
	}
	s.failed.Store(true)
	s.out.closeWith(nil, transport.CloseInternal)
	s.t.Close(transport.CloseInternal, "write failed")
	s.cancel()
}

// encode appends the wire form of one queued item.
func (s *session) encode(buf []byte, it *outItem, v stomp.Version) []byte {
	if it.frame != nil {
		return stomp.AppendFrame(buf, it.frame, v)
	}
	return append(s.encodeHead(buf, it, v), it.msg.encoded(v)...)
}

// encodeJSON appends one queued item escaped as JSON string content (see
// jsonWriter), using wb.raw as scratch: a MESSAGE's own headers are
// escaped here, its shared tail comes escaped from the message.
func (s *session) encodeJSON(buf []byte, it *outItem, v stomp.Version, wb *writeBatch) []byte {
	if it.frame != nil {
		wb.raw = stomp.AppendFrame(wb.raw[:0], it.frame, v)
		return sockjsframe.AppendContent(buf, wb.raw, false)
	}
	wb.raw = s.encodeHead(wb.raw[:0], it, v)
	buf = sockjsframe.AppendContent(buf, wb.raw, false)
	return append(buf, it.msg.encodedJSON(v)...)
}

// encodeHead appends the command and per-delivery headers of a MESSAGE:
// what differs from one subscriber to the next.
func (s *session) encodeHead(buf []byte, it *outItem, v stomp.Version) []byte {
	buf = append(buf, "MESSAGE\nsubscription:"...)
	buf = stomp.AppendEscaped(buf, it.sub.id, v)
	buf = append(buf, "\nmessage-id:"...)
	buf = append(buf, s.idStr...)
	buf = append(buf, '-')
	buf = strconv.AppendUint(buf, it.seq, 10)
	buf = append(buf, '\n')
	if v == stomp.V12 && it.sub.ack != ackAuto {
		buf = append(buf, "ack:"...)
		buf = append(buf, s.idStr...)
		buf = append(buf, '-')
		buf = strconv.AppendUint(buf, it.seq, 10)
		buf = append(buf, '\n')
	}
	return buf
}

// outItem is one queued outbound frame: a MESSAGE for a subscription, or a
// server frame.
type outItem struct {
	sub       *subscription
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

// message is one published message, shared by all its deliveries. Its wire
// form after the per-delivery headers is encoded at most once per STOMP
// version, by whichever writer needs it first, not once per subscriber.
type message struct {
	dest    string
	headers []stomp.Header
	body    []byte
	storeID int64 // id in the chat store, 0 if not stored
	enc     [3]struct {
		once sync.Once
		b    []byte
	}
	encJSON [3]struct { // encoded(v) escaped as JSON string content, for SockJS subscribers
		once sync.Once
		b    []byte
	}
}

// encodedJSON returns encoded(v) escaped as JSON string content (see
// jsonWriter), escaped once by whichever SockJS subscriber's writer needs
// it first.
func (m *message) encodedJSON(v stomp.Version) []byte {
	e := &m.encJSON[v-1]
	e.once.Do(func() { e.b = sockjsframe.AppendContent(nil, m.encoded(v), false) })
	return e.b
}

// encoded returns the shared tail of a MESSAGE frame for version v:
// destination, user headers, content-length, blank line, body, NUL.
func (m *message) encoded(v stomp.Version) []byte {
	e := &m.enc[v-1]
	e.once.Do(func() {
		b := make([]byte, 0, 64+len(m.dest)+len(m.body))
		b = stomp.AppendHeader(b, stomp.HdrDestination, m.dest, v)
		for _, h := range m.headers {
			b = stomp.AppendHeader(b, h.Key, h.Value, v)
		}
		b = append(b, "content-length:"...)
		b = strconv.AppendInt(b, int64(len(m.body)), 10)
		b = append(b, '\n', '\n')
		b = append(b, m.body...)
		e.b = append(b, 0)
	})
	return e.b
}
