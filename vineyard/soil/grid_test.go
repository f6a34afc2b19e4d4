package soil

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/paulmach/orb"
)

func readExample(t testing.TB, sampleFile string) ([]Sample, orb.MultiPolygon) {
	t.Helper()
	f, err := os.Open("../../examples/models/soil/" + sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ReadSamplesCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.Open("../../examples/models/soil/wartberg_plot.geojson")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	p, err := ReadPlotGeoJSON(g)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// TestProjection checks the round trip and the scale: one degree of
// latitude is R·π/180 = 111 195.08 m; one degree of longitude at 60° is half that.
func TestProjection(t *testing.T) {
	p := Projection{Lon0: 9.24, Lat0: 49.15}
	x, y := p.Forward(9.25, 49.16)
	lon, lat := p.Inverse(x, y)
	if !near(lon, 9.25, 1e-13) || !near(lat, 49.16, 1e-13) {
		t.Errorf("round trip: %v, %v", lon, lat)
	}
	_, y = Projection{}.Forward(0, 1)
	if math.Abs(y-111195.08) > 0.01 {
		t.Errorf("1° latitude = %v m, want 111195.08", y)
	}
	x, _ = Projection{Lat0: 60}.Forward(1, 60)
	if math.Abs(x-111195.08/2) > 0.01 {
		t.Errorf("1° longitude at 60° = %v m", x)
	}
}

// TestNewMapExample maps the Wartberg example by kriging and by IDW and
// checks the grid, the mask, the class areas and exactness near samples.
func TestNewMapExample(t *testing.T) {
	samples, plot := readExample(t, "wartberg_samples.csv")
	for _, method := range []Method{Kriging, InverseDistance} {
		m, err := NewMap(samples, plot, Options{Method: method, CellSize: 5})
		if err != nil {
			t.Fatal(err)
		}
		if m.Method != method || m.Note != "" {
			t.Fatalf("%v: used %v (%s)", method, m.Method, m.Note)
		}
		if method == Kriging && m.Variogram == nil {
			t.Fatal("kriging without variogram")
		}
		inside, total := 0, 0.0
		for _, c := range m.Cells {
			if c.Inside() {
				inside++
				if math.IsNaN(c.Value) || c.Value < m.Min || c.Value > m.Max {
					t.Fatalf("cell %d,%d value %v outside [%v, %v]", c.Row, c.Col, c.Value, m.Min, m.Max)
				}
				if method == Kriging && (math.IsNaN(c.Variance) || c.Variance < 0) {
					t.Fatalf("cell variance %v", c.Variance)
				}
			} else if !math.IsNaN(c.Value) {
				t.Fatalf("masked cell has value %v", c.Value)
			}
		}
		// The outline's bounding box is 235 m × 145 m; the outline covers
		// about 80 % of it.
		if m.Cols != 47 || m.Rows != 29 {
			t.Errorf("grid %d×%d, want 47×29", m.Cols, m.Rows)
		}
		if inside < 900 || inside > 1200 {
			t.Errorf("%d cells inside", inside)
		}
		var frac float64
		for _, a := range m.ClassAreas {
			total += a.AreaM2
			frac += a.Fraction
		}
		if !near(total, float64(inside)*25, 1e-12) || !near(frac, 1, 1e-12) {
			t.Errorf("class areas %v m² (%v), want %v m²", total, frac, float64(inside)*25)
		}
	}
}

// TestNewMapFallback checks the documented fall-backs to IDW: too few
// samples, and a constant field whose variogram cannot be fitted.
func TestNewMapFallback(t *testing.T) {
	samples, plot := readExample(t, "wartberg_samples_sparse.csv")
	m, err := NewMap(samples, plot, Options{Method: Kriging})
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != InverseDistance || m.Requested != Kriging || !strings.Contains(m.Note, "at least 100 samples") || !strings.Contains(m.Note, "got 13") {
		t.Errorf("method %v, note %q", m.Method, m.Note)
	}
	full, _ := readExample(t, "wartberg_samples.csv")
	for i := range full {
		full[i].PH = 7
	}
	m, err = NewMap(full, plot, Options{Nutrient: PH})
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != InverseDistance || !strings.Contains(m.Note, "variogram fit failed") {
		t.Errorf("constant field: method %v, note %q", m.Method, m.Note)
	}
	if !near(m.Min, 7, 1e-12) || !near(m.Max, 7, 1e-12) {
		t.Errorf("constant field mapped to [%v, %v]", m.Min, m.Max)
	}
}

// TestNewMapTooManyForKriging checks that more than MaxKrigingSamples
// samples are mapped by IDW with a note instead of building a huge system.
func TestNewMapTooManyForKriging(t *testing.T) {
	_, plot := readExample(t, "wartberg_samples.csv")
	b := plot.Bound()
	rng := rand.New(rand.NewPCG(3, 4))
	samples := make([]Sample, MaxKrigingSamples+1)
	for i := range samples {
		samples[i] = Sample{Lon: b.Min[0] + rng.Float64()*(b.Max[0]-b.Min[0]), Lat: b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1]),
			P: 8 + rng.Float64()*6, K: 20, PH: 7}
	}
	m, err := NewMap(samples, plot, Options{Method: Kriging, CellSize: 25, MinKrigingSamples: 3})
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != InverseDistance || !strings.Contains(m.Note, "at most 3000 samples") {
		t.Errorf("method %v, note %q", m.Method, m.Note)
	}
}

// TestWritePNGTooLarge checks that a map with more cells on a side than a
// PNG can sensibly hold is refused instead of allocating the image.
func TestWritePNGTooLarge(t *testing.T) {
	m := &Map{Rows: maxPNGCells + 1, Cols: 1, CellSize: 1, Cells: make([]Cell, maxPNGCells+1)}
	if err := WritePNG(io.Discard, m, nil); err == nil || !strings.Contains(err.Error(), "at most 8192") {
		t.Errorf("error %v", err)
	}
}

// TestNewMapExactAtSample places a sample exactly on a cell centre and
// checks that both methods return its value there.
func TestNewMapExactAtSample(t *testing.T) {
	_, plot := readExample(t, "wartberg_samples.csv")
	probe, err := NewMap([]Sample{{Lon: 9.2430, Lat: 49.1565, P: 5, K: 10, PH: 7}}, plot, Options{Method: InverseDistance})
	if err != nil {
		t.Fatal(err)
	}
	c := probe.Cells[probe.Rows/2*probe.Cols+probe.Cols/2]
	rng := rand.New(rand.NewPCG(1, 2))
	samples := []Sample{{Lon: c.Lon, Lat: c.Lat, P: 12.345, K: 20, PH: 7}}
	b := plot.Bound()
	for len(samples) < 120 {
		samples = append(samples, Sample{Lon: b.Min[0] + rng.Float64()*(b.Max[0]-b.Min[0]), Lat: b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1]),
			P: 8 + rng.Float64()*6, K: 20, PH: 7})
	}
	for _, method := range []Method{InverseDistance, Kriging} {
		m, err := NewMap(samples, plot, Options{Method: method, Variogram: Exponential, VariogramSet: true})
		if err != nil {
			t.Fatal(err)
		}
		got := m.Cells[c.Row*m.Cols+c.Col]
		if !got.Inside() || math.Abs(got.Value-12.345) > 1e-6 {
			t.Errorf("%v (%s): value at sample %v, want 12.345", m.Method, m.Note, got.Value)
		}
	}
}

// TestNewMapBadInput checks errors for bad samples, plots and options.
func TestNewMapBadInput(t *testing.T) {
	samples, plot := readExample(t, "wartberg_samples.csv")
	if _, err := NewMap(nil, plot, Options{}); err == nil {
		t.Error("no samples: no error")
	}
	bad := append([]Sample(nil), samples...)
	bad[3].P = math.NaN()
	if _, err := NewMap(bad, plot, Options{}); err == nil || !strings.Contains(err.Error(), "sample 3") {
		t.Errorf("NaN sample: %v", err)
	}
	dup := append(append([]Sample(nil), samples...), samples[0])
	if _, err := NewMap(dup, plot, Options{}); err == nil || !strings.Contains(err.Error(), "same point") {
		t.Errorf("duplicate sample: %v", err)
	}
	far := append([]Sample(nil), samples...)
	far[5].Lat += 1 // about 111 km north
	if _, err := NewMap(far, plot, Options{}); !errors.Is(err, ErrSampleFar) || !strings.Contains(err.Error(), "sample 5") {
		t.Errorf("sample 1° away: %v", err)
	}
	if _, err := NewMap(samples, nil, Options{}); err == nil {
		t.Error("no plot: no error")
	}
	for _, cell := range []float64{0.01, 1e-300} { // 1e-300 once overflowed int into a 1×1 grid
		if _, err := NewMap(samples, plot, Options{CellSize: cell}); err == nil || !strings.Contains(err.Error(), "larger cells") {
			t.Errorf("cells of %g m: %v", cell, err)
		}
	}
	if _, err := NewMap(samples, plot, Options{Lags: 1e9}); err == nil || !strings.Contains(err.Error(), "at most 1000") {
		t.Errorf("10⁹ lags: %v", err)
	}
	if _, err := NewMap(samples, plot, Options{Scheme: &Scheme{AB: 5, BC: 4, CD: 6, DE: 7}}); err == nil {
		t.Error("descending scheme: no error")
	}
}

// TestOutputsDeterministic checks that GeoJSON and PNG are byte-identical
// across runs, that the GeoJSON parses with one polygon per inside cell
// and one point per sample, and that the PNG decodes.
func TestOutputsDeterministic(t *testing.T) {
	samples, plot := readExample(t, "wartberg_samples.csv")
	render := func() ([]byte, []byte, *Map) {
		m, err := NewMap(samples, plot, Options{Nutrient: Potassium})
		if err != nil {
			t.Fatal(err)
		}
		var g, p bytes.Buffer
		if err := WriteGeoJSON(&g, m, samples); err != nil {
			t.Fatal(err)
		}
		if err := WritePNG(&p, m, samples); err != nil {
			t.Fatal(err)
		}
		return g.Bytes(), p.Bytes(), m
	}
	g1, p1, m := render()
	g2, p2, _ := render()
	if !bytes.Equal(g1, g2) || !bytes.Equal(p1, p2) {
		t.Fatal("outputs differ between runs")
	}
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Geometry struct {
				Type string `json:"type"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(g1, &fc); err != nil {
		t.Fatal(err)
	}
	cells, points := 0, 0
	for _, f := range fc.Features {
		switch f.Geometry.Type {
		case "Polygon":
			cells++
			if _, ok := f.Properties["variance"]; !ok {
				t.Fatal("kriged cell without variance")
			}
			if f.Properties["unit"] != "mg K/100 g" {
				t.Fatalf("unit %v", f.Properties["unit"])
			}
		case "Point":
			points++
		}
	}
	inside := 0
	for _, c := range m.Cells {
		if c.Inside() {
			inside++
		}
	}
	if fc.Type != "FeatureCollection" || cells != inside || points != len(samples) {
		t.Errorf("%s with %d cells (want %d) and %d points (want %d)", fc.Type, cells, inside, points, len(samples))
	}
	img, err := png.Decode(bytes.NewReader(p1))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < m.Cols || b.Dy() < m.Rows {
		t.Errorf("image %v smaller than the grid", b)
	}
}

// BenchmarkKriging500 krigs 500 samples onto a 200×200 grid (40 000
// cells): one LU factorisation and inverse of the 501×501 matrix, then the
// dual-form estimate (O(n) per cell) and the variance bᵀA⁻¹b in blocks of
// 256 cells (one matrix product per block).
func BenchmarkKriging500(b *testing.B) {
	pts, z := randomSamples(99, 500, 1000)
	targets := make([][2]float64, 0, 200*200)
	for r := 0; r < 200; r++ {
		for c := 0; c < 200; c++ {
			targets = append(targets, [2]float64{(float64(c) + 0.5) * 5, (float64(r) + 0.5) * 5})
		}
	}
	vg := Variogram{Model: Spherical, Nugget: 0.5, Sill: 5, Range: 300}
	b.ReportAllocs()
	for b.Loop() {
		k, err := NewOrdinaryKriging(pts, z, vg)
		if err != nil {
			b.Fatal(err)
		}
		k.PredictMany(targets)
	}
}

// BenchmarkNewMapExample maps the Wartberg example (109 samples, 5 m cells,
// variogram chosen automatically) end to end.
func BenchmarkNewMapExample(b *testing.B) {
	samples, plot := readExample(b, "wartberg_samples.csv")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewMap(samples, plot, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWritePNGOutline checks that the PNG draws the plot's outline (dark
// grey) and starts its title with Map.Title, and that a map without an
// outline has none.
func TestWritePNGOutline(t *testing.T) {
	samples, plot := readExample(t, "wartberg_samples.csv")
	m, err := NewMap(samples, plot, Options{Nutrient: Phosphorus})
	if err != nil {
		t.Fatal(err)
	}
	count := func(m *Map) int {
		var buf bytes.Buffer
		if err := WritePNG(&buf, m, samples); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if r, g, bl, _ := img.At(x, y).RGBA(); r>>8 == 40 && g>>8 == 40 && bl>>8 == 40 {
					n++
				}
			}
		}
		return n
	}
	if len(m.Plot) == 0 {
		t.Fatal("NewMap did not keep the plot's outline")
	}
	m.Title = "wartberg-03"
	with := count(m)
	m.Plot = nil
	without := count(m)
	if without != 0 || with < 100 {
		t.Errorf("outline pixels: %d with the outline, %d without", with, without)
	}
}
