package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const (
	sqlAppliedSeq    = `SELECT applied_seq FROM cluster_log WHERE id = 1`
	sqlSetAppliedSeq = `INSERT INTO cluster_log (id, applied_seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET applied_seq = excluded.applied_seq`
	// sqlHoldsChat is true when the database holds anything a single node
	// wrote: accounts or messages. Such a database cannot join a cluster's
	// log, which knows nothing of them.
	sqlHoldsChat = `SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM messages)`
)

// AppliedSeq is the last cluster log entry this database applied; 0 for
// none.
func (s *Store) AppliedSeq(ctx context.Context) (uint64, error) {
	var n int64
	err := s.Rdb.QueryRowContext(ctx, sqlAppliedSeq).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("applied log position: %w", err)
	}
	return uint64(n), nil
}

// setAppliedTx records seq as applied, inside the entry's transaction.
func setAppliedTx(ctx context.Context, tx *sql.Tx, seq uint64) error {
	if _, err := tx.ExecContext(ctx, sqlSetAppliedSeq, int64(seq)); err != nil {
		return fmt.Errorf("record log position %d: %w", seq, err)
	}
	return nil
}

// ApplyLogged queues op, entry seq of the cluster log, submitted at clock
// reading at (Unix ms), on the writer without waiting for its commit, so
// that log entries group into shared transactions as local writes do
// while keeping their order. The transaction that applies op also records
// seq as applied (appliedSeq). After a commit op's effects run; then done,
// if not nil, learns the outcome, committed or not, on the writer
// goroutine in log order.
func (s *Store) ApplyLogged(ctx context.Context, seq uint64, op Op, at int64, done func(error)) error {
	e := s.newEnv(at, true)
	return s.enqueue(ctx, &writeReq{
		ctx:    context.Background(),
		queued: time.Now(),
		fn: func(tx *sql.Tx) error {
			e.tx = tx
			if err := op.Apply(e); err != nil {
				return err
			}
			return setAppliedTx(e.ctx, tx, seq)
		},
		onCommit: s.effectsOf(op),
		after:    done,
		done:     make(chan error, 1),
	})
}

// HoldsSingleNodeData reports whether a database that has applied nothing
// from a cluster log already holds accounts or messages.
func (s *Store) HoldsSingleNodeData(ctx context.Context) (bool, error) {
	var b bool
	if err := s.Rdb.QueryRowContext(ctx, sqlHoldsChat).Scan(&b); err != nil {
		return false, fmt.Errorf("check database: %w", err)
	}
	return b, nil
}

// missAfterCatchUp is called when a lookup of an account, session or
// token found nothing. On a cluster node it waits until the node has
// applied the log's newest entries (at most catchUpWait) and returns true:
// the caller looks once more, since someone may just have registered or
// signed in on another node. On a single node it returns false at once.
func (s *Store) missAfterCatchUp(ctx context.Context) bool {
	if s.repl == nil {
		return false
	}
	s.repl.WaitCaughtUp(ctx)
	return true
}
