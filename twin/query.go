package twin

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/planar"

	"github.com/citymesh/citymesh/event"
)

// Query selects points or assets: every field that is set must match. The
// zero Query selects everything.
type Query struct {
	// IDs selects these points (or assets) only, in this order; ids the
	// model does not know are reported in Result.Unknown.
	IDs []string
	// Asset selects the points of these assets (points only).
	Asset []string
	// Kind is the asset kind (room, meter, device, ...).
	Kind string
	// Quantity is the point's quantity (points only).
	Quantity string
	// Site and Tenant are the point's or asset's site and tenant.
	Site, Tenant string
	// Building selects a building's rooms, meters and building gateway,
	// their points, and the building itself.
	Building string
	// Within selects what lies inside a polygon or multipolygon
	// (longitude/latitude).
	Within orb.Geometry
	// Bound selects what lies inside a bounding box.
	Bound *orb.Bound
	// Near selects what lies within DistanceM metres of a point.
	Near *Near
	// Scoped restricts the result to tenant Scope's points and assets:
	// what a tenant's user may see.
	Scoped bool
	Scope  string
	// Offset and Limit page the result (Limit 0: all).
	Offset, Limit int
}

// Near is a circle on the ground: a point and a distance in metres.
type Near struct {
	Point     orb.Point
	DistanceM float64
}

// Errors of a query.
var ErrBadQuery = errors.New("twin: bad query")

// Validate checks the query's geometry and paging.
func (q *Query) Validate() error {
	switch g := q.Within.(type) {
	case nil, orb.Polygon, orb.MultiPolygon:
		if p, ok := g.(orb.Polygon); ok && (len(p) == 0 || len(p[0]) < 4) {
			return fmt.Errorf("%w: within: a polygon needs a ring of at least 4 positions", ErrBadQuery)
		}
	default:
		return fmt.Errorf("%w: within: a %s, want a Polygon or MultiPolygon", ErrBadQuery, g.GeoJSONType())
	}
	if b := q.Bound; b != nil {
		if !validLonLat(b.Min) || !validLonLat(b.Max) || b.Min[0] > b.Max[0] || b.Min[1] > b.Max[1] {
			return fmt.Errorf("%w: bbox: want min longitude, min latitude, max longitude, max latitude", ErrBadQuery)
		}
	}
	if n := q.Near; n != nil {
		if !validLonLat(n.Point) {
			return fmt.Errorf("%w: near: (%v, %v) is not a longitude and latitude", ErrBadQuery, n.Point[0], n.Point[1])
		}
		if !(n.DistanceM > 0 && n.DistanceM <= 1e6) {
			return fmt.Errorf("%w: distance: %v m, want more than 0 and at most 1,000,000", ErrBadQuery, n.DistanceM)
		}
	}
	if q.Offset < 0 || q.Limit < 0 {
		return fmt.Errorf("%w: offset and limit must not be negative", ErrBadQuery)
	}
	return nil
}

func validLonLat(p orb.Point) bool {
	return p[0] >= -180 && p[0] <= 180 && p[1] >= -90 && p[1] <= 90 && !math.IsNaN(p[0]) && !math.IsNaN(p[1])
}

// Result is what a query selected.
type Result struct {
	// Total is how many matched before paging; Unknown the ids of
	// Query.IDs that the model does not have (or the scope hides).
	Total   int
	Unknown []string
	idx     []int32
}

// Len returns how many points or assets the page holds.
func (r *Result) Len() int { return len(r.idx) }

// geoFilter is the geometric part of a query, prepared once.
type geoFilter struct {
	within    orb.Geometry
	withinB   orb.Bound
	bound     *orb.Bound
	near      *Near
	nearB     orb.Bound
	hasWithin bool
	hasGeo    bool
	// last and lastOK remember the previous location's answer: the points
	// of one asset, queried one after the other, mostly share their
	// asset's location (a campus of 35,666 points has about 4,900), so a
	// polygon test per location rather than per point.
	last    orb.Point
	lastOK  bool
	hasLast bool
}

func newGeoFilter(q *Query) geoFilter {
	g := geoFilter{within: q.Within, bound: q.Bound, near: q.Near}
	if q.Within != nil {
		g.hasWithin, g.withinB = true, q.Within.Bound()
	}
	if q.Near != nil {
		g.nearB = geo.NewBoundAroundPoint(q.Near.Point, q.Near.DistanceM)
	}
	g.hasGeo = g.hasWithin || g.bound != nil || g.near != nil
	return g
}

// match reports whether p passes the geometric conditions. A geoFilter is
// used by one goroutine at a time.
func (g *geoFilter) match(p orb.Point) bool {
	if g.hasLast && p == g.last {
		return g.lastOK
	}
	ok := g.test(p)
	g.last, g.lastOK, g.hasLast = p, ok, true
	return ok
}

// test reports whether p passes the geometric conditions.
func (g *geoFilter) test(p orb.Point) bool {
	if g.bound != nil && !g.bound.Contains(p) {
		return false
	}
	if g.hasWithin {
		if !g.withinB.Contains(p) {
			return false
		}
		switch w := g.within.(type) {
		case orb.Polygon:
			if !planar.PolygonContains(w, p) {
				return false
			}
		case orb.MultiPolygon:
			if !planar.MultiPolygonContains(w, p) {
				return false
			}
		}
	}
	if g.near != nil {
		if !g.nearB.Contains(p) || geo.Distance(g.near.Point, p) > g.near.DistanceM {
			return false
		}
	}
	return true
}

// Points selects points. Geometric conditions apply to a point's location,
// or for a robot's position point to its latest position.
func (s *State) Points(q Query) (Result, error) {
	if err := q.Validate(); err != nil {
		return Result{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var r Result
	g := newGeoFilter(&q)
	var assets map[int32]bool
	if len(q.Asset) > 0 {
		assets = make(map[int32]bool, len(q.Asset))
		for _, id := range q.Asset {
			if ai, ok := s.byAsset[id]; ok {
				assets[ai] = true
			}
		}
	}
	match := func(i int32) bool {
		e := &s.points[i]
		p := e.p
		switch {
		case q.Scoped && p.Tenant != q.Scope,
			assets != nil && !assets[e.asset],
			q.Kind != "" && string(p.AssetKind) != q.Kind,
			q.Quantity != "" && p.Quantity != q.Quantity,
			q.Site != "" && p.Site != q.Site,
			q.Tenant != "" && p.Tenant != q.Tenant,
			q.Building != "" && s.buildingOf(e.asset) != q.Building:
			return false
		}
		if g.hasGeo {
			loc := p.Location
			if e.hasPos {
				loc = e.pos
			}
			return g.match(loc)
		}
		return true
	}
	var within []int32 // the candidates, when an index narrows them
	switch {
	case assets != nil:
		within = []int32{}
		for ai := range assets {
			within = append(within, s.assets[ai].points...)
		}
		slices.Sort(within)
	case q.Building != "":
		within = s.inBuilding[q.Building].points
		if within == nil {
			within = []int32{}
		}
	}
	r.collect(&q, s.byPoint, len(s.points), within, func(i int32) string { return s.points[i].p.Tenant }, match)
	return r, nil
}

// collect fills r with the indexes among n that match, or, when q names
// ids, with those of them that match (ids unknown in byID, or hidden by
// q's scope, go to r.Unknown), and keeps q's page. A non-nil within
// (ascending) holds every index that can match, so only those are tried.
func (r *Result) collect(q *Query, byID map[string]int32, n int, within []int32, tenant func(int32) string, match func(int32) bool) {
	if q.IDs != nil {
		for _, id := range q.IDs {
			i, ok := byID[id]
			if !ok || (q.Scoped && tenant(i) != q.Scope) {
				r.Unknown = append(r.Unknown, id)
				continue
			}
			if match(i) {
				r.idx = append(r.idx, i)
			}
		}
	} else if within != nil {
		for _, i := range within {
			if match(i) {
				r.idx = append(r.idx, i)
			}
		}
	} else {
		for i := range int32(n) {
			if match(i) {
				r.idx = append(r.idx, i)
			}
		}
	}
	r.page(q.Offset, q.Limit)
}

// page keeps the page [offset, offset+limit) of r.idx.
func (r *Result) page(offset, limit int) {
	r.Total = len(r.idx)
	if offset > len(r.idx) {
		offset = len(r.idx)
	}
	r.idx = r.idx[offset:]
	if limit > 0 && limit < len(r.idx) {
		r.idx = r.idx[:limit]
	}
}

// buildingOf returns the building asset ai belongs to (itself for a
// building), "" if none.
func (s *State) buildingOf(ai int32) string {
	e := &s.assets[ai]
	if e.related.Building != "" {
		return e.related.Building
	}
	if e.a.Kind == "building" {
		return e.a.ID
	}
	return ""
}

// Assets selects assets. Geometric conditions apply to an asset's location
// (a building's and a plot's is their centroid unless the file gives one).
// Asset and Quantity do not apply.
func (s *State) Assets(q Query) (Result, error) {
	if err := q.Validate(); err != nil {
		return Result{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var r Result
	g := newGeoFilter(&q)
	match := func(i int32) bool {
		a := s.assets[i].a
		switch {
		case q.Scoped && a.Tenant != q.Scope,
			q.Kind != "" && string(a.Kind) != q.Kind,
			q.Site != "" && a.Site != q.Site,
			q.Tenant != "" && a.Tenant != q.Tenant,
			q.Building != "" && s.buildingOf(i) != q.Building:
			return false
		}
		return !g.hasGeo || g.match(a.Location)
	}
	var within []int32
	if q.Building != "" {
		within = s.inBuilding[q.Building].assets
		if within == nil {
			within = []int32{}
		}
	}
	r.collect(&q, s.byAsset, len(s.assets), within, func(i int32) string { return s.assets[i].a.Tenant }, match)
	return r, nil
}

// PointStates returns the states of a Points result.
func (s *State) PointStates(r Result) []PointState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]PointState, len(r.idx))
	for j, i := range r.idx {
		out[j] = s.pointState(i)
	}
	return out
}

// AssetStates returns the states of an Assets result at now.
func (s *State) AssetStates(r Result, now time.Time) []AssetState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]AssetState, len(r.idx))
	for j, i := range r.idx {
		out[j] = s.assetState(i, now)
	}
	return out
}

// AppendPointsJSON appends the points of a Points result as a JSON array
// of PointState, fast: the latest state of many points in one response.
func (s *State) AppendPointsJSON(b []byte, r Result) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	srcs := make(map[*event.Source][]byte)
	b = append(b, '[')
	for j, i := range r.idx {
		if j > 0 {
			b = append(b, ',')
		}
		b = s.appendPoint(b, i, srcs)
	}
	return append(b, ']')
}
