package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"stompbox/internal/apperr"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Subprotocols are the WebSocket subprotocols of STOMP, best first
// (STOMP 1.2 §"STOMP over WebSocket" as registered with IANA).
var Subprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// wsReadSlack is what a WebSocket message may carry beyond one frame: heart-beat
// EOLs and a second frame's start, since clients may batch.
const wsReadSlack = 4 << 10

// WSHandler serves STOMP over WebSocket (RFC 6455) at /ws.
type WSHandler struct {
	Identify func(*http.Request) (user, login string) // the account of the upgrade request (cookie) and its credential's key, "" if none
	// serve runs a STOMP session over an accepted connection until it ends,
	// and closes the connection (the broker's Serve, on the server's base
	// context: sessions outlive the request). It is called on a goroutine
	// of its own, one per connection.
	Serve    func(Conn, Info)
	MaxFrame int // the largest STOMP frame accepted, in bytes: a client message may carry this plus wsReadSlack
	Origins  *OriginPolicy
	Log      *slog.Logger
}

func (h *WSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Origins.Allowed(r) {
		apperr.WriteJSONError(w, http.StatusForbidden, "origin not allowed")
		h.Log.Warn("websocket origin refused", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		return
	}
	hw := &wsHijacker{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		Subprotocols:       Subprotocols,
		InsecureSkipVerify: true, // the origin was checked above, with our own patterns
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		h.Log.Debug("websocket accept failed", "err", err, "remote", r.RemoteAddr)
		return
	}
	c.SetReadLimit(int64(h.MaxFrame + wsReadSlack))
	info := Info{Transport: "ws", Remote: r.RemoteAddr, Subprotocol: c.Subprotocol()}
	info.User, info.Login = h.Identify(r)
	// The session runs on a goroutine of its own, and ServeHTTP returns: the
	// hijacked connection needs nothing more from net/http, and returning
	// frees its connection goroutine (whose stack grew while serving the
	// upgrade), the request and its headers: several KiB per idle connection.
	// serve owns the new goroutine: the broker's Serve ends when the client
	// leaves or Broker.Close fails the session. After Accept, r.Context()
	// must not be used: the session runs on the server's base context
	// (golang/go#32314).
	go h.Serve(&wsTransport{c: c, conn: hw.conn}, info)
}

// Buffers of a WebSocket connection. coder/websocket keeps the bufio.Reader
// and bufio.Writer that Hijack returns for the connection's whole life, and
// net/http's are 4 KiB each: 8 KiB of an idle connection's heap.
const (
	// wsReadBuffer holds a client frame's header (at most 14 bytes, RFC
	// 6455 §5.2) and the small messages an idle client sends (a heart-beat
	// EOL, an ACK) whole. The payload of a longer message, a chat line
	// included, is read past it, straight into the message (bufio reads
	// large requests directly): one more read(2) per such message, against
	// 448 bytes more on every idle connection. The buffer is held for the
	// connection's life, and most connections mostly wait.
	wsReadBuffer = 64
	// wsWriteBuffer is coder/websocket's write buffer, which carries only
	// its control frames (data messages go out through wsConn.writeMessage):
	// a close or pong frame is at most 127 bytes (RFC 6455 §5.5), so each
	// fits whole and reaches wsConn.Write in one call, as wsConn requires.
	wsWriteBuffer = 128
)

// wsHijacker wraps the ResponseWriter handed to websocket.Accept. Its Hijack
// gives coder/websocket smaller buffers (see wsReadBuffer) and puts a wsConn
// under them, through which wsTransport writes its data messages. Only
// Accept, on the handler's goroutine, calls Hijack.
type wsHijacker struct {
	http.ResponseWriter
	conn *WSConn // set by Hijack
}

func (w *wsHijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil { // normally empty: net/http flushed the 101 response
		conn.Close()
		return nil, nil, fmt.Errorf("flush upgrade response: %w", err)
	}
	// Bytes the client sent right behind its upgrade request (its first
	// frames) sit in net/http's reader: move them into ours, where Accept
	// expects them (it peeks what is buffered).
	n := brw.Reader.Buffered()
	var br *bufio.Reader
	if n == 0 {
		br = bufio.NewReaderSize(conn, wsReadBuffer)
	} else {
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(early), conn), max(wsReadBuffer, n))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("carry over early bytes: %w", err)
		}
	}
	w.conn = &WSConn{Conn: conn}
	_, w.conn.tcp = conn.(*net.TCPConn)
	return w.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.conn, wsWriteBuffer)), nil
}

// WSConn is the hijacked socket under a WebSocket connection. Two writers
// share it: coder/websocket writes its control frames (pong, close) through
// its bufio.Writer into Write, and wsTransport writes data messages with
// writeMessage, header and payload in one write(2). mu makes each of them
// one unbroken write, so frames never interleave on the wire. A control
// frame is at most 127 bytes (RFC 6455 §5.5) and coder/websocket flushes
// after each, so it reaches Write whole, in one call.
//
// Why not coder/websocket's Conn.Write: it writes the header and the payload
// into the 1 KiB bufio.Writer, and a batch past that size left it in two
// write(2) calls, two TCP segments and two wake-ups of the reader; at a paced
// fan-out rate that was half of the server's CPU.
type WSConn struct {
	net.Conn
	tcp bool // Conn is a *net.TCPConn: header and payload go out with one writev

	mu        sync.Mutex
	closeSent bool  // a close frame went out: no data frame may follow (RFC 6455 §5.5.1)
	broken    error // a write failed, perhaps halfway through a frame: nothing more may be written
	deadline  int64 // the write deadline last set on Conn, in Unix nanoseconds (8 bytes, not a time.Time's 24, on every idle connection)
}

// wsVector is the writev vector of one data message. It is pooled rather
// than kept in every wsConn: net.Buffers must live on the heap, and 72
// bytes on each of 10,000 idle connections showed in their RSS.
type wsVector struct {
	hdr  [10]byte // the frame header's bytes
	bufs [2][]byte
	vec  net.Buffers
}

// wsVectors holds wsVector values between writes: scratch, not state.
var wsVectors = sync.Pool{New: func() any { return new(wsVector) }}

// wsDeadlineSlack is how much sooner than asked a write deadline may end.
// A deadline is moved only when it falls short by more than this: a busy
// connection then updates its socket timer about once a second instead of
// twice per write, and every write still has at least the write timeout
// less a second.
const wsDeadlineSlack = time.Second

// wsControlWriteTimeout bounds coder/websocket's control frame writes, as its
// own 5-second context for them does.
const wsControlWriteTimeout = 5 * time.Second

// wsWriteTimeout bounds a Write whose context has no deadline: the broker's
// default write timeout (its session writer passes its own, by WriteBy).
const wsWriteTimeout = 5 * time.Second

// Write takes a control frame from coder/websocket.
func (c *WSConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		// Refused at once: coder/websocket's Close then skips its handshake,
		// which would wait for an answer that a stuck reader never sends.
		return 0, c.broken
	}
	c.extendDeadline(time.Now().Add(wsControlWriteTimeout))
	if len(p) > 0 && p[0]&0x0f == WSOpClose {
		c.closeSent = true
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.broken = err
	}
	return n, err
}

// WriteMessage writes one unfragmented data frame (RFC 6455 §5.2; a server's
// frames are not masked) by deadline.
func (c *WSConn) WriteMessage(deadline time.Time, opcode byte, payload []byte) error {
	v := wsVectors.Get().(*wsVector)
	defer wsVectors.Put(v)
	h := AppendWSHeader(v.hdr[:0], opcode, len(payload))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	if c.closeSent {
		return ErrClosed
	}
	c.extendDeadline(deadline)
	var err error
	if c.tcp {
		v.bufs = [2][]byte{h, payload}
		v.vec = v.bufs[:]
		_, err = v.vec.WriteTo(c.Conn)
		v.bufs, v.vec = [2][]byte{}, nil
	} else {
		// A TLS connection would make each piece a record of its own.
		b := make([]byte, 0, len(h)+len(payload))
		_, err = c.Conn.Write(append(append(b, h...), payload...))
	}
	if err != nil {
		c.broken = err
	}
	return err
}

// extendDeadline moves the write deadline to d unless the one set is at most
// wsDeadlineSlack earlier. Called with mu held.
func (c *WSConn) extendDeadline(d time.Time) {
	if n := d.UnixNano(); n-c.deadline > int64(wsDeadlineSlack) {
		c.Conn.SetWriteDeadline(d)
		c.deadline = n
	}
}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	WSOpText   = 0x1
	wsOpBinary = 0x2
	WSOpClose  = 0x8
)

// AppendWSHeader appends the header of a final, unmasked frame with n bytes
// of payload (RFC 6455 §5.2: 7-bit, 16-bit or 64-bit length).
func AppendWSHeader(b []byte, opcode byte, n int) []byte {
	b = append(b, 0x80|opcode) // FIN
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// wsTransport adapts a WebSocket connection to transport. Each client
// message is one chunk; each Write is one message, so a burst of frames costs
// one WebSocket frame.
type wsTransport struct {
	c    *websocket.Conn
	conn *WSConn // the hijacked socket under c, for deadlines and data messages
}

func (t *wsTransport) Read(ctx context.Context) ([]byte, error) {
	_, data, err := t.c.Read(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch websocket.CloseStatus(err) {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
			return nil, io.EOF
		}
		return nil, fmt.Errorf("websocket read: %w", err)
	}
	return data, nil
}

// ReadBy is Read bounded by a deadline on the socket (the broker's
// DeadlineReader); a zero deadline waits for ever. coder/websocket then gets a context that
// never ends, so a blocked read holds no context.AfterFunc, no Done channel
// and no entry in the session context's children: memory that every idle
// connection kept. A blocked ReadBy ends when the transport closes.
func (t *wsTransport) ReadBy(deadline time.Time) ([]byte, error) {
	t.conn.SetReadDeadline(deadline)
	return t.Read(context.Background())
}

// Write sends frames as one message by ctx's deadline (or the default write
// timeout when it has none).
func (t *wsTransport) Write(ctx context.Context, frames [][]byte) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(wsWriteTimeout)
	}
	return t.WriteBy(deadline, frames)
}

// WriteBy writes frames as one WebSocket message, bounded by a deadline on
// the socket (the broker's DeadlineWriter): no context, timer or allocation
// per write.
func (t *wsTransport) WriteBy(deadline time.Time, frames [][]byte) error {
	msg := frames[0]
	if len(frames) > 1 {
		// The session writer hands a batch over as one piece; a caller with
		// several still gets one message.
		msg = bytes.Join(frames, nil)
	}
	var opcode byte = WSOpText
	if !utf8.Valid(msg) {
		opcode = wsOpBinary // a body with bytes that are not UTF-8
	}
	if err := t.conn.WriteMessage(deadline, opcode, msg); err != nil {
		return fmt.Errorf("websocket write: %w", err)
	}
	return nil
}

// CloseNow closes the socket under the WebSocket connection: a read or a
// write blocked on it fails at once, and coder/websocket then finds its
// connection closed (see hardCloser).
func (t *wsTransport) CloseNow() { t.conn.Close() }

func (t *wsTransport) Close(code int, reason string) error {
	if len(reason) > 120 {
		reason = reason[:120] // RFC 6455 §5.5: control frame payloads are at most 125 bytes
	}
	err := t.c.Close(websocket.StatusCode(code), reason)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.c.CloseNow()
	}
	return nil
}

// The WebSocket transport bounds reads and writes by socket deadlines.
var (
	_ DeadlineReader = (*wsTransport)(nil)
	_ DeadlineWriter = (*wsTransport)(nil)
)
