// sockjs.go is the SockJS face: for every -sockjs-path it builds a SockJS
// endpoint (internal/sockjs) whose sessions carry STOMP to the broker, as
// Spring's registerStompEndpoints("/ws-stomp").withSockJS() does, and
// mounts them on the HTTP router. It also runs the endpoints the SockJS
// protocol's own test suite drives ("stompbox sockjs-testserver").

package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"stompbox/internal/proto"
	"stompbox/internal/sockjs"
)

// newSockJS makes the SockJS endpoints. Each session is a broker session
// on the server's base context.
func (s *server) newSockJS() error {
	paths := s.cfg.SockJSPaths
	if paths == nil {
		paths = []string{proto.DefaultSockJSPath}
	}
	for _, p := range paths {
		s.sockjs = append(s.sockjs, sockjs.New(sockjs.Options{
			Prefix:          p,
			Websocket:       true,
			CookieNeeded:    s.cfg.SockJSCookie,
			Heartbeat:       s.cfg.SockJSHeartbeat,
			DisconnectDelay: s.cfg.SockJSDelay,
			CheckOrigin:     s.origins.Allowed,
			ClientURL:       s.static.URL("vendor/sockjs.min.js"),
			Identify:        s.requestUser,
		}, s.log, s.serveSTOMP))
	}
	return nil
}

// mountSockJS routes each endpoint's prefix, and everything under it, to it.
func (s *server) mountSockJS(mux *http.ServeMux) {
	for _, sj := range s.sockjs {
		mux.Handle(sj.Opts.Prefix, sj)
		mux.Handle(sj.Opts.Prefix+"/", sj)
	}
}

// runSockJSTestServerCommand serves the endpoints the SockJS protocol test
// suite expects (/echo, /close, …) until ctx ends.
func runSockJSTestServerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stompbox sockjs-testserver", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	return sockjs.RunTestServer(ctx, *addr, log, func(a string) { log.Info("sockjs test server listening", "addr", a) })
}

// sockjsSessions counts the sessions of every SockJS endpoint.
func (s *server) sockjsSessions() int {
	n := 0
	for _, sj := range s.sockjs {
		n += sj.Sessions()
	}
	return n
}
