package live_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/sim"
)

// TestWaterLeakAlarm: the simulator's water_leak fault on the small
// campus's water main raises the water-leak alarm of that meter once a
// night passes with water flowing all night, and clears it after the
// first night without flow; an independent MQTT client sees both on the
// alarm's retained topic.
func TestWaterLeakAlarm(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	tf := loadTariff(t)
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin)
	until := from.Add(5 * 24 * time.Hour)
	leakFrom := from.Add(36 * time.Hour) // 2 May, 12:00
	msgs := simulate(t, m, from, until,
		sim.Fault{Kind: sim.FaultWaterLeak, Asset: "wa-b01-main", Start: leakFrom, Duration: 36 * time.Hour, FlowM3PerH: 0.05})
	b, addr := startBroker(t)
	topic := alarm.Key{Site: "campus", Kind: "meter", Asset: "wa-b01-main", Type: live.AlarmWaterLeak}.Topic(alarm.DefaultPrefix)
	obs := newObserver(t, addr, topic)
	// The campus model gives the sites, and the alarm's tenant.
	cfg := live.Config{Model: m, Tariffs: &tf, Debounce: 5 * time.Millisecond, Anomalies: live.AnomalyConfig{LeakNights: 1}}
	ls := newLive(t, b, cfg, until)

	before := func(t time.Time) []bus.Message { return readingsBefore(msgs, t) }
	status := func(p *paho.Publish) alarm.Status {
		var a alarm.Alarm
		if len(p.Payload) == 0 || json.Unmarshal(p.Payload, &a) != nil {
			return ""
		}
		return a.Status
	}
	// Up to 2 May, 12:00: the nights of 1 and 2 May are dry.
	publishAll(t, b, "gw-1", before(leakFrom))
	ls.waitUpdated("2026-05", leakFrom.Add(-15*time.Minute), 10*time.Second)
	if got := obs.drain(topic); len(got) != 0 {
		t.Fatalf("alarm before the leak: %s", got[0].Payload)
	}
	// Through the night of 3 May: water flows all night.
	night := from.Add(2*24*time.Hour + 6*time.Hour)
	publishAll(t, b, "gw-2", between(msgs, leakFrom, night))
	p := obs.next(t, topic, 10*time.Second, func(p *paho.Publish) bool { return status(p) == alarm.Active })
	var a alarm.Alarm
	json.Unmarshal(p.Payload, &a)
	if a.Asset != "wa-b01-main" || a.Originator != "energy" || a.Tenant != "campus-service" {
		t.Errorf("alarm %+v", a)
	}
	// A client that subscribes now gets it as the retained message.
	var r alarm.Alarm
	if err := json.Unmarshal(retained(t, addr, topic), &r); err != nil || r.Status != alarm.Active || r.ID != a.ID {
		t.Errorf("retained alarm %+v (%v), want the active %s", r, err, a.ID)
	}
	// The leak ends on 4 May at 00:00; the night of 4 May is dry again.
	publishAll(t, b, "gw-3", between(msgs, night, until))
	obs.next(t, topic, 10*time.Second, func(p *paho.Publish) bool { return status(p) == alarm.Cleared })
}

// readingsBefore returns the messages of readings before t (and the
// gateway messages among them).
func readingsBefore(msgs []bus.Message, t time.Time) []bus.Message {
	return between(msgs, time.Time{}, t)
}

// between returns the messages whose event time is in [from, to).
func between(msgs []bus.Message, from, to time.Time) []bus.Message {
	var out []bus.Message
	for _, m := range msgs {
		var h struct {
			Time time.Time `json:"time"`
		}
		json.Unmarshal(m.Payload, &h)
		if !h.Time.Before(from) && h.Time.Before(to) {
			out = append(out, m)
		}
	}
	return out
}

// drain returns the messages on topic received so far.
func (o *observer) drain(topic string) []*paho.Publish {
	var got []*paho.Publish
	for {
		select {
		case p := <-o.msgs:
			if p.Topic == topic {
				got = append(got, p)
			}
		default:
			return got
		}
	}
}

// waitUpdated waits until the invoices of period are updated to at least
// at.
func (ls *liveService) waitUpdated(period string, at time.Time, within time.Duration) {
	ls.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if u := ls.updated(period); !u.Before(at) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	ls.t.Fatalf("invoices of %s not updated to %v within %v (at %v)", period, at, within, ls.updated(period))
}

// TestNightLoadAndDeviationAlarms: an electricity meter that draws 1 kWh a
// quarter hour at night and 4 by day for ten days, then 3 kWh a quarter
// hour in the eleventh night, raises night-base-load and
// consumption-deviation (hour-of-week baseline of the first 8 days) when
// that night has passed, and clears both when the next night is normal.
func TestNightLoadAndDeviationAlarms(t *testing.T) {
	site := energy.Site{Name: "lab", Meters: []energy.Meter{{ID: "el-lab", OBIS: "1-0:1.8.0"}},
		Tenants: []energy.Tenant{{ID: "lab", AreaM2: 100, Meters: []string{"el-lab"}}}}
	tf := loadTariff(t)
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, berlin)
	var msgs []bus.Message
	v := 0.0
	for q := 0; q <= 12*96; q++ {
		at := start.Add(time.Duration(q) * 15 * time.Minute)
		e := event.NewMeasurement("el-lab", at, event.Source{Type: event.SourceBuilding, Gateway: "bms-lab"},
			event.Value{Point: "el-lab/1-0:1.8.0", Value: v, Unit: event.KilowattHour, OBIS: "1-0:1.8.0"})
		msg, err := event.NewMessage(event.NewTopic(event.DomainEnergy, "lab", event.AssetMeter, "el-lab", event.EventReading), e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, msg)
		// The quarter hour starting at at.
		switch h := at.In(berlin).Hour(); {
		case h < 5 && at.Sub(start) >= 10*24*time.Hour && at.Sub(start) < 11*24*time.Hour:
			v += 3
		case h < 5:
			v += 1
		default:
			v += 4
		}
	}
	b, addr := startBroker(t)
	obs := newObserver(t, addr, "alarm/lab/meter/el-lab/+")
	cfg := live.Config{Sites: map[string]energy.Site{"lab": site}, Tariffs: &tf, Debounce: 5 * time.Millisecond,
		Anomalies: live.AnomalyConfig{TrainDays: 8}}
	ls := newLive(t, b, cfg, start.Add(12*24*time.Hour))
	status := func(p *paho.Publish) alarm.Status {
		var a alarm.Alarm
		if len(p.Payload) == 0 || json.Unmarshal(p.Payload, &a) != nil {
			return ""
		}
		return a.Status
	}
	night := start.Add(10*24*time.Hour + 5*time.Hour)
	publishAll(t, b, "gw-1", between(msgs, time.Time{}, night.Add(-10*time.Hour)))
	ls.waitUpdated("2026-06", night.Add(-10*time.Hour-15*time.Minute), 10*time.Second)
	if got := obs.drain("alarm/lab/meter/el-lab/" + live.AlarmNightBaseLoad); len(got) != 0 {
		t.Fatalf("night-base-load before the night: %s", got[0].Payload)
	}
	publishAll(t, b, "gw-2", between(msgs, night.Add(-10*time.Hour), night.Add(15*time.Minute)))
	obs.both(t, "alarm/lab/meter/el-lab/", alarm.Active, status)
	publishAll(t, b, "gw-3", between(msgs, night.Add(15*time.Minute), start.Add(12*24*time.Hour)))
	obs.both(t, "alarm/lab/meter/el-lab/", alarm.Cleared, status)
}

// both waits until the night-base-load and consumption-deviation alarms
// under prefix have both reached status st, in either order.
func (o *observer) both(t *testing.T, prefix string, st alarm.Status, status func(*paho.Publish) alarm.Status) {
	t.Helper()
	want := map[string]bool{prefix + live.AlarmNightBaseLoad: true, prefix + live.AlarmDeviation: true}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case p := <-o.msgs:
			if want[p.Topic] && status(p) == st {
				delete(want, p.Topic)
			}
		case <-deadline:
			t.Fatalf("not %s within 10 s: %v", st, want)
		}
	}
}

// TestLeakAcrossMonths: a leak that begins two nights before the month
// ends raises water-leak in the new month's first night (three nights in
// a row, two of them in the old month: the rules look across months), and
// the alarm clears after the first dry night.
func TestLeakAcrossMonths(t *testing.T) {
	site := energy.Site{Name: "lab", Meters: []energy.Meter{{ID: "wa-lab", OBIS: "8-0:1.0.0"}},
		Tenants: []energy.Tenant{{ID: "lab", AreaM2: 100, Meters: []string{"wa-lab"}}}}
	tf := loadTariff(t)
	start := time.Date(2026, 4, 20, 0, 0, 0, 0, berlin)
	leakFrom, leakTo := time.Date(2026, 4, 29, 0, 0, 0, 0, berlin), time.Date(2026, 5, 2, 0, 0, 0, 0, berlin)
	end := time.Date(2026, 5, 3, 0, 0, 0, 0, berlin)
	var msgs []bus.Message
	v := 100.0
	for at := start; !at.After(end); at = at.Add(15 * time.Minute) {
		e := event.NewMeasurement("wa-lab", at, event.Source{Type: event.SourceBuilding, Gateway: "bms-lab"},
			event.Value{Point: "wa-lab/8-0:1.0.0", Value: v, Unit: event.CubicMetre, OBIS: "8-0:1.0.0"})
		msg, err := event.NewMessage(event.NewTopic(event.DomainEnergy, "lab", event.AssetMeter, "wa-lab", event.EventReading), e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, msg)
		if h := at.In(berlin).Hour(); h >= 7 && h < 19 {
			v += 0.05
		}
		if !at.Before(leakFrom) && at.Before(leakTo) {
			v += 0.01
		}
	}
	b, addr := startBroker(t)
	topic := "alarm/lab/meter/wa-lab/" + live.AlarmWaterLeak
	obs := newObserver(t, addr, topic)
	cfg := live.Config{Sites: map[string]energy.Site{"lab": site}, Tariffs: &tf, Debounce: 5 * time.Millisecond}
	ls := newLive(t, b, cfg, end)
	status := func(p *paho.Publish) alarm.Status {
		var a alarm.Alarm
		if len(p.Payload) == 0 || json.Unmarshal(p.Payload, &a) != nil {
			return ""
		}
		return a.Status
	}
	firstNight := time.Date(2026, 5, 1, 5, 0, 0, 0, berlin)
	// Up to 1 May, 00:45: two nights of flow, the third not begun.
	publishAll(t, b, "gw-1", between(msgs, time.Time{}, firstNight.Add(-4*time.Hour-15*time.Minute)))
	ls.waitUpdated("2026-05", firstNight.Add(-4*time.Hour-30*time.Minute), 10*time.Second)
	if got := obs.drain(topic); len(got) != 0 {
		t.Fatalf("alarm after two nights: %s", got[0].Payload)
	}
	publishAll(t, b, "gw-2", between(msgs, firstNight.Add(-4*time.Hour-15*time.Minute), firstNight.Add(15*time.Minute)))
	obs.next(t, topic, 10*time.Second, func(p *paho.Publish) bool { return status(p) == alarm.Active })
	publishAll(t, b, "gw-3", between(msgs, firstNight.Add(15*time.Minute), end.Add(time.Minute)))
	obs.next(t, topic, 10*time.Second, func(p *paho.Publish) bool { return status(p) == alarm.Cleared })
}
