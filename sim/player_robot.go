package sim

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/robot"
)

// simRobot is one robot of one copy.
type simRobot struct {
	id    string
	r     *Robot
	route *robot.Route
	from  *Publisher
	src   event.Source

	topicPos, topicStatus, topicCheck, topicPicture event.Topic

	posPoint    string
	batPoint    string
	batUnit     event.Unit
	checkPoints map[string]string // check id → point id

	lastState    RobotState
	lastT        time.Time
	lastWaypoint string
	reorder      Reorder[*emission]
}

// gpsAccuracyM is the horizontal accuracy the robot reports (about its
// simulated GPS error: 0.8 m wandering plus 0.3 m white, per axis).
const gpsAccuracyM = 1.2

// battery returns the robot's battery point's value, if it has one.
func (r *simRobot) battery(pct float64) *event.Value {
	if r.batPoint == "" {
		return nil
	}
	return &event.Value{Point: r.batPoint, Value: roundTo(pct, 0.1), Unit: r.batUnit}
}

// robotOnline publishes a robot's online status as it starts, with its
// will.
func (p *Player) robotOnline(ctx context.Context, r *simRobot, t time.Time) error {
	s := r.r.Status(t)
	r.lastState = s.State
	will, err := cityMessage(r.topicStatus, &event.Status{Header: event.Header{Time: t, Asset: r.id, Source: r.src}, State: event.Offline, Reason: event.ReasonDisconnected})
	if err != nil {
		return err
	}
	r.from.Will = &will
	m, err := cityMessage(r.topicStatus, &event.Status{Header: event.Header{Time: t, Asset: r.id, Source: r.src}, State: event.Online,
		Reason: event.ReasonStarted, Battery: r.battery(s.BatteryPct)})
	if err != nil {
		return err
	}
	p.publish(ctx, p.cfg.Outputs.Robot, r.from, m, &p.stats.robotStatus)
	return nil
}

// emitRobot publishes the robot's position, a status when it starts a
// patrol or docks, and the checks it made since its last position.
func (p *Player) emitRobot(ctx context.Context, r *simRobot, due Due) error {
	t := due.At
	s := r.r.Status(t)
	switch s.State {
	case RobotChecking:
		r.lastWaypoint = s.Waypoint
	case RobotDocked, RobotCharging:
		r.lastWaypoint = r.route.Waypoints[0].ID
	}
	if r.lastState != "" && s.State != r.lastState {
		reason := ""
		switch {
		case s.State == RobotPatrolling && (r.lastState == RobotDocked || r.lastState == RobotCharging):
			reason = event.ReasonRouteStarted
		case (s.State == RobotDocked || s.State == RobotCharging) && r.lastState != RobotDocked && r.lastState != RobotCharging:
			reason = event.ReasonDocked
		}
		if reason != "" {
			m, err := cityMessage(r.topicStatus, &event.Status{Header: event.Header{Time: t, Asset: r.id, Source: r.src}, State: event.Online,
				Reason: reason, Battery: r.battery(s.BatteryPct)})
			if err != nil {
				return err
			}
			p.publish(ctx, p.cfg.Outputs.Robot, r.from, m, &p.stats.robotStatus)
		}
	}
	r.lastState = s.State
	pos := &event.Position{Header: event.Header{Time: t, Asset: r.id, Source: r.src}, Point: r.posPoint, Lat: s.Lat, Lon: s.Lon,
		AccuracyM: ptr(gpsAccuracyM), SpeedMPS: ptr(roundTo(s.SpeedMS, 0.01)), Route: r.route.ID, Waypoint: r.lastWaypoint, Battery: r.battery(s.BatteryPct)}
	if s.SpeedMS > 0 {
		h := math.Mod(roundTo(s.HeadingDeg, 0.1), 360)
		if h < 0 {
			h += 360
		}
		pos.HeadingDeg = ptr(h)
	}
	m, err := cityMessage(r.topicPos, pos)
	if err != nil {
		return err
	}
	truth := []Truth{{Time: t, Point: r.posPoint, Lat: ptr(s.Lat), Lon: ptr(s.Lon), Topic: r.topicPos.String(), Output: "robot"}}
	if b := pos.Battery; b != nil {
		truth = append(truth, Truth{Time: t, Point: b.Point, Value: ptr(b.Value), Unit: b.Unit, Resolution: 0.1, Topic: r.topicPos.String(), Output: "robot"})
	}
	e := &emission{out: p.cfg.Outputs.Robot, from: r.from, msgs: []Message{m}, counter: &p.stats.positions}
	d := p.cfg.Faults.Delivery(r.id, "", t, due.Seq)
	p.deliver(ctx, &r.reorder, d, "silent", e, truth)
	if p.cfg.LoadRate > 0 {
		r.lastT = t
		return nil
	}
	from := r.lastT
	if from.IsZero() {
		from = t.Add(-p.cfg.RobotEvery)
	}
	r.lastT = t
	results, err := r.r.Checks(from, t)
	if err != nil {
		return err
	}
	for i := range results {
		if err := p.publishCheck(ctx, r, &results[i]); err != nil {
			return err
		}
	}
	return nil
}

// emitRobotCheck performs and publishes one check (load mode).
func (p *Player) emitRobotCheck(ctx context.Context, c robotCheck, due Due) error {
	res, err := c.robot.r.CheckAt(c.check, due.At)
	if err != nil {
		return err
	}
	return p.publishCheck(ctx, c.robot, &res)
}

// publishCheck publishes a check result: its picture first, if it took
// one, then the check, evaluated against the route's schedules.
func (p *Player) publishCheck(ctx context.Context, r *simRobot, res *CheckResult) error {
	o := res.Observation
	point, ok := r.checkPoints[o.Check]
	if !ok {
		return nil // the campus removed the check's point
	}
	c := &event.Check{Header: event.Header{Time: o.Time, Asset: r.id, Source: r.src}, Point: point, Route: r.route.ID,
		Waypoint: o.Waypoint, Check: o.Check, CheckKind: string(res.Kind), Target: res.Asset, Observed: o.Value, Note: o.Note}
	if res.Kind == robot.CheckHVACSetpoint {
		if _, err := strconv.ParseFloat(o.Value, 64); err == nil {
			c.Unit = event.Celsius
		}
	}
	if ev, err := robot.Evaluate(r.route, o); err == nil {
		c.Expected, c.OK = ev.Expected, ptr(ev.OK)
		if a := ev.Anomaly; a != nil {
			c.Anomaly = &event.Anomaly{Kind: string(a.Kind), Severity: string(a.Severity), Reason: a.Reason}
		}
	} else {
		p.log.Warn("sim: a check could not be evaluated", "robot", r.id, "check", o.Check, "err", err)
	}
	if res.Picture != nil {
		url, err := p.cfg.Pictures.Put(ctx, o.Picture, "image/png", res.Picture)
		if err != nil {
			p.log.Warn("sim: storing a picture failed; the check goes without it", "robot", r.id, "check", o.Check, "err", err)
		} else {
			pic := &event.Picture{Header: event.Header{Time: o.Time, Asset: r.id, Source: r.src}, Hash: o.Picture, ContentType: "image/png",
				Size: int64(len(res.Picture)), URL: url, Width: PictureWidth, Height: PictureHeight, Check: o.Check}
			m, err := cityMessage(r.topicPicture, pic)
			if err != nil {
				return err
			}
			p.publish(ctx, p.cfg.Outputs.Robot, r.from, m, &p.stats.pictures)
			c.Picture = o.Picture
		}
	}
	m, err := cityMessage(r.topicCheck, c)
	if err != nil {
		return err
	}
	tr := Truth{Time: o.Time, Point: point, Observed: o.Value, Topic: r.topicCheck.String(), Output: "robot", Published: 1}
	switch o.Value {
	case "up", "clear", "on":
		tr.Value = ptr(1.0)
	case "down", "blocked", "off":
		tr.Value = ptr(0.0)
	default:
		if v, err := strconv.ParseFloat(o.Value, 64); err == nil {
			tr.Value, tr.Unit = ptr(v), event.Celsius
		}
	}
	p.record(&tr)
	p.publish(ctx, p.cfg.Outputs.Robot, r.from, m, &p.stats.checks)
	return nil
}
