package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// listener.go: the -metrics-addr listener, which serves GET /metrics and
// nothing else, apart from the public port.

// Timeouts of the metrics listener. A scrape is one small request that
// Prometheus itself bounds (scrape_timeout, 10 s by default).
const (
	readHeaderTimeout = 10 * time.Second // slowloris guard, as on the main port
	writeTimeout      = 30 * time.Second // a scrape is some 30 KiB; a reader slower than this is gone
	idleTimeout       = 2 * time.Minute  // keep-alive between scrapes (15 s to 1 min apart)
)

// Listener serves h at GET /metrics on its own address, without
// authentication, as Prometheus exporters do: it is meant for a loopback
// or private address (-metrics-addr 127.0.0.1:9090). Its owner closes it.
type Listener struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when Serve has returned
}

// Listen listens on addr and serves h at GET /metrics until Close.
// Requests' contexts derive from base, so that ending it ends a scrape's
// cluster query.
func Listen(base context.Context, addr string, h http.Handler, log *slog.Logger) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	l := &Listener{
		ln: ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			BaseContext:       func(net.Listener) context.Context { return base },
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics serve", "err", err)
		}
	}()
	return l, nil
}

// Addr is the address the listener got (useful with port 0).
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Close stops accepting, waits for the scrapes in progress until ctx ends,
// and then for the serving goroutine.
func (l *Listener) Close(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	if err != nil {
		l.srv.Close() // ctx ended: drop the scrapes still running
	}
	<-l.done
	if err != nil {
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}
