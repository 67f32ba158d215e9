package main

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"stompbox/internal/store"
	"sync"
	"testing"
	"time"
)

// pictureBombs are n PNGs of side×side black RGB pixels: a few hundred
// KiB that decode to side*side*4 bytes (issue 22, item 5). They are written
// row by row, never holding the picture, and differ in a tEXt chunk only,
// so that they are different files (no thumbnail reuse).
func pictureBombs(t testing.TB, side, n int) [][]byte {
	t.Helper()
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestSpeed)
	row := make([]byte, 1+3*side) // filter byte 0, then the pixels
	for range side {
		zw.Write(row)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var bombs [][]byte
	for i := range n {
		var out bytes.Buffer
		out.WriteString("\x89PNG\r\n\x1a\n")
		chunk := func(typ string, data []byte) {
			out.Write(binary.BigEndian.AppendUint32(nil, uint32(len(data))))
			start := out.Len()
			out.WriteString(typ)
			out.Write(data)
			out.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(out.Bytes()[start:])))
		}
		ihdr := binary.BigEndian.AppendUint32(nil, uint32(side))
		ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(side))
		chunk("IHDR", append(ihdr, 8, 2, 0, 0, 0)) // 8-bit RGB, not interlaced
		chunk("tEXt", fmt.Appendf(nil, "Comment\x00bomb %d", i))
		chunk("IDAT", idat.Bytes())
		chunk("IEND", nil)
		bombs = append(bombs, out.Bytes())
	}
	return bombs
}

// uploadAsync uploads content as name to room with c, for goroutines
// (no t.Fatal): the attachment or an error.
func (f *filesFixture) uploadAsync(c *http.Client, room int64, name string, content []byte) (store.Attachment, error) {
	ct, body := multipartBody(name, content)
	resp, err := c.Post(fmt.Sprintf("%s/api/rooms/%d/files", f.base, room), ct, bytes.NewReader(body))
	if err != nil {
		return store.Attachment{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return store.Attachment{}, fmt.Errorf("upload %s: %d %s", name, resp.StatusCode, b)
	}
	var a store.Attachment
	return a, json.Unmarshal(b, &a)
}

// TestThumbnailFairness: while one user's ten picture bombs wait for their
// thumbnails, another user's small picture gets its thumbnail within 2 s
// (issue 22, item 5). The bombs are 6000×6000 RGB PNGs of 131 KB, the
// largest that are still decoded (144 MB each; 3000×3000 under the race
// detector, which decodes them as slowly). Before the queue, every
// thumbnail waited for one slot in arrival order, so the small picture
// waited for all ten.
func TestThumbnailFairness(t *testing.T) {
	f := newFilesFixture(t)
	side := 6000
	if raceDetector {
		side = 3000
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i, bomb := range pictureBombs(t, side, 10) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.uploadAsync(f.alice, f.room, fmt.Sprintf("bomb%d.png", i), bomb)
			errs <- err
		}()
	}
	t.Cleanup(wg.Wait) // the server stops after the bombs are done
	checkFor(t, "alice's bombs queued", func() bool {
		st := f.srv.files.Stats()
		return st.ThumbnailsRunning > 0 && st.ThumbnailsWaiting >= 5
	})
	start := time.Now()
	a, err := f.uploadAsync(f.bob, f.room, "small.png", pngBytes(t, 50, 50))
	took := time.Since(start)
	t.Logf("bob's 50×50 picture: %v, %+v", took, f.srv.files.Stats())
	if err != nil {
		t.Fatal(err)
	}
	if a.ThumbURL == "" || a.Width != 50 {
		t.Errorf("bob's picture %+v: want a thumbnail", a)
	}
	if took > 2*time.Second {
		t.Errorf("bob's picture took %v behind alice's bombs, want under 2 s", took)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err) // every bomb is stored, thumbnail or not
		}
	}
}

// TestThumbnailBombStoredNotDecoded: a 7000×7000 PNG of 178 KB would take
// 196 MB decoded and 90 MB more to scale: over the decode budget, it is
// stored and served as a file, with the size its header claims, and never
// decoded (issue 22, item 5).
func TestThumbnailBombStoredNotDecoded(t *testing.T) {
	f := newFilesFixture(t)
	bomb := pictureBombs(t, 7000, 1)[0]
	a := f.uploadOK(t, f.alice, "bomb.png", bomb)
	if a.ThumbURL != "" || a.Width != 7000 || a.Height != 7000 || a.Type != "image/png" {
		t.Errorf("attachment %+v: want a 7000×7000 PNG without a thumbnail", a)
	}
	if st := f.srv.files.Stats(); st.Thumbnails != 0 || st.ThumbnailsFailed != 1 {
		t.Errorf("stats %+v: want no thumbnail made, one picture refused", st)
	}
	r := f.req(t, f.alice, "GET", a.URL, "", nil)
	if r.status != 200 || !bytes.Equal(r.body, bomb) {
		t.Fatalf("download: %d, %d bytes", r.status, len(r.body))
	}
}
