package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"stompbox/internal/testutil"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	testSecret      = "route-test-secret-5f1d0c9a7e"
	testOtherSecret = "another-route-secret-88b2e4f1"
)

// TestRouteCADerivation: every node derives the same CA from a secret,
// another secret gives another CA, a node certificate verifies against
// its own cluster's CA only, and the route password is stable and is not
// the secret.
func TestRouteCADerivation(t *testing.T) {
	ca1, key1, err := routeCA(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	ca1b, _, err := routeCA(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca1.Raw, ca1b.Raw) {
		t.Error("the same secret made two different CA certificates")
	}
	ca2, _, err := routeCA(testOtherSecret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ca1.RawSubjectPublicKeyInfo, ca2.RawSubjectPublicKeyInfo) {
		t.Error("two secrets made the same CA key")
	}
	leaf, err := routeNodeCert(ca1, key1, "n1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ca   *x509.Certificate
		want bool
	}{{ca1, true}, {ca1b, true}, {ca2, false}} {
		pool := x509.NewCertPool()
		pool.AddCert(tc.ca)
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			_, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: routeServerName, KeyUsages: []x509.ExtKeyUsage{usage}})
			if (err == nil) != tc.want {
				t.Errorf("node certificate against CA %x, usage %v: %v", tc.ca.SubjectKeyId, usage, err)
			}
		}
	}
	pw := routePassword(testSecret)
	if pw != routePassword(testSecret) || pw == routePassword(testOtherSecret) || strings.Contains(pw, testSecret) || len(pw) < 32 {
		t.Errorf("route password %q", pw)
	}
}

// TestRouteSecurityOptions: which route protection the options give, and
// the combinations refused at start with a clear error, a certificate
// without a CA to verify peers among them.
func TestRouteSecurityOptions(t *testing.T) {
	dir := t.TempDir()
	files := testutil.WritePrivateCA(t, dir, "n1")
	notPEM := filepath.Join(dir, "not-pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	cases := []struct {
		name    string
		cfg     Config
		mode    routeMode
		wantErr string
	}{
		{"default: from the secret", Config{}, routeModeSecret, ""},
		{"private CA", Config{TLSCert: files.Cert["n1"], TLSKey: files.Key["n1"], TLSCA: files.CA}, routeModeCA, ""},
		{"insecure", Config{Insecure: true}, routeModeInsecure, ""},
		{"certificate without CA", Config{TLSCert: files.Cert["n1"], TLSKey: files.Key["n1"]}, "", "-cluster-tls-cert needs -cluster-tls-ca"},
		{"certificate without key", Config{TLSCert: files.Cert["n1"], TLSCA: files.CA}, "", "needs -cluster-tls-key"},
		{"CA without certificate", Config{TLSCA: files.CA}, "", "need -cluster-tls-cert"},
		{"CA file without a certificate", Config{TLSCert: files.Cert["n1"], TLSKey: files.Key["n1"], TLSCA: notPEM}, "", "no PEM certificate"},
		{"missing CA file", Config{TLSCert: files.Cert["n1"], TLSKey: files.Key["n1"], TLSCA: filepath.Join(dir, "nope")}, "", "route TLS CA"},
		{"insecure with a certificate", Config{Insecure: true, TLSCert: files.Cert["n1"], TLSKey: files.Key["n1"], TLSCA: files.CA}, "", "-cluster-insecure turns route TLS off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsc, mode, err := routeSecurity(tc.cfg, testSecret, "n1")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mode != tc.mode || (tlsc == nil) != (mode == routeModeInsecure) {
				t.Fatalf("mode %q, TLS %v", mode, tlsc != nil)
			}
			if tlsc != nil && (tlsc.RootCAs == nil || tlsc.ClientCAs == nil || tlsc.InsecureSkipVerify) {
				t.Errorf("TLS does not verify peers both ways: %+v", tlsc)
			}
		})
	}
}

// TestRouteTrafficCaptured starts two nodes' embedded NATS whose routes go
// through recording TCP proxies, so every route byte between them is
// captured, and sends a message with a unique text from one to the other.
// By default (TLS derived from the secret) the capture holds neither the
// secret, nor the route password, nor the text; neither the secret nor
// the password is in the nodes' debug logs, and a node's own connection
// learns no client address. With -cluster-insecure the text is in the
// capture (the capture sees the traffic), the secret still is not, and
// the node logs a warning.
func TestRouteTrafficCaptured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		insecure bool
	}{{"default", false}, {"insecure", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			secret := writeSecret(t, testSecret)
			text := "unique-route-text-" + rand.Text()
			pair := startPair(t, func(i int, c *Config) { c.SecretFile = secret; c.Insecure = tc.insecure })
			pair.deliver(t, text)
			captured := pair.captured()
			t.Logf("%d route bytes captured", len(captured))
			if len(captured) < 1000 {
				t.Fatalf("the proxies carried only %d bytes: the routes do not go through them", len(captured))
			}
			if bytes.Contains(captured, []byte(testSecret)) {
				t.Error("the secret crossed the wire")
			}
			for i, l := range pair.logs { // at debug level
				if s := l.String(); strings.Contains(s, testSecret) || strings.Contains(s, routePassword(testSecret)) {
					t.Errorf("node %d logged the secret or the route password", i+1)
				}
			}
			if tc.insecure {
				if !bytes.Contains(captured, []byte(text)) {
					t.Error("a plaintext route's capture lacks the message: the capture does not see the traffic")
				}
				if !strings.Contains(pair.logs[0].String(), "ROUTES ARE NOT ENCRYPTED") {
					t.Errorf("no warning logged for -cluster-insecure:\n%s", pair.logs[0])
				}
				return
			}
			if bytes.Contains(captured, []byte(text)) {
				t.Error("the message's text crossed the wire in clear")
			}
			if bytes.Contains(captured, []byte(routePassword(testSecret))) {
				t.Error("the route password crossed the wire in clear")
			}
			if strings.Contains(pair.logs[0].String(), "NOT ENCRYPTED") {
				t.Error("a warning about plaintext routes on a TLS node")
			}
			// The node's own client port is on loopback only, and no
			// node learns another's.
			for i, cc := range pair.conns {
				if u, err := url.Parse(cc.Ns.ClientURL()); err != nil || u.Hostname() != "127.0.0.1" {
					t.Errorf("node %d: embedded NATS client URL %q", i+1, cc.Ns.ClientURL())
				}
				if ds := cc.Nc.DiscoveredServers(); len(ds) != 0 {
					t.Errorf("node %d's own connection learned other client addresses: %v", i+1, ds)
				}
			}
		})
	}
}

// TestRoutePrivateCA: nodes with certificates from a private CA
// (-cluster-tls-cert/-key/-ca) verify each other in both directions and
// form a cluster.
func TestRoutePrivateCA(t *testing.T) {
	t.Parallel()
	secret := writeSecret(t, testSecret)
	files := testutil.WritePrivateCA(t, t.TempDir(), "n1", "n2")
	pair := startPair(t, func(i int, c *Config) {
		c.SecretFile = secret
		c.TLSCert, c.TLSKey, c.TLSCA = files.Cert[c.NodeName], files.Key[c.NodeName], files.CA
	})
	pair.deliver(t, "over a private CA")
	if bytes.Contains(pair.captured(), []byte("over a private CA")) {
		t.Error("the message crossed the wire in clear")
	}
}

// TestRouteCertificateWithoutCARefused: a node given a certificate but
// no CA to verify its peers with does not start.
func TestRouteCertificateWithoutCARefused(t *testing.T) {
	t.Parallel()
	files := testutil.WritePrivateCA(t, t.TempDir(), "n1")
	cfg := Config{Peers: []string{"127.0.0.1:1"}, Listen: "127.0.0.1:0", NodeName: "n1", SecretFile: writeSecret(t, testSecret),
		TLSCert: files.Cert["n1"], TLSKey: files.Key["n1"]}
	cc, err := Connect(context.Background(), cfg, t.TempDir(), slog.New(slog.DiscardHandler))
	if err == nil {
		cc.Close()
		t.Fatal("a node with a route certificate and no CA started")
	}
	if !strings.Contains(err.Error(), "-cluster-tls-ca") {
		t.Fatalf("unclear error: %v", err)
	}
}

// TestRouteOtherSecretRefused: a node with another secret derives
// another CA; the TLS handshake fails both ways and no route forms.
func TestRouteOtherSecretRefused(t *testing.T) {
	t.Parallel()
	secrets := []string{writeSecret(t, testSecret), writeSecret(t, testOtherSecret)}
	pair := startPair(t, func(i int, c *Config) { c.SecretFile = secrets[i] })
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for i, cc := range pair.conns {
			if n := cc.Ns.NumRoutes(); n != 0 {
				t.Fatalf("node %d has %d routes to a node with another secret", i+1, n)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	testutil.CheckFor(t, "a node logging the refused handshake", func() bool {
		return strings.Contains(pair.logs[0].String()+pair.logs[1].String(), "TLS route handshake error")
	})
}

// nodePair is two nodes' embedded NATS whose routes to each other go
// through recording proxies.
type nodePair struct {
	conns   [2]*Conn
	proxies [2]*testutil.RecordingProxy // proxies[i] leads to node i
	logs    [2]*lockedBuffer
}

// startPair starts two nodes on 127.0.0.1, node i routing to the other
// through the proxy in front of it; tweak sets each node's options.
func startPair(t testing.TB, tweak func(i int, c *Config)) *nodePair {
	t.Helper()
	p := &nodePair{}
	for i := range 2 {
		p.proxies[i] = testutil.NewRecordingProxy(t)
		p.logs[i] = &lockedBuffer{}
	}
	for i := range 2 {
		cfg := Config{
			Peers:    []string{p.proxies[1-i].Addr()},
			Listen:   "127.0.0.1:0",
			Name:     "test",
			NodeName: []string{"n1", "n2"}[i],
		}
		tweak(i, &cfg)
		log := slog.New(slog.NewTextHandler(p.logs[i], &slog.HandlerOptions{Level: slog.LevelDebug}))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cc, err := Connect(ctx, cfg, t.TempDir(), log)
		cancel()
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		t.Cleanup(cc.Close) // Close twice is harmless (close)
		p.conns[i] = cc
		p.proxies[i].SetTarget(cc.Ns.ClusterAddr().String())
	}
	return p
}

// deliver sends text from node 1 to a subscriber on node 2 until it
// arrives: the routes are up and carry messages.
func (p *nodePair) deliver(t testing.TB, text string) {
	t.Helper()
	sub, err := p.conns[1].Nc.SubscribeSync("routes.test")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.conns[0].Nc.Publish("routes.test", []byte(text)); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(20 * time.Millisecond)
		if errors.Is(err, nats.ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != text {
			t.Fatalf("received %q", m.Data)
		}
		return
	}
	t.Fatalf("no message across the routes\nnode 1's log:\n%s\nnode 2's log:\n%s", p.logs[0], p.logs[1])
}

// close stops both nodes and proxies before the test's end.
func (p *nodePair) close() {
	for i := range 2 {
		p.conns[i].Close()
		p.proxies[i].Close()
	}
}

// captured is every byte the proxies carried, both ways.
func (p *nodePair) captured() []byte {
	return append(p.proxies[0].Bytes(), p.proxies[1].Bytes()...)
}

// writeSecret writes a cluster secret file and returns its path.
func writeSecret(t testing.TB, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster-secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lockedBuffer is a log's text, safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// BenchmarkRouteFormation: two nodes' embedded NATS, from start until a
// message crosses the route, by route protection (the proxies in the
// way as in the tests).
func BenchmarkRouteFormation(b *testing.B) {
	secret := writeSecret(b, testSecret)
	files := testutil.WritePrivateCA(b, b.TempDir(), "n1", "n2")
	for _, bc := range []struct {
		name  string
		tweak func(c *Config)
	}{
		{"secret-tls", func(*Config) {}},
		{"private-ca", func(c *Config) {
			c.TLSCert, c.TLSKey, c.TLSCA = files.Cert[c.NodeName], files.Key[c.NodeName], files.CA
		}},
		{"insecure", func(c *Config) { c.Insecure = true }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				p := startPair(b, func(_ int, c *Config) { c.SecretFile = secret; bc.tweak(c) })
				p.deliver(b, "formed")
				p.close()
			}
		})
	}
}
