package main

import (
	"net/http"
	"stompbox/internal/metrics"
	"stompbox/internal/store"
)

// metrics.go: the wiring of GET /metrics (internal/metrics): the parts it
// reads, its own listener (-metrics-addr), and the main port's route,
// which only an administrator may use.

// newMetrics gives the metrics the parts they read at each scrape. Called
// once the parts exist, before the routes are built.
func (s *server) newMetrics() *metrics.Metrics {
	src := metrics.Sources{
		Broker:    s.broker,
		Limiter:   s.limiter,
		Store:     s.store,
		Files:     s.files,
		Passwords: s.auth.Gate,
		Version:   buildVersion,
	}
	for _, sj := range s.sockjs {
		src.SockJS = append(src.SockJS, sj)
	}
	if s.clog != nil { // set only here: a nil *cluster.Log in the interface would not be nil
		src.Cluster = s.clog
	}
	return metrics.New(src)
}

// startMetrics opens -metrics-addr, if set: GET /metrics there needs no
// login, so it is off by default and meant for a loopback or private
// address. Start calls it; Shutdown closes the listener first.
func (s *server) startMetrics() error {
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := metrics.Listen(s.base, s.cfg.MetricsAddr, s.metrics, s.log)
	if err != nil {
		return err
	}
	s.metricsLn = ln
	s.log.Info("metrics", "addr", ln.Addr(), "path", "/metrics")
	return nil
}

// serveMetrics is GET /metrics on the main port; routes wraps it in
// api.admin, so it needs an administrator's session or API token (401
// without a login, 403 for others), like GET /api/admin/stats.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request, _ store.User) error {
	s.metrics.ServeHTTP(w, r)
	return nil
}
