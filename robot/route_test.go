package robot

import (
	"strings"
	"testing"
	"time"
)

const minimalRoute = `id: r1
timezone: Europe/Berlin
schedules:
  lights: {default: {state: off}, slots: [{days: daily, from: "17:00", to: "07:00", state: on}]}
waypoints:
  - {id: a, lat: 49.148, lon: 9.216, checks: [{kind: lighting, asset: l1, schedule: lights}]}
  - {id: b, lat: 49.149, lon: 9.216}
`

func TestReadRouteExample(t *testing.T) {
	rt := exampleRoute(t)
	if rt.ID != "bildungscampus-night" || len(rt.Waypoints) != 10 || rt.CorridorM != 5 || rt.ArrivalM != 3 {
		t.Errorf("route %s: %d waypoints corridor %v arrival %v", rt.ID, len(rt.Waypoints), rt.CorridorM, rt.ArrivalM)
	}
	if rt.Location == nil || rt.Location.String() != "Europe/Berlin" {
		t.Errorf("location %v, want Europe/Berlin", rt.Location)
	}
	c, wi, ok := rt.CheckByID("b112-hvac")
	if !ok || c.Kind != CheckHVACSetpoint || rt.Waypoints[wi].ID != "wp05" || c.Asset != "room-b1.12-hvac" {
		t.Errorf("check b112-hvac: %+v at %d, %v", c, wi, ok)
	}
	if rt.Waypoints[4].ToleranceM != 4 {
		t.Errorf("wp05 tolerance %v, want 4", rt.Waypoints[4].ToleranceM)
	}
}

func TestReadRouteDefaultsAndCheckIDs(t *testing.T) {
	rt, err := ReadRoute(strings.NewReader(minimalRoute))
	if err != nil {
		t.Fatal(err)
	}
	if rt.CorridorM != DefaultCorridorM || rt.ArrivalM != DefaultArrivalM {
		t.Errorf("defaults: corridor %v arrival %v", rt.CorridorM, rt.ArrivalM)
	}
	if _, _, ok := rt.CheckByID("a/lighting"); !ok {
		t.Error("a check without an id gets waypoint/kind, a/lighting not found")
	}
}

func TestReadRouteBadInput(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"empty", "", "empty"},
		{"not yaml", "id: [", "route file"},
		{"unknown key", "id: r\ncorridor: 3\nwaypoints: []\n", "field corridor not found"},
		{"no id", "waypoints:\n  - {id: a, lat: 1, lon: 1}\n  - {id: b, lat: 1, lon: 2}\n", "id is empty"},
		{"one waypoint", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1}\n", "need at least 2"},
		{"missing lat", "id: r\nwaypoints:\n  - {id: a, lon: 1}\n  - {id: b, lat: 1, lon: 2}\n", "waypoint 1 \"a\" (line 3): lat and lon are required"},
		{"lat out of range", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1}\n  - {id: b, lat: 95, lon: 2}\n", "(line 4)"},
		{"duplicate waypoint", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1}\n  - {id: a, lat: 1, lon: 2}\n", "already used by waypoint 1"},
		{"negative corridor", "id: r\ncorridor_m: -1\nwaypoints:\n  - {id: a, lat: 1, lon: 1}\n  - {id: b, lat: 1, lon: 2}\n", "corridor_m -1 must be positive"},
		{"bad timezone", "id: r\ntimezone: Mars/Olympus\nwaypoints: []\n", "timezone \"Mars/Olympus\""},
		{"unknown kind", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1, checks: [{kind: smoke, asset: x}]}\n  - {id: b, lat: 1, lon: 2}\n", "unknown check kind \"smoke\""},
		{"no asset", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1, checks: [{kind: escape_route}]}\n  - {id: b, lat: 1, lon: 2}\n", "asset is empty"},
		{"undefined schedule", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1, checks: [{kind: bollard, asset: x, schedule: nope}]}\n  - {id: b, lat: 1, lon: 2}\n", "schedule \"nope\" is not defined"},
		{"escape with schedule", "id: r\nschedules: {s: {default: {state: up}}}\nwaypoints:\n  - {id: a, lat: 1, lon: 1, checks: [{kind: escape_route, asset: x, schedule: s}]}\n  - {id: b, lat: 1, lon: 2}\n", "take no schedule"},
		{"hvac needs range", "id: r\nschedules: {s: {default: {state: up}}}\nwaypoints:\n  - {id: a, lat: 1, lon: 1, checks: [{kind: hvac_setpoint, asset: x, schedule: s}]}\n  - {id: b, lat: 1, lon: 2}\n", "needs min and max"},
		{"bollard needs up/down", "id: r\nschedules: {s: {default: {state: on}}}\nwaypoints:\n  - {id: a, lat: 1, lon: 1, checks: [{kind: bollard, asset: x, schedule: s}]}\n  - {id: b, lat: 1, lon: 2}\n", "bollard needs state up or down"},
		{"min above max", "id: r\nschedules: {s: {default: {min: 22, max: 20}}}\nwaypoints: []\n", "want finite min ≤ max"},
		{"min without max", "id: r\nschedules: {s: {default: {min: 22}}}\nwaypoints: []\n", "give both min and max"},
		{"bad state", "id: r\nschedules: {s: {default: {state: half}}}\nwaypoints: []\n", "state \"half\""},
		{"bad day", "id: r\nschedules: {s: {default: {state: on}, slots: [{days: mon-fry, from: \"07:00\", to: \"08:00\", state: off}]}}\nwaypoints: []\n", "unknown day \"fry\""},
		{"bad time", "id: r\nschedules: {s: {default: {state: on}, slots: [{days: mon, from: \"7\", to: \"08:00\", state: off}]}}\nwaypoints: []\n", "want HH:MM"},
		{"empty slot", "id: r\nschedules: {s: {default: {state: on}, slots: [{days: mon, from: \"08:00\", to: \"08:00\", state: off}]}}\nwaypoints: []\n", "two different times"},
		{"duplicate check id", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1, checks: [{id: c, kind: escape_route, asset: x}]}\n  - {id: b, lat: 1, lon: 2, checks: [{id: c, kind: escape_route, asset: y}]}\n", "check id \"c\" already used at waypoint \"a\""},
		{"bad severity", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1, checks: [{kind: escape_route, asset: x, severity: urgent}]}\n  - {id: b, lat: 1, lon: 2}\n", "severity \"urgent\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadRoute(strings.NewReader(c.yaml))
			if err == nil {
				t.Fatalf("accepted, want error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseWeekdays(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"", "daily"}, {"daily", "daily"}, {"mon-fri", "mon,tue,wed,thu,fri"}, {"sat,sun", "sun,sat"},
		{"fri-mon", "sun,mon,fri,sat"}, {"mon,wed-fri", "mon,wed,thu,fri"}, {"MON", "mon"},
	}
	for _, c := range cases {
		w, err := ParseWeekdays(c.in)
		if err != nil || w.String() != c.want {
			t.Errorf("ParseWeekdays(%q) = %s, %v; want %s", c.in, w, err, c.want)
		}
	}
	for _, bad := range []string{"mo", "mon-", "monday", "mon,,tue"} {
		if _, err := ParseWeekdays(bad); err == nil {
			t.Errorf("ParseWeekdays(%q) accepted", bad)
		}
	}
}

func TestParseTimeOfDay(t *testing.T) {
	good := map[string]TimeOfDay{"00:00": 0, "07:30": 450, "7:05": 425, "24:00": 1440, "23:59": 1439}
	for in, want := range good {
		if got, err := ParseTimeOfDay(in); err != nil || got != want {
			t.Errorf("ParseTimeOfDay(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "7", "07:60", "24:01", "25:00", "-1:00", "07:5", "ab:cd", "+7:00", "07:+5"} {
		if _, err := ParseTimeOfDay(bad); err == nil {
			t.Errorf("ParseTimeOfDay(%q) accepted", bad)
		}
	}
}

func TestScheduleAt(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	s := Schedule{Default: Expect{State: "off"}, Slots: []Slot{
		{Days: 1 << time.Friday, From: 22 * 60, To: 2 * 60, Expect: Expect{State: "on"}}, // Friday night over midnight
		{Days: AllDays &^ (1<<time.Saturday | 1<<time.Sunday), From: 7 * 60, To: 19 * 60, Expect: Expect{State: "on"}},
	}}
	cases := []struct {
		at, want string
	}{
		{"2026-03-06T21:59:00+01:00", "off"}, // Friday, before the night slot
		{"2026-03-06T22:00:00+01:00", "on"},  // from is inclusive
		{"2026-03-07T01:59:00+01:00", "on"},  // Saturday morning, the Friday slot runs on
		{"2026-03-07T02:00:00+01:00", "off"}, // to is exclusive
		{"2026-03-08T01:00:00+01:00", "off"}, // Sunday morning: Saturday has no night slot
		{"2026-03-09T07:00:00+01:00", "on"},  // Monday working hours
		{"2026-03-09T18:30:00Z", "off"},      // 19:30 in Berlin: the schedule is local time
		{"2026-03-30T06:30:00Z", "on"},       // 08:30 CEST after the clocks went forward
	}
	for _, c := range cases {
		if got := s.At(mustTime(t, c.at), berlin).State; got != c.want {
			t.Errorf("At(%s) = %s, want %s", c.at, got, c.want)
		}
	}
}
