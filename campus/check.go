package campus

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
)

// ErrEventMismatch is wrapped by Check's errors: the event is valid on its
// own but does not agree with the campus model.
var ErrEventMismatch = errors.New("event does not match the campus model")

func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEventMismatch, fmt.Sprintf(format, args...))
}

// Check verifies that event e, published on topic t, is valid (Validate)
// and agrees with the model: the topic is the asset's (domain, site, kind,
// id; "reading" for meters, "measurement" for other assets), every point
// exists, belongs to the asset and is given in its unit, quantity and
// OBIS code; a device's source names its DevEUI, network server and
// application; a robot's check names a check of its route. Tests of every
// component use it on what they publish.
func (m *Model) Check(t event.Topic, e event.Event) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	k, ok := t.EventKind()
	if !ok || k != e.Kind() {
		return mismatch("topic %s does not carry %s events", t, e.Kind())
	}
	h := e.Head()
	a, ok := m.assets[t.Asset]
	if !ok {
		return mismatch("topic %s: no asset %q in the campus model", t, t.Asset)
	}
	if h.Asset != a.ID {
		return mismatch("topic %s is about %s, the event about %s", t, a.ID, h.Asset)
	}
	if t.Domain != a.Domain || t.Site != a.Site || t.Kind != a.Kind {
		return mismatch("topic %s: asset %s publishes under %s", t, a.ID, a.Topic(t.Event))
	}
	if k == event.KindMeasurement {
		want := event.EventMeasurement
		if a.Kind == event.AssetMeter {
			want = event.EventReading
		}
		if t.Event != want {
			return mismatch("topic %s: a %s's values are published as %q", t, a.Kind, want)
		}
	}
	if err := m.checkSource(a, h.Source); err != nil {
		return err
	}
	switch e := e.(type) {
	case *event.Measurement:
		for i := range e.Values {
			if err := m.checkValue(a, &e.Values[i], fmt.Sprintf("values[%d]", i)); err != nil {
				return err
			}
		}
	case *event.Status:
		if a.Kind != event.AssetDevice && a.Kind != event.AssetGateway && a.Kind != event.AssetRobot {
			return mismatch("%s %s has no status", a.Kind, a.ID)
		}
		if e.Battery != nil {
			return m.checkValue(a, e.Battery, "battery")
		}
	case *event.Uplink:
		if a.Kind != event.AssetDevice {
			return mismatch("%s %s sends no uplinks", a.Kind, a.ID)
		}
		for _, id := range e.Points {
			if p, ok := m.points[id]; !ok || p.Asset != a.ID {
				return mismatch("points: %s is not a point of %s", id, a.ID)
			}
		}
	case *event.Position:
		if a.Kind != event.AssetRobot {
			return mismatch("%s %s has no position events", a.Kind, a.ID)
		}
		if p, ok := m.points[e.Point]; !ok || p.Asset != a.ID || p.Quantity != "location" {
			return mismatch("point: %s is not %s's position point", e.Point, a.ID)
		}
		r, _ := m.Robot(a.ID)
		if e.Route != "" && e.Route != r.Route.ID {
			return mismatch("route: %s follows route %s, not %s", a.ID, r.Route.ID, e.Route)
		}
		if e.Battery != nil {
			return m.checkValue(a, e.Battery, "battery")
		}
	case *event.Check:
		r, ok := m.Robot(a.ID)
		if !ok {
			return mismatch("%s %s makes no checks", a.Kind, a.ID)
		}
		if e.Route != r.Route.ID {
			return mismatch("route: %s follows route %s, not %s", a.ID, r.Route.ID, e.Route)
		}
		c, wi, ok := r.Route.CheckByID(e.Check)
		if !ok {
			return mismatch("check: route %s has no check %q", r.Route.ID, e.Check)
		}
		if w := r.Route.Waypoints[wi].ID; e.Waypoint != w {
			return mismatch("waypoint: check %s is at waypoint %s, not %s", c.ID, w, e.Waypoint)
		}
		if e.CheckKind != string(c.Kind) || e.Target != c.Asset {
			return mismatch("check %s is a %s check of %s, not a %s check of %s", c.ID, c.Kind, c.Asset, e.CheckKind, e.Target)
		}
		if p, ok := m.points[e.Point]; !ok || p.Asset != a.ID || p.Check != c.ID {
			return mismatch("point: %s is not the point of check %s", e.Point, c.ID)
		}
	case *event.Picture:
		if r, ok := m.Robot(a.ID); ok && e.Check != "" {
			if _, _, ok := r.Route.CheckByID(e.Check); !ok {
				return mismatch("check: route %s has no check %q", r.Route.ID, e.Check)
			}
		}
	}
	return nil
}

func (m *Model) checkSource(a *Asset, s event.Source) error {
	d, isDevice := m.Device(a.ID)
	if s.Type != event.SourceLoRaWAN {
		if s.Type == event.SourceBuilding {
			if g, ok := m.Gateway(s.Gateway); !ok || g.GatewayKind != GatewayBuilding {
				return mismatch("source.gateway: %q is not a building gateway of the campus model", s.Gateway)
			}
		}
		return nil
	}
	if !isDevice {
		return mismatch("source: %s %s is not a LoRaWAN device", a.Kind, a.ID)
	}
	if s.DevEUI != d.DevEUI {
		return mismatch("source.dev_eui: device %s has DevEUI %s, not %s", d.ID, d.DevEUI, s.DevEUI)
	}
	app := m.applications[d.Application]
	if s.NetworkServer != string(app.Server) || s.Application != app.ApplicationID {
		return mismatch("source: device %s is in %s application %s, not %s application %s", d.ID, app.Server, app.ApplicationID, s.NetworkServer, s.Application)
	}
	return nil
}

func (m *Model) checkValue(a *Asset, v *event.Value, field string) error {
	p, ok := m.points[v.Point]
	if !ok {
		return mismatch("%s.point: no point %s in the campus model", field, v.Point)
	}
	if p.Asset != a.ID {
		return mismatch("%s.point: %s belongs to %s, not %s", field, v.Point, p.Asset, a.ID)
	}
	if v.Unit != p.Unit {
		return mismatch("%s.unit: point %s is in %s, not %s", field, p.ID, p.Unit, v.Unit)
	}
	if v.Quantity != "" && v.Quantity != p.Quantity {
		return mismatch("%s.quantity: point %s measures %s, not %s", field, p.ID, p.Quantity, v.Quantity)
	}
	if p.Register != nil {
		if v.OBIS != "" && v.OBIS != p.Register.OBIS.String() {
			return mismatch("%s.obis: point %s is register %s, not %s", field, p.ID, p.Register.OBIS, v.OBIS)
		}
	} else if v.OBIS != "" {
		return mismatch("%s.obis: point %s is not a meter register", field, p.ID)
	}
	return nil
}

// DeviceValues turns a device codec's decoded data object into the values
// of the device's points: each field of the device type present in data
// becomes a Value with the point's id, quantity and unit. Members the type
// does not define are returned by name in unknown, sorted (a codec may add
// diagnostics); a field whose point was removed in the campus file is
// skipped. A field that is not a finite number is an error.
func (m *Model) DeviceValues(d *Device, data map[string]any) (values []event.Value, unknown []string, err error) {
	for _, f := range d.Type.Fields {
		raw, ok := data[f.Field]
		if !ok {
			continue
		}
		p, ok := m.points[d.ID+"/"+f.Key]
		if !ok {
			continue
		}
		x, ok := jsonNumber(raw)
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, nil, fmt.Errorf("device %s: decoded field %s is %v, not a finite number", d.ID, f.Field, raw)
		}
		values = append(values, event.Value{Point: p.ID, Quantity: p.Quantity, Value: f.FromCodec(x), Unit: p.Unit})
	}
	for name := range data {
		if _, ok := d.Type.Field(name); !ok {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return values, unknown, nil
}

// MeterReadings turns a meter's reading event into package energy's
// readings: one per value, keyed by the meter and the register's OBIS
// code, at the value's time (else the event's), in the register's unit.
// Every value must be a register of the event's meter.
func (m *Model) MeterReadings(e *event.Measurement) ([]energy.Reading, error) {
	mt, ok := m.Meter(e.Asset)
	if !ok {
		return nil, mismatch("no meter %q in the campus model", e.Asset)
	}
	out := make([]energy.Reading, 0, len(e.Values))
	for i := range e.Values {
		v := &e.Values[i]
		if err := m.checkValue(&mt.Asset, v, fmt.Sprintf("values[%d]", i)); err != nil {
			return nil, err
		}
		p := m.points[v.Point]
		if p.Register == nil {
			return nil, mismatch("values[%d].point: %s is not a register", i, v.Point)
		}
		t := e.Time
		if v.Time != nil {
			t = *v.Time
		}
		out = append(out, energy.Reading{Time: t, Meter: mt.ID, OBIS: p.Register.OBIS, Value: v.Value})
	}
	return out, nil
}

func jsonNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float32:
		return float64(v), true
	}
	return number(v)
}
