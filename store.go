// store.go is the store's face: the database in the data folder, and on a
// cluster node the replicated log it is a copy of.
//
// It opens the store (a cluster node's damaged copy is set aside and
// rebuilt from the log), joins the cluster (restoring the newest snapshot
// when the node is new or was away through a compaction, or seeding the
// cluster with a single node's data or a backup) and attaches the log as
// the store's replicator, compacts the log and catches up with it before
// any client is served; POST /api/admin/cluster/remove takes a dead node
// off the replicated streams. It also runs the data's housekeeping: -keep-days and the sweep of
// unreferenced files. The store itself is internal/store; the log is
// internal/cluster.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
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

// openStore opens the database in the data folder. A cluster node's
// database is a copy of the log: a damaged one is set aside and rebuilt
// from the other nodes.
func (s *server) openStore() error {
	st, err := store.OpenDir(s.base, s.cfg.DataDir, store.Options{Synchronous: s.cfg.Synchronous, Log: s.log, Now: s.cfg.Cluster.Clock})
	if err != nil && s.cfg.Cluster.Enabled() {
		st, err = rebuildDamagedStore(s.base, s.cfg, err, s.log)
	}
	if err != nil {
		return err
	}
	s.store = st
	s.undo.push(func() { s.store.Close() }) // the store restoreSnapshot may have put in its place
	return nil
}

// catchUp applies the log, and catches up with it, before any client is
// served: history and since-id must be whole when they are. A single node
// has nothing to catch up with.
func (s *server) catchUp() error {
	if s.clog == nil {
		return nil
	}
	if err := s.clog.Start(s.base); err != nil {
		return err
	}
	s.compactor = cluster.NewCompactor(s.clog, s.snaps, s.cfg.SnapshotEvery, s.cfg.SnapshotInterval)
	s.maintWG.Add(1)
	go func() {
		defer s.maintWG.Done()
		s.compactor.Run(s.base)
	}()
	return nil
}

// joinCluster connects this node to the cluster's NATS and opens the log;
// from here on every store write goes through the log. The log is applied
// by catchUp, once the chat service exists.
//
// Before the log is opened, a node whose database stands below the log's
// first entry (it was away through a compaction) or a new node restores
// the newest snapshot (cluster/snapshot.go). A single node's database
// (accounts or messages, no log position) is adopted as the cluster's
// first snapshot when the cluster's log is empty, and refused otherwise;
// so is a backup of a cluster node (it records its log position) put in
// an empty data folder when every node's disk was lost.
func (s *server) joinCluster() error {
	if !s.cfg.Cluster.Enabled() {
		return nil
	}
	seq, err := s.store.AppliedSeq(s.base)
	if err != nil {
		return err
	}
	inCluster, err := s.store.InCluster(s.base)
	if err != nil {
		return err
	}
	single := false
	if !inCluster && seq == 0 {
		if single, err = s.store.HoldsSingleNodeData(s.base); err != nil {
			return err
		}
	}
	if s.cluster, err = cluster.Connect(s.base, s.cfg.Cluster, s.cfg.DataDir, s.log); err != nil {
		return err
	}
	s.undo.push(s.leaveCluster) // the log and the bus too, once made
	// A node that may seed the cluster answers the empty nodes' question.
	if single || inCluster && seq > 0 {
		stop, err := cluster.AnnounceAdoption(s.cluster)
		if err != nil {
			return err
		}
		defer stop()
	}
	if s.snaps, err = cluster.OpenSnapshots(s.base, s.cluster); err != nil {
		return err
	}
	first, last, _, err := s.snaps.LogBounds(s.base)
	if err != nil {
		return err
	}
	if !single && !inCluster && last == 0 { // an empty node, an empty log
		if _, have, err := s.snaps.Newest(s.base); err != nil {
			return err
		} else if !have {
			adopted, err := s.snaps.WaitForAdoption(s.base, s.cluster)
			if err != nil {
				return err
			}
			if adopted {
				if first, last, _, err = s.snaps.LogBounds(s.base); err != nil {
					return err
				}
			}
		}
	}
	// seed: this node's data starts the cluster (a single node's folder,
	// or a backup of a cluster node put in an empty folder after every
	// node's disk was lost).
	seed := single
	if !single && inCluster && seq > last {
		if last > 0 {
			return fmt.Errorf("cluster: this node's database stands at log position %d, past the log's end %d: it belongs to another cluster, or the log was lost; start it with an empty data folder", seq, last)
		}
		seed = true
	}
	if !seed {
		snap, ok, err := s.snaps.RestorePlan(s.base, seq, inCluster, first)
		if err != nil {
			return err
		}
		if ok {
			if err := s.restoreSnapshot(snap); err != nil {
				return err
			}
		}
	}
	if s.clog, err = cluster.OpenLog(s.base, s.cluster, s.store, s.log); err != nil {
		return err
	}
	if seed {
		if err := s.seedCluster(seq); err != nil {
			return err
		}
	}
	s.store.SetReplicator(s.clog)
	return nil
}

// leaveCluster closes the log's applier and the NATS connection (and the
// embedded server). Safe on a single node.
func (s *server) leaveCluster() {
	if s.bus != nil {
		s.bus.Close()
		s.bus = nil
	}
	if s.clog != nil {
		s.clog.Close()
	}
	if s.cluster != nil {
		s.cluster.Close()
		s.cluster = nil
	}
}

// rebuildDamagedStore sets aside a database that would not open (cause)
// and opens an empty one, which the log then fills: a cluster node's
// database is only a copy of the log.
func rebuildDamagedStore(ctx context.Context, cfg Config, cause error, log *slog.Logger) (*store.Store, error) {
	path := filepath.Join(cfg.DataDir, store.StoreFileName)
	aside := fmt.Sprintf("%s.damaged-%d", path, time.Now().Unix())
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (and could not set it aside: %v)", cause, err)
		}
	}
	log.Warn("cluster: database damaged, set aside; rebuilding it from the log", "err", cause, "aside", aside)
	return store.OpenDir(ctx, cfg.DataDir, store.Options{Synchronous: cfg.Synchronous, Log: log, Now: cfg.Cluster.Clock})
}

// retentionEvery is how often --keep-days deletes old messages and the
// file sweep runs: daily is plenty for rules counted in days, and the
// first pass runs at start.
const retentionEvery = 24 * time.Hour

// clusterFirstMaintenance is how long after its start a cluster node
// runs its first retention pass.
const clusterFirstMaintenance = time.Minute

// retention deletes messages older than --keep-days (when set), then
// sweeps the files: uploads never sent within abandonedUploadAge, and the
// blobs no row names (leftovers of a crash). The deletions themselves
// scrub the text from every file of the data folder and remove their
// files' bytes on every node as they are applied (internal/store,
// scrub.go; internal/files, released.go), so the sweep is only the
// safety net. It runs until the server's base context ends. The server
// owns it (maintWG) and waits for it in Shutdown.
func (s *server) retention() {
	defer s.maintWG.Done()
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	if s.clog != nil {
		// A cluster node's first pass writes to the log (the sweep's
		// op): not while a cluster is forming, where the first node may
		// still be adopting a single node's data into the empty log.
		select {
		case <-s.base.Done():
			return
		case <-time.After(clusterFirstMaintenance):
		}
	}
	for {
		s.maintain()
		select {
		case <-s.base.Done():
			return
		case <-t.C:
		}
	}
}

// maintain is one pass of retention: purge, then sweep. Failures are
// logged and retried at the next pass; housekeeping never stops the server.
func (s *server) maintain() {
	if s.cfg.KeepDays > 0 {
		n, err := s.chat.PurgeOlderThan(s.base, s.cfg.KeepDays)
		if err != nil && s.base.Err() == nil {
			s.log.Error("retention", "err", err)
		} else if n > 0 {
			s.log.Info("retention deleted old messages", "messages", n, "keep-days", s.cfg.KeepDays)
		}
	}
	n, err := s.files.Sweep(s.base, s.store.Now().Add(-files.AbandonedUploadAge))
	if err != nil && s.base.Err() == nil {
		s.log.Error("file sweep", "err", err)
	} else if n > 0 {
		s.log.Info("file sweep removed unreferenced files", "files", n)
	}
}

// The node's side of the cluster's snapshots: a node restores the newest
// snapshot in place of its database before it opens the log, and a single
// node's data folder (or a cluster node's backup) becomes a cluster's first
// node: its database the first snapshot, its files in the object store.

// fetchSnapshot fetches snap into tmp, trying again while the object
// store cannot answer: a node that joins just as another died finds the
// snapshots' stream electing a leader, or its own JetStream not yet
// current, and a first Get times out. It waits as a node waits for the
// log's quorum: until it gets the snapshot or the server is stopped.
func (s *server) fetchSnapshot(snap cluster.Snapshot, tmp string) error {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		os.Remove(tmp)
		err := s.snaps.Fetch(s.base, snap, tmp)
		if err == nil {
			return nil
		}
		if s.base.Err() != nil {
			return err
		}
		s.log.Warn("cluster: fetching the newest snapshot; trying again", "snapshot", snap.Name, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-s.base.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// restoreSnapshot fetches snap and puts it in place of this node's
// database, which it closes and reopens: the node then applies the log
// from the snapshot's position + 1. Files are fetched from the object
// store as they are asked for.
func (s *server) restoreSnapshot(snap cluster.Snapshot) error {
	began := time.Now()
	dir := s.cfg.DataDir
	tmp := filepath.Join(dir, fmt.Sprintf("restore-%d.db", snap.Seq))
	if err := s.fetchSnapshot(snap, tmp); err != nil {
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
		// JetStream did not complete it (no leader for a while, no quorum):
		// say what, and that the same request may be sent again.
		s.log.Warn("cluster: removing a node", "node", req.Node, "removed_from", removed, "err", err)
		return apperr.New(apperr.ErrBusy, fmt.Sprintf("not removed everywhere yet (removed from %v): %v; send it again", removed, err))
	}
	s.log.Info("cluster: node removed from the replicated streams and the meta group", "node", req.Node, "removed_from", removed)
	web.WriteJSON(w, http.StatusOK, map[string]any{"node": req.Node, "removed": removed})
	return nil
}
