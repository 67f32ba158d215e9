package sockjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/transport"
	"strings"
	"time"
)

// Settings of the conformance test server (sockjs-protocol 0.3 suite).
const (
	sockjsTestResponseLimit   = 4096             // the suite: "The test server should have this limit decreased to 4096B"
	sockjsTestShutdownTimeout = 5 * time.Second  // bound on closing sessions and draining requests when ctx ends
	sockjsTestReadHeader      = 10 * time.Second // ReadHeaderTimeout: slow-header clients cannot pin connections
)

// RunTestServer serves the services the sockjs-protocol suite expects
// at addr until ctx ends:
//
//   - /echo: echoes every message;
//   - /close: closes every session at once with c[3000,"Go away!"];
//   - /disabled_websocket_echo: /echo without the WebSocket transports;
//   - /cookie_needed_echo: /echo with JSESSIONID cookies.
//
// Every service has the suite's 4096-byte streaming limit. ready, if not
// nil, is called with the bound address once it accepts connections (addr
// may use port 0).
func RunTestServer(ctx context.Context, addr string, log *slog.Logger, ready func(addr string)) error {
	appCtx, cancelApps := context.WithCancel(ctx)
	defer cancelApps()
	echo := func(t transport.Conn, _ transport.Info) {
		for {
			m, err := t.Read(appCtx)
			if err != nil {
				return
			}
			if err := t.Write(appCtx, [][]byte{m}); err != nil {
				return
			}
		}
	}
	closeAtOnce := func(t transport.Conn, _ transport.Info) {
		_ = t.Close(transport.CloseSockJSGoAway, sockjsframe.ReasonGoAway)
	}
	services := []*Server{
		New(Options{Prefix: "/echo", Websocket: true, ResponseLimit: sockjsTestResponseLimit}, log, echo),
		New(Options{Prefix: "/close", Websocket: true, ResponseLimit: sockjsTestResponseLimit}, log, closeAtOnce),
		New(Options{Prefix: "/disabled_websocket_echo", ResponseLimit: sockjsTestResponseLimit}, log, echo),
		New(Options{Prefix: "/cookie_needed_echo", Websocket: true, CookieNeeded: true, ResponseLimit: sockjsTestResponseLimit}, log, echo),
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sockjs test server: %w", err)
	}
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           sockjsPrefixes(services),
		ReadHeaderTimeout: sockjsTestReadHeader,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("sockjs test server listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		return fmt.Errorf("sockjs test server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), sockjsTestShutdownTimeout)
	defer cancel()
	var errs []error
	for _, s := range services {
		errs = append(errs, s.Close(shutdownCtx))
	}
	cancelBase()
	errs = append(errs, srv.Shutdown(shutdownCtx))
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// sockjsPrefixes dispatches to the endpoint whose prefix the path is under,
// without http.ServeMux's path cleaning (see sockjsServer.ServeHTTP).
func sockjsPrefixes(services []*Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, s := range services {
			p := s.Opts.Prefix
			if r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/") {
				s.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
}
