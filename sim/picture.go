package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"
	"time"

	"github.com/citymesh/citymesh/robot"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// PictureSize is the width and height of a check picture in pixels.
const (
	PictureWidth  = 320
	PictureHeight = 240
)

// CheckPicture draws the picture a patrol robot takes of an anomaly: a
// synthetic scene of the check's kind (a blocked escape route, a bollard in
// the wrong position, a lamp on or off, a setpoint display), framed in red,
// with the kind, the asset, the time and what was observed and expected
// written on it. It returns the PNG encoding. The picture depends only on
// its arguments, so the same anomaly always gives the same bytes.
func CheckPicture(kind robot.CheckKind, asset, observed, expected string, at time.Time) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, PictureWidth, PictureHeight))
	night := kind == robot.CheckLighting
	// Sky and ground.
	for y := range PictureHeight {
		var c color.RGBA
		if y < 130 {
			f := uint8(y * 60 / 130)
			c = color.RGBA{120 + f, 170 + f/2, 230, 255}
			if night {
				c = color.RGBA{15 + f/3, 20 + f/3, 50 + f/2, 255}
			}
		} else {
			c = color.RGBA{110, 110, 105, 255}
		}
		for x := range PictureWidth {
			img.SetRGBA(x, y, c)
		}
	}
	rect := func(x0, y0, x1, y1 int, c color.RGBA) {
		draw.Draw(img, image.Rect(x0, y0, x1, y1), &image.Uniform{c}, image.Point{}, draw.Src)
	}
	switch kind {
	case robot.CheckEscapeRoute:
		// A corridor in perspective with an exit sign; boxes in the way.
		for y := 40; y < 200; y++ {
			w := (y - 40) * 150 / 160
			rect(160-20-w, y, 160+20+w, y+1, color.RGBA{200, 200, 195, 255})
		}
		rect(130, 45, 190, 65, color.RGBA{0, 150, 70, 255})
		drawText(img, 138, 60, "EXIT", color.RGBA{255, 255, 255, 255}, 1)
		if observed == "blocked" {
			rect(105, 130, 165, 185, color.RGBA{150, 100, 50, 255})
			rect(150, 110, 215, 185, color.RGBA{170, 120, 60, 255})
			rect(125, 95, 175, 130, color.RGBA{135, 90, 45, 255})
		}
	case robot.CheckBollard:
		h := 90
		if observed == "down" {
			h = 12
		}
		rect(140, 190-h, 180, 190, color.RGBA{90, 90, 95, 255})
		for y := 190 - h + 6; y+6 < 190; y += 18 {
			rect(140, y, 180, y+6, color.RGBA{220, 30, 30, 255})
		}
		rect(130, 188, 190, 196, color.RGBA{60, 60, 60, 255})
	case robot.CheckLighting:
		rect(155, 50, 165, 200, color.RGBA{70, 70, 75, 255})
		lamp := color.RGBA{50, 50, 55, 255}
		if observed == "on" {
			lamp = color.RGBA{255, 230, 120, 255}
			for r := 40; r > 0; r -= 8 {
				a := uint8(100 - 2*r)
				rect(160-r, 55-r/2, 160+r, 55+r/2, color.RGBA{a + 100, a + 90, a / 2, 255})
			}
		}
		rect(140, 45, 180, 60, lamp)
	default: // hvac_setpoint
		rect(90, 50, 230, 170, color.RGBA{235, 235, 230, 255})
		rect(100, 70, 220, 140, color.RGBA{20, 40, 30, 255})
		drawText(img, 110, 122, observed+"C", color.RGBA{80, 255, 120, 255}, 3)
	}
	if observed == "unreadable" || observed == "failed" || observed == "" {
		for d := -PictureHeight; d < PictureWidth; d += 12 {
			for y := 30; y < 200; y++ {
				if x := d + y; x >= 0 && x < PictureWidth {
					img.SetRGBA(x, y, color.RGBA{160, 160, 160, 255})
				}
			}
		}
		drawText(img, 84, 115, "UNREADABLE", color.RGBA{255, 255, 255, 255}, 2)
	}
	// Red frame and captions.
	red := color.RGBA{220, 20, 20, 255}
	rect(0, 0, PictureWidth, 4, red)
	rect(0, PictureHeight-4, PictureWidth, PictureHeight, red)
	rect(0, 0, 4, PictureHeight, red)
	rect(PictureWidth-4, 0, PictureWidth, PictureHeight, red)
	black := color.RGBA{0, 0, 0, 255}
	white := color.RGBA{255, 255, 255, 255}
	rect(4, 4, PictureWidth-4, 22, black)
	drawText(img, 8, 18, "ANOMALY "+string(kind), color.RGBA{255, 80, 80, 255}, 1)
	rect(4, PictureHeight-44, PictureWidth-4, PictureHeight-4, black)
	drawText(img, 8, PictureHeight-31, asset, white, 1)
	drawText(img, 8, PictureHeight-18, at.UTC().Format(time.RFC3339), white, 1)
	drawText(img, 8, PictureHeight-6, fmt.Sprintf("saw %s, want %s", observed, expected), white, 1)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("check picture: %w", err)
	}
	return buf.Bytes(), nil
}

// PictureRef returns the reference under which a picture is stored: its
// SHA-256, "sha256:<hex>".
func PictureRef(png []byte) string {
	s := sha256.Sum256(png)
	return "sha256:" + hex.EncodeToString(s[:])
}

// drawText writes s with its baseline at (x, y) in the 7×13 basic font,
// enlarged scale times.
func drawText(dst *image.RGBA, x, y int, s string, c color.RGBA, scale int) {
	face := basicfont.Face7x13
	// The basic font has ASCII only.
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '°':
			return -1
		case r == '…':
			return '.'
		case r < 32 || r > 126:
			return '?'
		}
		return r
	}, s)
	w := font.MeasureString(face, s).Ceil()
	if w == 0 {
		return
	}
	src := image.NewRGBA(image.Rect(0, 0, w, 13))
	d := font.Drawer{Dst: src, Src: &image.Uniform{c}, Face: face, Dot: fixed.P(0, 10)}
	d.DrawString(s)
	for sy := range 13 {
		for sx := range w {
			p := src.RGBAAt(sx, sy)
			if p.A < 128 {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					px, py := x+sx*scale+dx, y-10*scale+sy*scale+dy
					if image.Pt(px, py).In(dst.Rect) {
						dst.SetRGBA(px, py, c)
					}
				}
			}
		}
	}
}
