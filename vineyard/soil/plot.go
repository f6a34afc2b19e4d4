package soil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"
)

// maxPlotBytes bounds the size of a plot GeoJSON file (16 MiB).
const maxPlotBytes = 16 << 20

// ReadPlotGeoJSON reads a plot outline from GeoJSON: a Polygon or
// MultiPolygon geometry, or a Feature or FeatureCollection holding exactly
// one of them (a FeatureCollection's polygons are merged). Coordinates are
// longitude, latitude in degrees. Every ring must have at least four
// positions, be closed, and hold finite coordinates in range; the outline
// must enclose a non-zero area. Decoding is done by orb/geojson; this
// function adds the checks and names the feature, polygon, ring or position
// an error is about.
func ReadPlotGeoJSON(r io.Reader) (orb.MultiPolygon, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPlotBytes+1))
	if err != nil {
		return nil, fmt.Errorf("plot geojson: %w", err)
	}
	if len(data) > maxPlotBytes {
		return nil, fmt.Errorf("plot geojson: larger than %d bytes", maxPlotBytes)
	}
	mp, err := decodePlot(data)
	if err != nil {
		return nil, fmt.Errorf("plot geojson: %w", err)
	}
	if err := ValidatePlot(mp); err != nil {
		return nil, fmt.Errorf("plot geojson: %w", err)
	}
	return mp, nil
}

// gjHead holds the members of a GeoJSON object that decodePlot dispatches
// on.
type gjHead struct {
	Type     string            `json:"type"`
	Features []json.RawMessage `json:"features"`
}

// decodePlot dispatches on the GeoJSON object's "type" member. The members
// of a FeatureCollection are decoded one by one so that an error can name the
// feature.
func decodePlot(data []byte) (orb.MultiPolygon, error) {
	var head gjHead
	if err := json.Unmarshal(data, &head); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return nil, fmt.Errorf("not a GeoJSON object (JSON %s)", te.Value)
		}
		return nil, err
	}
	switch head.Type {
	case "FeatureCollection":
		if len(head.Features) == 0 {
			return nil, errors.New("feature collection has no features")
		}
		var mp orb.MultiPolygon
		for i, raw := range head.Features {
			p, err := decodeFeature(raw)
			if err != nil {
				return nil, fmt.Errorf("feature %d: %w", i, err)
			}
			mp = append(mp, p...)
		}
		return mp, nil
	case "Feature":
		p, err := decodeFeature(data)
		if err != nil {
			return nil, fmt.Errorf("feature: %w", err)
		}
		return p, nil
	case "Polygon", "MultiPolygon":
		g, err := geojson.UnmarshalGeometry(data)
		if err != nil {
			return nil, fmt.Errorf("%s coordinates: %w", strings.ToLower(head.Type), err)
		}
		return polygons(g.Geometry(), data, false)
	case "":
		return nil, errors.New(`no "type" member`)
	}
	return nil, fmt.Errorf("type %q, want Polygon, MultiPolygon, Feature or FeatureCollection", head.Type)
}

// decodeFeature decodes one GeoJSON Feature whose geometry is a Polygon or
// a MultiPolygon.
func decodeFeature(data []byte) (orb.MultiPolygon, error) {
	f, err := geojson.UnmarshalFeature(data)
	if errors.Is(err, geojson.ErrInvalidGeometry) {
		// orb refuses a geometry type it does not know without naming it.
		var head struct {
			Geometry gjHead `json:"geometry"`
		}
		if json.Unmarshal(data, &head) == nil {
			return nil, fmt.Errorf("geometry type %q, want Polygon or MultiPolygon", head.Geometry.Type)
		}
	}
	if err != nil {
		return nil, err
	}
	if f.Geometry == nil {
		return nil, errors.New("no geometry")
	}
	return polygons(f.Geometry, data, true)
}

// polygons returns g as a MultiPolygon after checking, in raw (the JSON g
// was decoded from, a Feature if inFeature), that every position has at
// least two numbers. orb.Point is a [2]float64 and encoding/json fills
// missing array elements with zeros, so orb reads a position [9.24] as
// (9.24, 0) without complaint; an altitude, a third number, is dropped.
func polygons(g orb.Geometry, raw []byte, inFeature bool) (orb.MultiPolygon, error) {
	var mp orb.MultiPolygon
	multi := false
	switch g := g.(type) {
	case orb.Polygon:
		mp = orb.MultiPolygon{g}
	case orb.MultiPolygon:
		mp, multi = g, true
	default:
		return nil, fmt.Errorf("geometry type %q, want Polygon or MultiPolygon", g.GeoJSONType())
	}
	type coordinates struct {
		Coordinates any `json:"coordinates"`
	}
	var coords any
	if inFeature {
		var f struct {
			Geometry coordinates `json:"geometry"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, err
		}
		coords = f.Geometry.Coordinates
	} else {
		var g coordinates
		if err := json.Unmarshal(raw, &g); err != nil {
			return nil, err
		}
		coords = g.Coordinates
	}
	if !multi {
		coords = []any{coords}
	}
	for i, p := range asArray(coords) {
		for j, ring := range asArray(p) {
			for k, pos := range asArray(ring) {
				if n := len(asArray(pos)); n < 2 {
					where := fmt.Sprintf("ring %d position %d", j, k)
					if multi {
						where = fmt.Sprintf("polygon %d %s", i, where)
					}
					return nil, fmt.Errorf("%s has %d numbers, want longitude and latitude", where, n)
				}
			}
		}
	}
	return mp, nil
}

// asArray returns v as a JSON array, or nil if it is not one.
func asArray(v any) []any {
	a, _ := v.([]any)
	return a
}

// ValidatePlot checks a plot outline: at least one polygon, rings with at
// least four positions that are closed, finite coordinates within longitude
// −180…180 and latitude −90…90, a bounding box no larger than 0.5° (mapping
// is meant for plots, not regions), and a non-zero outer-ring area.
func ValidatePlot(mp orb.MultiPolygon) error {
	if len(mp) == 0 {
		return errors.New("no polygon")
	}
	for i, p := range mp {
		if len(p) == 0 {
			return fmt.Errorf("polygon %d has no rings", i)
		}
		for j, ring := range p {
			if len(ring) < 4 {
				return fmt.Errorf("polygon %d ring %d has %d positions, want at least 4", i, j, len(ring))
			}
			if ring[0] != ring[len(ring)-1] {
				return fmt.Errorf("polygon %d ring %d is not closed (first and last positions differ)", i, j)
			}
			for k, pt := range ring {
				if math.IsNaN(pt[0]) || math.IsNaN(pt[1]) || math.IsInf(pt[0], 0) || math.IsInf(pt[1], 0) {
					return fmt.Errorf("polygon %d ring %d position %d is not finite", i, j, k)
				}
				if pt[0] < -180 || pt[0] > 180 || pt[1] < -90 || pt[1] > 90 {
					return fmt.Errorf("polygon %d ring %d position %d (%g, %g) is outside longitude/latitude range", i, j, k, pt[0], pt[1])
				}
			}
		}
		if planar.Area(p[0]) == 0 {
			return fmt.Errorf("polygon %d encloses no area", i)
		}
	}
	b := mp.Bound()
	if b.Max[0]-b.Min[0] > 0.5 || b.Max[1]-b.Min[1] > 0.5 {
		return fmt.Errorf("bounding box %g° × %g° is larger than 0.5°; split the area into plots", b.Max[0]-b.Min[0], b.Max[1]-b.Min[1])
	}
	if b.Max[1] > 85 || b.Min[1] < -85 {
		return errors.New("plot lies beyond ±85° latitude, where the local projection degenerates")
	}
	return nil
}
