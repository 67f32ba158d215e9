package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"time"
)

// scrub.go: deletion that deletes (issue 22). What a person deletes, or
// what retention removes, must leave every file of the data folder, not
// merely stop being shown:
//
//   - every connection runs with secure_delete, so SQLite zeroes the
//     space a deleted or replaced row leaves in the database file
//     (storeDSN);
//   - the full-text index runs with FTS5's secure-delete, so a deleted
//     message's words leave the index's segments at once rather than at
//     the next merge (scrubIndex);
//   - a transaction that deleted or replaced text is followed, before its
//     senders are answered, by a TRUNCATE checkpoint, so the text leaves
//     the -wal file too (afterCommit); when readers keep the checkpoint
//     from finishing, it is retried within scrubRetryAfter;
//   - the blobs whose file rows a transaction deleted are handed to the
//     file service (OnBlobsReleased) on every node that applies it, so
//     the bytes leave each node's disk as the deletion is applied, not at
//     the daily sweep.

const (
	// scrubBusyTimeoutMS is how long the checkpoint after a deletion
	// waits for readers on an older snapshot: the writer waits meanwhile,
	// so it is short; a checkpoint that did not finish is retried.
	scrubBusyTimeoutMS = 200

	// scrubRetryAfter bounds how long deleted text may stay in the -wal
	// file when readers (a backup's long read) kept the checkpoint right
	// after the deletion from finishing.
	scrubRetryAfter = 10 * time.Second
)

const (
	sqlFTSSecureDeleteGet = `SELECT coalesce((SELECT v FROM messages_fts_config WHERE k = 'secure-delete'), 0)`
	sqlFTSSecureDeleteSet = `INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', ?)`
	sqlFTSOptimize        = `INSERT INTO messages_fts (messages_fts) VALUES ('optimize')`
)

// scrubIndex sets the full-text index's secure-delete option (kept in the
// database) to secure. The first time it turns on, the index is merged
// into one segment, so that the words of messages deleted before this
// version leave it too (secure_delete zeroes the pages the merge frees).
func (s *Store) scrubIndex(ctx context.Context, secure bool) error {
	var on int
	if err := s.wdb.QueryRowContext(ctx, sqlFTSSecureDeleteGet).Scan(&on); err != nil {
		return fmt.Errorf("full-text secure-delete: %w", err)
	}
	if (on != 0) == secure {
		return nil
	}
	want := 0
	if secure {
		want = 1
	}
	if _, err := s.wdb.ExecContext(ctx, sqlFTSSecureDeleteSet, want); err != nil {
		return fmt.Errorf("full-text secure-delete: %w", err)
	}
	if secure {
		if _, err := s.wdb.ExecContext(ctx, sqlFTSOptimize); err != nil {
			return fmt.Errorf("full-text optimize: %w", err)
		}
		s.log.Info("full-text index: secure-delete on; index merged")
	}
	return nil
}

// scrubbed records that the running transaction deleted or replaced text
// (and the blobs whose rows it deleted), so that afterCommit checkpoints
// and releases them. Writer goroutine only.
func (s *Store) scrubbed(blobs ...string) {
	s.txScrub = true
	for _, b := range blobs {
		if b != "" {
			s.txReleased = append(s.txReleased, b)
		}
	}
}

// OnBlobsReleased adds fn, which from now on learns, after each commit
// and on the writer goroutine, the blobs (files and thumbnails) whose file
// rows the transaction deleted, whether the op ran here or came from the
// cluster log. fn must be quick and must not write to the store; another
// row may still name a blob (the file service checks). A server adds one
// (its file service); tests that run several file services over one store
// add one each.
func (s *Store) OnBlobsReleased(fn func(blobs []string)) {
	s.releasedMu.Lock()
	defer s.releasedMu.Unlock()
	var fns []func([]string)
	if p := s.released.Load(); p != nil {
		fns = slices.Clone(*p)
	}
	fns = append(fns, fn)
	s.released.Store(&fns)
}

// afterCommit runs on the writer goroutine after each committed
// transaction, before its senders are answered: after a deletion it
// checkpoints the WAL away and releases the deleted files' blobs.
func (s *Store) afterCommit() {
	if !s.txScrub {
		return
	}
	if !s.noScrub {
		s.scrubCheckpoint()
	}
	if len(s.txReleased) > 0 {
		if fns := s.released.Load(); fns != nil {
			for _, fn := range *fns {
				fn(slices.Clone(s.txReleased))
			}
		}
	}
}

// scrubCheckpoint copies the WAL into the database and truncates it, so
// that text a transaction deleted is in neither file. It waits for readers
// at most scrubBusyTimeoutMS; if they kept it from finishing, it asks for
// another try later. Writer goroutine only (it uses the writer's one
// connection between transactions).
func (s *Store) scrubCheckpoint() {
	ctx := context.Background()
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		s.log.Warn("checkpoint after deletion", "err", err)
		s.retryScrubLater()
		return
	}
	defer conn.Close()
	var busy, logFrames, done int
	_, err = conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", scrubBusyTimeoutMS))
	if err == nil {
		err = conn.QueryRowContext(ctx, sqlCheckpointTruncate).Scan(&busy, &logFrames, &done)
	}
	if _, rerr := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", storeBusyTimeoutMS)); err == nil {
		err = rerr
	}
	if err != nil || busy != 0 {
		s.log.Info("checkpoint after deletion incomplete; retrying", "err", err, "wal_frames", logFrames, "checkpointed", done)
		s.retryScrubLater()
	}
}

// retryScrubLater queues, after scrubRetryAfter, an empty write that
// checkpoints again (one pending retry at a time).
func (s *Store) retryScrubLater() {
	if !s.scrubRetry.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(scrubRetryAfter, func() {
		s.scrubRetry.Store(false)
		s.enqueue(context.Background(), &writeReq{
			ctx:    context.Background(),
			queued: time.Now(),
			fn:     func(*sql.Tx) error { s.scrubbed(); return nil },
			done:   make(chan error, 1),
		})
	})
}

// ownerOnly makes the database file at path, and its -wal and -shm
// companions where they exist, readable by the owner alone, whatever mode
// they were created with before (issue 22).
func ownerOnly(path string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}
