package cluster

// snapshot.go: snapshots of the database at a log position, kept in the
// JetStream object store, and the log's compaction below them.
//
// What it promises:
//   - A snapshot is a consistent copy of one node's database that records
//     the log position it stands at (store.Store.SnapshotTo); a node that
//     restores it applies the log from that position + 1.
//   - The log is purged only below a snapshot that the object store has
//     acknowledged whole (its quorum), and never past what a running
//     node's reader has been handed: nothing a node still needs is purged
//     under it.
//   - After a compaction only the newest snapshot is kept: an older one
//     would still hold deleted messages.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// snapBucket is the object store of the database snapshots.
	snapBucket = "stompbox-snapshots"
	// snapPrefix starts a snapshot's object name; the position follows,
	// zero-padded, so names sort by position.
	snapPrefix = "snapshot-"
	// snapSeqMeta is the object metadata key of the snapshot's position.
	snapSeqMeta = "seq"
	// snapNodeMeta names the node that took it.
	snapNodeMeta = "node"
)

// Snapshot is one stored snapshot.
type Snapshot struct {
	Name string
	Seq  uint64 // the log position the database stands at
	Size uint64
	Node string
	At   time.Time
}

// Snapshots is the object store bucket snapBucket.
type Snapshots struct {
	obj jetstream.ObjectStore
	js  jetstream.JetStream
}

// OpenSnapshots opens the snapshot bucket, creating it (file storage,
// replicas copies) if needed; tried again while the cluster forms, until
// ctx ends.
func OpenSnapshots(ctx context.Context, cc *Conn) (*Snapshots, error) {
	js, err := jetstream.New(cc.Nc)
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	replicas := cc.Replicas
	cfg := jetstream.ObjectStoreConfig{
		Bucket:      snapBucket,
		Description: "stompbox database snapshots at a log position",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}
	var obj jetstream.ObjectStore
	if err := retrySetup(ctx, func(ctx context.Context) (err error) {
		obj, err = js.CreateOrUpdateObjectStore(ctx, cfg)
		return err
	}); err != nil {
		return nil, fmt.Errorf("open object store %s: %w", snapBucket, err)
	}
	return &Snapshots{obj: obj, js: js}, nil
}

// snapName is the object name of the snapshot at seq.
func snapName(seq uint64) string { return fmt.Sprintf("%s%020d", snapPrefix, seq) }

// List returns the stored snapshots, oldest first.
func (s *Snapshots) List(ctx context.Context) ([]Snapshot, error) {
	// While the bucket's stream elects its leader a listing gets no
	// answer: ask again, each time for a short while.
	var infos []*jetstream.ObjectInfo
	err := retrySetup(ctx, func(ctx context.Context) (err error) {
		infos, err = s.obj.List(ctx)
		if errors.Is(err, jetstream.ErrNoObjectsFound) {
			infos, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []Snapshot
	for _, in := range infos {
		if in.Deleted || !strings.HasPrefix(in.Name, snapPrefix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimPrefix(in.Name, snapPrefix), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, Snapshot{Name: in.Name, Seq: seq, Size: in.Size, Node: in.Metadata[snapNodeMeta], At: in.ModTime})
	}
	slices.SortFunc(out, func(a, b Snapshot) int { return cmpUint(a.Seq, b.Seq) })
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Newest is the stored snapshot at the highest position; ok is false
// when there is none.
func (s *Snapshots) Newest(ctx context.Context) (snap Snapshot, ok bool, err error) {
	all, err := s.List(ctx)
	if err != nil || len(all) == 0 {
		return Snapshot{}, false, err
	}
	return all[len(all)-1], true, nil
}

// Put stores the database copy at path as the snapshot at seq. It returns
// once the object store acknowledged every chunk and the object's
// description (a quorum stored them).
func (s *Snapshots) Put(ctx context.Context, seq uint64, path, node string) (Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("store snapshot: %w", err)
	}
	defer f.Close()
	meta := jetstream.ObjectMeta{
		Name:     snapName(seq),
		Metadata: map[string]string{snapSeqMeta: strconv.FormatUint(seq, 10), snapNodeMeta: node},
	}
	info, err := s.obj.Put(ctx, meta, f)
	if err != nil {
		return Snapshot{}, fmt.Errorf("store snapshot at %d: %w", seq, err)
	}
	return Snapshot{Name: info.Name, Seq: seq, Size: info.Size, Node: node, At: info.ModTime}, nil
}

// Fetch writes the snapshot's bytes to path (which must not exist); the
// object store checks their digest. The file's own recorded position is
// checked by the caller (store.FileAppliedSeq).
func (s *Snapshots) Fetch(ctx context.Context, snap Snapshot, path string) error {
	r, err := s.obj.Get(ctx, snap.Name)
	if err != nil {
		return fmt.Errorf("fetch snapshot %s: %w", snap.Name, err)
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("fetch snapshot %s: %w", snap.Name, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("fetch snapshot %s: %w", snap.Name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("fetch snapshot %s: %w", snap.Name, err)
	}
	return f.Close()
}

// PruneBelow deletes the snapshots older than seq: only snapshots below
// the one a node just stored, so that two nodes compacting at once never
// delete each other's newest.
func (s *Snapshots) PruneBelow(ctx context.Context, seq uint64) error {
	all, err := s.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, sn := range all {
		if sn.Seq < seq {
			if err := eraseObject(ctx, s.js, s.obj, snapBucket, sn.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := s.obj.Delete(ctx, sn.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				errs = append(errs, fmt.Errorf("delete snapshot %s: %w", sn.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// LogBounds reads the log's first and last sequence, or exists false
// while the log was never created. Used before the log is opened, to
// decide whether a node must restore a snapshot first.
func (s *Snapshots) LogBounds(ctx context.Context) (first, last uint64, exists bool, err error) {
	var info *jetstream.StreamInfo
	err = retrySetup(ctx, func(ctx context.Context) error {
		stream, err := s.js.Stream(ctx, logStream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		info, err = stream.Info(ctx)
		return err
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("cluster log bounds: %w", err)
	}
	if info == nil {
		return 0, 0, false, nil
	}
	return info.State.FirstSeq, info.State.LastSeq, true, nil
}

// RestorePlan decides whether a node whose database stands at applied
// must restore a snapshot before applying the log whose first entry is
// first: when the entries after applied were purged (the node was away
// through a compaction), or when the node is new (applied 0, no position
// recorded) and a snapshot exists, which is quicker than replaying the
// history. It returns the snapshot to restore, or ok false.
func (s *Snapshots) RestorePlan(ctx context.Context, applied uint64, inCluster bool, first uint64) (snap Snapshot, ok bool, err error) {
	newest, have, err := s.Newest(ctx)
	if err != nil {
		return Snapshot{}, false, err
	}
	// Entries applied+1 … first-1 were purged (first-1 <= last always).
	behind := first > applied+1
	switch {
	case behind && !have:
		return Snapshot{}, false, fmt.Errorf("cluster: this node stands at log position %d, the log now starts at %d and no snapshot is stored: it cannot catch up (start it with an empty data folder once a snapshot exists)", applied, first)
	case behind && newest.Seq+1 < first:
		return Snapshot{}, false, fmt.Errorf("cluster: the newest snapshot stands at %d but the log starts at %d: cannot catch up", newest.Seq, first)
	case behind:
		return newest, true, nil
	case !inCluster && applied == 0 && have && newest.Seq > 0:
		return newest, true, nil
	}
	return Snapshot{}, false, nil
}

// snapshotTemp is a path for a snapshot file in dir that does not exist.
func snapshotTemp(dir, what string) (string, error) {
	f, err := os.CreateTemp(dir, what+"-*.db")
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return filepath.Clean(name), nil
}
