package sockjs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/transport"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// sockjsSubprotocols are the STOMP WebSocket subprotocols negotiated, best
// first (STOMP 1.2 §"WebSocket" names them; stomp.js offers all three).
var sockjsSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// sockjsWSConn is one WebSocket connection as the SockJS WebSocket session
// uses it: RFC 6455 through coder/websocket, or the hixie-76 draft
// (sockjs_hixie76.go). ReadMessage is called by one goroutine; WriteMessage
// may be called concurrently and writes whole messages atomically.
type sockjsWSConn interface {
	ReadMessage(ctx context.Context) ([]byte, error)
	WriteMessage(ctx context.Context, p []byte) error
	Close(code int, reason string) error // closing handshake, bounded in time
	CloseNow() error                     // drops the connection
}

// coderWSConn adapts *websocket.Conn.
type coderWSConn struct{ c *websocket.Conn }

func (c coderWSConn) ReadMessage(ctx context.Context) ([]byte, error) {
	_, p, err := c.c.Read(ctx) // binary messages are taken as text, as sockjs-node does
	return p, err
}

func (c coderWSConn) WriteMessage(ctx context.Context, p []byte) error {
	return c.c.Write(ctx, websocket.MessageText, p)
}

func (c coderWSConn) Close(code int, reason string) error {
	code, reason = sockjsWireClose(code, reason)
	if err := c.c.Close(websocket.StatusCode(code), reason); err != nil {
		_ = c.c.CloseNow() // e.g. a code RFC 6455 forbids on the wire
		return err
	}
	return nil
}

func (c coderWSConn) CloseNow() error { return c.c.CloseNow() }

// sockjsMaxCloseReason is the longest close reason a WebSocket close frame
// carries: 125-byte control payload minus the 2-byte code (RFC 6455 §5.5).
const sockjsMaxCloseReason = 123

// sockjsWireClose maps a SockJS close code to one RFC 6455 lets us send
// (§7.4: 1000–1014 minus the reserved 1004–1006, or 3000–4999; SockJS's
// 2010 is not one) and cuts the reason to fit the close frame without
// splitting a UTF-8 sequence.
func sockjsWireClose(code int, reason string) (int, string) {
	switch {
	case code >= 3000 && code <= 4999:
	case code >= 1000 && code <= 1014 && (code < 1004 || code > 1006):
	default:
		code = transport.CloseNormal
	}
	if len(reason) > sockjsMaxCloseReason {
		cut := sockjsMaxCloseReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	return code, reason
}

// sockjsWSSession is one WebSocket session: framed (o, a, h, c frames;
// sockjs-protocol 0.3 "WebSocket protocols") or raw (/websocket: one
// WebSocket message per message, no framing). Unlike the HTTP sessions it
// lives exactly as long as its connection and is not registered by id, so
// session ids may be reused (Websocket.test_reuseSessionId).
//
// Goroutines: the request's handler goroutine runs readLoop; supervise
// writes heart-beats and performs the close; the application runs on its
// own. The server's wg counts all three.
type sockjsWSSession struct {
	srv  *Server
	conn sockjsWSConn
	raw  bool
	log  *slog.Logger

	inbox  chan []byte   // unbuffered hand-off from readLoop to Read
	closed chan struct{} // closed once the session is closed, for any reason

	mu          sync.Mutex
	isClosed    bool   // closed is closed
	closeCode   int    // 0: the client went away, nothing to send
	closeReason string // with closeCode
	closeFrame  bool   // send the SockJS c frame before the WebSocket close
	readErr     error  // what Read returns once closed
}

// serveWebSocket upgrades r and runs a WebSocket session on the handler's
// goroutine until the connection ends.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, raw bool) {
	// Proxies that rewrite Connection break the upgrade; say so clearly
	// instead of coder/websocket's 426 (WebsocketHttpErrors in the suite).
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, `Can "Upgrade" only to "WebSocket".`, http.StatusBadRequest)
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		http.Error(w, `"Connection" must be "Upgrade".`, http.StatusBadRequest)
		return
	}
	info := transport.Info{Transport: "sockjs-websocket", Remote: r.RemoteAddr}
	info.User, info.Login = s.Opts.identify(r)
	if raw {
		info.Transport = "sockjs-raw-websocket"
	}
	var conn sockjsWSConn
	if isHixie76(r) {
		hc, err := acceptHixie76(w, r, sockjsSubprotocols)
		if err != nil {
			s.log.Debug("sockjs websocket accept", "err", err, "remote", r.RemoteAddr)
			return
		}
		conn, info.Subprotocol = hc, hc.subprotocol
	} else {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols:       sockjsSubprotocols,
			InsecureSkipVerify: true, // CheckOrigin in ServeHTTP is the origin policy
		})
		if err != nil {
			s.log.Debug("sockjs websocket accept", "err", err, "remote", r.RemoteAddr)
			return
		}
		c.SetReadLimit(sockjsMaxMessageBytes)
		conn, info.Subprotocol = coderWSConn{c}, c.Subprotocol()
	}
	// From here on r.Context() is dead (hijacked): only s.ctx.

	s.mu.Lock()
	if s.closing || len(s.sessions)+int(s.wsLive.Load()) >= sockjsMaxSessions {
		s.mu.Unlock()
		_ = conn.Close(transport.CloseSockJSGoAway, sockjsframe.ReasonGoAway)
		return
	}
	s.wsLive.Add(1)
	s.wg.Add(2) // supervise and the application
	s.mu.Unlock()
	defer s.wsLive.Add(-1)

	n := s.nextID.Add(1)
	ws := &sockjsWSSession{
		srv:    s,
		conn:   conn,
		raw:    raw,
		log:    s.log.With("conn", "sockjs-"+strconv.FormatUint(n, 10), "remote", info.Remote, "transport", info.Transport),
		inbox:  make(chan []byte),
		closed: make(chan struct{}),
	}
	ws.log.Info("sockjs session opened", "subprotocol", info.Subprotocol)

	// The open frame goes out before the application can write or close.
	if !raw {
		if err := ws.write(s.ctx, sockjsframe.OpenFrame); err != nil {
			ws.log.Debug("sockjs websocket open", "err", err)
			ws.closeWith(0, "", false, io.EOF)
		}
	}
	supervised := make(chan struct{})
	go func() {
		defer s.wg.Done()
		defer close(supervised)
		ws.supervise()
	}()
	go func() {
		defer s.wg.Done()
		s.accept(ws, info)
		_ = ws.Close(transport.CloseNormal, sockjsframe.ReasonNormal)
	}()

	ws.readLoop() // returns once the connection has failed or closed
	<-supervised
	_ = conn.CloseNow()
	ws.log.Info("sockjs session ended")
}

// readLoop reads messages until the connection fails, handing each to Read.
func (ws *sockjsWSSession) readLoop() {
	for {
		p, err := ws.conn.ReadMessage(ws.srv.ctx)
		if err != nil {
			ws.log.Debug("sockjs websocket read", "err", err)
			ws.closeWith(0, "", false, io.EOF)
			return
		}
		msgs := [][]byte{p}
		if !ws.raw {
			decoded, err := sockjsframe.DecodeWebSocket(p)
			if err != nil {
				// sockjs-protocol: on broken JSON "the server must abruptly
				// terminate the ws connection" – no c frame.
				ws.log.Warn("sockjs broken framing", "err", err)
				ws.closeWith(transport.CloseProtocol, sockjsframe.ReasonBrokenFraming, false, io.EOF)
				continue // read on until the closing handshake ends
			}
			msgs = msgs[:0]
			for _, m := range decoded {
				msgs = append(msgs, []byte(m))
			}
		}
		for _, m := range msgs {
			select {
			case ws.inbox <- m:
			case <-ws.closed: // dropped: nobody will read it
			}
		}
	}
}

// supervise writes heart-beats (framed only) and carries out the close.
func (ws *sockjsWSSession) supervise() {
	var tick <-chan time.Time
	if !ws.raw {
		t := time.NewTicker(ws.srv.Opts.Heartbeat)
		defer t.Stop()
		tick = t.C
	}
	stopping := ws.srv.stopping
	for {
		select {
		case <-tick:
			if err := ws.write(ws.srv.ctx, sockjsframe.HeartbeatFrame); err != nil {
				ws.log.Debug("sockjs websocket heartbeat", "err", err)
				_ = ws.conn.CloseNow()
				return
			}
		case <-stopping:
			stopping = nil
			ws.closeWith(transport.CloseSockJSGoAway, sockjsframe.ReasonGoAway, true, transport.ErrClosed)
		case <-ws.srv.ctx.Done():
			_ = ws.conn.CloseNow()
			return
		case <-ws.closed:
			ws.mu.Lock()
			code, reason, frame := ws.closeCode, ws.closeReason, ws.closeFrame
			ws.mu.Unlock()
			if code == 0 {
				_ = ws.conn.CloseNow()
				return
			}
			if frame && !ws.raw {
				_ = ws.write(ws.srv.ctx, sockjsframe.CloseFrame(code, reason))
			}
			if err := ws.conn.Close(code, reason); err != nil {
				ws.log.Debug("sockjs websocket close", "err", err)
			}
			return
		}
	}
}

func (ws *sockjsWSSession) write(ctx context.Context, p []byte) error {
	ctx, cancel := context.WithTimeout(ctx, sockjsWriteTimeout)
	defer cancel()
	if err := ws.conn.WriteMessage(ctx, p); err != nil {
		return fmt.Errorf("write websocket: %w", err)
	}
	return nil
}

// closeWith closes the session once; code 0 means the connection is already
// gone. It reports whether this call closed it.
func (ws *sockjsWSSession) closeWith(code int, reason string, frame bool, readErr error) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.isClosed {
		return false
	}
	ws.isClosed = true
	ws.closeCode, ws.closeReason, ws.closeFrame, ws.readErr = code, reason, frame, readErr
	close(ws.closed)
	return true
}

// Read returns the next message: for the framed transport each string of
// the client's arrays, for the raw one each WebSocket message. Once closed
// it returns io.EOF (the client went away) or errTransportClosed.
func (ws *sockjsWSSession) Read(ctx context.Context) ([]byte, error) {
	select {
	case m := <-ws.inbox:
		return m, nil
	case <-ws.closed:
		ws.mu.Lock()
		defer ws.mu.Unlock()
		return nil, ws.readErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Write sends frames as one array frame a[…] (framed) or one WebSocket
// message each (raw), within sockjsWriteTimeout and ctx.
func (ws *sockjsWSSession) Write(ctx context.Context, frames [][]byte) error {
	select {
	case <-ws.closed:
		return transport.ErrClosed
	default:
	}
	if ws.raw {
		for _, f := range frames {
			if err := ws.write(ctx, f); err != nil {
				return err
			}
		}
		return nil
	}
	return ws.write(ctx, sockjsframe.AppendArray(nil, frames, false))
}

// JSONStrings reports whether the session carries STOMP bytes in JSON
// strings (see transport.JSONWriter): framed SockJS does, the raw WebSocket does not.
func (ws *sockjsWSSession) JSONStrings() bool { return !ws.raw }

// WriteJSON sends escaped content (see transport.JSONWriter) as one array frame
// a["…"], by deadline.
func (ws *sockjsWSSession) WriteJSON(deadline time.Time, content []byte) error {
	select {
	case <-ws.closed:
		return transport.ErrClosed
	default:
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return ws.write(ctx, sockjsframe.AppendArray(nil, [][]byte{content}, true))
}

// Close sends c[code,"reason"] (framed) and closes the WebSocket with code
// and reason. It does not wait for the closing handshake. Safe from any
// goroutine, more than once.
func (ws *sockjsWSSession) Close(code int, reason string) error {
	if ws.closeWith(code, reason, true, transport.ErrClosed) {
		ws.log.Info("sockjs session closed", "code", code, "reason", reason)
	}
	return nil
}

// headerHasToken reports whether the comma-separated header name holds
// token, case-insensitively (RFC 9110 §5.6.1).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// A WebSocket session takes escaped content straight from the broker's writer.
var _ transport.JSONWriter = (*sockjsWSSession)(nil)
