package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/citymesh/citymesh/energy"
)

// HeatingSupply says where a building's heat comes from.
type HeatingSupply string

// Heat supplies. The zero value is district heating.
const (
	HeatDistrict HeatingSupply = "district"
	HeatGas      HeatingSupply = "gas"
	HeatPump     HeatingSupply = "heat_pump"
)

// Flow is a quantity a meter measures.
type Flow string

// Flows, with the OBIS code and unit a meter of them gets by default.
const (
	// FlowElectricity is electricity drawn from the grid (net of the
	// building's own PV), 1-0:1.8.0, kWh.
	FlowElectricity Flow = "electricity"
	// FlowElectricityExport is PV electricity fed into the grid,
	// 1-0:2.8.0, kWh.
	FlowElectricityExport Flow = "electricity_export"
	// FlowPV is the PV generation, on a generation meter 1-1:2.8.0, kWh.
	FlowPV Flow = "pv"
	// FlowHeat is space heating and hot water, 6-0:1.0.0, kWh.
	FlowHeat Flow = "heat"
	// FlowCooling is cooling energy, 5-0:1.0.0, kWh.
	FlowCooling Flow = "cooling"
	// FlowGas is natural gas volume, 7-0:3.0.0, m³.
	FlowGas Flow = "gas"
	// FlowWater is cold water, 8-0:1.0.0, m³.
	FlowWater Flow = "water"
	// FlowElectricityT1 and FlowElectricityT2 split FlowElectricity by
	// tariff, as the tariff registers 1-0:1.8.1 and 1-0:1.8.2 of a main
	// meter do: T1 (the high tariff) counts Monday to Friday from 6 to
	// 22 h local time, T2 the rest. (Tariff times vary by supplier; these
	// are the common German double-tariff hours, an estimate.)
	FlowElectricityT1 Flow = "electricity_t1"
	FlowElectricityT2 Flow = "electricity_t2"
)

var flowOrder = []Flow{FlowElectricity, FlowElectricityExport, FlowPV, FlowHeat, FlowCooling, FlowGas, FlowWater, FlowElectricityT1, FlowElectricityT2}

// flowDefaults are a flow's default OBIS code, register digits and
// decimals.
var flowDefaults = map[Flow]struct {
	obis             string
	digits, decimals int
}{
	FlowElectricity:       {"1-0:1.8.0", 6, 2},
	FlowElectricityExport: {"1-0:2.8.0", 6, 2},
	FlowPV:                {"1-1:2.8.0", 6, 2},
	FlowHeat:              {"6-0:1.0.0", 7, 1},
	FlowCooling:           {"5-0:1.0.0", 7, 1},
	FlowGas:               {"7-0:3.0.0", 6, 3},
	FlowWater:             {"8-0:1.0.0", 5, 3},
	FlowElectricityT1:     {"1-0:1.8.1", 6, 2},
	FlowElectricityT2:     {"1-0:1.8.2", 6, 2},
}

// MeterConfig describes one meter of a building.
type MeterConfig struct {
	// ID names the meter (the energy.Reading's Meter).
	ID   string
	Flow Flow
	// OBIS overrides the flow's default code.
	OBIS string
	// Share is the part of the building's flow this meter measures (a
	// sub-meter); 0 means 1.
	Share float64
	// Digits is the number of integer digits of the register; it wraps at
	// 10^Digits. 0 means the flow's default (6 for electricity, 7 for heat,
	// 6 for gas, 5 for water).
	Digits int
	// Decimals is the register's resolution, 10^−Decimals; 0 means the
	// flow's default (2 for electricity, 1 for heat, 3 for gas and water).
	// Use −1 for a register without decimals.
	Decimals int
	// Initial is the register at the building's Start; 0 means what the
	// meter would have counted in 2 to 15 years of service (drawn) at the
	// building's annual intensity, at least two years below the end of
	// the register's range.
	Initial float64
}

// BuildingConfig describes a building. Zero intensities take the defaults
// of its kind (docs/simulator.md).
type BuildingConfig struct {
	ID          string
	Kind        BuildingKind
	FloorAreaM2 float64
	// ElectricityKWhPerM2, HeatKWhPerM2 (space heating and hot water) and
	// WaterM3PerM2 are annual consumptions per floor area in a normal year.
	ElectricityKWhPerM2, HeatKWhPerM2, WaterM3PerM2 float64
	Heating                                         HeatingSupply
	// CoolingWPerM2K is the electric power of the air conditioning per m²
	// and K of outdoor temperature above 22 °C; 0 means none.
	CoolingWPerM2K float64
	// PVkWp is the peak power of a rooftop PV system; 0 means none.
	PVkWp  float64
	Meters []MeterConfig
	// Start anchors the registers: they hold their Initial value at Start
	// and integrate the loads minute by minute from there.
	Start time.Time
	// Location is the time zone of schedules (nil: Berlin).
	Location *time.Location
	// Faults: the meter faults whose asset is a meter of this building (or
	// a water leak on the building itself).
	Faults *FaultSet
}

// Loads is a building's instantaneous consumption, the mean of one minute.
type Loads struct {
	Time time.Time
	// Occupancy is the share of the building's usual peak occupancy, 0–1.
	Occupancy float64
	// ElectricityKW is the building's own consumption; ImportKW and ExportKW
	// what the grid sees after PVKW, the PV generation.
	ElectricityKW, ImportKW, ExportKW, PVKW float64
	// HeatKW and CoolingKW are thermal powers.
	HeatKW, CoolingKW float64
	// GasM3H and WaterM3H are volume flows in m³/h.
	GasM3H, WaterM3H float64
}

// Heating model constants (docs/simulator.md): the heating limit and the
// degree-day base of the German Gradtagzahl G20/15 (VDI 3807: heating days
// are days with a mean below 15 °C, counted against 20 °C), the reference
// Gradtagzahl of a normal Heilbronn year the annual intensities refer to
// (an estimate), and comfort and set-back temperatures.
const (
	heatingLimitC      = 15.0
	degreeDayBaseC     = 20.0
	referenceDegreeDay = 3300.0 // K·d per year, G20/15, estimate for Heilbronn
	setbackC           = 16.0
	baseLoadShare      = 0.4 // share of electricity that runs around the clock
	gasKWhPerM3        = 10.0
	boilerEfficiency   = 0.95
	nightFlushesPerMin = 0.02 // automatic urinal and hygiene flushes at night
	nightWaterFactor   = 0.02 // water drawn per person present, 0–5 h, relative to the day
	litresPerDraw      = 6.0
	coolingCOP         = 3.5
	pvPerformance      = 0.85
)

// Building simulates a building's loads and its meters' registers. Loads
// are pure functions of the time; the registers integrate them minute by
// minute from Start. A Building and its Meters are not safe for concurrent
// use: give each building to one goroutine.
type Building struct {
	cfg  BuildingConfig
	u    *usage
	w    *Weather
	seed uint64
	loc  *time.Location

	baseKW, varKW, hKWperK, dhwKW float64
	waterLambda                   float64 // draws per minute at full occupancy
	coolKWperK                    float64

	meters []*Meter
	byID   map[string]*Meter
	leaks  []Fault // building-wide leaks

	dayKey  int64 // the local day whose type dayType holds
	dayType DayType

	origin int64 // first integrated minute (minutes since the epoch)
	m      int64 // next minute to integrate
	cum    flows
}

// Meter is one register of a building.
type Meter struct {
	b        *Building
	cfg      MeterConfig
	obis     energy.OBIS
	max      float64
	res      float64
	leaks    []Fault
	segments []segment
}

// segment is a stretch of a register between two register faults: from
// Start on the register reads Offset plus the meter's consumption since the
// building's Start, modulo Max.
type segment struct {
	start  time.Time
	offset float64
	known  bool   // offset is set (the first segment's always is)
	fault  *Fault // the fault that began the segment (or, for the first, a rollover)
}

// MeterEvent is a register event a meter fitter or the meter itself would
// report: a reset, a wrap of the register or an exchange.
type MeterEvent struct {
	Time  time.Time
	Meter string
	// Kind is energy.EventReset, energy.EventRollover or
	// energy.EventExchange.
	Kind string
	// Exchange is set for exchanges: the old meter's final and the new
	// meter's start reading.
	Exchange *energy.Exchange
}

// NewBuilding returns the simulation of a building under weather w.
func NewBuilding(seed uint64, w *Weather, cfg BuildingConfig) (*Building, error) {
	if w == nil {
		return nil, errors.New("building: weather is required")
	}
	if cfg.ID == "" {
		return nil, errors.New("building: id is empty")
	}
	u, err := usageOf(cfg.Kind)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", cfg.ID, err)
	}
	if !(cfg.FloorAreaM2 > 0) || math.IsInf(cfg.FloorAreaM2, 0) {
		return nil, fmt.Errorf("building %s: floor area %v m² must be positive", cfg.ID, cfg.FloorAreaM2)
	}
	if cfg.Start.IsZero() {
		return nil, fmt.Errorf("building %s: start is missing", cfg.ID)
	}
	orDefault(&cfg.ElectricityKWhPerM2, u.electricity)
	orDefault(&cfg.HeatKWhPerM2, u.heat)
	orDefault(&cfg.WaterM3PerM2, u.water)
	for name, v := range map[string]float64{"electricity": cfg.ElectricityKWhPerM2, "heat": cfg.HeatKWhPerM2, "water": cfg.WaterM3PerM2,
		"cooling": cfg.CoolingWPerM2K, "pv": cfg.PVkWp} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("building %s: %s %v must be a finite number ≥ 0", cfg.ID, name, v)
		}
	}
	switch cfg.Heating {
	case "":
		cfg.Heating = HeatDistrict
	case HeatDistrict, HeatGas, HeatPump:
	default:
		return nil, fmt.Errorf("building %s: heating %q: want district, gas or heat_pump", cfg.ID, cfg.Heating)
	}
	loc := cfg.Location
	if loc == nil {
		loc = Berlin
	}
	a := cfg.FloorAreaM2
	occ := occupiedHours()[cfg.Kind]
	occH := occ.hours
	b := &Building{
		cfg:  cfg,
		u:    u,
		w:    w,
		seed: SeedOf(seed, "building/"+cfg.ID),
		loc:  loc,
		// Electricity: a base share around the clock, the rest in
		// proportion to occupancy.
		baseKW: baseLoadShare * cfg.ElectricityKWhPerM2 * a / 8760,
		varKW:  (1 - baseLoadShare) * cfg.ElectricityKWhPerM2 * a / occH,
		// Space heating: a heat-loss coefficient that gives the annual
		// demand in a year of referenceDegreeDay.
		hKWperK: (1 - u.hotWater) * cfg.HeatKWhPerM2 * a / (referenceDegreeDay * 24),
		dhwKW:   u.hotWater * cfg.HeatKWhPerM2 * a / occH,
		// Water: draws of litresPerDraw, night flushes apart.
		waterLambda: math.Max(0, cfg.WaterM3PerM2*a*1000/litresPerDraw-nightFlushesPerMin*525600) / (occ.waterHours * 60),
		coolKWperK:  cfg.CoolingWPerM2K * a / 1000,
		byID:        map[string]*Meter{},
		origin:      minuteOf(cfg.Start),
	}
	b.m = b.origin
	for _, f := range cfg.Faults.For(cfg.ID) {
		if f.Kind == FaultWaterLeak {
			b.leaks = append(b.leaks, f)
		}
	}
	for _, mc := range cfg.Meters {
		m, err := b.newMeter(mc)
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", cfg.ID, err)
		}
		b.meters = append(b.meters, m)
		b.byID[mc.ID] = m
	}
	if err := b.planRegisters(); err != nil {
		return nil, fmt.Errorf("building %s: %w", cfg.ID, err)
	}
	return b, nil
}

func minuteOf(t time.Time) int64 { return int64(math.Floor(float64(t.Unix()) / 60)) }

func (b *Building) newMeter(mc MeterConfig) (*Meter, error) {
	if mc.ID == "" {
		return nil, errors.New("meter id is empty")
	}
	if _, dup := b.byID[mc.ID]; dup {
		return nil, fmt.Errorf("meter %s: id used twice", mc.ID)
	}
	def, ok := flowDefaults[mc.Flow]
	if !ok {
		return nil, fmt.Errorf("meter %s: unknown flow %q", mc.ID, mc.Flow)
	}
	if mc.OBIS == "" {
		mc.OBIS = def.obis
	}
	o, err := energy.ParseOBIS(mc.OBIS)
	if err != nil {
		return nil, fmt.Errorf("meter %s: %w", mc.ID, err)
	}
	if mc.Share == 0 {
		mc.Share = 1
	}
	if !(mc.Share > 0 && mc.Share <= 1) {
		return nil, fmt.Errorf("meter %s: share %v outside (0, 1]", mc.ID, mc.Share)
	}
	if mc.Digits == 0 {
		mc.Digits = def.digits
	}
	if mc.Decimals == 0 {
		mc.Decimals = def.decimals
	}
	if mc.Decimals < 0 {
		mc.Decimals = 0
	}
	if mc.Digits < 1 || mc.Digits > 12 || mc.Decimals > 6 {
		return nil, fmt.Errorf("meter %s: %d digits and %d decimals: want 1–12 and 0–6", mc.ID, mc.Digits, mc.Decimals)
	}
	m := &Meter{b: b, cfg: mc, obis: o, max: math.Pow(10, float64(mc.Digits)), res: math.Pow(10, -float64(mc.Decimals))}
	if mc.Initial == 0 {
		m.cfg.Initial = m.quantize(b.initialRegister(mc, m.max))
	}
	if !(m.cfg.Initial >= 0 && m.cfg.Initial < m.max) {
		return nil, fmt.Errorf("meter %s: initial %v outside the register's range 0–%v", mc.ID, m.cfg.Initial, m.max)
	}
	for _, f := range b.cfg.Faults.For(mc.ID) {
		if f.Kind == FaultWaterLeak {
			m.leaks = append(m.leaks, f)
		}
	}
	if mc.Flow == FlowWater {
		m.leaks = append(m.leaks, b.leaks...)
	}
	return m, nil
}

// quantize truncates v to the register's resolution.
func (m *Meter) quantize(v float64) float64 {
	q := math.Floor(v/m.res+1e-6) * m.res
	return math.Round(q/m.res) * m.res
}

// planRegisters turns each meter's reset, rollover and exchange faults into
// register segments. A rollover sets the first segment's offset so the
// register reaches its maximum exactly at the fault's time; that needs the
// consumption up to then, so the loads are integrated once ahead.
func (b *Building) planRegisters() error {
	type need struct {
		m *Meter
		f Fault
	}
	var needs []need
	var latest time.Time
	for _, m := range b.meters {
		fs := slices.Clone(b.cfg.Faults.For(m.cfg.ID))
		slices.SortFunc(fs, func(x, y Fault) int { return x.Start.Compare(y.Start) })
		m.segments = []segment{{start: b.cfg.Start, offset: m.cfg.Initial, known: true}}
		for i := range fs {
			f := fs[i]
			switch f.Kind {
			case FaultMeterReset, FaultMeterExchange:
				if f.Start.Before(b.cfg.Start) {
					return fmt.Errorf("meter %s: %s at %s is before the start", m.cfg.ID, f.Kind, f.Start.Format(time.RFC3339))
				}
				m.segments = append(m.segments, segment{start: f.Start, fault: &f})
			case FaultMeterRollover:
				if len(m.segments) > 1 {
					return fmt.Errorf("meter %s: a rollover must come before the meter's resets and exchanges", m.cfg.ID)
				}
				if !f.Start.After(b.cfg.Start) {
					return fmt.Errorf("meter %s: rollover at %s is not after the start", m.cfg.ID, f.Start.Format(time.RFC3339))
				}
				needs = append(needs, need{m, f})
				if f.Start.After(latest) {
					latest = f.Start
				}
			}
		}
	}
	if len(needs) == 0 {
		return nil
	}
	slices.SortFunc(needs, func(x, y need) int { return x.f.Start.Compare(y.f.Start) })
	for _, n := range needs {
		e := n.m.consumed(n.f.Start)
		off := n.m.max - math.Mod(e, n.m.max)
		if off >= n.m.max {
			off -= n.m.max
		}
		n.m.segments[0].offset = off
		n.m.segments[0].fault = &n.f
	}
	b.reset()
	return nil
}

// reset rewinds the integration to Start.
func (b *Building) reset() {
	b.m = b.origin
	b.cum = flows{}
}

// flows are one minute's consumption by flow, in kWh or m³, in the order
// of flowOrder.
type flows [9]float64

// at computes the flows of minute mi (minutes since the epoch).
func (b *Building) at(mi int64) (flows, Loads) {
	t := time.Unix(mi*60, 0)
	// Weather on a five-minute grid: every building of a site shares the
	// same instants, which the weather caches.
	c := b.w.At(time.Unix((mi-((mi%5)+5)%5)*60, 0))
	lt := t.In(b.loc)
	y, mo, d := lt.Date()
	hr := float64(lt.Hour()) + float64(lt.Minute())/60
	dayKey := int64(y)*400 + int64(mo)*32 + int64(d)
	if dayKey != b.dayKey {
		b.dayKey, b.dayType = dayKey, dayTypeOfDate(y, mo, d)
	}
	dt := b.dayType
	dayF := math.Exp(0.08*gauss(b.seed, stLoadDay, dayKey) - 0.0032)
	occ := clamp(b.u.profile(dt, hr)*dayF, 0, 1.2)

	// Electricity: base and occupancy-driven load with quarter-hour and
	// minute noise; cooling above 22 °C; a heat pump's compressor.
	q := math.Exp(0.04*gauss(b.seed, stLoadQuarter, mi/15) + 0.02*gauss(b.seed, stLoadMinute, mi) - 0.001)
	elec := (b.baseKW + b.varKW*occ) * q
	var coolKW float64
	if b.coolKWperK > 0 && c.TempC > 22 {
		on := 0.3
		if occ > 0.05 {
			on = 1
		}
		coolKW = b.coolKWperK * (c.TempC - 22) * on
		elec += coolKW
	}

	// Heat: degree-hours against the comfort or set-back temperature while
	// the day's mean is below the heating limit, with a morning boost after
	// set-back; hot water follows occupancy.
	var heat float64
	if c.DailyMeanC < heatingLimitC {
		working := dt == LectureDay || dt == BreakDay || (dt == Saturday && b.u.scale[Saturday] >= 0.3) ||
			(b.cfg.Kind == KindResidence)
		target := setbackC
		boost := 1.0
		if working && hr >= b.u.comfortFrom && hr < b.u.comfortTo {
			target = degreeDayBaseC
			if hr < b.u.comfortFrom+2 && b.u.comfortFrom > 0 {
				boost = 1.3
			}
		}
		tout := 0.6*c.DailyMeanC + 0.4*c.TempC
		heat = b.hKWperK * math.Max(0, target-tout) * boost
	}
	heat += b.dhwKW * occ
	if b.cfg.Heating == HeatPump {
		cop := clamp(3.2+0.06*c.TempC, 2, 5)
		elec += heat / cop
	}
	var gas float64 // m³/h
	if b.cfg.Heating == HeatGas {
		gas = heat / (gasKWhPerM3 * boilerEfficiency)
	}
	if b.cfg.Kind == KindCanteen {
		gas += 0.02 * b.cfg.FloorAreaM2 * occ / gasKWhPerM3 // cooking
	}

	// PV on the roof: horizontal irradiance, a performance ratio and a
	// temperature derating of 0.4 %/K above 25 °C cell temperature.
	var pv float64
	if b.cfg.PVkWp > 0 && c.GHIWm2 > 0 {
		tcell := c.TempC + 0.031*c.GHIWm2
		pv = b.cfg.PVkWp * c.GHIWm2 / 1000 * pvPerformance * (1 - 0.004*(tcell-25))
	}

	// Water: Poisson draws by occupancy plus night flushes. Between
	// midnight and 5 h people present are asleep and draw almost nothing.
	wocc := occ
	if hr < 5 {
		wocc *= nightWaterFactor
	}
	lam := b.waterLambda*wocc + nightFlushesPerMin
	n := poisson(lam, unit(b.seed, stWaterDraws, mi))
	var water float64
	for k := range n {
		water += litresPerDraw / 1000 * math.Exp(0.5*gauss(b.seed, stWaterVolume, mi*16+int64(k))-0.125)
	}

	imp := math.Max(0, elec-pv)
	exp := math.Max(0, pv-elec)
	var f flows
	f[0] = imp / 60
	f[1] = exp / 60
	f[2] = pv / 60
	f[3] = heat / 60
	f[4] = coolKW * coolingCOP / 60
	f[5] = gas / 60
	f[6] = water
	if wd := lt.Weekday(); wd >= time.Monday && wd <= time.Friday && hr >= 6 && hr < 22 {
		f[7] = f[0]
	} else {
		f[8] = f[0]
	}
	return f, Loads{
		Time: t, Occupancy: occ,
		ElectricityKW: elec, ImportKW: imp, ExportKW: exp, PVKW: pv,
		HeatKW: heat, CoolingKW: coolKW * coolingCOP, GasM3H: gas, WaterM3H: water * 60,
	}
}

// Loads returns the building's loads in the minute containing t (without
// leaks).
func (b *Building) Loads(t time.Time) Loads {
	_, l := b.at(minuteOf(t))
	l.Time = t
	return l
}

// ID returns the building's id.
func (b *Building) ID() string { return b.cfg.ID }

// Meters returns the building's meters in configuration order.
func (b *Building) Meters() []*Meter { return slices.Clone(b.meters) }

// Meter returns the meter with the given id, or nil.
func (b *Building) Meter(id string) *Meter { return b.byID[id] }

// cumulative returns the building's consumption by flow from Start to t,
// integrating whole minutes and the elapsed part of t's minute.
func (b *Building) cumulative(t time.Time) flows {
	mi := minuteOf(t)
	if mi < b.origin {
		return flows{}
	}
	if mi < b.m {
		b.reset()
	}
	for b.m < mi {
		f, _ := b.at(b.m)
		for i := range f {
			b.cum[i] += f[i]
		}
		b.m++
	}
	out := b.cum
	frac := float64(t.UnixNano()-mi*60e9) / 60e9
	if frac > 0 {
		f, _ := b.at(mi)
		for i := range f {
			out[i] += f[i] * frac
		}
	}
	return out
}

// consumed returns the meter's true consumption from the building's Start
// to t, leaks included.
func (m *Meter) consumed(t time.Time) float64 {
	if t.Before(m.b.cfg.Start) {
		return 0
	}
	c := m.b.cumulative(t)
	v := c[slices.Index(flowOrder, m.cfg.Flow)] * m.cfg.Share
	for _, f := range m.leaks {
		lo, hi := f.Start, f.End()
		if lo.Before(m.b.cfg.Start) {
			lo = m.b.cfg.Start
		}
		if hi.After(t) {
			hi = t
		}
		if hi.After(lo) {
			v += f.FlowM3PerH * hi.Sub(lo).Hours()
		}
	}
	return v
}

// segmentAt returns the index of the segment that holds t.
func (m *Meter) segmentAt(t time.Time) int {
	i := 0
	for k := 1; k < len(m.segments); k++ {
		if !t.Before(m.segments[k].start) {
			i = k
		}
	}
	return i
}

// offsetOf returns segment k's offset, computing it (and caching it) from
// its fault when k starts with a reset or an exchange.
func (m *Meter) offsetOf(k int) float64 {
	s := &m.segments[k]
	if s.known {
		return s.offset
	}
	e := m.consumed(s.start)
	switch s.fault.Kind {
	case FaultMeterExchange:
		s.offset = s.fault.NewStart - e
	default: // reset
		s.offset = -e
	}
	s.known = true
	return s.offset
}

// value returns the register's exact (unquantised) value at t.
func (m *Meter) value(t time.Time) float64 {
	k := m.segmentAt(t)
	return m.wrap(m.offsetOf(k) + m.consumed(t))
}

// wrap brings v into the register's range [0, Max).
func (m *Meter) wrap(v float64) float64 {
	v = math.Mod(v, m.max)
	if v < 0 {
		v += m.max
	}
	return v
}

// Read returns the register's reading at t, truncated to its resolution.
// Times before the building's Start read the initial value.
func (m *Meter) Read(t time.Time) energy.Reading {
	v := m.quantize(m.value(t))
	if v >= m.max {
		v = 0
	}
	return energy.Reading{Time: t, Meter: m.cfg.ID, OBIS: m.obis, Value: v}
}

// ID returns the meter's id.
func (m *Meter) ID() string { return m.cfg.ID }

// Flow returns what the meter measures.
func (m *Meter) Flow() Flow { return m.cfg.Flow }

// OBIS returns the meter's OBIS code.
func (m *Meter) OBIS() energy.OBIS { return m.obis }

// Unit returns the register's unit ("kWh" or "m3").
func (m *Meter) Unit() string {
	if u := m.obis.Unit(); u != "" {
		return u
	}
	if m.cfg.Flow == FlowGas || m.cfg.Flow == FlowWater {
		return "m3"
	}
	return "kWh"
}

// Register describes the register for energy.Consume: where it wraps, a
// generous physical maximum rate (five times the building's nominal peak)
// and the meter exchanges up to until.
func (m *Meter) Register(until time.Time) energy.Register {
	b := m.b
	var peak float64
	switch m.cfg.Flow {
	case FlowElectricity, FlowElectricityExport, FlowPV, FlowElectricityT1, FlowElectricityT2:
		peak = b.baseKW + 1.2*b.varKW + b.coolKWperK*20 + b.cfg.PVkWp + b.hKWperK*32/2
	case FlowHeat, FlowCooling:
		peak = b.hKWperK*36 + b.dhwKW + b.coolKWperK*20*coolingCOP
	case FlowGas:
		peak = (b.hKWperK*36+b.dhwKW)/(gasKWhPerM3*boilerEfficiency) + 0.03*b.cfg.FloorAreaM2/gasKWhPerM3
	case FlowWater:
		peak = (b.waterLambda + nightFlushesPerMin) * 60 * litresPerDraw / 1000 * 4
		for _, f := range m.leaks {
			peak += f.FlowM3PerH
		}
	}
	reg := energy.Register{Meter: m.cfg.ID, OBIS: m.obis, Max: m.max, MaxRate: 5 * peak * m.cfg.Share}
	for _, ev := range m.Events(b.cfg.Start.Add(-time.Nanosecond), until) {
		if ev.Exchange != nil {
			reg.Exchanges = append(reg.Exchanges, *ev.Exchange)
		}
	}
	return reg
}

// Events returns the register events in (from, to]: resets, exchanges
// (with the old meter's final and the new meter's start reading) and the
// wrap of a rollover fault.
func (m *Meter) Events(from, to time.Time) []MeterEvent {
	var out []MeterEvent
	for k, s := range m.segments {
		if s.fault == nil {
			continue
		}
		at := s.start
		if s.fault.Kind == FaultMeterRollover {
			at = s.fault.Start
		}
		if !at.After(from) || at.After(to) {
			continue
		}
		ev := MeterEvent{Time: at, Meter: m.cfg.ID}
		switch s.fault.Kind {
		case FaultMeterRollover:
			ev.Kind = energy.EventRollover
		case FaultMeterReset:
			ev.Kind = energy.EventReset
		case FaultMeterExchange:
			ev.Kind = energy.EventExchange
			prev := m.quantize(m.wrap(m.offsetOf(k-1) + m.consumed(at)))
			if prev >= m.max {
				prev = 0
			}
			ev.Exchange = &energy.Exchange{Time: at, OldFinal: prev, NewStart: m.quantize(s.fault.NewStart)}
		}
		out = append(out, ev)
	}
	return out
}

// Annual yields and conversions behind initialRegister's service years.
const (
	// pvKWhPerKWp is a year's yield of a rooftop PV system in Heilbronn
	// (PVGIS, optimally inclined, about 1,000 kWh/kWp in southern Germany).
	pvKWhPerKWp = 1000.0
	// coolingHoursK is a rough year of air conditioning: kelvin-hours
	// above the cooling limit (about 300 full-load hours at 3 K).
	coolingHoursK = 900.0
	// t1Share is the share of a year's electricity on the day tariff.
	t1Share = 0.6
)

// initialRegister draws a register's value at the building's start: the
// flow's annual amount times the meter's share times 2 to 15 years of
// service, so that a main meter reads millions of kWh and a floor's
// sub-meter hundreds of thousands, as real ones do. A register that would
// come within two years of its range's end has wrapped: what remains of
// it below that.
func (b *Building) initialRegister(mc MeterConfig, max float64) float64 {
	a, c := b.cfg.FloorAreaM2, &b.cfg
	var year float64
	switch mc.Flow {
	case FlowElectricity:
		year = c.ElectricityKWhPerM2 * a
	case FlowElectricityT1:
		year = c.ElectricityKWhPerM2 * a * t1Share
	case FlowElectricityT2:
		year = c.ElectricityKWhPerM2 * a * (1 - t1Share)
	case FlowElectricityExport, FlowPV:
		year = c.PVkWp * pvKWhPerKWp
	case FlowHeat:
		year = c.HeatKWhPerM2 * a
	case FlowGas:
		year = c.HeatKWhPerM2 * a / gasKWhPerM3
	case FlowCooling:
		year = c.CoolingWPerM2K / 1000 * a * coolingHoursK
	case FlowWater:
		year = c.WaterM3PerM2 * a
	}
	// The years are the meter's, shared by its registers (ids
	// "{meter}/{OBIS}"), so its tariff registers add up to its total.
	meter, _, _ := strings.Cut(mc.ID, "/")
	years := 2 + 13*unit(SeedOf(b.seed, meter), stMeterInit, 0)
	// Leave two years of headroom, so that a register wraps only when a
	// fault says so.
	room := max - 2*year*mc.Share
	if !(room > 0) {
		return 0
	}
	v := math.Mod(year*mc.Share*years, room)
	if !(v >= 0) {
		return 0
	}
	return v
}
