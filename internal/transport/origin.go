package transport

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// OriginPolicy decides which browser origins may open WebSocket and SockJS
// connections. Same-origin is always allowed; other origins must match one of
// the patterns, which follow Spring's setAllowedOriginPatterns: "*" for any,
// "https://*.corp.example" with a scheme, or "chat.corp.example:8080" for a
// host (and port) under any scheme. '*' matches within one host label run,
// as path.Match does.
type OriginPolicy struct {
	patterns []string
}

func NewOriginPolicy(patterns []string) *OriginPolicy {
	var ps []string
	for _, p := range patterns {
		if p = strings.TrimSpace(strings.ToLower(p)); p != "" {
			ps = append(ps, strings.TrimSuffix(p, "/"))
		}
	}
	return &OriginPolicy{patterns: ps}
}

// Allowed reports whether r may proceed. Requests with no Origin header come
// from non-browser clients (scripts, devices, Spring's Java client), which
// the same-origin policy does not concern, or from a browser loading a
// <script> or an <iframe> (SockJS jsonp and htmlfile transports). Browsers
// mark the cross-site ones with Sec-Fetch-Site; those are judged by their
// Referer, so another site cannot ride a logged-in user's cookie.
func (p *OriginPolicy) Allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if r.Header.Get("Sec-Fetch-Site") != "cross-site" {
			return true
		}
		origin = r.Header.Get("Referer")
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // includes the opaque "null" origin of sandboxed frames and files
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	origin = strings.ToLower(u.Scheme + "://" + u.Host)
	host := strings.ToLower(u.Host)
	for _, pat := range p.patterns {
		if pat == "*" {
			return true
		}
		target := host
		if strings.Contains(pat, "://") {
			target = origin
		}
		if ok, _ := path.Match(pat, target); ok {
			return true
		}
		// A host pattern without a port allows any port of that host.
		if !strings.Contains(pat, "://") && !strings.Contains(pat, ":") {
			if ok, _ := path.Match(pat, u.Hostname()); ok {
				return true
			}
		}
	}
	return false
}
