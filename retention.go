package main

import "time"

// retentionEvery is how often --keep-days deletes old messages: daily is
// plenty for a rule counted in days, and the first pass runs at start.
const retentionEvery = 24 * time.Hour

// retention deletes messages older than --keep-days until the server's base
// context ends. The server owns it (maintWG) and waits for it in Shutdown.
func (s *server) retention() {
	defer s.maintWG.Done()
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		n, err := s.chat.PurgeOlderThan(s.base, s.cfg.KeepDays)
		if err != nil && s.base.Err() == nil {
			s.log.Error("retention", "err", err)
		} else if n > 0 {
			s.log.Info("retention deleted old messages", "messages", n, "keep-days", s.cfg.KeepDays)
		}
		select {
		case <-s.base.Done():
			return
		case <-t.C:
		}
	}
}
