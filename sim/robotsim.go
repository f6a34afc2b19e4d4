package sim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/citymesh/citymesh/robot"
)

// RobotConfig configures a patrol robot. Zero fields take the defaults in
// their comments.
type RobotConfig struct {
	// ID names the robot; robot faults name it as their asset.
	ID string
	// Route is the patrol route (validated). The robot docks at the first
	// waypoint.
	Route *robot.Route
	// SpeedMS is the walking speed (default 1.2 m/s; each leg varies by
	// about ±5 %, kept within 1.0–1.4 m/s).
	SpeedMS float64
	// CheckS is the time one check takes at a waypoint (default 30 s).
	CheckS float64
	// Start is when the first patrol starts; Every the time between patrol
	// starts (default 2 h).
	Start time.Time
	Every time.Duration
	// Battery, in per cent of capacity per minute: drain while walking
	// (default 0.6) and while standing at a check (default 0.2), charge at
	// the dock (default 1.0). A patrol starts only with at least MinStartPct
	// (default 30); otherwise the robot keeps charging and skips it.
	WalkDrainPctMin, IdleDrainPctMin, ChargePctMin, MinStartPct float64
	// GPSSigmaM is the standard deviation of the slowly wandering GPS error
	// per axis (default 0.8 m); a white error of 0.3 m adds to it.
	GPSSigmaM float64
	// Faults: robot_off_corridor faults on ID and check_fails faults on a
	// check's id or asset.
	Faults *FaultSet
}

// RobotState is what the robot is doing.
type RobotState string

// Robot states.
const (
	RobotDocked     RobotState = "docked"
	RobotCharging   RobotState = "charging"
	RobotPatrolling RobotState = "patrolling"
	RobotChecking   RobotState = "checking"
	RobotReturning  RobotState = "returning"
)

// RobotStatus is the robot's state at one instant.
type RobotStatus struct {
	Time time.Time
	// Lat and Lon are the reported position (with GPS error), degrees.
	Lat, Lon float64
	// HeadingDeg is the direction of travel (0 north, clockwise), SpeedMS
	// the speed.
	HeadingDeg, SpeedMS float64
	// BatteryPct is the battery's charge in per cent.
	BatteryPct float64
	State      RobotState
	// Patrol counts patrols from 0 at Start; −1 before the first.
	Patrol int
	// Waypoint is the waypoint the robot is at or heading to.
	Waypoint string
}

// CheckResult is one check the robot performed.
type CheckResult struct {
	// Observation is what the robot reports, ready for robot.Evaluate;
	// Observation.Picture holds the picture's reference when it took one.
	Observation robot.Observation
	Kind        robot.CheckKind
	Asset       string
	// Picture is the PNG of an anomaly the robot photographed, nil
	// otherwise.
	Picture []byte
}

// Robot simulates a patrol robot on its route: patrols at fixed times,
// walking the waypoints at about walking speed, pausing for each check,
// returning to its dock and charging there. Positions, battery and checks
// are computed for any time from the patrol schedule; a Robot is not safe
// for concurrent use (it keeps the last patrol's plan).
type Robot struct {
	cfg   RobotConfig
	route *robot.Route
	seed  uint64
	wps   []robot.Point
	dist  []float64 // leg lengths, waypoint i to i+1 (last: back to the dock)
	ret   bool      // the route does not end at the dock: walk back

	plan    patrolPlan // cached plan of one patrol
	battery batteryMemo
}

// leg is a part of a patrol: walking from a to b, or standing at a
// waypoint for its checks.
type leg struct {
	t0, t1 int64 // offsets from the patrol's start, ns
	walk   bool
	a, b   robot.Point
	wp     int // waypoint walked to, or stood at
	speed  float64
}

type patrolPlan struct {
	k    int
	ok   bool
	legs []leg
	dur  int64
	walk float64 // minutes walking
	idle float64 // minutes checking
}

// batteryMemo remembers the battery at the start of patrol k.
type batteryMemo struct {
	k       int
	startPc float64
	skipped bool
	endPc   float64
	dur     int64
}

// Robot defaults.
const (
	DefaultRobotSpeedMS = 1.2
	DefaultCheckS       = 30.0
	DefaultPatrolEvery  = 2 * time.Hour
)

// NewRobot returns the simulation of a patrol robot.
func NewRobot(seed uint64, cfg RobotConfig) (*Robot, error) {
	if cfg.ID == "" {
		return nil, errors.New("robot: id is empty")
	}
	if cfg.Route == nil {
		return nil, fmt.Errorf("robot %s: route is required", cfg.ID)
	}
	if err := cfg.Route.Validate(); err != nil {
		return nil, fmt.Errorf("robot %s: %w", cfg.ID, err)
	}
	orDefault(&cfg.SpeedMS, DefaultRobotSpeedMS)
	orDefault(&cfg.CheckS, DefaultCheckS)
	orDefault(&cfg.WalkDrainPctMin, 0.6)
	orDefault(&cfg.IdleDrainPctMin, 0.2)
	orDefault(&cfg.ChargePctMin, 1.0)
	orDefault(&cfg.MinStartPct, 30)
	orDefault(&cfg.GPSSigmaM, 0.8)
	if cfg.Every == 0 {
		cfg.Every = DefaultPatrolEvery
	}
	for name, v := range map[string]float64{"speed": cfg.SpeedMS, "check time": cfg.CheckS, "walk drain": cfg.WalkDrainPctMin,
		"idle drain": cfg.IdleDrainPctMin, "charge rate": cfg.ChargePctMin, "gps sigma": cfg.GPSSigmaM} {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("robot %s: %s %v must be a positive finite number", cfg.ID, name, v)
		}
	}
	if cfg.SpeedMS > 5 || cfg.MinStartPct < 0 || cfg.MinStartPct > 100 || cfg.Every < time.Minute {
		return nil, fmt.Errorf("robot %s: speed %v m/s (≤ 5), minimum start charge %v %% (0–100) or patrol interval %v (≥ 1 min) out of range",
			cfg.ID, cfg.SpeedMS, cfg.MinStartPct, cfg.Every)
	}
	if cfg.Start.IsZero() {
		return nil, fmt.Errorf("robot %s: start is missing", cfg.ID)
	}
	r := &Robot{cfg: cfg, route: cfg.Route, seed: SeedOf(seed, "robot/"+cfg.ID), plan: patrolPlan{k: -1}, battery: batteryMemo{k: -1}}
	for _, w := range cfg.Route.Waypoints {
		r.wps = append(r.wps, w.Point())
	}
	n := len(r.wps)
	for i := 1; i < n; i++ {
		r.dist = append(r.dist, robot.HaversineM(r.wps[i-1], r.wps[i]))
	}
	if back := robot.HaversineM(r.wps[n-1], r.wps[0]); back > 1 {
		r.ret = true
		r.dist = append(r.dist, back)
	}
	if d := r.patrol(0).dur; time.Duration(d) >= cfg.Every {
		return nil, fmt.Errorf("robot %s: a patrol takes %v, longer than the interval %v", cfg.ID, time.Duration(d).Round(time.Second), cfg.Every)
	}
	return r, nil
}

// patrol returns the plan of patrol k: the legs with their times.
func (r *Robot) patrol(k int) patrolPlan {
	if r.plan.ok && r.plan.k == k {
		return r.plan
	}
	p := patrolPlan{k: k, ok: true}
	var t int64
	n := len(r.wps)
	for i := range n {
		if c := len(r.route.Waypoints[i].Checks); c > 0 {
			d := int64(float64(c) * r.cfg.CheckS * 1e9)
			p.legs = append(p.legs, leg{t0: t, t1: t + d, a: r.wps[i], b: r.wps[i], wp: i})
			t += d
			p.idle += float64(d) / 60e9
		}
		next := i + 1
		if next == n {
			if !r.ret {
				break
			}
			next = 0
		}
		v := clamp(r.cfg.SpeedMS*(1+0.05*gauss(r.seed, stRobotSpeed, int64(k)*1024+int64(i))), 1.0, 1.4)
		if r.cfg.SpeedMS < 1.0 || r.cfg.SpeedMS > 1.4 {
			v = r.cfg.SpeedMS
		}
		d := int64(r.dist[i] / v * 1e9)
		p.legs = append(p.legs, leg{t0: t, t1: t + d, walk: true, a: r.wps[i], b: r.wps[next], wp: next, speed: v})
		t += d
		p.walk += float64(d) / 60e9
	}
	p.dur = t
	r.plan = p
	return p
}

// batteryAt returns the battery memo of patrol k, computing forward from
// the last one remembered (or from patrol 0, full, when k lies before it).
func (r *Robot) batteryAt(k int) batteryMemo {
	if r.battery.k > k || r.battery.k < 0 {
		r.battery = r.runPatrol(0, 100)
	}
	every := float64(r.cfg.Every) / 60e9
	for r.battery.k < k {
		b := r.battery
		// Charge from the end of patrol b.k (or, if skipped, its start)
		// to the next start.
		idle := every - float64(b.dur)/60e9
		next := math.Min(100, b.endPc+idle*r.cfg.ChargePctMin)
		r.battery = r.runPatrol(b.k+1, next)
	}
	return r.battery
}

func (r *Robot) runPatrol(k int, start float64) batteryMemo {
	if start < r.cfg.MinStartPct {
		return batteryMemo{k: k, startPc: start, skipped: true, endPc: start}
	}
	p := r.patrol(k)
	end := math.Max(0, start-p.walk*r.cfg.WalkDrainPctMin-p.idle*r.cfg.IdleDrainPctMin)
	return batteryMemo{k: k, startPc: start, endPc: end, dur: p.dur}
}

// Status returns the robot's state at t.
func (r *Robot) Status(t time.Time) RobotStatus {
	st := RobotStatus{Time: t, Patrol: -1, Waypoint: r.route.Waypoints[0].ID}
	var pos robot.Point
	var heading float64
	if t.Before(r.cfg.Start) {
		pos = r.wps[0]
		st.State, st.BatteryPct = RobotDocked, 100
	} else {
		k := int(t.Sub(r.cfg.Start) / r.cfg.Every)
		since := int64(t.Sub(r.cfg.Start.Add(time.Duration(k) * r.cfg.Every)))
		b := r.batteryAt(k)
		st.Patrol = k
		if b.skipped || since >= b.dur {
			// At the dock, charging.
			pos = r.wps[0]
			from := b.dur
			if b.skipped {
				from = 0
			}
			st.BatteryPct = math.Min(100, b.endPc+float64(since-from)/60e9*r.cfg.ChargePctMin)
			st.State = RobotCharging
			if st.BatteryPct >= 100 {
				st.State = RobotDocked
			}
		} else {
			p := r.patrol(k)
			l := p.legs[len(p.legs)-1]
			for _, x := range p.legs {
				if since < x.t1 {
					l = x
					break
				}
			}
			// Battery: the drain of the legs before this one and of its
			// elapsed part.
			used := 0.0
			for _, x := range p.legs {
				end := min(x.t1, since)
				if end <= x.t0 {
					break
				}
				rate := r.cfg.IdleDrainPctMin
				if x.walk {
					rate = r.cfg.WalkDrainPctMin
				}
				used += float64(end-x.t0) / 60e9 * rate
			}
			st.BatteryPct = math.Max(0, b.startPc-used)
			st.Waypoint = r.route.Waypoints[l.wp].ID
			if l.walk {
				f := float64(since-l.t0) / float64(l.t1-l.t0)
				pos = robot.Point{Lat: l.a.Lat + (l.b.Lat-l.a.Lat)*f, Lon: l.a.Lon + (l.b.Lon-l.a.Lon)*f}
				dx, dy := metresBetween(l.a.Lat, l.a.Lon, l.b.Lat, l.b.Lon)
				heading = math.Mod(math.Atan2(dx, dy)/deg+360, 360)
				st.SpeedMS = l.speed
				st.State = RobotPatrolling
				if r.ret && l.wp == 0 {
					st.State = RobotReturning
				}
			} else {
				pos = l.a
				st.State = RobotChecking
				if l.wp > 0 {
					heading = r.legHeading(l.wp - 1)
				}
			}
			st.HeadingDeg = round(heading, 0.1)
		}
	}
	// Off-corridor fault: displaced to the left of the direction of
	// travel, easing in and out over 15 s.
	for _, f := range r.cfg.Faults.For(r.cfg.ID) {
		if f.Kind != FaultRobotOffCorridor || !f.Active(t) {
			continue
		}
		ramp := math.Min(t.Sub(f.Start).Seconds(), f.End().Sub(t).Seconds()) / 15
		off := f.OffsetM * smoothstep(ramp)
		left := (heading - 90) * deg
		pos.Lat, pos.Lon = offsetMetres(pos.Lat, pos.Lon, off*math.Sin(left), off*math.Cos(left))
	}
	// GPS error: a slowly wandering part and a white part.
	x := float64(t.UnixNano()) / 20e9
	ms := t.UnixNano() / 1e6
	ex := r.cfg.GPSSigmaM*noise(r.seed, stRobotGPSSlow, x) + 0.3*gauss(r.seed, stRobotGPSWhite, 2*ms)
	ey := r.cfg.GPSSigmaM*noise(r.seed^0x5a5a, stRobotGPSSlow, x) + 0.3*gauss(r.seed, stRobotGPSWhite, 2*ms+1)
	st.Lat, st.Lon = offsetMetres(pos.Lat, pos.Lon, ex, ey)
	st.Lat, st.Lon = round(st.Lat, 1e-7), round(st.Lon, 1e-7)
	st.BatteryPct = round(st.BatteryPct, 0.1)
	return st
}

// legHeading returns the heading of the walk from waypoint i to i+1.
func (r *Robot) legHeading(i int) float64 {
	a, b := r.wps[i], r.wps[(i+1)%len(r.wps)]
	dx, dy := metresBetween(a.Lat, a.Lon, b.Lat, b.Lon)
	return math.Mod(math.Atan2(dx, dy)/deg+360, 360)
}

// Fix returns the robot's reported position at t.
func (r *Robot) Fix(t time.Time) robot.Fix {
	s := r.Status(t)
	return robot.Fix{Time: t, Lat: s.Lat, Lon: s.Lon}
}

// PatrolStart returns when patrol k starts and whether the robot runs it
// (false when the battery was too low).
func (r *Robot) PatrolStart(k int) (time.Time, bool) {
	if k < 0 {
		return time.Time{}, false
	}
	return r.cfg.Start.Add(time.Duration(k) * r.cfg.Every), !r.batteryAt(k).skipped
}

// Checks returns the checks the robot performs in (from, to], in time
// order. Each check happens in the middle of its slot at the waypoint.
func (r *Robot) Checks(from, to time.Time) ([]CheckResult, error) {
	if !to.After(from) || to.Before(r.cfg.Start) {
		return nil, nil
	}
	k0 := 0
	if from.After(r.cfg.Start) {
		k0 = int(from.Sub(r.cfg.Start) / r.cfg.Every)
	}
	k1 := int(to.Sub(r.cfg.Start) / r.cfg.Every)
	var out []CheckResult
	for k := k0; k <= k1; k++ {
		start, ok := r.PatrolStart(k)
		if !ok {
			continue
		}
		p := r.patrol(k)
		for _, l := range p.legs {
			if l.walk {
				continue
			}
			wp := r.route.Waypoints[l.wp]
			for j, c := range wp.Checks {
				at := start.Add(time.Duration(l.t0 + int64((float64(j)+0.5)*r.cfg.CheckS*1e9)))
				if !at.After(from) || at.After(to) {
					continue
				}
				res, err := r.check(wp, c, at, k)
				if err != nil {
					return nil, err
				}
				out = append(out, res)
			}
		}
	}
	return out, nil
}

// CheckAt performs the route's check id at time at, whatever the robot is
// doing then: the load mode's way of reporting every check point at a
// fixed rate. Faults apply as in a patrol.
func (r *Robot) CheckAt(id string, at time.Time) (CheckResult, error) {
	c, wi, ok := r.route.CheckByID(id)
	if !ok {
		return CheckResult{}, fmt.Errorf("robot %s: route %s has no check %q", r.cfg.ID, r.route.ID, id)
	}
	k := 0
	if at.After(r.cfg.Start) {
		k = int(at.Sub(r.cfg.Start) / r.cfg.Every)
	}
	return r.check(r.route.Waypoints[wi], c, at, k)
}

// check performs one check at time at.
func (r *Robot) check(wp robot.Waypoint, c robot.Check, at time.Time, k int) (CheckResult, error) {
	exp := robot.Expect{State: "clear"}
	if c.Kind != robot.CheckEscapeRoute {
		exp = r.route.Schedules[c.Schedule].At(at, r.route.Location)
	}
	key := int64(k)*4096 + int64(len(c.ID))*31 + int64(SeedOf(0, c.ID)%1024)
	value := exp.State
	if c.Kind == robot.CheckHVACSetpoint {
		v := exp.Min + (exp.Max-exp.Min)*unit(r.seed, stRobotValue, key)
		value = strconv.FormatFloat(round(v, 0.5), 'f', -1, 64)
	}
	var fault *Fault
	for _, id := range []string{c.ID, c.Asset} {
		for _, f := range r.cfg.Faults.For(id) {
			if f.Kind == FaultCheckFails && f.Active(at) {
				f := f
				fault = &f
			}
		}
	}
	res := CheckResult{Kind: c.Kind, Asset: c.Asset,
		Observation: robot.Observation{Time: at, Check: c.ID, Waypoint: wp.ID}}
	if fault != nil {
		switch {
		case fault.Mode == "unreadable":
			value = "unreadable"
		case c.Kind == robot.CheckHVACSetpoint:
			value = strconv.FormatFloat(round(exp.Max+3.5, 0.5), 'f', -1, 64)
		case c.Kind == robot.CheckEscapeRoute:
			value = "blocked"
			res.Observation.Note = "boxes in the escape route"
		case value == "up":
			value = "down"
		case value == "down":
			value = "up"
		case value == "on":
			value = "off"
		default:
			value = "on"
		}
		pic, err := CheckPicture(c.Kind, c.Asset, value, exp.String(), at)
		if err != nil {
			return CheckResult{}, err
		}
		res.Picture = pic
		res.Observation.Picture = PictureRef(pic)
	}
	res.Observation.Value = value
	return res, nil
}
