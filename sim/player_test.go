package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector/chirpstack"
	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/connector/tts"
	"github.com/citymesh/citymesh/event"
)

var smallCampus = sync.OnceValues(func() (*campus.Model, error) { return campus.Load("../examples/campus/small/campus.yaml") })

func loadSmall(t testing.TB) *campus.Model {
	t.Helper()
	m, err := smallCampus()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var campusCodecs = sync.OnceValues(func() (*codec.Registry, error) { return codec.LoadDir("../examples/campus/codecs", codec.Limits{}) })

func loadCodecs(t testing.TB) *codec.Registry {
	t.Helper()
	r, err := campusCodecs()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// playRun is a finished run into memory outputs.
type playRun struct {
	p                      *Player
	tts, cs, bld, rob      *MemoryOutput
	truth                  *MemoryTruth
	pictures               *MemoryPictures
	uplinks, events, wills []Recorded
}

func play(t testing.TB, cfg PlayerConfig) *playRun {
	t.Helper()
	r := &playRun{tts: &MemoryOutput{}, cs: &MemoryOutput{}, bld: &MemoryOutput{}, rob: &MemoryOutput{}, truth: &MemoryTruth{}, pictures: &MemoryPictures{}}
	if cfg.Campus == nil {
		cfg.Campus = loadSmall(t)
	}
	cfg.Outputs = Outputs{TTS: r.tts, ChirpStack: r.cs, Building: r.bld, Robot: r.rob}
	cfg.Truth = r.truth
	cfg.Pictures = r.pictures
	p, err := NewPlayer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*MemoryOutput{r.tts, r.cs} {
		r.uplinks = append(r.uplinks, o.Messages()...)
	}
	for _, o := range []*MemoryOutput{r.bld, r.rob} {
		for _, m := range o.Messages() {
			if m.Will {
				r.wills = append(r.wills, m)
				continue
			}
			r.events = append(r.events, m)
		}
	}
	return r
}

var may12 = time.Date(2026, 5, 12, 5, 0, 0, 0, time.UTC)

// valueKey identifies a published value: for an uplink its DevEUI and
// frame counter, for an event its topic and time.
type valueKey struct {
	point  string
	devEUI string
	fcnt   uint32
	topic  string
	at     int64
}

func truthKey(tr *Truth) valueKey {
	if tr.FCnt != nil {
		return valueKey{point: tr.Point, devEUI: tr.DevEUI, fcnt: *tr.FCnt}
	}
	return valueKey{point: tr.Point, topic: tr.Topic, at: tr.Time.UnixNano()}
}

// arrived is what a check of the published messages found for one value.
type arrived struct {
	value float64
	n     int
}

// checkUplinks parses every network server message as a connector would
// (the stack's JSON, then the device codec on the raw payload), checks the
// frame counters, and returns the values found.
func checkUplinks(t *testing.T, m *campus.Model, msgs []Recorded) map[valueKey]*arrived {
	t.Helper()
	reg := loadCodecs(t)
	found := map[valueKey]*arrived{}
	lastFCnt := map[string]uint32{}
	for _, rec := range msgs {
		if rec.QoS != 0 || rec.Retain {
			t.Errorf("%s: QoS %d retain %v, want QoS 0 without retain as the network servers publish", rec.Topic, rec.QoS, rec.Retain)
		}
		var dev *campus.Device
		var payload []byte
		var fport uint32
		var fcnt uint32
		var at time.Time
		var decoded map[string]any
		switch {
		case strings.HasPrefix(rec.Topic, "v3/"):
			topic, msg, err := tts.Decode(rec.Topic, rec.Payload)
			if err != nil {
				t.Fatalf("%s: %v\n%s", rec.Topic, err, rec.Payload)
			}
			if msg.Event() == tts.EventJoin {
				d, _ := m.DeviceByEUI(msg.EndDeviceIDs.DevEUI.String())
				delete(lastFCnt, d.ID)
				continue
			}
			if msg.Uplink == nil {
				t.Fatalf("%s: not an uplink", rec.Topic)
			}
			d, ok := m.DeviceOnNetwork(campus.TheThingsStack, topic.ApplicationID, topic.DeviceID)
			if !ok || d.DevEUI != msg.EndDeviceIDs.DevEUI.String() {
				t.Fatalf("%s: no device %s in the campus with DevEUI %s", rec.Topic, topic.DeviceID, msg.EndDeviceIDs.DevEUI)
			}
			u := msg.Uplink
			if len(u.RxMetadata) == 0 || u.Settings.DataRate.LoRa == nil || u.ConsumedAirtime <= 0 || len(msg.CorrelationIDs) == 0 {
				t.Errorf("%s: radio metadata missing: %s", rec.Topic, rec.Payload)
			}
			want := Airtime(int(u.Settings.DataRate.LoRa.SpreadingFactor), int(u.Settings.DataRate.LoRa.Bandwidth), LoRaWANOverhead+len(u.FRMPayload))
			if time.Duration(u.ConsumedAirtime) != want {
				t.Errorf("%s: consumed airtime %v, want %v", rec.Topic, time.Duration(u.ConsumedAirtime), want)
			}
			dev, payload, fport, fcnt, at, decoded = d, u.FRMPayload, u.FPort, u.FCnt, u.ReceivedAt, u.DecodedPayload
		case strings.HasPrefix(rec.Topic, "application/"):
			ev, err := chirpstack.Decode(rec.Topic, rec.Payload)
			if err != nil {
				t.Fatalf("%s: %v\n%s", rec.Topic, err, rec.Payload)
			}
			if ev.Status != nil {
				if ev.Status.BatteryLevel <= 0 || ev.Status.BatteryLevel > 100 {
					t.Errorf("%s: battery level %v", rec.Topic, ev.Status.BatteryLevel)
				}
				continue
			}
			if ev.Join != nil {
				d, _ := m.DeviceByEUI(ev.Join.DeviceInfo.DevEUI.String())
				delete(lastFCnt, d.ID)
				continue
			}
			d, ok := m.DeviceByEUI(ev.Up.DeviceInfo.DevEUI.String())
			if !ok {
				t.Fatalf("%s: no device with DevEUI %s", rec.Topic, ev.Up.DeviceInfo.DevEUI)
			}
			dev, payload, fport, fcnt, at, decoded = d, ev.Up.Data, ev.Up.FPort, ev.Up.FCnt, ev.Up.Time, ev.Up.Object
		default:
			t.Fatalf("unexpected topic %s", rec.Topic)
		}
		c, ok := reg.Get(dev.Type.ID)
		if !ok {
			t.Fatalf("no codec %s", dev.Type.ID)
		}
		out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: payload, FPort: uint8(fport), RecvTime: at})
		if err != nil {
			t.Fatalf("%s: codec: %v", rec.Topic, err)
		}
		if len(out.Warnings) > 0 {
			t.Errorf("%s: codec warnings %v", rec.Topic, out.Warnings)
		}
		if decoded != nil {
			for k, v := range out.Data {
				if x, ok := decoded[k].(float64); !ok || math.Abs(x-v.(float64)) > 1e-9 {
					t.Errorf("%s: decoded payload %s = %v, the codec says %v", rec.Topic, k, decoded[k], v)
				}
			}
		}
		values, _, err := m.DeviceValues(dev, out.Data)
		if err != nil {
			t.Fatal(err)
		}
		if last, ok := lastFCnt[dev.ID]; ok && fcnt <= last {
			// A duplicate repeats its counter; anything else must go up.
			k := valueKey{point: values[0].Point, devEUI: dev.DevEUI, fcnt: fcnt}
			if fcnt < last || found[k] == nil {
				t.Errorf("%s: f_cnt %d after %d", rec.Topic, fcnt, last)
			}
		}
		lastFCnt[dev.ID] = fcnt
		for _, v := range values {
			k := valueKey{point: v.Point, devEUI: dev.DevEUI, fcnt: fcnt}
			if a := found[k]; a != nil {
				a.n++
				continue
			}
			found[k] = &arrived{value: v.Value, n: 1}
		}
	}
	return found
}

// checkEvents validates every city event against its schema and the
// campus model and returns the values they carry.
func checkEvents(t *testing.T, m *campus.Model, msgs []Recorded) map[valueKey]*arrived {
	t.Helper()
	found := map[valueKey]*arrived{}
	add := func(k valueKey, v float64) {
		if a := found[k]; a != nil {
			a.n++
			return
		}
		found[k] = &arrived{value: v, n: 1}
	}
	for _, rec := range msgs {
		topic, e, err := event.ReadMessage(bus.Message{Topic: rec.Topic, Payload: rec.Payload})
		if err != nil {
			t.Fatalf("%s: %v\n%s", rec.Topic, err, rec.Payload)
		}
		if err := event.ValidateJSON(e.Kind(), rec.Payload); err != nil {
			t.Fatalf("%s: schema: %v\n%s", rec.Topic, err, rec.Payload)
		}
		if err := m.Check(topic, e); err != nil {
			t.Fatalf("%s: %v\n%s", rec.Topic, err, rec.Payload)
		}
		if rec.QoS != 1 || rec.Retain != event.Retained(e.Kind()) || rec.ContentType != event.ContentType {
			t.Errorf("%s: QoS %d retain %v content type %q", rec.Topic, rec.QoS, rec.Retain, rec.ContentType)
		}
		switch e := e.(type) {
		case *event.Measurement:
			for _, v := range e.Values {
				add(valueKey{point: v.Point, topic: rec.Topic, at: e.Time.UnixNano()}, v.Value)
			}
		case *event.Position:
			add(valueKey{point: e.Point, topic: rec.Topic, at: e.Time.UnixNano()}, e.Lat*1000+e.Lon)
			if e.Battery != nil {
				add(valueKey{point: e.Battery.Point, topic: rec.Topic, at: e.Time.UnixNano()}, e.Battery.Value)
			}
		case *event.Check:
			add(valueKey{point: e.Point, topic: rec.Topic, at: e.Time.UnixNano()}, math.NaN())
		}
	}
	return found
}

// compareTruth checks that every value the truth says was published
// arrived as often as it says, with its value, and that nothing else did.
func compareTruth(t *testing.T, truth []Truth, found map[valueKey]*arrived) {
	t.Helper()
	seen := map[valueKey]bool{}
	for i := range truth {
		tr := &truth[i]
		k := truthKey(tr)
		a := found[k]
		if tr.Published == 0 {
			if a != nil && !seen[k] {
				t.Errorf("lost value of %s at %s (%s) arrived", tr.Point, tr.Time, tr.Lost)
			}
			continue
		}
		if a == nil {
			t.Errorf("value of %s at %s (f_cnt %v) never arrived", tr.Point, tr.Time, tr.FCnt)
			continue
		}
		if seen[k] {
			continue // an exchange record repeats a reading's key only in truth
		}
		seen[k] = true
		if a.n != tr.Published {
			t.Errorf("value of %s at %s arrived %d times, want %d", tr.Point, tr.Time, a.n, tr.Published)
		}
		switch {
		case tr.Lat != nil:
			if math.Abs(a.value-(*tr.Lat*1000+*tr.Lon)) > 1e-6 {
				t.Errorf("position %s at %s: %v", tr.Point, tr.Time, a.value)
			}
		case tr.Value != nil && !math.IsNaN(a.value):
			if tol := tr.Resolution/2 + 1e-9; math.Abs(a.value-*tr.Value) > tol {
				t.Errorf("%s at %s: arrived %v, produced %v (resolution %v)", tr.Point, tr.Time, a.value, *tr.Value, tr.Resolution)
			}
		}
	}
	for k := range found {
		if !seen[k] {
			t.Errorf("%s at %d (f_cnt %d) arrived but was not produced", k.point, k.at, k.fcnt)
		}
	}
}

// TestPlayerSmallCampus plays the small campus for six simulated hours at
// full speed and checks everything that came out as the far end would.
func TestPlayerSmallCampus(t *testing.T) {
	m := loadSmall(t)
	r := play(t, PlayerConfig{Campus: m, Seed: 7, Start: may12, Until: may12.Add(6 * time.Hour)})
	st := r.p.Stats()
	t.Logf("stats: %+v", st)
	if st.Lost != 0 || st.Duplicated != 0 || st.Late != 0 || st.Unrouted != 0 || st.PublishErrors != 0 {
		t.Errorf("a run without faults lost, duplicated or delayed values: %+v", st)
	}
	if st.Uplinks == 0 || st.Readings == 0 || st.RoomEvents == 0 || st.Positions == 0 || st.Checks == 0 || st.DeviceStatus == 0 {
		t.Fatalf("a kind of message is missing: %+v", st)
	}
	// Every device's uplinks, at its interval.
	perDevice := map[string]int{}
	for _, u := range r.uplinks {
		parts := strings.Split(u.Topic, "/")
		if strings.HasSuffix(u.Topic, "/up") {
			perDevice[parts[3]]++
		}
	}
	for _, d := range m.Devices {
		key := d.NetworkID
		if app, _ := m.Application(d.Application); app.Server == campus.ChirpStack {
			key = strings.ToLower(d.DevEUI)
		}
		want := int(6 * time.Hour / d.Interval)
		if n := perDevice[key]; n < want-1 || n > want+1 {
			t.Errorf("device %s: %d uplinks in 6 h, want about %d", d.ID, n, want)
		}
	}
	found := checkUplinks(t, m, r.uplinks)
	for k, v := range checkEvents(t, m, r.events) {
		found[k] = v
	}
	truth := r.truth.Records()
	compareTruth(t, truth, found)
	// Every meter read every quarter hour, all registers each time.
	readings := map[string]int{}
	for _, tr := range truth {
		if strings.HasPrefix(tr.Topic, "energy/") {
			readings[tr.Point]++
		}
	}
	for _, mt := range m.Meters {
		for _, reg := range mt.Registers {
			if n := readings[reg.Point]; n != 24 {
				t.Errorf("register %s: %d readings in 6 h, want 24", reg.Point, n)
			}
		}
	}
	// Every room sends all its points at least every 15 minutes.
	last := map[string]time.Time{}
	for _, tr := range truth {
		if !strings.HasPrefix(tr.Topic, "building/") || !strings.HasSuffix(tr.Topic, "/measurement") {
			continue
		}
		if l, ok := last[tr.Point]; ok && tr.Time.Sub(l) > DefaultRoomSnapshot+DefaultRoomEvery {
			t.Errorf("%s: silent from %s to %s", tr.Point, l, tr.Time)
		}
		last[tr.Point] = tr.Time
	}
	for _, rm := range m.Rooms {
		for _, pt := range m.PointsOf(rm.ID) {
			if _, ok := last[pt.ID]; !ok {
				t.Errorf("room point %s never sent", pt.ID)
			}
		}
	}
}

// TestPlayerDeterministic: the same seed gives byte-identical messages
// and truth; another seed does not.
func TestPlayerDeterministic(t *testing.T) {
	cfg := PlayerConfig{Seed: 3, Start: may12, Until: may12.Add(time.Hour), DecodedPayload: true}
	a, b := play(t, cfg), play(t, cfg)
	for name, pair := range map[string][2]*MemoryOutput{"tts": {a.tts, b.tts}, "chirpstack": {a.cs, b.cs}, "building": {a.bld, b.bld}, "robot": {a.rob, b.rob}} {
		x, y := pair[0].Messages(), pair[1].Messages()
		if len(x) == 0 || len(x) != len(y) {
			t.Fatalf("%s: %d and %d messages", name, len(x), len(y))
		}
		for i := range x {
			if x[i].Topic != y[i].Topic || !bytes.Equal(x[i].Payload, y[i].Payload) {
				t.Fatalf("%s: message %d differs:\n%s %s\n%s %s", name, i, x[i].Topic, x[i].Payload, y[i].Topic, y[i].Payload)
			}
		}
	}
	ta, _ := json.Marshal(a.truth.Records())
	tb, _ := json.Marshal(b.truth.Records())
	if !bytes.Equal(ta, tb) {
		t.Error("the truth differs between two runs with the same seed")
	}
	cfg.Seed = 4
	c := play(t, cfg)
	if x, y := a.tts.Messages(), c.tts.Messages(); len(x) > 0 && len(y) > 0 && bytes.Equal(x[0].Payload, y[0].Payload) {
		t.Error("another seed gave the same first uplink")
	}
	// With decoded payloads the uplinks still check out.
	found := checkUplinks(t, a.p.m, a.uplinks)
	if len(found) == 0 {
		t.Fatal("no uplink values")
	}
}

// TestPlayerBadConfig: what cannot be played is refused with a reason.
func TestPlayerBadConfig(t *testing.T) {
	m := loadSmall(t)
	fault := func(s string) *FaultSet {
		f, err := ParseFault(s)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := NewFaultSet([]Fault{f})
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	for _, c := range []struct {
		name string
		cfg  PlayerConfig
		want string
	}{
		{"no campus", PlayerConfig{Start: may12}, "campus is required"},
		{"no start", PlayerConfig{Campus: m}, "start is required"},
		{"until before start", PlayerConfig{Campus: m, Start: may12, Until: may12.Add(-time.Hour)}, "before the start"},
		{"copies", PlayerConfig{Campus: m, Start: may12, Copies: -1}, "copies"},
		{"too many copies", PlayerConfig{Campus: m, Start: may12, Copies: 20000}, "copies"},
		{"first copy", PlayerConfig{Campus: m, Start: may12, FirstCopy: -1}, "first copy"},
		{"first copy too high", PlayerConfig{Campus: m, Start: may12, Copies: 2, FirstCopy: 0xffff}, "first copy"},
		{"negative rate", PlayerConfig{Campus: m, Start: may12, LoadRate: -1}, "load rate"},
		{"NaN rate", PlayerConfig{Campus: m, Start: may12, LoadRate: math.NaN()}, "load rate"},
		{"huge rate", PlayerConfig{Campus: m, Start: may12, LoadRate: 5000}, "load rate"},
		{"duplicate every", PlayerConfig{Campus: m, Start: may12, DuplicateEvery: -2}, "duplicate"},
		{"room scan", PlayerConfig{Campus: m, Start: may12, RoomEvery: time.Second}, "room scan interval"},
		{"unknown fault asset", PlayerConfig{Campus: m, Start: may12, Faults: fault("kind=silent,asset=el-b99-main,start=2026-05-12T06:00:00Z,duration=1h")}, `"el-b99-main" is not an asset`},
		{"fault on a copy not played", PlayerConfig{Campus: m, Start: may12, Faults: fault("kind=silent,asset=el-b01-main-x1,start=2026-05-12T06:00:00Z,duration=1h")}, "is not an asset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPlayer(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	p, err := NewPlayer(PlayerConfig{Campus: m, Start: may12, Until: may12.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err == nil {
		t.Fatal("a second Run was accepted")
	}
}

// TestPlayerOutputErrors: a broken output is counted, not fatal; a
// broken truth sink ends the run.
func TestPlayerOutputErrors(t *testing.T) {
	m := loadSmall(t)
	broken := &MemoryOutput{Fail: errors.New("broker gone")}
	p, err := NewPlayer(PlayerConfig{Campus: m, Start: may12, Until: may12.Add(30 * time.Minute),
		Outputs: Outputs{TTS: broken, Building: broken}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.PublishErrors == 0 || st.Unrouted != 0 || st.Positions != 0 {
		t.Fatalf("errors not counted, or sources without an output played: %+v", st)
	}
	if s := broken.Stats(); s.Errors != st.PublishErrors || s.Messages != 0 {
		t.Fatalf("output stats %+v, player %+v", s, st)
	}
	p, err = NewPlayer(PlayerConfig{Campus: m, Start: may12, Until: may12.Add(30 * time.Minute), Truth: failingTruth{}, Outputs: Outputs{Robot: &DiscardOutput{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run with a failing truth sink: %v", err)
	}
}

type failingTruth struct{}

func (failingTruth) Record(*Truth) error { return errors.New("disk full") }

// TestPlayerStopsOnCancel: a cancelled context ends a run in real time at
// once, with the context's error.
func TestPlayerStopsOnCancel(t *testing.T) {
	m := loadSmall(t)
	clock, err := NewScaledClock(may12, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := &MemoryOutput{}
	p, err := NewPlayer(PlayerConfig{Campus: m, Start: may12, Clock: clock, Outputs: Outputs{Robot: out}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for p.Stats().Positions == 0 {
		select {
		case <-deadline:
			t.Fatal("no position within 10 s of real time")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// TestPlayerFaults plays the small campus with a fault of every kind the
// wiring carries out and checks that each appears as specified, and only
// there, and that the truth marks what was lost.
func TestPlayerFaults(t *testing.T) {
	m := loadSmall(t)
	at := func(hm string) string { return "2026-05-12T" + hm + ":00Z" }
	var faults []Fault
	for _, s := range []string{
		"kind=gateway_outage,asset=hn-wartberg-east,start=" + at("06:00") + ",duration=1h",
		"kind=gateway_outage,asset=hn-wartberg-north,start=" + at("06:30") + ",duration=1h",
		"kind=gateway_outage,asset=hn-campus-roof,start=" + at("06:30") + ",duration=1h",
		"kind=silent,asset=soil-probe-01,start=" + at("05:30") + ",duration=30m",
		"kind=duplicate,asset=leaf-sensor-01,start=" + at("05:00") + ",duration=4h,every=2",
		"kind=out_of_order,asset=el-b01-main,start=" + at("05:00") + ",duration=2h,every=2",
		"kind=meter_exchange,asset=ht-b01-main,start=" + at("07:40") + ",new_start=5",
		"kind=meter_reset,asset=el-b01-f1,start=" + at("06:10"),
		"kind=rejoin,asset=soil-probe-02,start=" + at("07:00"),
		"kind=rejoin,asset=npk-probe-01,start=" + at("07:00"),
		"kind=gateway_outage,asset=bms-b01,start=" + at("08:00") + ",duration=20m",
		"kind=check_fails,asset=b01-escape,start=" + at("05:00") + ",duration=4h",
	} {
		f, err := ParseFault(s)
		if err != nil {
			t.Fatal(err)
		}
		faults = append(faults, f)
	}
	fs, err := NewFaultSet(faults)
	if err != nil {
		t.Fatal(err)
	}
	r := play(t, PlayerConfig{Campus: m, Seed: 11, Start: may12, Until: may12.Add(4 * time.Hour), Faults: fs})
	st := r.p.Stats()
	t.Logf("stats: %+v", st)
	truth := r.truth.Records()
	found := checkUplinks(t, m, r.uplinks)
	for k, v := range checkEvents(t, m, r.events) {
		found[k] = v
	}
	compareTruth(t, truth, found)

	// Gateway outages: an uplink is lost exactly when every gateway that
	// hears its device is down, and the others list only the gateways up.
	linked := map[string][]string{}
	for _, d := range r.p.devices {
		for _, l := range d.links {
			linked[d.eui.String()] = append(linked[d.eui.String()], r.p.lgws[0][l.gw].id)
		}
	}
	boundary := []time.Time{may12.Add(time.Hour), may12.Add(90 * time.Minute), may12.Add(2 * time.Hour), may12.Add(150 * time.Minute)}
	near := func(x time.Time) bool {
		for _, b := range boundary {
			if x.Sub(b).Abs() < 3*time.Second {
				return true
			}
		}
		return false
	}
	var lostOutage, lostSilent, duplicated, late int
	for _, tr := range truth {
		switch {
		case tr.DevEUI != "" && !near(tr.Time):
			var up []string
			for _, g := range linked[tr.DevEUI] {
				if !r.p.gatewayDown(g, tr.Time) {
					up = append(up, g)
				}
			}
			silent := strings.HasPrefix(tr.Point, "soil-probe-01/") && tr.Time.After(may12.Add(30*time.Minute)) && tr.Time.Before(may12.Add(time.Hour))
			switch {
			case silent:
				if tr.Lost != "silent" || tr.FCnt != nil {
					t.Errorf("%s at %s: lost %q, f_cnt %v; want silent, no frame", tr.Point, tr.Time, tr.Lost, tr.FCnt)
				}
				lostSilent++
			case len(up) == 0:
				if tr.Lost != "gateway_outage" || tr.Published != 0 {
					t.Errorf("%s at %s: every gateway down, but lost %q published %d", tr.Point, tr.Time, tr.Lost, tr.Published)
				}
				lostOutage++
			default:
				if tr.Lost != "" || fmt.Sprint(sortedCopy(up)) != fmt.Sprint(sortedCopy(tr.Gateways)) {
					t.Errorf("%s at %s: lost %q through %v, want through %v", tr.Point, tr.Time, tr.Lost, tr.Gateways, up)
				}
			}
			if tr.Published == 2 {
				duplicated++
				if !strings.HasPrefix(tr.Point, "leaf-sensor-01/") {
					t.Errorf("%s duplicated", tr.Point)
				}
			}
		case tr.Late:
			late++
			if !strings.HasPrefix(tr.Point, "el-b01-main/") {
				t.Errorf("%s held back", tr.Point)
			}
		}
	}
	t.Logf("%d lost to outages, %d silent, %d duplicated, %d late", lostOutage, lostSilent, duplicated, late)
	if lostOutage == 0 || lostSilent == 0 || duplicated == 0 || late == 0 {
		t.Errorf("faults left no trace: %d lost to outages, %d silent, %d duplicated, %d late", lostOutage, lostSilent, duplicated, late)
	}
	// The uplinks that arrived name exactly the gateways the truth says.
	for _, u := range r.uplinks {
		_, msg, err := tts.Decode(u.Topic, u.Payload)
		if err != nil || msg.Uplink == nil {
			continue
		}
		for _, rx := range msg.Uplink.RxMetadata {
			if r.p.gatewayDown(rx.GatewayIDs.GatewayID, msg.Uplink.RxMetadata[0].Time.Add(-2*time.Second)) && r.p.gatewayDown(rx.GatewayIDs.GatewayID, msg.Uplink.RxMetadata[0].Time) {
				t.Errorf("%s f_cnt %d names gateway %s during its outage", u.Topic, msg.Uplink.FCnt, rx.GatewayIDs.GatewayID)
			}
		}
	}

	// Out of order: el-b01-main's readings go out of time order in the
	// fault's window and in order after it.
	var times []time.Time
	for _, e := range r.events {
		if e.Topic == "energy/campus/meter/el-b01-main/reading" {
			_, ev, _ := event.ReadMessage(bus.Message{Topic: e.Topic, Payload: e.Payload})
			times = append(times, ev.Head().Time)
		}
	}
	backwards := 0
	for i := 1; i < len(times); i++ {
		if times[i].Before(times[i-1]) {
			backwards++
			if times[i].After(may12.Add(2 * time.Hour)) {
				t.Errorf("el-b01-main: %s after %s, past the fault", times[i], times[i-1])
			}
		}
	}
	if backwards == 0 {
		t.Error("el-b01-main's readings stayed in order")
	}

	// The meter exchange: the old final reading, the record on the
	// gateway's status, the new start a second later, and readings from
	// the new start on.
	var rec []ExchangeRecord
	values := map[time.Time]float64{}
	for _, e := range r.events {
		_, ev, _ := event.ReadMessage(bus.Message{Topic: e.Topic, Payload: e.Payload})
		switch ev := ev.(type) {
		case *event.Status:
			if ev.Reason == ReasonMeterExchange {
				meter, when, regs, err := ParseExchangeDetail(ev.Detail)
				if err != nil || meter != "ht-b01-main" || !when.Equal(may12.Add(160*time.Minute)) {
					t.Fatalf("exchange record %q: %v %s %s", ev.Detail, err, meter, when)
				}
				rec = regs
			}
		case *event.Measurement:
			if ev.Asset == "ht-b01-main" {
				values[ev.Time.UTC()] = ev.Values[0].Value
			}
		}
	}
	ex := may12.Add(160 * time.Minute)
	if len(rec) != 1 || rec[0].OBIS != "6-0:1.0.0" || rec[0].NewStart != 5 || values[ex] != rec[0].OldFinal || values[ex.Add(time.Second)] != 5 {
		t.Fatalf("exchange record %+v; readings at the exchange %v and after %v", rec, values[ex], values[ex.Add(time.Second)])
	}
	if v := values[may12.Add(165*time.Minute)]; v < 5 || v > 5+rec[0].OldFinal/1000 || values[may12.Add(150*time.Minute)] > rec[0].OldFinal {
		t.Errorf("readings around the exchange: %v before, %v after", values[may12.Add(150*time.Minute)], v)
	}
	// The reset: el-b01-f1 drops to about zero.
	resetBefore, resetAfter := -1.0, -1.0
	for _, tr := range truth {
		if tr.Point == "el-b01-f1/1-0:1.8.0" {
			switch {
			case tr.Time.Equal(may12.Add(time.Hour)):
				resetBefore = *tr.Value
			case tr.Time.Equal(may12.Add(75 * time.Minute)):
				resetAfter = *tr.Value
			}
		}
	}
	if !(resetAfter >= 0 && resetAfter < 10 && resetBefore > 100) {
		t.Errorf("meter reset: %v before, %v after", resetBefore, resetAfter)
	}

	// Rejoins: a join, then frame counters from 0 with a new address.
	for _, c := range []struct{ dev, prefix string }{{"soil-probe-02", "v3/"}, {"npk-probe-01", "application/"}} {
		d, _ := m.Device(c.dev)
		var joined bool
		var first = -1
		for _, u := range r.uplinks {
			if !strings.HasPrefix(u.Topic, c.prefix) || !strings.Contains(strings.ToUpper(u.Topic), strings.ToUpper(d.NetworkID)) && !strings.Contains(u.Topic, strings.ToLower(d.DevEUI)) {
				continue
			}
			if strings.HasSuffix(u.Topic, "/join") {
				joined = true
				continue
			}
			if joined && first < 0 && strings.HasSuffix(u.Topic, "/up") {
				if c.prefix == "v3/" {
					_, msg, _ := tts.Decode(u.Topic, u.Payload)
					first = int(msg.Uplink.FCnt)
				} else {
					ev, _ := chirpstack.Decode(u.Topic, u.Payload)
					first = int(ev.Up.FCnt)
				}
			}
		}
		if !joined || first != 0 {
			t.Errorf("%s: joined %v, first frame counter after it %d", c.dev, joined, first)
		}
	}
	if st.Joins != 2 {
		t.Errorf("%d joins, want 2", st.Joins)
	}

	// The building gateway's outage: its will, the lost values, and its
	// return.
	if len(r.wills) != 1 || !strings.Contains(string(r.wills[0].Payload), `"state":"offline"`) || r.wills[0].Topic != "building/campus/gateway/bms-b01/status" {
		t.Fatalf("wills: %+v", r.wills)
	}
	var online int
	for _, e := range r.events {
		if e.Topic == "building/campus/gateway/bms-b01/status" && strings.Contains(string(e.Payload), `"reason":"connected"`) {
			online++
		}
	}
	if online != 2 {
		t.Errorf("bms-b01 came online %d times, want 2 (at the start and after the outage)", online)
	}
	var lostB int
	for _, tr := range truth {
		inOutage := !tr.Time.Before(may12.Add(3*time.Hour)) && tr.Time.Before(may12.Add(200*time.Minute))
		if tr.Output != "building" {
			continue
		}
		if inOutage != (tr.Lost == "gateway_outage") {
			t.Errorf("%s at %s: lost %q", tr.Point, tr.Time, tr.Lost)
		}
		if inOutage {
			lostB++
		}
	}
	if lostB == 0 {
		t.Error("no building value lost in the gateway's outage")
	}

	// The failing check: a picture event before each check with an
	// anomaly, its bytes in the store.
	pictures := map[string]*event.Picture{}
	var anomalies int
	for _, e := range r.events {
		_, ev, _ := event.ReadMessage(bus.Message{Topic: e.Topic, Payload: e.Payload})
		switch ev := ev.(type) {
		case *event.Picture:
			pictures[ev.Hash] = ev
			name := ev.URL[strings.LastIndex(ev.URL, "/")+1:]
			b, ok := r.pictures.Get(name)
			if !ok || int64(len(b)) != ev.Size || PictureRef(b) != ev.Hash {
				t.Errorf("picture %s: not stored as announced", ev.URL)
			}
		case *event.Check:
			if ev.Check != "b01-escape" {
				if ev.Anomaly != nil {
					t.Errorf("check %s: anomaly %+v", ev.Check, ev.Anomaly)
				}
				continue
			}
			if ev.Anomaly == nil || ev.Anomaly.Kind != "escape_route_blocked" || ev.Observed != "blocked" || pictures[ev.Picture] == nil {
				t.Errorf("check %s: %s", ev.Check, e.Payload)
			}
			anomalies++
		}
	}
	if anomalies == 0 {
		t.Error("the failing check was never made")
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j] < c[j-1]; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
	return c
}

// TestPlayerLoadMode: every source sends all its points at the rate, so
// the campus's points × rate values a second, evenly over the second.
func TestPlayerLoadMode(t *testing.T) {
	m := loadSmall(t)
	const secs, rate = 20, 2
	r := play(t, PlayerConfig{Campus: m, Seed: 5, Start: may12, Until: may12.Add(secs*time.Second - time.Nanosecond), LoadRate: rate})
	truth := r.truth.Records()
	want := len(m.Points) * secs * rate
	if len(truth) != want {
		t.Errorf("%d values in %d s at %d Hz, want %d (%d points)", len(truth), secs, rate, want, len(m.Points))
	}
	perPoint := map[string]int{}
	perSecond := map[int64]int{}
	for _, tr := range truth {
		perPoint[tr.Point]++
		perSecond[tr.Time.Unix()]++
	}
	for _, pt := range m.Points {
		if n := perPoint[pt.ID]; n != secs*rate {
			t.Errorf("%s: %d values, want %d", pt.ID, n, secs*rate)
		}
	}
	for s, n := range perSecond {
		if d := float64(n) - float64(len(m.Points)*rate); math.Abs(d) > 0.1*float64(len(m.Points)*rate) {
			t.Errorf("second %d: %d values, want about %d", s, n, len(m.Points)*rate)
		}
	}
	found := checkUplinks(t, m, r.uplinks)
	for k, v := range checkEvents(t, m, r.events) {
		found[k] = v
	}
	compareTruth(t, truth, found)
}

// TestPlayerCopies: copies have their own ids, topics and DevEUIs, and
// map back to the campus's with CopyOf.
func TestPlayerCopies(t *testing.T) {
	m := loadSmall(t)
	r := play(t, PlayerConfig{Campus: m, Seed: 5, Start: may12, Until: may12.Add(30 * time.Minute), Copies: 3})
	topics := map[int]map[string]bool{}
	euis := map[string]string{}
	for _, d := range r.p.devices {
		if prev, ok := euis[d.eui.String()]; ok {
			t.Fatalf("DevEUI %s of %s and %s", d.eui, d.id, prev)
		}
		euis[d.eui.String()] = d.id
		orig, k := CopyOf(d.id)
		od, ok := m.Device(orig)
		if !ok || d.copy != k {
			t.Fatalf("%s: copy %d of %q", d.id, k, orig)
		}
		back, _ := CopyEUI(d.eui.String(), k)
		if back != od.DevEUI {
			t.Errorf("%s: EUI %s does not map back to %s", d.id, d.eui, od.DevEUI)
		}
	}
	for _, e := range append(r.events, r.uplinks...) {
		level := strings.Split(e.Topic, "/")
		asset := level[3]
		if strings.HasPrefix(e.Topic, "application/") {
			continue
		}
		_, k := CopyOf(asset)
		if topics[k] == nil {
			topics[k] = map[string]bool{}
		}
		topics[k][e.Topic] = true
	}
	if len(topics) != 3 {
		t.Fatalf("topics of %d copies", len(topics))
	}
	for k := 1; k < 3; k++ {
		if len(topics[k]) != len(topics[0]) {
			t.Errorf("copy %d has %d topics, copy 0 %d", k, len(topics[k]), len(topics[0]))
		}
	}
	// Copy 0's events check against the campus model as they are; a
	// copy's, once its ids are mapped back.
	for _, e := range r.events {
		tp, ev, err := event.ReadMessage(bus.Message{Topic: e.Topic, Payload: e.Payload})
		if err != nil {
			t.Fatal(err)
		}
		if _, k := CopyOf(tp.Asset); k != 0 {
			continue
		}
		if err := m.Check(tp, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlayerCopiesMatchModel: what a player of copies publishes is what
// campus.Model.Copies describes: in load mode every point of the copies'
// model is produced and nothing else, every city event checks against
// that model, and every uplink names a device of it (by network id and
// DevEUI) whose codec values match the truth.
func TestPlayerCopiesMatchModel(t *testing.T) {
	m := loadSmall(t)
	const first, n = 1, 2
	cm, err := m.Copies(first, n)
	if err != nil {
		t.Fatal(err)
	}
	r := play(t, PlayerConfig{Campus: m, Seed: 5, Start: may12, Until: may12.Add(2*time.Second - time.Nanosecond), LoadRate: 1,
		Copies: n, FirstCopy: first})
	truth := r.truth.Records()
	produced := map[string]bool{}
	for _, tr := range truth {
		if _, ok := cm.Point(tr.Point); !ok {
			t.Fatalf("the player produced point %s, which the copies' model does not have", tr.Point)
		}
		produced[tr.Point] = true
	}
	for _, p := range cm.Points {
		if !produced[p.ID] {
			t.Errorf("point %s of the copies' model was not produced", p.ID)
		}
	}
	found := checkUplinks(t, cm, r.uplinks)
	for k, v := range checkEvents(t, cm, r.events) {
		found[k] = v
	}
	compareTruth(t, truth, found)
}

// TestPlayerLateDuplicates: an uplink both held back (out of order) and
// sent twice (a duplicate) goes out twice, after the next one, as the
// truth says.
func TestPlayerLateDuplicates(t *testing.T) {
	m := loadSmall(t)
	f, err := ParseFault("kind=out_of_order,asset=soil-probe-01,start=2026-05-12T05:00:00Z,duration=6h,every=2")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewFaultSet([]Fault{f})
	if err != nil {
		t.Fatal(err)
	}
	r := play(t, PlayerConfig{Campus: m, Seed: 8, Start: may12, Until: may12.Add(6 * time.Hour), Faults: fs, DuplicateEvery: 3})
	var truth []Truth
	both := 0
	for _, tr := range r.truth.Records() {
		if tr.DevEUI == "" {
			continue // building and robot values: not the point here
		}
		truth = append(truth, tr)
		if tr.Late && tr.Published == 2 {
			both++
		}
	}
	if both == 0 {
		t.Fatal("no uplink was both late and duplicated")
	}
	type key struct {
		eui  string
		fcnt uint32
	}
	sent := map[key]int{}
	for _, rec := range r.uplinks {
		if !strings.HasPrefix(rec.Topic, "v3/") {
			continue
		}
		_, msg, err := tts.Decode(rec.Topic, rec.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Uplink != nil {
			sent[key{msg.EndDeviceIDs.DevEUI.String(), msg.Uplink.FCnt}]++
		}
	}
	for _, tr := range truth {
		if d, _ := m.DeviceByEUI(tr.DevEUI); d.Type.ID != "dragino-lse01" || tr.FCnt == nil {
			continue
		}
		if got := sent[key{tr.DevEUI, *tr.FCnt}]; got != tr.Published {
			t.Errorf("%s f_cnt %d (late %v) went out %d times, the truth says %d", tr.Point, *tr.FCnt, tr.Late, got, tr.Published)
		}
	}
}

// TestPlayerFirstCopy: a player can play copies from any number on, so
// that several play distinct copies side by side.
func TestPlayerFirstCopy(t *testing.T) {
	r := play(t, PlayerConfig{Seed: 5, Start: may12, Until: may12.Add(20 * time.Minute), Copies: 2, FirstCopy: 5})
	ks := map[int]bool{}
	for _, e := range r.events {
		_, k := CopyOf(strings.Split(e.Topic, "/")[3])
		ks[k] = true
	}
	if len(ks) != 2 || !ks[5] || !ks[6] {
		t.Fatalf("copies played: %v, want 5 and 6", ks)
	}
}

func TestCopyIDs(t *testing.T) {
	for _, c := range []struct {
		id   string
		k    int
		back string
	}{
		{"b03-2.14", 0, "b03-2.14"}, {"b03-2.14", 2, "b03-2.14"}, {"loomi", 100, "loomi"}, {"el-x", 7, "el-x"},
	} {
		got := CopyID(c.id, c.k)
		orig, k := CopyOf(got)
		if orig != c.back || k != c.k {
			t.Errorf("CopyOf(CopyID(%q, %d)) = %q, %d", c.id, c.k, orig, k)
		}
	}
	for _, id := range []string{"a-x0", "a-x01", "a-x", "a-xy"} {
		if orig, k := CopyOf(id); orig != id || k != 0 {
			t.Errorf("CopyOf(%q) = %q, %d; want copy 0", id, orig, k)
		}
	}
	if got := CopyPoint("b03-2.14/co2", "b03-2.14", 3); got != "b03-2.14-x3/co2" {
		t.Errorf("CopyPoint: %s", got)
	}
	e, err := CopyEUI("a840410100000001", 5)
	if err != nil || e != "A840410105000001" {
		t.Errorf("CopyEUI: %s %v", e, err)
	}
	if _, err := CopyEUI("zz", 1); err == nil {
		t.Error("a bad EUI was accepted")
	}
	if _, err := CopyEUI("A840410100000001", 70000); err == nil {
		t.Error("copy 70000 was accepted")
	}
}

// TestExampleCampusScenario: the example scenario for the campus files
// names only what both of them have, and plays.
func TestExampleCampusScenario(t *testing.T) {
	f, err := os.Open("../examples/sim/campus-faults.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ReadScenario(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewFaultSet(sc.Faults)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := referenceCampus()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPlayer(PlayerConfig{Campus: ref, Seed: *sc.Seed, Start: may12, Faults: fs}); err != nil {
		t.Fatalf("reference campus: %v", err)
	}
	r := play(t, PlayerConfig{Seed: *sc.Seed, Start: may12, Until: may12.Add(6 * time.Hour), Faults: fs})
	st := r.p.Stats()
	if st.Lost == 0 || st.Duplicated == 0 || st.Late == 0 || st.Joins != 2 || st.Pictures == 0 || len(r.wills) != 1 {
		t.Errorf("the scenario left too little trace: %+v, %d wills", st, len(r.wills))
	}
}
