package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"stompbox/internal/apperr"
	"stompbox/internal/store"
	"sync"
	"time"
)

// Replicated files (cluster). The files table travels with the other rows;
// the bytes do not, so a node keeps every blob it writes in a blobReplica
// as well as on its own disk, and fetches from it a blob it lacks.
const (
	// replicaTransferTimeout bounds one Put or Get of a blob: 50 MiB (the
	// default -max-upload) at 1 MB/s, a busy small board or a poor link,
	// takes under a minute; a cluster that has not taken or given it in
	// two is not going to.
	replicaTransferTimeout = 2 * time.Minute

	// replicaDeleteTimeout bounds one Delete: two small messages. It is
	// short because the delete runs under blobMu (see forgetReplicated).
	replicaDeleteTimeout = 5 * time.Second
)

// errFileNotStored refuses an upload the cluster did not take: its bytes
// would live on this node only, and die with it. HTTP 503.
var errFileNotStored = apperr.New(apperr.ErrBusy, "cluster unavailable: file not stored")

// Replica keeps file bytes on several nodes (a cluster); nil on a
// single node. Names are content addresses (the hex SHA-256 of the bytes),
// so a name once stored always means the same bytes. Implementations are
// safe for concurrent use.
type Replica interface {
	// Put stores the file at path under name, once the local file is
	// durable and before the upload is acknowledged. It returns nil only
	// when the cluster holds the bytes. It takes as long for a name
	// already stored as for a new one (the bytes are sent all the same),
	// so that an upload's time does not tell whether someone else
	// uploaded the same bytes.
	Put(ctx context.Context, name string, path string) error

	// Get writes the blob name to dst, for a node that lacks it. An error
	// wraps fs.ErrNotExist when the cluster does not have the blob.
	Get(ctx context.Context, name string, dst io.Writer) error

	// Delete removes the blob name; deleting a blob that is not there is
	// not an error.
	Delete(ctx context.Context, name string) error
}

// replicateLocked puts f's blobs (the file and its thumbnail, those this
// node has) into the replica. The caller holds blobMu; replicateLocked
// pins the blobs, so that no removal takes them, releases blobMu for the
// transfer (other uploads, deletions and sweeps go on meanwhile) and holds
// it again when it returns. Any failure is errFileNotStored.
func (s *Service) replicateLocked(ctx context.Context, f *store.StoredFile) error {
	sums := []string{f.SHA256}
	if f.ThumbSHA256 != "" {
		sums = append(sums, f.ThumbSHA256)
	}
	for _, sum := range sums {
		s.pinned[sum]++
	}
	s.blobMu.Unlock()
	var err error
	for _, sum := range sums {
		path := s.BlobPath(sum)
		if _, serr := os.Stat(path); serr != nil {
			continue // a thumbnail another node made: the replica has it (blobAvailableLocked)
		}
		err = s.transfers.do(ctx, "put "+sum, func(ctx context.Context) error {
			return s.replica.Put(ctx, sum, path)
		})
		if err != nil {
			break
		}
	}
	s.blobMu.Lock()
	for _, sum := range sums {
		if s.pinned[sum]--; s.pinned[sum] <= 0 {
			delete(s.pinned, sum)
		}
	}
	if err != nil {
		return fmt.Errorf("%w (%v)", errFileNotStored, err)
	}
	return nil
}

// fetch gets the blob sum, which this node lacks, from the replica into a
// temporary file, checks its hash, fsyncs it and renames it into place,
// so that later downloads are local. Concurrent fetches of one blob share
// one transfer.
func (s *Service) fetch(ctx context.Context, sum string) error {
	return s.transfers.do(ctx, "get "+sum, func(ctx context.Context) error {
		if _, err := os.Stat(s.BlobPath(sum)); err == nil {
			return nil // an earlier flight placed it
		}
		tmp, err := os.CreateTemp(s.Tmp, "fetch-*")
		if err != nil {
			return fmt.Errorf("fetch %s: %w", sum, err)
		}
		defer func() {
			tmp.Close()
			os.Remove(tmp.Name()) // after the rename there is nothing to remove
		}()
		h := sha256.New()
		if err := s.replica.Get(ctx, sum, io.MultiWriter(tmp, h)); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			return fmt.Errorf("fetch %s: the replica's bytes hash to %s", sum, got)
		}
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("fetch %s: %w", sum, err)
		}
		s.blobMu.Lock()
		defer s.blobMu.Unlock()
		return s.placeBlob(tmp.Name(), sum)
	})
}

// blobAvailableLocked reports whether the blob sum can serve a new file
// row: it is on this disk, or (in a cluster) another row names it, which
// means some node put it into the replica before writing that row. The
// caller holds blobMu, so no removal on this node can take it before the
// caller pins or records it.
func (s *Service) blobAvailableLocked(ctx context.Context, sum string) bool {
	if _, err := os.Stat(s.BlobPath(sum)); err == nil {
		return true
	}
	if s.replica == nil {
		return false
	}
	ref, err := s.st.BlobReferenced(ctx, sum)
	return err == nil && ref
}

// forgetReplicated deletes the blob sum, which no row names any more,
// from the replica; best effort: a failure is logged and leaves an orphan
// object behind. The caller holds blobMu, so an upload of the same bytes
// on this node cannot put them between the decision and the delete; hence
// the short timeout.
func (s *Service) forgetReplicated(ctx context.Context, sum string) {
	if s.replica == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replicaDeleteTimeout)
	defer cancel()
	if err := s.replica.Delete(ctx, sum); err != nil {
		s.log.Error("delete replicated file", "sha256", sum, "err", err)
	}
}

// flightGroup runs at most one call per key at a time: a caller that
// comes while one runs waits for its result instead of starting another
// (the idea of x/sync/singleflight, in the few lines needed here). Safe
// for concurrent use; the zero value is ready.
type flightGroup struct {
	mu      sync.Mutex
	flights map[string]*flight
}

// flight is one call in progress; err is set before done is closed.
type flight struct {
	done    chan struct{}
	err     error
	waiters int // callers waiting for this flight; guarded by flightGroup.mu
}

// do runs fn for key, or waits for the run already in progress, and
// returns its error. fn runs in the first caller's goroutine but not on
// its context: a caller that goes away must not fail the others waiting,
// so fn gets the caller's values, replicaTransferTimeout, and no cancel.
// A waiter whose ctx ends stops waiting with ctx's error.
func (g *flightGroup) do(ctx context.Context, key string, fn func(context.Context) error) error {
	g.mu.Lock()
	if f, ok := g.flights[key]; ok {
		f.waiters++
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if g.flights == nil {
		g.flights = make(map[string]*flight)
	}
	f := &flight{done: make(chan struct{})}
	g.flights[key] = f
	g.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replicaTransferTimeout)
	f.err = fn(fctx)
	cancel()
	g.mu.Lock()
	delete(g.flights, key)
	g.mu.Unlock()
	close(f.done)
	return f.err
}

// waiting is how many callers wait for the flight of key (0 when none runs).
func (g *flightGroup) waiting(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.flights[key]; ok {
		return f.waiters
	}
	return 0
}

// FetchesWaiting is how many callers wait for the fetch of the blob with
// SHA-256 sum from the replica that another caller runs: concurrent
// downloads of a blob this node lacks share one fetch.
func (s *Service) FetchesWaiting(sum string) int { return s.transfers.waiting("get " + sum) }
