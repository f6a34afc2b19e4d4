package ngsild

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/planar"
)

// errGeo is an error in a geo-query's parameters.
var errGeo = errors.New("geo-query")

// geoQuery is a parsed geo-query (clause 4.10): georel, geometry and
// coordinates.
type geoQuery struct {
	rel string // near, within, intersects
	// near's bounds in metres; 0 when not given.
	maxDistance, minDistance float64
	hasMax, hasMin           bool
	g                        orb.Geometry
}

// parseGeoQuery reads georel, geometry and coordinates (the GeoJSON
// coordinates of the geometry, as a JSON array). Supported relations:
// near;maxDistance==d and near;minDistance==d (metres, from a Point),
// within (a Polygon or MultiPolygon), intersects (a Point, Polygon or
// MultiPolygon).
func parseGeoQuery(georel, geometry, coordinates string) (*geoQuery, error) {
	if georel == "" {
		if geometry != "" || coordinates != "" {
			return nil, fmt.Errorf("%w: geometry and coordinates need georel", errGeo)
		}
		return nil, nil
	}
	if geometry == "" || coordinates == "" {
		return nil, fmt.Errorf("%w: georel needs geometry and coordinates", errGeo)
	}
	q := &geoQuery{}
	parts := strings.Split(georel, ";")
	q.rel = parts[0]
	switch q.rel {
	case "near":
		if len(parts) < 2 {
			return nil, fmt.Errorf("%w: near needs maxDistance==metres or minDistance==metres", errGeo)
		}
		for _, p := range parts[1:] {
			k, v, ok := strings.Cut(p, "==")
			d, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil || math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
				return nil, fmt.Errorf("%w: %q: want maxDistance==metres or minDistance==metres", errGeo, p)
			}
			switch k {
			case "maxDistance":
				q.maxDistance, q.hasMax = d, true
			case "minDistance":
				q.minDistance, q.hasMin = d, true
			default:
				return nil, fmt.Errorf("%w: %q: want maxDistance or minDistance", errGeo, k)
			}
		}
	case "within", "intersects":
		if len(parts) > 1 {
			return nil, fmt.Errorf("%w: %s takes no modifier", errGeo, q.rel)
		}
	case "equals", "disjoint", "overlaps", "contains":
		return nil, fmt.Errorf("%w: georel %q is not supported (near, within, intersects are)", errGeo, q.rel)
	default:
		return nil, fmt.Errorf("%w: unknown georel %q", errGeo, q.rel)
	}
	g, err := parseCoordinates(geometry, coordinates)
	if err != nil {
		return nil, err
	}
	q.g = g
	_, isPoint := g.(orb.Point)
	switch {
	case q.rel == "near" && !isPoint:
		return nil, fmt.Errorf("%w: near measures from a Point, not a %s", errGeo, geometry)
	case q.rel == "within" && isPoint:
		return nil, fmt.Errorf("%w: within needs a Polygon or MultiPolygon", errGeo)
	}
	return q, nil
}

// parseCoordinates reads a geometry of type typ from its GeoJSON
// coordinates.
func parseCoordinates(typ, coordinates string) (orb.Geometry, error) {
	var g orb.Geometry
	var err error
	switch typ {
	case "Point":
		var p [2]float64
		err = decodeStrict(coordinates, &p)
		g = orb.Point(p)
	case "Polygon":
		var p [][][2]float64
		if err = decodeStrict(coordinates, &p); err == nil {
			g = polygon(p)
		}
	case "MultiPolygon":
		var mp [][][][2]float64
		if err = decodeStrict(coordinates, &mp); err == nil {
			m := orb.MultiPolygon{}
			for _, p := range mp {
				m = append(m, polygon(p))
			}
			g = m
		}
	case "LineString", "MultiPoint", "MultiLineString":
		return nil, fmt.Errorf("%w: geometry %s is not supported (Point, Polygon, MultiPolygon are)", errGeo, typ)
	default:
		return nil, fmt.Errorf("%w: unknown geometry %q", errGeo, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: coordinates of a %s: %v", errGeo, typ, err)
	}
	if err := validGeometry(g); err != nil {
		return nil, err
	}
	return g, nil
}

// decodeStrict decodes one JSON value into v, nothing after it.
func decodeStrict(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

func polygon(rings [][][2]float64) orb.Polygon {
	p := make(orb.Polygon, len(rings))
	for i, r := range rings {
		p[i] = make(orb.Ring, len(r))
		for j, c := range r {
			p[i][j] = orb.Point(c)
		}
	}
	return p
}

// validGeometry checks positions (longitude, latitude) and rings (closed,
// at least 4 positions).
func validGeometry(g orb.Geometry) error {
	okPoint := func(p orb.Point) bool {
		return p[0] >= -180 && p[0] <= 180 && p[1] >= -90 && p[1] <= 90
	}
	okPolygon := func(p orb.Polygon) error {
		if len(p) == 0 {
			return fmt.Errorf("%w: a polygon without rings", errGeo)
		}
		for _, r := range p {
			if len(r) < 4 || r[0] != r[len(r)-1] {
				return fmt.Errorf("%w: a ring needs at least 4 positions, the last equal to the first", errGeo)
			}
			for _, q := range r {
				if !okPoint(q) {
					return fmt.Errorf("%w: (%v, %v) is not a longitude and latitude", errGeo, q[0], q[1])
				}
			}
		}
		return nil
	}
	switch g := g.(type) {
	case orb.Point:
		if !okPoint(g) {
			return fmt.Errorf("%w: (%v, %v) is not a longitude and latitude", errGeo, g[0], g[1])
		}
	case orb.Polygon:
		return okPolygon(g)
	case orb.MultiPolygon:
		if len(g) == 0 {
			return fmt.Errorf("%w: a multipolygon without polygons", errGeo)
		}
		for _, p := range g {
			if err := okPolygon(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// match reports whether an entity's location satisfies the query. near
// measures the great-circle distance from the query's point to the
// entity's reference point (a building's or plot's centroid); within holds
// when every vertex of the location lies inside the query's polygons;
// intersects when a vertex of either lies inside the other (a location
// whose edges only cross the query's, with no vertex inside, is missed).
func (q *geoQuery) match(e *entity) bool {
	switch q.rel {
	case "near":
		d := geo.Distance(q.g.(orb.Point), e.loc)
		return (!q.hasMax || d <= q.maxDistance) && (!q.hasMin || d >= q.minDistance)
	case "within":
		for _, v := range vertices(e.geom) {
			if !contains(q.g, v) {
				return false
			}
		}
		return true
	case "intersects":
		for _, v := range vertices(e.geom) {
			if contains(q.g, v) {
				return true
			}
		}
		for _, v := range vertices(q.g) {
			if contains(e.geom, v) {
				return true
			}
		}
	}
	return false
}

// contains reports whether g contains (or, a point, equals) p.
func contains(g orb.Geometry, p orb.Point) bool {
	switch g := g.(type) {
	case orb.Point:
		return g == p
	case orb.Polygon:
		return planar.PolygonContains(g, p)
	case orb.MultiPolygon:
		return planar.MultiPolygonContains(g, p)
	}
	return false
}

// vertices returns a geometry's positions (a polygon's outer rings).
func vertices(g orb.Geometry) []orb.Point {
	switch g := g.(type) {
	case orb.Point:
		return []orb.Point{g}
	case orb.Polygon:
		if len(g) > 0 {
			return g[0]
		}
	case orb.MultiPolygon:
		var out []orb.Point
		for _, p := range g {
			if len(p) > 0 {
				out = append(out, p[0]...)
			}
		}
		return out
	}
	return nil
}
