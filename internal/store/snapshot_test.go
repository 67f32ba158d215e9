package store

import (
	"context"
	"path/filepath"
	"testing"
)

func TestSnapshotRecordsItsPosition(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, nil)
	dir := t.TempDir()

	// A single node's database records no position.
	single := filepath.Join(dir, "single.db")
	if seq, err := s.SnapshotTo(ctx, single); err != nil || seq != 0 {
		t.Fatalf("single node's snapshot: %d, %v", seq, err)
	}
	if _, recorded, err := FileAppliedSeq(ctx, single); err != nil || recorded {
		t.Fatalf("single node's copy records a position: %v, %v", recorded, err)
	}
	if in, err := s.InCluster(ctx); err != nil || in {
		t.Fatalf("in cluster before any position: %v, %v", in, err)
	}

	// Marked as a cluster node's copy at 5: a snapshot stands at 5.
	if err := s.MarkInCluster(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if in, err := s.InCluster(ctx); err != nil || !in {
		t.Fatalf("in cluster after MarkInCluster: %v, %v", in, err)
	}
	snap := filepath.Join(dir, "snap.db")
	if seq, err := s.SnapshotTo(ctx, snap); err != nil || seq != 5 {
		t.Fatalf("snapshot position: %d, %v", seq, err)
	}
	if _, err := s.SnapshotTo(ctx, snap); err == nil {
		t.Fatal("a snapshot over an existing file succeeded")
	}

	// An adopted copy is set to the position the log starts after.
	if err := SetFileAppliedSeq(ctx, single, 1); err != nil {
		t.Fatal(err)
	}
	if seq, recorded, err := FileAppliedSeq(ctx, single); err != nil || !recorded || seq != 1 {
		t.Fatalf("adopted copy: %d, %v, %v", seq, recorded, err)
	}
	if _, _, err := FileAppliedSeq(ctx, filepath.Join(dir, "missing.db")); err == nil {
		t.Fatal("position of a missing file")
	}
	if err := s.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
}
