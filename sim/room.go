package sim

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// RoomKind says how a room is used; it picks the occupancy pattern.
type RoomKind string

// Room kinds.
const (
	// RoomLecture and RoomSeminar are booked in 90-minute slots.
	RoomLecture RoomKind = "lecture"
	RoomSeminar RoomKind = "seminar"
	// RoomOffice holds one or two people on working days.
	RoomOffice RoomKind = "office"
	// RoomLab holds a small group, some into the evening.
	RoomLab RoomKind = "lab"
	// RoomReading is a library reading room, open 8–22 h Monday to
	// Saturday.
	RoomReading RoomKind = "reading"
)

// RoomConfig describes a room with its building-automation points.
type RoomConfig struct {
	// ID names the room; it seeds the room's timetable.
	ID   string
	Kind RoomKind
	// AreaM2 is the floor area, HeightM the clear height (default 3 m).
	AreaM2, HeightM float64
	// Capacity is the number of seats or workplaces; 0 means a default by
	// kind and area (1.5 m² a seat in lecture rooms, 2.5 m² in seminar and
	// reading rooms, one person per 12 m² in offices, per 15 m² in labs).
	Capacity int
	// Ventilated says the room has mechanical ventilation (supplying
	// 7 l/s per person plus 0.7 l/s per m² while in use, DIN EN 16798-1
	// category II); lecture, seminar and reading rooms have it by default.
	Ventilated *bool
	// HasCooling says the room is air conditioned (cooling above 26 °C).
	HasCooling bool
	// Start anchors the simulation: the room's state is stepped from 48 h
	// before Start, so it has settled by Start.
	Start time.Time
	// Step is the simulation step (default 5 min).
	Step time.Duration
	// Location is the time zone of the timetable (nil: Berlin).
	Location *time.Location
}

// RoomState is what a room's automation points report.
type RoomState struct {
	Time time.Time
	// TempC is the air temperature, SetpointC the heating setpoint of the
	// schedule (comfort or set-back), both °C.
	TempC, SetpointC float64
	// RHPct is the relative humidity in %, CO2PPM the CO2 concentration.
	RHPct, CO2PPM float64
	// Occupants is the number of people, Occupied a presence detector's
	// view of it.
	Occupants int
	Occupied  bool
	// WindowOpen is a window contact.
	WindowOpen bool
	// ValvePct is the heating valve's opening (0–100), CoolingPct the
	// air conditioning's output (0–100).
	ValvePct, CoolingPct float64
	// LightOn is the lighting; IlluminanceLux the illuminance at the desks.
	LightOn        bool
	IlluminanceLux float64
}

// Room constants (docs/simulator.md lists their sources): comfort and
// set-back setpoints (ASR A3.5 asks at least 20 °C for sedentary work;
// 21 °C used), the cooling limit (ASR A3.5: above 26 °C measures are due),
// heat given off by a seated person, the CO2 a seated adult exhales, the
// outdoor CO2 concentration, the moisture a person gives off, daylight
// factor, and envelope and heat-capacity estimates.
const (
	comfortC         = 21.0
	roomSetbackC     = 17.0
	coolingLimitC    = 26.0
	personW          = 80.0    // sensible heat, W
	co2PerPersonM3s  = 5.2e-6  // m³/s (about 0.0052 l/s at 1.2 met)
	outdoorCO2PPM    = 425.0   // ppm
	moisturePerKgS   = 1.39e-5 // kg/s (about 50 g/h)
	daylightFactor   = 0.02    // indoor/outdoor illuminance
	lightLux         = 500.0   // artificial light at the desks
	lightOnBelowLux  = 300.0   // switch on below this daylight
	envelopeWm2K     = 1.2     // UA per m² of floor
	heatCapJm2K      = 60000.0 // effective heat capacity per m² of floor
	infiltrationACH  = 0.2
	summerACH        = 1.0  // tilted windows and night purge outside the heating season
	heatRecovery     = 0.75 // of mechanical ventilation (estimate for a modern air handler)
	windowACH        = 5.0
	solarGainShare   = 0.02   // of GHI per m² of floor (window share × g × shading)
	rhoCpAir         = 1200.0 // J/(m³·K)
	waterVapourRJkgK = 461.5
)

// Lecture slots (German 90-minute Doppelstunden), local start and end
// hours.
var lectureSlots = [][2]float64{{8, 9.5}, {9.75, 11.25}, {11.5, 13}, {14, 15.5}, {15.75, 17.25}, {17.5, 19}}

// Room simulates one room: occupancy from a deterministic timetable, a
// single-zone thermal balance (envelope, ventilation, windows, people,
// lights, sun, a proportional heating valve, cooling), and CO2 and water
// vapour balances, all stepped with exact exponential solutions over a
// fixed step. A Room is not safe for concurrent use.
type Room struct {
	cfg      RoomConfig
	w        *Weather
	seed     uint64
	loc      *time.Location
	u        *usage
	vent     bool
	volume   float64
	ua, capJ float64
	qHeatMax float64
	qCoolMax float64
	step     int64 // ns

	dayKey int64 // the local date whose type dayT holds
	dayT   DayType

	origin int64 // first step time, ns since the epoch
	at     int64 // time of the current state
	state  roomVars
}

type roomVars struct {
	temp, co2, vapour float64 // °C, ppm, kg/m³
	windowUntil       int64   // ns; the window is open before it
	valve, cool       float64
	occupants         int
	light             bool
	lux               float64
	setpoint          float64
}

// NewRoom returns a room under weather w.
func NewRoom(seed uint64, w *Weather, cfg RoomConfig) (*Room, error) {
	if w == nil {
		return nil, errors.New("room: weather is required")
	}
	if cfg.ID == "" {
		return nil, errors.New("room: id is empty")
	}
	var u *usage
	var perSeat float64
	vent := false
	switch cfg.Kind {
	case RoomLecture:
		u, perSeat, vent = usages[KindLecture], 1.5, true
	case RoomSeminar:
		u, perSeat, vent = usages[KindLecture], 2.5, true
	case RoomOffice:
		u, perSeat = usages[KindOffice], 12
	case RoomLab:
		u, perSeat = usages[KindLab], 15
	case RoomReading:
		u, perSeat, vent = usages[KindLibrary], 2.5, true
	default:
		return nil, fmt.Errorf("room %s: unknown kind %q (want lecture, seminar, office, lab or reading)", cfg.ID, cfg.Kind)
	}
	orDefault(&cfg.HeightM, 3)
	if !(cfg.AreaM2 > 0 && cfg.AreaM2 < 1e5) || !(cfg.HeightM > 1.5 && cfg.HeightM < 30) {
		return nil, fmt.Errorf("room %s: area %v m² and height %v m out of range", cfg.ID, cfg.AreaM2, cfg.HeightM)
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = max(1, int(cfg.AreaM2/perSeat))
	}
	if cfg.Capacity < 0 {
		return nil, fmt.Errorf("room %s: capacity %d is negative", cfg.ID, cfg.Capacity)
	}
	if cfg.Ventilated != nil {
		vent = *cfg.Ventilated
	}
	if cfg.Step == 0 {
		cfg.Step = 5 * time.Minute
	}
	if cfg.Step < time.Second || cfg.Step > time.Hour {
		return nil, fmt.Errorf("room %s: step %v outside 1 s–1 h", cfg.ID, cfg.Step)
	}
	if cfg.Start.IsZero() {
		return nil, fmt.Errorf("room %s: start is missing", cfg.ID)
	}
	loc := cfg.Location
	if loc == nil {
		loc = Berlin
	}
	a := cfg.AreaM2
	r := &Room{
		cfg: cfg, w: w, seed: SeedOf(seed, "room/"+cfg.ID), loc: loc, u: u, vent: vent,
		volume:   a * cfg.HeightM,
		ua:       envelopeWm2K * a,
		capJ:     heatCapJm2K * a,
		qHeatMax: envelopeWm2K * a * 32 * 1.3, // design load at −12 °C, 30 % reserve
		qCoolMax: 60 * a,
		step:     int64(cfg.Step),
	}
	s := cfg.Start.Add(-48 * time.Hour).UnixNano()
	r.origin = s - ((s%r.step)+r.step)%r.step
	r.reset()
	return r, nil
}

func (r *Room) reset() {
	c := r.w.At(time.Unix(0, r.origin))
	r.at = r.origin
	r.state = roomVars{temp: 19, co2: outdoorCO2PPM, vapour: vapourDensity(c.TempC, c.RHPct), setpoint: roomSetbackC}
}

// vapourDensity returns the water vapour density in kg/m³ of air at tempC
// and rhPct: e/(R_v·T).
func vapourDensity(tempC, rhPct float64) float64 {
	e := rhPct / 100 * SaturationVapourPressure(tempC) * 1000 // Pa
	return e / (waterVapourRJkgK * (tempC + 273.15))
}

// ID returns the room's id.
func (r *Room) ID() string { return r.cfg.ID }

// Capacity returns the room's seats or workplaces.
func (r *Room) Capacity() int { return r.cfg.Capacity }

// scheduled reports whether local time (day type, hour) is in the room's
// operating hours: comfort temperature, ventilation.
func (r *Room) scheduled(dt DayType, hr float64) bool {
	working := dt == LectureDay || dt == BreakDay || (dt == Saturday && r.u.scale[Saturday] >= 0.3)
	return working && hr >= r.u.comfortFrom && hr < r.u.comfortTo
}

// Occupants returns the number of people in the room at t: a pure
// function of the room's seed and the time.
func (r *Room) Occupants(t time.Time) int {
	lt := t.In(r.loc)
	y, mo, d := lt.Date()
	hr := float64(lt.Hour()) + float64(lt.Minute())/60 + float64(lt.Second())/3600
	return r.occupants(t, r.dayType(y, mo, d), hr, int64(y)*400+int64(mo)*32+int64(d))
}

// dayType returns the type of a local date, remembering the last one.
func (r *Room) dayType(y int, mo time.Month, d int) DayType {
	key := int64(y)*400 + int64(mo)*32 + int64(d)
	if key != r.dayKey {
		r.dayKey, r.dayT = key, dayTypeOfDate(y, mo, d)
	}
	return r.dayT
}

// occupants is Occupants for a local day type, hour and day key.
func (r *Room) occupants(t time.Time, dt DayType, hr float64, day int64) int {
	capacity := float64(r.cfg.Capacity)
	switch r.cfg.Kind {
	case RoomLecture, RoomSeminar:
		p := [5]float64{0.7, 0.15, 0.1, 0, 0}[dt]
		if r.cfg.Kind == RoomSeminar {
			p *= 0.85
		}
		for i, s := range lectureSlots {
			if dt == Saturday && i > 2 {
				break
			}
			if hr < s[0]-5.0/60 || hr >= s[1] {
				continue
			}
			k := day*8 + int64(i)
			if unit(r.seed, stRoomSlot, k) >= p {
				return 0
			}
			return int(math.Round(capacity * (0.3 + 0.65*unit(r.seed, stRoomFill, k))))
		}
		return 0
	case RoomOffice, RoomLab:
		if dt != LectureDay && dt != BreakDay {
			if r.cfg.Kind == RoomLab && dt == Saturday && unit(r.seed, stRoomOffice, day*64) < 0.2 && hr >= 10 && hr < 15 {
				return 1
			}
			return 0
		}
		present := 0.85
		if dt == BreakDay {
			present = 0.6
		}
		n := 0
		for p := range min(r.cfg.Capacity, 16) {
			k := day*64 + int64(p)*4
			if unit(r.seed, stRoomOffice, k) >= present {
				continue
			}
			arrive := 7.5 + 1.5*unit(r.seed, stRoomOffice, k+1)
			leave := 16 + 2.5*unit(r.seed, stRoomOffice, k+2)
			if r.cfg.Kind == RoomLab && unit(r.seed, stRoomOffice, k+3) < 0.2 {
				leave += 3
			}
			lunch := 12 + 0.5*unit(r.seed, stRoomOffice, k+3)
			if hr >= arrive && hr < leave && (hr < lunch || hr >= lunch+0.75) {
				n++
			}
		}
		return n
	default: // reading room
		if dt == Sunday || dt == Closure || hr < 8 || hr >= 22 {
			return 0
		}
		f := r.u.profile(dt, hr) * math.Exp(0.25*gauss(r.seed, stRoomFill, int64(math.Floor(float64(t.Unix())/1800)))-0.03)
		return int(math.Round(capacity * clamp(f, 0, 1)))
	}
}

// advance steps the state to the last step time not after ns.
func (r *Room) advance(ns int64) {
	if ns < r.at {
		r.reset()
	}
	for r.at+r.step <= ns {
		r.stepOnce()
	}
}

// stepOnce integrates one step from r.at with the inputs at its start.
func (r *Room) stepOnce() {
	t := time.Unix(0, r.at)
	c := r.w.At(t)
	s := &r.state
	lt := t.In(r.loc)
	y, mo, d := lt.Date()
	dt := r.dayType(y, mo, d)
	hr := float64(lt.Hour()) + float64(lt.Minute())/60 + float64(lt.Second())/3600
	n := r.occupants(t, dt, hr, int64(y)*400+int64(mo)*32+int64(d))
	sched := r.scheduled(dt, hr)
	k := r.at / r.step

	// Setpoint and controls.
	s.setpoint = roomSetbackC
	if sched {
		s.setpoint = comfortC
	}
	s.valve = 0
	if c.DailyMeanC < heatingLimitC {
		s.valve = clamp((s.setpoint+0.5-s.temp)/2, 0, 1)
	}
	s.cool = 0
	if r.cfg.HasCooling && sched {
		s.cool = clamp((s.temp-coolingLimitC)/1.5, 0, 1)
	}

	// Windows: people open them when it is warm or stuffy, more readily in
	// mild weather; they stay open 10–30 min in the heating season, up to
	// two hours in summer.
	if r.at >= s.windowUntil && n > 0 {
		p := 0.005
		if c.TempC > 12 && c.TempC < 26 {
			p = 0.03
		}
		if s.temp > 24.5 || s.co2 > 1400 {
			p = 0.25
		}
		if unit(r.seed, stRoomWindow, 2*k) < p {
			dur := 10 + 20*unit(r.seed, stRoomWindow, 2*k+1)
			if c.DailyMeanC >= heatingLimitC {
				dur *= 4
			}
			s.windowUntil = r.at + int64(dur*float64(time.Minute))
		}
	}
	open := r.at < s.windowUntil

	// Light: on when people are in and daylight is short.
	day := c.IlluminanceLux * daylightFactor
	s.light = n > 0 && day < lightOnBelowLux
	s.lux = day
	if s.light {
		s.lux += lightLux
	}
	s.occupants = n

	// Air flows (m³/s); mechanical supply air passes a heat recovery, so
	// only a quarter of it counts in the heat balance.
	vdot := infiltrationACH * r.volume / 3600
	if c.DailyMeanC >= heatingLimitC {
		vdot = summerACH * r.volume / 3600
	}
	vheat := vdot
	if r.vent && sched {
		mech := (7*float64(n) + 0.7*r.cfg.AreaM2) / 1000
		vdot += mech
		vheat += (1 - heatRecovery) * mech
	}
	if open {
		vdot += windowACH * r.volume / 3600
		vheat += windowACH * r.volume / 3600
	}

	// Heat balance: C·dT/dt = Q + (UA + ρc·V̇)·(Tout − T), solved exactly
	// for constant inputs over the step.
	q := float64(n)*personW + s.valve*r.qHeatMax - s.cool*r.qCoolMax + solarGainShare*c.GHIWm2*r.cfg.AreaM2
	if s.light {
		q += 8 * r.cfg.AreaM2
	}
	if n > 0 {
		q += 5 * r.cfg.AreaM2 // equipment
	}
	g := r.ua + rhoCpAir*vheat
	dtS := float64(r.step) / 1e9
	teq := c.TempC + q/g
	s.temp = teq + (s.temp-teq)*math.Exp(-g*dtS/r.capJ)

	// CO2 and vapour: V·dC/dt = S + V̇·(C_out − C).
	decay := math.Exp(-vdot * dtS / r.volume)
	ceq := outdoorCO2PPM + float64(n)*co2PerPersonM3s*1e6/vdot
	s.co2 = ceq + (s.co2-ceq)*decay
	veq := vapourDensity(c.TempC, c.RHPct) + float64(n)*moisturePerKgS/vdot
	s.vapour = veq + (s.vapour-veq)*decay

	r.at += r.step
}

// At returns the room's points at t: the state of the last step at or
// before t.
func (r *Room) At(t time.Time) RoomState {
	r.advance(t.UnixNano())
	s := r.state
	rh := 100 * s.vapour * waterVapourRJkgK * (s.temp + 273.15) / (SaturationVapourPressure(s.temp) * 1000)
	return RoomState{
		Time:           t,
		TempC:          round(s.temp, 0.1),
		SetpointC:      s.setpoint,
		RHPct:          round(clamp(rh, 5, 100), 0.1),
		CO2PPM:         math.Round(s.co2),
		Occupants:      s.occupants,
		Occupied:       s.occupants > 0,
		WindowOpen:     r.at-r.step < s.windowUntil,
		ValvePct:       round(100*s.valve, 1),
		CoolingPct:     round(100*s.cool, 1),
		LightOn:        s.light,
		IlluminanceLux: math.Round(s.lux),
	}
}
