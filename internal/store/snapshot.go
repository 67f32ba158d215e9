package store

// snapshot.go: the database as a cluster snapshot. A snapshot is a
// consistent copy of the database (VACUUM INTO, one read transaction)
// that records, in its own cluster_log row, the log position it stands
// at: the copy and its position can never disagree, since applying an
// entry and recording its position are one transaction. A node that
// restores a snapshot applies the log from that position + 1. The same
// copy is what `stompbox backup` writes, so a backup of a cluster node is
// also a snapshot a cluster can be restored from.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"
)

const (
	sqlInCluster = `SELECT EXISTS (SELECT 1 FROM cluster_log WHERE id = 1)`
	// sqlScrubWAL moves the WAL into the database and truncates it: the
	// old page images it held (a deleted message's text among them) are
	// gone from the disk, not only unreachable.
	sqlScrubWAL = `PRAGMA wal_checkpoint(TRUNCATE)`
)

// SnapshotTo writes a consistent copy of the database to path (which must
// not exist) and returns the cluster log position the copy stands at: the
// position recorded in the copy itself, 0 for a database that never
// applied a log entry. Writes go on meanwhile (WAL): the copy is one read
// transaction.
func (s *Store) SnapshotTo(ctx context.Context, path string) (uint64, error) {
	if err := s.Backup(ctx, path); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	seq, _, err := FileAppliedSeq(ctx, path)
	if err != nil {
		os.Remove(path)
		return 0, err
	}
	return seq, nil
}

// FileAppliedSeq reads the log position recorded in a database file (a
// snapshot or a backup), and whether it records one at all (a single
// node's database does not).
func FileAppliedSeq(ctx context.Context, path string) (seq uint64, recorded bool, err error) {
	if _, err := os.Stat(path); err != nil {
		return 0, false, fmt.Errorf("snapshot position: %w", err)
	}
	db, err := sql.Open("sqlite", storeDSN(path, defaultSynchronous, roleReader))
	if err != nil {
		return 0, false, fmt.Errorf("snapshot position: %w", err)
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, sqlAppliedSeq).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("snapshot position of %s: %w", path, err)
	}
	return uint64(n), true, nil
}

// SetFileAppliedSeq records seq as the log position of the database file
// at path (a copy, not an open store's file): a single node's database
// adopted as a cluster's first snapshot stands at the position the log
// starts after.
func SetFileAppliedSeq(ctx context.Context, path string, seq uint64) error {
	db, err := sql.Open("sqlite", storeDSN(path, defaultSynchronous, roleWriter))
	if err != nil {
		return fmt.Errorf("set snapshot position: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, sqlSetAppliedSeq, int64(seq)); err != nil {
		return fmt.Errorf("set snapshot position of %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, sqlScrubWAL); err != nil {
		return fmt.Errorf("set snapshot position of %s: %w", path, err)
	}
	return nil
}

// InCluster reports whether the database records a cluster log position:
// it is a cluster node's copy (possibly at position 0), not a single
// node's database.
func (s *Store) InCluster(ctx context.Context) (bool, error) {
	var b bool
	if err := s.Rdb.QueryRowContext(ctx, sqlInCluster).Scan(&b); err != nil {
		return false, fmt.Errorf("check database: %w", err)
	}
	return b, nil
}

// MarkInCluster records seq as the applied position, through the writer,
// when the database has none yet: a single node adopted as a cluster's
// first node stands at the position of the snapshot it published.
func (s *Store) MarkInCluster(ctx context.Context, seq uint64) error {
	r := &writeReq{
		ctx:    ctx,
		queued: time.Now(),
		fn:     func(tx *sql.Tx) error { return setAppliedTx(ctx, tx, seq) },
		done:   make(chan error, 1),
	}
	if err := s.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Scrub makes what a compaction removed gone from this database's files
// too. Deletes already zero what they free (secure_delete, and FTS5's
// secure-delete for the search index: scrub.go) and are followed by a
// TRUNCATE checkpoint; this one is the cluster's own after a compaction,
// retried while readers keep the WAL from truncating, so that no old
// page image is left in the -wal file either.
func (s *Store) Scrub(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		var busy, frames, done int
		if err := s.wdb.QueryRowContext(ctx, sqlScrubWAL).Scan(&busy, &frames, &done); err != nil {
			return fmt.Errorf("scrub: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if attempt == scrubAttempts {
			return fmt.Errorf("scrub: the WAL could not be truncated: readers kept it (%d frames)", frames)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(scrubRetry):
		}
	}
}

// How often, and how far apart, Scrub tries to truncate the WAL.
const (
	scrubAttempts = 20
	scrubRetry    = 100 * time.Millisecond
)
