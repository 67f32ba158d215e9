package web

import (
	"crypto/tls"
	"fmt"
	"net"
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

// TrustedProxies are the reverse proxies (-trusted-proxies) whose
// X-Forwarded-For and X-Forwarded-Proto headers are believed. The zero
// value trusts nobody.
type TrustedProxies []*net.IPNet

// ParseTrustedProxies parses a list of CIDRs ("10.0.0.0/8") or single
// addresses ("192.168.1.2", a /32 or /128).
func ParseTrustedProxies(list []string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, s := range list {
		if !strings.Contains(s, "/") {
			ip := net.ParseIP(s)
			if ip == nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR", s)
			}
			bits := 8 * net.IPv6len
			if ip4 := ip.To4(); ip4 != nil {
				ip, bits = ip4, 8*net.IPv4len
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Contains reports whether ip is one of the trusted proxies.
func (t TrustedProxies) Contains(ip net.IP) bool {
	for _, n := range t {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ForwardedHeaders makes a request that came through a trusted proxy look
// as it did to the proxy: its RemoteAddr becomes the client's address from
// X-Forwarded-For (the last one no trusted proxy added; so per-address
// limits, the STOMP sessions of WebSockets and logs see the client), and,
// when X-Forwarded-Proto says https, it counts as a TLS request (r.TLS is
// set, empty: the session cookie is Secure, as on a TLS listener). From
// any other peer those headers are removed, unread. It must run before
// every handler that reads the client's address.
func ForwardedHeaders(next http.Handler, trusted TrustedProxies) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := net.ParseIP(ratelimit.RemoteIP(r.RemoteAddr))
		if peer == nil || !trusted.Contains(peer) {
			if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("X-Forwarded-Proto") != "" {
				r = r.Clone(r.Context())
				r.Header.Del("X-Forwarded-For")
				r.Header.Del("X-Forwarded-Proto")
			}
			next.ServeHTTP(w, r)
			return
		}
		client := forwardedClient(r.Header.Values("X-Forwarded-For"), trusted)
		https := strings.EqualFold(lastListItem(r.Header.Values("X-Forwarded-Proto")), "https")
		if client == nil && !https {
			next.ServeHTTP(w, r)
			return
		}
		r2 := *r // a shallow copy: the same body, headers and context
		if client != nil {
			r2.RemoteAddr = net.JoinHostPort(client.String(), "0")
		}
		if https && r2.TLS == nil {
			r2.TLS = &tls.ConnectionState{}
		}
		next.ServeHTTP(w, &r2)
	})
}

// forwardedClient is the client's address in X-Forwarded-For values: the
// rightmost that is not a trusted proxy (each proxy appends the address it
// heard from, so the ones left of it were written by the client and prove
// nothing); nil when there is none or it does not parse.
func forwardedClient(values []string, trusted TrustedProxies) net.IP {
	items := strings.Split(strings.Join(values, ","), ",")
	for i := len(items) - 1; i >= 0; i-- {
		s := strings.TrimSpace(items[i])
		if s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil
		}
		if !trusted.Contains(ip) {
			return ip
		}
	}
	return nil
}

// lastListItem is the last item of comma-separated header values.
func lastListItem(values []string) string {
	if len(values) == 0 {
		return ""
	}
	items := strings.Split(values[len(values)-1], ",")
	return strings.TrimSpace(items[len(items)-1])
}
