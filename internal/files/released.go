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
// holds while it waits for the writer.
func (s *Service) released(blobs []string) {
	s.releasedMu.Lock()
	defer s.releasedMu.Unlock()
	s.releasedQ = append(s.releasedQ, blobs...)
	if !s.releasing {
		s.releasing = true
		go s.removeReleased()
	}
}

// removeReleased removes the queued blobs, where no row names them any
// more, from this disk and the replica, until the queue is empty.
func (s *Service) removeReleased() {
	ctx := context.Background()
	for {
		s.releasedMu.Lock()
		batch := s.releasedQ
		s.releasedQ = nil
		if len(batch) == 0 {
			s.releasing = false
			s.releasedMu.Unlock()
			return
		}
		s.releasedMu.Unlock()
		slices.Sort(batch)
		batch = slices.Compact(batch)
		s.blobMu.Lock()
		for _, sum := range batch {
			s.removeUnreferenced(ctx, sum)
		}
		s.blobMu.Unlock()
	}
}
