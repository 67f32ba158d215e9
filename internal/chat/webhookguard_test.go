package chat

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"stompbox/internal/apperr"
	"strings"
	"sync/atomic"
	"testing"
)

// TestWebhookAllowCheckURL: a webhook target must be on the allow-list,
// and is never a loopback, link-local, multicast or unspecified address,
// listed or not; an empty list turns webhooks off.
func TestWebhookAllowCheckURL(t *testing.T) {
	allow, err := parseWebhookAllow([]string{"ntfy.lan", "*.hooks.example", "10.0.0.0/8", "192.168.1.20", "127.0.0.1", "169.254.0.0/16", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want error // apperr kind, nil for allowed
	}{
		{"http://ntfy.lan/bob", nil},
		{"https://NTFY.lan:8443/bob", nil},
		{"https://a.hooks.example/x", nil},
		{"https://hooks.example/x", apperr.ErrForbidden}, // *.hooks.example is the subdomains only
		{"http://10.20.30.40:2586/x", nil},
		{"http://192.168.1.20/x", nil},
		{"http://192.168.1.21/x", apperr.ErrForbidden},
		{"http://example.com/x", apperr.ErrForbidden},
		{"http://127.0.0.1:8080/x", apperr.ErrBadRequest}, // listed, still refused
		{"http://127.1.2.3/x", apperr.ErrBadRequest},
		{"http://[::1]/x", apperr.ErrBadRequest},
		{"http://[::ffff:127.0.0.1]/x", apperr.ErrBadRequest},
		{"http://169.254.169.254/latest", apperr.ErrBadRequest},
		{"http://[fe80::1]/x", apperr.ErrBadRequest},
		{"http://0.0.0.0/x", apperr.ErrBadRequest},
		{"http://[::]/x", apperr.ErrBadRequest},
		{"http://224.0.0.1/x", apperr.ErrBadRequest},
		{"http://localhost/x", apperr.ErrBadRequest},
		{"http://a.localhost/x", apperr.ErrBadRequest},
		{"ftp://ntfy.lan/x", apperr.ErrBadRequest},
		{"http://user:pw@ntfy.lan/x", apperr.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := allow.checkURL(tt.url)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if err := (webhookAllow{}).checkURL("https://ntfy.lan/x"); !errors.Is(err, errWebhooksOff) {
		t.Fatalf("empty list: %v, want webhooks off", err)
	}
	if _, err := parseWebhookAllow([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("a bad CIDR was accepted")
	}
}

// TestWebhookClientChecksDialedAddress: the guarded client refuses a
// loopback address reached through a name (localhost), before any byte
// is sent.
func TestWebhookClientChecksDialedAddress(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		resp, err := guardedWebhookClient().Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("POST %s went through", u)
		}
		if !errors.Is(err, errWebhookDialed) {
			t.Fatalf("POST %s: %v, want the dial refused", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("the server was reached")
	}
}

// TestWebhookClientFollowsNoRedirect: a 3xx is the webhook's answer; the
// target it names is never asked (it could be outside the allow-list).
func TestWebhookClientFollowsNoRedirect(t *testing.T) {
	var inner atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { inner.Add(1) }))
	defer elsewhere.Close()
	hook := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/admin", http.StatusTemporaryRedirect))
	defer hook.Close()
	// Loopback allowed here only so that the test servers can be reached.
	c := newWebhookClient(func(netip.Addr) bool { return false })
	resp, err := c.Post(hook.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || inner.Load() != 0 {
		t.Fatalf("status %d, redirect target asked %d times", resp.StatusCode, inner.Load())
	}
}
