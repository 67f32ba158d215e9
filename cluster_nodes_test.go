package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"stompbox/internal/broker"
	"stompbox/internal/cluster"
	"stompbox/internal/testutil"
	"strings"
	"sync"
	"testing"
	"time"
)

// The cluster test harness: whole stompbox nodes, each with its own
// embedded NATS server (routes on 127.0.0.1), JetStream store and data
// folder, in the test process; or one node as a child process of the test
// binary, for a test that must SIGKILL it.

// clusterTestSecret is the route secret the test clusters share.
const clusterTestSecret = "test-cluster-secret-0123456789"

// clusterStartTimeout bounds a node's start: routes, JetStream's meta
// leader election, the log's stream and catching up. A hang guard.
const clusterStartTimeout = 60 * time.Second

// childNodeEnv names the environment variable that turns the test binary
// into a cluster node (TestMain): its value is a childNodeSpec in JSON.
const childNodeEnv = "STOMPBOX_TEST_CLUSTER_CHILD"

// nodeSpec is what makes a test node: where it keeps its data, where its
// routes listen, whom it routes to and with which secret.
type nodeSpec struct {
	Name   string   `json:"name"`
	Dir    string   `json:"dir"`
	Listen string   `json:"listen"` // route listener, 127.0.0.1:port
	Peers  []string `json:"peers"`
	Secret string   `json:"secret"` // path of the secret file
	CName  string   `json:"cluster"`

	PublishWait time.Duration `json:"publishWait,omitempty"` // clusterConfig's test hooks
	KeepRecent  uint64        `json:"keepRecent,omitempty"`
	Skew        time.Duration `json:"skew,omitempty"` // added to the node's clock

	SnapshotEvery uint64 `json:"snapshotEvery,omitempty"` // -cluster-snapshot-every; 0: the default
}

// config is the node's Config: loopback ports, no rate limits.
func (s nodeSpec) config() Config {
	return Config{
		Addr: "127.0.0.1:0", StompAddr: "127.0.0.1:0", DataDir: s.Dir, HeartBeat: broker.DefaultHeartBeat,
		Cluster: cluster.Config{Peers: s.Peers, Listen: s.Listen, Name: s.CName, SecretFile: s.Secret, NodeName: s.Name,
			PublishWait: s.PublishWait, KeepRecent: s.KeepRecent, Clock: s.clock()},
		SnapshotEvery: s.SnapshotEvery,
	}
}

// clock is the node's clock: time.Now, off by Skew.
func (s nodeSpec) clock() func() time.Time {
	if s.Skew == 0 {
		return nil
	}
	return func() time.Time { return time.Now().Add(s.Skew) }
}

// testNode is one node of a testCluster.
type testNode struct {
	spec nodeSpec
	log  *logBuffer

	mu  sync.Mutex
	srv *server // nil while stopped
}

// server returns the running node's server.
func (n *testNode) server(t testing.TB) *server {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		t.Fatalf("node %s is not running", n.spec.Name)
	}
	return n.srv
}

// testCluster is a set of nodes that route to each other.
type testCluster struct {
	t     *testing.T
	nodes []*testNode
}

// newTestCluster prepares n nodes (none started): each with a free route
// port on 127.0.0.1, its own data folder and the same peer list.
func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "cluster-secret")
	if err := os.WriteFile(secret, []byte(clusterTestSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t}
	var peers []string
	for i := range n {
		spec := nodeSpec{Name: fmt.Sprintf("n%d", i+1), Dir: t.TempDir(), Listen: freeLoopbackAddr(t), Secret: secret, CName: "test"}
		peers = append(peers, spec.Listen)
		c.nodes = append(c.nodes, &testNode{spec: spec, log: &logBuffer{}})
	}
	for _, nd := range c.nodes {
		nd.spec.Peers = peers
	}
	return c
}

// addNode prepares one more node whose peer list names every node.
func (c *testCluster) addNode() *testNode {
	c.t.Helper()
	first := c.nodes[0].spec
	spec := nodeSpec{Name: fmt.Sprintf("n%d", len(c.nodes)+1), Dir: c.t.TempDir(), Listen: freeLoopbackAddr(c.t), Secret: first.Secret, CName: first.CName}
	spec.Peers = append(slices.Clone(first.Peers), spec.Listen)
	nd := &testNode{spec: spec, log: &logBuffer{}}
	c.nodes = append(c.nodes, nd)
	return nd
}

// freeLoopbackAddr returns a 127.0.0.1 address whose port was free a
// moment ago: a peer list must name every node's route port before any
// node starts. The port is below Linux's ephemeral range (32768 up),
// where the nodes' own outgoing connections take their ports and could
// take this one before its node listens on it. A port is handed out once
// per test process: cluster tests run in parallel, and another test's
// pick must not land on a port whose node has not bound it yet, or has
// stopped and will restart on it.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	handedOutPorts.Lock()
	defer handedOutPorts.Unlock()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if handedOutPorts.m[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if ln, err := net.Listen("tcp", addr); err == nil {
			handedOutPorts.m[port] = true
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// handedOutPorts are the ports freeLoopbackAddr has returned in this process.
var handedOutPorts = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// startAll starts the given nodes (all when none are given) at once: a
// node's start waits for a JetStream quorum, which needs the others.
func (c *testCluster) startAll(nodes ...*testNode) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.nodes
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Go(func() { errs[i] = c.start(nd) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
}

// start runs one node in this process; the test's end stops it.
func (c *testCluster) start(nd *testNode) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	srv, err := newServerContext(ctx, nd.spec.config(), nd.logger(c.t))
	if err != nil {
		return fmt.Errorf("node %s: %w\nits log:\n%s", nd.spec.Name, err, nd.log)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("node %s: %w", nd.spec.Name, err)
	}
	nd.mu.Lock()
	nd.srv = srv
	nd.mu.Unlock()
	c.t.Cleanup(func() { c.stop(nd) })
	return nil
}

// stop shuts a running node down; a stopped node is left alone.
func (c *testCluster) stop(nd *testNode) {
	nd.mu.Lock()
	srv := nd.srv
	nd.srv = nil
	nd.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		c.t.Errorf("node %s: shutdown: %v", nd.spec.Name, err)
	}
}

// logger writes the node's log to its buffer (tests look for lines in
// it) and, with STOMPBOX_TEST_LOG, to the test log.
func (nd *testNode) logger(t testing.TB) *slog.Logger {
	var w io.Writer = nd.log
	if os.Getenv("STOMPBOX_TEST_LOG") != "" {
		w = io.MultiWriter(nd.log, testutil.Writer(t))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", nd.spec.Name)
}

// logBuffer is a log's text, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// applied is how far the node's database has applied the log.
func (nd *testNode) applied(t testing.TB) uint64 {
	return nd.server(t).clog.Applied.Load()
}

// waitConverged waits until every running node has applied the whole log.
func (c *testCluster) waitConverged(nodes ...*testNode) {
	c.t.Helper()
	checkFor(c.t, "the nodes to apply the whole log", func() bool {
		var end uint64
		for _, nd := range nodes {
			st, err := nd.server(c.t).clog.Status(context.Background())
			if err != nil {
				return false
			}
			end = max(end, st.LogEnd)
		}
		for _, nd := range nodes {
			if nd.applied(c.t) < end {
				return false
			}
		}
		return true
	})
}

// roomHistory reads a room's whole history from one node's database, in
// id order, as "id:sender:text" lines: equal histories are equal slices.
func roomHistory(t testing.TB, srv *server, roomID int64) []string {
	t.Helper()
	ms, err := srv.store.MessagesAfter(context.Background(), roomID, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%d:%s:%s", m.ID, m.Sender, m.Message))
	}
	return out
}

// childNode is a cluster node running as a child process of the test
// binary, so that it can die by SIGKILL.
type childNode struct {
	cmd      *exec.Cmd
	httpAddr string
	tcpAddr  string
	stdin    io.WriteCloser
	ready    chan error // the start's outcome
}

// startChild runs nd as a child process and waits until it serves.
// Its stderr (the node's log) goes to the node's log buffer.
func (c *testCluster) startChild(nd *testNode) *childNode {
	c.t.Helper()
	spec, err := json.Marshal(nd.spec)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childNodeEnv+"="+string(spec))
	cmd.Stderr = nd.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	ch := &childNode{cmd: cmd, stdin: stdin}
	c.t.Cleanup(func() {
		ch.stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() {
			ready <- fmt.Errorf("child node %s exited before serving: %v", nd.spec.Name, sc.Err())
			return
		}
		_, err := fmt.Sscanf(sc.Text(), "serving %s %s", &ch.httpAddr, &ch.tcpAddr)
		ready <- err
		io.Copy(io.Discard, stdout)
	}()
	// The caller starts the other nodes meanwhile (the child waits for a
	// quorum), then calls wait.
	ch.ready = ready
	return ch
}

// wait returns once the child serves, or fails the test.
func (ch *childNode) wait(t testing.TB, nd *testNode) {
	t.Helper()
	select {
	case err := <-ch.ready:
		if err != nil {
			t.Fatalf("%v\nits log:\n%s", err, nd.log)
		}
	case <-time.After(clusterStartTimeout):
		t.Fatalf("child node %s did not start\nits log:\n%s", nd.spec.Name, nd.log)
	}
}

// runChildNode is the child side (TestMain calls it when childNodeEnv is
// set): start the node, say where it serves on stdout, and run until
// stdin closes (the parent test ended) or SIGKILL.
func runChildNode(specJSON string) int {
	var spec nodeSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", spec.Name)
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	srv, err := newServerContext(ctx, spec.config(), log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		return 1
	}
	fmt.Printf("serving %s %s\n", srv.HTTPAddr(), srv.TCPAddr())
	io.Copy(io.Discard, os.Stdin)
	sctx, scancel := context.WithTimeout(context.Background(), testTimeout)
	defer scancel()
	srv.Shutdown(sctx)
	return 0
}

// apiGet does an authenticated GET on a node's API and decodes the JSON.
func apiGet(t testing.TB, base, token, path string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}
