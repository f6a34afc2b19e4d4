package robot

import (
	"math"
	"strings"
	"testing"
	"time"
)

// offset returns the point east and north metres from (lat0, lon0) in the
// same equirectangular approximation the tracker uses.
func offset(lat0, lon0, east, north float64) Point {
	ky := EarthRadiusM * degToRad
	kx := ky * math.Cos(lat0*degToRad)
	return Point{Lat: lat0 + north/ky, Lon: lon0 + east/kx}
}

// lineRoute is a route due east along 49.148 N with waypoints every 50 m.
func lineRoute(t *testing.T, n int) *Route {
	t.Helper()
	rt := &Route{ID: "line", CorridorM: 5, ArrivalM: 3}
	for i := 0; i < n; i++ {
		p := offset(49.148, 9.216, float64(i)*50, 0)
		rt.Waypoints = append(rt.Waypoints, Waypoint{ID: string(rune('A' + i)), Lat: p.Lat, Lon: p.Lon})
	}
	if err := rt.Validate(); err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestTrackerDeviationSideAndProgress(t *testing.T) {
	rt := lineRoute(t, 4) // A..D, 150 m
	t0 := mustTime(t, "2026-03-02T22:00:00+01:00")
	cases := []struct {
		name         string
		east, north  float64
		wantDev      float64
		wantIn       bool
		wantSeg      int
		wantAlong    float64
		wantProgress float64
	}{
		// Travelling east, north is left (negative), south right.
		{"on the line", 25, 0, 0, true, 0, 25, 25.0 / 150},
		{"2 m left", 25, 2, -2, true, 0, 25, 25.0 / 150},
		{"7 m right", 25, -7, 7, false, 0, 25, 25.0 / 150},
		{"corridor edge", 30, -5, 5, true, 0, 30, 30.0 / 150},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := NewTracker(rt, TrackerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			p := offset(49.148, 9.216, c.east, c.north)
			pos, err := tr.Update(Fix{Time: t0, Lat: p.Lat, Lon: p.Lon})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(pos.DeviationM-c.wantDev) > 0.01 || pos.InCorridor != c.wantIn || pos.Segment != c.wantSeg {
				t.Errorf("deviation %.3f in %v seg %d, want %.3f %v %d", pos.DeviationM, pos.InCorridor, pos.Segment, c.wantDev, c.wantIn, c.wantSeg)
			}
			if math.Abs(pos.AlongM-c.wantAlong) > 0.01 || math.Abs(pos.Progress-c.wantProgress) > 1e-4 {
				t.Errorf("along %.3f progress %.5f, want %.3f %.5f", pos.AlongM, pos.Progress, c.wantAlong, c.wantProgress)
			}
			// The great-circle reference agrees within a centimetre.
			a, b := rt.Waypoints[0].Point(), rt.Waypoints[1].Point()
			if ref := CrossTrackM(a, b, p); math.Abs(ref-pos.DeviationM) > 0.01 {
				t.Errorf("great-circle cross-track %.4f, planar %.4f", ref, pos.DeviationM)
			}
		})
	}
}

func TestTrackerMissedWaypointAndExcursion(t *testing.T) {
	rt := lineRoute(t, 4)
	t0 := mustTime(t, "2026-03-02T22:00:00+01:00")
	var fixes []Fix
	for i, e := 0, 0.0; e <= 150; i, e = i+1, e+5 {
		north := 0.0
		if e >= 35 && e <= 65 {
			north = 9 // around an obstacle at B, 9 m to the left
		}
		p := offset(49.148, 9.216, e, north)
		fixes = append(fixes, Fix{Time: t0.Add(time.Duration(i) * 5 * time.Second), Lat: p.Lat, Lon: p.Lon})
	}
	rep, err := Track(rt, fixes, TrackerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]WaypointState{"A": WaypointReached, "B": WaypointMissed, "C": WaypointReached, "D": WaypointReached}
	for _, w := range rep.Waypoints {
		if w.State != want[w.ID] {
			t.Errorf("waypoint %s: %s, want %s", w.ID, w.State, want[w.ID])
		}
	}
	if rep.Reached != 3 || rep.Missed != 1 || rep.Pending != 0 {
		t.Errorf("reached %d missed %d pending %d, want 3 1 0", rep.Reached, rep.Missed, rep.Pending)
	}
	if len(rep.OffRoute) != 1 {
		t.Fatalf("off-route excursions %+v, want 1", rep.OffRoute)
	}
	ex := rep.OffRoute[0]
	if ex.Fixes != 7 || math.Abs(ex.MaxDeviationM-9) > 0.01 || !ex.Start.Equal(t0.Add(35*time.Second)) || !ex.End.Equal(t0.Add(65*time.Second)) {
		t.Errorf("excursion %+v, want 7 fixes from +35 s to +65 s, 9 m", ex)
	}
	if math.Abs(rep.FinalProgress-1) > 1e-9 {
		t.Errorf("final progress %v, want 1", rep.FinalProgress)
	}
	// B is reported missed by the first fix more than its radius past it.
	for _, p := range rep.Positions {
		if len(p.Missed) > 0 {
			if p.Missed[0] != "B" || p.AlongM <= 53 || p.AlongM > 58 {
				t.Errorf("missed %v at along %.1f m, want B just after 53 m", p.Missed, p.AlongM)
			}
		}
	}
}

func TestTrackerLoopDoesNotJumpToEnd(t *testing.T) {
	// A square loop whose last waypoint is the first: the start fix must
	// stay on segment 0 and not mark everything missed.
	rt := &Route{ID: "loop"}
	for i, c := range [][2]float64{{0, 0}, {60, 0}, {60, 60}, {0, 60}, {0, 0}} {
		p := offset(49.148, 9.216, c[0], c[1])
		rt.Waypoints = append(rt.Waypoints, Waypoint{ID: string(rune('P' + i)), Lat: p.Lat, Lon: p.Lon})
	}
	if err := rt.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, _ := NewTracker(rt, TrackerConfig{})
	p := offset(49.148, 9.216, 1, 1)
	pos, err := tr.Update(Fix{Time: mustTime(t, "2026-03-02T22:00:00Z"), Lat: p.Lat, Lon: p.Lon})
	if err != nil {
		t.Fatal(err)
	}
	if pos.Segment != 0 || len(pos.Missed) != 0 || pos.Progress > 0.01 {
		t.Errorf("start of loop: segment %d missed %v progress %.3f, want 0, none, ~0", pos.Segment, pos.Missed, pos.Progress)
	}
	if len(pos.Reached) != 1 || pos.Reached[0] != "P" {
		t.Errorf("reached %v, want [P] (not the loop's last waypoint T)", pos.Reached)
	}
}

func TestTrackerRejoinsAhead(t *testing.T) {
	rt := lineRoute(t, 8) // 350 m
	tr, _ := NewTracker(rt, TrackerConfig{LookaheadM: 20})
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	p := offset(49.148, 9.216, 0, 0)
	if _, err := tr.Update(Fix{Time: t0, Lat: p.Lat, Lon: p.Lon}); err != nil {
		t.Fatal(err)
	}
	// The robot reappears on segment 5 (beyond the look-ahead window).
	p = offset(49.148, 9.216, 270, 1)
	pos, err := tr.Update(Fix{Time: t0.Add(time.Minute), Lat: p.Lat, Lon: p.Lon})
	if err != nil {
		t.Fatal(err)
	}
	if pos.Segment != 5 || !pos.InCorridor {
		t.Errorf("rejoin: segment %d in corridor %v, want 5 true", pos.Segment, pos.InCorridor)
	}
	if strings.Join(pos.Missed, ",") != "B,C,D,E,F" {
		t.Errorf("missed %v, want B..F", pos.Missed)
	}
}

func TestTrackerBadFixes(t *testing.T) {
	rt := lineRoute(t, 3)
	tr, _ := NewTracker(rt, TrackerConfig{})
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	if _, err := tr.Update(Fix{Time: t0, Lat: 91, Lon: 0}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("lat 91: %v", err)
	}
	if _, err := tr.Update(Fix{Time: t0, Lat: math.NaN(), Lon: 0}); err == nil {
		t.Error("NaN lat accepted")
	}
	p := rt.Waypoints[0]
	if _, err := tr.Update(Fix{Time: t0, Lat: p.Lat, Lon: p.Lon}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Update(Fix{Time: t0.Add(-time.Second), Lat: p.Lat, Lon: p.Lon}); err == nil || !strings.Contains(err.Error(), "earlier") {
		t.Errorf("fix going back in time: %v", err)
	}
	if _, err := NewTracker(&Route{ID: "x", Waypoints: []Waypoint{{ID: "a"}}}, TrackerConfig{}); err == nil {
		t.Error("one-waypoint route accepted")
	}
}

// The example patrol: the robot skips wp08 and detours around an obstacle
// between wp05 and wp06 (examples/models/robot/track.csv).
func TestTrackExamplePatrol(t *testing.T) {
	rt, rep := examplePatrol(t)
	if rep.Fixes != 115 || rep.Reached != 9 || rep.Missed != 1 {
		t.Errorf("fixes %d reached %d missed %d, want 115 9 1", rep.Fixes, rep.Reached, rep.Missed)
	}
	if rep.Waypoints[7].ID != "wp08" || rep.Waypoints[7].State != WaypointMissed {
		t.Errorf("wp08: %+v, want missed", rep.Waypoints[7])
	}
	if len(rep.OffRoute) != 2 || rep.OffRoute[0].Segment != 4 || rep.OffRoute[0].MaxDeviationM < 10 {
		t.Errorf("off route %+v, want the detour on segment 4 (≈12 m) and the cut past wp08", rep.OffRoute)
	}
	if math.Abs(rep.LengthM-rt.LengthM()) > 0.1 {
		t.Errorf("planar length %.2f m, haversine length %.2f m", rep.LengthM, rt.LengthM())
	}
}

func TestTrackerNearest(t *testing.T) {
	r := exampleRoute(t)
	tr, err := NewTracker(r, TrackerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range r.Waypoints[:len(r.Waypoints)-1] {
		seg, d := tr.Nearest(w.Lat, w.Lon)
		if math.Abs(d) > 0.01 {
			t.Errorf("waypoint %s: nearest segment %d at %.3f m, want on the route", w.ID, seg, d)
		}
	}
	if seg, d := tr.Nearest(91, 0); seg != -1 || !math.IsNaN(d) {
		t.Errorf("out of range: %d %v", seg, d)
	}
	// The same fix gives the same answer whatever came before.
	w := r.Waypoints[1]
	seg1, d1 := tr.Nearest(w.Lat+0.0002, w.Lon)
	if _, err := tr.Update(Fix{Time: time.Unix(0, 0), Lat: r.Waypoints[0].Lat, Lon: r.Waypoints[0].Lon}); err != nil {
		t.Fatal(err)
	}
	seg2, d2 := tr.Nearest(w.Lat+0.0002, w.Lon)
	if seg1 != seg2 || d1 != d2 || math.Abs(d1) < 15 {
		t.Errorf("nearest changed with the tracker's state or is too near: %d %.2f, %d %.2f", seg1, d1, seg2, d2)
	}
}
