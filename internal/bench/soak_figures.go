package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"stompbox/internal/latency"
	"stompbox/internal/proto"
	"strings"
	"sync/atomic"
	"time"
)

// The soak's figures (soak.go): what was acknowledged against what
// arrived, the sample lines, the summary and the flatness verdict.

// The flatness rule: the mean of the last quarter of the samples against
// the mean of the second quarter (the first quarter holds the warm-up).
// Memory may grow 10 % (the heap's size follows GOGC and the live set,
// which wanders with the load); goroutines 5 % or 20, whichever is more
// (churn keeps a few connections and SockJS sessions in flight at any
// sample).
const (
	soakRSSTolerance       = 0.10
	soakGoroutineTolerance = 0.05
	soakGoroutineSlack     = 20
	soakMinSamples         = 4 // a quarter must hold at least one sample
)

// SoakSample is one sample line's figures.
type SoakSample struct {
	At    time.Duration // since the load started
	Rss   int64         // server VmRSS, bytes
	Stats proto.AdminStats
	Ok    bool // stats were read
}

// soakMark is how many messages were acknowledged at one instant: the
// "lost so far" of a sample counts those acknowledged by the previous
// sample and not delivered yet.
type soakMark struct {
	people []int64 // per person
	churn  []int   // per room: len(churnAcked)
	fanout int64
}

// soakTally is what the receivers have seen against a soakMark.
type soakTally struct {
	chatLost, fanoutLost, dup, ooo int64
}

// mark records what has been acknowledged so far.
func (run *soakRun) mark() soakMark {
	m := soakMark{people: make([]int64, len(run.people)), churn: make([]int, len(run.rooms)), fanout: run.fanoutAcked.Load()}
	for i, p := range run.people {
		m.people[i] = p.acked.Load()
	}
	for i, rm := range run.rooms {
		rm.mu.Lock()
		m.churn[i] = len(rm.churnAcked)
		rm.mu.Unlock()
	}
	return m
}

// tally counts, over the receivers still connected, the messages
// acknowledged by mark that they have not received, and the duplicates
// and out-of-order deliveries so far.
func (run *soakRun) tally(m soakMark) soakTally {
	var t soakTally
	for _, rm := range run.rooms {
		rm.mu.Lock()
		churned := rm.churnAcked[:m.churn[rm.index]] // a prefix: appends never change it
		rm.mu.Unlock()
		for _, p := range rm.members {
			if p.dead.Load() {
				continue
			}
			p.mu.Lock()
			for pos, q := range rm.members {
				tr := p.from[pos]
				t.chatLost += m.people[q.index] - SeenBelow(tr, m.people[q.index])
				t.dup += int64(tr.Dup)
				t.ooo += int64(tr.Ooo)
			}
			for _, k := range churned {
				if !seenSeq(p.churn, k) {
					t.chatLost++
				}
			}
			t.dup += int64(p.churn.Dup) // churners differ, so their order means nothing
			p.mu.Unlock()
		}
	}
	for _, s := range run.subs {
		if s.dead.Load() {
			continue
		}
		s.mu.Lock()
		t.fanoutLost += m.fanout - SeenBelow(s.seq, m.fanout)
		t.dup += int64(s.seq.Dup)
		t.ooo += int64(s.seq.Ooo)
		s.mu.Unlock()
	}
	return t
}

// SeenBelow counts the sequence numbers below n that t has seen.
func SeenBelow(t *SeqTracker, n int64) int64 {
	var c int
	for w, word := range t.Seen {
		lo := int64(w) * 64
		if lo >= n {
			break
		}
		if n-lo < 64 {
			word &= 1<<(n-lo) - 1
		}
		c += bits.OnesCount64(word)
	}
	return int64(c)
}

// seenSeq reports whether t has seen seq.
func seenSeq(t *SeqTracker, seq int) bool {
	w := seq / 64
	return seq >= 0 && w < len(t.Seen) && t.Seen[w]&(1<<(seq%64)) != 0
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// drainHist takes the latencies recorded since the last call and resets s.
func drainHist(s *shardedHist) *latency.Hist {
	h := &latency.Hist{}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		h.Merge(&sh.h)
		sh.h = latency.Hist{}
		sh.mu.Unlock()
	}
	return h
}

// sampleLine formats one sample: "soak t_s=… rss_mib=… …".
func (run *soakRun) sampleLine(s SoakSample, msgsPerS float64, interval *latency.Hist, t soakTally) string {
	l := &benchReport{}
	l.add("t_s", s.At.Round(10*time.Millisecond).Seconds())
	l.add("rss_mib", float64(s.Rss)/(1<<20))
	if s.Ok {
		l.add("goroutines", s.Stats.Goroutines)
		l.add("heap_alloc_mib", float64(s.Stats.HeapAllocBytes)/(1<<20))
		l.add("heap_inuse_mib", float64(s.Stats.HeapInuseBytes)/(1<<20))
		l.add("stomp_sessions", s.Stats.STOMPSessions)
		l.add("sockjs_sessions", s.Stats.SockJSSessions)
	} else {
		l.add("goroutines", -1) // the stats request failed: counted in errors
	}
	open := run.churnOpen.Load()
	for _, p := range run.people {
		if !p.dead.Load() {
			open++
		}
	}
	for _, s := range run.subs {
		if !s.dead.Load() {
			open++
		}
	}
	l.add("conns", open+1) // and the publisher
	l.add("msgs_per_s", msgsPerS)
	l.add("p99_ms", interval.Quantile(0.99))
	l.add("lost", t.chatLost+t.fanoutLost)
	l.add("dup", t.dup)
	l.add("ooo", t.ooo)
	l.add("churn", run.churnCycles.Load())
	l.add("slow_cut", run.slowCut.Load())
	l.add("errors", run.errs.Load())
	return "soak " + strings.Join(l.kv, " ")
}

// summarize adds the memory and goroutine figures of the samples: the
// first after the warm-up, the last and the largest.
func (run *soakRun) summarize(r *benchReport, samples []SoakSample, warmup time.Duration) {
	r.add("samples", len(samples))
	if len(samples) == 0 {
		return
	}
	first := samples[len(samples)-1]
	for _, s := range samples {
		if s.At >= warmup {
			first = s
			break
		}
	}
	last := samples[len(samples)-1]
	var maxRSS int64
	var maxG int
	var maxHeap uint64
	for _, s := range samples {
		maxRSS = max(maxRSS, s.Rss)
		maxG = max(maxG, s.Stats.Goroutines)
		maxHeap = max(maxHeap, s.Stats.HeapInuseBytes)
	}
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	r.add("rss_first_mib", mib(first.Rss))
	r.add("rss_last_mib", mib(last.Rss))
	r.add("rss_max_mib", mib(maxRSS))
	r.add("goroutines_first", first.Stats.Goroutines)
	r.add("goroutines_last", last.Stats.Goroutines)
	r.add("goroutines_max", maxG)
	r.add("heap_inuse_first_mib", mib(int64(first.Stats.HeapInuseBytes)))
	r.add("heap_inuse_last_mib", mib(int64(last.Stats.HeapInuseBytes)))
	r.add("heap_inuse_max_mib", mib(int64(maxHeap)))
	if q2, q4, ok := soakQuarters(samples); ok {
		r.add("rss_q2_mib", mib(int64(meanOf(q2, func(s SoakSample) float64 { return float64(s.Rss) }))))
		r.add("rss_q4_mib", mib(int64(meanOf(q4, func(s SoakSample) float64 { return float64(s.Rss) }))))
		r.add("goroutines_q2", meanOf(q2, func(s SoakSample) float64 { return float64(s.Stats.Goroutines) }))
		r.add("goroutines_q4", meanOf(q4, func(s SoakSample) float64 { return float64(s.Stats.Goroutines) }))
	}
}

// soakQuarters returns the second and the last quarter of the samples.
func soakQuarters(samples []SoakSample) (q2, q4 []SoakSample, ok bool) {
	n := len(samples)
	if n < soakMinSamples {
		return nil, nil, false
	}
	return samples[n/4 : n/2], samples[n-n/4:], true
}

func meanOf(ss []SoakSample, f func(SoakSample) float64) float64 {
	var sum float64
	for _, s := range ss {
		sum += f(s)
	}
	return sum / float64(len(ss))
}

// SoakVerdict applies the flatness rule (see soakRSSTolerance) and says
// why when it fails. Every sample must have its goroutine count.
func SoakVerdict(samples []SoakSample) (bool, string) {
	q2, q4, ok := soakQuarters(samples)
	if !ok {
		return false, fmt.Sprintf("%d samples, the rule needs %d", len(samples), soakMinSamples)
	}
	for _, s := range append(q2[:len(q2):len(q2)], q4...) {
		if !s.Ok {
			return false, "a sample of the second or last quarter lacks the server's figures"
		}
	}
	rss2 := meanOf(q2, func(s SoakSample) float64 { return float64(s.Rss) })
	rss4 := meanOf(q4, func(s SoakSample) float64 { return float64(s.Rss) })
	g2 := meanOf(q2, func(s SoakSample) float64 { return float64(s.Stats.Goroutines) })
	g4 := meanOf(q4, func(s SoakSample) float64 { return float64(s.Stats.Goroutines) })
	var why []string
	if rss4 > rss2*(1+soakRSSTolerance) {
		why = append(why, fmt.Sprintf("RSS grew from %.1f to %.1f MiB (more than %.0f %%)", rss2/(1<<20), rss4/(1<<20), soakRSSTolerance*100))
	}
	if g4 > max(g2*(1+soakGoroutineTolerance), g2+soakGoroutineSlack) {
		why = append(why, fmt.Sprintf("goroutines grew from %.0f to %.0f (more than %.0f %% and %d)", g2, g4, soakGoroutineTolerance*100, soakGoroutineSlack))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// stats reads GET /api/admin/stats with the admin's cookie.
func (a *benchAPI) stats(ctx context.Context, cookie string) (proto.AdminStats, error) {
	var st proto.AdminStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+benchSoakStatsPath, nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Cookie", cookie)
	resp, err := a.hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("GET %s: %w", benchSoakStatsPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET %s: %s %s", benchSoakStatsPath, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("GET %s: %w", benchSoakStatsPath, err)
	}
	return st, nil
}
