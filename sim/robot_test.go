package sim

import (
	"bytes"
	"image/png"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/robot"
)

func exampleRoute(t testing.TB) *robot.Route {
	t.Helper()
	f, err := os.Open("../examples/models/robot/route.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := robot.ReadRoute(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// patrolStart is a Monday evening: lighting scheduled on, bollards up.
var patrolStart = time.Date(2026, 3, 2, 22, 0, 0, 0, Berlin)

func mustRobot(t testing.TB, cfg RobotConfig) *Robot {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "loomi"
	}
	if cfg.Start.IsZero() {
		cfg.Start = patrolStart
	}
	r, err := NewRobot(11, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fixes returns the robot's fixes at 1 Hz over patrol k.
func fixes(r *Robot, k int) []robot.Fix {
	start, _ := r.PatrolStart(k)
	p := r.patrol(k)
	var out []robot.Fix
	for at := start; at.Before(start.Add(time.Duration(p.dur))); at = at.Add(time.Second) {
		out = append(out, r.Fix(at))
	}
	return out
}

func TestRobotPatrolFollowsRoute(t *testing.T) {
	route := exampleRoute(t)
	r := mustRobot(t, RobotConfig{Route: route})
	rep, err := robot.Track(route, fixes(r, 0), robot.TrackerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.OffRoute) != 0 || rep.Missed != 0 || rep.Pending != 0 {
		t.Fatalf("off route %+v, %d waypoints missed, %d not reached", rep.OffRoute, rep.Missed, rep.Pending)
	}
	t.Logf("patrol: %d fixes over %.0f m, max deviation %.1f m, mean %.1f m", rep.Fixes, rep.LengthM, rep.MaxDeviationM, rep.MeanDeviationM)
	// A day of patrols: GPS error never takes a fix out of the corridor.
	for k := 1; k < 12; k++ {
		rep, err := robot.Track(route, fixes(r, k), robot.TrackerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.OffRoute) != 0 || rep.Missed != 0 || rep.MaxDeviationM > 4 {
			t.Fatalf("patrol %d: off route %+v, %d missed, max deviation %.1f m", k, rep.OffRoute, rep.Missed, rep.MaxDeviationM)
		}
	}
	// Walking speed and the pauses at checkpoints.
	start, _ := r.PatrolStart(0)
	checking := 0
	for at := start; at.Before(start.Add(time.Duration(r.patrol(0).dur))); at = at.Add(time.Second) {
		s := r.Status(at)
		switch s.State {
		case RobotPatrolling, RobotReturning:
			if s.SpeedMS < 1.0 || s.SpeedMS > 1.4 {
				t.Fatalf("%v: speed %v m/s", at, s.SpeedMS)
			}
		case RobotChecking:
			checking++
		default:
			t.Fatalf("%v: %s during a patrol", at, s.State)
		}
	}
	nChecks := 0
	for _, w := range route.Waypoints {
		nChecks += len(w.Checks)
	}
	if want := nChecks * int(DefaultCheckS); checking != want {
		t.Errorf("%d s checking, want %d (%d checks × %v s)", checking, want, nChecks, DefaultCheckS)
	}
	// Before the first patrol and after it: docked at the first waypoint.
	for _, at := range []time.Time{start.Add(-time.Minute), start.Add(time.Hour)} {
		s := r.Status(at)
		if s.State != RobotDocked && s.State != RobotCharging || robot.HaversineM(robot.Point{Lat: s.Lat, Lon: s.Lon}, route.Waypoints[0].Point()) > 4 {
			t.Errorf("%v: %s at (%v, %v), want at the dock", at, s.State, s.Lat, s.Lon)
		}
	}
}

func TestRobotBattery(t *testing.T) {
	route := exampleRoute(t)
	r := mustRobot(t, RobotConfig{Route: route})
	start, _ := r.PatrolStart(1)
	dur := time.Duration(r.patrol(1).dur)
	full := r.Status(start).BatteryPct
	low := r.Status(start.Add(dur - time.Second)).BatteryPct
	later := r.Status(start.Add(dur + 30*time.Minute)).BatteryPct
	t.Logf("patrol of %v: battery %.1f → %.1f %%, 30 min later %.1f %%", dur.Round(time.Second), full, low, later)
	if !(full == 100 && low < full-3 && later == 100) {
		t.Errorf("battery %.1f at the start, %.1f at the end, %.1f half an hour later", full, low, later)
	}
	// A thirsty robot skips patrols until it has charged enough.
	thirsty := mustRobot(t, RobotConfig{Route: route, WalkDrainPctMin: 6, ChargePctMin: 0.3, MinStartPct: 50})
	ran, skipped := 0, 0
	for k := range 12 {
		if _, ok := thirsty.PatrolStart(k); ok {
			ran++
		} else {
			skipped++
		}
	}
	if ran == 0 || skipped == 0 {
		t.Errorf("thirsty robot ran %d and skipped %d of 12 patrols", ran, skipped)
	}
	for at := patrolStart; at.Before(patrolStart.Add(24 * time.Hour)); at = at.Add(17 * time.Second) {
		if b := thirsty.Status(at).BatteryPct; b < 0 || b > 100 {
			t.Fatalf("%v: battery %v", at, b)
		}
	}
}

func TestRobotChecksPass(t *testing.T) {
	route := exampleRoute(t)
	r := mustRobot(t, RobotConfig{Route: route})
	res, err := r.Checks(patrolStart, patrolStart.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var obs []robot.Observation
	for _, c := range res {
		obs = append(obs, c.Observation)
		if c.Picture != nil {
			t.Errorf("%s: a picture without an anomaly", c.Observation.Check)
		}
	}
	rep, err := robot.RunIncidents(route, obs, nil, robot.BookConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checks != 12*9 || len(rep.Anomalies) != 0 {
		t.Fatalf("%d checks, anomalies %+v; want 108 checks in 12 patrols, none failing", rep.Checks, rep.Anomalies)
	}
	// Split windows give the same checks as one window.
	var split []CheckResult
	end := patrolStart.Add(24 * time.Hour)
	for at := patrolStart; at.Before(end); at = at.Add(7 * time.Minute) {
		to := at.Add(7 * time.Minute)
		if to.After(end) {
			to = end
		}
		part, _ := r.Checks(at, to)
		split = append(split, part...)
	}
	if !reflect.DeepEqual(split, res) {
		t.Error("checks in 7-minute windows differ from one window")
	}
}

func TestFaultRobotOffCorridor(t *testing.T) {
	route := exampleRoute(t)
	start := patrolStart.Add(2 * time.Hour) // patrol 1
	from := start.Add(4 * time.Minute)
	fs := mustFaults(t, Fault{Kind: FaultRobotOffCorridor, Asset: "loomi", Start: from, Duration: 60 * time.Second, OffsetM: 15})
	r := mustRobot(t, RobotConfig{Route: route, Faults: fs})
	rep, err := robot.Track(route, fixes(r, 1), robot.TrackerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.OffRoute) != 1 {
		t.Fatalf("excursions %+v, want one", rep.OffRoute)
	}
	ex := rep.OffRoute[0]
	if ex.Start.Before(from) || ex.End.After(from.Add(60*time.Second)) || ex.MaxDeviationM < 12 || ex.MaxDeviationM > 18 {
		t.Errorf("excursion %+v, want within %v + 60 s, about 15 m off", ex, from.Format(time.TimeOnly))
	}
	// Patrol 0 is untouched.
	rep0, _ := robot.Track(route, fixes(r, 0), robot.TrackerConfig{})
	if len(rep0.OffRoute) != 0 {
		t.Errorf("patrol 0 off route: %+v", rep0.OffRoute)
	}
}

func TestFaultCheckFails(t *testing.T) {
	route := exampleRoute(t)
	// Patrol 1 (midnight): the east stair is blocked, the lecture hall's
	// setpoint is wrong, the library's thermostat cannot be read.
	from, to := patrolStart.Add(2*time.Hour), patrolStart.Add(2*time.Hour+time.Hour)
	fs := mustFaults(t,
		Fault{Kind: FaultCheckFails, Asset: "building-b-escape-east", Start: from, Duration: time.Hour},
		Fault{Kind: FaultCheckFails, Asset: "b112-hvac", Start: from, Duration: time.Hour},
		Fault{Kind: FaultCheckFails, Asset: "library-hvac", Start: from, Duration: time.Hour, Mode: "unreadable"})
	r := mustRobot(t, RobotConfig{Route: route, Faults: fs})
	res, err := r.Checks(patrolStart, patrolStart.Add(6*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var obs []robot.Observation
	pics := map[string][]byte{}
	for _, c := range res {
		obs = append(obs, c.Observation)
		if c.Picture != nil {
			pics[c.Observation.Check] = c.Picture
			if c.Observation.Picture != PictureRef(c.Picture) {
				t.Errorf("%s: picture reference %q does not name its picture", c.Observation.Check, c.Observation.Picture)
			}
			img, err := png.Decode(bytes.NewReader(c.Picture))
			if err != nil {
				t.Fatalf("%s: picture is not a PNG: %v", c.Observation.Check, err)
			}
			if b := img.Bounds(); b.Dx() != PictureWidth || b.Dy() != PictureHeight {
				t.Errorf("%s: picture %v", c.Observation.Check, b)
			}
		}
	}
	rep, err := robot.RunIncidents(route, obs, nil, robot.BookConfig{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[robot.AnomalyKind]robot.Anomaly{}
	for _, a := range rep.Anomalies {
		if a.Time.Before(from) || !a.Time.Before(to) {
			t.Errorf("anomaly %+v outside the fault window", a)
		}
		kinds[a.Kind] = a
	}
	if len(rep.Anomalies) != 3 || len(rep.Incidents) != 3 {
		t.Fatalf("anomalies %+v, incidents %d; want 3 and 3", rep.Anomalies, len(rep.Incidents))
	}
	if a := kinds[robot.AnomalyEscapeRouteBlocked]; a.Severity != robot.SeverityCritical || a.Picture == "" {
		t.Errorf("escape route anomaly %+v", a)
	}
	if a := kinds[robot.AnomalySetpointOutOfRange]; a.Severity != robot.SeverityHigh {
		t.Errorf("setpoint anomaly %+v, want high severity (3.5 K off)", a)
	}
	if a := kinds[robot.AnomalyCheckFailed]; a.Check != "library-hvac" {
		t.Errorf("check-failed anomaly %+v", a)
	}
	if len(pics) != 3 {
		t.Errorf("%d pictures, want 3", len(pics))
	}
	// The same anomaly draws the same picture, a different one another.
	again, _ := CheckPicture(robot.CheckEscapeRoute, "building-b-escape-east", "blocked", "clear", kinds[robot.AnomalyEscapeRouteBlocked].Time)
	if !bytes.Equal(again, pics["b-east-stair"]) {
		t.Error("the escape-route picture is not deterministic")
	}
	other, _ := CheckPicture(robot.CheckEscapeRoute, "building-b-escape-east", "blocked", "clear", kinds[robot.AnomalyEscapeRouteBlocked].Time.Add(time.Second))
	if bytes.Equal(other, again) {
		t.Error("a picture at another time is identical: the time is not drawn in")
	}
}

func TestRobotDeterministic(t *testing.T) {
	route := exampleRoute(t)
	a := mustRobot(t, RobotConfig{Route: route})
	b := mustRobot(t, RobotConfig{Route: route})
	var times []time.Time
	for i := range 400 {
		times = append(times, patrolStart.Add(time.Duration(i)*97*time.Second))
	}
	got := make([]RobotStatus, len(times))
	for i := len(times) - 1; i >= 0; i-- {
		got[i] = b.Status(times[i])
	}
	for i, at := range times {
		if s := a.Status(at); !reflect.DeepEqual(s, got[i]) {
			t.Fatalf("%v: %+v and %+v", at, s, got[i])
		}
	}
}

func TestNewRobotRejects(t *testing.T) {
	route := exampleRoute(t)
	for _, tc := range []struct {
		name string
		cfg  RobotConfig
		want string
	}{
		{"id", RobotConfig{Route: route, Start: patrolStart}, "id is empty"},
		{"route", RobotConfig{ID: "x", Start: patrolStart}, "route is required"},
		{"start", RobotConfig{ID: "x", Route: route}, "start"},
		{"speed", RobotConfig{ID: "x", Route: route, Start: patrolStart, SpeedMS: -1}, "speed"},
		{"interval", RobotConfig{ID: "x", Route: route, Start: patrolStart, Every: 5 * time.Minute}, "longer than the interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRobot(1, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
