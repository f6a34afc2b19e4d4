package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FaultKind names a fault the simulator can inject.
type FaultKind string

// Fault kinds. The asset each one names is given in its comment.
const (
	// FaultWaterLeak adds a constant flow (FlowM3PerH, default 0.03 m³/h)
	// to a water meter (asset: the meter, or a building for all its water
	// meters) for Duration: the minimum night flow never falls to zero.
	FaultWaterLeak FaultKind = "water_leak"
	// FaultMeterReset sets a meter's register to zero at Start; it counts
	// on from there.
	FaultMeterReset FaultKind = "meter_reset"
	// FaultMeterRollover starts a meter's register so close to its maximum
	// that it wraps to zero at Start. It must come before the meter's
	// resets and exchanges (it sets the register's initial value).
	FaultMeterRollover FaultKind = "meter_rollover"
	// FaultMeterExchange replaces a meter at Start by a new one whose
	// register starts at NewStart; the exchange is recorded (old final and
	// new start reading), as a meter fitter would.
	FaultMeterExchange FaultKind = "meter_exchange"
	// FaultOutOfOrder holds back every Every-th reading (default 4) of the
	// asset for Duration and delivers it after the next one.
	FaultOutOfOrder FaultKind = "out_of_order"
	// FaultDuplicate delivers every Every-th reading (default 4) of the
	// asset twice for Duration.
	FaultDuplicate FaultKind = "duplicate"
	// FaultSilent drops every reading of the asset (a device or meter) for
	// Duration.
	FaultSilent FaultKind = "silent"
	// FaultGatewayOutage drops every uplink of the devices behind the asset
	// (a gateway) for Duration.
	FaultGatewayOutage FaultKind = "gateway_outage"
	// FaultDownyWeather bends the weather of the asset (a site) towards
	// downy mildew for Duration (see FavourDownyMildew).
	FaultDownyWeather FaultKind = "downy_mildew_weather"
	// FaultPowderyWeather bends the weather of the asset (a site) towards
	// powdery mildew for Duration (see FavourPowderyMildew).
	FaultPowderyWeather FaultKind = "powdery_mildew_weather"
	// FaultRobotOffCorridor moves the robot (asset) OffsetM metres
	// (default 15) to the left of its route for Duration.
	FaultRobotOffCorridor FaultKind = "robot_off_corridor"
	// FaultCheckFails makes the robot's check of the asset (a check id or
	// the asset the check inspects) find an anomaly for Duration, with a
	// picture; Mode "unreadable" makes the check fail to read instead.
	FaultCheckFails FaultKind = "check_fails"
	// FaultRejoin makes a LoRaWAN device (asset) join the network again at
	// Start: a new session with a new device address and session key, its
	// frame counter starting from 0, announced by a join message.
	FaultRejoin FaultKind = "rejoin"
)

var faultKinds = []FaultKind{
	FaultWaterLeak, FaultMeterReset, FaultMeterRollover, FaultMeterExchange, FaultOutOfOrder, FaultDuplicate,
	FaultSilent, FaultGatewayOutage, FaultDownyWeather, FaultPowderyWeather, FaultRobotOffCorridor, FaultCheckFails,
	FaultRejoin,
}

// instantaneous reports whether a fault kind happens at one instant (and
// takes no duration).
func (k FaultKind) instantaneous() bool {
	return k == FaultMeterReset || k == FaultMeterRollover || k == FaultMeterExchange || k == FaultRejoin
}

// Fault is one fault to inject: what, on which asset, when, and the
// parameters of its kind.
type Fault struct {
	Kind  FaultKind `json:"kind"`
	Asset string    `json:"asset"`
	// Start is when the fault begins (or happens, for the instantaneous
	// faults: meter resets, rollovers and exchanges, rejoins).
	Start time.Time `json:"start"`
	// Duration is how long it lasts; zero for instantaneous faults.
	Duration time.Duration `json:"duration"`

	// FlowM3PerH is a leak's flow (water_leak; default 0.03 m³/h).
	FlowM3PerH float64 `json:"flow_m3_per_h,omitempty"`
	// NewStart is the new meter's first reading (meter_exchange; default 0).
	NewStart float64 `json:"new_start,omitempty"`
	// Every selects every n-th reading (out_of_order, duplicate; default 4).
	Every int `json:"every,omitempty"`
	// OffsetM is the robot's distance from its route (robot_off_corridor;
	// default 15 m).
	OffsetM float64 `json:"offset_m,omitempty"`
	// Mode is "anomaly" (default) or "unreadable" (check_fails).
	Mode string `json:"mode,omitempty"`
}

// End returns when the fault ends: Start plus Duration.
func (f Fault) End() time.Time { return f.Start.Add(f.Duration) }

// Active reports whether t lies in [Start, End).
func (f Fault) Active(t time.Time) bool { return !t.Before(f.Start) && t.Before(f.End()) }

// Defaults of the fault parameters.
const (
	DefaultLeakM3PerH = 0.03
	DefaultEvery      = 4
	DefaultOffsetM    = 15.0
)

// normalise fills defaults and validates the fault.
func (f *Fault) normalise() error {
	if !slices.Contains(faultKinds, f.Kind) {
		names := make([]string, len(faultKinds))
		for i, k := range faultKinds {
			names[i] = string(k)
		}
		return fmt.Errorf("unknown kind %q (want one of %s)", f.Kind, strings.Join(names, ", "))
	}
	f.Asset = strings.TrimSpace(f.Asset)
	if f.Asset == "" {
		return fmt.Errorf("%s: asset is empty", f.Kind)
	}
	if f.Start.IsZero() {
		return fmt.Errorf("%s %s: start is missing", f.Kind, f.Asset)
	}
	switch {
	case f.Kind.instantaneous() && f.Duration != 0:
		return fmt.Errorf("%s %s: happens at one instant and takes no duration (got %v)", f.Kind, f.Asset, f.Duration)
	case !f.Kind.instantaneous() && f.Duration <= 0:
		return fmt.Errorf("%s %s: duration must be positive (got %v)", f.Kind, f.Asset, f.Duration)
	}
	bad := func(name string, v float64) error {
		return fmt.Errorf("%s %s: %s %v must be a positive finite number", f.Kind, f.Asset, name, v)
	}
	switch f.Kind {
	case FaultWaterLeak:
		if f.FlowM3PerH == 0 {
			f.FlowM3PerH = DefaultLeakM3PerH
		}
		if !(f.FlowM3PerH > 0) || math.IsInf(f.FlowM3PerH, 0) {
			return bad("flow_m3_per_h", f.FlowM3PerH)
		}
	case FaultMeterExchange:
		if !(f.NewStart >= 0) || math.IsInf(f.NewStart, 0) {
			return fmt.Errorf("%s %s: new_start %v must be a finite number ≥ 0", f.Kind, f.Asset, f.NewStart)
		}
	case FaultOutOfOrder, FaultDuplicate:
		if f.Every == 0 {
			f.Every = DefaultEvery
		}
		if f.Every < 1 {
			return fmt.Errorf("%s %s: every %d must be at least 1", f.Kind, f.Asset, f.Every)
		}
	case FaultRobotOffCorridor:
		if f.OffsetM == 0 {
			f.OffsetM = DefaultOffsetM
		}
		if !(f.OffsetM > 0) || math.IsInf(f.OffsetM, 0) {
			return bad("offset_m", f.OffsetM)
		}
	case FaultCheckFails:
		switch f.Mode {
		case "":
			f.Mode = "anomaly"
		case "anomaly", "unreadable":
		default:
			return fmt.Errorf("%s %s: mode %q: want anomaly or unreadable", f.Kind, f.Asset, f.Mode)
		}
	}
	return nil
}

// FaultSet holds the faults of a run, indexed by asset. A nil *FaultSet has
// no faults. It is read-only after NewFaultSet and safe for concurrent use.
type FaultSet struct {
	all     []Fault
	byAsset map[string][]Fault
}

// NewFaultSet validates the faults, fills in their defaults and indexes
// them. Errors name the fault by its position (1-based) and kind.
func NewFaultSet(faults []Fault) (*FaultSet, error) {
	s := &FaultSet{byAsset: map[string][]Fault{}}
	for i, f := range faults {
		if err := f.normalise(); err != nil {
			return nil, fmt.Errorf("fault %d: %w", i+1, err)
		}
		s.all = append(s.all, f)
		s.byAsset[f.Asset] = append(s.byAsset[f.Asset], f)
	}
	return s, nil
}

// All returns every fault, in the order given.
func (s *FaultSet) All() []Fault {
	if s == nil {
		return nil
	}
	return slices.Clone(s.all)
}

// For returns the faults of one asset.
func (s *FaultSet) For(asset string) []Fault {
	if s == nil {
		return nil
	}
	return s.byAsset[asset]
}

// Delivery says what becomes of one message (a reading, an uplink) of a
// source on its way to the bus.
type Delivery struct {
	// Drop: the message is lost (a silent device, a gateway outage).
	Drop bool
	// Duplicate: the message arrives twice.
	Duplicate bool
	// HoldBack: the message arrives after the source's next message.
	HoldBack bool
}

// Delivery returns the fate of message number seq of asset, sent at t
// through gateway (empty when none). Use a Reorder to carry it out.
func (s *FaultSet) Delivery(asset, gateway string, t time.Time, seq uint64) Delivery {
	var d Delivery
	if s == nil {
		return d
	}
	for _, f := range s.byAsset[asset] {
		if !f.Active(t) {
			continue
		}
		switch f.Kind {
		case FaultSilent:
			d.Drop = true
		case FaultDuplicate:
			d.Duplicate = d.Duplicate || seq%uint64(f.Every) == 0
		case FaultOutOfOrder:
			d.HoldBack = d.HoldBack || seq%uint64(f.Every) == 0
		}
	}
	if gateway != "" {
		for _, f := range s.byAsset[gateway] {
			if f.Kind == FaultGatewayOutage && f.Active(t) {
				d.Drop = true
			}
		}
	}
	return d
}

// Reorder carries out Deliveries for one source: it drops, duplicates and
// holds back messages. It keeps at most one message. The zero value is
// ready to use.
type Reorder[T any] struct {
	held    T
	holding bool
	heldDup bool // the held message is to be delivered twice
}

// Deliver passes v to emit as d says: not at all, once or twice, or later
// (after the next message; twice then if d says so too). A held message
// is released after the next message that is not itself held or dropped.
func (r *Reorder[T]) Deliver(d Delivery, v T, emit func(T)) {
	if d.Drop {
		return
	}
	if d.HoldBack && !r.holding {
		r.held, r.holding, r.heldDup = v, true, d.Duplicate
		return
	}
	emit(v)
	if d.Duplicate {
		emit(v)
	}
	r.Flush(emit)
}

// Flush emits a held message, if any (twice, if it was a duplicate).
func (r *Reorder[T]) Flush(emit func(T)) {
	if r.holding {
		held, dup := r.held, r.heldDup
		var zero T
		r.held, r.holding, r.heldDup = zero, false, false
		emit(held)
		if dup {
			emit(held)
		}
	}
}

// Scenario is the content of a scenario file: the faults of a run and,
// optionally, its seed.
type Scenario struct {
	// Seed, when set, is the simulation seed the file asks for.
	Seed   *uint64
	Faults []Fault
}

// MaxScenarioBytes bounds the size of a scenario file.
const MaxScenarioBytes = 4 << 20

type scenarioFile struct {
	Seed   *uint64     `yaml:"seed"`
	Faults []faultFile `yaml:"faults"`
}

type faultFile struct {
	Kind       string   `yaml:"kind"`
	Asset      string   `yaml:"asset"`
	Start      string   `yaml:"start"`
	Duration   string   `yaml:"duration"`
	FlowM3PerH *float64 `yaml:"flow_m3_per_h"`
	NewStart   *float64 `yaml:"new_start"`
	Every      *int     `yaml:"every"`
	OffsetM    *float64 `yaml:"offset_m"`
	Mode       string   `yaml:"mode"`
}

// ReadScenario reads a scenario file (YAML):
//
//	seed: 42                      # optional
//	faults:
//	  - kind: water_leak
//	    asset: b3-water
//	    start: 2026-03-10T00:00:00+01:00
//	    duration: 96h
//	    flow_m3_per_h: 0.04
//
// start is RFC 3339, duration a Go duration ("96h", "30m"). Unknown keys are
// refused; errors name the fault and its line.
func ReadScenario(r io.Reader) (sc Scenario, err error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxScenarioBytes+1))
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	if len(data) > MaxScenarioBytes {
		return Scenario{}, fmt.Errorf("scenario: larger than %d bytes", MaxScenarioBytes)
	}
	defer func() {
		if p := recover(); p != nil {
			sc, err = Scenario{}, fmt.Errorf("scenario: YAML decoder failed: %v", p)
		}
	}()
	var f scenarioFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return Scenario{}, errors.New("scenario: empty")
		}
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc)
	lines := faultLines(&doc)
	sc.Seed = f.Seed
	for i, ff := range f.Faults {
		at := fmt.Sprintf("fault %d", i+1)
		if i < len(lines) {
			at += fmt.Sprintf(" (line %d)", lines[i])
		}
		flt, err := ff.fault()
		if err != nil {
			return Scenario{}, fmt.Errorf("scenario: %s: %w", at, err)
		}
		if err := flt.normalise(); err != nil {
			return Scenario{}, fmt.Errorf("scenario: %s: %w", at, err)
		}
		sc.Faults = append(sc.Faults, flt)
	}
	return sc, nil
}

// faultLines returns the line of each item of the top-level "faults" list.
func faultLines(doc *yaml.Node) []int {
	if doc == nil || len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "faults" && m.Content[i+1].Kind == yaml.SequenceNode {
			var out []int
			for _, it := range m.Content[i+1].Content {
				out = append(out, it.Line)
			}
			return out
		}
	}
	return nil
}

func (ff faultFile) fault() (Fault, error) {
	f := Fault{Kind: FaultKind(strings.TrimSpace(ff.Kind)), Asset: ff.Asset, Mode: strings.TrimSpace(ff.Mode)}
	if s := strings.TrimSpace(ff.Start); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return Fault{}, fmt.Errorf("start %q: want RFC 3339 (2026-03-10T00:00:00+01:00)", s)
		}
		f.Start = t
	}
	if s := strings.TrimSpace(ff.Duration); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return Fault{}, fmt.Errorf("duration %q: want a Go duration such as 96h or 30m", s)
		}
		f.Duration = d
	}
	if ff.FlowM3PerH != nil {
		f.FlowM3PerH = *ff.FlowM3PerH
	}
	if ff.NewStart != nil {
		f.NewStart = *ff.NewStart
	}
	if ff.Every != nil {
		f.Every = *ff.Every
	}
	if ff.OffsetM != nil {
		f.OffsetM = *ff.OffsetM
	}
	return f, nil
}

// ParseFault parses a fault given on the command line as comma-separated
// key=value pairs with the keys of the scenario file, for example
//
//	kind=water_leak,asset=b3-water,start=2026-03-10T00:00:00+01:00,duration=96h
func ParseFault(s string) (Fault, error) {
	var ff faultFile
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return Fault{}, fmt.Errorf("fault %q: %q is not key=value", s, part)
		}
		if seen[k] {
			return Fault{}, fmt.Errorf("fault %q: key %s given twice", s, k)
		}
		seen[k] = true
		num := func() (*float64, error) {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("fault %q: %s %q is not a number", s, k, v)
			}
			return &x, nil
		}
		var err error
		switch k {
		case "kind":
			ff.Kind = v
		case "asset":
			ff.Asset = v
		case "start":
			ff.Start = v
		case "duration":
			ff.Duration = v
		case "flow_m3_per_h":
			ff.FlowM3PerH, err = num()
		case "new_start":
			ff.NewStart, err = num()
		case "offset_m":
			ff.OffsetM, err = num()
		case "every":
			n, perr := strconv.Atoi(v)
			if perr != nil {
				err = fmt.Errorf("fault %q: every %q is not a whole number", s, v)
			}
			ff.Every = &n
		case "mode":
			ff.Mode = v
		default:
			err = fmt.Errorf("fault %q: unknown key %q", s, k)
		}
		if err != nil {
			return Fault{}, err
		}
	}
	f, err := ff.fault()
	if err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", s, err)
	}
	if err := f.normalise(); err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", s, err)
	}
	return f, nil
}
