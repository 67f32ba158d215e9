package transport

import (
	"context"
	"errors"
	"time"
)

// Conn carries one client's STOMP bytes between the network and its session.
// ws.go, tcp.go and sockjs.go each adapt their connection to it, so the broker
// sees every client the same way.
//
// Ownership: the session owns the transport. Exactly one goroutine (the session's
// reader) calls Read, exactly one (the session's writer) calls Write, and Close
// may be called from any goroutine, more than once; calls after the first are
// no-ops.
type Conn interface {
	// Read blocks for the next chunk of bytes the client sent. Chunk boundaries
	// need not match frame boundaries: a chunk may hold part of a frame, one
	// frame, several frames or heart-beat EOLs. When ctx ends, Read returns
	// ctx's error and the transport may be unusable afterwards (the session
	// then closes it). io.EOF means the client went away cleanly.
	Read(ctx context.Context) ([]byte, error)

	// Write sends encoded frames (or heart-beat EOLs) in order. An element
	// holds one frame or several back to back (the session's writer hands a
	// batch over as one piece when it can). A transport may coalesce elements
	// into one network write or one SockJS array frame, but it never splits
	// one element across messages. Write must honour ctx's
	// deadline. The slices are only valid during the call.
	Write(ctx context.Context, frames [][]byte) error

	// Close ends the connection. code and reason are a WebSocket/SockJS close
	// code and text, used where the transport has such a thing. It is safe
	// from any goroutine, more than once.
	Close(code int, reason string) error
}

// HardCloser is implemented by transports whose Close may wait on the
// client (a WebSocket closing handshake, a close frame behind a write the
// client does not read): CloseNow drops the connection at once, from any
// goroutine. Broker.Close uses it on the sessions still running when its
// grace period ends.
type HardCloser interface {
	CloseNow()
}

// Info describes a connection to the broker when it is handed over.
type Info struct {
	Transport   string // "ws", "tcp", "sockjs-xhr-streaming", … for logs and metrics
	Remote      string // client address as host:port
	Subprotocol string // the WebSocket subprotocol agreed ("v12.stomp"), "" if none
	User        string // a user already authenticated by the HTTP layer (cookie), "" if none
	Login       string // the key of the credential User came with (session cookie or bearer token), "" if none
}

// Close codes shared by the WebSocket and SockJS transports (RFC 6455 §7.4.1,
// SockJS protocol).
const (
	CloseNormal       = 1000 // RFC 6455: normal closure
	CloseGoingAway    = 1001 // RFC 6455: server shutting down
	CloseProtocol     = 1002 // RFC 6455: protocol error
	ClosePolicy       = 1008 // RFC 6455: policy violation (slow consumer, limits)
	closeTooBig       = 1009 // RFC 6455: message too big
	CloseInternal     = 1011 // RFC 6455: unexpected server condition
	CloseSockJSGoAway = 3000 // SockJS: "Go away!"
)

// ErrClosed is returned by Read and Write after Close.
var ErrClosed = errors.New("transport closed")

// Optional methods a Conn may have. The broker's session looks for them
// with a type assertion, so an implementation in another package must spell
// them exactly; each implementation asserts its interface at compile time.

// DeadlineReader is implemented by transports that bound a read with a
// deadline on their socket instead of a context, so that a connection
// blocked in a read holds no context machinery (see wsTransport.ReadBy).
// ReadBy does not watch any context: it returns when data comes, the
// deadline passes (an error matching os.ErrDeadlineExceeded; a zero
// deadline never passes) or the transport is closed. Only the session's
// reader calls it, as it would call Read.
type DeadlineReader interface {
	ReadBy(deadline time.Time) ([]byte, error)
}

// DeadlineWriter is implemented by transports that can bound a write with
// a deadline on their socket. The writer then builds no context (a timer and
// its allocations) per write. Only the session's writer calls WriteBy, as
// it would call Write.
type DeadlineWriter interface {
	WriteBy(deadline time.Time, frames [][]byte) error
}

// JSONWriter is implemented by transports that carry STOMP bytes inside
// JSON strings: SockJS frames every message as a["…"]. When JSONStrings
// reports true, the writer hands each batch to WriteJSON already escaped as
// string content (sockjsframe.AppendContent, html off), one message per batch,
// and escapes a MESSAGE's shared tail once per publish
// (message.encodedJSON) rather than every subscriber's transport escaping
// the whole frame again: that was a third of the server's CPU in an
// xhr-streaming fan-out. WriteJSON is called by the writer only; content is
// valid during the call.
type JSONWriter interface {
	JSONStrings() bool
	WriteJSON(deadline time.Time, content []byte) error
}
