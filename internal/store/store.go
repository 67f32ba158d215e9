package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"stompbox/internal/latency"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)
)

// Store defaults. Each is overridable through storeOptions where it says so.
const (
	StoreFileName = "stompbox.db" // the one SQLite file inside the data folder

	// storeBusyTimeoutMS lets a connection wait for another process (the
	// user CLI, a backup) instead of failing at once with SQLITE_BUSY.
	storeBusyTimeoutMS = 5000

	// defaultSynchronous is FULL: a RECEIPT promises the message survives a
	// power cut, which on a Raspberry Pi SD card is the common failure.
	defaultSynchronous = "FULL"

	// defaultReadConns bounds the read pool. SQLite readers in WAL mode do
	// not block the writer, but each holds a page cache; a few suffice for
	// a small server with 2–4 cores.
	defaultReadConns = 4

	// defaultMaxBatch bounds one group commit. Larger batches amortise the
	// fsync further but make every sender in the batch wait for the
	// slowest statement; 256 chat inserts take well under a millisecond.
	defaultMaxBatch = 256

	// writeQueueLen is how many write requests may wait for the writer
	// before senders block. Senders are bounded by connections anyway.
	writeQueueLen = 1024

	// StorePageSize is the row count read into memory at a time by long
	// scans (export), so no Rows stays open while a client is written to.
	StorePageSize = 1000
)

// ErrStoreClosed is returned by writes submitted after Close began.
var ErrStoreClosed = errors.New("store closed")

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options configures openStore. The zero value is the production setup.
type Options struct {
	Synchronous string           // OFF, NORMAL, FULL or EXTRA; "" means FULL
	ReadConns   int              // read pool size; 0 means defaultReadConns
	MaxBatch    int              // most writes per transaction; 1 turns group commit off; 0 means defaultMaxBatch
	Now         func() time.Time // clock for created_at and expiries; nil means time.Now
	Log         *slog.Logger     // nil means discard

	// insecureDelete turns secure_delete, the full-text index's
	// secure-delete and the checkpoint after deletions off, as before
	// issue 22: only BenchmarkStoreDelete sets it, to measure their cost
	// against the production setting.
	insecureDelete bool

	// CloseCheckpoint is the wal_checkpoint mode Close runs: "" means
	// TRUNCATE (the server: leave one tidy file behind). The CLI passes
	// checkpointPassive, which never waits for a running server's readers.
	CloseCheckpoint string
}

// Checkpoint modes for storeOptions.CloseCheckpoint.
const (
	checkpointTruncate = "TRUNCATE"
	CheckpointPassive  = "PASSIVE"
)

// Checkpoint statements, one per mode (PRAGMA takes no bound parameters).
const (
	sqlCheckpointTruncate = `PRAGMA wal_checkpoint(TRUNCATE)`
	sqlCheckpointPassive  = `PRAGMA wal_checkpoint(PASSIVE)`
)

// Store is the SQLite database: one file, one writer goroutine, a read pool.
//
// Writes go through write, which hands a function to the writer goroutine.
// The writer owns the only write connection and runs queued functions in
// groups, one transaction (one fsync) per group, so many concurrent senders
// share a commit; each sender still gets its own result. Reads use rdb
// directly, from any goroutine. Close drains the writer, then checkpoints.
type Store struct {
	Path       string
	syncMode   string  // the synchronous pragma every connection gets
	checkpoint string  // mode of the checkpoint at Close
	wdb        *sql.DB // one connection, used by migrations at open and then only by the writer goroutine
	Rdb        *sql.DB // read pool, query_only; safe for concurrent use
	Now        func() time.Time
	log        *slog.Logger

	maxBatch   int
	writes     chan *writeReq // to the writer; never closed (senders select on quit instead)
	quit       chan struct{}  // closed by Close: the writer drains writes and exits
	writerDone chan struct{}  // closed by the writer goroutine when it has exited

	// Prepared statements for hot paths: parsing SQL on every call cost
	// about a third of a chat send's CPU.
	insertMessage      *sql.Stmt // on wdb: every chat send
	stmtPostAccess     *sql.Stmt // sqlPostAccess on wdb: a chat send that sqlInsertAsMember did not store
	stmtInsertAsMember *sql.Stmt // sqlInsertAsMember on wdb: every chat send tries it first
	stmtIndex          *sql.Stmt // sqlIndexMessages on wdb: every transaction that stored a message
	stmtRoomAccess     *sql.Stmt // sqlRoomAccess on rdb: subscriptions (CanRead), history, room operations

	// Writer-goroutine state: only write functions (run by the writer)
	// and runTx touch these.
	txFirstMessageID int64                   // first message id inserted by the running transaction, 0 if none
	txMessages       int64                   // messages inserted by the running transaction, for statMessages
	txBound          map[*sql.Stmt]*sql.Stmt // prepared statements bound to the running transaction
	txScrub          bool                    // the running transaction deleted or replaced text: checkpoint after it (scrub.go)
	txReleased       []string                // blobs whose file rows the running transaction deleted (scrub.go)
	noScrub          bool                    // Options.insecureDelete: no checkpoint after deletions (the benchmark's baseline)

	// released learn the blobs each committed transaction stopped naming
	// (OnBlobsReleased); called on the writer goroutine. Copied on write
	// under releasedMu.
	released   atomic.Pointer[[]func([]string)]
	releasedMu sync.Mutex
	// scrubRetry is set while a checkpoint that readers kept from
	// finishing waits to be retried (scrub.go).
	scrubRetry atomic.Bool
	// space, when set, refuses ops that would grow the database on a
	// disk below its floors (space.go).
	space atomic.Pointer[SpaceCheck]

	// Counters for Stats, written by the writer goroutine.
	statTxs      atomic.Int64 // transactions committed
	statWrites   atomic.Int64 // write requests committed
	statTxNanos  atomic.Int64 // time spent from BEGIN to COMMIT returning (includes fsync)
	statRetried  atomic.Int64 // groups rolled back and retried one by one
	statMessages atomic.Int64 // chat messages in committed transactions
	// Latency histograms, added to by the writer one batch at a time under
	// statMu and copied by Stats. They tell a slow disk (commits) from a
	// busy writer (waits) on a Raspberry Pi's SD card or in a load run.
	statMu     sync.Mutex
	statCommit latency.Hist // each committed transaction, BEGIN to COMMIT returned, fsync included
	statWait   latency.Hist // each request, from write() to its commit's end: what a sender waits

	// repl, when set (a cluster node), carries every op through the
	// replicated log instead of writing directly (ops.go). Set once
	// at wiring, before any write.
	repl Replicator
	// fx runs after each op commits, so that a change made here or on
	// another node reaches this node's clients (setEffects). Set once at
	// wiring.
	fx Effects

	closeOnce sync.Once
	closeErr  error
}

// WriterStats are cumulative writer counters, for benchmarks, the admin
// statistics and the metrics.
type WriterStats struct {
	Transactions int64         // committed write transactions
	Writes       int64         // write requests they held (Writes/Transactions is the mean group size)
	TxTime       time.Duration // total time in those transactions, fsync included
	Retried      int64         // groups that failed and were retried request by request
	Messages     int64         // chat messages (posts, joins, leaves) those transactions stored
	Commit       latency.Hist  // committed transactions, BEGIN to COMMIT returned
	Wait         latency.Hist  // committed requests, from write() until their commit returned
}

// Stats returns the writer counters. Safe for concurrent use.
func (s *Store) Stats() *WriterStats {
	st := &WriterStats{
		Transactions: s.statTxs.Load(),
		Writes:       s.statWrites.Load(),
		TxTime:       time.Duration(s.statTxNanos.Load()),
		Retried:      s.statRetried.Load(),
		Messages:     s.statMessages.Load(),
	}
	s.statMu.Lock()
	st.Commit, st.Wait = s.statCommit, s.statWait
	s.statMu.Unlock()
	return st
}

// writeReq is one unit of work for the writer goroutine.
type writeReq struct {
	ctx      context.Context // a request whose ctx has ended before it runs is skipped
	queued   time.Time       // when write() was called
	fn       func(*sql.Tx) error
	onCommit func()      // run by the writer, in commit order, after a successful commit; may be nil
	after    func(error) // run by the writer with the outcome, committed or not, in order; may be nil (internal/cluster/log.go)
	done     chan error  // buffered(1); receives the commit result
}

// storeDSN builds the modernc DSN for path. Every per-connection pragma is
// in the DSN, busy_timeout first, so every pooled connection gets them when
// database/sql opens it, not just the one a later Exec happened to use
// (mattn/go-sqlite3#255). _txlock=immediate makes the writer's BEGIN take
// the write lock at once: a deferred transaction that later needs to write
// can fail with SQLITE_BUSY without waiting when another process writes.
// connRole says what a connection is for; it picks the pragmas beyond the
// common ones.
type connRole int

const (
	roleWriter connRole = iota // _txlock=immediate
	roleReader                 // query_only: a bug in a read path cannot write
	roleBackup                 // VACUUM INTO writes another file, which query_only forbids
)

func storeDSN(path, synchronous string, role connRole) string {
	return storeDSNDelete(path, synchronous, role, true)
}

// storeDSNDelete is storeDSN with secure_delete chosen: only the store's
// benchmark turns it off, to measure what it costs.
func storeDSNDelete(path, synchronous string, role connRole, secureDelete bool) string {
	q := []string{
		"_pragma=" + url.QueryEscape(fmt.Sprintf("busy_timeout(%d)", storeBusyTimeoutMS)),
		"_pragma=" + url.QueryEscape("journal_mode(WAL)"),
		"_pragma=" + url.QueryEscape("foreign_keys(1)"),
		"_pragma=" + url.QueryEscape("synchronous("+synchronous+")"),
	}
	if secureDelete {
		// Every connection zeroes what it frees (scrub.go): deleted text
		// must not stay readable in free pages.
		q = append(q, "_pragma="+url.QueryEscape("secure_delete(1)"))
	}
	switch role {
	case roleWriter:
		q = append(q, "_txlock=immediate")
	case roleReader:
		q = append(q, "_pragma="+url.QueryEscape("query_only(1)"))
	}
	return path + "?" + strings.Join(q, "&")
}

// OpenDir opens (creating if needed) the store in dataDir.
func OpenDir(ctx context.Context, dataDir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// MkdirAll keeps the mode of a folder that existed: make it the
	// owner's alone whatever it was (issue 22).
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return Open(ctx, filepath.Join(dataDir, StoreFileName), opts)
}

// Open opens the SQLite file at path, runs pending migrations and
// starts the writer goroutine. The caller owns the store and must Close it.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open store: path %q contains '?'", path)
	}
	syncMode := strings.ToUpper(opts.Synchronous)
	if syncMode == "" {
		syncMode = defaultSynchronous
	}
	if !slices.Contains([]string{"OFF", "NORMAL", "FULL", "EXTRA"}, syncMode) {
		return nil, fmt.Errorf("open store: bad synchronous mode %q", opts.Synchronous)
	}
	s := &Store{
		Path:       path,
		syncMode:   syncMode,
		checkpoint: checkpointTruncate,
		Now:        opts.Now,
		log:        opts.Log,
		maxBatch:   opts.MaxBatch,
		writes:     make(chan *writeReq, writeQueueLen),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		txBound:    make(map[*sql.Stmt]*sql.Stmt),
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBatch <= 0 {
		s.maxBatch = defaultMaxBatch
	}
	switch opts.CloseCheckpoint {
	case "":
	case checkpointTruncate, CheckpointPassive:
		s.checkpoint = opts.CloseCheckpoint
	default:
		return nil, fmt.Errorf("open store: bad checkpoint mode %q", opts.CloseCheckpoint)
	}
	readConns := opts.ReadConns
	if readConns <= 0 {
		readConns = max(defaultReadConns, runtime.GOMAXPROCS(0))
	}

	var err error
	secure := !opts.insecureDelete
	s.noScrub = opts.insecureDelete
	if err := ownerOnly(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if s.wdb, err = sql.Open("sqlite", storeDSNDelete(path, syncMode, roleWriter, secure)); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.scrubIndex(ctx, secure); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := ownerOnly(path); err != nil { // the -wal and -shm files exist now
		s.wdb.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	for _, p := range s.writerStmts() {
		if *p.stmt, err = s.wdb.PrepareContext(ctx, p.sql); err != nil {
			s.wdb.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	// The read pool opens after migrations so its first connection never
	// races the WAL switch of a brand-new file.
	if s.Rdb, err = sql.Open("sqlite", storeDSNDelete(path, syncMode, roleReader, secure)); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.Rdb.SetMaxOpenConns(readConns)
	s.Rdb.SetMaxIdleConns(readConns)
	if s.stmtRoomAccess, err = s.Rdb.PrepareContext(ctx, sqlRoomAccess); err != nil {
		s.Rdb.Close()
		s.wdb.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	go s.runWriter()
	return s, nil
}

// writerStmt is one of the writer's prepared statements and its SQL.
type writerStmt struct {
	stmt **sql.Stmt
	sql  string
}

// writerStmts lists the writer's prepared statements, for openStore to
// prepare and Close to close.
func (s *Store) writerStmts() []writerStmt {
	return []writerStmt{
		{&s.insertMessage, sqlInsertMessage},
		{&s.stmtPostAccess, sqlPostAccess},
		{&s.stmtInsertAsMember, sqlInsertAsMember},
		{&s.stmtIndex, sqlIndexMessages},
	}
}

// Close stops accepting writes, waits for the writer to commit everything
// already queued, checkpoints the WAL into the main file and truncates it,
// and closes both pools. Callers must have stopped reading. Safe to call
// more than once; later calls return the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.writerDone
		errRoom := s.stmtRoomAccess.Close()
		errRead := s.Rdb.Close() // readers would keep the checkpoint from truncating
		errCheckpoint := s.walCheckpoint(context.Background())
		var errStmt error
		for _, p := range s.writerStmts() {
			errStmt = errors.Join(errStmt, (*p.stmt).Close())
		}
		errWrite := s.wdb.Close()
		if err := errors.Join(errRoom, errRead, errCheckpoint, errStmt, errWrite); err != nil {
			s.closeErr = fmt.Errorf("close store: %w", err)
		}
	})
	return s.closeErr
}

// walCheckpoint copies the WAL into the database and, in TRUNCATE mode,
// empties it. Another
// process (a running server, when the CLI closes) may keep it from
// finishing; SQLite then reports busy, which is not an error here: the WAL
// stays valid and the next checkpoint completes it.
func (s *Store) walCheckpoint(ctx context.Context) error {
	var busy, logFrames, done int
	query := sqlCheckpointTruncate
	if s.checkpoint == CheckpointPassive {
		query = sqlCheckpointPassive
	}
	if err := s.wdb.QueryRowContext(ctx, query).Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		s.log.Info("checkpoint incomplete, another connection is using the database", "wal_frames", logFrames, "checkpointed", done)
	}
	return nil
}

// migrate brings the schema up to the newest embedded migration. Each file
// migrations/NNNN_name.sql is version NNNN; the ones above PRAGMA
// user_version run in order, each in its own transaction that also bumps
// user_version, so a crash leaves the schema at a whole version. The
// version is read inside the (immediate) transaction, so two processes
// opening a new file at once cannot both apply a migration.
func (s *Store) migrate(ctx context.Context) error {
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	newest := 0
	if len(migrations) > 0 {
		newest = migrations[len(migrations)-1].version
	}
	for _, m := range migrations {
		if err := s.applyMigration(ctx, m, newest); err != nil {
			return err
		}
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrations: bad file name %q", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("migrations: %s out of sequence", out[i].name)
		}
	}
	return out, nil
}

func (s *Store) applyMigration(ctx context.Context, m migration, newest int) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if current > newest {
		return fmt.Errorf("database schema version %d is newer than this program (%d)", current, newest)
	}
	if current >= m.version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	// PRAGMA takes no bound parameters; version is an int from a file name.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	s.log.Info("database migrated", "version", m.version, "file", m.name)
	return nil
}

// Write runs fn in a write transaction on the writer goroutine and waits
// until that transaction has committed (or failed). fn may run together
// with other callers' functions in one transaction, and may run twice: if
// any function in a group fails, the group is rolled back and each is
// retried alone, so one bad request cannot fail its neighbours. fn must
// therefore only touch the database and its own captured results, which
// the caller may read once write returns nil.
//
// onCommit, if not nil, runs on the writer goroutine right after the
// commit, in commit order; it must be quick and must not call write (it
// would deadlock). Ops run their effects through it (Effects).
//
// If ctx ends while waiting, write returns ctx's error and the outcome is
// unknown: the work may still commit.
func (s *Store) Write(ctx context.Context, fn func(*sql.Tx) error, onCommit func()) error {
	r := &writeReq{ctx: ctx, queued: time.Now(), fn: fn, onCommit: onCommit, done: make(chan error, 1)}
	select {
	case s.writes <- r:
	case <-s.quit:
		return ErrStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-s.writerDone:
		// The writer drains the queue before it exits, but a request
		// enqueued after its last drain is never run.
		select {
		case err := <-r.done:
			return err
		default:
			return ErrStoreClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue hands r to the writer without waiting for its commit; r.after
// learns the outcome. The cluster's applier uses it so that log entries
// group into shared transactions while keeping their order.
func (s *Store) enqueue(ctx context.Context, r *writeReq) error {
	select {
	case s.writes <- r:
		return nil
	case <-s.quit:
		return ErrStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runWriter is the writer goroutine. It takes one request, then whatever
// else is already queued (up to maxBatch), and commits them together: while
// one commit waits for fsync, the next group accumulates. Owned by the
// store; it exits after Close, once the queue is empty.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	batch := make([]*writeReq, 0, s.maxBatch)
	for {
		select {
		case r := <-s.writes:
			batch = append(batch, r)
		case <-s.quit:
			s.drain(batch)
			return
		}
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
		clear(batch)
		batch = batch[:0]
	}
}

// drain commits everything still queued when Close is called.
func (s *Store) drain(batch []*writeReq) {
	for {
		select {
		case r := <-s.writes:
			batch = append(batch, r)
			if len(batch) == s.maxBatch {
				s.commitBatch(batch)
				batch = batch[:0]
			}
		default:
			if len(batch) > 0 {
				s.commitBatch(batch)
			}
			return
		}
	}
}

// commitBatch runs a group in one transaction. On failure it retries each
// request alone so the error reaches only the request that caused it.
func (s *Store) commitBatch(batch []*writeReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // nobody is waiting any more; skip the work
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	err := s.timedTx(live)
	if err == nil || len(live) == 1 {
		s.finish(live, err)
		return
	}
	s.statRetried.Add(1)
	for _, r := range live {
		one := []*writeReq{r}
		s.finish(one, s.timedTx(one))
	}
}

// timedTx is runTx plus the Stats counters.
func (s *Store) timedTx(reqs []*writeReq) error {
	start := time.Now()
	err := s.runTx(reqs)
	if err == nil {
		end := time.Now()
		took := end.Sub(start)
		s.statTxs.Add(1)
		s.statWrites.Add(int64(len(reqs)))
		s.statTxNanos.Add(int64(took))
		s.statMessages.Add(s.txMessages)
		s.statMu.Lock()
		s.statCommit.Add(took)
		for _, r := range reqs {
			s.statWait.Add(end.Sub(r.queued))
		}
		s.statMu.Unlock()
		s.afterCommit()
	}
	return err
}

func (s *Store) runTx(reqs []*writeReq) error {
	// Background, not a request's context: the transaction belongs to the
	// whole group and must not be cancelled by one sender leaving.
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	s.txFirstMessageID, s.txMessages = 0, 0
	s.txScrub, s.txReleased = false, s.txReleased[:0]
	clear(s.txBound) // the previous transaction closed its bound statements
	for _, r := range reqs {
		if err := r.fn(tx); err != nil {
			tx.Rollback()
			return err
		}
	}
	if err := s.indexMessagesTx(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *Store) finish(reqs []*writeReq, err error) {
	for _, r := range reqs {
		if err == nil && r.onCommit != nil {
			r.onCommit()
		}
		if r.after != nil {
			r.after(err)
		}
		r.done <- err
	}
}

// txStmt returns st bound to tx, binding it once per transaction: a batch
// of two hundred inserts then shares one binding. Writer goroutine only.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, st *sql.Stmt) *sql.Stmt {
	b := s.txBound[st]
	if b == nil {
		b = tx.StmtContext(ctx, st)
		s.txBound[st] = b
	}
	return b
}

// queryPage runs a read query on the read pool and returns all its rows,
// scanned by scan, with the Rows closed before it returns. Callers bound the
// size with LIMIT; nothing slow may happen while Rows is open, because a
// long reader keeps checkpoints from finishing (litestream#724).
func queryPage[T any](ctx context.Context, db *sql.DB, scan func(*sql.Rows) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

const sqlBackup = `VACUUM INTO ?`

// Backup writes a consistent copy of the database to path, which must not
// exist yet. VACUUM INTO reads inside one read transaction, so it sees one
// snapshot while the writer carries on (WAL), and the copy is compact and
// needs no WAL file. It uses a connection of its own: the read pool's are
// query_only, which forbids writing even the destination file.
func (s *Store) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("backup: %s already exists", path)
	}
	db, err := sql.Open("sqlite", storeDSN(s.Path, s.syncMode, roleBackup))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, sqlBackup, path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// NowMS is the store clock in Unix milliseconds, the unit of every stored time.
func (s *Store) NowMS() int64 { return s.Now().UnixMilli() }

// FromMS turns a stored Unix millisecond time into a UTC time.Time.
func FromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
