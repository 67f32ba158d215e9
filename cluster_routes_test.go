package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"stompbox/internal/chat"
	"stompbox/internal/stomp"
	"stompbox/internal/testutil"
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
			testutil.WritePrivateCA(t, certDir, "n1", "n2")
			c := newTestCluster(t, 2)
			var proxies [2]*testutil.RecordingProxy
			for i, nd := range c.nodes {
				proxies[i] = testutil.NewRecordingProxy(t)
				proxies[i].SetTarget(nd.spec.Listen)
			}
			// Each node's peer list: itself, and the other through its proxy.
			c.nodes[0].spec.Peers = []string{c.nodes[0].spec.Listen, proxies[1].Addr()}
			c.nodes[1].spec.Peers = []string{proxies[0].Addr(), c.nodes[1].spec.Listen}
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

			captured := append(proxies[0].Bytes(), proxies[1].Bytes()...)
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
