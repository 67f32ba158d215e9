package files

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// pictureBomb returns a PNG of w×h opaque black RGB pixels, a few hundred
// KiB that decode to w*h*4 bytes: a "decompression bomb". It is written
// row by row, never holding the picture; tag goes into a tEXt chunk so
// that bombs with different tags are different files of the same pixels.
func pictureBomb(t testing.TB, w, h int, tag string) []byte {
	t.Helper()
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestSpeed)
	row := make([]byte, 1+3*w) // filter byte 0, then the pixels
	for range h {
		if _, err := zw.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		out.Write(n[:])
		crc := crc32.NewIEEE()
		io.WriteString(crc, typ)
		crc.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.BigEndian.PutUint32(n[:], crc.Sum32())
		out.Write(n[:])
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB, deflate, adaptive filter, not interlaced
	chunk("IHDR", ihdr)
	chunk("tEXt", []byte("Comment\x00"+tag))
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

// peakHeap samples the live heap objects every millisecond while f runs
// and returns the most seen above what was live before.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// BenchmarkThumbnailBomb makes the thumbnail of PNGs of a few hundred KiB
// that decode to hundreds of MB (issue 22, item 5) and reports the peak
// heap it took: 7000×7000 is the bomb of the issue (refused since: over
// maxDecodeBytes), 6000×6000 the largest square RGB PNG still decoded.
func BenchmarkThumbnailBomb(b *testing.B) {
	for _, side := range []int{7000, 6000} {
		b.Run(fmt.Sprint(side), func(b *testing.B) {
			bomb := pictureBomb(b, side, side, "bench")
			open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bomb)), nil }
			b.ReportAllocs()
			var peak uint64
			var err error
			for b.Loop() {
				peak = max(peak, peakHeap(func() { _, err = makeThumbnail(open, typePNG) }))
			}
			b.Logf("%d bytes: %v", len(bomb), err)
			b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
		})
	}
}
