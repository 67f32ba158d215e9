// store.go is the store's face: the database in the data folder, and on a
// cluster node the replicated log it is a copy of.
//
// It opens the store (a cluster node's damaged copy is set aside and
// rebuilt from the log), joins the cluster and attaches the log as the
// store's replicator, and catches up with the log before any client is
// served. It also runs the data's housekeeping: -keep-days and the sweep of
// unreferenced files. The store itself is internal/store; the log is
// internal/cluster.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"stompbox/internal/cluster"
	"stompbox/internal/files"
	"stompbox/internal/store"
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
	if s.snaps, err = cluster.OpenSnapshots(s.base, s.cluster); err != nil {
		return err
	}
	first, last, _, err := s.snaps.LogBounds(s.base)
	if err != nil {
		return err
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
// blobs of files whose last message is gone. It runs until the server's
// base context ends. The server owns it (maintWG) and waits for it in
// Shutdown.
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
