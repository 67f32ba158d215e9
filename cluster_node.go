package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"stompbox/internal/cluster"
	"stompbox/internal/store"
	"time"
)

// errSingleNodeData refuses to make a cluster node of a data folder that
// a single node has written to: the log knows nothing of its accounts and
// messages, so the nodes would disagree from the first entry.
var errSingleNodeData = errors.New("cluster: this data folder holds a single node's accounts or messages; a cluster node starts from an empty data folder (see README, Running several nodes)")

// joinCluster connects this node to the cluster's NATS and opens the log;
// from here on every store write goes through the log. The log is applied
// from clog.start, once the chat service exists.
func (s *server) joinCluster() error {
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
	if s.clog, err = cluster.OpenLog(s.base, s.cluster, s.store, s.log); err != nil {
		s.leaveCluster()
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
