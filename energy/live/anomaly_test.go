package live_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/sim"
)

// TestWaterLeakAlarm: the simulator's water_leak fault on the small
// campus's water main raises the water-leak alarm of that meter once a
// night passes with water flowing all night, and clears it after the
// first night without flow; an independent MQTT client sees both on the
// alarm's retained topic.
func TestWaterLeakAlarm(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	tf := loadTariff(t)
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin)
	until := from.Add(5 * 24 * time.Hour)
	leakFrom := from.Add(36 * time.Hour) // 2 May, 12:00
	msgs := simulate(t, m, from, until,
		sim.Fault{Kind: sim.FaultWaterLeak, Asset: "wa-b01-main", Start: leakFrom, Duration: 36 * time.Hour, FlowM3PerH: 0.05})
	b, addr := startBroker(t)
	topic := alarm.Key{Site: "campus", Kind: "meter", Asset: "wa-b01-main", Type: live.AlarmWaterLeak}.Topic(alarm.DefaultPrefix)
	obs := newObserver(t, addr, topic)
	cfg := live.Config{Sites: sites, Tariffs: &tf, Debounce: 5 * time.Millisecond, Anomalies: live.AnomalyConfig{LeakNights: 1}}
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
	if a.Asset != "wa-b01-main" || a.Originator != "energy" {
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
