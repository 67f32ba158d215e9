package sockjs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/transport"
	"strconv"
	"sync"
	"time"
)

// errSockJSSlowConsumer is returned by Write when the outbound queue would
// pass sockjsMaxQueueBytes; the session is closed.
var errSockJSSlowConsumer = errors.New("sockjs: slow consumer")

// sockjsQueueOverhead is what each queued message costs beyond its bytes (two
// quotes and a comma in the array frame), so a flood of empty messages is
// bounded too.
const sockjsQueueOverhead = 3

// sockjsSession is one session of the HTTP transports, shared by the
// successive requests of one client. It implements transport for the
// application.
//
// Outbound: Write appends to queue and never blocks; the one attached
// receiver (a polling or streaming request) takes the whole queue and sends
// it as one array frame. Taken messages are written before the receiver
// returns, so nothing is lost or reordered across polls.
//
// Inbound: send requests hand each message to Read through the unbuffered
// inbox, then a barrier, so a send request completes only once the
// application has consumed its messages and come back for more. That gives
// back-pressure and makes "send, then poll" see the application's reply.
//
// Lifetime: created by its first receiving request; while no receiver is
// attached a timer runs for DisconnectDelay, after which the session is
// reaped (Read returns io.EOF). A closed session lingers until then, giving
// its close frame to every request.
type sockjsSession struct {
	srv   *Server
	id    string       // SockJS session id, the key in srv.sessions
	log   *slog.Logger // with conn, remote and transport
	inbox chan sockjsInbound
	// sender admits one send request at a time (capacity 1). The others wait
	// for it before reading their bodies, so a session whose application is
	// held back (a SEND over its rate) keeps at most one body in memory
	// however many send requests a client opens.
	sender chan struct{}

	closed chan struct{} // closed once the session is closed; wakes Read and send requests

	mu sync.Mutex
	// Outbound messages not yet taken by a receiver, in order, as the array
	// frame they will go out in, still open: a["m1","m2" (escaped by
	// appendSockJSContent). Messages are escaped straight into it, and take
	// hands it over whole, so a batch is not copied between the writer and
	// the response. spare is the previous one, given back by the receiver.
	queue      []byte
	queued     int             // messages in queue
	queueBytes int             // sum of len+sockjsQueueOverhead over the queued messages
	spare      []byte          // an empty buffer for the next queue; nil while the receiver holds it
	wake       chan struct{}   // capacity 1: kicks the attached receiver after a change
	recv       *sockjsReceiver // the attached receiver, nil when none
	closeFrame []byte          // c[code,"reason"] once closed
	readErr    error           // what Read returns once closed
	reaped     bool            // removed from srv.sessions; nothing may re-arm the timer
	timer      *time.Timer     // disconnect timer, non-nil while armed
	timerGen   uint64          // tells a stale timer callback from the armed one
}

// sockjsInbound is one item of the inbox: a message, or a barrier that Read
// swallows (see sockjsSession).
type sockjsInbound struct {
	data    []byte
	barrier bool
}

// sockjsReceiver is one request attached to a session to receive frames.
type sockjsReceiver struct {
	ctx context.Context // the request's context: done when the client goes away
}

// attachResult says what a new receiver may do.
type attachResult int

const (
	attachOK     attachResult = iota // attached: deliver frames
	attachBusy                       // another receiver is attached: answer 2010
	attachClosed                     // the session is closed: answer its close frame
	attachGone                       // the session was reaped meanwhile: look it up again
)

func newSockJSSession(srv *Server, id string, log *slog.Logger) *sockjsSession {
	return &sockjsSession{
		srv:    srv,
		id:     id,
		log:    log,
		inbox:  make(chan sockjsInbound),
		sender: make(chan struct{}, 1),
		closed: make(chan struct{}),
		wake:   make(chan struct{}, 1),
	}
}

// session returns the session with id. If there is none and rcv is not nil,
// it creates one with rcv already attached, so the creating request sends
// the open frame before anything the application does, then starts the
// application on it. It returns nil, false, nil for an unknown id and a nil
// rcv.
func (s *Server) session(id string, rcv *sockjsReceiver, info transport.Info) (*sockjsSession, bool, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, false, errSockJSShuttingDown
	}
	if sess := s.sessions[id]; sess != nil || rcv == nil {
		s.mu.Unlock()
		return sess, false, nil
	}
	if len(s.sessions)+int(s.wsLive.Load()) >= sockjsMaxSessions {
		s.mu.Unlock()
		return nil, false, errSockJSTooManySessions
	}
	n := s.nextID.Add(1)
	log := s.log.With("conn", "sockjs-"+strconv.FormatUint(n, 10), "remote", info.Remote, "transport", info.Transport)
	sess := newSockJSSession(s, id, log)
	sess.recv = rcv // not yet shared: no lock needed
	s.sessions[id] = sess
	s.wg.Add(1) // the application goroutine below
	s.mu.Unlock()

	log.Info("sockjs session opened")
	go func() {
		defer s.wg.Done()
		s.accept(sess, info)
		// The application returned: end the session if it did not.
		_ = sess.Close(transport.CloseNormal, sockjsframe.ReasonNormal)
	}()
	return sess, true, nil
}

// errSockJSTooManySessions refuses a new session past sockjsMaxSessions.
var errSockJSTooManySessions = errors.New("sockjs: too many sessions")

// removeSession forgets sess if it is still the session registered under
// its id.
func (s *Server) removeSession(sess *sockjsSession) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	s.mu.Unlock()
}

// attach makes rcv the session's receiver if it can be. With attachClosed
// it returns the close frame; with attachBusy the Done channel of the
// receiver in the way.
func (s *sockjsSession) attach(rcv *sockjsReceiver) (res attachResult, closeFrame []byte, busy <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reaped {
		return attachGone, nil, nil
	}
	if s.recv != nil {
		if s.recv.ctx.Err() == nil {
			return attachBusy, nil, s.recv.ctx.Done()
		}
		// The attached receiver's client is gone; its goroutine has not
		// noticed yet. Settle it now, as it would.
		s.interruptLocked()
	}
	if s.closeFrame != nil && s.queued == 0 {
		return attachClosed, s.closeFrame, nil
	}
	s.recv = rcv
	s.disarmLocked()
	return attachOK, nil, nil
}

// detach ends rcv's attachment after a normal end of its response.
func (s *sockjsSession) detach(rcv *sockjsReceiver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recv == rcv {
		s.recv = nil
		s.armLocked()
	}
}

// interrupt closes the session because rcv's client vanished while attached
// (sockjs-protocol 0.3, HandlingClose.test_abort_*): messages may have been
// lost, so the session cannot go on.
func (s *sockjsSession) interrupt(rcv *sockjsReceiver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recv == rcv {
		s.interruptLocked()
	}
}

// fail closes the session like interrupt after a receiver failed to write
// frames it had taken: whoever is attached now gets the close frame.
func (s *sockjsSession) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Debug("sockjs frames lost", "err", err)
	if s.recv == nil {
		s.interruptLocked()
		return
	}
	s.dropQueueLocked()
	if s.closeLocked(transport.CloseProtocol, sockjsframe.ReasonInterrupted, io.EOF) {
		s.log.Info("sockjs session interrupted")
	}
}

func (s *sockjsSession) interruptLocked() {
	s.recv = nil
	s.dropQueueLocked()
	if s.closeLocked(transport.CloseProtocol, sockjsframe.ReasonInterrupted, io.EOF) {
		s.log.Info("sockjs session interrupted")
	}
	s.armLocked()
}

// take returns, for the attached receiver, every queued message as one
// array frame a[…], or if none the close frame (nil while open). The
// receiver owns the array frame (it may append its envelope) until it gives
// it back with recycle.
func (s *sockjsSession) take() (array, closeFrame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queued > 0 {
		array = append(s.queue, ']')
		s.queue, s.queued, s.queueBytes = s.spare[:0], 0, 0
		s.spare = nil
		return array, nil
	}
	return nil, s.closeFrame
}

// recycle gives back an array frame from take, to hold the next queue.
func (s *sockjsSession) recycle(array []byte) {
	if cap(array) > sockjsKeepQueue {
		return // a burst's buffer is left to the collector
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spare == nil {
		s.spare = array[:0]
	}
}

// sockjsKeepQueue is the largest queue buffer a session keeps for reuse.
const sockjsKeepQueue = 64 << 10

// dropQueueLocked discards the queued messages.
func (s *sockjsSession) dropQueueLocked() {
	s.queue, s.queued, s.queueBytes = s.queue[:0], 0, 0
}

// appendQueueLocked starts the next queued message: a[" or ,", and counts
// it; the caller appends the escaped content and the closing quote.
func (s *sockjsSession) appendQueueLocked() {
	if s.queued == 0 {
		s.queue = append(s.queue[:0], 'a', '[', '"')
	} else {
		s.queue = append(s.queue, ',', '"')
	}
	s.queued++
}

// kickLocked wakes the attached receiver without blocking.
func (s *sockjsSession) kickLocked() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// closeLocked closes the session with c[code,"reason"]; Read will return
// readErr. It reports whether this call closed it.
func (s *sockjsSession) closeLocked(code int, reason string, readErr error) bool {
	if s.closeFrame != nil {
		return false
	}
	s.closeFrame = sockjsframe.CloseFrame(code, reason)
	s.readErr = readErr
	close(s.closed)
	s.kickLocked()
	return true
}

// armLocked starts the disconnect timer unless a receiver is attached, it
// is armed, or the session is reaped. The timer callback is an owned
// goroutine: counted in srv.wg until it runs or is stopped.
func (s *sockjsSession) armLocked() {
	if s.recv != nil || s.timer != nil || s.reaped || !s.srv.track() {
		return
	}
	s.timerGen++
	gen := s.timerGen
	s.timer = time.AfterFunc(s.srv.Opts.DisconnectDelay, func() {
		defer s.srv.wg.Done()
		s.expire(gen)
	})
}

func (s *sockjsSession) disarmLocked() {
	if s.timer == nil {
		return
	}
	if s.timer.Stop() {
		s.srv.wg.Done() // the callback will never run
	}
	s.timer = nil
	s.timerGen++ // a callback already running must not reap
}

// expire reaps the session when the disconnect timer fires with no
// receiver attached: the client went away (or took its close frame).
func (s *sockjsSession) expire(gen uint64) {
	s.mu.Lock()
	if gen != s.timerGen || s.recv != nil || s.reaped {
		s.mu.Unlock()
		return
	}
	s.timer = nil
	s.reaped = true
	s.closeLocked(transport.CloseSockJSGoAway, sockjsframe.ReasonGoAway, io.EOF)
	s.mu.Unlock()
	s.srv.removeSession(s)
	s.log.Info("sockjs session ended")
}

// goAway closes the session for server shutdown with c[3000,"Go away!"]
// (delivered if a receiver is attached) and reaps it at once.
func (s *sockjsSession) goAway() {
	s.mu.Lock()
	s.closeLocked(transport.CloseSockJSGoAway, sockjsframe.ReasonGoAway, transport.ErrClosed)
	s.disarmLocked()
	s.reaped = true
	s.mu.Unlock()
	s.srv.removeSession(s)
}

// acquireSender waits for the session's one send slot (see sender). It
// returns a release function, or nil when ctx ends first. A closed session
// needs no slot: deliver answers at once.
func (s *sockjsSession) acquireSender(ctx context.Context) (release func()) {
	select {
	case s.sender <- struct{}{}:
		return func() { <-s.sender }
	case <-s.closed:
		return func() {}
	case <-ctx.Done():
		return nil
	}
}

// deliver hands msgs to the application in order, then waits until it comes
// back to Read. It returns errTransportClosed if the session closes first.
// Since the application reads on only once it has acted on what it read,
// a send request is answered only once its frames have been admitted: an
// application that holds back (a SEND over its rate) holds the request.
func (s *sockjsSession) deliver(ctx context.Context, msgs []string) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs {
		if err := s.handOff(ctx, sockjsInbound{data: []byte(m)}); err != nil {
			return err
		}
	}
	return s.handOff(ctx, sockjsInbound{barrier: true})
}

func (s *sockjsSession) handOff(ctx context.Context, in sockjsInbound) error {
	select {
	case s.inbox <- in:
		return nil
	case <-s.closed:
		return transport.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Read returns the next message the client sent. Once the session is closed
// it returns io.EOF (the client went away or timed out) or
// errTransportClosed (Close was called, or the server is shutting down).
func (s *sockjsSession) Read(ctx context.Context) ([]byte, error) {
	for {
		select {
		case in := <-s.inbox:
			if in.barrier {
				continue
			}
			return in.data, nil
		case <-s.closed:
			s.mu.Lock()
			err := s.readErr
			s.mu.Unlock()
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Write queues frames, one SockJS message each, for the next receiver. It
// never blocks. Past sockjsMaxQueueBytes the session is closed with
// c[1008,"Slow consumer"] and errSockJSSlowConsumer is returned.
func (s *sockjsSession) Write(ctx context.Context, frames [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.enqueue(frames, true)
}

// JSONStrings reports that the session carries STOMP bytes in JSON strings
// (see transport.JSONWriter).
func (s *sockjsSession) JSONStrings() bool { return true }

// WriteJSON queues one message given as escaped content (see transport.JSONWriter).
// It never blocks, so the deadline has nothing to bound.
func (s *sockjsSession) WriteJSON(_ time.Time, content []byte) error {
	return s.enqueue([][]byte{content}, false)
}

// enqueue adds messages to the queue, escaping them unless they come
// escaped, and wakes the receiver. The slow-consumer bound counts each
// message as it is handed in (raw from Write, escaped from WriteJSON): a
// bound on memory, not an exact count of what the client will receive.
func (s *sockjsSession) enqueue(msgs [][]byte, escape bool) error {
	n := 0
	for _, m := range msgs {
		n += len(m) + sockjsQueueOverhead
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeFrame != nil {
		return transport.ErrClosed
	}
	if s.queueBytes+n > sockjsMaxQueueBytes {
		s.log.Warn("sockjs slow consumer", "queued_bytes", s.queueBytes, "write_bytes", n)
		s.dropQueueLocked()
		s.closeLocked(transport.ClosePolicy, sockjsframe.ReasonSlowConsumer, transport.ErrClosed)
		return errSockJSSlowConsumer
	}
	for _, m := range msgs {
		s.appendQueueLocked()
		if escape {
			s.queue = sockjsframe.AppendContent(s.queue, m, false)
		} else {
			s.queue = append(s.queue, m...)
		}
		s.queue = append(s.queue, '"')
	}
	s.queueBytes += n
	s.kickLocked()
	return nil
}

// Close closes the session with c[code,"reason"]. Messages already queued
// are delivered first. The session lingers for DisconnectDelay so later
// requests get the close frame. Safe from any goroutine, more than once.
func (s *sockjsSession) Close(code int, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeLocked(code, reason, transport.ErrClosed) {
		s.log.Info("sockjs session closed", "code", code, "reason", reason)
	}
	return nil
}

// A session takes escaped content straight from the broker's writer.
var _ transport.JSONWriter = (*sockjsSession)(nil)
