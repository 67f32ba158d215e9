package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"stompbox/internal/proto"
	"stompbox/internal/testutil"
	"strings"
	"sync"
	"testing"
	"time"
)

// openTestStore opens a store on a real file in a temp dir, closed at cleanup.
func openTestStore(t testing.TB, clock *testutil.Clock) *Store {
	t.Helper()
	opts := Options{}
	if clock != nil {
		opts.Now = clock.Now
	}
	s, err := OpenDir(context.Background(), t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// storeTestPoll polls cond until it holds or 10 s pass. Tests never sleep
// to wait for something.
func storeTestPoll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStorePragmasOnEveryConnection(t *testing.T) {
	s := openTestStore(t, nil)
	ctx := context.Background()

	// Hold several read connections and the write connection at once, so
	// the pool must have opened each separately.
	var conns []*sql.Conn
	for range 3 {
		c, err := s.Rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The writer goroutine only holds the write connection inside a
	// transaction, so it is free to borrow here.
	wc, err := s.wdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()

	tests := []struct {
		pragma string
		want   string
	}{
		{"busy_timeout", "5000"},
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "2"},   // FULL
		{"secure_delete", "1"}, // deleted text is zeroed, not left in free space (issue 22)
	}
	check := func(name string, c *sql.Conn, pragma, want string) {
		t.Helper()
		var got string
		if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", name, pragma, err)
		}
		if got != want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", name, pragma, got, want)
		}
	}
	for _, tt := range tests {
		t.Run(tt.pragma, func(t *testing.T) {
			for i, c := range conns {
				check(fmt.Sprintf("read conn %d", i), c, tt.pragma, tt.want)
			}
			check("write conn", wc, tt.pragma, tt.want)
		})
	}
	for i, c := range conns {
		check(fmt.Sprintf("read conn %d", i), c, "query_only", "1")
	}
	check("write conn", wc, "query_only", "0")
}

func TestStoreSynchronousOption(t *testing.T) {
	tests := []struct {
		opt, want string
		ok        bool
	}{
		{"", "2", true},
		{"normal", "1", true},
		{"FULL", "2", true},
		{"EXTRA", "3", true},
		{"fast", "", false},
	}
	for _, tt := range tests {
		t.Run("mode="+tt.opt, func(t *testing.T) {
			s, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), Options{Synchronous: tt.opt})
			if !tt.ok {
				if err == nil {
					s.Close()
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got string
			if err := s.Rdb.QueryRow("PRAGMA synchronous").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("synchronous = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStoreFTS5Compiled(t *testing.T) {
	s := openTestStore(t, nil)
	var used int
	if err := s.Rdb.QueryRow(`SELECT sqlite_compileoption_used('ENABLE_FTS5')`).Scan(&used); err != nil {
		t.Fatal(err)
	}
	if used != 1 {
		t.Fatal("this SQLite build lacks FTS5")
	}
}

func TestStoreMigrationsIdempotent(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	migrations, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s, err := OpenDir(ctx, dir, Options{})
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		var version, rooms int
		if err := s.Rdb.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if err := s.Rdb.QueryRow(`SELECT count(*) FROM rooms`).Scan(&rooms); err != nil {
			t.Fatal(err)
		}
		if version != len(migrations) {
			t.Errorf("open #%d: user_version = %d, want %d", i, version, len(migrations))
		}
		if rooms != 1 {
			t.Errorf("open #%d: %d rooms, want the one seeded room", i, rooms)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A database from a newer program is refused, not silently used.
	s, err := OpenDir(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`PRAGMA user_version = 999`)
		return err
	}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenDir(ctx, dir, Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema version")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error = %v, want schema-too-new", err)
	}
}

// insertTestMessage stores one TALK message through the writer.
func insertTestMessage(ctx context.Context, s *Store, roomID int64, body string) (StoredMessage, error) {
	m := StoredMessage{Type: proto.MsgTalk, RoomID: roomID, Sender: "t", Message: body}
	err := s.Write(ctx, func(tx *sql.Tx) error { return s.InsertMessageTx(ctx, tx, &m, s.NowMS()) }, nil)
	return m, err
}

func TestStoreConcurrentWriters(t *testing.T) {
	s := openTestStore(t, nil)
	ctx := context.Background()
	const senders, perSender = 8, 200

	var mu sync.Mutex
	var committed []int64 // ids in onCommit order
	ids := make([][]int64, senders)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range perSender {
				m := StoredMessage{Type: proto.MsgTalk, RoomID: 1, Sender: "t", Message: fmt.Sprintf("g%d m%d", g, i)}
				err := s.Write(ctx, func(tx *sql.Tx) error { return s.InsertMessageTx(ctx, tx, &m, s.NowMS()) }, func() {
					mu.Lock()
					committed = append(committed, m.ID)
					mu.Unlock()
				})
				if err != nil {
					t.Error(err)
					return
				}
				ids[g] = append(ids[g], m.ID)
			}
		})
	}
	wg.Wait()

	seen := map[int64]bool{}
	for g, gs := range ids {
		if !slices.IsSorted(gs) {
			t.Errorf("sender %d saw ids out of order", g)
		}
		for _, id := range gs {
			if seen[id] {
				t.Fatalf("id %d returned twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != senders*perSender {
		t.Fatalf("%d ids, want %d", len(seen), senders*perSender)
	}
	if !slices.IsSorted(committed) || len(committed) != senders*perSender {
		t.Errorf("onCommit ran %d times, sorted=%v; want %d in id order", len(committed), slices.IsSorted(committed), senders*perSender)
	}
	var n int
	if err := s.Rdb.QueryRow(`SELECT count(*) FROM messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != senders*perSender {
		t.Fatalf("count = %d, want %d", n, senders*perSender)
	}
}

func TestStoreGroupFailureIsolated(t *testing.T) {
	s := openTestStore(t, nil)
	ctx := context.Background()

	// Hold the writer busy so the next requests queue up and form one group.
	release := make(chan struct{})
	started := make(chan struct{})
	blocked := make(chan error, 1)
	go func() {
		blocked <- s.Write(ctx, func(*sql.Tx) error { close(started); <-release; return nil }, nil)
	}()
	<-started

	errBoom := errors.New("boom")
	const n = 5
	results := make([]error, n)
	var bodies [n]StoredMessage
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = s.Write(ctx, func(tx *sql.Tx) error {
				if i == 2 {
					return errBoom
				}
				bodies[i] = StoredMessage{Type: proto.MsgTalk, RoomID: 1, Sender: "t", Message: fmt.Sprint(i)}
				return s.InsertMessageTx(ctx, tx, &bodies[i], s.NowMS())
			}, nil)
		})
	}
	storeTestPoll(t, "group queued", func() bool { return len(s.writes) == n })
	close(release)
	wg.Wait()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	for i, err := range results {
		if i == 2 {
			if !errors.Is(err, errBoom) {
				t.Errorf("request 2: %v, want boom", err)
			}
		} else if err != nil {
			t.Errorf("request %d failed with its neighbour: %v", i, err)
		}
	}
	var count int
	s.Rdb.QueryRow(`SELECT count(*) FROM messages`).Scan(&count)
	if count != n-1 {
		t.Errorf("%d messages stored, want %d", count, n-1)
	}
	// The retried transactions indexed their own messages, once each.
	hits, err := s.SearchMessages(ctx, 0, `"0"* OR "1"* OR "3"* OR "4"*`, 100)
	if err != nil || len(hits) != n-1 {
		t.Errorf("FTS finds %d of the %d messages (%v)", len(hits), n-1, err)
	}
}

func TestStoreCloseDrainsAndRefuses(t *testing.T) {
	s, err := OpenDir(context.Background(), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 50 {
		wg.Go(func() {
			_, err := insertTestMessage(ctx, s, 1, "x")
			if err != nil && !errors.Is(err, ErrStoreClosed) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := insertTestMessage(ctx, s, 1, "late"); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("write after close: %v, want errStoreClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	// Every write that reported success is in the file.
	s2, err := Open(ctx, s.Path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var n int
	s2.Rdb.QueryRow(`SELECT count(*) FROM messages`).Scan(&n)
	if n != ok {
		t.Fatalf("%d messages on disk, %d writes succeeded", n, ok)
	}
}

func TestStoreBackupWhileWriting(t *testing.T) {
	s := openTestStore(t, nil)
	ctx := context.Background()
	for i := range 100 {
		if _, err := insertTestMessage(ctx, s, 1, fmt.Sprint("before ", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Keep writing during the backup; the copy is a snapshot either way.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := insertTestMessage(ctx, s, 1, "during"); err != nil {
				t.Error(err)
				return
			}
		}
	})
	path := filepath.Join(t.TempDir(), "backup.db")
	err := s.Backup(ctx, path)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, path); err == nil {
		t.Error("backup overwrote an existing file")
	}

	b, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer b.Close()
	var integrity string
	if err := b.Rdb.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}
	got, err := b.MessagesPage(ctx, 1, 0, 100, 200)
	if err != nil {
		t.Fatal(err)
	}
	// The first 100 are exactly those written before the backup began.
	first, err := b.MessagesPage(ctx, 1, 101, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 100 || first[0].Message != "before 0" || first[99].Message != "before 99" {
		t.Fatalf("backup holds %d early messages", len(first))
	}
	for _, m := range got {
		if m.Message != "during" {
			t.Fatalf("unexpected message %q after the first 100", m.Message)
		}
	}
	// The FTS index came along.
	hits, err := b.SearchMessages(ctx, 0, `"before"*`, 200)
	if err != nil || len(hits) != 100 {
		t.Fatalf("search in backup: %d hits, %v", len(hits), err)
	}
}

func TestStorePurgeBefore(t *testing.T) {
	clock := testutil.NewClock()
	s := openTestStore(t, clock)
	ctx := context.Background()
	for range 20 {
		if _, err := insertTestMessage(ctx, s, 1, "old words"); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(48 * time.Hour)
	cutoff := clock.Now().Add(-24 * time.Hour)
	kept, err := insertTestMessage(ctx, s, 1, "new words")
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeBefore(ctx, cutoff)
	if err != nil || n != 20 {
		t.Fatalf("purged %d, %v; want 20", n, err)
	}
	ms, _ := s.MessagesPage(ctx, 1, 0, 0, 100)
	if len(ms) != 1 || ms[0].ID != kept.ID {
		t.Fatalf("left %v", ms)
	}
	hits, _ := s.SearchMessages(ctx, 0, `"words"*`, 100)
	if len(hits) != 1 {
		t.Fatalf("FTS still finds %d purged messages", len(hits)-1)
	}
	// Ids keep growing after the oldest (and even the newest) rows go.
	clock.Advance(48 * time.Hour)
	if _, err := s.PurgeBefore(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	next, _ := insertTestMessage(ctx, s, 1, "after")
	if next.ID <= kept.ID {
		t.Fatalf("id %d reused after purge (last was %d)", next.ID, kept.ID)
	}
}

func TestFTSQuery(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", false},
		{"   ", "", false},
		{"hello", `"hello"*`, true},
		{"서울 날씨", `"서울"* "날씨"*`, true},
		{`say "hi" OR NEAR(x)`, `"say"* """hi"""* "OR"* "NEAR(x)"*`, true},
		{"a b c d e f g h i j", `"a"* "b"* "c"* "d"* "e"* "f"* "g"* "h"*`, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := FtsQuery(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ftsQuery(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
