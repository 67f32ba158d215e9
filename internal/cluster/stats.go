package cluster

import (
	"stompbox/internal/latency"
	"sync"
	"sync/atomic"
	"time"
)

// stats.go: the replicated log's counters since start, for the metrics
// (internal/metrics reads them with Stats, and the log's position with
// Status, at each scrape).

// logCounters time the writes this node submits. Safe for concurrent use.
type logCounters struct {
	unstored atomic.Uint64 // ops no quorum stored in time: refused "cluster unavailable"

	mu     sync.Mutex
	quorum latency.Hist // each op this node submitted, from publish to the quorum's ack
}

func (c *logCounters) observeQuorum(d time.Duration) {
	c.mu.Lock()
	c.quorum.Add(d)
	c.mu.Unlock()
}

// LogStats are the log's counters since start.
type LogStats struct {
	QuorumWrites latency.Hist // ops this node submitted, from publish to the quorum's ack (stored on a majority's disks)
	Unstored     uint64       // ops refused because no quorum stored them in time
}

// Stats copies the counters. Safe for concurrent use.
func (l *Log) Stats() LogStats {
	c := &l.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	return LogStats{QuorumWrites: c.quorum, Unstored: c.unstored.Load()}
}
