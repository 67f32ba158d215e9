package files

import (
	"errors"
	"stompbox/internal/apperr"
	"sync/atomic"
)

// stats.go: the file service's counters since start, which Stats copies
// for the metrics (internal/metrics reads them at each scrape).

// counters are the file service's counters. Safe for concurrent use.
type counters struct {
	uploads     atomic.Uint64 // uploads stored
	uploadBytes atomic.Uint64 // their sizes added up
	tooLarge    atomic.Uint64 // uploads refused by -max-upload
	overQuota   atomic.Uint64 // uploads refused by -upload-quota
	noSpace     atomic.Uint64 // uploads refused by the disk floors or -files-max-total (floors.go)
	thumbnails  atomic.Uint64 // thumbnails made
	noThumbnail atomic.Uint64 // pictures that could not be decoded safely: shown as files
}

// Stats are the file service's figures: gauges as of now, counters since
// start.
type Stats struct {
	Uploads           uint64 // uploads stored
	UploadBytes       uint64 // their sizes added up (a blob stored once for two uploads counts twice)
	RefusedTooLarge   uint64 // uploads over -max-upload (HTTP 413)
	RefusedQuota      uint64 // uploads over -upload-quota (HTTP 413)
	RefusedNoSpace    uint64 // uploads refused by -min-free or -files-max-total (HTTP 507)
	ThumbnailsWaiting int    // pictures waiting for their turn to be decoded now (thumbqueue.go)
	ThumbnailsRunning int    // pictures being decoded now (at most thumbSlots)
	Thumbnails        uint64 // thumbnails made
	ThumbnailsFailed  uint64 // pictures that got none: not decodable, or too large to decode safely
}

// Stats copies the figures. Safe for concurrent use.
func (s *Service) Stats() Stats {
	c := &s.stats
	thumbWaiting, thumbRunning := s.thumbs.counts()
	return Stats{
		Uploads:           c.uploads.Load(),
		UploadBytes:       c.uploadBytes.Load(),
		RefusedTooLarge:   c.tooLarge.Load(),
		RefusedQuota:      c.overQuota.Load(),
		RefusedNoSpace:    c.noSpace.Load(),
		ThumbnailsWaiting: thumbWaiting,
		ThumbnailsRunning: thumbRunning,
		Thumbnails:        c.thumbnails.Load(),
		ThumbnailsFailed:  c.noThumbnail.Load(),
	}
}

// countUpload counts what Upload returned.
func (c *counters) countUpload(size int64, err error) {
	switch {
	case err == nil:
		c.uploads.Add(1)
		c.uploadBytes.Add(uint64(size))
	case errors.As(err, new(UploadTooLargeError)):
		c.tooLarge.Add(1)
	case errors.As(err, new(uploadQuotaError)):
		c.overQuota.Add(1)
	case errors.Is(err, apperr.ErrNoSpace):
		c.noSpace.Add(1)
	}
}
