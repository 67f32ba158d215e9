package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestBlobDelete deletes a stored blob through a connection that may make
// consumers (its chunks are erased, then it is deleted) and through one
// that may not, as when a node's connection closes while it shuts down:
// the erase fails, Delete says so within its context, and the blob is
// deleted all the same. The erase used an ordered consumer, whose
// re-creation ignores the context and retries for ever: Delete never
// returned, and CI saw its goroutine outlive the node.
func TestBlobDelete(t *testing.T) {
	t.Parallel()
	ns := startNATSUsers(t, []*natsserver.User{
		{Username: "node", Password: "node"},
		{Username: "noconsumers", Password: "noconsumers", Permissions: &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.CONSUMER.CREATE.>"}},
			Subscribe: &natsserver.SubjectPermission{Allow: []string{">"}},
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, owner := openBlobs(ctx, t, ns, nats.UserInfo("node", "node"), quiet())
	cases := []struct {
		user    string
		wantErr bool
	}{
		{"node", false},
		{"noconsumers", true},
	}
	for i, tc := range cases {
		t.Run(tc.user, func(t *testing.T) {
			body := bytes.Repeat([]byte{byte('a' + i)}, 300<<10) // three chunks
			sum := sha256.Sum256(body)
			name := hex.EncodeToString(sum[:])
			path := filepath.Join(t.TempDir(), "blob")
			if err := os.WriteFile(path, body, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := owner.Put(ctx, name, path); err != nil {
				t.Fatal(err)
			}
			_, blobs := openBlobs(ctx, t, ns, nats.UserInfo(tc.user, tc.user), quiet())
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- blobs.Delete(dctx, name) }()
			select {
			case err := <-done:
				if (err != nil) != tc.wantErr {
					t.Errorf("Delete: %v, want an error: %v", err, tc.wantErr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Delete did not return 30 s after it began (its context: 3 s)")
			}
			var buf bytes.Buffer
			if err := owner.Get(ctx, name, &buf); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the blob after Delete: %v (%d bytes), want not found", err, buf.Len())
			}
		})
	}
}

// TestBlobDeleteEverywhereAtOnce: every node deletes a deleted file's
// blob, so their erasures of its chunks race; each node's Delete
// succeeds whichever overwrote a chunk first. A secure delete that lost
// the race answered "no message found", which failed the erase on every
// node (CI's TestClusterDeletedTextGone, once the blob was deleted
// after a failed erase).
func TestBlobDeleteEverywhereAtOnce(t *testing.T) {
	t.Parallel()
	ns := startNATSUsers(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var nodes []*ObjectBlobs
	for range 3 {
		_, b := openBlobs(ctx, t, ns)
		nodes = append(nodes, b)
	}
	for round := range 5 {
		name := fmt.Sprintf("%064x", round)
		meta := jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: 64}}
		if _, err := nodes[0].Store.Put(ctx, meta, bytes.NewReader(bytes.Repeat([]byte("y"), 64*300))); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, b := range nodes {
			wg.Go(func() { errs[i] = b.Delete(ctx, name) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, node %d: %v", round, i+1, err)
			}
		}
	}
}

// openBlobs connects to ns with opts and opens the blob store through
// that connection (one replica); the connection ends with the test.
func openBlobs(ctx context.Context, t *testing.T, ns *natsserver.Server, opts ...nats.Option) (*nats.Conn, *ObjectBlobs) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewObjectBlobs(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return nc, b
}

// quiet keeps a connection's asynchronous errors (a denied subject, a
// closed connection) out of the test's output.
func quiet() nats.Option {
	return nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
}

// TestBlobDeleteConnectionCloses closes a node's connection while Delete
// erases a blob of many chunks, at a later moment each round, as when
// the node shuts down during a deletion: Delete returns every time. With
// an ordered consumer, a close during one of its re-creations left Delete
// retrying for ever (the goroutine CI saw outlive its node).
func TestBlobDeleteConnectionCloses(t *testing.T) {
	t.Parallel()
	ns := startNATSUsers(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, owner := openBlobs(ctx, t, ns, quiet())
	for round := range 12 {
		name := fmt.Sprintf("%064x", round)
		meta := jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: 64}}
		if _, err := owner.Store.Put(ctx, meta, bytes.NewReader(bytes.Repeat([]byte("x"), 64*1000))); err != nil {
			t.Fatal(err)
		}
		nc, b := openBlobs(ctx, t, ns, quiet())
		done := make(chan error, 1)
		go func() { done <- b.Delete(ctx, name) }()
		time.Sleep(time.Duration(round) * 3 * time.Millisecond)
		nc.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: Delete did not return 30 s after its connection closed", round)
		}
	}
}
