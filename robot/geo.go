package robot

import (
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

// EarthRadiusM is the mean Earth radius in metres used for all spherical
// formulas, 6,371 km as in Movable Type Scripts ("mean radius = 6,371 km").
const EarthRadiusM = 6371e3

const degToRad = math.Pi / 180

// Point is a position in decimal degrees, latitude north positive and
// longitude east positive (WGS 84 / GeoJSON convention).
type Point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// validPoint reports whether p is a finite latitude/longitude pair in range.
func validPoint(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// haversineAngle returns the central angle in radians between a and b:
// a = sin²(Δφ/2) + cos φ1 · cos φ2 · sin²(Δλ/2), c = 2 · atan2(√a, √(1−a))
// (Movable Type Scripts, "Haversine formula").
func haversineAngle(a, b Point) float64 {
	phi1, phi2 := a.Lat*degToRad, b.Lat*degToRad
	dphi := (b.Lat - a.Lat) * degToRad
	dlam := (b.Lon - a.Lon) * degToRad
	s1, s2 := math.Sin(dphi/2), math.Sin(dlam/2)
	h := s1*s1 + math.Cos(phi1)*math.Cos(phi2)*s2*s2
	if h > 1 {
		h = 1
	}
	return 2 * math.Atan2(math.Sqrt(h), math.Sqrt(1-h))
}

// HaversineM returns the great-circle distance in metres between a and b on
// a sphere of radius EarthRadiusM.
//
// github.com/paulmach/orb/geo.DistanceHaversine is the same formula but
// multiplies by orb.EarthRadius, 6,378,137 m (the WGS 84 equatorial
// radius), not the 6,371 km mean radius of Movable Type Scripts that the
// whole package and its tests use. Its distances are 0.112 % longer:
// LAX–JFK comes out 3,977.3 km instead of 3,972.9 km, which is 0.624283
// rad on the package's sphere, not the Aviation Formulary's 0.623585 rad
// that TestHaversineAviationFormulary reproduces. So the package keeps its
// own haversine; haversineAngle above also gives the central angle the
// cross-track and along-track formulas need, which orb does not expose.
func HaversineM(a, b Point) float64 {
	return haversineAngle(a, b) * EarthRadiusM
}

// bearingRad returns the initial great-circle bearing from a to b in radians,
// clockwise from true north, in [−π, π] (orb/geo.Bearing in radians).
func bearingRad(a, b Point) float64 {
	return geo.Bearing(a.orb(), b.orb()) * degToRad
}

// InitialBearingDeg returns the initial great-circle bearing from a to b in
// degrees clockwise from true north, in [0, 360). It is
// θ = atan2(sin Δλ · cos φ2, cos φ1 · sin φ2 − sin φ1 · cos φ2 · cos Δλ)
// (Movable Type Scripts, "Bearing"), computed by
// github.com/paulmach/orb/geo.Bearing (the same formula; no radius is
// involved), normalised from [−180, 180] to [0, 360).
func InitialBearingDeg(a, b Point) float64 {
	d := geo.Bearing(a.orb(), b.orb())
	if d < 0 {
		d += 360
	}
	if d >= 360 { // a tiny negative bearing rounds up to 360
		d = 0
	}
	return d
}

// orb returns p as an orb.Point, [lon, lat].
func (p Point) orb() orb.Point { return orb.Point{p.Lon, p.Lat} }

// CrossTrackM returns the signed distance in metres from p to the great
// circle through a and b: positive when p is right of the course from a to
// b, negative when left. It is
// dxt = asin(sin δ13 · sin(θ13 − θ12)) · R, where δ13 is the angular
// distance a→p and θ13, θ12 the initial bearings a→p and a→b (Movable Type
// Scripts, "Cross-track distance"; Ed Williams, Aviation Formulary,
// "Cross track error": XTD = asin(sin(dist_AD)·sin(crs_AD − crs_AB))).
func CrossTrackM(a, b, p Point) float64 {
	d13 := haversineAngle(a, p)
	return math.Asin(math.Sin(d13)*math.Sin(bearingRad(a, p)-bearingRad(a, b))) * EarthRadiusM
}

// AlongTrackM returns the distance in metres from a along the great circle
// towards b to the point closest to p: dat = acos(cos δ13 / cos δxt) · R
// (Movable Type Scripts, "Along-track distance"; Aviation Formulary,
// ATD = acos(cos(dist_AD)/cos(XTD))). It is negative when the closest point
// lies behind a, i.e. when p is more than 90° of bearing away from the
// course.
func AlongTrackM(a, b, p Point) float64 {
	d13 := haversineAngle(a, p)
	dxt := math.Asin(math.Sin(d13) * math.Sin(bearingRad(a, p)-bearingRad(a, b)))
	c := math.Cos(d13) / math.Cos(dxt)
	if c > 1 {
		c = 1
	} else if c < -1 {
		c = -1
	}
	dat := math.Acos(c) * EarthRadiusM
	if math.Cos(bearingRad(a, p)-bearingRad(a, b)) < 0 {
		dat = -dat
	}
	return dat
}

// SegmentDistanceM returns the great-circle distance in metres from p to the
// arc from a to b: the cross-track distance when the foot of the
// perpendicular falls on the arc, otherwise the haversine distance to the
// nearer end. It is the slow reference the Tracker's planar computation is
// tested against.
func SegmentDistanceM(a, b, p Point) float64 {
	length := HaversineM(a, b)
	if length == 0 {
		return HaversineM(a, p)
	}
	at := AlongTrackM(a, b, p)
	switch {
	case at <= 0:
		return HaversineM(a, p)
	case at >= length:
		return HaversineM(b, p)
	}
	return math.Abs(CrossTrackM(a, b, p))
}

// projection is a local equirectangular projection about (lat0, lon0):
// x = Δλ · cos φ0 · R, y = Δφ · R, in metres east and north (Movable Type
// Scripts, "Equirectangular approximation", with the cosine taken at a fixed
// reference latitude so that the map is affine and segments stay straight).
type projection struct {
	lat0, lon0 float64
	kx, ky     float64 // metres per degree of longitude and latitude
}

func newProjection(lat0, lon0 float64) projection {
	ky := EarthRadiusM * degToRad
	return projection{lat0: lat0, lon0: lon0, kx: ky * math.Cos(lat0*degToRad), ky: ky}
}

type vec struct{ x, y float64 }

func (pr projection) project(lat, lon float64) vec {
	dlon := lon - pr.lon0
	if dlon > 180 {
		dlon -= 360
	} else if dlon < -180 {
		dlon += 360
	}
	return vec{x: dlon * pr.kx, y: (lat - pr.lat0) * pr.ky}
}

// segmentFoot returns, for the planar segment a→b with precomputed direction
// d = b − a and squared length l2, the fraction t ∈ [0, 1] of the closest
// point to p, and the signed distance (positive right of a→b).
func segmentFoot(a, d vec, l2 float64, p vec) (t, signed float64) {
	px, py := p.x-a.x, p.y-a.y
	if l2 > 0 {
		t = (px*d.x + py*d.y) / l2
		if t < 0 {
			t = 0
		} else if t > 1 {
			t = 1
		}
	}
	fx, fy := px-t*d.x, py-t*d.y
	dist := math.Sqrt(fx*fx + fy*fy)
	// The z component of d × (p − a) is positive when p is left of a→b
	// (x east, y north, counter-clockwise positive).
	if d.x*py-d.y*px > 0 {
		dist = -dist
	}
	return t, dist
}
