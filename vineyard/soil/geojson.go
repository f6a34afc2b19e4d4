package soil

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// WriteGeoJSON writes the map as a GeoJSON FeatureCollection (RFC 7946):
// one Polygon feature per cell inside the plot, with properties row, col,
// value, unit, class and (for kriging) variance, then one Point feature per
// sample with its values. Coordinates are rounded to 1e-7° (about 1 cm);
// the output is the same for the same input.
func WriteGeoJSON(w io.Writer, m *Map, samples []Sample) error {
	type geometry struct {
		Type        string `json:"type"`
		Coordinates any    `json:"coordinates"`
	}
	type feature struct {
		Type       string         `json:"type"`
		Geometry   geometry       `json:"geometry"`
		Properties map[string]any `json:"properties"`
	}
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{Type: "FeatureCollection"}
	unit := m.Unit()
	half := m.CellSize / 2
	for _, c := range m.Cells {
		if !c.Inside() {
			continue
		}
		ring := make([][2]float64, 0, 5)
		for _, d := range [][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}} {
			lon, lat := m.Projection.Inverse(c.X+d[0]*half, c.Y+d[1]*half)
			ring = append(ring, [2]float64{round7(lon), round7(lat)})
		}
		props := map[string]any{
			"kind": "cell", "row": c.Row, "col": c.Col, "nutrient": m.Nutrient.String(),
			"value": round6(c.Value), "unit": unit, "class": c.Class.String(), "method": m.Method.String(),
		}
		if !math.IsNaN(c.Variance) {
			props["variance"] = round6(c.Variance)
		}
		fc.Features = append(fc.Features, feature{Type: "Feature",
			Geometry: geometry{Type: "Polygon", Coordinates: [][][2]float64{ring}}, Properties: props})
	}
	for i, s := range samples {
		props := map[string]any{"kind": "sample", "index": i, "p_mg_100g": s.P, "k_mg_100g": s.K, "ph": s.PH,
			"class": m.Scheme.Classify(ToSchemeUnit(m.Nutrient, m.Form, s.Value(m.Nutrient))).String()}
		fc.Features = append(fc.Features, feature{Type: "Feature",
			Geometry: geometry{Type: "Point", Coordinates: [2]float64{s.Lon, s.Lat}}, Properties: props})
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(fc); err != nil {
		return fmt.Errorf("write geojson: %w", err)
	}
	return nil
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
