package main

import (
	"encoding/json"
	"net/http"
	"stompbox/internal/apperr"
	"stompbox/internal/transport"
)

// routes is the one routing table of the HTTP server (Go 1.22 patterns).
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", &transport.WSHandler{Identify: s.requestUser, Serve: s.serveSTOMP, MaxFrame: s.broker.Limits().MaxFrame, Origins: s.origins, Log: s.log})
	for _, sj := range s.sockjs {
		mux.Handle(sj.Opts.Prefix, sj)
		mux.Handle(sj.Opts.Prefix+"/", sj)
	}
	s.api.routes(mux)
	stats := newAdminStats(s.broker, s.limiter, s.sockjs, s.store, s.auth.Gate)
	stats.clog = s.clog
	mux.Handle("GET /api/admin/stats", s.api.authed(s.api.admin(stats.serve)))
	s.pages.routes(mux) // also serves ui.StaticPrefix
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "connections": s.broker.SessionCount()})
	})
	return s.secure(mux)
}

// serveSTOMP runs a STOMP session over a connection a transport accepted,
// on the server's base context: a session outlives the request or accept
// that brought it. It returns when the session ends.
func (s *server) serveSTOMP(t transport.Conn, info transport.Info) {
	s.broker.Serve(s.base, t, info)
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeJSONError writes {"error": msg} with status (apperr.WriteJSONError).
// msg is shown to clients: never put internal details in it.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	apperr.WriteJSONError(w, status, msg)
}
