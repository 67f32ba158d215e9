package files

import (
	"context"
	"slices"
)

// released.go: the bytes of deleted files leave every node's disk as the
// deletion is applied (issue 22). The store hands over, after each commit
// that deleted file rows (a message deleted, retention, an upload removed
// or abandoned), on every node and whichever node the op came from, the
// blobs those rows named (store.OnBlobsReleased). They are removed here
// from this node's disk and from the cluster's object store, unless
// another row still names them. Every node deletes the object (deleting
// one that is gone is no error): the node where the deletion was made may
// have died meanwhile, and the daily sweep only finds objects through a
// blob still on some disk.

// released queues blobs for removal. It runs on the store's writer
// goroutine, so it only queues: the removal takes blobMu, which an upload
// holds while it waits for the writer. After Close it queues nothing.
func (s *Service) released(blobs []string) {
	s.releasedMu.Lock()
	defer s.releasedMu.Unlock()
	if s.releaseClosed {
		return
	}
	s.releasedQ = append(s.releasedQ, blobs...)
	if !s.releasing {
		s.releasing = true
		s.releaseWG.Add(1)
		go s.removeReleased()
	}
}

// removeReleased removes the queued blobs, where no row names them any
// more, from this disk and the replica, until the queue is empty or
// Close gives up waiting.
func (s *Service) removeReleased() {
	defer s.releaseWG.Done()
	ctx := context.Background()
	for {
		s.releasedMu.Lock()
		batch := s.releasedQ
		s.releasedQ = nil
		if len(batch) == 0 || s.releaseStop {
			s.releasing = false
			s.releasedMu.Unlock()
			return
		}
		s.releasedMu.Unlock()
		slices.Sort(batch)
		batch = slices.Compact(batch)
		s.blobMu.Lock()
		for _, sum := range batch {
			if s.stopReleasing() {
				break
			}
			s.removeUnreferenced(ctx, sum)
		}
		s.blobMu.Unlock()
	}
}

// stopReleasing reports whether Close stopped waiting for the removals.
func (s *Service) stopReleasing() bool {
	s.releasedMu.Lock()
	defer s.releasedMu.Unlock()
	return s.releaseStop
}

// Close ends the removal of released blobs: none is queued after it, and
// the queue is worked off while ctx lasts; then the removal stops after
// the blob in progress (each bounded by replicaDeleteTimeout). Blobs left
// on this disk then are removed by the next sweep, which finds no row
// naming them. Call it before the store and the replica close: the
// removal asks both.
func (s *Service) Close(ctx context.Context) {
	s.releasedMu.Lock()
	s.releaseClosed = true
	s.releasedMu.Unlock()
	done := make(chan struct{})
	go func() {
		s.releaseWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.releasedMu.Lock()
	s.releaseStop = true
	s.releasedMu.Unlock()
	s.log.Warn("files: stopped before every deleted file's bytes were removed; the next sweep removes the rest")
	<-done
}
