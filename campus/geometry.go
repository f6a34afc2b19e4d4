package campus

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/vineyard/soil"
)

// MaxReferencedFileBytes bounds the size of a geometry or route file a
// campus file refers to.
const MaxReferencedFileBytes = 16 << 20

// geometryRef is a geometry given by file: {file: geometry.geojson, id: b01}.
type geometryRef struct {
	File string `yaml:"file"`
	ID   string `yaml:"id"`
}

// problem is a mistake of one kind (ErrBadGeometry, ErrOutOfRange, ErrFile,
// ...) found where the position is the caller's to add.
type problem struct {
	kind error
	msg  string
}

func (e *problem) Error() string { return e.msg }

func badGeo(kind error, format string, args ...any) *problem {
	return &problem{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// geometry reads a Polygon or MultiPolygon given inline (a GeoJSON
// geometry written in YAML) or by file reference, and checks it: rings of
// at least four positions, closed, coordinates in range, a non-zero area
// (vineyard/soil.ValidatePlot's rules).
func (l *loader) geometry(n *yaml.Node) (orb.MultiPolygon, *problem) {
	if n == nil || n.Kind == 0 {
		return nil, badGeo(ErrMissing, "missing")
	}
	var v any
	if mapValue(n, "file") != nil {
		var ref geometryRef
		if err := yamlSafe(func() error { return n.Decode(&ref) }); err != nil {
			return nil, badGeo(ErrSyntax, "%v", err)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "file" && k != "id" {
				return nil, badGeo(ErrUnknownField, "unknown field %q in a file reference (known: file, id)", k)
			}
		}
		g, err := l.geometryFromFile(ref)
		if err != nil {
			return nil, err
		}
		v = g
	} else if err := yamlSafe(func() error { return n.Decode(&v) }); err != nil {
		return nil, badGeo(ErrSyntax, "%v", err)
	}
	mp, gerr := polygonsOf(v)
	if gerr != nil {
		return nil, gerr
	}
	return mp, nil
}

// geometryFromFile returns the geometry (as decoded JSON) of the feature
// ref.ID in a GeoJSON file: a FeatureCollection whose features carry an
// "id" member or property, a Feature, or a bare geometry (ref.ID empty).
func (l *loader) geometryFromFile(ref geometryRef) (any, *problem) {
	doc, err := l.geoFile(ref.File)
	if err != nil {
		return nil, badGeo(ErrFile, "%v", err)
	}
	obj, _ := doc.(map[string]any)
	switch obj["type"] {
	case "FeatureCollection":
		if ref.ID == "" {
			return nil, badGeo(ErrMissing, "%s is a FeatureCollection: give the feature's id", ref.File)
		}
		feats, _ := obj["features"].([]any)
		for _, f := range feats {
			if featureID(f) == ref.ID {
				g, _ := f.(map[string]any)["geometry"]
				return g, nil
			}
		}
		return nil, badGeo(ErrUnknownReference, "%s has no feature with id %q", ref.File, ref.ID)
	case "Feature":
		if ref.ID != "" && featureID(obj) != ref.ID {
			return nil, badGeo(ErrUnknownReference, "%s: the feature's id is %q, not %q", ref.File, featureID(obj), ref.ID)
		}
		return obj["geometry"], nil
	}
	if ref.ID != "" {
		return nil, badGeo(ErrUnknownReference, "%s holds a bare geometry, it has no feature %q", ref.File, ref.ID)
	}
	return doc, nil
}

// featureID is a GeoJSON feature's "id" member, else its "id" property.
func featureID(f any) string {
	obj, _ := f.(map[string]any)
	id := obj["id"]
	if id == nil {
		props, _ := obj["properties"].(map[string]any)
		id = props["id"]
	}
	switch id := id.(type) {
	case string:
		return id
	case float64:
		return fmt.Sprint(id)
	}
	return ""
}

// geoFile reads and caches a referenced GeoJSON file.
func (l *loader) geoFile(name string) (any, error) {
	if v, ok := l.geoCache[name]; ok {
		return v, nil
	}
	data, err := l.readFile(name)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: not JSON: %v", l.display(name), err)
	}
	l.geoCache[name] = v
	return v, nil
}

// readFile reads a file the campus file refers to, relative to its
// directory.
func (l *loader) readFile(name string) ([]byte, error) {
	if l.files == nil {
		return nil, fmt.Errorf("%s: no directory to read referenced files from", name)
	}
	if name == "" || !fs.ValidPath(name) {
		return nil, fmt.Errorf("%q: want a path relative to the campus file's directory and inside it", name)
	}
	f, err := l.files.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.display(name), errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxReferencedFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.display(name), err)
	}
	if len(data) > MaxReferencedFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", l.display(name), MaxReferencedFileBytes)
	}
	return data, nil
}

// display names a referenced file for error messages: beside the campus
// file.
func (l *loader) display(name string) string { return path.Join(path.Dir(l.file), name) }

// polygonsOf converts a decoded GeoJSON Polygon or MultiPolygon into orb's
// types, checking every position, then the rings (soil.ValidatePlot).
func polygonsOf(v any) (orb.MultiPolygon, *problem) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, badGeo(ErrBadGeometry, "not a GeoJSON geometry object")
	}
	typ, _ := obj["type"].(string)
	var polys []any
	switch typ {
	case "Polygon":
		polys = []any{obj["coordinates"]}
	case "MultiPolygon":
		polys, _ = obj["coordinates"].([]any)
	case "":
		return nil, badGeo(ErrBadGeometry, `no "type" (want Polygon or MultiPolygon)`)
	default:
		return nil, badGeo(ErrBadGeometry, "type %q, want Polygon or MultiPolygon", typ)
	}
	for k := range obj {
		if k != "type" && k != "coordinates" && k != "bbox" {
			return nil, badGeo(ErrBadGeometry, "member %q is not part of a GeoJSON %s", k, typ)
		}
	}
	if len(polys) == 0 {
		return nil, badGeo(ErrBadGeometry, "no coordinates")
	}
	var mp orb.MultiPolygon
	for i, p := range polys {
		rings, ok := p.([]any)
		if !ok || len(rings) == 0 {
			return nil, badGeo(ErrBadGeometry, "polygon %d has no rings", i)
		}
		var poly orb.Polygon
		for j, r := range rings {
			positions, ok := r.([]any)
			if !ok {
				return nil, badGeo(ErrBadGeometry, "polygon %d ring %d is not a list of positions", i, j)
			}
			ring := make(orb.Ring, 0, len(positions))
			for k, pos := range positions {
				nums, ok := pos.([]any)
				if !ok || len(nums) < 2 || len(nums) > 3 {
					return nil, badGeo(ErrBadGeometry, "polygon %d ring %d position %d: want [longitude, latitude]", i, j, k)
				}
				var xy [2]float64
				for c := range xy {
					f, ok := number(nums[c])
					if !ok {
						return nil, badGeo(ErrBadGeometry, "polygon %d ring %d position %d: %v is not a number", i, j, k, nums[c])
					}
					xy[c] = f
				}
				if err := checkLonLat(xy[0], xy[1]); err != nil {
					return nil, badGeo(ErrOutOfRange, "polygon %d ring %d position %d: %v", i, j, k, err)
				}
				ring = append(ring, orb.Point{xy[0], xy[1]})
			}
			poly = append(poly, ring)
		}
		mp = append(mp, poly)
	}
	if err := soil.ValidatePlot(mp); err != nil {
		return nil, badGeo(ErrBadGeometry, "%v", err)
	}
	return mp, nil
}

// number returns a decoded YAML or JSON number as a float64.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	}
	return 0, false
}

// checkLonLat checks a longitude and latitude in degrees.
func checkLonLat(lon, lat float64) error {
	if math.IsNaN(lon) || math.IsNaN(lat) || math.IsInf(lon, 0) || math.IsInf(lat, 0) {
		return fmt.Errorf("coordinates are not finite")
	}
	if lon < -180 || lon > 180 || lat < -90 || lat > 90 {
		return fmt.Errorf("[%g, %g] is outside longitude -180..180, latitude -90..90 (positions are [longitude, latitude])", lon, lat)
	}
	return nil
}

// centroid returns the area centroid of a polygon or multipolygon, rounded
// to 1e-7° (about 1 cm) so that derived positions print as they are meant.
func centroid(g orb.Geometry) orb.Point {
	p, _ := planar.CentroidArea(g)
	return orb.Point{round7(p[0]), round7(p[1])}
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// distanceM is the great-circle distance between two [lon, lat] points.
func distanceM(a, b orb.Point) float64 {
	return robot.HaversineM(robot.Point{Lat: a[1], Lon: a[0]}, robot.Point{Lat: b[1], Lon: b[0]})
}
