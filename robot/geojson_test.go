package robot

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// The example patrol as GeoJSON: read back with orb/geojson, every feature
// must carry the route, waypoint outcome, track fix or off-route fix it
// stands for, in [lon, lat] order (RFC 7946, section 3.1.1).
func TestWriteTrackGeoJSON(t *testing.T) {
	rt, rep := examplePatrol(t)
	var buf bytes.Buffer
	if err := WriteTrackGeoJSON(&buf, rt, rep); err != nil {
		t.Fatal(err)
	}
	fc, err := geojson.UnmarshalFeatureCollection(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var offRoute []Position
	for _, p := range rep.Positions {
		if !p.InCorridor {
			offRoute = append(offRoute, p)
		}
	}
	if len(offRoute) == 0 {
		t.Fatal("the example patrol has no off-route fixes; the test needs some")
	}
	if want := 1 + len(rt.Waypoints) + 1 + len(offRoute); fc.Type != "FeatureCollection" || len(fc.Features) != want {
		t.Fatalf("type %q with %d features, want FeatureCollection with %d (route, %d waypoints, track, %d off-route fixes)",
			fc.Type, len(fc.Features), want, len(rt.Waypoints), len(offRoute))
	}
	feats := fc.Features

	// The route line: one vertex per waypoint.
	route, ok := feats[0].Geometry.(orb.LineString)
	if !ok || len(route) != len(rt.Waypoints) {
		t.Fatalf("feature 0 geometry %T with %d vertices, want the route LineString of %d", feats[0].Geometry, len(route), len(rt.Waypoints))
	}
	for i, wp := range rt.Waypoints {
		if route[i] != (orb.Point{wp.Lon, wp.Lat}) {
			t.Errorf("route vertex %d = %v, want [lon, lat] of %s (%v, %v)", i, route[i], wp.ID, wp.Lon, wp.Lat)
		}
	}
	if p := feats[0].Properties; p["kind"] != "route" || p["id"] != rt.ID || p["name"] != rt.Name || p.MustFloat64("corridor_m", -1) != rep.CorridorM {
		t.Errorf("route properties %v", p)
	}

	// The waypoints with their outcomes.
	for i, wp := range rt.Waypoints {
		ft := feats[1+i]
		pt, ok := ft.Geometry.(orb.Point)
		if !ok || pt != (orb.Point{wp.Lon, wp.Lat}) {
			t.Errorf("waypoint %s geometry %v, want Point [%v, %v]", wp.ID, ft.Geometry, wp.Lon, wp.Lat)
		}
		s := rep.Waypoints[i]
		p := ft.Properties
		if p["kind"] != "waypoint" || p["id"] != wp.ID || p["name"] != wp.Name || p["state"] != string(s.State) || p.MustFloat64("closest_m", -2) != s.ClosestM {
			t.Errorf("waypoint %s properties %v, want state %s closest %v", wp.ID, p, s.State, s.ClosestM)
		}
	}
	if p := feats[8].Properties; p["id"] != "wp08" || p["state"] != "missed" {
		t.Errorf("wp08 feature %v, want missed", p)
	}

	// The track: one vertex per fix.
	tf := feats[1+len(rt.Waypoints)]
	track, ok := tf.Geometry.(orb.LineString)
	if !ok || len(track) != len(rep.Positions) || tf.Properties["kind"] != "track" || tf.Properties.MustInt("fixes", -1) != len(rep.Positions) {
		t.Fatalf("track feature %T with %d vertices, properties %v, want LineString of %d fixes", tf.Geometry, len(track), tf.Properties, len(rep.Positions))
	}
	for i, p := range rep.Positions {
		if track[i] != (orb.Point{p.Lon, p.Lat}) {
			t.Errorf("track vertex %d = %v, want [%v, %v]", i, track[i], p.Lon, p.Lat)
		}
	}

	// The off-route fixes with their deviations.
	for i, p := range offRoute {
		ft := feats[2+len(rt.Waypoints)+i]
		pt, ok := ft.Geometry.(orb.Point)
		props := ft.Properties
		ts, err := time.Parse(time.RFC3339Nano, props.MustString("time", ""))
		if !ok || pt != (orb.Point{p.Lon, p.Lat}) || props["kind"] != "off_route" || err != nil || !ts.Equal(p.Time) ||
			props.MustFloat64("deviation_m", 0) != p.DeviationM || props.MustInt("segment", -1) != p.Segment {
			t.Errorf("off-route fix %d: geometry %v, properties %v; want [%v, %v] at %s, deviation %v m on segment %d",
				i, ft.Geometry, props, p.Lon, p.Lat, p.Time.Format(time.RFC3339), p.DeviationM, p.Segment)
		}
		if d := props.MustFloat64("deviation_m", 0); d >= -rep.CorridorM && d <= rep.CorridorM {
			t.Errorf("off-route fix %d: deviation %v m is inside the %v m corridor", i, d, rep.CorridorM)
		}
	}

	// The same input gives the same bytes.
	var again bytes.Buffer
	if err := WriteTrackGeoJSON(&again, rt, rep); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two exports of the same patrol differ")
	}
}

// Without positions (a report made with -positions=false, or no fixes) the
// export has the route and the waypoints only; a waypoint with no status has
// no state.
func TestWriteTrackGeoJSONRouteOnly(t *testing.T) {
	rt := exampleRoute(t)
	var buf bytes.Buffer
	if err := WriteTrackGeoJSON(&buf, rt, TrackReport{CorridorM: rt.CorridorM}); err != nil {
		t.Fatal(err)
	}
	fc, err := geojson.UnmarshalFeatureCollection(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.Features) != 1+len(rt.Waypoints) {
		t.Fatalf("%d features, want the route and %d waypoints", len(fc.Features), len(rt.Waypoints))
	}
	for _, ft := range fc.Features[1:] {
		if _, has := ft.Properties["state"]; has || ft.Properties["kind"] != "waypoint" {
			t.Errorf("waypoint without a report: properties %v, want kind waypoint and no state", ft.Properties)
		}
	}
}

// A failing writer's error comes back wrapped.
func TestWriteTrackGeoJSONWriteError(t *testing.T) {
	rt := exampleRoute(t)
	err := WriteTrackGeoJSON(failWriter{}, rt, TrackReport{})
	if !errors.Is(err, errDiskFull) || !strings.HasPrefix(err.Error(), "track GeoJSON: ") {
		t.Errorf("error %v, want %q wrapped with context", err, errDiskFull)
	}
}

var errDiskFull = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }
