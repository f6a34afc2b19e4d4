package soil

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Sample is one soil sample: its position in degrees (WGS 84) and its
// CAL-extracted phosphorus and potassium in mg per 100 g of soil and its pH.
// Whether P and K are given as the element or as the oxide (P2O5, K2O) is
// chosen by Options.Form; the CSV column names say "p" and "k".
type Sample struct {
	Lon, Lat float64
	P, K     float64 // mg/100 g
	PH       float64
}

// Nutrient names the sample value that is mapped.
type Nutrient int

// The nutrients a map can show. The zero value is phosphorus.
const (
	Phosphorus Nutrient = iota
	Potassium
	PH
)

// String returns the short name used on the command line: "p", "k" or "ph".
func (n Nutrient) String() string {
	switch n {
	case Phosphorus:
		return "p"
	case Potassium:
		return "k"
	case PH:
		return "ph"
	}
	return fmt.Sprintf("Nutrient(%d)", int(n))
}

// Label returns the name for titles: "P", "K" or "pH".
func (n Nutrient) Label() string {
	switch n {
	case Potassium:
		return "K"
	case PH:
		return "pH"
	}
	return "P"
}

// ParseNutrient parses "p", "k" or "ph" (case-insensitive).
func ParseNutrient(s string) (Nutrient, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "p":
		return Phosphorus, nil
	case "k":
		return Potassium, nil
	case "ph":
		return PH, nil
	}
	return 0, fmt.Errorf("nutrient %q: want p, k or ph", s)
}

// Value returns the sample's value of nutrient n.
func (s Sample) Value(n Nutrient) float64 {
	switch n {
	case Potassium:
		return s.K
	case PH:
		return s.PH
	}
	return s.P
}

// Plausibility limits for sample values. CAL-P and CAL-K above 500 mg/100 g
// are far beyond any published vineyard class (class E starts at a few tens
// of mg/100 g), so they are treated as typing errors; soil pH lies between
// 2 and 11 in practice.
const (
	MaxNutrient = 500.0
	MinPH       = 2.0
	MaxPH       = 11.0
)

// samplesHeader is the header ReadSamplesCSV expects.
var samplesHeader = []string{"lon", "lat", "p_mg_100g", "k_mg_100g", "ph"}

// ReadSamplesCSV reads samples from CSV with the header
// lon,lat,p_mg_100g,k_mg_100g,ph. Blank lines are skipped. Each value must be
// a finite number in range (longitude −180…180, latitude −90…90, P and K
// 0…MaxNutrient, pH MinPH…MaxPH); two samples at the same point are an
// error. Errors name the line and the column.
func ReadSamplesCSV(r io.Reader) ([]Sample, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("samples csv: empty input, want header lon,lat,p_mg_100g,k_mg_100g,ph")
	}
	if err != nil {
		return nil, fmt.Errorf("samples csv: header: %w", err)
	}
	if len(head) != len(samplesHeader) {
		return nil, fmt.Errorf("samples csv: line 1: header has %d columns, want %s", len(head), strings.Join(samplesHeader, ","))
	}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if h != samplesHeader[i] {
			return nil, fmt.Errorf("samples csv: line 1: column %d is %q, want %q", i+1, head[i], samplesHeader[i])
		}
	}
	var out []Sample
	seen := map[[2]float64]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("samples csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(samplesHeader) {
			return nil, fmt.Errorf("samples csv: line %d: %d fields, want %d", line, len(rec), len(samplesHeader))
		}
		var v [5]float64
		for i, f := range rec {
			x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return nil, fmt.Errorf("samples csv: line %d, column %s: %q is not a number", line, samplesHeader[i], f)
			}
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("samples csv: line %d, column %s: %q is not a finite number", line, samplesHeader[i], f)
			}
			v[i] = x
		}
		s := Sample{Lon: v[0], Lat: v[1], P: v[2], K: v[3], PH: v[4]}
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("samples csv: line %d, column %w", line, err)
		}
		key := [2]float64{s.Lon, s.Lat}
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("samples csv: line %d: same point (%g, %g) as line %d; average duplicate samples before mapping", line, s.Lon, s.Lat, first)
		}
		seen[key] = line
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("samples csv: no samples after the header")
	}
	return out, nil
}

// check validates the ranges of one sample; the error starts with the column name.
func (s Sample) check() error {
	switch {
	case s.Lon < -180 || s.Lon > 180:
		return fmt.Errorf("lon: %g is outside −180…180", s.Lon)
	case s.Lat < -90 || s.Lat > 90:
		return fmt.Errorf("lat: %g is outside −90…90", s.Lat)
	case s.P < 0 || s.P > MaxNutrient:
		return fmt.Errorf("p_mg_100g: %g is outside 0…%g mg/100 g", s.P, MaxNutrient)
	case s.K < 0 || s.K > MaxNutrient:
		return fmt.Errorf("k_mg_100g: %g is outside 0…%g mg/100 g", s.K, MaxNutrient)
	case s.PH < MinPH || s.PH > MaxPH:
		return fmt.Errorf("ph: %g is outside %g…%g", s.PH, MinPH, MaxPH)
	}
	return nil
}

// ValidateSamples applies the checks of ReadSamplesCSV to samples built in
// code: ranges, NaN and duplicates at the same point.
func ValidateSamples(samples []Sample) error {
	if len(samples) == 0 {
		return errors.New("samples: none")
	}
	seen := map[[2]float64]int{}
	for i, s := range samples {
		for _, x := range []float64{s.Lon, s.Lat, s.P, s.K, s.PH} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("sample %d: a value is not a finite number", i)
			}
		}
		if err := s.check(); err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
		key := [2]float64{s.Lon, s.Lat}
		if j, dup := seen[key]; dup {
			return fmt.Errorf("sample %d: same point (%g, %g) as sample %d", i, s.Lon, s.Lat, j)
		}
		seen[key] = i
	}
	return nil
}
