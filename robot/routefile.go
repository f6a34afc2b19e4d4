package robot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxRouteFileBytes bounds the size of a route file ReadRoute accepts.
const MaxRouteFileBytes = 8 << 20

// The route file's YAML shape. Unknown keys are refused so that a typo
// ("toleranze_m") is an error, not a silently ignored setting.
type routeFile struct {
	ID        string                  `yaml:"id"`
	Name      string                  `yaml:"name"`
	Timezone  string                  `yaml:"timezone"`
	CorridorM float64                 `yaml:"corridor_m"`
	ArrivalM  float64                 `yaml:"arrival_m"`
	Schedules map[string]scheduleFile `yaml:"schedules"`
	Waypoints []waypointFile          `yaml:"waypoints"`
}

type scheduleFile struct {
	Default expectFile `yaml:"default"`
	Slots   []slotFile `yaml:"slots"`
}

type expectFile struct {
	State string   `yaml:"state"`
	Min   *float64 `yaml:"min"`
	Max   *float64 `yaml:"max"`
}

type slotFile struct {
	Days  string   `yaml:"days"`
	From  string   `yaml:"from"`
	To    string   `yaml:"to"`
	State string   `yaml:"state"`
	Min   *float64 `yaml:"min"`
	Max   *float64 `yaml:"max"`
}

type waypointFile struct {
	ID         string      `yaml:"id"`
	Name       string      `yaml:"name"`
	Lat        *float64    `yaml:"lat"`
	Lon        *float64    `yaml:"lon"`
	ToleranceM float64     `yaml:"tolerance_m"`
	Checks     []checkFile `yaml:"checks"`
}

type checkFile struct {
	ID       string `yaml:"id"`
	Kind     string `yaml:"kind"`
	Asset    string `yaml:"asset"`
	Schedule string `yaml:"schedule"`
	Severity string `yaml:"severity"`
}

func (e expectFile) expect() (Expect, error) {
	return makeExpect(e.State, e.Min, e.Max)
}

func makeExpect(state string, min, max *float64) (Expect, error) {
	state = strings.ToLower(strings.TrimSpace(state))
	if (min == nil) != (max == nil) {
		return Expect{}, fmt.Errorf("give both min and max")
	}
	if min != nil {
		if state != "" {
			return Expect{}, fmt.Errorf("give either state or min/max, not both")
		}
		return Expect{Min: *min, Max: *max, HasRange: true}, nil
	}
	return Expect{State: state}, nil
}

// ReadRoute reads a route file (YAML, described in docs/models/robot.md),
// validates it and returns the route. Errors name the waypoint, check or
// schedule and, where known, the line.
func ReadRoute(r io.Reader) (rt *Route, err error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRouteFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("route file: %w", err)
	}
	if len(data) > MaxRouteFileBytes {
		return nil, fmt.Errorf("route file: larger than %d bytes", MaxRouteFileBytes)
	}
	// The YAML decoder is third-party code; a panic in it must not take
	// the caller down.
	defer func() {
		if p := recover(); p != nil {
			rt, err = nil, fmt.Errorf("route file: YAML decoder failed: %v", p)
		}
	}()
	var f routeFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("route file: empty")
		}
		return nil, fmt.Errorf("route file: %w", err)
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc) // already decoded once; only for line numbers
	lines := newLineIndex(&doc)
	return f.route(lines)
}

func (f *routeFile) route(lines lineIndex) (*Route, error) {
	rt := &Route{
		ID:        strings.TrimSpace(f.ID),
		Name:      f.Name,
		CorridorM: f.CorridorM,
		ArrivalM:  f.ArrivalM,
		Schedules: make(map[string]Schedule, len(f.Schedules)),
	}
	if f.Timezone != "" {
		loc, err := time.LoadLocation(f.Timezone)
		if err != nil {
			return nil, fmt.Errorf("route file: timezone %q: %w", f.Timezone, err)
		}
		rt.Location = loc
	}
	names := make([]string, 0, len(f.Schedules))
	for name := range f.Schedules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sf := f.Schedules[name]
		at := lines.schedule(name)
		def, err := sf.Default.expect()
		if err != nil {
			return nil, fmt.Errorf("route file: schedule %q%s: default: %w", name, at, err)
		}
		s := Schedule{Default: def}
		for i, sl := range sf.Slots {
			e, err := makeExpect(sl.State, sl.Min, sl.Max)
			if err == nil {
				var days Weekdays
				var from, to TimeOfDay
				if days, err = ParseWeekdays(sl.Days); err == nil {
					if from, err = ParseTimeOfDay(sl.From); err == nil {
						to, err = ParseTimeOfDay(sl.To)
					}
				}
				s.Slots = append(s.Slots, Slot{Days: days, From: from, To: to, Expect: e})
			}
			if err != nil {
				return nil, fmt.Errorf("route file: schedule %q%s: slot %d: %w", name, at, i+1, err)
			}
		}
		if err := validateSchedule(s); err != nil {
			return nil, fmt.Errorf("route file: schedule %q%s: %w", name, at, err)
		}
		rt.Schedules[name] = s
	}
	for i, wf := range f.Waypoints {
		at := lines.waypoint(i)
		if wf.Lat == nil || wf.Lon == nil {
			return nil, fmt.Errorf("route file: waypoint %d %q%s: lat and lon are required", i+1, wf.ID, at)
		}
		w := Waypoint{ID: strings.TrimSpace(wf.ID), Name: wf.Name, Lat: *wf.Lat, Lon: *wf.Lon, ToleranceM: wf.ToleranceM}
		for _, cf := range wf.Checks {
			w.Checks = append(w.Checks, Check{
				ID:       strings.TrimSpace(cf.ID),
				Kind:     CheckKind(strings.TrimSpace(cf.Kind)),
				Asset:    strings.TrimSpace(cf.Asset),
				Schedule: strings.TrimSpace(cf.Schedule),
				Severity: Severity(strings.ToLower(strings.TrimSpace(cf.Severity))),
			})
		}
		rt.Waypoints = append(rt.Waypoints, w)
	}
	if i, err := rt.validate(); err != nil {
		if i >= 0 {
			return nil, fmt.Errorf("route file%s: %w", lines.waypoint(i), err)
		}
		return nil, fmt.Errorf("route file: %w", err)
	}
	return rt, nil
}

// lineIndex finds the lines of waypoints and schedules in the parsed YAML
// document, for error messages.
type lineIndex struct{ root *yaml.Node }

func newLineIndex(doc *yaml.Node) lineIndex {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		return lineIndex{root: doc.Content[0]}
	}
	return lineIndex{}
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func (l lineIndex) waypoint(i int) string {
	seq := mappingValue(l.root, "waypoints")
	if seq == nil || seq.Kind != yaml.SequenceNode || i >= len(seq.Content) {
		return ""
	}
	return fmt.Sprintf(" (line %d)", seq.Content[i].Line)
}

func (l lineIndex) schedule(name string) string {
	m := mappingValue(l.root, "schedules")
	if m == nil || m.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return fmt.Sprintf(" (line %d)", m.Content[i].Line)
		}
	}
	return ""
}
