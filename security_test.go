package main

import (
	"net/http"
	"stompbox/internal/stomp"
	"stompbox/internal/web"
	"strings"
	"testing"
)

// TestSecurityHeaders checks the headers every response gets, and that the
// pages keep their own CSP (stricter, with the embed page's ancestors).
func TestSecurityHeaders(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.EmbedOrigins = []string{"https://intranet.example"} })
	base := "http://" + srv.HTTPAddr()
	tests := []struct {
		name    string
		path    string
		wantCSP string // substring of the Content-Security-Policy; "" means none at all
	}{
		{"json", "/healthz", web.DefaultCSP},
		{"api error", "/api/me", web.DefaultCSP},
		{"not found", "/no-such-page", web.DefaultCSP},
		{"static file", srv.static.URL("vendor/sockjs.min.js"), web.DefaultCSP},
		{"page", "/setup", "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
		{"embed page", "/embed/room/1", "frame-ancestors 'self' https://intranet.example"},
		{"sockjs info", "/ws-stomp/info", ""},
		{"sockjs iframe", "/ws-stomp/iframe.html", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if got := h.Get("Referrer-Policy"); got != "same-origin" {
				t.Errorf("Referrer-Policy %q", got)
			}
			if got := h.Values("Content-Security-Policy"); len(got) > 1 {
				t.Errorf("%d CSP headers: %q", len(got), got)
			}
			csp := h.Get("Content-Security-Policy")
			switch {
			case tt.wantCSP == "" && csp != "":
				t.Errorf("CSP %q, want none (SockJS pages are inline scripts by protocol)", csp)
			case !strings.Contains(csp, tt.wantCSP):
				t.Errorf("CSP %q, want it to contain %q", csp, tt.wantCSP)
			}
			if got := h.Get("Strict-Transport-Security"); got != "" {
				t.Errorf("HSTS %q over plain HTTP", got)
			}
		})
	}
}

// TestSecurityHeadersKeepWebSocket checks that the headers do not get in
// the way of the WebSocket upgrade (the middleware must not wrap the
// ResponseWriter's Hijacker away).
func TestSecurityHeadersKeepWebSocket(t *testing.T) {
	srv := startServer(t)
	c, _ := dialWS(t, srv, "v12.stomp")
	c.connect()
	c.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/x")
}
