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
	s.undo.push(func() { st.Close() })
	return nil
}

// catchUp applies the log, and catches up with it, before any client is
// served: history and since-id must be whole when they are. A single node
// has nothing to catch up with.
func (s *server) catchUp() error {
	if s.clog == nil {
		return nil
	}
	return s.clog.Start(s.base)
}

// errSingleNodeData refuses to make a cluster node of a data folder that
// a single node has written to: the log knows nothing of its accounts and
// messages, so the nodes would disagree from the first entry.
var errSingleNodeData = errors.New("cluster: this data folder holds a single node's accounts or messages; a cluster node starts from an empty data folder (see README, Running several nodes)")

// joinCluster connects this node to the cluster's NATS and opens the log;
// from here on every store write goes through the log. The log is applied
// by catchUp, once the chat service exists.
func (s *server) joinCluster() error {
	if !s.cfg.Cluster.Enabled() {
		return nil
	}
	seq, err := s.store.AppliedSeq(s.base)
	if err != nil {
		return err
	}
	if seq == 0 {
		held, err := s.store.HoldsSingleNodeData(s.base)
		if err != nil {
			return err
		}
		if held {
			return errSingleNodeData
		}
	}
	if s.cluster, err = cluster.Connect(s.base, s.cfg.Cluster, s.cfg.DataDir, s.log); err != nil {
		return err
	}
	s.undo.push(s.leaveCluster) // the log and the bus too, once made
	if s.clog, err = cluster.OpenLog(s.base, s.cluster, s.store, s.log); err != nil {
		return err
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
