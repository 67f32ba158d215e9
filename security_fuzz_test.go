package main

import (
	"net/http/httptest"
	"net/url"
	"stompbox/internal/transport"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheckDestination checks, segment by segment, what checkDestination
// promises: an accepted destination cannot alias another one, since every
// authorization rule matches destinations as plain strings.
func FuzzCheckDestination(f *testing.F) {
	for _, s := range []string{"/sub/chat/room/1", "/topic/a.b", "/user/queue/errors", "/a/../b", "/a//b", "/a/./b",
		"/a/", "/%2e%2e/x", "/a/..", "/a/b\x00", "/queue/*", "/topic/#", "/a\\b", "/..", "/", "/a?x=1", "/한국어/방"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		if checkDestination(d) != nil {
			return
		}
		if len(d) > 512 || !strings.HasPrefix(d, "/") {
			t.Fatalf("accepted %q: length or leading slash", d)
		}
		for i, seg := range strings.Split(d[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q: segment %d is %q", d, i, seg)
			}
		}
		for _, r := range d {
			if r < 0x21 || r == 0x7f || strings.ContainsRune("%\\*#?", r) {
				t.Fatalf("accepted %q: character %q", d, r)
			}
		}
		// Accepted destinations are their own canonical form.
		if u, err := url.Parse(d); err == nil && u.Path != d && utf8.ValidString(d) {
			t.Fatalf("accepted %q, which URL parsing reads as %q", d, u.Path)
		}
	})
}

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
