package store

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"testing"
)

// benchSenders is the number of concurrent senders in BenchmarkStoreWrite:
// many connections posting at once is when group commit pays.
const benchSenders = 64

// historyFixtureRows is the size of the room in BenchmarkHistoryNewest50.
const historyFixtureRows = 1_000_000

// BenchmarkHistoryNewest50 measures reading the newest page (50 messages)
// of a room that holds a million, with other rooms' messages interleaved.
// The fixture is built once per run in a temp dir by one INSERT … SELECT
// over a recursive CTE, with synchronous=OFF (durability is irrelevant
// here).
//
//	go test -run '^$' -bench BenchmarkHistoryNewest50 .
func BenchmarkHistoryNewest50(b *testing.B) {
	ctx := context.Background()
	s, err := OpenDir(ctx, b.TempDir(), Options{Synchronous: "OFF"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const sqlFixture = `
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO messages (room_id, sender, type, body, created_at)
SELECT CASE WHEN i % 10 = 0 THEN 2 ELSE 1 END, 'user' || (i % 97), 'TALK', 'message number ' || i, 1700000000000 + i
FROM n`
	err = s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rooms (id, name, kind, created_at) VALUES (2, 'other', 'public', 0)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, sqlFixture, historyFixtureRows+historyFixtureRows/9)
		return err
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var inRoom int
	if err := s.Rdb.QueryRow(`SELECT count(*) FROM messages WHERE room_id = 1`).Scan(&inRoom); err != nil {
		b.Fatal(err)
	}
	if inRoom < historyFixtureRows {
		b.Fatalf("fixture has %d rows in room 1", inRoom)
	}

	b.ReportAllocs()
	for b.Loop() {
		ms, err := s.MessagesPage(ctx, 1, 0, 0, 50)
		if err != nil || len(ms) != 50 {
			b.Fatal(len(ms), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/page")
}

// BenchmarkStoreWrite measures the writer alone (one prepared INSERT per
// request, no chat validation), to separate store cost from chat cost.
//
//	go test -run '^$' -bench BenchmarkStoreWrite .
func BenchmarkStoreWrite(b *testing.B) {
	for _, maxBatch := range []int{0, 1} {
		b.Run(fmt.Sprintf("maxBatch=%d", maxBatch), func(b *testing.B) {
			s, err := OpenDir(context.Background(), b.TempDir(), Options{MaxBatch: maxBatch})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(max(1, benchSenders/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := insertTestMessage(ctx, s, 1, "a typical chat line of some forty characters"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			reportCommits(b, s)
		})
	}
}

// reportCommits adds the mean group size and the mean commit time: msgs/s
// is their quotient, and on a shared VM the commit time (fsync) is what
// varies from run to run.
func reportCommits(b *testing.B, s *Store) {
	st := s.Stats()
	if st.Transactions == 0 {
		return
	}
	b.ReportMetric(float64(st.Writes)/float64(st.Transactions), "msgs/commit")
	b.ReportMetric(float64(st.TxTime.Microseconds())/float64(st.Transactions), "µs/commit")
}

// BenchmarkStoreDelete measures deleting one message (as the chat's
// delete does: the text emptied, the full-text entry removed) per op,
// with the deletion that deletes of issue 22 (secure_delete,
// FTS5 secure-delete, a TRUNCATE checkpoint after each deletion) and
// without (insecure: as before). The room holds 20,000 indexed messages.
//
//	go test -run '^$' -bench BenchmarkStoreDelete .
func BenchmarkStoreDelete(b *testing.B) {
	for _, insecure := range []bool{true, false} {
		name := "secure"
		if insecure {
			name = "insecure"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, err := OpenDir(ctx, b.TempDir(), Options{insecureDelete: insecure})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rows := max(b.N, 20_000)
			const sqlFixture = `
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO messages (room_id, sender, type, body, created_at)
SELECT 1, 'user' || (i % 97), 'TALK', 'message number ' || i || ' with word' || (i % 1000) || ' and more', 1700000000000 + i
FROM n`
			err = s.Write(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, sqlFixture, rows); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')`)
				return err
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := s.ApplyAt(ctx, &testDeleteOp{int64(i + 1)}, s.NowMS(), false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/delete")
		})
	}
}
