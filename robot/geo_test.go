package robot

import (
	"math"
	"math/rand"
	"testing"
)

// Ed Williams, Aviation Formulary, "Worked examples": LAX (33°57'N,
// 118°24'W) and JFK (40°38'N, 73°47'W); D (N34:30, W116:30) off the
// course. The formulary takes west longitude positive; here east is
// positive, so the longitudes are negated. Values were read from a stored
// copy (a translation) of the formulary's worked examples.
var (
	lax = Point{Lat: 33 + 57.0/60, Lon: -(118 + 24.0/60)}
	jfk = Point{Lat: 40 + 38.0/60, Lon: -(73 + 47.0/60)}
	ptD = Point{Lat: 34.5, Lon: -116.5}
)

func TestHaversineAviationFormulary(t *testing.T) {
	// d = 0.623585 radians = 2144 nm (1 nm = 1 arc minute).
	got := HaversineM(lax, jfk) / EarthRadiusM
	if math.Abs(got-0.623585) > 1e-6 {
		t.Errorf("LAX–JFK central angle = %.7f rad, formulary 0.623585", got)
	}
	if nm := got * 180 * 60 / math.Pi; math.Abs(nm-2144) > 0.5 {
		t.Errorf("LAX–JFK = %.1f nm, formulary 2144", nm)
	}
	// Initial true course 1.150035 rad (66°).
	if b := InitialBearingDeg(lax, jfk) * degToRad; math.Abs(b-1.150035) > 1e-5 {
		t.Errorf("LAX→JFK course = %.6f rad, formulary 1.150035", b)
	}
	// dist_AD = 0.02905 rad, crs_AD = 1.22473 rad.
	if d := HaversineM(lax, ptD) / EarthRadiusM; math.Abs(d-0.02905) > 5e-6 {
		t.Errorf("LAX–D = %.6f rad, formulary 0.02905", d)
	}
	if b := InitialBearingDeg(lax, ptD) * degToRad; math.Abs(b-1.22473) > 5e-5 {
		t.Errorf("LAX→D course = %.6f rad, formulary 1.22473", b)
	}
}

func TestCrossTrackAviationFormulary(t *testing.T) {
	// XTD = 0.00216747 rad = 7.4512 nm right of course;
	// ATD = 0.0289691 rad = 99.588 nm.
	// The formulary works with intermediates rounded to 4–6 digits
	// (dist_AD 0.02905, crs_AD 1.22473); in full precision the result is
	// 0.0021678 rad, 0.015 % (2 m in 13.8 km) from its figure, so the
	// tolerance is 5e-7 rad.
	xtd := CrossTrackM(lax, jfk, ptD) / EarthRadiusM
	if math.Abs(xtd-0.00216747) > 5e-7 {
		t.Errorf("XTD = %.8f rad, formulary 0.00216747 (right, positive)", xtd)
	}
	atd := AlongTrackM(lax, jfk, ptD) / EarthRadiusM
	if math.Abs(atd-0.0289691) > 2e-7 {
		t.Errorf("ATD = %.7f rad, formulary 0.0289691", atd)
	}
	// A point on the other side of the course is left: negative.
	if x := CrossTrackM(lax, jfk, Point{Lat: 35.2, Lon: -117.2}); x >= 0 {
		t.Errorf("point north of the course: XTD = %v, want negative (left)", x)
	}
}

func TestAlongTrackBehindStart(t *testing.T) {
	a, b := Point{Lat: 49.148, Lon: 9.216}, Point{Lat: 49.148, Lon: 9.220}
	behind := Point{Lat: 49.1481, Lon: 9.215}
	if at := AlongTrackM(a, b, behind); at >= 0 {
		t.Errorf("along-track of a point behind the start = %v, want negative", at)
	}
	// Past the end of the arc, the segment distance is to the end point.
	past := Point{Lat: 49.148, Lon: 9.221}
	if d, want := SegmentDistanceM(a, b, past), HaversineM(b, past); math.Abs(d-want) > 1e-9 {
		t.Errorf("segment distance past the end = %v, want %v", d, want)
	}
}

// The tracker's planar deviation against the great-circle reference, for
// random points within 300 m of a campus route: the two must agree to a few
// centimetres, far below GPS error.
func TestPlanarMatchesGreatCircle(t *testing.T) {
	rt := exampleRoute(t)
	tr, err := NewTracker(rt, TrackerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	worst := 0.0
	for i := 0; i < 5000; i++ {
		s := rng.Intn(len(rt.Waypoints) - 1)
		a, b := rt.Waypoints[s].Point(), rt.Waypoints[s+1].Point()
		p := Point{Lat: a.Lat + (rng.Float64()-0.5)*0.005, Lon: a.Lon + (rng.Float64()-0.5)*0.008}
		pp := tr.proj.project(p.Lat, p.Lon)
		_, planar := segmentFoot(tr.pts[s], tr.dir[s], tr.l2[s], pp)
		sphere := SegmentDistanceM(a, b, p)
		if diff := math.Abs(math.Abs(planar) - sphere); diff > worst {
			worst = diff
		}
	}
	if worst > 0.05 {
		t.Errorf("planar and great-circle segment distances differ by up to %.4f m, want ≤ 0.05 m", worst)
	}
	t.Logf("largest planar/great-circle difference within 300 m of the route: %.4f m", worst)
}
