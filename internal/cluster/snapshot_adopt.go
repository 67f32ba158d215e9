package cluster

// snapshot_adopt.go: a single node's database becomes a cluster's first
// snapshot, and the log's entries are checked to follow each other.

import (
	"context"
	"errors"
	"fmt"
	"stompbox/internal/store"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// adoptingSubject is where a node that may bring its data into the
// cluster (AnnounceAdoption) answers the empty nodes that ask, before
// they decide that there is no snapshot to restore (WaitForAdoption).
const adoptingSubject = "stompbox.cluster.adopting"

// adoptionAsk bounds one question on adoptingSubject.
const adoptionAsk = time.Second

// AnnounceAdoption answers on adoptingSubject until stop is called: this
// node holds data that may become the cluster's first snapshot.
func AnnounceAdoption(cc *Conn) (stop func(), err error) {
	sub, err := cc.Nc.Subscribe(adoptingSubject, func(m *nats.Msg) { m.Respond([]byte(cc.Node)) })
	if err != nil {
		return nil, fmt.Errorf("cluster: announce adoption: %w", err)
	}
	return func() { sub.Unsubscribe() }, nil
}

// WaitForAdoption asks whether a node is bringing its data into the
// cluster; if one answers, it waits until that node's snapshot is stored
// (or ctx ends) and returns true. An empty node asks it when the log is
// empty and no snapshot is stored, so that it restores the adopted data
// instead of starting to apply an empty log.
func (s *Snapshots) WaitForAdoption(ctx context.Context, cc *Conn) (bool, error) {
	actx, cancel := context.WithTimeout(ctx, adoptionAsk)
	msg, err := cc.Nc.RequestWithContext(actx, adoptingSubject, nil)
	cancel()
	if err != nil {
		return false, nil // nobody adopting (no responders, or no answer)
	}
	for {
		if _, have, err := s.Newest(ctx); err != nil || have {
			return have, err
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("cluster: waiting for %s to bring its data in: %w", msg.Data, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// AdoptedSeq is the log position of an adopted single node's database:
// the log starts after it, so that a node which began applying an empty
// log before the adoption sees the gap (checkFollows) instead of applying
// later entries to an empty database.
const AdoptedSeq = 1

// ErrNotAdoptable refuses to adopt a database into a cluster whose log
// or snapshots already hold something.
var ErrNotAdoptable = errors.New("cluster: this data folder holds a single node's accounts or messages, and the cluster already has data of its own; only a cluster whose log is empty can adopt a single node (see README, From one node to a cluster)")

// Adopt makes the database copy at path (store.Store.SnapshotTo or a
// backup) the cluster's first snapshot, at seq (AdoptedSeq for 0: a
// single node's database), and starts the log after it. The log must be
// empty and no snapshot stored. It returns the snapshot's position.
func (l *Log) Adopt(ctx context.Context, snaps *Snapshots, path string, seq uint64) (uint64, error) {
	seq = max(seq, AdoptedSeq)
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("adopt: %w", err)
	}
	if info.State.LastSeq > 0 {
		return 0, ErrNotAdoptable
	}
	if _, have, err := snaps.Newest(ctx); err != nil || have {
		return 0, errors.Join(ErrNotAdoptable, err)
	}
	if err := store.SetFileAppliedSeq(ctx, path, seq); err != nil {
		return 0, err
	}
	if _, err := snaps.Put(ctx, seq, path, l.node); err != nil {
		return 0, err
	}
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSequence(seq+1)); err != nil {
		return 0, fmt.Errorf("adopt: start the log after the snapshot: %w", err)
	}
	l.Applied.Store(seq)
	return seq, nil
}

// errLogGap stops the applier: entries this node never applied were
// compacted away before its reader got them. Applying what follows would
// make its database differ from the others'; a restart restores the
// newest snapshot (RestorePlan) and goes on from there.
var errLogGap = errors.New("log entries this node never applied were compacted away; restart the node: it restores the newest snapshot")

// checkFollows returns errLogGap unless entry seq is the one after the
// last one handed to the writer (or applied); skip is true for an entry
// already handed to it (a reader that restarted behind).
func (l *Log) checkFollows(seq uint64) (skip bool, err error) {
	prev := max(l.queued.Load(), l.Applied.Load())
	switch {
	case seq <= prev:
		return true, nil
	case seq != prev+1:
		return false, fmt.Errorf("entry %d after %d: %w", seq, prev, errLogGap)
	}
	l.queued.Store(seq)
	return false, nil
}

// checkStart returns errLogGap when the log, whose first entry is first,
// no longer holds the entry after from, where this node would start: it
// was compacted (or the log started after an adopted snapshot) since the
// node decided not to restore one.
func checkStart(from, first uint64) error {
	if first > from+1 {
		return fmt.Errorf("cluster log: this node stands at %d, the log starts at %d: %w", from, first, errLogGap)
	}
	return nil
}
