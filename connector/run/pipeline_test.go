package run

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/lorawantest"
)

// checkValues checks a measurement against the values sent.
func checkValues(t *testing.T, d *campus.Device, m *event.Measurement, sent map[string]float64) {
	t.Helper()
	want, tol := lorawantest.Expected(d, sent)
	if len(m.Values) != len(want) {
		t.Errorf("%s: %d values, want %d: %+v", d.ID, len(m.Values), len(want), m.Values)
	}
	for _, v := range m.Values {
		w, ok := want[v.Point]
		if !ok {
			t.Errorf("%s: unexpected point %s", d.ID, v.Point)
			continue
		}
		if math.Abs(v.Value-w) > tol[v.Point] {
			t.Errorf("%s: %s = %v, want %v ± %v", d.ID, v.Point, v.Value, w, tol[v.Point])
		}
	}
}

func TestUplinkEvents(t *testing.T) {
	for _, tc := range []struct {
		name    string
		decoded bool // the network server decoded the payload
		via     int
	}{
		{"codec", false, viaCodec},
		{"server decoded", true, viaServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestRuntime(t, nil)
			rec := record(t, tr.b, "#")
			rng := rand.New(rand.NewPCG(1, 2))
			at := time.Date(2026, 5, 12, 7, 15, 42, 918000000, time.UTC)
			sent := make(map[string]map[string]float64)
			n := 0
			for _, d := range tr.model.Devices {
				app, _ := tr.model.Application(d.Application)
				vals := lorawantest.RandomValues(rng, d.Type)
				sent[d.ID] = vals
				up := lorawantest.Uplink{App: app, Device: d, FCnt: 42, Values: vals, Decoded: tc.decoded, ReceivedAt: at}
				var topic string
				var body []byte
				var err error
				if app.Server == campus.TheThingsStack {
					topic, body, err = up.TTS()
				} else {
					topic, body, err = up.ChirpStack()
				}
				if err != nil {
					t.Fatal(err)
				}
				tr.deliver(t, app.ID, topic, body)
				n++
			}
			ms := rec.waitFor("a measurement, an uplink and a status per device", func(ms []bus.Message) bool { return len(ms) >= 3*n })
			for _, d := range tr.model.Devices {
				meas := onTopic(ms, d.Topic(event.EventMeasurement).String())
				ups := onTopic(ms, d.Topic(event.EventUplink).String())
				sts := onTopic(ms, d.Topic(event.EventStatus).String())
				if len(meas) != 1 || len(ups) != 1 || len(sts) != 1 {
					t.Fatalf("%s: %d measurements, %d uplinks, %d statuses; want one each", d.ID, len(meas), len(ups), len(sts))
				}
				if meas[0].QoS != 1 || ups[0].QoS != 1 || sts[0].QoS != 1 {
					t.Errorf("%s: QoS %d %d %d, want 1", d.ID, meas[0].QoS, ups[0].QoS, sts[0].QoS)
				}
				m := read(t, meas[0]).(*event.Measurement)
				checkValues(t, d, m, sent[d.ID])
				if err := tr.model.Check(d.Topic(event.EventMeasurement), m); err != nil {
					t.Errorf("%s: campus check: %v", d.ID, err)
				}
				if !m.Time.Equal(at) || m.Source.FCnt == nil || *m.Source.FCnt != 42 || m.Source.DevEUI != d.DevEUI || m.Source.Gateway == "" {
					t.Errorf("%s: header %+v source %+v", d.ID, m.Header, m.Source)
				}
				u := read(t, ups[0]).(*event.Uplink)
				if u.FPort == 0 || u.FrequencyHz == 0 || len(u.Gateways) != 1 || len(u.Points) != len(m.Values) || u.DataRate.SpreadingFactor != 9 {
					t.Errorf("%s: uplink %+v", d.ID, u)
				}
				st := read(t, sts[0]).(*event.Status)
				if st.State != event.Online || st.Reason != event.ReasonUplink {
					t.Errorf("%s: status %s %s", d.ID, st.State, st.Reason)
				}
				if got := d.Type.ID; tr.byID[d.ID].stats.decoded[tc.via].Load() != 1 {
					t.Errorf("%s (%s): decoded via %s: %d", d.ID, got, viaNames[tc.via], tr.byID[d.ID].stats.decoded[tc.via].Load())
				}
			}
			// A later subscriber gets each device's measurement and status,
			// retained; uplinks are not.
			late := record(t, tr.b, "#")
			retained := late.waitFor("the retained events", func(ms []bus.Message) bool { return len(ms) >= 2*n })
			for _, m := range retained {
				k, _ := event.KindOf(topicLevel(m.Topic, 4))
				if !m.Retain || k == event.KindUplink {
					t.Errorf("%s: retained %v", m.Topic, m.Retain)
				}
			}
			st := tr.Stats()
			if st.Received != uint64(n) || st.Decoded != uint64(n) || st.Duplicates != 0 || st.Online != n {
				t.Errorf("stats %+v", st)
			}
			for reason, v := range st.Failed {
				if v != 0 {
					t.Errorf("failed %s: %d", reason, v)
				}
			}
		})
	}
}

// TestCopiesKnown: with copies, the connectors know the devices of every
// copy of the campus under the simulator's names (network id, DevEUI)
// and publish their events on the copies' topics; without, a copy's
// uplink is an unknown device.
func TestCopiesKnown(t *testing.T) {
	tr := newTestRuntime(t, func(c *Config) { c.Copies = 3 })
	rec := record(t, tr.b, "+/+/device/+/measurement")
	plain := newTestRuntime(t, nil)
	m, err := campus.Load(smallCampus)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(tr.model.Devices), 3*len(m.Devices); got != want {
		t.Fatalf("%d devices known, want %d", got, want)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	at := time.Date(2026, 5, 12, 7, 15, 0, 0, time.UTC)
	for _, d := range m.Devices {
		app, _ := m.Application(d.Application)
		cd, ok := tr.model.Device(campus.CopyID(d.ID, 2))
		if !ok {
			t.Fatalf("no copy 2 of %s", d.ID)
		}
		up := lorawantest.Uplink{App: app, Device: cd, FCnt: 5, Values: lorawantest.RandomValues(rng, d.Type), ReceivedAt: at}
		topic, body, err := up.TTS()
		if app.Server == campus.ChirpStack {
			topic, body, err = up.ChirpStack()
		}
		if err != nil {
			t.Fatal(err)
		}
		tr.deliver(t, app.ID, topic, body)
		plain.deliver(t, app.ID, topic, body)
	}
	ms := rec.waitFor("a measurement of every copied device", func(ms []bus.Message) bool { return len(ms) == len(m.Devices) })
	for _, msg := range ms {
		e := read(t, msg)
		if orig, k := campus.CopyOf(e.Head().Asset); k != 2 {
			t.Errorf("%s: asset %s is copy %d of %s, want copy 2", msg.Topic, e.Head().Asset, k, orig)
		}
		tp, _ := event.ParseTopic(msg.Topic)
		if err := tr.model.Check(tp, e); err != nil {
			t.Errorf("%s: %v", msg.Topic, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for plain.Stats().Failed["unknown_device"] != uint64(len(m.Devices)) {
		if time.Now().After(deadline) {
			t.Fatalf("without copies: %v unknown devices, want %d", plain.Stats().Failed, len(m.Devices))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
