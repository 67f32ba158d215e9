package files

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"testing"
)

// exifJPEG returns a small JPEG of w×h whose APP1 segment carries the EXIF
// orientation o in byte order bo (o = 0: no APP1 at all).
func exifJPEG(t testing.TB, w, h, o int, bo binary.AppendByteOrder) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			// Left half red, right half blue: orientation is visible in the thumbnail.
			c := color.RGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if o == 0 {
		return b
	}
	return append(append(append([]byte{}, b[:2]...), exifAPP1(o, bo)...), b[2:]...)
}

// exifAPP1 builds an APP1 segment with a TIFF IFD0 holding one entry,
// Orientation = o.
func exifAPP1(o int, bo binary.AppendByteOrder) []byte {
	var tiff []byte
	if bo == binary.LittleEndian {
		tiff = []byte("II")
	} else {
		tiff = []byte("MM")
	}
	tiff = bo.AppendUint16(tiff, 42)
	tiff = bo.AppendUint32(tiff, 8)
	tiff = bo.AppendUint16(tiff, 1) // one entry
	tiff = bo.AppendUint16(tiff, exifOrientTag)
	tiff = bo.AppendUint16(tiff, tiffTypeShort)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, uint16(o))
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	body := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, jpegAPP1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(body)+2))
	return append(seg, body...)
}

func TestEXIFOrientation(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		name string
		in   []byte
		want int
	}{
		{"no exif", exifJPEG(t, 8, 8, 0, le), 1},
		{"intel 6", exifJPEG(t, 8, 8, 6, le), 6},
		{"motorola 8", exifJPEG(t, 8, 8, 8, be), 8},
		{"motorola 3", exifJPEG(t, 8, 8, 3, be), 3},
		{"out of range 9", exifJPEG(t, 8, 8, 9, le), 1},
		{"not a jpeg", []byte("GIF89a......"), 1},
		{"empty", nil, 1},
		{"truncated segment", exifJPEG(t, 8, 8, 6, le)[:10], 1},
		{"segment length past the end", []byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x'}, 1},
		{"ifd offset past the end", append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10}, []byte("Exif\x00\x00II\x2a\x00\xff\xff\x00\x00")...), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exifOrientation(tt.in); got != tt.want {
				t.Errorf("exifOrientation = %d, want %d", got, tt.want)
			}
		})
	}
}

// FuzzEXIFOrientation checks that no input makes the parser panic or read
// out of bounds, and that it always answers a valid orientation.
func FuzzEXIFOrientation(f *testing.F) {
	f.Add(exifJPEG(f, 4, 4, 6, binary.LittleEndian)[:200])
	f.Add(exifJPEG(f, 4, 4, 8, binary.BigEndian)[:200])
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 'E', 'x', 'i', 'f', 0, 0})
	f.Add([]byte{})
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC2, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := exifOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		// The same segment walk finds the frame header: at most 4 bytes a
		// sample for each of at most 255 components.
		if c := jpegCoefficientBytes(b); c < 0 || c > 4*255 {
			t.Fatalf("coefficient bytes %d", c)
		}
	})
}

func openBytes(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func TestMakeThumbnail(t *testing.T) {
	t.Run("rotated jpeg", func(t *testing.T) {
		// 40×20 stored, orientation 6: shown 20×40, the red (left) half on top.
		info, err := makeThumbnail(openBytes(exifJPEG(t, 40, 20, 6, binary.LittleEndian)), typeJPEG)
		if err != nil {
			t.Fatal(err)
		}
		if info.width != 20 || info.height != 40 || info.thumbType != typeJPEG {
			t.Fatalf("info %dx%d %s, want 20x40 image/jpeg", info.width, info.height, info.thumbType)
		}
		th, err := jpeg.Decode(bytes.NewReader(info.thumb))
		if err != nil {
			t.Fatal(err)
		}
		if b := th.Bounds(); b.Dx() != 20 || b.Dy() != 40 {
			t.Fatalf("thumbnail %v, want 20x40", b)
		}
		if r, _, bl, _ := th.At(10, 5).RGBA(); r < bl {
			t.Errorf("top of the rotated thumbnail is not red")
		}
		if r, _, bl, _ := th.At(10, 35).RGBA(); bl < r {
			t.Errorf("bottom of the rotated thumbnail is not blue")
		}
	})
	t.Run("large png scaled, transparency kept", func(t *testing.T) {
		img := image.NewNRGBA(image.Rect(0, 0, 1000, 500))
		var buf bytes.Buffer
		png.Encode(&buf, img)
		info, err := makeThumbnail(openBytes(buf.Bytes()), typePNG)
		if err != nil {
			t.Fatal(err)
		}
		th, err := png.Decode(bytes.NewReader(info.thumb))
		if err != nil || info.thumbType != typePNG {
			t.Fatalf("thumbnail %s: %v", info.thumbType, err)
		}
		if b := th.Bounds(); b.Dx() != ThumbMaxSide || b.Dy() != ThumbMaxSide/2 {
			t.Fatalf("thumbnail %v, want %dx%d", b, ThumbMaxSide, ThumbMaxSide/2)
		}
	})
	t.Run("too many pixels is not decoded", func(t *testing.T) {
		// A GIF header claiming 10000×10000 (100 MP) and nothing else.
		gif := []byte("GIF89a\x10\x27\x10\x27\x80\x00\x00\x00\x00\x00\xff\xff\xff\x3b")
		info, err := makeThumbnail(openBytes(gif), typeGIF)
		if err != errTooManyPixels || info.thumb != nil || info.width != 10000 {
			t.Fatalf("info %+v, err %v; want errTooManyPixels with the claimed size", info, err)
		}
	})
	t.Run("wide pixels bound the decode too", func(t *testing.T) {
		// 30 MP is under maxDecodePixels, but at 16-bit RGBA it would take 240 MB.
		if got := bytesPerPixel(color.NRGBA64Model) * 6000 * 5000; got <= maxDecodeBytes {
			t.Fatalf("test premise: %d bytes", got)
		}
		var buf bytes.Buffer
		png.Encode(&buf, image.NewNRGBA64(image.Rect(0, 0, 1, 1)))
		b := buf.Bytes()
		binary.BigEndian.PutUint32(b[16:], 6000) // IHDR width and height,
		binary.BigEndian.PutUint32(b[20:], 5000) // then its CRC
		binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
		info, err := makeThumbnail(openBytes(b), typePNG)
		if err != errTooManyPixels || info.width != 6000 {
			t.Fatalf("info %+v, err %v; want errTooManyPixels", info, err)
		}
	})
	t.Run("a progressive JPEG counts its coefficients", func(t *testing.T) {
		// SOI, JFIF, then a progressive frame header (SOF2) for 7000×7000 with three
		// full-resolution components (4:4:4), and no scan: 49 MP is under
		// maxDecodePixels, and the picture alone would take 147 MB, but the
		// decoder would hold 12 bytes a pixel of coefficients besides, 735 MB
		// in all, before it even read a scan.
		sof2 := []byte{0xFF, 0xD8,
			0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, // APP0 JFIF
			0xFF, 0xC2, 0x00, 0x11, 0x08, 0x1B, 0x58, 0x1B, 0x58, 0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00,
			0xFF, 0xD9}
		if got := jpegCoefficientBytes(sof2); got != 12 {
			t.Fatalf("coefficient bytes %d, want 12", got)
		}
		info, err := makeThumbnail(openBytes(sof2), typeJPEG)
		if err != errTooManyPixels || info.width != 7000 {
			t.Fatalf("info %+v, err %v; want errTooManyPixels without decoding", info, err)
		}
		// The same frame as 4:2:0 (luma sampled 2×2) costs 4 + 1 + 1 bytes.
		sof2[31] = 0x22
		if got := jpegCoefficientBytes(sof2); got != 6 {
			t.Fatalf("4:2:0 coefficient bytes %d, want 6", got)
		}
		// A sequential JPEG holds no coefficients: the 12 MP photos of phones
		// are thumbnailed as before.
		var buf bytes.Buffer
		jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil)
		if got := jpegCoefficientBytes(buf.Bytes()); got != 0 {
			t.Fatalf("baseline JPEG: %d coefficient bytes", got)
		}
		if got := jpegCoefficientBytes([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF}); got != 16 {
			t.Fatalf("frame header out of reach: %d, want the worst case 16", got)
		}
	})
	t.Run("an interlaced PNG counts its passes", func(t *testing.T) {
		var buf bytes.Buffer
		png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 1, 1)))
		b := buf.Bytes()
		plain := decodeBytesPerPixel(b, typePNG, color.NRGBAModel)
		b[28] = 1 // IHDR interlace method: Adam7
		if got := decodeBytesPerPixel(b, typePNG, color.NRGBAModel); got != 2*plain {
			t.Fatalf("interlaced %d bytes a pixel, plain %d", got, plain)
		}
	})
	t.Run("webp", func(t *testing.T) {
		// A 1×1 lossless WebP.
		webp := []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")
		if got := sniffType(webp); got != typeWebP {
			t.Fatalf("sniffed %q", got)
		}
		info, err := makeThumbnail(openBytes(webp), typeWebP)
		if err != nil || info.width != 1 || info.height != 1 || info.thumb == nil {
			t.Fatalf("info %+v, err %v", info, err)
		}
	})
	t.Run("corrupt picture", func(t *testing.T) {
		b := exifJPEG(t, 64, 64, 0, binary.LittleEndian)
		if _, err := makeThumbnail(openBytes(b[:len(b)/2]), typeJPEG); err == nil {
			t.Fatal("half a JPEG made a thumbnail")
		}
	})
}

// BenchmarkThumbnail12MP is the thumbnail of a 12-megapixel camera JPEG
// (4000×3000, noisy enough not to compress to nothing): decode, scale,
// encode, as an upload does.
func BenchmarkThumbnail12MP(b *testing.B) {
	const w, h = 4000, 3000
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	seed := uint32(1)
	for i := range img.Y {
		seed = seed*1664525 + 1013904223
		img.Y[i] = byte(i%w/16) + byte(seed>>28)
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = byte(i%(w/2)/8), byte(i/(w/2)/6)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	src := buf.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		info, err := makeThumbnail(openBytes(src), typeJPEG)
		if err != nil || info.thumb == nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(src))/(1<<20), "MiB/jpeg")
}
