package web

import (
	"net/http"
	"stompbox/internal/ratelimit"
	"strings"
)

// Security headers every HTTP response gets (issue 6).
const (
	// DefaultCSP is the Content-Security-Policy of responses whose handler
	// sets none (static files, JSON, errors). Pages set their own, stricter
	// one (pages.go), and the embed page names its frame-ancestors from
	// --embed-origins; a handler's own policy always wins.
	DefaultCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"

	// HSTSValue asks browsers to use HTTPS for a year. No includeSubDomains:
	// on an intranet the sibling hosts of a stompbox box are not ours to pin.
	HSTSValue = "max-age=31536000"
)

// SecurityOptions says how securityHeaders treats a request.
type SecurityOptions struct {
	// noCSP lists path prefixes that get no default CSP: the SockJS
	// endpoints, whose iframe page and htmlfile transport are inline
	// scripts by protocol (sockjs-protocol 0.3) and whose iframe is framed
	// by pages of other origins.
	NoCSP []string
	// hsts turns Strict-Transport-Security on for TLS requests. It is off
	// with a self-signed certificate: HSTS forbids clicking through a
	// certificate warning, which would lock people out of such a server.
	HSTS bool
}

// SecurityHeaders sets the headers every response carries before next runs:
// X-Content-Type-Options, Referrer-Policy, a default CSP (which a handler
// replaces by setting its own: Header().Set overwrites) and, under TLS,
// HSTS. It does not wrap the ResponseWriter, so hijacking (WebSocket) and
// flushing (SockJS streaming) are untouched.
func SecurityHeaders(next http.Handler, opts SecurityOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !hasAnyPrefix(r.URL.Path, opts.NoCSP) {
			h.Set("Content-Security-Policy", DefaultCSP)
		}
		if opts.HSTS && r.TLS != nil {
			h.Set("Strict-Transport-Security", HSTSValue)
		}
		next.ServeHTTP(w, r)
	})
}

// hasAnyPrefix reports whether path is one of prefixes or lies under one.
func hasAnyPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// LimitLogins answers 429 with a JSON error to login and registration
// attempts past l's LoginsPerIP from one address; other requests pass.
func LimitLogins(l *ratelimit.Limiter, next http.Handler) http.Handler {
	if l.Limits().LoginsPerIP <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.URL.Path == "/api/login" || r.URL.Path == "/api/register") &&
			!l.AllowLogin(ratelimit.RemoteIP(r.RemoteAddr)) {
			w.Header().Set("Retry-After", "60")
			writeJSONError(w, http.StatusTooManyRequests, "too many login attempts from this address; try again in a minute")
			return
		}
		next.ServeHTTP(w, r)
	})
}
