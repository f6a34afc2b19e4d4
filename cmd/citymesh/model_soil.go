package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/citymesh/citymesh/vineyard/soil"
)

func init() {
	registerModel("soil", "vineyard soil map (P, K, pH) from samples CSV and plot GeoJSON by IDW or kriging; GeoJSON and PNG", runSoilModel)
}

// soilSummary is the JSON summary `citymesh model soil` writes to stdout.
type soilSummary struct {
	Nutrient    string           `json:"nutrient"`
	Unit        string           `json:"unit"`
	Form        string           `json:"form"`
	SoilType    string           `json:"soil_type"`
	Requested   string           `json:"method_requested"`
	Method      string           `json:"method"`
	Note        string           `json:"note,omitempty"`
	Power       float64          `json:"idw_power,omitempty"`
	Variogram   *soil.Variogram  `json:"variogram,omitempty"`
	FitError    *float64         `json:"variogram_fit_wrmse,omitempty"`
	Lags        []soil.Lag       `json:"empirical_variogram,omitempty"`
	Samples     int              `json:"samples"`
	CellSize    float64          `json:"cell_m"`
	Rows        int              `json:"rows"`
	Cols        int              `json:"cols"`
	CellsInside int              `json:"cells_inside"`
	Min         float64          `json:"min"`
	Max         float64          `json:"max"`
	Mean        float64          `json:"mean"`
	MeanVar     *float64         `json:"mean_kriging_variance,omitempty"`
	Scheme      soilScheme       `json:"class_limits"`
	ClassAreas  []soil.ClassArea `json:"class_areas"`
	Projection  soilProjection   `json:"projection"`
	GeoJSON     string           `json:"geojson,omitempty"`
	PNG         string           `json:"png,omitempty"`
}

type soilScheme struct {
	Unit   string  `json:"unit"`
	AB     float64 `json:"a_b"`
	BC     float64 `json:"b_c"`
	CD     float64 `json:"c_d"`
	DE     float64 `json:"d_e"`
	Source string  `json:"source"`
}

type soilProjection struct {
	Kind string  `json:"kind"`
	Lon0 float64 `json:"lon0"`
	Lat0 float64 `json:"lat0"`
}

func runSoilModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model soil", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	samplesPath := fs.String("samples", "", "samples CSV: lon,lat,p_mg_100g,k_mg_100g,ph (required)")
	plotPath := fs.String("plot", "", "plot outline GeoJSON: Polygon, MultiPolygon, Feature or FeatureCollection (required)")
	nutrient := fs.String("nutrient", "p", "nutrient to map: p, k or ph")
	method := fs.String("method", "kriging", "interpolation: idw or kriging")
	variogram := fs.String("variogram", "auto", "kriging variogram: spherical, exponential, gaussian or auto")
	cell := fs.Float64("cell", soil.DefaultCellSize, "cell size in metres")
	power := fs.Float64("power", soil.DefaultPower, "IDW power")
	lags := fs.Int("lags", 12, "empirical semivariogram bins")
	minKrige := fs.Int("min-kriging", soil.DefaultMinKrigingSamples, "fewest samples to krig with; fewer fall back to IDW")
	form := fs.String("form", "element", "P and K columns hold the element (element) or the oxide P2O5, K2O (oxide)")
	soilType := fs.String("soil", "medium", "soil type for K and pH targets: light, medium or heavy")
	geoOut := fs.String("geojson", "", "write cells and samples as GeoJSON to this file")
	pngOut := fs.String("png", "", "write a PNG heat map with legend to this file")
	jsonOut := fs.String("o", "", "write the JSON summary here instead of stdout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "usage: citymesh model soil -samples FILE.csv -plot FILE.geojson [flags]")
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("model soil: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("model soil: unexpected argument %q", fs.Arg(0))
	}
	if *samplesPath == "" || *plotPath == "" {
		return errors.New("model soil: -samples and -plot are required")
	}
	var opts soil.Options
	var err error
	if opts.Nutrient, err = soil.ParseNutrient(*nutrient); err != nil {
		return fmt.Errorf("model soil: -nutrient: %w", err)
	}
	if opts.Method, err = soil.ParseMethod(*method); err != nil {
		return fmt.Errorf("model soil: -method: %w", err)
	}
	if opts.Variogram, err = soil.ParseModel(*variogram); err != nil {
		return fmt.Errorf("model soil: -variogram: %w", err)
	}
	opts.VariogramSet = true
	if opts.Form, err = soil.ParseForm(*form); err != nil {
		return fmt.Errorf("model soil: -form: %w", err)
	}
	if opts.SoilType, err = soil.ParseSoilType(*soilType); err != nil {
		return fmt.Errorf("model soil: -soil: %w", err)
	}
	if !(*cell > 0) || math.IsInf(*cell, 0) {
		return fmt.Errorf("model soil: -cell %g: want a positive number of metres", *cell)
	}
	if !(*power > 0) || math.IsInf(*power, 0) {
		return fmt.Errorf("model soil: -power %g: want a positive number", *power)
	}
	if *lags < 3 || *lags > soil.MaxLags {
		return fmt.Errorf("model soil: -lags %d: want 3 to %d", *lags, soil.MaxLags)
	}
	if *minKrige < 3 {
		return fmt.Errorf("model soil: -min-kriging %d: want at least 3", *minKrige)
	}
	opts.CellSize, opts.Power, opts.Lags, opts.MinKrigingSamples = *cell, *power, *lags, *minKrige

	samples, err := readModelFile(*samplesPath, soil.ReadSamplesCSV)
	if err != nil {
		return fmt.Errorf("model soil: %w", err)
	}
	plot, err := readModelFile(*plotPath, soil.ReadPlotGeoJSON)
	if err != nil {
		return fmt.Errorf("model soil: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("model soil: %w", err)
	}
	m, err := soil.NewMap(samples, plot, opts)
	if err != nil {
		return fmt.Errorf("model soil: %w", err)
	}
	if *geoOut != "" {
		if err := writeModelFile(*geoOut, func(w io.Writer) error { return soil.WriteGeoJSON(w, m, samples) }); err != nil {
			return fmt.Errorf("model soil: %w", err)
		}
	}
	if *pngOut != "" {
		if err := writeModelFile(*pngOut, func(w io.Writer) error { return soil.WritePNG(w, m, samples) }); err != nil {
			return fmt.Errorf("model soil: %w", err)
		}
	}
	sum := soilSummary{
		Nutrient: m.Nutrient.String(), Unit: m.Unit(), Form: m.Form.String(), SoilType: opts.SoilType.String(),
		Requested: m.Requested.String(), Method: m.Method.String(), Note: m.Note,
		Variogram: m.Variogram, Samples: m.Samples, CellSize: m.CellSize, Rows: m.Rows, Cols: m.Cols,
		Min: soilRound6(m.Min), Max: soilRound6(m.Max), ClassAreas: m.ClassAreas,
		Scheme:     soilScheme{Unit: m.Scheme.Unit, AB: m.Scheme.AB, BC: m.Scheme.BC, CD: m.Scheme.CD, DE: m.Scheme.DE, Source: m.Scheme.Source},
		Projection: soilProjection{Kind: "equirectangular about the bounding-box centre", Lon0: m.Projection.Lon0, Lat0: m.Projection.Lat0},
		GeoJSON:    *geoOut, PNG: *pngOut,
	}
	if m.Method == soil.InverseDistance {
		sum.Power = m.Power
	} else {
		fe := soilRound6(m.FitError)
		sum.FitError = &fe
		sum.Lags = m.Lags
	}
	var total, totalVar float64
	for _, c := range m.Cells {
		if c.Inside() {
			sum.CellsInside++
			total += c.Value
			totalVar += c.Variance
		}
	}
	sum.Mean = soilRound6(total / float64(sum.CellsInside))
	if m.Method == soil.Kriging {
		mv := soilRound6(totalVar / float64(sum.CellsInside))
		sum.MeanVar = &mv
	}
	for i := range sum.ClassAreas {
		sum.ClassAreas[i].AreaM2 = soilRound6(sum.ClassAreas[i].AreaM2)
		sum.ClassAreas[i].Fraction = soilRound6(sum.ClassAreas[i].Fraction)
	}
	if err := writeModelJSON(*jsonOut, stdout, sum); err != nil {
		return fmt.Errorf("model soil: %w", err)
	}
	return nil
}

func soilRound6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
