package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"stompbox/internal/certs"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/web"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// pinnedClient returns an HTTP client that trusts only the server's
// certificate file, as a person who checked the logged fingerprint would.
func pinnedClient(t *testing.T, certFile string) (*http.Client, *x509.Certificate) {
	t.Helper()
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("no PEM block in the certificate file")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, cert
}

// TestTLSSelfSigned: with -tls-self-signed the server makes a certificate
// once (key 0600), serves HTTPS and WSS with it, marks the session cookie
// Secure, and keeps the same certificate across restarts.
func TestTLSSelfSigned(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, func(c *Config) { c.DataDir = dir; c.TLSSelfSigned = true })
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s", srv.URL())
	}
	fi, err := os.Stat(filepath.Join(dir, certs.SelfSignedKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	client, cert := pinnedClient(t, filepath.Join(dir, certs.SelfSignedCertFile))
	for _, name := range []string{"localhost"} {
		if err := cert.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if cert.IsCA {
		t.Error("the certificate is a CA certificate; Firefox refuses those as server certificates")
	}
	base := "https://" + srv.HTTPAddr()

	t.Run("https", func(t *testing.T) {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil {
			t.Fatalf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
		}
		if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
			t.Errorf("HSTS %q with a self-signed certificate", h)
		}
	})
	t.Run("plain http refused", func(t *testing.T) {
		resp, err := http.Get("http://" + srv.HTTPAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("plain HTTP served on the TLS port")
			}
		}
	})
	t.Run("secure cookie", func(t *testing.T) {
		addUser(t, srv, "kim", "password-kim")
		resp, err := client.Post(base+"/api/login", "application/json", strings.NewReader(`{"username":"kim","password":"password-kim"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var found bool
		for _, c := range resp.Cookies() {
			if c.Name == proto.SessionCookieName {
				found = true
				if !c.Secure || !c.HttpOnly {
					t.Errorf("session cookie Secure=%v HttpOnly=%v", c.Secure, c.HttpOnly)
				}
			}
		}
		if !found {
			t.Fatalf("no session cookie (status %d)", resp.StatusCode)
		}
	})
	t.Run("wss", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "wss://"+srv.HTTPAddr()+"/ws", &websocket.DialOptions{
			HTTPClient: client, Subprotocols: []string{"v12.stomp"},
		})
		if err != nil {
			t.Fatal(err)
		}
		sc := newStompClient(t, func(b []byte) error { return c.Write(context.Background(), websocket.MessageText, b) },
			func() { c.CloseNow() },
			func() ([]byte, error) { _, b, err := c.Read(context.Background()); return b, err })
		if f := sc.connect("accept-version:1.2", "login:kim", "passcode:password-kim", "heart-beat:0,0"); f.Value(stomp.HdrUserName) != "kim" {
			t.Fatalf("CONNECTED %v", f.Headers)
		}
		sc.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/tls")
		sc.send(stomp.CmdSend, "over wss", "destination:/topic/tls")
		if m := sc.expect(stomp.CmdMessage); string(m.Body) != "over wss" {
			t.Fatalf("got %q", m.Body)
		}
	})
	t.Run("same certificate after a restart", func(t *testing.T) {
		c2, err := certs.Load(certs.Options{TLSSelfSigned: true, DataDir: srv.cfg.DataDir}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if certs.Fingerprint(c2.Leaf) != certs.Fingerprint(cert) {
			t.Fatal("a new certificate was made although the old one is valid")
		}
	})
}

// TestTLSCertificateFiles: -tls-cert/-tls-key serve the given certificate,
// and then HSTS is on. Wrong combinations are refused at start.
func TestTLSCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := certs.SelfSigned([]string{"localhost"}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, certPEM, 0o644)
	os.WriteFile(keyFile, keyPEM, 0o600)
	srv := startServer(t, func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	client, _ := pinnedClient(t, certFile)
	_, port, _ := strings.Cut(srv.HTTPAddr(), ":")
	resp, err := client.Get("https://localhost:" + port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Strict-Transport-Security"); h != web.HSTSValue {
		t.Errorf("HSTS %q, want %q", h, web.HSTSValue)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.TLSCert = certFile },
		func(c *Config) { c.TLSCert, c.TLSKey, c.TLSSelfSigned = certFile, keyFile, true },
		func(c *Config) { c.TLSCert, c.TLSKey = certFile, certFile },
	} {
		cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()}
		bad(&cfg)
		s, err := newServer(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err == nil {
			t.Errorf("started with %+v", cfg)
			s.Shutdown(context.Background())
		} // a failed Start released what newServer opened
	}
}
