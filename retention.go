package main

import (
	"stompbox/internal/files"
	"time"
)

// retentionEvery is how often --keep-days deletes old messages and the
// file sweep runs: daily is plenty for rules counted in days, and the
// first pass runs at start.
const retentionEvery = 24 * time.Hour

// retention deletes messages older than --keep-days (when set), then
// sweeps the files: uploads never sent within abandonedUploadAge, and the
// blobs of files whose last message is gone. It runs until the server's
// base context ends. The server owns it (maintWG) and waits for it in
// Shutdown.
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
