package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const soilExamples = "../../examples/models/soil/"

// TestSoilModelExample runs `citymesh model soil` on the Wartberg example
// by kriging and checks the summary, the GeoJSON and the PNG.
func TestSoilModelExample(t *testing.T) {
	dir := t.TempDir()
	gj, pn := filepath.Join(dir, "p.geojson"), filepath.Join(dir, "p.png")
	var out bytes.Buffer
	err := runSoilModel(context.Background(), []string{"-samples", soilExamples + "wartberg_samples.csv",
		"-plot", soilExamples + "wartberg_plot.geojson", "-nutrient", "p", "-method", "kriging",
		"-variogram", "spherical", "-cell", "5", "-geojson", gj, "-png", pn}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Method    string `json:"method"`
		Variogram struct {
			Model  string  `json:"model"`
			Sill   float64 `json:"sill"`
			Range  float64 `json:"range_m"`
			Nugget float64 `json:"nugget"`
		} `json:"variogram"`
		Samples     int `json:"samples"`
		CellsInside int `json:"cells_inside"`
		ClassAreas  []struct {
			Class  string  `json:"class"`
			AreaM2 float64 `json:"area_m2"`
		} `json:"class_areas"`
		MeanVar *float64 `json:"mean_kriging_variance"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if sum.Method != "kriging" || sum.Variogram.Model != "spherical" || !(sum.Variogram.Sill > 0) || !(sum.Variogram.Range > 0) {
		t.Errorf("summary: %+v", sum)
	}
	if sum.Samples != 109 || sum.MeanVar == nil {
		t.Errorf("samples %d, mean variance %v", sum.Samples, sum.MeanVar)
	}
	var area float64
	classes := ""
	for _, a := range sum.ClassAreas {
		area += a.AreaM2
		classes += a.Class
	}
	if classes != "ABCDE" || area != float64(sum.CellsInside)*25 {
		t.Errorf("class areas %s sum to %v m², want %v", classes, area, float64(sum.CellsInside)*25)
	}
	g, err := os.ReadFile(gj)
	if err != nil || !bytes.Contains(g, []byte(`"type":"FeatureCollection"`)) {
		t.Errorf("geojson: %v", err)
	}
	f, err := os.Open(pn)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("png: %v", err)
	}
}

// TestSoilModelFallback checks that kriging 13 samples falls back to IDW
// and says so in the summary.
func TestSoilModelFallback(t *testing.T) {
	var out bytes.Buffer
	err := runSoilModel(context.Background(), []string{"-samples", soilExamples + "wartberg_samples_sparse.csv",
		"-plot", soilExamples + "wartberg_plot.geojson", "-nutrient", "ph"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var sum map[string]any
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum["method"] != "idw" || sum["method_requested"] != "kriging" || !strings.Contains(sum["note"].(string), "at least 100 samples") {
		t.Errorf("summary: %v", sum)
	}
	if _, ok := sum["variogram"]; ok {
		t.Error("IDW summary has a variogram")
	}
}

// TestSoilModelOutputFile checks that -o writes the summary to a file and
// nothing to stdout.
func TestSoilModelOutputFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sum.json")
	var out bytes.Buffer
	err := runSoilModel(context.Background(), []string{"-samples", soilExamples + "wartberg_samples_sparse.csv",
		"-plot", soilExamples + "wartberg_plot.geojson", "-method", "idw", "-o", path}, &out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sum map[string]any
	if err := json.Unmarshal(b, &sum); err != nil || sum["method"] != "idw" || out.Len() != 0 {
		t.Errorf("file %s (%v), stdout %q", b, err, out.String())
	}
}

// TestSoilModelRegistered checks that `citymesh model soil -help` reaches
// the soil model.
func TestSoilModelRegistered(t *testing.T) {
	if _, ok := models["soil"]; !ok {
		t.Fatal("soil model not registered")
	}
	if err := runModel(context.Background(), []string{"soil", "-help"}); err != nil {
		t.Fatal(err)
	}
}

// TestSoilModelBadInput checks flag and file errors.
func TestSoilModelBadInput(t *testing.T) {
	dir := t.TempDir()
	badCSV := filepath.Join(dir, "bad.csv")
	os.WriteFile(badCSV, []byte("lon,lat,p_mg_100g,k_mg_100g,ph\n9.24,49.15,NaN,1,7\n"), 0o600)
	badPlot := filepath.Join(dir, "bad.geojson")
	os.WriteFile(badPlot, []byte(`{"type":"Point","coordinates":[9,49]}`), 0o600)
	s, p := soilExamples+"wartberg_samples.csv", soilExamples+"wartberg_plot.geojson"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "-samples and -plot are required"},
		{"bad nutrient", []string{"-samples", s, "-plot", p, "-nutrient", "n"}, "-nutrient"},
		{"bad method", []string{"-samples", s, "-plot", p, "-method", "spline"}, "-method"},
		{"bad variogram", []string{"-samples", s, "-plot", p, "-variogram", "matern"}, "-variogram"},
		{"bad cell", []string{"-samples", s, "-plot", p, "-cell", "-1"}, "-cell"},
		{"bad soil", []string{"-samples", s, "-plot", p, "-soil", "loam"}, "-soil"},
		{"too many lags", []string{"-samples", s, "-plot", p, "-lags", "1000000000"}, "-lags 1000000000: want 3 to 1000"},
		{"unknown flag", []string{"-samples", s, "-plot", p, "-x"}, "flag provided but not defined"},
		{"missing file", []string{"-samples", filepath.Join(dir, "none.csv"), "-plot", p}, "no such file"},
		{"NaN sample", []string{"-samples", badCSV, "-plot", p}, "line 2, column p_mg_100g"},
		{"point plot", []string{"-samples", s, "-plot", badPlot}, `type "Point"`},
		{"extra arg", []string{"-samples", s, "-plot", p, "extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		err := runSoilModel(context.Background(), tt.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}
