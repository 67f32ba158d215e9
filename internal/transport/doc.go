// Package transport owns how a client's STOMP bytes reach a broker
// session: the Conn interface every connection type adapts to, its
// optional interfaces (HardCloser, DeadlineReader, DeadlineWriter,
// JSONWriter), the description of a connection (Info), the close codes,
// and two transports: STOMP over WebSocket (WSHandler, at /ws, with the
// v10/v11/v12.stomp subprotocols) and over TCP or TLS (TCPServer). It also
// owns the Origin allow-list of browser connections (OriginPolicy) and the
// per-address limit on HTTP connections (LimitListener, counting with any
// ConnCounter: main gives it a ratelimit.Limiter of its own).
//
// What it promises:
//   - A Conn has exactly one reader and one writer (the session's); Close
//     may be called from any goroutine, more than once.
//   - A Write never splits an element across messages, and honours its
//     deadline.
//   - The WebSocket handler checks the origin before the upgrade, and
//     never uses the request's context after it: the session runs on the
//     server's base context, and ServeHTTP returns at once.
//   - TCPServer.Close waits for every connection's session to end. A
//     client speaking plain text to the TLS port is told so in an ERROR
//     frame.
//
// Interfaces it owns, which other packages implement: Conn and its
// optional interfaces, implemented by this package's WebSocket and TCP
// conns and by the SockJS sessions (internal/sockjs). The broker's
// sessions use them, looking for the optional ones with a type assertion.
//
// Of stompbox it imports only internal/apperr and internal/stomp (for the
// plain-text-on-TLS ERROR frame). It never imports the broker: a transport
// hands each connection to a func(Conn, Info), which main points at the
// broker's Serve (layout_test.go).
package transport
