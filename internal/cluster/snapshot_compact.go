package cluster

// snapshot_compact.go: when snapshots are taken and the log compacted.
// One node compacts at a time: the log stream's leader (with -nats, where
// the leader is a NATS server and not a node, each node on its own
// schedule, which is safe: a node deletes only snapshots older than its
// own and purges only below its own). Every node scrubs its database
// after the log's start moved, so a deleted message's text leaves its
// disk too.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Compaction defaults: a snapshot every DefaultSnapshotEvery entries, and
// at least every DefaultSnapshotInterval while anything was written, so
// that a deleted text leaves the log within the hour.
const (
	DefaultSnapshotEvery    = 50000
	DefaultSnapshotInterval = time.Hour
	// compactCheck is how often a node looks whether a compaction is due
	// (and whether the log's start moved, for its scrub).
	compactCheck = 30 * time.Second
)

// Compactor takes snapshots and compacts the log below them.
type Compactor struct {
	l        *Log
	snaps    *Snapshots
	every    uint64
	interval time.Duration
	log      *slog.Logger

	mu       sync.Mutex // one compaction at a time on this node
	scrubbed uint64     // the log's first sequence when this node last scrubbed
	again    bool       // compact the raft logs once more at the next check
	started  time.Time  // when it was made: the first snapshot is due an interval later
}

// NewCompactor makes the compactor of l; every and interval of 0 mean
// the defaults.
func NewCompactor(l *Log, snaps *Snapshots, every uint64, interval time.Duration) *Compactor {
	if every == 0 {
		every = DefaultSnapshotEvery
	}
	if interval <= 0 {
		interval = DefaultSnapshotInterval
	}
	return &Compactor{l: l, snaps: snaps, every: every, interval: interval, log: l.log, started: time.Now()}
}

// Run checks every compactCheck (or interval, if shorter) whether a
// compaction is due, until ctx ends.
func (c *Compactor) Run(ctx context.Context) {
	if info, err := c.l.stream.Info(ctx); err == nil {
		c.mu.Lock()
		c.scrubbed = max(c.scrubbed, info.State.FirstSeq)
		c.mu.Unlock()
	}
	t := time.NewTicker(min(compactCheck, c.interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.Check(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("cluster: compaction", "err", err)
		}
	}
}

// Check compacts when this node is the one to and a compaction is due,
// and scrubs this node's database when the log's start moved.
func (c *Compactor) Check(ctx context.Context) error {
	// The questions are bounded (a stream without a leader answers none);
	// the compaction itself is not: a large snapshot takes its time.
	qctx, cancel := context.WithTimeout(ctx, compactCheck)
	defer cancel()
	info, err := c.l.stream.Info(qctx)
	if err != nil {
		return err
	}
	if c.compactsHere(info) {
		newest, have, err := c.snaps.Newest(qctx)
		if err != nil {
			return err
		}
		if !have {
			newest.At = c.started // the first snapshot: an interval after the start
		}
		applied := c.l.Applied.Load()
		due := applied >= newest.Seq+c.every || applied > newest.Seq && time.Since(newest.At) >= c.interval
		if due {
			if _, err := c.Compact(ctx); err != nil {
				return err
			}
			return nil // Compact scrubbed
		}
	}
	return c.scrubIfMoved(ctx, info.State.FirstSeq)
}

// compactsHere reports whether this node takes the snapshots.
func (c *Compactor) compactsHere(info *jetstream.StreamInfo) bool {
	if c.l.ns == nil || info.Cluster == nil || info.Cluster.Leader == "" {
		return true
	}
	return info.Cluster.Leader == c.l.ns.Name()
}

// scrubIfMoved scrubs once the log's first sequence moved past what it
// was at the last scrub, and compacts the raft logs once more at the
// check after (a purge this node applied late).
func (c *Compactor) scrubIfMoved(ctx context.Context, first uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if first <= c.scrubbed {
		if c.again {
			c.again = false
			return c.compactRaft()
		}
		return nil
	}
	if err := c.scrubLocked(ctx); err != nil {
		return err
	}
	c.scrubbed = first
	return nil
}

// Scrub makes what the last compaction removed gone from this node's
// disk: the database's free pages and WAL (store.Store.Scrub) and the
// raft logs' entries (compactRaft).
func (c *Compactor) Scrub(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scrubLocked(ctx)
}

func (c *Compactor) scrubLocked(ctx context.Context) error {
	began := time.Now()
	if err := c.l.st.Scrub(ctx); err != nil {
		return err
	}
	if err := c.compactRaft(); err != nil {
		return err
	}
	c.again = true
	c.log.Info("cluster: scrubbed the database and the raft logs after a compaction", "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// Compact takes a snapshot of this node's database now, stores it, purges
// the log below it (not past what a running node's reader was handed),
// deletes the older snapshots and scrubs this node's database. It returns
// the stored snapshot.
func (c *Compactor) Compact(ctx context.Context) (Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	began := time.Now()
	tmp, err := snapshotTemp(filepath.Dir(c.l.st.Path), "snapshot")
	if err != nil {
		return Snapshot{}, err
	}
	defer os.Remove(tmp)
	seq, err := c.l.st.SnapshotTo(ctx, tmp)
	if err != nil {
		return Snapshot{}, err
	}
	copied := time.Since(began)
	snap, err := c.snaps.Put(ctx, seq, tmp, c.l.node)
	if err != nil {
		return Snapshot{}, err
	}
	bound, err := c.readersBound(ctx, seq+1)
	if err != nil {
		return snap, err
	}
	if bound > 1 {
		if err := c.l.stream.Purge(ctx, jetstream.WithPurgeSequence(bound)); err != nil {
			return snap, fmt.Errorf("compact the log below %d: %w", bound, err)
		}
	}
	if err := c.snaps.PruneBelow(ctx, seq); err != nil {
		// The log is compacted already; an old snapshot left now is
		// deleted with the next one.
		c.log.Warn("cluster: deleting older snapshots", "err", err)
	}
	if err := c.scrubLocked(ctx); err != nil {
		return snap, err
	}
	c.scrubbed = bound
	c.log.Info("cluster: snapshot stored and log compacted", "seq", seq, "bytes", snap.Size, "log_starts_at", bound,
		"copy_took", copied.Round(time.Millisecond), "took", time.Since(began).Round(time.Millisecond))
	return snap, nil
}

// readersBound is the highest purge point (the first sequence to keep),
// at most want, that leaves every running node's log reader what it was
// not yet handed: the lowest next-to-deliver position of the log's
// consumers. A node without a reader (stopped) restores a snapshot when
// it comes back.
func (c *Compactor) readersBound(ctx context.Context, want uint64) (uint64, error) {
	bound := want
	lister := c.l.stream.ListConsumers(ctx)
	for ci := range lister.Info() {
		next := ci.Delivered.Stream + 1
		if ci.Delivered.Stream == 0 && ci.Config.OptStartSeq > 0 {
			next = ci.Config.OptStartSeq
		}
		bound = min(bound, next)
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return 0, fmt.Errorf("compaction: the log's readers: %w", err)
	}
	return bound, nil
}
