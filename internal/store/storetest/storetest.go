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
	"stompbox/internal/testutil"
	"testing"
)

// Open opens a store on a real file in a temp dir, on clock if
// it is not nil, and closes it at cleanup.
func Open(t testing.TB, clock *testutil.Clock) *store.Store {
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
