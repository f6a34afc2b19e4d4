package sim

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/event"
)

// simGateway publishes a building's events: its building gateway, or the
// simulator for a building without one (status false).
type simGateway struct {
	id     string
	status bool // a building gateway of the campus, with a status topic
	topic  event.Topic
	from   *Publisher
	src    event.Source
	down   bool
}

// regKind says how a register's value is made.
type regKind uint8

const (
	regRegister regKind = iota // a model meter's cumulative register
	regPower                   // instantaneous power (1-b:1.7.0)
	regDemand                  // power averaged since the last reading (1-b:1.29.0)
)

// simRegister is one register of a meter.
type simRegister struct {
	point string
	obis  string
	unit  event.Unit
	m     *Meter
	scale float64 // campus units per model unit
	res   float64 // resolution in the campus unit
	kind  regKind
	share float64
}

// simMeter is one meter of one copy.
type simMeter struct {
	id    string
	topic event.Topic
	gw    *simGateway
	b     *Building
	regs  []simRegister

	importM      *Meter // for power registers
	prevImport   float64
	prevImportAt time.Time
	prev         time.Time // last reading's time

	reorder Reorder[*emission]
}

// roomPoint is one point of a room with its on-change state.
type roomPoint struct {
	id       string
	unit     event.Unit
	get      func(*RoomState) float64
	thr, res float64
	last     float64
	has      bool
}

// simRoom is one room of one copy.
type simRoom struct {
	id       string
	topic    event.Topic
	gw       *simGateway
	r        *Room
	points   []roomPoint
	lastSnap time.Time
	reorder  Reorder[*emission]
	values   []event.Value // scratch
	res      []float64     // scratch: the values' resolutions
}

// gatewayOnline publishes a building gateway's online status as it
// connects at t, with its will (offline, disconnected, of the same time).
func (p *Player) gatewayOnline(ctx context.Context, g *simGateway, t time.Time) error {
	t = t.In(p.loc)
	will, err := cityMessage(g.topic, &event.Status{Header: event.Header{Time: t, Asset: g.id, Source: g.src}, State: event.Offline, Reason: event.ReasonDisconnected})
	if err != nil {
		return err
	}
	g.from.Will = &will
	m, err := cityMessage(g.topic, &event.Status{Header: event.Header{Time: t, Asset: g.id, Source: g.src}, State: event.Online, Reason: event.ReasonConnected})
	if err != nil {
		return err
	}
	p.publish(ctx, p.cfg.Outputs.Building, g.from, m, &p.stats.gwStatus)
	return nil
}

// emitGateway watches a building gateway for outage faults: it drops the
// gateway's connection (the broker publishes its will) when one starts and
// connects it again when it ends.
func (p *Player) emitGateway(ctx context.Context, g *simGateway, due Due) error {
	down := p.gatewayDown(g.id, due.At)
	switch {
	case down && !g.down:
		g.down = true
		if out := p.cfg.Outputs.Building; out != nil {
			if err := out.Drop(ctx, g.from); err != nil {
				p.log.Warn("sim: dropping a gateway's connection failed", "gateway", g.id, "err", err)
			}
			p.stats.gwStatus.Add(1)
		}
	case !down && g.down:
		g.down = false
		return p.gatewayOnline(ctx, g, due.At)
	}
	return nil
}

// lostReason says why a building gateway's message was dropped.
func (p *Player) lostReason(g *simGateway, t time.Time) string {
	if p.gatewayDown(g.id, t) {
		return "gateway_outage"
	}
	return "silent"
}

// emitMeter publishes a meter's reading: all its registers in one event,
// read on the quarter hour (the slot; in load mode the due time). A meter
// exchange since the last reading is conveyed first: the old meter's
// final reading at the exchange, the building gateway's status with the
// exchange record, and the new meter's start reading a second later.
func (p *Player) emitMeter(ctx context.Context, sm *simMeter, due Due) error {
	t := due.At
	if p.cfg.LoadRate == 0 {
		iv := int64(p.cfg.MeterEvery)
		t = time.Unix(0, t.UnixNano()/iv*iv)
	}
	t = t.In(p.loc)
	e := &emission{out: p.cfg.Outputs.Building, from: sm.gw.from, counter: &p.stats.readings}
	var truth []Truth
	if !sm.prev.IsZero() {
		var err error
		truth, err = p.meterExchanges(sm, e, sm.prev, t)
		if err != nil {
			return err
		}
	}
	sm.prev = t
	values := make([]event.Value, 0, len(sm.regs))
	var imp float64
	if sm.importM != nil {
		imp = sm.importM.Read(t).Value
	}
	for _, r := range sm.regs {
		var v float64
		switch r.kind {
		case regRegister:
			v = r.m.Read(t).Value * r.scale
		case regPower:
			v = sm.b.Loads(t).ImportKW * r.share * r.scale
		case regDemand:
			if sm.importM != nil && !sm.prevImportAt.IsZero() && t.After(sm.prevImportAt) {
				de := imp - sm.prevImport
				if de < 0 {
					de += sm.importM.max
				}
				v = de / t.Sub(sm.prevImportAt).Hours() * r.scale
			} else {
				v = sm.b.Loads(t).ImportKW * r.share * r.scale
			}
		}
		v = roundTo(v, r.res)
		values = append(values, event.Value{Point: r.point, Value: v, Unit: r.unit, OBIS: r.obis})
		truth = append(truth, Truth{Time: t, Point: r.point, Value: ptr(v), Unit: r.unit, Resolution: r.res, Topic: sm.topic.String(), Output: "building"})
	}
	if sm.importM != nil {
		sm.prevImport, sm.prevImportAt = imp, t
	}
	m, err := cityMessage(sm.topic, &event.Measurement{Header: event.Header{Time: t, Asset: sm.id, Source: sm.gw.src}, Values: values})
	if err != nil {
		return err
	}
	e.msgs = append(e.msgs, m)
	e.counters = append(e.counters, nil)
	d := p.cfg.Faults.Delivery(sm.id, sm.gw.id, t, due.Seq)
	p.deliver(ctx, &sm.reorder, d, p.lostReason(sm.gw, t), e, truth)
	return nil
}

// meterExchanges adds to e the messages that convey the meter exchanges in
// (from, to], and returns their truth.
func (p *Player) meterExchanges(sm *simMeter, e *emission, from, to time.Time) ([]Truth, error) {
	type exch struct {
		at               time.Time
		oldVals, newVals []event.Value
		record           []string
	}
	var list []*exch
	for _, r := range sm.regs {
		if r.m == nil {
			continue
		}
		for _, ev := range r.m.Events(from, to) {
			if ev.Exchange == nil {
				continue
			}
			var x *exch
			for _, y := range list {
				if y.at.Equal(ev.Time) {
					x = y
				}
			}
			if x == nil {
				x = &exch{at: ev.Time}
				list = append(list, x)
			}
			oldV, newV := roundTo(ev.Exchange.OldFinal*r.scale, r.res), roundTo(ev.Exchange.NewStart*r.scale, r.res)
			x.oldVals = append(x.oldVals, event.Value{Point: r.point, Value: oldV, Unit: r.unit, OBIS: r.obis})
			x.newVals = append(x.newVals, event.Value{Point: r.point, Value: newV, Unit: r.unit, OBIS: r.obis})
			x.record = append(x.record, fmt.Sprintf("%s old_final=%s new_start=%s", r.obis, strconv.FormatFloat(oldV, 'f', -1, 64), strconv.FormatFloat(newV, 'f', -1, 64)))
		}
	}
	var truth []Truth
	for _, x := range list {
		at := x.at.In(p.loc)
		m1, err := cityMessage(sm.topic, &event.Measurement{Header: event.Header{Time: at, Asset: sm.id, Source: sm.gw.src}, Values: x.oldVals})
		if err != nil {
			return nil, err
		}
		e.msgs, e.counters = append(e.msgs, m1), append(e.counters, nil)
		if sm.gw.status {
			st := &event.Status{Header: event.Header{Time: at, Asset: sm.gw.id, Source: sm.gw.src}, State: event.Online, Reason: ReasonMeterExchange,
				Detail: ExchangeDetail(sm.id, at, x.record)}
			m2, err := cityMessage(sm.gw.topic, st)
			if err != nil {
				return nil, err
			}
			e.msgs, e.counters = append(e.msgs, m2), append(e.counters, &p.stats.gwStatus)
		}
		at2 := at.Add(time.Second)
		m3, err := cityMessage(sm.topic, &event.Measurement{Header: event.Header{Time: at2, Asset: sm.id, Source: sm.gw.src}, Values: x.newVals})
		if err != nil {
			return nil, err
		}
		e.msgs, e.counters = append(e.msgs, m3), append(e.counters, nil)
		for i, v := range x.oldVals {
			truth = append(truth,
				Truth{Time: at, Point: v.Point, Value: ptr(v.Value), Unit: v.Unit, Topic: sm.topic.String(), Output: "building", Observed: "meter_exchange_old_final"},
				Truth{Time: at2, Point: v.Point, Value: ptr(x.newVals[i].Value), Unit: v.Unit, Topic: sm.topic.String(), Output: "building", Observed: "meter_exchange_new_start"})
		}
	}
	return truth, nil
}

// ReasonMeterExchange is the reason of the building gateway status event
// that carries a meter exchange record.
const ReasonMeterExchange = "meter_exchange"

// ExchangeDetail writes the detail of a meter exchange status event:
//
//	meter el-b01-main exchanged at 2026-05-12T09:40:00+02:00: 1-0:1.8.0 old_final=13338.77 new_start=0; 1-0:2.8.0 ...
//
// ParseExchangeDetail reads it back.
func ExchangeDetail(meter string, at time.Time, registers []string) string {
	return "meter " + meter + " exchanged at " + at.Format(time.RFC3339) + ": " + strings.Join(registers, "; ")
}

// ExchangeRecord is one register's exchange record.
type ExchangeRecord struct {
	OBIS               string
	OldFinal, NewStart float64
}

// ParseExchangeDetail reads the detail of a meter exchange status event.
func ParseExchangeDetail(s string) (meter string, at time.Time, regs []ExchangeRecord, err error) {
	rest, ok := strings.CutPrefix(s, "meter ")
	if !ok {
		return "", time.Time{}, nil, fmt.Errorf("meter exchange %q: does not start with \"meter \"", s)
	}
	meter, rest, ok = strings.Cut(rest, " exchanged at ")
	if !ok {
		return "", time.Time{}, nil, fmt.Errorf("meter exchange %q: no \" exchanged at \"", s)
	}
	ts, rest, ok := strings.Cut(rest, ": ")
	if !ok {
		return "", time.Time{}, nil, fmt.Errorf("meter exchange %q: no registers", s)
	}
	if at, err = time.Parse(time.RFC3339, ts); err != nil {
		return "", time.Time{}, nil, fmt.Errorf("meter exchange %q: %w", s, err)
	}
	for r := range strings.SplitSeq(rest, "; ") {
		f := strings.Fields(r)
		if len(f) != 3 {
			return "", time.Time{}, nil, fmt.Errorf("meter exchange %q: register %q: want OBIS old_final=X new_start=Y", s, r)
		}
		rec := ExchangeRecord{OBIS: f[0]}
		for i, name := range []string{"old_final=", "new_start="} {
			v, ok := strings.CutPrefix(f[i+1], name)
			x, perr := strconv.ParseFloat(v, 64)
			if !ok || perr != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return "", time.Time{}, nil, fmt.Errorf("meter exchange %q: %q is not %sNUMBER", s, f[i+1], name)
			}
			if i == 0 {
				rec.OldFinal = x
			} else {
				rec.NewStart = x
			}
		}
		regs = append(regs, rec)
	}
	return meter, at, regs, nil
}

// emitRoom scans a room: it sends the points that changed by their
// threshold since they were last sent, or all of them when the last
// snapshot is RoomSnapshot old (always, in load mode).
func (p *Player) emitRoom(ctx context.Context, sr *simRoom, due Due) error {
	t := due.At.Truncate(time.Millisecond).In(p.loc)
	st := sr.r.At(t)
	snapshot := p.cfg.LoadRate > 0 || sr.lastSnap.IsZero() || t.Sub(sr.lastSnap) >= p.cfg.RoomSnapshot
	sr.values, sr.res = sr.values[:0], sr.res[:0]
	for i := range sr.points {
		pt := &sr.points[i]
		v := roundTo(pt.get(&st), pt.res)
		if !snapshot && pt.has && (v == pt.last || math.Abs(v-pt.last) < pt.thr) {
			continue
		}
		pt.last, pt.has = v, true
		sr.values = append(sr.values, event.Value{Point: pt.id, Value: v, Unit: pt.unit})
		sr.res = append(sr.res, pt.res)
	}
	if snapshot {
		sr.lastSnap = t
	}
	if len(sr.values) == 0 {
		return nil
	}
	m, err := cityMessage(sr.topic, &event.Measurement{Header: event.Header{Time: t, Asset: sr.id, Source: sr.gw.src}, Values: sr.values})
	if err != nil {
		return err
	}
	truth := make([]Truth, len(sr.values))
	for i, v := range sr.values {
		truth[i] = Truth{Time: t, Point: v.Point, Value: ptr(v.Value), Unit: v.Unit, Resolution: sr.res[i], Topic: sr.topic.String(), Output: "building"}
	}
	e := &emission{out: p.cfg.Outputs.Building, from: sr.gw.from, msgs: []Message{m}, counter: &p.stats.roomEvents}
	d := p.cfg.Faults.Delivery(sr.id, sr.gw.id, t, due.Seq)
	p.deliver(ctx, &sr.reorder, d, p.lostReason(sr.gw, t), e, truth)
	return nil
}
