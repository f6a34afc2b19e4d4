package robot

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CheckKind names what a check at a waypoint inspects.
type CheckKind string

// The check kinds a route can hold (domain.md §4.3, after the tasks the
// Bildungscampus robot performs: air conditioning settings, bollard
// functionality, accessibility of escape routes, lighting status).
const (
	// CheckHVACSetpoint reads an air-conditioning setpoint in °C and
	// expects it within the range its room schedule gives for the time.
	CheckHVACSetpoint CheckKind = "hvac_setpoint"
	// CheckBollard observes a bollard "up" or "down" and expects the state
	// its schedule gives for the time.
	CheckBollard CheckKind = "bollard"
	// CheckEscapeRoute observes an escape route "clear" or "blocked" and
	// always expects it clear.
	CheckEscapeRoute CheckKind = "escape_route"
	// CheckLighting observes lighting "on" or "off" and expects the state
	// its schedule gives for the time of day and weekday.
	CheckLighting CheckKind = "lighting"
)

func parseCheckKind(s string) (CheckKind, error) {
	switch k := CheckKind(s); k {
	case CheckHVACSetpoint, CheckBollard, CheckEscapeRoute, CheckLighting:
		return k, nil
	}
	return "", fmt.Errorf("unknown check kind %q (want hvac_setpoint, bollard, escape_route or lighting)", s)
}

// Route is a patrol route: an ordered list of waypoints the robot visits,
// the checks at each, and the schedules that say what the checks expect.
type Route struct {
	// ID and Name identify the route.
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Location is the time zone of the schedules' wall-clock times; nil
	// means UTC.
	Location *time.Location `json:"-"`
	// CorridorM is the half-width of the corridor around the route in
	// metres; a position farther from every segment is off route.
	CorridorM float64 `json:"corridor_m"`
	// ArrivalM is the default radius in metres within which a waypoint
	// counts as reached.
	ArrivalM float64 `json:"arrival_m"`
	// Waypoints are the route's points in patrol order.
	Waypoints []Waypoint `json:"waypoints"`
	// Schedules are the named schedules checks refer to.
	Schedules map[string]Schedule `json:"-"`

	checks map[string]checkRef
}

type checkRef struct{ wp, check int }

// Defaults used when a route file leaves a value out.
const (
	DefaultCorridorM = 5.0
	DefaultArrivalM  = 3.0
)

// Waypoint is one point of a route.
type Waypoint struct {
	ID   string  `json:"id"`
	Name string  `json:"name,omitempty"`
	Lat  float64 `json:"lat"`
	Lon  float64 `json:"lon"`
	// ToleranceM is the arrival radius for this waypoint; 0 means the
	// route's ArrivalM.
	ToleranceM float64 `json:"tolerance_m,omitempty"`
	// Checks are the checks the robot performs here.
	Checks []Check `json:"checks,omitempty"`
}

// Point returns the waypoint's position.
func (w Waypoint) Point() Point { return Point{Lat: w.Lat, Lon: w.Lon} }

// Check is one inspection at a waypoint.
type Check struct {
	// ID is unique within the route; observations refer to it.
	ID   string    `json:"id"`
	Kind CheckKind `json:"kind"`
	// Asset is what the check inspects (a room's air-conditioning unit, a
	// bollard, an escape route, a lighting circuit); incidents are kept
	// per asset and anomaly kind.
	Asset string `json:"asset"`
	// Schedule names the route schedule giving the expected value; empty
	// for escape_route checks.
	Schedule string `json:"schedule,omitempty"`
	// Severity, when set, overrides the default severity of this check's
	// anomalies.
	Severity Severity `json:"severity,omitempty"`
}

// Schedule gives an expected value by weekday and time of day: the first
// slot that covers a time wins, otherwise Default applies.
type Schedule struct {
	Default Expect `json:"default"`
	Slots   []Slot `json:"slots,omitempty"`
}

// Expect is an expected value: a state ("up", "down", "on", "off") or a
// closed range [Min, Max] in °C.
type Expect struct {
	State    string  `json:"state,omitempty"`
	Min      float64 `json:"min,omitempty"`
	Max      float64 `json:"max,omitempty"`
	HasRange bool    `json:"-"`
}

// String formats the expectation as it appears in anomalies.
func (e Expect) String() string {
	if e.HasRange {
		return fmt.Sprintf("%s..%s °C", fmtNum(e.Min), fmtNum(e.Max))
	}
	return e.State
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Slot is a weekly time window of a schedule. When From is later than To
// the slot runs over midnight: from From to midnight on the listed days and
// from midnight to To on the day after each.
type Slot struct {
	Days   Weekdays  `json:"days"`
	From   TimeOfDay `json:"from"`
	To     TimeOfDay `json:"to"`
	Expect Expect    `json:"expect"`
}

// TimeOfDay is minutes after midnight, 0..1440 (1440 is "24:00").
type TimeOfDay int

// String formats the time of day as HH:MM.
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", int(t)/60, int(t)%60) }

// ParseTimeOfDay parses "HH:MM" (00:00 to 24:00).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 || !allDigits(h) || !allDigits(m) {
		return 0, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("time of day %q: want HH:MM between 00:00 and 24:00", s)
	}
	return TimeOfDay(hh*60 + mm), nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Weekdays is a set of weekdays, bit i for time.Weekday(i).
type Weekdays uint8

// AllDays is every day of the week.
const AllDays Weekdays = 0x7f

// Has reports whether d is in the set.
func (w Weekdays) Has(d time.Weekday) bool { return w&(1<<uint(d)) != 0 }

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// String formats the set as comma-separated day names.
func (w Weekdays) String() string {
	if w == AllDays {
		return "daily"
	}
	var parts []string
	for d := 0; d < 7; d++ {
		if w.Has(time.Weekday(d)) {
			parts = append(parts, dayNames[d])
		}
	}
	return strings.Join(parts, ",")
}

// MarshalText formats the set for JSON.
func (w Weekdays) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// MarshalText formats the time of day for JSON.
func (t TimeOfDay) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// ParseWeekdays parses a day list such as "mon-fri", "sat,sun",
// "mon,wed-fri" or "daily" (also "" or "all"). Ranges may wrap ("fri-mon").
func ParseWeekdays(s string) (Weekdays, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "daily" || s == "all" {
		return AllDays, nil
	}
	day := func(n string) (int, error) {
		n = strings.TrimSpace(n)
		for i, d := range dayNames {
			if n == d {
				return i, nil
			}
		}
		return 0, fmt.Errorf("days %q: unknown day %q (want mon, tue, wed, thu, fri, sat, sun)", s, n)
	}
	var w Weekdays
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err := day(a)
		if err != nil {
			return 0, err
		}
		to := from
		if isRange {
			if to, err = day(b); err != nil {
				return 0, err
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			w |= 1 << uint(d)
			if d == to {
				break
			}
		}
	}
	return w, nil
}

// covers reports whether the slot covers local weekday d at minute m.
func (s Slot) covers(d time.Weekday, m TimeOfDay) bool {
	if s.From <= s.To {
		return s.Days.Has(d) && m >= s.From && m < s.To
	}
	// Over midnight: the evening part belongs to d, the morning part to
	// the day before.
	prev := (d + 6) % 7
	return (s.Days.Has(d) && m >= s.From) || (s.Days.Has(prev) && m < s.To)
}

// At returns what the schedule expects at t in loc (nil means UTC).
func (s Schedule) At(t time.Time, loc *time.Location) Expect {
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	m := TimeOfDay(lt.Hour()*60 + lt.Minute())
	for _, sl := range s.Slots {
		if sl.covers(lt.Weekday(), m) {
			return sl.Expect
		}
	}
	return s.Default
}

// Validate checks the route, fills in the defaults (DefaultCorridorM,
// DefaultArrivalM, check ids "<waypoint>/<kind>") and builds its check
// index. ReadRoute calls it; call it yourself on a Route built in code
// before using it with a Tracker or Evaluate.
func (r *Route) Validate() error {
	_, err := r.validate()
	return err
}

// validate checks the route; on error it also returns the index of the
// waypoint at fault, or −1.
func (r *Route) validate() (int, error) {
	wpErr := func(i int, err error) (int, error) { return i, err }
	noWp := func(err error) (int, error) { return -1, err }
	if strings.TrimSpace(r.ID) == "" {
		return noWp(fmt.Errorf("route: id is empty"))
	}
	if r.CorridorM == 0 {
		r.CorridorM = DefaultCorridorM
	}
	if r.ArrivalM == 0 {
		r.ArrivalM = DefaultArrivalM
	}
	if !(r.CorridorM > 0) || math.IsInf(r.CorridorM, 0) {
		return noWp(fmt.Errorf("route %s: corridor_m %v must be positive", r.ID, r.CorridorM))
	}
	if !(r.ArrivalM > 0) || math.IsInf(r.ArrivalM, 0) {
		return noWp(fmt.Errorf("route %s: arrival_m %v must be positive", r.ID, r.ArrivalM))
	}
	if len(r.Waypoints) < 2 {
		return noWp(fmt.Errorf("route %s: %d waypoints, need at least 2", r.ID, len(r.Waypoints)))
	}
	names := make([]string, 0, len(r.Schedules))
	for name := range r.Schedules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := validateSchedule(r.Schedules[name]); err != nil {
			return noWp(fmt.Errorf("route %s: schedule %q: %w", r.ID, name, err))
		}
	}
	ids := make(map[string]int, len(r.Waypoints))
	r.checks = make(map[string]checkRef)
	for i := range r.Waypoints {
		w := &r.Waypoints[i]
		if strings.TrimSpace(w.ID) == "" {
			return wpErr(i, fmt.Errorf("route %s: waypoint %d: id is empty", r.ID, i+1))
		}
		if j, dup := ids[w.ID]; dup {
			return wpErr(i, fmt.Errorf("route %s: waypoint %d: id %q already used by waypoint %d", r.ID, i+1, w.ID, j+1))
		}
		ids[w.ID] = i
		if !validPoint(w.Lat, w.Lon) {
			return wpErr(i, fmt.Errorf("route %s: waypoint %q: position (%v, %v) out of range (lat −90..90, lon −180..180)", r.ID, w.ID, w.Lat, w.Lon))
		}
		if w.ToleranceM < 0 || math.IsNaN(w.ToleranceM) || math.IsInf(w.ToleranceM, 0) {
			return wpErr(i, fmt.Errorf("route %s: waypoint %q: tolerance_m %v must be positive", r.ID, w.ID, w.ToleranceM))
		}
		for j := range w.Checks {
			c := &w.Checks[j]
			if c.ID == "" {
				c.ID = w.ID + "/" + string(c.Kind)
			}
			if err := r.validateCheck(c); err != nil {
				return wpErr(i, fmt.Errorf("route %s: waypoint %q: check %q: %w", r.ID, w.ID, c.ID, err))
			}
			if prev, dup := r.checks[c.ID]; dup {
				return wpErr(i, fmt.Errorf("route %s: waypoint %q: check id %q already used at waypoint %q", r.ID, w.ID, c.ID, r.Waypoints[prev.wp].ID))
			}
			r.checks[c.ID] = checkRef{wp: i, check: j}
		}
	}
	return -1, nil
}

func (r *Route) validateCheck(c *Check) error {
	if _, err := parseCheckKind(string(c.Kind)); err != nil {
		return err
	}
	if strings.TrimSpace(c.Asset) == "" {
		return fmt.Errorf("asset is empty")
	}
	if c.Severity != "" {
		if _, err := ParseSeverity(string(c.Severity)); err != nil {
			return err
		}
	}
	if c.Kind == CheckEscapeRoute {
		if c.Schedule != "" {
			return fmt.Errorf("escape_route checks always expect clear and take no schedule (got %q)", c.Schedule)
		}
		return nil
	}
	if c.Schedule == "" {
		return fmt.Errorf("%s checks need a schedule", c.Kind)
	}
	s, ok := r.Schedules[c.Schedule]
	if !ok {
		return fmt.Errorf("schedule %q is not defined", c.Schedule)
	}
	check := func(e Expect, where string) error {
		switch c.Kind {
		case CheckHVACSetpoint:
			if !e.HasRange {
				return fmt.Errorf("schedule %q %s: hvac_setpoint needs min and max", c.Schedule, where)
			}
		case CheckBollard:
			if e.HasRange || (e.State != "up" && e.State != "down") {
				return fmt.Errorf("schedule %q %s: bollard needs state up or down", c.Schedule, where)
			}
		case CheckLighting:
			if e.HasRange || (e.State != "on" && e.State != "off") {
				return fmt.Errorf("schedule %q %s: lighting needs state on or off", c.Schedule, where)
			}
		}
		return nil
	}
	if err := check(s.Default, "default"); err != nil {
		return err
	}
	for i, sl := range s.Slots {
		if err := check(sl.Expect, fmt.Sprintf("slot %d", i+1)); err != nil {
			return err
		}
	}
	return nil
}

func validateSchedule(s Schedule) error {
	check := func(e Expect) error {
		if e.HasRange {
			if e.State != "" {
				return fmt.Errorf("give either state or min/max, not both")
			}
			if math.IsNaN(e.Min) || math.IsNaN(e.Max) || math.IsInf(e.Min, 0) || math.IsInf(e.Max, 0) || e.Min > e.Max {
				return fmt.Errorf("range %v..%v: want finite min ≤ max", e.Min, e.Max)
			}
			return nil
		}
		switch e.State {
		case "up", "down", "on", "off":
			return nil
		case "":
			return fmt.Errorf("no state and no min/max")
		}
		return fmt.Errorf("state %q: want up, down, on or off", e.State)
	}
	if err := check(s.Default); err != nil {
		return fmt.Errorf("default: %w", err)
	}
	for i, sl := range s.Slots {
		if err := check(sl.Expect); err != nil {
			return fmt.Errorf("slot %d: %w", i+1, err)
		}
		if sl.Days == 0 {
			return fmt.Errorf("slot %d: no days", i+1)
		}
		if sl.From < 0 || sl.From > 1440 || sl.To < 0 || sl.To > 1440 || sl.From == sl.To {
			return fmt.Errorf("slot %d: from %v to %v: want two different times between 00:00 and 24:00", i+1, sl.From, sl.To)
		}
	}
	return nil
}

// CheckByID returns the check with the given id and the index of its
// waypoint.
func (r *Route) CheckByID(id string) (Check, int, bool) {
	if r.checks != nil {
		ref, ok := r.checks[id]
		if !ok {
			return Check{}, 0, false
		}
		return r.Waypoints[ref.wp].Checks[ref.check], ref.wp, true
	}
	for i, w := range r.Waypoints {
		for _, c := range w.Checks {
			if c.ID == id {
				return c, i, true
			}
		}
	}
	return Check{}, 0, false
}

// LengthM returns the route's length in metres, the sum of the haversine
// distances between consecutive waypoints.
func (r *Route) LengthM() float64 {
	var sum float64
	for i := 1; i < len(r.Waypoints); i++ {
		sum += HaversineM(r.Waypoints[i-1].Point(), r.Waypoints[i].Point())
	}
	return sum
}
