package files

import (
	"image"
	"image/color"
)

// shrink.go: the first, cheap step of scaling a large picture down to a
// thumbnail. The kernel scaler (scaleToFit) keeps an intermediate row of
// four float64 for each thumbnail column and each source row, 90 MB for a
// 7000-pixel-high picture, and visits every source pixel through the
// image.Image interface; averaging k×k blocks of the decoded pixels first
// brings the picture down to about twice the thumbnail in one pass over
// its bytes, with no aliasing (a box filter), and leaves the kernel scaler
// a small picture.

// shrinkFactor is the block side that brings a w×h picture down to no
// less than twice side on its longer side; 1 when it is already that
// small.
func shrinkFactor(w, h, side int) int {
	return max(1, max(w, h)/(2*side))
}

// canShrink reports whether shrink has a fast path for pictures of the
// color model m (decodeCost counts the scaling of the others at full size).
func canShrink(m color.Model) bool {
	switch m {
	case color.RGBAModel, color.NRGBAModel, color.YCbCrModel, color.GrayModel:
		return true
	}
	_, ok := m.(color.Palette)
	return ok
}

// shrink returns img averaged over k×k blocks (shrinkFactor), as an
// *image.RGBA (an *image.NRGBA for one), or img itself when it is small
// enough already or of a type with no fast path.
func shrink(img image.Image, side int) image.Image {
	b := img.Bounds()
	k := shrinkFactor(b.Dx(), b.Dy(), side)
	if k < 2 {
		return img
	}
	w, h := (b.Dx()+k-1)/k, (b.Dy()+k-1)/k
	switch src := img.(type) {
	case *image.RGBA:
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		boxAverage4(dst.Pix, dst.Stride, src.Pix, src.Stride, b.Dx(), b.Dy(), k)
		return dst
	case *image.NRGBA:
		dst := image.NewNRGBA(image.Rect(0, 0, w, h))
		boxAverage4(dst.Pix, dst.Stride, src.Pix, src.Stride, b.Dx(), b.Dy(), k)
		return dst
	case *image.Gray:
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		forBlocks(b.Dx(), b.Dy(), k, func(x0, y0, x1, y1 int) color.RGBA {
			var sum, n int
			for y := y0; y < y1; y++ {
				row := src.Pix[y*src.Stride:]
				for x := x0; x < x1; x++ {
					sum += int(row[x])
				}
				n += x1 - x0
			}
			g := uint8(sum / n)
			return color.RGBA{g, g, g, 0xFF}
		}, dst)
		return dst
	case *image.YCbCr:
		// Luma averaged over the block; chroma, which the eye resolves far
		// less finely (and which is usually subsampled already), taken at
		// the block's centre.
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		forBlocks(b.Dx(), b.Dy(), k, func(x0, y0, x1, y1 int) color.RGBA {
			var sum, n int
			for y := y0; y < y1; y++ {
				row := src.Y[y*src.YStride:]
				for x := x0; x < x1; x++ {
					sum += int(row[x])
				}
				n += x1 - x0
			}
			c := src.COffset(b.Min.X+(x0+x1)/2, b.Min.Y+(y0+y1)/2)
			r, g, bl := color.YCbCrToRGB(uint8(sum/n), src.Cb[c], src.Cr[c])
			return color.RGBA{r, g, bl, 0xFF}
		}, dst)
		return dst
	case *image.Paletted:
		pal := make([]color.RGBA, 256)
		for i, c := range src.Palette {
			r, g, bl, a := c.RGBA()
			pal[i] = color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}
		}
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		forBlocks(b.Dx(), b.Dy(), k, func(x0, y0, x1, y1 int) color.RGBA {
			var r, g, bl, a, n int
			for y := y0; y < y1; y++ {
				row := src.Pix[y*src.Stride:]
				for x := x0; x < x1; x++ {
					c := pal[row[x]]
					r, g, bl, a = r+int(c.R), g+int(c.G), bl+int(c.B), a+int(c.A)
				}
				n += x1 - x0
			}
			return color.RGBA{uint8(r / n), uint8(g / n), uint8(bl / n), uint8(a / n)}
		}, dst)
		return dst
	}
	return img
}

// forBlocks calls avg for each k×k block of a w×h picture (the last row
// and column of blocks may be smaller; coordinates from 0) and puts what
// it returns into dst, one pixel a block.
func forBlocks(w, h, k int, avg func(x0, y0, x1, y1 int) color.RGBA, dst *image.RGBA) {
	for by := 0; by*k < h; by++ {
		y0, y1 := by*k, min(h, by*k+k)
		for bx := 0; bx*k < w; bx++ {
			x0, x1 := bx*k, min(w, bx*k+k)
			c := avg(x0, y0, x1, y1)
			i := by*dst.Stride + bx*4
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = c.R, c.G, c.B, c.A
		}
	}
}

// boxAverage4 averages k×k blocks of a w×h picture of four bytes a pixel
// (src, from its first pixel) into dst, channel by channel. Averaging
// premultiplied RGBA is exact; for NRGBA it weighs a transparent pixel's
// colour like an opaque one's, which a thumbnail does not show.
func boxAverage4(dst []byte, dstStride int, src []byte, srcStride, w, h, k int) {
	sums := make([]int, 4*((w+k-1)/k))
	for by := 0; by*k < h; by++ {
		clear(sums)
		y0, y1 := by*k, min(h, by*k+k)
		for y := y0; y < y1; y++ {
			row := src[y*srcStride : y*srcStride+4*w]
			for bx := 0; bx*k < w; bx++ {
				var s0, s1, s2, s3 int
				px := row[4*bx*k : 4*min(w, bx*k+k)]
				for i := 0; i+3 < len(px); i += 4 {
					s0, s1, s2, s3 = s0+int(px[i]), s1+int(px[i+1]), s2+int(px[i+2]), s3+int(px[i+3])
				}
				s := sums[4*bx : 4*bx+4]
				s[0], s[1], s[2], s[3] = s[0]+s0, s[1]+s1, s[2]+s2, s[3]+s3
			}
		}
		out := dst[by*dstStride:]
		for bx := range len(sums) / 4 {
			n := (y1 - y0) * (min(w, bx*k+k) - bx*k)
			for c := range 4 {
				out[4*bx+c] = uint8(sums[4*bx+c] / n)
			}
		}
	}
}
