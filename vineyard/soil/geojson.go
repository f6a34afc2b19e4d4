package soil

import (
	"fmt"
	"io"
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// WriteGeoJSON writes the map as a GeoJSON FeatureCollection (RFC 7946):
// one Polygon feature per cell inside the plot, with properties row, col,
// value, unit, class and (for kriging) variance, then one Point feature per
// sample with its values. Coordinates are rounded to 1e-7° (about 1 cm);
// the output is the same for the same input (orb/geojson encodes with
// encoding/json, which sorts the keys of property maps).
func WriteGeoJSON(w io.Writer, m *Map, samples []Sample) error {
	fc := geojson.NewFeatureCollection()
	unit := m.Unit()
	half := m.CellSize / 2
	for _, c := range m.Cells {
		if !c.Inside() {
			continue
		}
		ring := make(orb.Ring, 0, 5)
		for _, d := range [][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}} {
			lon, lat := m.Projection.Inverse(c.X+d[0]*half, c.Y+d[1]*half)
			ring = append(ring, orb.Point{round7(lon), round7(lat)})
		}
		f := geojson.NewFeature(orb.Polygon{ring})
		f.Properties = geojson.Properties{
			"kind": "cell", "row": c.Row, "col": c.Col, "nutrient": m.Nutrient.String(),
			"value": round6(c.Value), "unit": unit, "class": c.Class.String(), "method": m.Method.String(),
		}
		if !math.IsNaN(c.Variance) {
			f.Properties["variance"] = round6(c.Variance)
		}
		fc.Append(f)
	}
	for i, s := range samples {
		f := geojson.NewFeature(orb.Point{s.Lon, s.Lat})
		f.Properties = geojson.Properties{"kind": "sample", "index": i, "p_mg_100g": s.P, "k_mg_100g": s.K, "ph": s.PH,
			"class": m.Scheme.Classify(ToSchemeUnit(m.Nutrient, m.Form, s.Value(m.Nutrient))).String()}
		fc.Append(f)
	}
	data, err := fc.MarshalJSON()
	if err != nil {
		return fmt.Errorf("write geojson: %w", err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("write geojson: %w", err)
	}
	return nil
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
