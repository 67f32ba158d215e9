package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"stompbox/internal/broker"
	"stompbox/internal/cluster"
)

// TestStartFailureLeavesNothing makes each start step of a cluster node fail
// in turn, after the node has joined the cluster where it can, and checks
// that the failed start released everything it had made: no goroutine, no
// open file or socket (the database, the NATS connection), and that the
// NATS server saw the node's connection go. Before the one unwinding path,
// a failure after joining left the NATS connection, the log applier and the
// bus running.
func TestStartFailureLeavesNothing(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(testTimeout) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	steps := []string{"store", "cluster", "auth", "broker", "files", "chat", "cluster bus", "catch up", "web", "sockjs"}
	// A start that succeeds first, so that the NATS server's own goroutines
	// for the stream and the object store exist before the baseline.
	warm := clusterConfigForStart(t, ns.ClientURL(), "warm", "")
	srv, err := newServerContext(context.Background(), warm, testLogger(t))
	if err != nil {
		t.Fatalf("start without a fault: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			goroutines, files, clients := len(nodeGoroutines()), openFiles(t), ns.NumClients()
			cfg := clusterConfigForStart(t, ns.ClientURL(), "n-"+strings.ReplaceAll(step, " ", "-"), step)
			srv, err := newServerContext(context.Background(), cfg, testLogger(t))
			if !errors.Is(err, errStartFault) {
				if srv != nil {
					srv.Shutdown(context.Background())
				}
				t.Fatalf("start with %q failing: %v, want the planted fault", step, err)
			}
			checkFor(t, "goroutines back to baseline", func() bool { return len(nodeGoroutines()) <= goroutines })
			checkFor(t, "open files back to baseline", func() bool { return openFiles(t) <= files })
			checkFor(t, "the node's NATS connections closed", func() bool { return ns.NumClients() <= clients })
		})
	}
}

// clusterConfigForStart is a cluster node on the NATS server at url, in a
// fresh data folder, whose start fails at step (none when "").
func clusterConfigForStart(t *testing.T, url, node, step string) Config {
	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), HeartBeat: broker.DefaultHeartBeat}
	cfg.Cluster = cluster.Config{NATS: []string{url}, NodeName: node}
	cfg.failStartAt = step
	return cfg
}

// nodeGoroutines are the stacks of the goroutines of ours, less the
// in-process NATS server's: that server stands for the cluster's NATS,
// which keeps a departed node's consumer for a while by design.
func nodeGoroutines() []string {
	var ours []string
	for _, g := range ourGoroutines() {
		if !strings.Contains(g, "nats-io/nats-server/") {
			ours = append(ours, g)
		}
	}
	return ours
}
