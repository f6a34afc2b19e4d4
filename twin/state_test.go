package twin

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
)

const smallCampus = "../examples/campus/small/campus.yaml"

var (
	smallOnce  sync.Once
	smallModel *campus.Model
	smallErr   error
)

// small loads the small example campus once.
func small(t testing.TB) *campus.Model {
	t.Helper()
	smallOnce.Do(func() { smallModel, smallErr = campus.Load(smallCampus) })
	if smallErr != nil {
		t.Fatal(smallErr)
	}
	return smallModel
}

var (
	t0       = time.Date(2026, 5, 12, 9, 30, 0, 0, time.UTC)
	building = event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"}
)

// msg makes the bus message of an event as a publisher would, and reads it
// back as the twin does.
func msg(t *testing.T, topic event.Topic, e event.Event) (event.Topic, event.Event) {
	t.Helper()
	m, err := event.NewMessage(topic, e)
	if err != nil {
		t.Fatal(err)
	}
	tp, ev, err := event.ReadMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return tp, ev
}

func roomTopic(room string) event.Topic {
	return event.NewTopic(event.DomainBuilding, "campus", event.AssetRoom, room, event.EventMeasurement)
}

func TestStateApply(t *testing.T) {
	m := small(t)
	tm := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	val := func(p string, v float64, u event.Unit) event.Value { return event.Value{Point: p, Value: v, Unit: u} }
	type step struct {
		topic   event.Topic
		ev      event.Event
		raw     bool // apply as is, without the event package's validation
		wantErr error
	}
	tests := []struct {
		name  string
		steps []step
		point string
		want  float64
		text  string
		stale uint64
	}{
		{name: "one value", point: "b01-0.01/temperature", want: 21.8, steps: []step{
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(0), building, val("b01-0.01/temperature", 21.8, event.Celsius))},
		}},
		{name: "newer replaces", point: "b01-0.01/temperature", want: 22.4, steps: []step{
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(0), building, val("b01-0.01/temperature", 21.8, event.Celsius))},
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(5), building, val("b01-0.01/temperature", 22.4, event.Celsius))},
		}},
		{name: "out of order keeps the newest", point: "b01-0.01/temperature", want: 22.4, stale: 1, steps: []step{
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(5), building, val("b01-0.01/temperature", 22.4, event.Celsius))},
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(0), building, val("b01-0.01/temperature", 21.8, event.Celsius))},
		}},
		{name: "value time wins over event time", point: "b01-0.01/temperature", want: 22.0, stale: 1, steps: []step{
			{topic: roomTopic("b01-0.01"), ev: func() event.Event {
				early, late := tm(-10), tm(-5)
				a, b := val("b01-0.01/temperature", 22.0, event.Celsius), val("b01-0.01/temperature", 21.0, event.Celsius)
				a.Time, b.Time = &late, &early
				return event.NewMeasurement("b01-0.01", tm(0), building, a, b)
			}()},
		}},
		{name: "unknown asset", point: "b01-0.01/temperature", steps: []step{
			{topic: roomTopic("b99-9.99"), ev: event.NewMeasurement("b99-9.99", tm(0), building, val("b99-9.99/temperature", 21.8, event.Celsius)), wantErr: ErrUnknownAsset},
		}},
		{name: "asset of another kind", point: "b01-0.01/temperature", steps: []step{
			{topic: event.NewTopic(event.DomainBuilding, "campus", event.AssetDevice, "b01-0.01", event.EventMeasurement),
				ev: event.NewMeasurement("b01-0.01", tm(0), building, val("b01-0.01/temperature", 21.8, event.Celsius)), wantErr: ErrUnknownAsset},
		}},
		{name: "point of another asset", point: "b01-0.02/temperature", steps: []step{
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(0), building, val("b01-0.02/temperature", 21.8, event.Celsius)), wantErr: ErrUnknownPoint},
		}},
		{name: "wrong unit", point: "b01-0.01/temperature", steps: []step{
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(0), building, val("b01-0.01/temperature", 70, event.Kelvin)), wantErr: ErrBadValue},
		}},
		{name: "NaN", point: "b01-0.01/temperature", want: 21.8, steps: []step{
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(0), building, val("b01-0.01/temperature", 21.8, event.Celsius))},
			{topic: roomTopic("b01-0.01"), raw: true, ev: event.NewMeasurement("b01-0.01", tm(5), building, val("b01-0.01/temperature", math.NaN(), event.Celsius)), wantErr: ErrBadValue},
		}},
		{name: "good values beside a bad one", point: "b01-0.01/relativeHumidity", want: 48, steps: []step{
			{topic: roomTopic("b01-0.01"), ev: event.NewMeasurement("b01-0.01", tm(0), building,
				val("b01-0.01/nosuch", 1, event.Celsius), val("b01-0.01/relativeHumidity", 48, event.Percent)), wantErr: ErrUnknownPoint},
		}},
		{name: "meter reading", point: "el-b01-main/1-0:1.8.0", want: 123456.7, steps: []step{
			{topic: event.NewTopic(event.DomainEnergy, "campus", event.AssetMeter, "el-b01-main", event.EventReading),
				ev: event.NewMeasurement("el-b01-main", tm(0), building, event.Value{Point: "el-b01-main/1-0:1.8.0", Value: 123456.7, Unit: event.KilowattHour, OBIS: "1-0:1.8.0"})},
		}},
		{name: "device battery from a status", point: "soil-probe-01/battery", want: 3.58, steps: []step{
			{topic: event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-01", event.EventStatus),
				ev: func() event.Event {
					s := event.NewStatus("soil-probe-01", tm(0), event.Source{Type: event.SourceService, Service: "citymesh-connector"}, event.Online, event.ReasonUplink)
					s.Battery = &event.Value{Point: "soil-probe-01/battery", Value: 3.58, Unit: event.Volt}
					return s
				}()},
		}},
		{name: "robot check", point: "loomi/check/b01-light", want: 1, text: "on", steps: []step{
			{topic: event.NewTopic(event.DomainRobot, "campus", event.AssetRobot, "loomi", event.EventCheck),
				ev: &event.Check{Header: event.Header{Time: tm(0), Asset: "loomi", Source: event.Source{Type: event.SourceRobot}},
					Point: "loomi/check/b01-light", Route: "campus-patrol", Waypoint: "wp1", Check: "b01-light", CheckKind: event.CheckLighting,
					Target: "b01", Observed: "on"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState(m)
			for i, st := range tc.steps {
				tp, ev := st.topic, st.ev
				if !st.raw && st.wantErr != ErrUnknownAsset {
					tp, ev = msg(t, st.topic, st.ev)
				}
				_, err := s.Apply(tp, ev, tm(100), nil)
				if !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
					t.Fatalf("step %d: error %v, want %v", i, err, st.wantErr)
				}
			}
			ps, ok := s.Point(tc.point)
			if !ok {
				t.Fatalf("point %s unknown", tc.point)
			}
			switch {
			case tc.want == 0 && tc.text == "":
				if ps.Value != nil {
					t.Errorf("value %v, want none", *ps.Value)
				}
			case tc.text != "":
				if ps.Text != tc.text {
					t.Errorf("text %q, want %q", ps.Text, tc.text)
				}
			default:
				if ps.Value == nil || *ps.Value != tc.want {
					t.Errorf("value %v, want %v", ps.Value, tc.want)
				}
			}
			if got := s.Counts().Stale; got != tc.stale {
				t.Errorf("stale %d, want %d", got, tc.stale)
			}
		})
	}
}

func TestStateCheckText(t *testing.T) {
	// A lighting check observes "on": the text, and 1 as a state.
	s := NewState(small(t))
	tp, ev := msg(t, event.NewTopic(event.DomainRobot, "campus", event.AssetRobot, "loomi", event.EventCheck),
		&event.Check{Header: event.Header{Time: t0, Asset: "loomi", Source: event.Source{Type: event.SourceRobot}},
			Point: "loomi/check/b01-light", Route: "campus-patrol", Waypoint: "wp1", Check: "b01-light", CheckKind: event.CheckLighting,
			Target: "b01", Observed: "on"})
	samples, err := s.Apply(tp, ev, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := s.Point("loomi/check/b01-light")
	if ps.Text != "on" || ps.Value == nil || *ps.Value != 1 || len(samples) != 1 {
		t.Fatalf("check: text %q value %v samples %d, want on, 1, 1", ps.Text, ps.Value, len(samples))
	}
}

func TestStatePositionAndLiveness(t *testing.T) {
	s := NewState(small(t))
	pos := &event.Position{Header: event.Header{Time: t0, Asset: "loomi", Source: event.Source{Type: event.SourceRobot}},
		Point: "loomi/position", Lat: 49.1494, Lon: 9.2083, Battery: &event.Value{Point: "loomi/battery", Value: 87, Unit: event.Percent}}
	tp, ev := msg(t, event.NewTopic(event.DomainRobot, "campus", event.AssetRobot, "loomi", event.EventPosition), pos)
	samples, err := s.Apply(tp, ev, t0.Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 1 || samples[0].Point != "loomi/battery" || samples[0].Value != 87 || samples[0].Tenant != "campus-service" {
		t.Fatalf("samples %+v, want the battery", samples)
	}
	ps, _ := s.Point("loomi/position")
	if ps.Position == nil || ps.Position[0] != 9.2083 || ps.Position[1] != 49.1494 {
		t.Fatalf("position %v", ps.Position)
	}
	for _, tc := range []struct {
		at     time.Duration
		silent bool
	}{{0, false}, {3 * time.Second, false}, {4 * time.Second, true}} {
		a, _ := s.Asset("loomi", t0.Add(tc.at))
		if a.Liveness.Silent != tc.silent {
			t.Errorf("at +%v: silent %v, want %v", tc.at, a.Liveness.Silent, tc.silent)
		}
	}
	// Never heard: silent; a gateway's offline status: silent.
	if a, _ := s.Asset("soil-probe-01", t0); !a.Liveness.Silent || a.Liveness.ExpectedIntervalS != 1200 {
		t.Errorf("soil-probe-01 never heard: %+v", a.Liveness)
	}
	gw := m0Gateway(t, s.Model())
	st := event.NewStatus(gw.ID, t0, event.Source{Type: event.SourceBuilding, Gateway: gw.ID}, event.Offline, event.ReasonDisconnected)
	tp, ev = msg(t, gw.Topic(event.EventStatus), st)
	if _, err := s.Apply(tp, ev, t0, nil); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Asset(gw.ID, t0); !a.Liveness.Silent || a.Liveness.Status != "offline" {
		t.Errorf("gateway offline: %+v", a.Liveness)
	}
}

func m0Gateway(t *testing.T, m *campus.Model) *campus.Gateway {
	for _, g := range m.Gateways {
		if g.GatewayKind == campus.GatewayBuilding {
			return g
		}
	}
	t.Fatal("no building gateway in the small campus")
	return nil
}

func TestStateRelations(t *testing.T) {
	s := NewState(small(t))
	b, ok := s.Asset("b01", t0)
	if !ok || len(b.Relations.Rooms) != 57 || len(b.Relations.Meters) != 11 || b.Geometry == nil {
		t.Fatalf("b01: rooms %d meters %d geometry %v", len(b.Relations.Rooms), len(b.Relations.Meters), b.Geometry)
	}
	p, _ := s.Asset("wartberg-01", t0)
	if len(p.Relations.Devices) != 8 || p.Geometry == nil {
		t.Fatalf("wartberg-01: %+v", p.Relations)
	}
	d, _ := s.Asset("soil-probe-01", t0)
	if d.Relations.Plot != "wartberg-01" || d.Tenant != "wartberg-growers" {
		t.Fatalf("soil-probe-01: %+v", d)
	}
	mt, _ := s.Asset("el-b01-main", t0)
	if mt.Relations.Building != "b01" || len(mt.Points) == 0 {
		t.Fatalf("el-b01-main: %+v", mt)
	}
}

func TestSnapshotRestore(t *testing.T) {
	m := small(t)
	s := NewState(m)
	tp, ev := msg(t, roomTopic("b01-0.01"), event.NewMeasurement("b01-0.01", t0, building,
		event.Value{Point: "b01-0.01/temperature", Value: 21.8, Unit: event.Celsius}))
	if _, err := s.Apply(tp, ev, t0.Add(time.Second), nil); err != nil {
		t.Fatal(err)
	}
	dirty := s.takeDirty(nil)
	if len(dirty) != 1 {
		t.Fatalf("dirty %v, want one asset", dirty)
	}
	topic, payload, err := s.snapshotJSON(DefaultPrefix, dirty[0], t0, map[*event.Source][]byte{})
	if err != nil || topic != "twin/campus/room/b01-0.01" {
		t.Fatalf("topic %q, %v", topic, err)
	}
	r := NewState(m)
	if err := r.Restore(payload); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Point("b01-0.01/temperature")
	want, _ := s.Point("b01-0.01/temperature")
	if got.Value == nil || *got.Value != 21.8 || !got.Observed.Equal(want.Observed) || !got.Received.Equal(want.Received) || got.Source == nil || got.Source.Gateway != "bms-b01" {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	// A newer value in the state is kept over an older snapshot.
	tp, ev = msg(t, roomTopic("b01-0.01"), event.NewMeasurement("b01-0.01", t0.Add(time.Hour), building,
		event.Value{Point: "b01-0.01/temperature", Value: 19, Unit: event.Celsius}))
	r.Apply(tp, ev, t0, nil)
	if err := r.Restore(payload); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Point("b01-0.01/temperature"); *got.Value != 19 {
		t.Fatalf("restore replaced a newer value: %v", *got.Value)
	}
	for _, bad := range []string{`{`, `{"asset":"nosuch","kind":"room"}`, `{"asset":"b01-0.01","kind":"meter"}`} {
		if err := r.Restore([]byte(bad)); err == nil {
			t.Errorf("Restore(%s): no error", bad)
		}
	}
	_ = bus.Message{}
}
