package robot

import (
	"strings"
	"testing"
)

// Evaluation table on the example route (Europe/Berlin; 2 March 2026 is a
// Monday, CET = UTC+1).
func TestEvaluateTable(t *testing.T) {
	rt := exampleRoute(t)
	cases := []struct {
		name      string
		at, check string
		value     string
		ok        bool
		kind      AnomalyKind
		severity  Severity
		expected  string
	}{
		{"hvac in range by day", "2026-03-02T10:00:00+01:00", "b112-hvac", "21", true, "", "", "20..22 °C"},
		{"hvac range bounds inclusive", "2026-03-02T10:00:00+01:00", "b112-hvac", "22", true, "", "", "20..22 °C"},
		{"hvac 0.5 K above: low", "2026-03-02T10:00:00+01:00", "b112-hvac", "22.5", false, AnomalySetpointOutOfRange, SeverityLow, "20..22 °C"},
		{"hvac 2 K below: medium", "2026-03-02T10:00:00+01:00", "b112-hvac", "18", false, AnomalySetpointOutOfRange, SeverityMedium, "20..22 °C"},
		{"hvac at night, day setpoint: high", "2026-03-02T22:05:00+01:00", "b112-hvac", "24", false, AnomalySetpointOutOfRange, SeverityHigh, "16..18 °C"},
		{"hvac slot end exclusive", "2026-03-02T20:00:00+01:00", "b112-hvac", "17", true, "", "", "16..18 °C"},
		{"hvac Saturday morning", "2026-03-07T09:00:00+01:00", "b112-hvac", "21", true, "", "", "20..22 °C"},
		{"hvac Sunday", "2026-03-08T09:00:00+01:00", "b112-hvac", "21", false, AnomalySetpointOutOfRange, SeverityMedium, "16..18 °C"},
		{"bollard down in delivery window", "2026-03-02T07:00:00+01:00", "delivery-bollard", "down", true, "", "", "down"},
		{"bollard down at night", "2026-03-02T22:00:00+01:00", "delivery-bollard", "down", false, AnomalyBollardWrongState, SeverityHigh, "up"},
		{"bollard up in delivery window", "2026-03-02T07:00:00+01:00", "delivery-bollard", "UP", false, AnomalyBollardWrongState, SeverityHigh, "down"},
		{"escape route clear", "2026-03-02T22:00:00+01:00", "c-escape-corridor", "clear", true, "", "", "clear"},
		{"escape route blocked", "2026-03-02T22:00:00+01:00", "c-escape-corridor", "blocked", false, AnomalyEscapeRouteBlocked, SeverityCritical, "clear"},
		{"path lights on at night", "2026-03-02T23:30:00+01:00", "east-path-light", "on", true, "", "", "on"},
		{"path lights on after midnight", "2026-03-03T03:00:00+01:00", "east-path-light", "on", true, "", "", "on"},
		{"path lights off at night: medium", "2026-03-03T03:00:00+01:00", "east-path-light", "off", false, AnomalyLightingWrongState, SeverityMedium, "on"},
		{"path lights on at noon: low", "2026-03-03T12:00:00+01:00", "east-path-light", "on", false, AnomalyLightingWrongState, SeverityLow, "off"},
		{"unreadable", "2026-03-02T22:00:00+01:00", "carpark-light", "unreadable", false, AnomalyCheckFailed, SeverityLow, "on"},
		{"no value", "2026-03-02T22:00:00+01:00", "c-escape-corridor", "", false, AnomalyCheckFailed, SeverityLow, "clear"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Evaluate(rt, Observation{Time: mustTime(t, c.at), Check: c.check, Value: c.value, Picture: "sha256:abc"})
			if err != nil {
				t.Fatal(err)
			}
			if ev.OK != c.ok || ev.Expected != c.expected {
				t.Fatalf("ok %v expected %q, want %v %q", ev.OK, ev.Expected, c.ok, c.expected)
			}
			if c.ok {
				if ev.Anomaly != nil {
					t.Errorf("passing check has an anomaly %+v", ev.Anomaly)
				}
				return
			}
			a := ev.Anomaly
			if a == nil || a.Kind != c.kind || a.Severity != c.severity {
				t.Fatalf("anomaly %+v, want %s %s", a, c.kind, c.severity)
			}
			c0, wi, _ := rt.CheckByID(c.check)
			if a.Asset != c0.Asset || a.Waypoint != rt.Waypoints[wi].ID || a.Check != c.check || a.Picture != "sha256:abc" || a.Expected != c.expected || a.Reason == "" {
				t.Errorf("anomaly fields %+v", a)
			}
		})
	}
}

func TestEvaluateSeverityOverride(t *testing.T) {
	rt, err := ReadRoute(strings.NewReader(`id: r
schedules: {s: {default: {state: on}}}
waypoints:
  - {id: a, lat: 1, lon: 1, checks: [{id: l, kind: lighting, asset: x, schedule: s, severity: critical}]}
  - {id: b, lat: 1, lon: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	at := mustTime(t, "2026-03-02T22:00:00Z")
	ev, _ := Evaluate(rt, Observation{Time: at, Check: "l", Value: "off"})
	if ev.Anomaly == nil || ev.Anomaly.Severity != SeverityCritical {
		t.Errorf("override: %+v, want critical", ev.Anomaly)
	}
	// A check that could not be done keeps its own severity.
	ev, _ = Evaluate(rt, Observation{Time: at, Check: "l", Value: "failed"})
	if ev.Anomaly == nil || ev.Anomaly.Kind != AnomalyCheckFailed || ev.Anomaly.Severity != SeverityLow {
		t.Errorf("check_failed: %+v, want low", ev.Anomaly)
	}
}

func TestEvaluateBadInput(t *testing.T) {
	rt := exampleRoute(t)
	at := mustTime(t, "2026-03-02T22:00:00+01:00")
	cases := []struct {
		o    Observation
		want string
	}{
		{Observation{Time: at, Check: "nope", Value: "on", Line: 7}, "line 7: check \"nope\" is not on route"},
		{Observation{Time: at, Check: "b112-hvac", Waypoint: "wp01", Value: "20"}, "is at waypoint \"wp05\", not \"wp01\""},
		{Observation{Time: at, Check: "b112-hvac", Value: "warm"}, "not a setpoint"},
		{Observation{Time: at, Check: "b112-hvac", Value: "NaN"}, "not a setpoint"},
		{Observation{Time: at, Check: "delivery-bollard", Value: "half"}, "want up or down"},
		{Observation{Time: at, Check: "c-escape-corridor", Value: "maybe"}, "want clear or blocked"},
		{Observation{Time: at, Check: "foyer-light", Value: "dim"}, "want on or off"},
	}
	for _, c := range cases {
		if _, err := Evaluate(rt, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.o, err, c.want)
		}
	}
}
