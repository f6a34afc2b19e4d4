package robot

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Severity grades an anomaly or incident.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: low 1, medium 2, high 3, critical 4, anything
// else 0.
func (s Severity) Rank() int {
	switch s {
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return 0
}

// ParseSeverity parses low, medium, high or critical.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToLower(strings.TrimSpace(s)))
	if v.Rank() == 0 {
		return "", fmt.Errorf("severity %q: want low, medium, high or critical", s)
	}
	return v, nil
}

// AnomalyKind says what went wrong; incidents are kept per asset and kind.
type AnomalyKind string

// Anomaly kinds.
const (
	AnomalySetpointOutOfRange AnomalyKind = "setpoint_out_of_range"
	AnomalyBollardWrongState  AnomalyKind = "bollard_wrong_state"
	AnomalyEscapeRouteBlocked AnomalyKind = "escape_route_blocked"
	AnomalyLightingWrongState AnomalyKind = "lighting_wrong_state"
	// AnomalyCheckFailed: the robot could not perform the check (no
	// reading, value "unreadable" or "failed").
	AnomalyCheckFailed AnomalyKind = "check_failed"
	// AnomalyOffCorridor: the robot's position was farther from its route
	// than the corridor's half-width (found from positions, not checks;
	// the asset is the robot).
	AnomalyOffCorridor AnomalyKind = "off_corridor"
)

// Observation is what the robot recorded for one check at one time.
type Observation struct {
	Time time.Time `json:"time"`
	// Check is the route check's id.
	Check string `json:"check"`
	// Waypoint, when set, must be the check's waypoint.
	Waypoint string `json:"waypoint,omitempty"`
	// Value is the reading: a number in °C for hvac_setpoint, up/down for
	// bollard, clear/blocked for escape_route, on/off for lighting, and
	// "" / "unreadable" / "failed" when the check could not be done.
	Value string `json:"value"`
	// Picture references an image stored elsewhere (a URI or a content
	// hash); images never travel in these values.
	Picture string `json:"picture,omitempty"`
	Note    string `json:"note,omitempty"`
	// Line is the input line the observation came from, 0 if none.
	Line int `json:"-"`
}

// Anomaly is a check result that differs from what was expected.
type Anomaly struct {
	Time     time.Time   `json:"time"`
	Kind     AnomalyKind `json:"kind"`
	Severity Severity    `json:"severity"`
	Asset    string      `json:"asset"`
	Waypoint string      `json:"waypoint"`
	Check    string      `json:"check"`
	Observed string      `json:"observed"`
	Expected string      `json:"expected"`
	Reason   string      `json:"reason"`
	Picture  string      `json:"picture,omitempty"`
}

// Evaluation is the result of one observation: OK, or an anomaly.
type Evaluation struct {
	Time     time.Time `json:"time"`
	Check    string    `json:"check"`
	Kind     CheckKind `json:"kind"`
	Asset    string    `json:"asset"`
	Waypoint string    `json:"waypoint"`
	Observed string    `json:"observed"`
	Expected string    `json:"expected"`
	OK       bool      `json:"ok"`
	Anomaly  *Anomaly  `json:"anomaly,omitempty"`
}

// Severity rules for HVAC setpoints: how far outside the expected range,
// in kelvin, a reading may be for each grade. These are citymesh's
// defaults, not from a published source.
const (
	HVACLowMaxK    = 1.0 // up to 1 K outside: low
	HVACMediumMaxK = 3.0 // up to 3 K outside: medium; beyond: high
)

// Evaluate compares one observation with what the route expects at the
// observation's time. An observation of an unknown check, a waypoint that
// does not match, or a value that cannot be read for the check's kind is
// an error; a check that could not be done is an anomaly of kind
// check_failed.
func Evaluate(r *Route, o Observation) (Evaluation, error) {
	at := ""
	if o.Line > 0 {
		at = fmt.Sprintf("line %d: ", o.Line)
	}
	c, wi, ok := r.CheckByID(o.Check)
	if !ok {
		return Evaluation{}, fmt.Errorf("%scheck %q is not on route %s", at, o.Check, r.ID)
	}
	wp := r.Waypoints[wi].ID
	if o.Waypoint != "" && o.Waypoint != wp {
		return Evaluation{}, fmt.Errorf("%scheck %q is at waypoint %q, not %q", at, o.Check, wp, o.Waypoint)
	}
	ev := Evaluation{Time: o.Time, Check: c.ID, Kind: c.Kind, Asset: c.Asset, Waypoint: wp, Observed: strings.TrimSpace(o.Value), OK: true}
	var exp Expect
	if c.Kind == CheckEscapeRoute {
		exp = Expect{State: "clear"}
	} else {
		s, ok := r.Schedules[c.Schedule]
		if !ok {
			return Evaluation{}, fmt.Errorf("%scheck %q: schedule %q is not defined", at, c.ID, c.Schedule)
		}
		exp = s.At(o.Time, r.Location)
	}
	ev.Expected = exp.String()
	anomaly := func(kind AnomalyKind, sev Severity, reason string) {
		if c.Severity != "" && kind != AnomalyCheckFailed {
			sev = c.Severity
		}
		ev.OK = false
		ev.Anomaly = &Anomaly{Time: o.Time, Kind: kind, Severity: sev, Asset: c.Asset, Waypoint: wp, Check: c.ID,
			Observed: ev.Observed, Expected: ev.Expected, Reason: reason, Picture: o.Picture}
	}
	v := strings.ToLower(ev.Observed)
	if v == "" || v == "unreadable" || v == "failed" {
		reason := "the robot could not perform the check"
		if v != "" {
			reason += " (" + v + ")"
		}
		anomaly(AnomalyCheckFailed, SeverityLow, reason)
		return ev, nil
	}
	switch c.Kind {
	case CheckHVACSetpoint:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return Evaluation{}, fmt.Errorf("%scheck %q: value %q is not a setpoint in °C", at, c.ID, o.Value)
		}
		var off float64
		switch {
		case x < exp.Min:
			off = exp.Min - x
		case x > exp.Max:
			off = x - exp.Max
		default:
			return ev, nil
		}
		sev := SeverityHigh
		if off <= HVACLowMaxK {
			sev = SeverityLow
		} else if off <= HVACMediumMaxK {
			sev = SeverityMedium
		}
		dir := "below"
		if x > exp.Max {
			dir = "above"
		}
		anomaly(AnomalySetpointOutOfRange, sev, fmt.Sprintf("setpoint %s °C is %s K %s the scheduled range %s", fmtNum(x), fmtNum(math.Round(off*100)/100), dir, exp))
	case CheckBollard:
		if v != "up" && v != "down" {
			return Evaluation{}, fmt.Errorf("%scheck %q: bollard value %q: want up or down", at, c.ID, o.Value)
		}
		if v != exp.State {
			anomaly(AnomalyBollardWrongState, SeverityHigh, fmt.Sprintf("bollard is %s, the schedule says %s", v, exp.State))
		}
	case CheckEscapeRoute:
		if v != "clear" && v != "blocked" {
			return Evaluation{}, fmt.Errorf("%scheck %q: escape route value %q: want clear or blocked", at, c.ID, o.Value)
		}
		if v == "blocked" {
			reason := "escape route is blocked"
			if o.Note != "" {
				reason += ": " + o.Note
			}
			anomaly(AnomalyEscapeRouteBlocked, SeverityCritical, reason)
		}
	case CheckLighting:
		if v != "on" && v != "off" {
			return Evaluation{}, fmt.Errorf("%scheck %q: lighting value %q: want on or off", at, c.ID, o.Value)
		}
		if v != exp.State {
			sev, why := SeverityLow, "lighting is on outside its scheduled hours (energy)"
			if v == "off" {
				sev, why = SeverityMedium, "lighting is off when it is scheduled on (safety)"
			}
			anomaly(AnomalyLightingWrongState, sev, why)
		}
	}
	return ev, nil
}

// EvaluateAll evaluates every observation in order.
func EvaluateAll(r *Route, obs []Observation) ([]Evaluation, error) {
	out := make([]Evaluation, 0, len(obs))
	for _, o := range obs {
		ev, err := Evaluate(r, o)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}
