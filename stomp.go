// stomp.go is the STOMP face: where STOMP frames enter. Every transport
// hands its connections to serveSTOMP, which runs them as broker sessions:
// WebSocket at /ws (RFC 6455, subprotocols v10/v11/v12.stomp), and plain
// TCP at -stomp-addr, over TLS (stomp+ssl) when HTTPS is on. SockJS
// sessions come through sockjs.go. The codec is internal/stomp; the
// transports are internal/transport.

package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"stompbox/internal/transport"
)

// serveSTOMP runs a STOMP session over a connection a transport accepted,
// on the server's base context: a session outlives the request or accept
// that brought it. It returns when the session ends.
func (s *server) serveSTOMP(t transport.Conn, info transport.Info) {
	s.broker.Serve(s.base, t, info)
}

// wsHandler upgrades GET /ws to a WebSocket that carries STOMP.
func (s *server) wsHandler() http.Handler {
	return &transport.WSHandler{Identify: s.requestUser, Serve: s.serveSTOMP, MaxFrame: s.broker.Limits().MaxFrame, Origins: s.origins, Log: s.log}
}

// listenSTOMP opens the STOMP TCP listener when -stomp-addr is given, with
// TLS when HTTPS is on, and starts accepting.
func (s *server) listenSTOMP() error {
	if s.cfg.StompAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.StompAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.StompAddr, err)
	}
	if ln, err = s.listenStompTLS(ln); err != nil {
		return err
	}
	s.tcp = transport.ServeTCP(ln, s.serveSTOMP, s.log)
	s.log.Info("STOMP over TCP", "addr", ln.Addr().String(), "tls", s.cfg.tlsEnabled())
	return nil
}

// listenStompTLS wraps the STOMP TCP listener in TLS with the HTTPS
// certificate when TLS is on, as ActiveMQ and RabbitMQ serve stomp+ssl: a
// certificate pinned or trusted for the web UI then works for scripts
// too, and passcodes never cross the network in the clear. There is no
// ALPN name for STOMP, so none is offered. On error it closes ln.
//
// The STOMP listener sends no session tickets (issue 26). In TLS 1.3 the
// server sends its tickets after the handshake, just as the client starts
// writing; stomp.py (Python's ssl module) reads and writes one TLS socket
// from two threads at once, which OpenSSL does not support, and about one
// connect in seven lost its CONNECT while the reader thread took in the
// ticket: the server then closed it with "no CONNECT frame in time". With
// no tickets the server sends nothing until CONNECTED, and resumption buys
// nothing here: a STOMP connection lives for hours and reconnects are
// rare, unlike a browser's many short HTTPS connections, which keep them.
func (s *server) listenStompTLS(ln net.Listener) (net.Listener, error) {
	return s.tlsListener(ln, func(c *tls.Config) { c.SessionTicketsDisabled = true })
}
