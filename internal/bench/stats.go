package bench

import (
	"bytes"
	"fmt"
	"os"
	"stompbox/internal/latency"
	"strconv"
	"strings"
	"sync"
	"time"
)

// shardedHist is a latencyHist many goroutines add to: each caller passes
// a key (its connection number) that picks a shard.
type shardedHist struct {
	shards [latency.HistShards]struct {
		mu sync.Mutex
		h  latency.Hist
	}
}

func (s *shardedHist) add(key int, d time.Duration) {
	sh := &s.shards[key%latency.HistShards]
	sh.mu.Lock()
	sh.h.Add(d)
	sh.mu.Unlock()
}

// total merges the shards; call it once the adders are done.
func (s *shardedHist) total() *latency.Hist {
	var h latency.Hist
	for i := range s.shards {
		s.shards[i].mu.Lock()
		h.Merge(&s.shards[i].h)
		s.shards[i].mu.Unlock()
	}
	return &h
}

// SeqTracker classifies the sequence numbers one receiver saw from one
// sender that numbers from 0: new, duplicated, or out of order (below the
// highest seen). It is owned by the receiver's reader goroutine.
type SeqTracker struct {
	Seen     []uint64 // bit per sequence number
	Distinct int
	Dup, Ooo int
	highest  int
}

func NewSeqTracker(n int) *SeqTracker {
	return &SeqTracker{Seen: make([]uint64, (n+63)/64), highest: -1}
}

// Observe records seq and reports whether it was new.
func (t *SeqTracker) Observe(seq int) bool {
	if seq < 0 {
		t.Dup++ // not a number we sent: count it against the server
		return false
	}
	if w := seq / 64; w >= len(t.Seen) {
		t.Seen = append(t.Seen, make([]uint64, w+1-len(t.Seen))...)
	}
	bit := uint64(1) << (seq % 64)
	if t.Seen[seq/64]&bit != 0 {
		t.Dup++
		return false
	}
	t.Seen[seq/64] |= bit
	t.Distinct++
	if seq < t.highest {
		t.Ooo++
	}
	t.highest = max(t.highest, seq)
	return true
}

// procStats is what /proc says about the server process.
type procStats struct {
	CPU time.Duration // user + system time
	RSS int64         // VmRSS, bytes
	HWM int64         // VmHWM (peak RSS since start or the last reset), bytes
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (sysconf would need cgo).
const clockTicks = 100

// readProcStats reads /proc/PID/stat and /proc/PID/status.
func readProcStats(pid int) (procStats, error) {
	var ps procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, fmt.Errorf("read server stats: %w", err)
	}
	// The command name may hold spaces and parentheses; fields resume
	// after the last ')'. utime and stime are fields 14 and 15 (proc(5)).
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(fields) < 13 {
		return ps, fmt.Errorf("read server stats: short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	ps.CPU = time.Duration(ut+st) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, fmt.Errorf("read server status: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		if k == "VmRSS" {
			ps.RSS = kb << 10
		} else {
			ps.HWM = kb << 10
		}
	}
	return ps, nil
}

// resetPeakRSS makes VmHWM start again from the current RSS (proc(5),
// clear_refs "5"), so that each scenario reports its own peak. It needs
// the right to write the file (same user or root); without it the peak
// is the process's lifetime peak, which the report then says.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// benchMaxFiles is the file limit the tool asks for: room for 100,000
// connections and their HTTP side requests (Linux's default nr_open is 2^20).
const benchMaxFiles = 1 << 18
