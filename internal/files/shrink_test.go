package files

import (
	"image"
	"image/color"
	"testing"
)

// TestShrink: a large picture of every type with a fast path comes out of
// shrink and scaleToFit at thumbnail size with its left half still left
// (dark) and its right half right (bright), its edges averaged in.
func TestShrink(t *testing.T) {
	const w, h = 4000, 2000
	r := image.Rect(0, 0, w, h)
	pal := color.Palette{color.Black, color.White}
	pics := map[string]image.Image{
		"rgba":     image.NewRGBA(r),
		"nrgba":    image.NewNRGBA(r),
		"gray":     image.NewGray(r),
		"ycbcr":    image.NewYCbCr(r, image.YCbCrSubsampleRatio420),
		"paletted": image.NewPaletted(r, pal),
	}
	for name, img := range pics {
		t.Run(name, func(t *testing.T) {
			for y := range h {
				for x := w / 2; x < w; x++ {
					switch p := img.(type) {
					case *image.RGBA:
						p.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
					case *image.NRGBA:
						p.SetNRGBA(x, y, color.NRGBA{255, 255, 255, 255})
					case *image.Gray:
						p.SetGray(x, y, color.Gray{255})
					case *image.YCbCr:
						p.Y[p.YOffset(x, y)] = 255
					case *image.Paletted:
						p.SetColorIndex(x, y, 1)
					}
				}
			}
			for i := range w / 2 * h { // the left half opaque black where zero is transparent
				if p, ok := img.(*image.RGBA); ok {
					p.Pix[4*(i/(w/2)*w+i%(w/2))+3] = 255
				}
				if p, ok := img.(*image.NRGBA); ok {
					p.Pix[4*(i/(w/2)*w+i%(w/2))+3] = 255
				}
			}
			if ycc, ok := img.(*image.YCbCr); ok {
				for i := range ycc.Cb {
					ycc.Cb[i], ycc.Cr[i] = 128, 128
				}
			}
			small := shrink(img, ThumbMaxSide)
			if b := small.Bounds(); b.Dx() != 800 || b.Dy() != 400 {
				t.Fatalf("shrunk to %v, want 800×400 (k = 5)", b)
			}
			th := scaleToFit(small, ThumbMaxSide)
			if b := th.Bounds(); b.Dx() != ThumbMaxSide || b.Dy() != ThumbMaxSide/2 {
				t.Fatalf("thumbnail %v", b)
			}
			if l, _, _, _ := th.At(50, 100).RGBA(); l > 0x1000 {
				t.Errorf("left half is %#x, want dark", l)
			}
			if rr, _, _, a := th.At(350, 100).RGBA(); rr < 0xF000 || a < 0xF000 {
				t.Errorf("right half is %#x (alpha %#x), want white", rr, a)
			}
		})
	}
}
