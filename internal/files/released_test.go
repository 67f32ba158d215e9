package files

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"stompbox/internal/store/storetest"
)

// TestCloseEndsReleasing: Close works off the queued removals while its
// context lasts, then stops after the blob in progress, and no removal
// starts after it; when Close returns, the removing goroutine has ended
// (it used to outlive its node: nothing owned it).
func TestCloseEndsReleasing(t *testing.T) {
	cases := []struct {
		name        string
		holdFirst   bool // the replica's first Delete waits until Close gave up
		wantDeleted []string
	}{
		{name: "queue worked off", wantDeleted: []string{blobName(1), blobName(2), blobName(3)}},
		{name: "context ends first", holdFirst: true, wantDeleted: []string{blobName(1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := &recordingReplica{hold: make(chan struct{}), holding: make(chan struct{}, 1)}
			if !tc.holdFirst {
				close(rep.hold)
			}
			dir := t.TempDir()
			s, err := New(storetest.Open(t, nil), nil, Options{DataDir: dir, Replica: rep})
			if err != nil {
				t.Fatal(err)
			}
			var sums []string
			for i := 1; i <= 3; i++ {
				sum := blobName(i)
				if err := os.MkdirAll(filepath.Dir(s.BlobPath(sum)), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(s.BlobPath(sum), []byte("bytes"), 0o600); err != nil {
					t.Fatal(err)
				}
				sums = append(sums, sum)
			}
			s.released(sums)
			ctx, cancel := context.WithCancel(context.Background())
			closed := make(chan struct{})
			if tc.holdFirst {
				<-rep.holding // the first Delete is in progress
				cancel()      // Close gives up waiting at once
				go func() { s.Close(ctx); close(closed) }()
				// Close gave up, and waits for the blob in progress, whose
				// Delete ends here (in life: by its replicaDeleteTimeout).
				for deadline := time.Now().Add(time.Minute); !s.stopReleasing(); time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("Close did not give up when its context ended")
					}
				}
				close(rep.hold)
			} else {
				go func() { s.Close(ctx); close(closed) }()
			}
			<-closed
			cancel()
			s.released([]string{blobName(4)})
			s.releasedMu.Lock()
			started := s.releasing
			s.releasedMu.Unlock()
			if started {
				t.Error("a removal started after Close")
			}
			if got := rep.names(); !slices.Equal(got, tc.wantDeleted) {
				t.Errorf("deleted from the replica: %v, want %v", got, tc.wantDeleted)
			}
		})
	}
}

func blobName(i int) string { return fmt.Sprintf("%064x", i) }

// recordingReplica is a Replica that records its deletions; the first
// waits for hold (and says on holding that it waits).
type recordingReplica struct {
	hold    chan struct{}
	holding chan struct{}
	mu      sync.Mutex
	deleted []string
}

func (r *recordingReplica) Put(context.Context, string, string) error    { return nil }
func (r *recordingReplica) Get(context.Context, string, io.Writer) error { return os.ErrNotExist }
func (r *recordingReplica) Delete(_ context.Context, name string) error {
	select {
	case r.holding <- struct{}{}:
	default:
	}
	<-r.hold
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = append(r.deleted, name)
	return nil
}

func (r *recordingReplica) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.deleted)
}
