package twin

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paulmach/orb"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin/history"
)

// Expected intervals of the assets whose interval the campus model does not
// give: a meter's reading every 15 minutes, a room's full snapshot every 15
// minutes (docs/simulator.md, as a building gateway publishes), a robot's
// position every second. A device's is its own (campus.Device.Interval).
const (
	MeterInterval = 15 * time.Minute
	RoomInterval  = 15 * time.Minute
	RobotInterval = time.Second
)

// SilentAfter is how many expected intervals an asset may stay unheard
// before it counts as silent.
const SilentAfter = 3

// Errors Apply returns; each is wrapped with the detail.
var (
	// ErrUnknownAsset: the event's asset is not in the campus model, or
	// is not of the topic's kind.
	ErrUnknownAsset = errors.New("twin: unknown asset")
	// ErrUnknownPoint: a value names a point the campus model does not
	// have, or one of another asset.
	ErrUnknownPoint = errors.New("twin: unknown point")
	// ErrBadValue: a value is not finite, or not in its point's unit.
	ErrBadValue = errors.New("twin: bad value")
)

// State is the twin's state of one campus: every information point's latest
// value and every asset's liveness. Its methods are safe for concurrent
// use. The zero value is not usable: call NewState.
type State struct {
	model *campus.Model

	mu     sync.RWMutex
	points []pointEntry
	assets []assetEntry
	// byPoint and byAsset index points and assets by id; read-only after
	// NewState.
	byPoint map[string]int32
	byAsset map[string]int32
	// inBuilding lists, by building id, the indexes of the assets that
	// belong to it (see buildingOf) and of their points, ascending, so a
	// query of one building reads its part only; read-only after
	// NewState.
	inBuilding map[string]buildingIndex

	applied, stale, rejected atomic.Uint64
	version                  atomic.Uint64 // bumped on every change
}

// pointEntry is one point: the model's description and its latest value.
type pointEntry struct {
	p     *campus.Point
	asset int32
	// Set once a value arrived; then value (numeric points), text (a
	// check's observation) or pos (a position) and the times.
	set      bool
	numeric  bool
	value    float64
	text     string
	pos      orb.Point
	hasPos   bool
	observed time.Time
	received time.Time
	source   *event.Source
}

// assetEntry is one asset: the model's description and its liveness.
type assetEntry struct {
	a        *campus.Asset
	object   any // *campus.Building, *campus.Room, ...
	points   []int32
	interval time.Duration
	geometry orb.Geometry // footprint or area; nil for a point asset
	related  Relations

	lastSeen     time.Time // newest event time
	lastReceived time.Time
	status       event.State
	reason       string
	statusTime   time.Time
	dirty        bool // changed since the last Dirty call
}

// Relations are an asset's links to other assets, as the campus model has
// them. Only the fields of the asset's kind are set.
type Relations struct {
	// Building: a room's, meter's or building gateway's building.
	Building string `json:"building,omitempty"`
	// Rooms, Meters: a building's rooms and meters (main and sub).
	Rooms  []string `json:"rooms,omitempty"`
	Meters []string `json:"meters,omitempty"`
	// Gateway: a building's building gateway.
	Gateway string `json:"gateway,omitempty"`
	// Parent, SubMeters: the meter a sub-meter belongs to, and a meter's
	// sub-meters.
	Parent    string   `json:"parent,omitempty"`
	SubMeters []string `json:"sub_meters,omitempty"`
	// Plot and Devices: the plot a device stands on, and a plot's
	// devices.
	Plot    string   `json:"plot,omitempty"`
	Devices []string `json:"devices,omitempty"`
	// Application: a device's LoRaWAN application (campus id).
	Application string `json:"application,omitempty"`
}

// NewState returns the state of model's points and assets, with no values
// yet.
func NewState(m *campus.Model) *State {
	s := &State{model: m, byPoint: make(map[string]int32, len(m.Points)), byAsset: make(map[string]int32)}
	addAsset := func(a *campus.Asset, obj any, interval time.Duration, g orb.Geometry, r Relations) {
		s.byAsset[a.ID] = int32(len(s.assets))
		s.assets = append(s.assets, assetEntry{a: a, object: obj, interval: interval, geometry: g, related: r})
	}
	metersOf := map[string][]string{}
	subs := map[string][]string{}
	for _, mt := range m.Meters {
		if mt.Building != "" {
			metersOf[mt.Building] = append(metersOf[mt.Building], mt.ID)
		}
		if mt.Parent != "" {
			subs[mt.Parent] = append(subs[mt.Parent], mt.ID)
		}
	}
	for _, b := range m.Buildings {
		var g orb.Geometry
		if len(b.Footprint) > 0 {
			g = b.Footprint
		}
		addAsset(&b.Asset, b, 0, g, Relations{Rooms: b.Rooms, Meters: metersOf[b.ID], Gateway: b.Gateway})
	}
	for _, r := range m.Rooms {
		addAsset(&r.Asset, r, RoomInterval, nil, Relations{Building: r.Building})
	}
	for _, mt := range m.Meters {
		addAsset(&mt.Asset, mt, MeterInterval, nil, Relations{Building: mt.Building, Parent: mt.Parent, SubMeters: subs[mt.ID]})
	}
	for _, g := range m.Gateways {
		addAsset(&g.Asset, g, 0, nil, Relations{Building: g.Building})
	}
	for _, p := range m.Plots {
		var g orb.Geometry
		if len(p.Area) > 0 {
			g = p.Area
		}
		addAsset(&p.Asset, p, 0, g, Relations{Devices: p.Devices})
	}
	for _, d := range m.Devices {
		addAsset(&d.Asset, d, d.Interval, nil, Relations{Plot: d.Plot, Application: d.Application})
	}
	for _, r := range m.Robots {
		addAsset(&r.Asset, r, RobotInterval, nil, Relations{})
	}
	s.points = make([]pointEntry, 0, len(m.Points))
	for _, p := range m.Points {
		ai, ok := s.byAsset[p.Asset]
		if !ok { // a validated model has none
			continue
		}
		i := int32(len(s.points))
		s.byPoint[p.ID] = i
		s.points = append(s.points, pointEntry{p: p, asset: ai})
		s.assets[ai].points = append(s.assets[ai].points, i)
	}
	s.inBuilding = make(map[string]buildingIndex)
	for ai := range int32(len(s.assets)) {
		b := s.buildingOf(ai)
		if b == "" {
			continue
		}
		x := s.inBuilding[b]
		x.assets = append(x.assets, ai)
		x.points = append(x.points, s.assets[ai].points...)
		s.inBuilding[b] = x
	}
	for b, x := range s.inBuilding {
		slices.Sort(x.points)
		s.inBuilding[b] = x
	}
	return s
}

// buildingIndex is what belongs to one building: asset and point indexes,
// ascending.
type buildingIndex struct {
	assets, points []int32
}

// Model returns the campus model the state was built from.
func (s *State) Model() *campus.Model { return s.model }

// Counts are what Apply did so far.
type Counts struct {
	// Applied values became their point's latest; Stale values were older
	// than the latest (kept out of the state, not out of the history);
	// Rejected values or events were refused.
	Applied  uint64 `json:"applied"`
	Stale    uint64 `json:"stale"`
	Rejected uint64 `json:"rejected"`
}

// Counts returns what Apply did so far.
func (s *State) Counts() Counts {
	return Counts{Applied: s.applied.Load(), Stale: s.stale.Load(), Rejected: s.rejected.Load()}
}

// Version changes whenever the state changes.
func (s *State) Version() uint64 { return s.version.Load() }

// Apply takes one city event received at received: a measurement's values,
// a status's state and battery, a position, a check; any event refreshes
// its asset's liveness. A value older (by its observed time) than its
// point's latest is stale and does not replace it. It appends the numeric
// values it accepted — stale ones too, which the history still wants — to
// samples and returns it. Values that are refused (an unknown point, a
// point of another asset, a non-finite value, a unit other than the
// point's) are counted and reported in the error; the event's other values
// are applied.
func (s *State) Apply(t event.Topic, e event.Event, received time.Time, samples []history.Sample) ([]history.Sample, error) {
	h := e.Head()
	ai, ok := s.byAsset[h.Asset]
	if !ok || h.Asset != t.Asset || s.assets[ai].a.Kind != t.Kind {
		s.rejected.Add(1)
		return samples, fmt.Errorf("%w: %q (topic %s)", ErrUnknownAsset, h.Asset, t)
	}
	src := h.Source
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.assets[ai]
	var errs []error
	val := func(v *event.Value) {
		var err error
		samples, err = s.applyValue(ai, v, h.Time, received, &src, samples)
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch e := e.(type) {
	case *event.Measurement:
		for i := range e.Values {
			val(&e.Values[i])
		}
	case *event.Status:
		if !h.Time.Before(a.statusTime) {
			a.status, a.reason, a.statusTime = e.State, e.Reason, h.Time
		}
		if e.Battery != nil {
			val(e.Battery)
		}
	case *event.Position:
		pi, err := s.pointOf(ai, e.Point)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if math.IsNaN(e.Lat) || math.IsNaN(e.Lon) || math.Abs(e.Lat) > 90 || math.Abs(e.Lon) > 180 {
			s.rejected.Add(1)
			errs = append(errs, fmt.Errorf("%w: %s: position (%v, %v)", ErrBadValue, e.Point, e.Lat, e.Lon))
			break
		}
		p := &s.points[pi]
		if s.newer(p, h.Time) {
			p.set, p.numeric, p.text, p.hasPos, p.pos = true, false, "", true, orb.Point{e.Lon, e.Lat}
			p.observed, p.received, p.source = h.Time, received, &src
		}
		if e.Battery != nil {
			val(e.Battery)
		}
	case *event.Check:
		pi, err := s.pointOf(ai, e.Point)
		if err != nil {
			errs = append(errs, err)
			break
		}
		p := &s.points[pi]
		f, numeric := checkValue(e.Observed)
		if numeric {
			samples = append(samples, s.sample(p, h.Time, f))
		}
		if s.newer(p, h.Time) {
			p.set, p.numeric, p.value, p.text, p.hasPos = true, numeric, f, e.Observed, false
			if !numeric {
				p.value = 0
			}
			p.observed, p.received, p.source = h.Time, received, &src
		}
	}
	if h.Time.After(a.lastSeen) {
		a.lastSeen = h.Time
	}
	if received.After(a.lastReceived) {
		a.lastReceived = received
	}
	a.dirty = true
	s.version.Add(1)
	return samples, errors.Join(errs...)
}

// newer reports whether a value observed at t replaces p's latest, and
// counts it. p is locked.
func (s *State) newer(p *pointEntry, t time.Time) bool {
	if p.set && t.Before(p.observed) {
		s.stale.Add(1)
		return false
	}
	s.applied.Add(1)
	return true
}

// pointOf returns the index of point id, which must belong to asset ai.
func (s *State) pointOf(ai int32, id string) (int32, error) {
	pi, ok := s.byPoint[id]
	if !ok || s.points[pi].asset != ai {
		s.rejected.Add(1)
		return 0, fmt.Errorf("%w: %q of asset %q", ErrUnknownPoint, id, s.assets[ai].a.ID)
	}
	return pi, nil
}

// applyValue applies one value of asset ai. s.mu is held.
func (s *State) applyValue(ai int32, v *event.Value, at, received time.Time, src *event.Source, samples []history.Sample) ([]history.Sample, error) {
	pi, err := s.pointOf(ai, v.Point)
	if err != nil {
		return samples, err
	}
	p := &s.points[pi]
	if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
		s.rejected.Add(1)
		return samples, fmt.Errorf("%w: %s: %v is not finite", ErrBadValue, v.Point, v.Value)
	}
	if v.Unit != p.p.Unit {
		s.rejected.Add(1)
		return samples, fmt.Errorf("%w: %s: unit %q, the point's is %q", ErrBadValue, v.Point, v.Unit, p.p.Unit)
	}
	if v.Time != nil {
		at = *v.Time
	}
	samples = append(samples, s.sample(p, at, v.Value))
	if s.newer(p, at) {
		p.set, p.numeric, p.value, p.text, p.hasPos = true, true, v.Value, "", false
		p.observed, p.received, p.source = at, received, src
	}
	return samples, nil
}

func (s *State) sample(p *pointEntry, at time.Time, v float64) history.Sample {
	return history.Sample{Point: p.p.ID, Asset: p.p.Asset, AssetKind: string(p.p.AssetKind), Quantity: p.p.Quantity,
		Unit: string(p.p.Unit), Site: p.p.Site, Tenant: p.p.Tenant, Time: at, Value: v}
}

// checkValue returns a check's observation as a number: a setpoint's
// degrees as they are, a state as the campus model's state points count it
// (1 up, clear or on; 0 down, blocked or off); false for anything else
// ("unreadable", "failed").
func checkValue(observed string) (float64, bool) {
	switch observed {
	case "up", "clear", "on":
		return 1, true
	case "down", "blocked", "off":
		return 0, true
	}
	f, err := strconv.ParseFloat(observed, 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}
