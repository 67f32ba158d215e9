package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestLogReaderFetch reads a log by sequence in batches: entries come in
// order from the sequence asked for, at most fetchBatch at a time, none
// past the end, and a reply that skips the entry asked for (the log no
// longer holds it) is errLogGap, with the entries before it.
func TestLogReaderFetch(t *testing.T) {
	_, nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: logStream, Subjects: []string{LogSubject}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	const total = fetchBatch + 44
	for i := 1; i <= total; i++ {
		if _, err := js.Publish(ctx, LogSubject, fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := newLogReader(nc, logStream)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.close()

	check := func(entries []logEntry, from uint64, n int) {
		t.Helper()
		if len(entries) != n {
			t.Fatalf("from %d: %d entries, want %d", from, len(entries), n)
		}
		for i, e := range entries {
			want := from + uint64(i)
			if e.seq != want || string(e.data) != fmt.Sprintf("entry %d", want) {
				t.Fatalf("entry %d is %d %q", want, e.seq, e.data)
			}
		}
	}
	got, err := rd.fetch(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	check(got, 1, fetchBatch)
	got, err = rd.fetch(ctx, fetchBatch+1)
	if err != nil {
		t.Fatal(err)
	}
	check(got, fetchBatch+1, total-fetchBatch)
	if got, err = rd.fetch(ctx, total+1); err != nil || len(got) != 0 {
		t.Fatalf("past the end: %d entries, %v", len(got), err)
	}

	if err := stream.DeleteMsg(ctx, 10); err != nil {
		t.Fatal(err)
	}
	got, err = rd.fetch(ctx, 5)
	if !errors.Is(err, errLogGap) {
		t.Fatalf("across a removed entry: %v", err)
	}
	check(got, 5, 5)
}
