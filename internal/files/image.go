package files

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strings"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// Picture limits.
const (
	// maxDecodePixels bounds the pictures the server decodes for a
	// thumbnail: 50 megapixels is above any phone or consumer camera, and
	// maxDecodeBytes bounds what its decode may cost besides. A larger
	// picture, or a "decompression bomb" that claims to be one, is checked
	// with image.DecodeConfig, never decoded, and is shown as a file.
	maxDecodePixels = 50_000_000

	// ThumbMaxSide is the longest side of a thumbnail in pixels: the
	// message list shows pictures at most 320 CSS pixels wide, so this is
	// sharp on a 1.25x screen and stays a few tens of KiB.
	ThumbMaxSide = 400

	// thumbJPEGQuality is the JPEG quality of opaque thumbnails: 80 is
	// indistinguishable at thumbnail size and half the bytes of 95.
	thumbJPEGQuality = 80

	// maxDecodeBytes bounds the memory making one thumbnail may take at
	// its peak (decodeCost: the decoded picture, what the decoder holds
	// besides, and the scaling), and is also the budget all thumbnails
	// being made at once share (thumbqueue.go). 160 MiB is a 40-megapixel
	// RGBA PNG, or a 48-megapixel phone JPEG (4:2:0, sequential); a 16-bit
	// RGBA PNG takes 8 bytes a pixel, and a 7000×7000 RGB PNG of 190 KB
	// ("picture bomb", issue 22) decodes to 196 MB: those are shown as
	// files. A 512 MB Raspberry Pi affords it besides everything else.
	maxDecodeBytes = 160 << 20

	// sniffLen is how much of a file http.DetectContentType looks at.
	sniffLen = 512
)

// Picture types the server decodes, makes thumbnails of and serves inline.
// Everything else, SVG and HTML above all, is served as an attachment.
const (
	typeJPEG = "image/jpeg"
	typePNG  = "image/png"
	typeGIF  = "image/gif"
	typeWebP = "image/webp"
)

// IsSafeRaster reports whether typ is a raster picture type that browsers
// only ever display (no script, no external references): these alone are
// served inline and with their own Content-Type.
func IsSafeRaster(typ string) bool {
	switch typ {
	case typeJPEG, typePNG, typeGIF, typeWebP:
		return true
	}
	return false
}

// sniffType returns the MIME type of a file from its first bytes, without
// parameters (http.DetectContentType's "text/plain; charset=utf-8" becomes
// "text/plain"). What the client said the type was is never consulted.
func sniffType(head []byte) string {
	typ := http.DetectContentType(head)
	if i := strings.IndexByte(typ, ';'); i >= 0 {
		typ = typ[:i]
	}
	return strings.TrimSpace(typ)
}

// pictureInfo is what the server learnt from a picture.
type pictureInfo struct {
	width, height int    // as displayed: after EXIF orientation
	thumb         []byte // encoded thumbnail, nil if none was made
	thumbType     string // typeJPEG or typePNG
}

// errTooManyPixels means a picture is too large to decode safely.
var errTooManyPixels = errors.New("picture too large to decode")

// pictureCodec reads one picture type: its header alone, or the whole
// picture (the first frame of an animated GIF). It is chosen by the sniffed
// type, never by image.Decode's own sniffing.
type pictureCodec struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

// pictureCodecs are the picture types that get thumbnails.
var pictureCodecs = map[string]pictureCodec{
	typeJPEG: {jpeg.DecodeConfig, jpeg.Decode},
	typePNG:  {png.DecodeConfig, png.Decode},
	typeGIF:  {gif.DecodeConfig, gif.Decode},
	typeWebP: {webp.DecodeConfig, webp.Decode},
}

// decodeConfig reads a picture's dimensions from its header, for the
// sniffed type typ.
func decodeConfig(r io.Reader, typ string) (image.Config, error) {
	c, ok := pictureCodecs[typ]
	if !ok {
		return image.Config{}, fmt.Errorf("not a picture type: %s", typ)
	}
	return c.config(r)
}

// decodePicture decodes a picture of the sniffed type typ.
func decodePicture(r io.Reader, typ string) (image.Image, error) {
	c, ok := pictureCodecs[typ]
	if !ok {
		return nil, fmt.Errorf("not a picture type: %s", typ)
	}
	return c.decode(r)
}

// makeThumbnail reads a picture of type typ from open (called twice: once
// for the header, once to decode) and returns its displayed size and a
// thumbnail: readPictureHeader, then decodeThumbnail with no deadline. The
// file service goes through its thumbnail queue instead (thumbqueue.go),
// which runs the same two steps with a queue and a timeout between them.
func makeThumbnail(open func() (io.ReadCloser, error), typ string) (pictureInfo, error) {
	h, err := readPictureHeader(open, typ)
	if err != nil {
		return h.info, err
	}
	return decodeThumbnail(context.Background(), open, typ, h)
}

// pictureHeader is what a picture's header says, read without decoding it.
type pictureHeader struct {
	info        pictureInfo // displayed size (after EXIF orientation); no thumbnail yet
	orientation int         // EXIF orientation, 1 when none
	cost        int64       // bytes decoding and scaling it take at their peak (decodeCost)
}

// readPictureHeader reads a picture's header: its size, its EXIF
// orientation and what making its thumbnail would cost in memory. A
// picture over maxDecodePixels, or whose thumbnail would take more than
// maxDecodeBytes at its peak, gives errTooManyPixels with the size it
// claims; a corrupt header gives the decoder's error. Either way the
// caller shows it as a plain file, never decoding it.
func readPictureHeader(open func() (io.ReadCloser, error), typ string) (pictureHeader, error) {
	f, err := open()
	if err != nil {
		return pictureHeader{}, err
	}
	br := bufio.NewReaderSize(f, headerPeek)
	// The EXIF segment comes right after SOI, and the JPEG frame header or
	// the PNG header soon after: headerPeek holds them in any real picture.
	head, _ := br.Peek(headerPeek)
	h := pictureHeader{orientation: 1}
	if typ == typeJPEG {
		h.orientation = exifOrientation(head)
	}
	cfg, err := decodeConfig(br, typ)
	f.Close()
	if err != nil {
		return h, err
	}
	h.info = pictureInfo{width: cfg.Width, height: cfg.Height}
	if h.orientation >= 5 { // the four orientations that swap the axes
		h.info.width, h.info.height = h.info.height, h.info.width
	}
	pixels := int64(cfg.Width) * int64(cfg.Height)
	if cfg.Width <= 0 || cfg.Height <= 0 || pixels > maxDecodePixels {
		return h, errTooManyPixels
	}
	if h.cost = decodeCost(head, typ, cfg); h.cost > maxDecodeBytes {
		return h, errTooManyPixels
	}
	return h, nil
}

// decodeThumbnail decodes the picture whose header is h and returns its
// thumbnail. The decode gives up, with ctx's error, at the first read
// after ctx ends: decoders read as they go, so that is soon.
func decodeThumbnail(ctx context.Context, open func() (io.ReadCloser, error), typ string, h pictureHeader) (pictureInfo, error) {
	info := h.info
	f, err := open()
	if err != nil {
		return info, err
	}
	defer f.Close()
	img, err := decodePicture(bufio.NewReader(ctxReader{ctx, f}), typ)
	if err != nil {
		return info, err
	}
	if err := ctx.Err(); err != nil {
		return info, err
	}
	thumb := orient(scaleToFit(shrink(img, ThumbMaxSide), ThumbMaxSide), h.orientation)
	var buf bytes.Buffer
	if isOpaque(thumb) {
		err = jpeg.Encode(&buf, thumb, &jpeg.Options{Quality: thumbJPEGQuality})
		info.thumbType = typeJPEG
	} else {
		err = png.Encode(&buf, thumb)
		info.thumbType = typePNG
	}
	if err != nil {
		return info, fmt.Errorf("encode thumbnail: %w", err)
	}
	info.thumb = buf.Bytes()
	return info, nil
}

// ctxReader is a reader that fails with its context's error once the
// context ends, so that a decode reading from it stops there.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("thumbnail: %w", err)
	}
	return r.r.Read(p)
}

// headerPeek is how much of a picture makeThumbnail reads ahead to find
// its EXIF orientation and how it is encoded.
const headerPeek = 64 << 10

// decodeBytesPerPixel is what decoding the picture costs per pixel at its
// peak, not only what the decoded picture keeps: the standard library's
// progressive JPEG decoder holds every coefficient of every component (an
// 8×8 block of int32 per 64 pixels, so 4 bytes a pixel a component) besides
// the picture, and its interlaced PNG decoder holds each pass's picture
// besides the whole one. head is the start of the file.
func decodeBytesPerPixel(head []byte, typ string, m color.Model) int64 {
	n := bytesPerPixel(m)
	switch typ {
	case typeJPEG:
		n += jpegCoefficientBytes(head)
	case typePNG:
		// IHDR is the first chunk: signature (8), length and type (8),
		// width, height (8), depth, colour type, compression, filter (4),
		// then the interlace method.
		if len(head) > 28 && head[28] != 0 {
			n *= 2
		}
	}
	return n
}

// decodeCost is the memory making the thumbnail of a picture takes at its
// peak, from its header: the decode (decodeBytesPerPixel) and, while the
// decoded picture is still held, the scaling: shrink's box average, the
// kernel scaler's intermediate rows (four float64 a pixel, the thumbnail's
// width by the height it scales from: 90 MB for a 7000-pixel-high picture
// scaled directly) and the thumbnail with its oriented copy.
func decodeCost(head []byte, typ string, cfg image.Config) int64 {
	w, h := int64(cfg.Width), int64(cfg.Height)
	cost := w * h * decodeBytesPerPixel(head, typ, cfg.ColorModel)
	if k := int64(shrinkFactor(cfg.Width, cfg.Height, ThumbMaxSide)); k > 1 && canShrink(cfg.ColorModel) {
		w, h = (w+k-1)/k, (h+k-1)/k
		cost += w * h * 4
	}
	dw, dh := fitSize(int(w), int(h), ThumbMaxSide)
	if int64(dw) != w || int64(dh) != h {
		cost += int64(dw) * h * 32
	}
	return cost + 2*int64(dw)*int64(dh)*4
}

// jpegCoefficientBytes walks a JPEG's segments up to its frame header
// (SOFn) and returns what a progressive decode holds in coefficients per
// pixel of the picture: 4 bytes a sample, for each component at its own
// sampling (4:2:0 colour: 4 + 1 + 1 = 6 bytes). A sequential JPEG holds
// none. When the frame header is not within head, or does not parse, it
// assumes the costliest: four full-resolution components, 16 bytes.
func jpegCoefficientBytes(b []byte) int64 {
	const worst = 16
	if len(b) < 4 || b[0] != 0xFF || b[1] != jpegSOI {
		return worst
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return worst
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte before a marker
			i++
			continue
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		switch {
		case n < 2: // a length counts its own two bytes
			return worst
		case marker == jpegSOF0 || marker == jpegSOF1:
			return 0 // sequential: decoded block by block into the picture
		case marker >= jpegSOF0 && marker <= jpegSOF15 && marker != jpegDHT && marker != jpegJPG && marker != jpegDAC:
			// Frame header (ITU T.81 B.2.2): length, precision, height,
			// width, component count, then per component its id, sampling
			// factors (H<<4 | V) and table.
			seg := b[i+4 : min(len(b), i+2+n)]
			if len(seg) < 6 || len(seg) < 6+3*int(seg[5]) || seg[5] == 0 {
				return worst
			}
			var samples, hmax, vmax int64 = 0, 1, 1
			for c := range int(seg[5]) {
				h, v := int64(seg[7+3*c]>>4), int64(seg[7+3*c]&0x0F)
				samples += h * v
				hmax, vmax = max(hmax, h), max(vmax, v)
			}
			return (4*samples + hmax*vmax - 1) / (hmax * vmax)
		case marker == jpegSOS:
			return worst
		}
		i += 2 + n
	}
	return worst
}

// bytesPerPixel is what the decoded picture of a color model takes per
// pixel: YCbCr counts as 4:4:4 (3 bytes), the most its subsampling can be.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel:
		return 1
	case color.Gray16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// isOpaque reports whether img has no transparent pixel, so that a JPEG
// thumbnail loses nothing.
func isOpaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// scaleToFit returns img scaled down so that neither side exceeds side,
// or img itself if it already fits. The kernel scaler averages every
// source pixel under each target pixel, so fine detail does not alias.
func scaleToFit(img image.Image, side int) image.Image {
	b := img.Bounds()
	w, h := fitSize(b.Dx(), b.Dy(), side)
	if w == b.Dx() && h == b.Dy() {
		return img
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

// fitSize is the size of a w×h picture scaled down, keeping its aspect,
// so that neither side exceeds side; w×h itself when it fits.
func fitSize(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, h*side/w)
	}
	return max(1, w*side/h), side
}

// orient applies an EXIF orientation (1–8, TIFF 6.0 tag 0x0112) to img, so
// that the thumbnail shows the picture the way the camera was held.
func orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		for x := range w {
			var dx, dy int
			switch o {
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // rotated 180°
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // mirrored along the top-left diagonal
				dx, dy = y, x
			case 6: // rotated 90° clockwise to display
				dx, dy = h-1-y, x
			case 7: // mirrored along the top-right diagonal
				dx, dy = h-1-y, w-1-x
			case 8: // rotated 90° counter-clockwise to display
				dx, dy = y, w-1-x
			}
			dst.Set(dx, dy, color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)))
		}
	}
	return dst
}

// JPEG and EXIF constants (JPEG ISO/IEC 10918-1 B.1.1; Exif 2.32 §4.5; TIFF 6.0).
const (
	jpegSOI          = 0xD8   // start of image
	jpegSOS          = 0xDA   // start of scan: no metadata after it
	jpegSOF0         = 0xC0   // frame header, baseline sequential
	jpegSOF1         = 0xC1   // frame header, extended sequential
	jpegSOF15        = 0xCF   // the last frame header marker (C0 to CF, less DHT, JPG and DAC)
	jpegDHT          = 0xC4   // Huffman tables, in the SOF range but no frame header
	jpegJPG          = 0xC8   // reserved, likewise
	jpegDAC          = 0xCC   // arithmetic coding conditioning, likewise
	jpegAPP1         = 0xE1   // where Exif lives
	tiffTypeShort    = 3      // a 16-bit unsigned value
	exifOrientTag    = 0x0112 // Orientation, in IFD0
	tiffEntrySize    = 12     // tag, type, count, value or offset
	maxIFDEntries    = 512    // far above any real IFD0; bounds a hostile count
	exifHeaderLength = 6      // "Exif\x00\x00"
)

// exifOrientation returns the EXIF orientation (1–8) of a JPEG from its
// first bytes, or 1 when there is none or anything is malformed. It walks
// the marker segments up to the first APP1 carrying Exif, then IFD0 of the
// TIFF structure inside it, checking every offset against the segment, so
// that no input can make it read out of bounds (FuzzEXIFOrientation).
func exifOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != jpegSOI {
		return 1
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte before a marker
			i++
			continue
		}
		if marker == jpegSOS || marker == 0xD9 {
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 {
			return 1
		}
		start, end := i+4, i+2+n
		if end > len(b) {
			return 1
		}
		if marker == jpegAPP1 && end-start >= exifHeaderLength && string(b[start:start+exifHeaderLength]) == "Exif\x00\x00" {
			return tiffOrientation(b[start+exifHeaderLength : end])
		}
		i = end
	}
	return 1
}

// tiffOrientation reads the Orientation tag from IFD0 of a TIFF structure.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	count := int(bo.Uint16(t[ifd:]))
	if count > maxIFDEntries {
		return 1
	}
	for k := range count {
		e := ifd + 2 + int64(k)*tiffEntrySize
		if e+tiffEntrySize > int64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != exifOrientTag {
			continue
		}
		if bo.Uint16(t[e+2:]) != tiffTypeShort || bo.Uint32(t[e+4:]) != 1 {
			return 1
		}
		if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
