package soil

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// Method is an interpolation method.
type Method int

// The methods. The zero value is Kriging.
const (
	Kriging Method = iota
	InverseDistance
)

// String returns "kriging" or "idw".
func (m Method) String() string {
	if m == InverseDistance {
		return "idw"
	}
	return "kriging"
}

// ParseMethod parses "kriging" or "idw".
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "kriging":
		return Kriging, nil
	case "idw":
		return InverseDistance, nil
	}
	return 0, fmt.Errorf("method %q: want idw or kriging", s)
}

// Defaults of Options.
const (
	DefaultCellSize = 5.0 // metres
	// DefaultMinKrigingSamples is the fewest samples for which Map krigs:
	// White, Soils for Fine Wines, asks for "a large number of sampling
	// points (100 pairs)" before analysing spatially dependent variation,
	// read here as 100 samples (the stricter reading; 100 pairs alone would
	// be 15 samples).
	DefaultMinKrigingSamples = 100
	// MaxCells bounds the grid (cells in the bounding box).
	MaxCells = 4_000_000
)

// Options configure Map. The zero value maps phosphorus by kriging with an
// automatically chosen variogram on 5 m cells, P and K given as the
// element, classed for a medium soil.
type Options struct {
	Nutrient Nutrient
	Method   Method
	// Variogram is the model family for kriging; Auto (the default when
	// VariogramSet is false) fits all three and keeps the best.
	Variogram    Model
	VariogramSet bool
	// CellSize is the cell edge in metres (DefaultCellSize when ≤ 0).
	CellSize float64
	// Power is the IDW power (DefaultPower when ≤ 0).
	Power float64
	// Lags is the number of empirical semivariogram bins (12 when ≤ 0, at
	// most MaxLags).
	Lags int
	// MinKrigingSamples is the fewest samples to krig with
	// (DefaultMinKrigingSamples when ≤ 0); below it Map uses IDW and says so.
	MinKrigingSamples int
	SoilType          SoilType
	Form              Form
	// Scheme replaces VineyardScheme's class limits when not nil; its limits
	// are in mg oxide/100 g for P and K, pH units for pH.
	Scheme *Scheme
}

// Cell is one grid cell. Row 0 is the northern edge, column 0 the western.
// X and Y are the cell centre in metres in the map's Projection; Lon and Lat
// the same point in degrees. Value is in the samples' unit (mg/100 g of the
// element or oxide, or pH); Variance is the kriging variance in that unit
// squared, NaN for IDW. Class is the class of the value; ClassNone marks a
// cell outside the plot (its Value is NaN).
type Cell struct {
	Row, Col int
	X, Y     float64
	Lon, Lat float64
	Value    float64
	Variance float64
	Class    Class
}

// Inside reports whether the cell centre lies in the plot.
func (c Cell) Inside() bool { return c.Class != ClassNone }

// ClassArea is the area of one class in square metres and as a share of the
// plot's mapped area.
type ClassArea struct {
	Class    Class   `json:"class"`
	AreaM2   float64 `json:"area_m2"`
	Fraction float64 `json:"fraction"`
}

// Map is a nutrient map over a plot.
type Map struct {
	Nutrient Nutrient
	Form     Form
	// Method is the method used; Requested the one asked for. Note says why
	// they differ.
	Method, Requested Method
	Note              string
	// Variogram, FitError (weighted RMS, see Fit) and Lags are set when the
	// map was kriged.
	Variogram *Variogram
	FitError  float64
	Lags      []Lag
	Power     float64

	Projection Projection
	CellSize   float64
	Rows, Cols int
	// MinX and MaxY are the north-west corner of the grid in metres.
	MinX, MaxY float64
	Cells      []Cell // row-major, Rows×Cols
	Scheme     Scheme
	ClassAreas []ClassArea
	// Min and Max are the smallest and largest mapped values inside the plot.
	Min, Max float64
	Samples  int
	// Plot is the plot's outline the map was made for; WritePNG draws it.
	Plot orb.MultiPolygon
	// Title, when set, starts the PNG's title (the plot's name or id).
	Title string
}

// Unit returns the unit of the map's values, e.g. "mg P/100 g".
func (m *Map) Unit() string { return ValueUnit(m.Nutrient, m.Form) }

// ValueUnit returns the unit of sample values of nutrient n in form f.
func ValueUnit(n Nutrient, f Form) string {
	switch n {
	case Phosphorus:
		if f == Oxide {
			return "mg P2O5/100 g"
		}
		return "mg P/100 g"
	case Potassium:
		if f == Oxide {
			return "mg K2O/100 g"
		}
		return "mg K/100 g"
	}
	return "pH"
}

// MaxSampleOffset is how far, in degrees, a sample may lie outside the
// plot's bounding box. The local projection is only accurate near the plot,
// and a sample tens of kilometres away is almost certainly a typing error.
const MaxSampleOffset = 0.1

// ErrSampleFar reports a sample more than MaxSampleOffset outside the plot.
var ErrSampleFar = errors.New("sample lies outside the plot's bounding box")

// ErrNoCells reports a plot smaller than one cell centre.
var ErrNoCells = errors.New("no cell centre lies inside the plot")

// NewMap interpolates one nutrient of samples onto a grid over plot.
//
// Longitude and latitude are projected with an equirectangular Projection
// about the centre of the plot's bounding box; distances are metres. The
// grid covers the bounding box with square cells of opts.CellSize metres;
// cells whose centre lies outside the plot are masked. With Method Kriging
// it fits a variogram (Fit or FitAuto) and krigs; when there are fewer than
// MinKrigingSamples or more than MaxKrigingSamples samples, the fit fails or
// the kriging system is ill-conditioned it uses IDW instead and explains why
// in Map.Note.
func NewMap(samples []Sample, plot orb.MultiPolygon, opts Options) (*Map, error) {
	if err := ValidateSamples(samples); err != nil {
		return nil, err
	}
	if err := ValidatePlot(plot); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	cell := opts.CellSize
	if cell <= 0 {
		cell = DefaultCellSize
	}
	if math.IsNaN(cell) || math.IsInf(cell, 0) {
		return nil, fmt.Errorf("cell size %g is not finite", cell)
	}
	if opts.Lags > MaxLags {
		return nil, fmt.Errorf("%d semivariogram bins, at most %d", opts.Lags, MaxLags)
	}
	minN := opts.MinKrigingSamples
	if minN <= 0 {
		minN = DefaultMinKrigingSamples
	}
	power := opts.Power
	if power <= 0 {
		power = DefaultPower
	}
	scheme := VineyardScheme(opts.Nutrient, opts.SoilType)
	if opts.Scheme != nil {
		scheme = *opts.Scheme
	}
	if !scheme.Valid() {
		return nil, fmt.Errorf("class limits %g, %g, %g, %g do not ascend", scheme.AB, scheme.BC, scheme.CD, scheme.DE)
	}

	b := plot.Bound()
	for i, s := range samples {
		if s.Lon < b.Min[0]-MaxSampleOffset || s.Lon > b.Max[0]+MaxSampleOffset ||
			s.Lat < b.Min[1]-MaxSampleOffset || s.Lat > b.Max[1]+MaxSampleOffset {
			return nil, fmt.Errorf("sample %d (%g, %g): %w by more than %g°", i, s.Lon, s.Lat, ErrSampleFar, MaxSampleOffset)
		}
	}
	proj := Projection{Lon0: (b.Min[0] + b.Max[0]) / 2, Lat0: (b.Min[1] + b.Max[1]) / 2}
	x0, y0 := proj.Forward(b.Min[0], b.Min[1])
	x1, y1 := proj.Forward(b.Max[0], b.Max[1])
	// The 1e-9 keeps round-off in the projection from adding a column. The
	// counts are checked as floats: a tiny cell size would overflow int.
	fcols := math.Max(1, math.Ceil((x1-x0)/cell-1e-9))
	frows := math.Max(1, math.Ceil((y1-y0)/cell-1e-9))
	if fcols*frows > MaxCells {
		return nil, fmt.Errorf("grid of %.0f×%.0f cells exceeds %d; use larger cells", fcols, frows, MaxCells)
	}
	cols, rows := int(fcols), int(frows)
	// Centre the grid on the bounding box.
	minX := (x0+x1)/2 - float64(cols)*cell/2
	maxY := (y0+y1)/2 + float64(rows)*cell/2

	m := &Map{
		Nutrient: opts.Nutrient, Form: opts.Form, Method: opts.Method, Requested: opts.Method,
		Power: power, Projection: proj, CellSize: cell, Rows: rows, Cols: cols, MinX: minX, MaxY: maxY,
		Scheme: scheme, Samples: len(samples), Plot: plot,
	}
	pts := make([][2]float64, len(samples))
	z := make([]float64, len(samples))
	for i, s := range samples {
		x, y := proj.Forward(s.Lon, s.Lat)
		pts[i] = [2]float64{x, y}
		z[i] = s.Value(opts.Nutrient)
	}

	m.Cells = make([]Cell, rows*cols)
	var inside []int
	var targets [][2]float64
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			x := minX + (float64(c)+0.5)*cell
			y := maxY - (float64(r)+0.5)*cell
			lon, lat := proj.Inverse(x, y)
			i := r*cols + c
			m.Cells[i] = Cell{Row: r, Col: c, X: x, Y: y, Lon: lon, Lat: lat, Value: math.NaN(), Variance: math.NaN()}
			if planar.MultiPolygonContains(plot, orb.Point{lon, lat}) {
				inside = append(inside, i)
				targets = append(targets, [2]float64{x, y})
			}
		}
	}
	if len(inside) == 0 {
		return nil, fmt.Errorf("%w (cell size %g m)", ErrNoCells, cell)
	}

	var est, vars []float64
	if m.Method == Kriging {
		est, vars = m.krige(pts, z, targets, opts, minN)
	}
	if m.Method == InverseDistance {
		idw, err := NewIDW(pts, z, power)
		if err != nil {
			return nil, err
		}
		est = make([]float64, len(targets))
		for i, t := range targets {
			est[i] = idw.Predict(t[0], t[1])
		}
	}

	m.Min, m.Max = math.Inf(1), math.Inf(-1)
	areas := map[Class]int{}
	for k, i := range inside {
		c := &m.Cells[i]
		c.Value = est[k]
		if vars != nil {
			c.Variance = vars[k]
		}
		c.Class = scheme.Classify(ToSchemeUnit(m.Nutrient, m.Form, c.Value))
		areas[c.Class]++
		m.Min = math.Min(m.Min, c.Value)
		m.Max = math.Max(m.Max, c.Value)
	}
	for _, cl := range []Class{ClassA, ClassB, ClassC, ClassD, ClassE} {
		m.ClassAreas = append(m.ClassAreas, ClassArea{Class: cl, AreaM2: float64(areas[cl]) * cell * cell,
			Fraction: float64(areas[cl]) / float64(len(inside))})
	}
	return m, nil
}

// krige fits the variogram and krigs the targets. When it cannot, it
// switches m.Method to IDW, sets m.Note and returns nil slices.
func (m *Map) krige(pts [][2]float64, z []float64, targets [][2]float64, opts Options, minN int) ([]float64, []float64) {
	fallback := func(why string) ([]float64, []float64) {
		m.Method = InverseDistance
		m.Variogram = nil
		m.Note = why + "; mapped by inverse distance weighting (power " + fmt.Sprint(m.Power) + ") instead"
		return nil, nil
	}
	if len(pts) < minN {
		return fallback(fmt.Sprintf("kriging needs at least %d samples to estimate a variogram (White, Soils for Fine Wines: \"a large number of sampling points (100 pairs)\"), got %d", minN, len(pts)))
	}
	if len(pts) > MaxKrigingSamples {
		return fallback(fmt.Sprintf("kriging takes at most %d samples (one system over all of them), got %d", MaxKrigingSamples, len(pts)))
	}
	m.Lags = Empirical(pts, z, opts.Lags, 0)
	model := Auto
	if opts.VariogramSet {
		model = opts.Variogram
	}
	var (
		vg  Variogram
		fe  float64
		err error
	)
	if model == Auto {
		vg, fe, err = FitAuto(m.Lags)
	} else {
		vg, fe, err = Fit(m.Lags, model)
	}
	if err != nil {
		return fallback(fmt.Sprintf("variogram fit failed (%v)", err))
	}
	k, err := NewOrdinaryKriging(pts, z, vg)
	if err != nil {
		return fallback(fmt.Sprintf("kriging with the fitted %s variogram failed (%v)", vg.Model, err))
	}
	m.Variogram = &vg
	m.FitError = fe
	return k.PredictMany(targets)
}
