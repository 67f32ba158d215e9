package web

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestForwardedHeaders: X-Forwarded-For and -Proto count from trusted
// proxies only, and the client is the rightmost address no trusted proxy
// added.
func TestForwardedHeaders(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.168.1.2", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer, xff, proto string
		wantIP                 string
		wantTLS                bool
	}{
		{"untrusted peer", "203.0.113.9:1234", "198.51.100.1", "https", "203.0.113.9", false},
		{"trusted proxy", "10.1.2.3:1234", "198.51.100.1", "https", "198.51.100.1", true},
		{"single address proxy", "192.168.1.2:1234", "198.51.100.1", "http", "198.51.100.1", false},
		{"not the next address", "192.168.1.3:1234", "198.51.100.1", "https", "192.168.1.3", false},
		{"spoofed left of the real client", "10.1.2.3:1234", "6.6.6.6, 198.51.100.1", "", "198.51.100.1", false},
		{"chain of trusted proxies", "10.1.2.3:1234", "198.51.100.1, 10.9.9.9", "", "198.51.100.1", false},
		{"proxy without X-Forwarded-For", "10.1.2.3:1234", "", "", "10.1.2.3", false},
		{"garbage", "10.1.2.3:1234", "not-an-ip", "https", "10.1.2.3", true},
		{"ipv6 proxy", "[fd00::1]:1234", "2001:db8::1", "HTTPS", "2001:db8::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			h := ForwardedHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r }), trusted)
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if tt.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			host, _, _ := net.SplitHostPort(got.RemoteAddr)
			if host != tt.wantIP || (got.TLS != nil) != tt.wantTLS {
				t.Errorf("remote %s, TLS %v; want %s, %v", got.RemoteAddr, got.TLS != nil, tt.wantIP, tt.wantTLS)
			}
			if !trusted.Contains(net.ParseIP(host)) && tt.peer == "203.0.113.9:1234" && (got.Header.Get("X-Forwarded-For") != "" || got.Header.Get("X-Forwarded-Proto") != "") {
				t.Errorf("an untrusted peer's headers reached the handler: %v", got.Header)
			}
		})
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", ""} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", bad)
		}
	}
}
