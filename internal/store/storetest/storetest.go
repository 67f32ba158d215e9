// Package storetest helps the tests of the parts above the store: a store
// on a real file in a temporary folder, a clock the test moves, a message
// inserted without the chat service, and commit figures for benchmarks.
// Only tests import it. Of stompbox it imports only internal/proto and
// internal/store (layout_test.go).
package storetest

import (
	"context"
	"database/sql"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"sync"
	"testing"
	"time"
)

// Clock is a store clock that moves only when the test says so.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at 2026-01-02 03:04:05 UTC.
func NewClock() *Clock {
	return &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Open opens a store on a real file in a temp dir, on clock if
// it is not nil, and closes it at cleanup.
func Open(t testing.TB, clock *Clock) *store.Store {
	t.Helper()
	opts := store.Options{}
	if clock != nil {
		opts.Now = clock.Now
	}
	s, err := store.OpenDir(context.Background(), t.TempDir(), opts)
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

// InsertMessage stores a TALK message from "t" in roomID straight
// through the store's writer, without the chat service.
func InsertMessage(ctx context.Context, s *store.Store, roomID int64, body string) (store.StoredMessage, error) {
	m := store.StoredMessage{Type: proto.MsgTalk, RoomID: roomID, Sender: "t", Message: body}
	err := s.Write(ctx, func(tx *sql.Tx) error { return s.InsertMessageTx(ctx, tx, &m, s.NowMS()) }, nil)
	return m, err
}

// ReportCommits adds the mean group size and the mean commit time to
// a benchmark: msgs/s is their quotient, and on a shared VM the commit time
// (fsync) is what varies from run to run.
func ReportCommits(b *testing.B, s *store.Store) {
	st := s.Stats()
	if st.Transactions == 0 {
		return
	}
	b.ReportMetric(float64(st.Writes)/float64(st.Transactions), "msgs/commit")
	b.ReportMetric(float64(st.TxTime.Microseconds())/float64(st.Transactions), "µs/commit")
}
