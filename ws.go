package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
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
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
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
	go h.broker.Serve(h.base, &wsTransport{c: c}, info)
}

// wsTransport adapts a WebSocket connection to transport. Each client
// message is one chunk; each Write is one message, so a burst of frames costs
// one WebSocket frame.
type wsTransport struct {
	c   *websocket.Conn
	buf []byte // joins a batch of frames into one message; only Write uses it
}

// wsKeepBuffer is the largest batch buffer a connection keeps between writes.
const wsKeepBuffer = 64 << 10

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

func (t *wsTransport) Write(ctx context.Context, frames [][]byte) error {
	msg := frames[0]
	if len(frames) > 1 {
		// One WebSocket message, written with one call: coder/websocket makes
		// every Writer.Write a frame of its own, which cost a quarter of the
		// server's CPU in fan-out profiles.
		n := 0
		for _, f := range frames {
			n += len(f)
		}
		t.buf = slices.Grow(t.buf[:0], n)
		for _, f := range frames {
			t.buf = append(t.buf, f...)
		}
		msg = t.buf
	}
	typ := websocket.MessageText
	if !utf8.Valid(msg) {
		typ = websocket.MessageBinary // a body with bytes that are not UTF-8
	}
	err := t.c.Write(ctx, typ, msg)
	if cap(t.buf) > wsKeepBuffer {
		t.buf = nil // don't keep a burst's buffer on an idle connection
	}
	if err != nil {
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
