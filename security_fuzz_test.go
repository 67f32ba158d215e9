package main

import (
	"net/http/httptest"
	"net/url"
	"stompbox/internal/transport"
	"strings"
	"testing"
)

// FuzzOriginPolicy checks that an origin the policy accepts is either the
// request's own host or really matches one of the allow-list patterns, for
// any Origin, Referer, Host and Sec-Fetch-Site the fuzzer makes up.
func FuzzOriginPolicy(f *testing.F) {
	seeds := [][4]string{
		{"https://chat.corp.example", "", "box:8080", ""},
		{"https://evil.example", "", "box:8080", ""},
		{"http://box:8080", "", "box:8080", ""},
		{"null", "", "box:8080", ""},
		{"", "https://portal.corp.example/x", "box:8080", "cross-site"},
		{"", "https://evil.example/chat.corp.example", "box:8080", "cross-site"},
		{"https://evil.example@chat.corp.example", "", "box", ""},
		{"https://chat.corp.example.evil.example", "", "box", ""},
		{"https://CHAT.Corp.Example:443", "", "box", ""},
		{"http://intranet", "", "box", ""},
		{"https://a.corp.example:8443", "", "box", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	p := transport.NewOriginPolicy([]string{"https://*.corp.example", "intranet", "https://portal.corp.example"})
	f.Fuzz(func(t *testing.T, origin, referer, host, site string) {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Host = host
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if referer != "" {
			r.Header.Set("Referer", referer)
		}
		if site != "" {
			r.Header.Set("Sec-Fetch-Site", site)
		}
		if !p.Allowed(r) {
			return
		}
		claimed := r.Header.Get("Origin")
		if claimed == "" {
			if r.Header.Get("Sec-Fetch-Site") != "cross-site" {
				return // no browser origin to check: scripts and same-site requests
			}
			claimed = r.Header.Get("Referer")
		}
		u, err := url.Parse(claimed)
		if err != nil || u.Host == "" {
			t.Fatalf("accepted unparsable origin %q", claimed)
		}
		if strings.EqualFold(u.Host, r.Host) {
			return // same origin
		}
		h := strings.ToLower(u.Hostname())
		switch {
		case strings.EqualFold(u.Scheme, "https") && strings.HasSuffix(h, ".corp.example") && u.Port() == "":
		case h == "intranet":
		default:
			t.Fatalf("accepted origin %q (host %q, scheme %q, port %q) for Host %q", claimed, h, u.Scheme, u.Port(), r.Host)
		}
	})
}
