package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"stompbox/internal/chat"
	"stompbox/internal/stomp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClusterRoutesCaptured is the cluster's route traffic as someone on
// the LAN sees it: two whole nodes whose routes to each other go through
// recording TCP proxies (node 1 dials node 2's proxy and node 2 node 1's,
// so every route byte is captured). The nodes form a cluster, an account
// and a room made on node 1 work on node 2, and a message with a unique
// text posted on node 2 is in node 1's history. By default (TLS derived
// from the secret) and with a private CA, the capture holds neither the
// secret's bytes nor the message's text. With -cluster-insecure it does
// hold the text (so the capture sees the log's traffic), still not the
// secret, and each node logs a warning. STOMPBOX_TEST_ROUTE_CAPTURE names
// a folder to keep each capture and its message text in, to grep.
func TestClusterRoutesCaptured(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		tweak func(dir string, i int, c *Config)
		clear bool // the route traffic is plaintext
	}{
		{"default", func(string, int, *Config) {}, false},
		{"private CA", func(dir string, i int, c *Config) {
			c.Cluster.TLSCA = filepath.Join(dir, "ca.pem")
			c.Cluster.TLSCert = filepath.Join(dir, fmt.Sprintf("n%d.pem", i+1))
			c.Cluster.TLSKey = filepath.Join(dir, fmt.Sprintf("n%d-key.pem", i+1))
		}, false},
		{"insecure", func(_ string, _ int, c *Config) { c.Cluster.Insecure = true }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			certDir := t.TempDir()
			writeRouteCA(t, certDir, "n1", "n2")
			c := newTestCluster(t, 2)
			var proxies [2]*routeProxy
			for i, nd := range c.nodes {
				proxies[i] = newRouteProxy(t, nd.spec.Listen)
			}
			// Each node's peer list: itself, and the other through its proxy.
			c.nodes[0].spec.Peers = []string{c.nodes[0].spec.Listen, proxies[1].addr()}
			c.nodes[1].spec.Peers = []string{proxies[0].addr(), c.nodes[1].spec.Listen}
			start := time.Now()
			srvs := startRouteNodes(t, c, func(i int, cfg *Config) { tc.tweak(certDir, i, cfg) })
			t.Logf("%s: two nodes started in %v", tc.name, time.Since(start).Round(time.Millisecond))

			ctx := context.Background()
			kim := addUser(t, srvs[0], "kim", testPassword)
			room, err := srvs[0].chat.CreateRoom(ctx, kim, chat.NewRoom{Name: "general"})
			if err != nil {
				t.Fatal(err)
			}
			text := "route-capture-" + rand.Text()
			cl := clusterLogin(t, srvs[1].TCPAddr(), "kim")
			cl.roundTrip(stomp.CmdSend, chatBody("TALK", room.ID, text), "destination:/pub/chat/message")
			checkFor(t, "the message on node 1", func() bool {
				h := roomHistory(t, srvs[0], room.ID)
				return len(h) > 0 && strings.HasSuffix(h[len(h)-1], ":kim:"+text)
			})

			captured := append(proxies[0].bytes(), proxies[1].bytes()...)
			if dir := os.Getenv("STOMPBOX_TEST_ROUTE_CAPTURE"); dir != "" { // to grep by hand
				name := strings.ReplaceAll(tc.name, " ", "-")
				os.WriteFile(filepath.Join(dir, name+".capture"), captured, 0o600)
				os.WriteFile(filepath.Join(dir, name+".text"), []byte(text), 0o600)
			}
			t.Logf("%s: %d route bytes captured; secret in them: %v; message text in them: %v", tc.name, len(captured),
				bytes.Contains(captured, []byte(clusterTestSecret)), bytes.Contains(captured, []byte(text)))
			if len(captured) < 10000 {
				t.Fatalf("the proxies carried only %d bytes: the routes do not go through them", len(captured))
			}
			if bytes.Contains(captured, []byte(clusterTestSecret)) {
				t.Error("the cluster secret crossed the wire")
			}
			if got := bytes.Contains(captured, []byte(text)); got != tc.clear {
				t.Errorf("message text in the capture: %v, want %v", got, tc.clear)
			}
			warned := strings.Contains(c.nodes[0].log.String(), "ROUTES ARE NOT ENCRYPTED")
			if warned != tc.clear {
				t.Errorf("warning about plaintext routes logged: %v, want %v", warned, tc.clear)
			}
		})
	}
}

// startRouteNodes starts the cluster's nodes at once, each with its
// spec's Config changed by tweak, and returns their servers; the test's
// end stops them.
func startRouteNodes(t *testing.T, c *testCluster, tweak func(i int, cfg *Config)) []*server {
	t.Helper()
	srvs := make([]*server, len(c.nodes))
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, nd := range c.nodes {
		wg.Go(func() {
			cfg := nd.spec.config()
			tweak(i, &cfg)
			ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
			defer cancel()
			srv, err := newServerContext(ctx, cfg, nd.logger(t))
			if err == nil {
				err = srv.Start()
			}
			if err != nil {
				errs[i] = fmt.Errorf("node %s: %w\nits log:\n%s", nd.spec.Name, err, nd.log)
				return
			}
			srvs[i] = srv
			nd.mu.Lock()
			nd.srv = srv
			nd.mu.Unlock()
			t.Cleanup(func() { c.stop(nd) })
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return srvs
}

// routeProxy forwards TCP connections to a node's route listener and
// records the bytes both ways.
type routeProxy struct {
	ln     net.Listener
	target string

	mu  sync.Mutex
	buf bytes.Buffer
}

func newRouteProxy(t *testing.T, target string) *routeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", freeLoopbackAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &routeProxy{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.forward(c) })
		}
	})
	return p
}

func (p *routeProxy) addr() string { return p.ln.Addr().String() }

func (p *routeProxy) bytes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.buf.Bytes())
}

func (p *routeProxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

// forward copies both ways until either side closes.
func (p *routeProxy) forward(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(io.MultiWriter(dst, p), src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// writeRouteCA writes a private CA (ca.pem) and, for each node, a
// certificate for 127.0.0.1 signed by it (NODE.pem, NODE-key.pem), as an
// administrator would make them for -cluster-tls-cert/-key/-ca.
func writeRouteCA(t *testing.T, dir string, nodes ...string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "office CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for i, node := range nodes {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: node},
			DNSNames: []string{node}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(node+".pem", "CERTIFICATE", der)
		write(node+"-key.pem", "PRIVATE KEY", keyDER)
	}
}
