package latency

import (
	"encoding/json"
	"testing"
	"time"
)

func TestHistBucketBounds(t *testing.T) {
	// Every bucket's upper bound falls in that bucket, and one
	// microsecond more falls in the next: JSON bounds map back exactly.
	for b := 0; b < histBuckets-1; b++ {
		up := histUpper(b)
		if got := histBucket(up); got != b {
			t.Fatalf("bucket of histUpper(%d) = %v is %d", b, up, got)
		}
		if got := histBucket(up + time.Microsecond); got != b+1 {
			t.Fatalf("bucket of histUpper(%d)+1µs is %d, want %d", b, got, b+1)
		}
	}
}

func TestHistWindowAndJSON(t *testing.T) {
	var h Hist
	for i := 1; i <= 100; i++ {
		h.Add(time.Duration(i) * time.Millisecond) // setup: 1 … 100 ms
	}
	before := h
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Microsecond) // the window: 1 µs … 1 ms
	}
	w := h.Since(&before)
	if w.N != 1000 {
		t.Fatalf("window n = %d, want 1000", w.N)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		if got := w.Quantile(tc.q); got < tc.want || float64(got) > float64(tc.want)*1.02 {
			t.Errorf("window quantile(%v) = %v, want %v within +2%%", tc.q, got, tc.want)
		}
	}

	// Through JSON and back, as the load tool reads the server's stats.
	raw, err := json.Marshal(h.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var j Snapshot
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	back := j.Hist()
	if back.counts != h.counts || back.N != h.N || back.Max != h.Max {
		t.Errorf("JSON round trip changed the histogram: n %d → %d, max %v → %v", h.N, back.N, h.Max, back.Max)
	}
	if j.P50US != h.Quantile(0.5).Microseconds() || j.P99US != h.Quantile(0.99).Microseconds() {
		t.Errorf("JSON p50 %d p99 %d, histogram %v %v", j.P50US, j.P99US, h.Quantile(0.5), h.Quantile(0.99))
	}

	var empty Hist
	if e := empty.Snapshot(); e.N != 0 || e.Buckets == nil || len(e.Buckets) != 0 || e.P99US != 0 {
		t.Errorf("empty histogram JSON %+v", e)
	}
}

func TestHistCumulativeAndSum(t *testing.T) {
	var h Hist
	for _, d := range []time.Duration{50 * time.Microsecond, 100 * time.Microsecond, 3 * time.Millisecond, 2 * time.Second} {
		h.Add(d)
	}
	if want := 50*time.Microsecond + 100*time.Microsecond + 3*time.Millisecond + 2*time.Second; h.Sum != want {
		t.Errorf("sum %v, want %v", h.Sum, want)
	}
	bounds := []time.Duration{10 * time.Microsecond, 100 * time.Microsecond, 5 * time.Millisecond, time.Second, time.Minute}
	got := h.Cumulative(bounds)
	want := []uint64{0, 2, 3, 3, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("cumulative %v at %v, want %v", got, bounds, want)
		}
	}
	before := h
	h.Add(time.Millisecond)
	if w := h.Since(&before); w.Sum != time.Millisecond || w.N != 1 {
		t.Errorf("window sum %v n %d, want 1ms and 1", w.Sum, w.N)
	}
}
