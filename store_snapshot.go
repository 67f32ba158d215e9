// store_snapshot.go is the node's side of the cluster's snapshots: a node
// restores the newest snapshot in place of its database before it opens
// the log, and a single node's data folder becomes a cluster's first
// node (its database the first snapshot, its files in the object store).

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"stompbox/internal/apperr"
	"stompbox/internal/cluster"
	"stompbox/internal/files"
	"stompbox/internal/store"
	"stompbox/internal/web"
	"time"
)

// restoreSnapshot fetches snap and puts it in place of this node's
// database, which it closes and reopens: the node then applies the log
// from the snapshot's position + 1. Files are fetched from the object
// store as they are asked for.
func (s *server) restoreSnapshot(snap cluster.Snapshot) error {
	began := time.Now()
	dir := s.cfg.DataDir
	tmp := filepath.Join(dir, fmt.Sprintf("restore-%d.db", snap.Seq))
	os.Remove(tmp)
	if err := s.snaps.Fetch(s.base, snap, tmp); err != nil {
		return err
	}
	defer os.Remove(tmp)
	seq, recorded, err := store.FileAppliedSeq(s.base, tmp)
	if err != nil {
		return err
	}
	if !recorded || seq != snap.Seq {
		return fmt.Errorf("cluster: snapshot %s records position %d (recorded %v), not %d", snap.Name, seq, recorded, snap.Seq)
	}
	if err := s.store.Close(); err != nil {
		s.log.Warn("cluster: closing the database before restoring a snapshot", "err", err)
	}
	path := filepath.Join(dir, store.StoreFileName)
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cluster: restore snapshot: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	st, err := store.OpenDir(s.base, dir, store.Options{Synchronous: s.cfg.Synchronous, Log: s.log, Now: s.cfg.Cluster.Clock})
	if err != nil {
		return fmt.Errorf("cluster: open the restored snapshot: %w", err)
	}
	s.store = st
	s.log.Info("cluster: restored the newest snapshot; applying the log after it", "seq", snap.Seq, "bytes", snap.Size,
		"taken_by", snap.Node, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// seedCluster makes this node's data the cluster's: its files go to the
// object store, a copy of its database becomes the first snapshot, and
// the log starts after it: at position 1 for a single node's data (seq
// 0), after seq for a cluster node's backup that records it. Accounts, sessions, tokens,
// rooms, messages (with their ids), files, reactions, read marks and
// settings are in that copy as they were, so people stay signed in and
// links and since-id stay valid on every node. The cluster's log must be
// empty (cluster.ErrNotAdoptable otherwise).
func (s *server) seedCluster(seq uint64) error {
	began := time.Now()
	blobs, err := cluster.NewObjectBlobs(s.base, s.clog.Js, s.cluster.Replicas)
	if err != nil {
		return fmt.Errorf("cluster: adopt files: %w", err)
	}
	tmp := filepath.Join(s.cfg.DataDir, "adopt.db")
	os.Remove(tmp)
	defer os.Remove(tmp)
	if _, err := s.store.SnapshotTo(s.base, tmp); err != nil {
		return err
	}
	// The files first: a node that restores the snapshot may fetch any
	// of them at once.
	n, err := putBlobs(s, blobs, tmp)
	if err != nil {
		return err
	}
	seq, err = s.clog.Adopt(s.base, s.snaps, tmp, seq)
	if err != nil {
		return err
	}
	if err := s.store.MarkInCluster(s.base, seq); err != nil {
		return err
	}
	s.log.Info("cluster: this node's data is now the cluster's first snapshot", "seq", seq, "files", n, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// putBlobs puts every blob the database copy at dbCopy names (uploads and
// thumbnails) into the object store.
func putBlobs(s *server, blobs *cluster.ObjectBlobs, dbCopy string) (int, error) {
	sums, err := store.BackupBlobSums(s.base, dbCopy)
	if err != nil {
		return 0, fmt.Errorf("cluster: adopt files: %w", err)
	}
	n := 0
	for _, sum := range sums {
		if len(sum) < 2 {
			continue
		}
		p := filepath.Join(s.cfg.DataDir, files.FilesDirName, sum[:2], sum)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cluster: adopt: a file the database names is missing", "sha256", sum)
			continue
		}
		if err := blobs.Put(s.base, sum, p); err != nil {
			return n, fmt.Errorf("cluster: adopt files: %w", err)
		}
		n++
	}
	return n, nil
}

// removeNode is POST /api/admin/cluster/remove {"node":"NAME"} (an
// administrator's): the named node, which will not come back, loses its
// copies of the log and of the object stores, which JetStream places on
// live nodes (cluster/members.go). 409 while that node is online; 404 on
// a single node.
func (s *server) removeNode(w http.ResponseWriter, r *http.Request, _ store.User) error {
	if s.clog == nil {
		return apperr.New(apperr.ErrNotFound, "not a cluster node")
	}
	var req struct {
		Node string `json:"node"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<12)).Decode(&req); err != nil || req.Node == "" {
		return apperr.New(apperr.ErrBadRequest, `body must be {"node":"NAME"}`)
	}
	removed, err := s.clog.RemovePeer(r.Context(), req.Node)
	if errors.Is(err, cluster.ErrPeerOnline) {
		return apperr.New(apperr.ErrConflict, err.Error())
	}
	if err != nil {
		return err
	}
	s.log.Info("cluster: node removed from the replicated streams", "node", req.Node, "streams", removed)
	web.WriteJSON(w, http.StatusOK, map[string]any{"node": req.Node, "removed": removed})
	return nil
}
