package soil

import (
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

const goodCSV = "lon,lat,p_mg_100g,k_mg_100g,ph\n9.24,49.15,8.9,14.3,6.9\n\n9.241,49.151,7.5,20,7.1\n"

func TestReadSamplesCSV(t *testing.T) {
	got, err := ReadSamplesCSV(strings.NewReader("# comment\n" + goodCSV))
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{{9.24, 49.15, 8.9, 14.3, 6.9}, {9.241, 49.151, 7.5, 20, 7.1}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sample %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestReadSamplesCSVBad checks that each kind of bad input is an error that
// names the line and column.
func TestReadSamplesCSVBad(t *testing.T) {
	const h = "lon,lat,p_mg_100g,k_mg_100g,ph\n"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "empty input"},
		{"header only", h, "no samples"},
		{"wrong header", "x,lat,p_mg_100g,k_mg_100g,ph\n1,1,1,1,7\n", `column 1 is "x"`},
		{"short header", "lon,lat\n", "2 columns"},
		{"short row", h + "9,49,1,1\n", "line 2: 4 fields"},
		{"not a number", h + "9,49,abc,1,7\n", "line 2, column p_mg_100g"},
		{"NaN", h + "9,49,NaN,1,7\n", "line 2, column p_mg_100g: \"NaN\" is not a finite"},
		{"Inf", h + "9,49,1,+Inf,7\n", "column k_mg_100g"},
		{"lon range", h + "190,49,1,1,7\n", "line 2, column lon"},
		{"lat range", h + "9,-91,1,1,7\n", "column lat"},
		{"negative P", h + "9,49,-1,1,7\n", "column p_mg_100g"},
		{"huge K", h + "9,49,1,900,7\n", "column k_mg_100g"},
		{"pH range", h + "9,49,1,1,14\n", "column ph"},
		{"duplicate point", h + "9,49,1,1,7\n9,49,2,2,7\n", "line 3: same point (9, 49) as line 2"},
		{"bad quote", h + "9,49,\"1,1,7\n", "samples csv"},
	}
	for _, tt := range tests {
		_, err := ReadSamplesCSV(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

const squarePoly = `{"type":"Polygon","coordinates":[[[9.24,49.15],[9.242,49.15],[9.242,49.152],[9.24,49.152],[9.24,49.15]]]}`

func TestReadPlotGeoJSON(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		polys int
	}{
		{"polygon", squarePoly, 1},
		{"polygon with altitude", `{"type":"Polygon","coordinates":[[[9.24,49.15,200],[9.242,49.15,201],[9.242,49.152,210],[9.24,49.15,200]]]}`, 1},
		{"multipolygon", `{"type":"MultiPolygon","coordinates":[[[[9.24,49.15],[9.242,49.15],[9.242,49.152],[9.24,49.15]]],[[[9.25,49.15],[9.252,49.15],[9.252,49.152],[9.25,49.15]]]]}`, 2},
		{"feature", `{"type":"Feature","properties":{"name":"x"},"geometry":` + squarePoly + `}`, 1},
		{"feature collection", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":null,"geometry":` + squarePoly + `}]}`, 1},
	}
	for _, tt := range tests {
		mp, err := ReadPlotGeoJSON(strings.NewReader(tt.in))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if len(mp) != tt.polys {
			t.Errorf("%s: %d polygons, want %d", tt.name, len(mp), tt.polys)
		}
	}
}

func TestReadPlotGeoJSONBad(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not json", "nope", "plot geojson"},
		{"no type", `{"coordinates":[]}`, `no "type"`},
		{"point", `{"type":"Point","coordinates":[9,49]}`, `type "Point"`},
		{"feature point", `{"type":"Feature","geometry":{"type":"Point","coordinates":[9,49]}}`, `geometry type "Point"`},
		{"feature no geometry", `{"type":"Feature","geometry":null}`, "no geometry"},
		{"empty collection", `{"type":"FeatureCollection","features":[]}`, "no features"},
		{"open ring", `{"type":"Polygon","coordinates":[[[9.24,49.15],[9.242,49.15],[9.242,49.152],[9.24,49.152]]]}`, "not closed"},
		{"three positions", `{"type":"Polygon","coordinates":[[[9.24,49.15],[9.242,49.15],[9.24,49.15]]]}`, "3 positions"},
		{"no rings", `{"type":"Polygon","coordinates":[]}`, "no rings"},
		{"one number", `{"type":"Polygon","coordinates":[[[9.24],[9.242,49.15],[9.242,49.152],[9.24]]]}`, "position 0 has 1 numbers"},
		{"out of range", `{"type":"Polygon","coordinates":[[[190,49.15],[190.002,49.15],[190.002,49.152],[190,49.15]]]}`, "outside"},
		{"zero area", `{"type":"Polygon","coordinates":[[[9.24,49.15],[9.241,49.15],[9.242,49.15],[9.24,49.15]]]}`, "no area"},
		{"too large", `{"type":"Polygon","coordinates":[[[9,49],[10,49],[10,50],[9,49]]]}`, "larger than 0.5"},
		{"string coords", `{"type":"Polygon","coordinates":"x"}`, "polygon coordinates"},
		{"null position in multipolygon", `{"type":"MultiPolygon","coordinates":[[[[9.24,49.15],[9.242,49.15],[9.242,49.152],[9.24,49.15]]],[[[9.25,49.15],null,[9.252,49.152],[9.25,49.15]]]]}`, "polygon 1 ring 0 position 1 has 0 numbers"},
		{"empty position in feature", `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[9.24,49.15],[],[9.242,49.152],[9.24,49.15]]]}}]}`, "feature 0: ring 0 position 1 has 0 numbers"},
		{"unknown geometry type", `{"type":"Feature","geometry":{"type":"Circle","coordinates":[9,49]}}`, `geometry type "Circle"`},
		{"not an object", `[1,2]`, "not a GeoJSON object"},
		{"feature in collection wrong type", `{"type":"FeatureCollection","features":[{"type":"Polygon"}]}`, "feature 0: geojson: not a feature"},
	}
	for _, tt := range tests {
		_, err := ReadPlotGeoJSON(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// FuzzReadSamplesCSV checks that the CSV reader never panics, that every
// sample it accepts passes ValidateSamples, and that accepted samples map
// onto a fixed plot by IDW (unless they lie far from it, ErrSampleFar) and
// write as GeoJSON and PNG.
func FuzzReadSamplesCSV(f *testing.F) {
	f.Add(goodCSV)
	f.Add("lon,lat,p_mg_100g,k_mg_100g,ph\n9,49,NaN,1,7\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ReadSamplesCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		if err := ValidateSamples(s); err != nil {
			t.Fatalf("accepted samples fail validation: %v", err)
		}
		plot, err := ReadPlotGeoJSON(strings.NewReader(squarePoly))
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMap(s, plot, Options{Method: InverseDistance, CellSize: 20})
		if errors.Is(err, ErrSampleFar) {
			return
		}
		if err != nil {
			t.Fatalf("map of accepted samples: %v", err)
		}
		if err := WriteGeoJSON(io.Discard, m, s); err != nil {
			t.Fatal(err)
		}
		if err := WritePNG(io.Discard, m, s); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzReadPlotGeoJSON checks that the GeoJSON reader never panics, that
// every outline it accepts passes ValidatePlot, and that an accepted outline
// can be mapped (about 20×20 cells over its bounding box, one sample at its
// centre) or is refused with ErrNoCells, and the map written.
func FuzzReadPlotGeoJSON(f *testing.F) {
	f.Add(squarePoly)
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":` + squarePoly + `}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		mp, err := ReadPlotGeoJSON(strings.NewReader(in))
		if err != nil {
			return
		}
		if err := ValidatePlot(mp); err != nil {
			t.Fatalf("accepted plot fails validation: %v", err)
		}
		b := mp.Bound()
		c := b.Center()
		span := math.Max(b.Max[0]-b.Min[0], b.Max[1]-b.Min[1]) * 111195
		m, err := NewMap([]Sample{{Lon: c[0], Lat: c[1], P: 5, K: 10, PH: 7}}, mp, Options{Method: InverseDistance, CellSize: span/20 + 0.01})
		if errors.Is(err, ErrNoCells) {
			return
		}
		if err != nil {
			t.Fatalf("map of an accepted plot: %v", err)
		}
		if err := WriteGeoJSON(io.Discard, m, nil); err != nil {
			t.Fatal(err)
		}
		if err := WritePNG(io.Discard, m, nil); err != nil {
			t.Fatal(err)
		}
	})
}
