package latency

import (
	"math/bits"
	"time"
)

// Latency histogram: log-linear buckets in microseconds, exact below
// histLinear µs and within 1/histSub (about 1.6 %) above, in fixed memory
// whatever the run length. This is the HdrHistogram idea in 30 lines. The
// load tool counts end-to-end latencies in it, and the store its commits,
// so that the tool can read the server's figures for its own run window.
const (
	histSub     = 64             // buckets per power of two above the linear range
	histLinear  = 2 * histSub    // values below this many µs get a bucket each
	histBuckets = 48*histSub + 1 // up to 2^47 µs, far past any run
	HistShards  = 64             // mutex shards, so a thousand readers rarely contend
)

// Hist counts latencies. It is not safe for concurrent use; see
// shardedHist.
type Hist struct {
	counts [histBuckets]uint64
	N      uint64
	Max    time.Duration
	Sum    time.Duration // the samples added up, exactly: a Prometheus histogram's _sum
}

func histBucket(d time.Duration) int {
	v := uint64(max(d, 0) / time.Microsecond)
	if v < histLinear {
		return int(v)
	}
	e := bits.Len64(v) - 7 // v>>e is in [64, 127]
	b := e*histSub + int(v>>e)
	return min(b, histBuckets-1)
}

// histUpper is the largest latency bucket b holds, so quantiles err high.
func histUpper(b int) time.Duration {
	if b < histLinear {
		return time.Duration(b) * time.Microsecond
	}
	e := b/histSub - 1
	sub := uint64(b - e*histSub)
	return time.Duration((sub+1)<<e-1) * time.Microsecond
}

func (h *Hist) Add(d time.Duration) {
	h.counts[histBucket(d)]++
	h.N++
	h.Max = max(h.Max, d)
	h.Sum += max(d, 0)
}

func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.N += o.N
	h.Max = max(h.Max, o.Max)
	h.Sum += o.Sum
}

// Since returns what was added to h after earlier, a copy of h taken
// before: the figures of one window of a running counter. Its max is the
// upper bound of its highest bucket, capped by h's maximum, since the
// exact maximum of a window is not kept.
func (h *Hist) Since(earlier *Hist) *Hist {
	w := &Hist{Sum: h.Sum - earlier.Sum}
	top := -1
	for i, c := range h.counts {
		if c > earlier.counts[i] {
			w.counts[i] = c - earlier.counts[i]
			w.N += w.counts[i]
			top = i
		}
	}
	if top >= 0 {
		w.Max = min(histUpper(top), h.Max)
	}
	return w
}

// Quantile returns the latency below which a fraction q of samples lie
// (bucket upper bound, capped by the exact maximum).
func (h *Hist) Quantile(q float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	rank := uint64(q*float64(h.N) + 0.5)
	rank = min(max(rank, 1), h.N)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histUpper(b), h.Max)
		}
	}
	return h.Max
}

// Cumulative returns, for each of bounds (ascending), how many samples
// were at most that long: the _bucket{le=…} counts of a Prometheus
// histogram. A bucket of h that straddles a bound is counted above it, so
// a count errs low by at most one bucket (1/64 of the bound), and
// quantiles estimated from the counts err high, as Quantile's do.
func (h *Hist) Cumulative(bounds []time.Duration) []uint64 {
	out := make([]uint64, len(bounds))
	var seen uint64
	i := 0
	for b, c := range h.counts {
		for i < len(bounds) && histUpper(b) > bounds[i] {
			out[i] = seen
			i++
		}
		if i == len(bounds) {
			return out
		}
		seen += c
	}
	for ; i < len(bounds); i++ {
		out[i] = seen
	}
	return out
}

// Snapshot is a latencyHist as JSON: its non-empty buckets only, each as
// [upper bound in µs, count], so that a reader can take the difference of
// two readings and find the quantiles of the window between them.
type Snapshot struct {
	N       uint64      `json:"n"`
	MaxUS   int64       `json:"max_us"`
	P50US   int64       `json:"p50_us"`
	P99US   int64       `json:"p99_us"`
	Buckets [][2]uint64 `json:"buckets"`
}

func (h *Hist) Snapshot() Snapshot {
	j := Snapshot{N: h.N, MaxUS: h.Max.Microseconds(), P50US: h.Quantile(0.5).Microseconds(), P99US: h.Quantile(0.99).Microseconds(), Buckets: [][2]uint64{}}
	for b, c := range h.counts {
		if c > 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(histUpper(b) / time.Microsecond), c})
		}
	}
	return j
}

// Hist rebuilds the histogram from its JSON form. A bucket bound that is
// not one of ours lands in the bucket that holds it.
func (j Snapshot) Hist() *Hist {
	h := &Hist{Max: time.Duration(j.MaxUS) * time.Microsecond}
	for _, b := range j.Buckets {
		h.counts[histBucket(time.Duration(b[0])*time.Microsecond)] += b[1]
		h.N += b[1]
	}
	return h
}
