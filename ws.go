package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// stompSubprotocols are the WebSocket subprotocols of STOMP, best first
// (STOMP 1.2 §"STOMP over WebSocket" as registered with IANA).
var stompSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// wsReadSlack is what a WebSocket message may carry beyond one frame: heart-beat
// EOLs and a second frame's start, since clients may batch.
const wsReadSlack = 4 << 10

// wsHandler serves STOMP over WebSocket (RFC 6455) at /ws.
type wsHandler struct {
	identify func(*http.Request) string // the account of the upgrade request (cookie), "" if none
	broker   *Broker
	origins  *originPolicy
	base     context.Context // the server's base context: sessions outlive the request
	log      *slog.Logger
}

func (h *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.origins.allowed(r) {
		writeJSONError(w, http.StatusForbidden, "origin not allowed")
		h.log.Warn("websocket origin refused", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		return
	}
	hw := &wsHijacker{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		Subprotocols:       stompSubprotocols,
		InsecureSkipVerify: true, // the origin was checked above, with our own patterns
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		h.log.Debug("websocket accept failed", "err", err, "remote", r.RemoteAddr)
		return
	}
	c.SetReadLimit(int64(h.broker.cfg.Limits.MaxFrame + wsReadSlack))
	info := connInfo{Transport: "ws", Remote: r.RemoteAddr, Subprotocol: c.Subprotocol(), User: h.identify(r)}
	// The session runs on a goroutine of its own, and ServeHTTP returns: the
	// hijacked connection needs nothing more from net/http, and returning
	// frees its connection goroutine (whose stack grew while serving the
	// upgrade), the request and its headers: several KiB per idle connection.
	// The broker owns the new goroutine: Serve ends when the client leaves or
	// Broker.Close fails the session. After Accept, r.Context() must not be
	// used: the session runs on the server's base context (golang/go#32314).
	go h.broker.Serve(h.base, &wsTransport{c: c, conn: hw.conn}, info)
}

// Buffers of a WebSocket connection. coder/websocket keeps the bufio.Reader
// and bufio.Writer that Hijack returns for the connection's whole life, and
// net/http's are 4 KiB each: 8 KiB of an idle connection's heap.
const (
	// wsReadBuffer holds a client message's header and a short SEND (a chat
	// line, an ACK, a SUBSCRIBE) whole; the rest of a longer one is read
	// past it, straight into the message (bufio reads large requests
	// directly), which costs one more read(2) on the rare big SEND.
	wsReadBuffer = 512
	// wsWriteBuffer holds the frame header and a typical MESSAGE (a chat
	// line or a 256-byte fan-out body with its headers), so one delivery is
	// one write(2). A bigger batch costs two: the buffer's worth, then the
	// rest directly, as a batch past 4 KiB already did with net/http's size.
	wsWriteBuffer = 1 << 10
)

// wsHijacker wraps the ResponseWriter handed to websocket.Accept. Its Hijack
// gives coder/websocket smaller buffers (see wsReadBuffer) and keeps the
// net.Conn, so that writes can use the socket's deadline instead of a
// context per write. Only Accept, on the handler's goroutine, calls Hijack.
type wsHijacker struct {
	http.ResponseWriter
	conn net.Conn // set by Hijack
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
	w.conn = conn
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// wsTransport adapts a WebSocket connection to transport. Each client
// message is one chunk; each Write is one message, so a burst of frames costs
// one WebSocket frame.
type wsTransport struct {
	c    *websocket.Conn
	conn net.Conn // the hijacked socket under c, for write deadlines
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

// readBy is Read bounded by a deadline on the socket (see deadlineReader);
// a zero deadline waits for ever. coder/websocket then gets a context that
// never ends, so a blocked read holds no context.AfterFunc, no Done channel
// and no entry in the session context's children: memory that every idle
// connection kept. A blocked readBy ends when the transport closes.
func (t *wsTransport) readBy(deadline time.Time) ([]byte, error) {
	t.conn.SetReadDeadline(deadline)
	return t.Read(context.Background())
}

func (t *wsTransport) Write(ctx context.Context, frames [][]byte) error {
	return t.write(ctx, frames)
}

// writeBy is Write bounded by a deadline on the socket (see deadlineWriter).
// coder/websocket then gets a context that never ends, so a write costs no
// timer, no context.AfterFunc and no allocation: these were most of the
// writer's allocations in fan-out profiles. The deadline is cleared after
// the write, so that coder/websocket's own writes (a pong, the close frame)
// never meet a stale one.
func (t *wsTransport) writeBy(deadline time.Time, frames [][]byte) error {
	t.conn.SetWriteDeadline(deadline)
	err := t.write(context.Background(), frames)
	t.conn.SetWriteDeadline(time.Time{})
	return err
}

func (t *wsTransport) write(ctx context.Context, frames [][]byte) error {
	msg := frames[0]
	if len(frames) > 1 {
		// One WebSocket message, written with one call: coder/websocket makes
		// every Writer.Write a frame of its own, which cost a quarter of the
		// server's CPU in fan-out profiles. The writer normally hands a batch
		// over as one piece already; this join is for the rare batch that
		// outgrew its first buffer.
		msg = bytes.Join(frames, nil)
	}
	typ := websocket.MessageText
	if !utf8.Valid(msg) {
		typ = websocket.MessageBinary // a body with bytes that are not UTF-8
	}
	if err := t.c.Write(ctx, typ, msg); err != nil {
		return fmt.Errorf("websocket write: %w", err)
	}
	return nil
}

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
