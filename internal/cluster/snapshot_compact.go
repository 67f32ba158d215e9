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
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
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
		if have {
			// Older snapshots a compaction failed to delete: they hold
			// what was deleted since, so they go now, not at the next one.
			if err := c.snaps.PruneBelow(qctx, newest.Seq); err != nil {
				c.log.Warn("cluster: deleting older snapshots", "err", err)
			}
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
// the log below it (not past what a running node has applied:
// appliedBound),
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
	qctx, cancel := context.WithTimeout(ctx, compactCheck)
	info, err := c.l.stream.Info(qctx)
	cancel()
	if err != nil {
		return snap, fmt.Errorf("compact the log: %w", err)
	}
	bound := c.appliedBound(ctx, info, seq+1)
	if bound > info.State.FirstSeq {
		if err := c.l.stream.Purge(ctx, jetstream.WithPurgeSequence(bound)); err != nil {
			return snap, fmt.Errorf("compact the log below %d: %w", bound, err)
		}
	}
	// An erase's questions can find the snapshots' stream between leaders
	// ("no responders"): try again for a while, and Check tries again at
	// each pass, so an old snapshot's bytes never wait for the next one.
	if err := retryTransient(ctx, func(ctx context.Context) error { return c.snaps.PruneBelow(ctx, seq) }); err != nil {
		// The log is compacted already; an old snapshot left now is
		// deleted with the next one.
		c.log.Warn("cluster: deleting older snapshots", "err", err)
	}
	if err := c.scrubLocked(ctx); err != nil {
		return snap, err
	}
	c.scrubbed = max(c.scrubbed, bound)
	what := "cluster: snapshot stored and log compacted"
	if bound <= info.State.FirstSeq {
		what = "cluster: snapshot stored; the log is not compacted this time"
	}
	c.log.Info(what, "seq", seq, "bytes", snap.Size, "log_starts_at", max(bound, info.State.FirstSeq),
		"copy_took", copied.Round(time.Millisecond), "took", time.Since(began).Round(time.Millisecond))
	return snap, nil
}

// appliedBound is the highest purge point (the first sequence to keep),
// at most want, that leaves every running node the entries it has not
// applied yet: one past the lowest position the nodes answer on
// appliedSubject (log_applied.go). Every node that keeps the log or
// takes part in JetStream's meta group and is online must answer; when
// one does not (it is starting, or slow, or cut off on its side), the
// log is not purged this time. A node that is offline is not waited for:
// it restores the newest snapshot when it comes back. A node whose
// applier stopped holds nothing back (it restores on restart too).
func (c *Compactor) appliedBound(ctx context.Context, info *jetstream.StreamInfo, want uint64) uint64 {
	online := c.onlineNodes(info)
	got, err := askApplied(ctx, c.l.Js.Conn(), online)
	if err != nil {
		c.log.Warn("cluster: not compacting the log this time: asking how far the nodes applied it", "err", err)
		return 0
	}
	var silent []string
	for _, n := range online {
		if _, ok := got[n]; !ok {
			silent = append(silent, n)
		}
	}
	if len(silent) > 0 {
		c.log.Info("cluster: not compacting the log this time: online nodes did not say how far they applied it", "nodes", silent)
		return 0
	}
	bound := want
	for _, r := range got {
		if !r.Stopped {
			bound = min(bound, r.Applied+1)
		}
	}
	if bound < want {
		c.log.Info("cluster: the log keeps what a node has not applied yet", "snapshot_seq", want-1, "log_starts_at", bound)
	}
	return bound
}

// onlineNodes names the nodes that must answer appliedBound: the log's
// copies that are online and, with the embedded NATS, the online members
// of JetStream's meta group (every node of the cluster is one). With an
// external NATS the servers are not nodes, and every node that answers
// in time counts.
func (c *Compactor) onlineNodes(info *jetstream.StreamInfo) []string {
	ns := c.l.ns
	if ns == nil {
		return nil
	}
	nodes := []string{c.l.node}
	add := func(name string) {
		if name != "" && !slices.Contains(nodes, name) {
			nodes = append(nodes, name)
		}
	}
	if cl := info.Cluster; cl != nil {
		add(cl.Leader)
		for _, r := range cl.Replicas {
			if !r.Offline {
				add(r.Name)
			}
		}
	}
	if jsz, err := ns.Jsz(&natsserver.JSzOptions{}); err == nil && jsz.Meta != nil {
		add(jsz.Meta.Leader)
		for _, r := range jsz.Meta.Replicas {
			if r != nil && !r.Offline {
				add(r.Name)
			}
		}
	}
	return nodes
}
