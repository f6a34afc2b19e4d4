package soil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/paulmach/orb"
)

// maxPlotBytes bounds the size of a plot GeoJSON file (16 MiB).
const maxPlotBytes = 16 << 20

// ReadPlotGeoJSON reads a plot outline from GeoJSON: a Polygon or
// MultiPolygon geometry, or a Feature or FeatureCollection holding exactly
// one of them (a FeatureCollection's polygons are merged). Coordinates are
// longitude, latitude in degrees. Every ring must have at least four
// positions, be closed, and hold finite coordinates in range; the outline
// must enclose a non-zero area.
func ReadPlotGeoJSON(r io.Reader) (orb.MultiPolygon, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPlotBytes+1))
	if err != nil {
		return nil, fmt.Errorf("plot geojson: %w", err)
	}
	if len(data) > maxPlotBytes {
		return nil, fmt.Errorf("plot geojson: larger than %d bytes", maxPlotBytes)
	}
	var root gjObject
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("plot geojson: %w", err)
	}
	mp, err := root.polygons("")
	if err != nil {
		return nil, fmt.Errorf("plot geojson: %w", err)
	}
	if err := ValidatePlot(mp); err != nil {
		return nil, fmt.Errorf("plot geojson: %w", err)
	}
	return mp, nil
}

// gjObject is the subset of a GeoJSON object (RFC 7946) the plot reader
// needs.
type gjObject struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
	Geometry    json.RawMessage `json:"geometry"`
	Features    []gjObject      `json:"features"`
}

// polygons returns the polygons of a Polygon, MultiPolygon, Feature or
// FeatureCollection; where names the object in errors.
func (o gjObject) polygons(where string) (orb.MultiPolygon, error) {
	name := func(s string) string {
		if where == "" {
			return s
		}
		return where + ": " + s
	}
	switch o.Type {
	case "FeatureCollection":
		if where != "" {
			return nil, errors.New(name("nested FeatureCollection"))
		}
		if len(o.Features) == 0 {
			return nil, errors.New("feature collection has no features")
		}
		var mp orb.MultiPolygon
		for i, f := range o.Features {
			if f.Type != "Feature" {
				return nil, fmt.Errorf("feature %d: type %q, want Feature", i, f.Type)
			}
			p, err := f.polygons(fmt.Sprintf("feature %d", i))
			if err != nil {
				return nil, err
			}
			mp = append(mp, p...)
		}
		return mp, nil
	case "Feature":
		if len(o.Geometry) == 0 || string(o.Geometry) == "null" {
			return nil, errors.New(name("feature has no geometry"))
		}
		var g gjObject
		if err := json.Unmarshal(o.Geometry, &g); err != nil {
			return nil, fmt.Errorf("%s: %w", name("geometry"), err)
		}
		if g.Type != "Polygon" && g.Type != "MultiPolygon" {
			return nil, fmt.Errorf("%s: geometry type %q, want Polygon or MultiPolygon", name("feature"), g.Type)
		}
		return g.polygons(where)
	case "Polygon":
		var c [][][]float64
		if err := json.Unmarshal(o.Coordinates, &c); err != nil {
			return nil, fmt.Errorf("%s: %w", name("polygon coordinates"), err)
		}
		p, err := toPolygon(c)
		if err != nil {
			return nil, errors.New(name(err.Error()))
		}
		return orb.MultiPolygon{p}, nil
	case "MultiPolygon":
		var c [][][][]float64
		if err := json.Unmarshal(o.Coordinates, &c); err != nil {
			return nil, fmt.Errorf("%s: %w", name("multipolygon coordinates"), err)
		}
		var mp orb.MultiPolygon
		for i, pc := range c {
			p, err := toPolygon(pc)
			if err != nil {
				return nil, fmt.Errorf("%s", name(fmt.Sprintf("polygon %d: %v", i, err)))
			}
			mp = append(mp, p)
		}
		return mp, nil
	case "":
		return nil, errors.New(name("no \"type\" member"))
	}
	return nil, fmt.Errorf("%s", name(fmt.Sprintf("type %q, want Polygon, MultiPolygon, Feature or FeatureCollection", o.Type)))
}

// toPolygon converts GeoJSON polygon coordinates; each position needs at
// least longitude and latitude (an altitude is ignored).
func toPolygon(c [][][]float64) (orb.Polygon, error) {
	if len(c) == 0 {
		return nil, errors.New("polygon has no rings")
	}
	p := make(orb.Polygon, len(c))
	for i, rc := range c {
		ring := make(orb.Ring, len(rc))
		for j, pos := range rc {
			if len(pos) < 2 {
				return nil, fmt.Errorf("ring %d position %d has %d numbers, want longitude and latitude", i, j, len(pos))
			}
			ring[j] = orb.Point{pos[0], pos[1]}
		}
		p[i] = ring
	}
	return p, nil
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
		if ringArea(p[0]) == 0 {
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

// ringArea returns the absolute shoelace area of a ring in squared degrees.
func ringArea(r orb.Ring) float64 {
	var a float64
	for i := 0; i+1 < len(r); i++ {
		a += r[i][0]*r[i+1][1] - r[i+1][0]*r[i][1]
	}
	return math.Abs(a) / 2
}
