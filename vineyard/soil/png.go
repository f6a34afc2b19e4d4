package soil

import (
	"fmt"
	"github.com/paulmach/orb"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// maxPNGCells bounds the cells on a side of a PNG map: a thin plot mapped on
// small cells may have MaxCells cells in one column, and one pixel per cell
// would then make an image of gigabytes.
const maxPNGCells = 8192

// rampStops are the colours of the value scale at 0, ¼, ½, ¾ and 1: five
// samples of matplotlib's "viridis" colour map, which stays ordered in
// lightness and readable for colour-blind viewers.
var rampStops = [5]color.RGBA{
	{68, 1, 84, 255}, {59, 82, 139, 255}, {33, 145, 140, 255}, {94, 201, 98, 255}, {253, 231, 37, 255},
}

// ClassColor returns the legend colour of a class: red (A) through green (C)
// to blue (E), a diverging scheme centred on the target class.
func ClassColor(c Class) color.RGBA {
	switch c {
	case ClassA:
		return color.RGBA{215, 48, 39, 255}
	case ClassB:
		return color.RGBA{252, 141, 89, 255}
	case ClassC:
		return color.RGBA{26, 152, 80, 255}
	case ClassD:
		return color.RGBA{145, 191, 219, 255}
	case ClassE:
		return color.RGBA{69, 117, 180, 255}
	}
	return color.RGBA{255, 255, 255, 0}
}

// rampColor returns the value-scale colour at t in [0, 1].
func rampColor(t float64) color.RGBA {
	if math.IsNaN(t) {
		t = 0
	}
	t = math.Max(0, math.Min(1, t)) * 4
	i := int(t)
	if i >= 4 {
		return rampStops[4]
	}
	f := t - float64(i)
	a, b := rampStops[i], rampStops[i+1]
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + f*(float64(y)-float64(x)))) }
	return color.RGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 255}
}

// WritePNG draws the map as a PNG heat map: cells coloured by value on the
// viridis scale (cells outside the plot left white), samples as black dots,
// and a legend with the value scale in the map's unit, a bar of the class
// each value falls in, and the class limits. Text uses basicfont.Face7x13.
// The output is the same for the same input. Maps with more than 8192 cells
// on a side are refused.
func WritePNG(w io.Writer, m *Map, samples []Sample) error {
	if m.Rows == 0 || m.Cols == 0 || len(m.Cells) != m.Rows*m.Cols {
		return fmt.Errorf("write png: map has no grid")
	}
	if max(m.Cols, m.Rows) > maxPNGCells {
		return fmt.Errorf("write png: map of %d×%d cells, at most %d on a side (one pixel per cell)", m.Cols, m.Rows, maxPNGCells)
	}
	px := max(1, min(16, 640/max(m.Cols, m.Rows)))
	mapW, mapH := m.Cols*px, m.Rows*px
	const (
		margin  = 10
		top     = 30
		rampH   = 240
		legendW = 250
	)
	width := margin + mapW + 2*margin + legendW
	height := max(top+mapH+margin, top+rampH+30+7*15+margin)
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{255, 255, 255, 255}}, image.Point{}, draw.Src)

	span := m.Max - m.Min
	norm := func(v float64) float64 {
		if !(span > 0) {
			return 0.5
		}
		return (v - m.Min) / span
	}
	for _, c := range m.Cells {
		if !c.Inside() {
			continue
		}
		r := image.Rect(margin+c.Col*px, top+c.Row*px, margin+(c.Col+1)*px, top+(c.Row+1)*px)
		draw.Draw(img, r, &image.Uniform{rampColor(norm(c.Value))}, image.Point{}, draw.Src)
	}
	black := color.RGBA{0, 0, 0, 255}
	for _, s := range samples {
		x, y := m.Projection.Forward(s.Lon, s.Lat)
		cx := margin + int(math.Floor((x-m.MinX)/m.CellSize*float64(px)))
		cy := top + int(math.Floor((m.MaxY-y)/m.CellSize*float64(px)))
		r := image.Rect(cx-1, cy-1, cx+2, cy+2).Intersect(image.Rect(margin, top, margin+mapW, top+mapH))
		draw.Draw(img, r, &image.Uniform{black}, image.Point{}, draw.Src)
	}

	// The plot's outline, 2 px dark grey, over the cells.
	outline := color.RGBA{40, 40, 40, 255}
	clip := image.Rect(margin-2, top-2, margin+mapW+2, top+mapH+2)
	toPx := func(p orb.Point) (float64, float64) {
		x, y := m.Projection.Forward(p.Lon(), p.Lat())
		return float64(margin) + (x-m.MinX)/m.CellSize*float64(px), float64(top) + (m.MaxY-y)/m.CellSize*float64(px)
	}
	for _, poly := range m.Plot {
		for _, ring := range poly {
			for i := 1; i < len(ring); i++ {
				x0, y0 := toPx(ring[i-1])
				x1, y1 := toPx(ring[i])
				drawLine(img, x0, y0, x1, y1, outline, clip)
			}
		}
	}

	face := basicfont.Face7x13
	text := func(x, y int, s string) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(black), Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	title := fmt.Sprintf("%s (%s), %s", m.Nutrient.Label(), m.Unit(), m.Method)
	if m.Title != "" {
		title = m.Title + ": " + title
	}
	if m.Variogram != nil {
		title += ", " + m.Variogram.Model.String()
	}
	text(margin, 18, title)

	// Value ramp with the class bar beside it.
	lx := margin + mapW + 2*margin
	ly := top
	toValue := classLimitToValue(m.Nutrient, m.Form)
	for i := 0; i < rampH; i++ {
		t := 1 - float64(i)/float64(rampH-1)
		v := m.Min + t*span
		draw.Draw(img, image.Rect(lx, ly+i, lx+20, ly+i+1), &image.Uniform{rampColor(t)}, image.Point{}, draw.Src)
		cl := m.Scheme.Classify(ToSchemeUnit(m.Nutrient, m.Form, v))
		draw.Draw(img, image.Rect(lx+22, ly+i, lx+32, ly+i+1), &image.Uniform{ClassColor(cl)}, image.Point{}, draw.Src)
	}
	text(lx+38, ly+5, fmt.Sprintf("%.3g max", m.Max))
	text(lx+38, ly+rampH+4, fmt.Sprintf("%.3g min", m.Min))
	if span > 0 {
		for _, lim := range []float64{m.Scheme.AB, m.Scheme.BC, m.Scheme.CD, m.Scheme.DE} {
			v := toValue(lim)
			if v <= m.Min || v >= m.Max {
				continue
			}
			y := ly + int(math.Round((1-(v-m.Min)/span)*float64(rampH-1)))
			draw.Draw(img, image.Rect(lx+32, y, lx+36, y+1), &image.Uniform{black}, image.Point{}, draw.Src)
			if y-ly > 14 && ly+rampH-y > 14 {
				text(lx+38, y+4, fmt.Sprintf("%.3g", v))
			}
		}
	}
	text(lx, ly+rampH+20, m.Unit())

	// Class swatches with their limits in the scheme's unit.
	sy := ly + rampH + 38
	text(lx, sy, "classes ("+m.Scheme.Unit+"):")
	s := m.Scheme
	labels := []struct {
		c Class
		l string
	}{
		{ClassA, fmt.Sprintf("A very low  < %g", s.AB)},
		{ClassB, fmt.Sprintf("B low       %g - %g", s.AB, s.BC)},
		{ClassC, fmt.Sprintf("C optimal   %g - %g", s.BC, s.CD)},
		{ClassD, fmt.Sprintf("D high      %g - %g", s.CD, s.DE)},
		{ClassE, fmt.Sprintf("E very high > %g", s.DE)},
	}
	for i, l := range labels {
		y := sy + 8 + i*15
		draw.Draw(img, image.Rect(lx, y, lx+12, y+10), &image.Uniform{ClassColor(l.c)}, image.Point{}, draw.Src)
		text(lx+18, y+10, l.l)
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	return nil
}

// drawLine draws a 2 px wide line from (x0, y0) to (x1, y1) in c, within
// clip: one square dot every half pixel along it.
func drawLine(img *image.RGBA, x0, y0, x1, y1 float64, c color.RGBA, clip image.Rectangle) {
	n := int(math.Ceil(2*math.Hypot(x1-x0, y1-y0))) + 1
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		x, y := int(math.Floor(x0+t*(x1-x0))), int(math.Floor(y0+t*(y1-y0)))
		r := image.Rect(x-1, y-1, x+1, y+1).Intersect(clip)
		draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
	}
}

// classLimitToValue converts a class limit (mg oxide/100 g or pH) to the
// unit of the mapped values.
func classLimitToValue(n Nutrient, f Form) func(float64) float64 {
	if f == Oxide || n == PH {
		return func(v float64) float64 { return v }
	}
	if n == Phosphorus {
		return P2O5ToP
	}
	return K2OToK
}
