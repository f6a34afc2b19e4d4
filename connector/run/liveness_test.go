package run

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/lorawantest"
)

// statuses returns the statuses published on a device's status topic.
func statuses(t *testing.T, ms []bus.Message, topic string) []*event.Status {
	var out []*event.Status
	for _, m := range onTopic(ms, topic) {
		out = append(out, read(t, m).(*event.Status))
	}
	return out
}

// sendTTS delivers an uplink of device id with frame counter fCnt.
func (tr *testRuntime) sendTTS(t *testing.T, id string, fCnt uint32, mutate func(*lorawantest.Uplink)) {
	t.Helper()
	d, app := tr.device(t, id)
	up := lorawantest.Uplink{App: app, Device: d, FCnt: fCnt,
		Values: lorawantest.RandomValues(rand.New(rand.NewPCG(uint64(fCnt), 7)), d.Type), ReceivedAt: tr.clock.Now()}
	if mutate != nil {
		mutate(&up)
	}
	topic, body, err := up.TTS()
	if err != nil {
		t.Fatal(err)
	}
	tr.deliver(t, app.ID, topic, body)
}

func TestLivenessManualClock(t *testing.T) {
	tr := newTestRuntime(t, nil)
	rec := record(t, tr.b, "+/+/device/+/status")
	t0 := tr.clock.Now()
	probe, _ := tr.device(t, "soil-probe-01")
	station, _ := tr.device(t, "weather-station-01")
	probeTopic, stationTopic := probe.Topic(event.EventStatus).String(), station.Topic(event.EventStatus).String()
	if n := tr.live.len(); n != len(tr.model.Devices) {
		t.Fatalf("%d devices in the liveness heap, want %d", n, len(tr.model.Devices))
	}

	tr.sendTTS(t, "soil-probe-01", 1, nil)
	waitStats(t, tr, func(st Stats) bool { return st.Received == 1 })
	rec.waitFor("soil-probe-01 online", func(ms []bus.Message) bool { return len(onTopic(ms, probeTopic)) == 1 })

	// The weather station (10 minutes) was never heard: offline 21
	// minutes after the start. The probe (20 minutes) is not yet.
	tr.clock.Advance(41*time.Minute + 59*time.Second)
	ms := rec.waitFor("the weather station offline", func(ms []bus.Message) bool { return len(onTopic(ms, stationTopic)) == 1 })
	st := statuses(t, ms, stationTopic)[0]
	if st.State != event.Offline || st.Reason != event.ReasonSilent || st.LastSeen != nil || st.Source.Type != event.SourceService ||
		!strings.Contains(st.Detail, "since the connector started") {
		t.Errorf("weather station: %+v", st)
	}
	if got := len(onTopic(ms, probeTopic)); got != 1 {
		t.Fatalf("soil-probe-01: %d statuses before its deadline", got)
	}

	// 42 minutes (2.1 intervals) after its uplink, the probe is offline,
	// at that very time.
	tr.clock.Advance(time.Second)
	ms = rec.waitFor("soil-probe-01 offline", func(ms []bus.Message) bool { return len(onTopic(ms, probeTopic)) == 2 })
	st = statuses(t, ms, probeTopic)[1]
	if st.State != event.Offline || st.Reason != event.ReasonSilent || st.LastSeen == nil || !st.LastSeen.Equal(t0) ||
		!st.Time.Equal(t0.Add(42*time.Minute)) || st.Battery == nil || st.Battery.Point != "soil-probe-01/battery" {
		t.Errorf("soil-probe-01 offline: %+v (want at %v, last seen %v)", st, t0.Add(42*time.Minute), t0)
	}

	// It comes back: online, and offline again 42 minutes later.
	tr.clock.Advance(time.Hour)
	tr.sendTTS(t, "soil-probe-01", 2, nil)
	waitStats(t, tr, func(st Stats) bool { return st.Received == 2 })
	ms = rec.waitFor("soil-probe-01 back online", func(ms []bus.Message) bool { return len(onTopic(ms, probeTopic)) == 3 })
	if st := statuses(t, ms, probeTopic)[2]; st.State != event.Online || st.Reason != event.ReasonUplink {
		t.Errorf("soil-probe-01 back: %+v", st)
	}
	// Uplinks on time keep it online without a status each.
	for i := range 5 {
		tr.clock.Advance(20 * time.Minute)
		tr.sendTTS(t, "soil-probe-01", uint32(3+i), nil)
		// Its events out: the device was heard at this time, not later.
		waitStats(t, tr, func(st Stats) bool { return st.Published[event.KindUplink] == uint64(3+i) })
	}
	last := tr.clock.Now()
	tr.clock.Advance(42*time.Minute - time.Second)
	if got := len(onTopic(rec.waitFor("", func([]bus.Message) bool { return true }), probeTopic)); got != 3 {
		t.Fatalf("soil-probe-01: %d statuses while it sends on time, want 3", got)
	}
	tr.clock.Advance(time.Second)
	ms = rec.waitFor("soil-probe-01 offline again", func(ms []bus.Message) bool { return len(onTopic(ms, probeTopic)) == 4 })
	if st := statuses(t, ms, probeTopic)[3]; st.State != event.Offline || !st.Time.Equal(last.Add(42*time.Minute)) || !st.LastSeen.Equal(last) {
		t.Errorf("soil-probe-01 offline again: %+v, want at %v", st, last.Add(42*time.Minute))
	}
	// Every device of the model is offline now; the heap holds none.
	waitStats(t, tr, func(st Stats) bool { return st.Offline == len(tr.model.Devices) })
	if n := tr.live.len(); n != 0 {
		t.Errorf("%d devices in the heap with every device offline", n)
	}
}

// waitStats waits until cond holds of the runtime's stats.
func waitStats(t *testing.T, tr *testRuntime, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(tr.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out; stats %+v", tr.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLivenessOnTime checks the offline status on the real clock: it comes
// within 10 % of the device's interval after the deadline.
func TestLivenessOnTime(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1, Logger: quiet})
	defer b.Close()
	l, _ := bus.NewLocal(b, "connectors")
	defer l.Close()
	rec := record(t, b, "+/+/device/+/status")
	cfg := Config{Campus: filepath.Join("testdata", "fast", "campus.yaml"), Codecs: codecDir,
		TTS: []TTSConfig{{Application: "fast-ttn", URL: "tcp://127.0.0.1:1", APIKey: "k"}}, ReconnectMin: time.Hour}
	r, err := New(cfg, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); r.Close() }()
	if err := r.Start(ctx, l); err != nil {
		t.Fatal(err)
	}
	tr := &testRuntime{Runtime: r, b: b, clock: nil}
	d1, app := tr.device(t, "fast-probe-1")
	d2, _ := tr.device(t, "fast-probe-2")
	sentAt := make(map[string]time.Time)
	for _, d := range []string{"fast-probe-1", "fast-probe-2"} {
		dev, _ := tr.device(t, d)
		up := lorawantest.Uplink{App: app, Device: dev, FCnt: 1, Values: lorawantest.RandomValues(rand.New(rand.NewPCG(1, 1)), dev.Type)}
		topic, body, err := up.TTS()
		if err != nil {
			t.Fatal(err)
		}
		sentAt[d] = time.Now()
		tr.deliver(t, app.ID, topic, body)
	}
	for _, d := range []struct {
		id       string
		topic    string
		interval time.Duration
	}{{"fast-probe-1", d1.Topic(event.EventStatus).String(), time.Second}, {"fast-probe-2", d2.Topic(event.EventStatus).String(), 2 * time.Second}} {
		rec.waitFor(d.id+" offline", func(ms []bus.Message) bool { return len(onTopic(ms, d.topic)) == 2 })
		rec.mu.Lock()
		var arrived time.Time
		n := 0
		for _, m := range rec.ms {
			if m.Topic == d.topic {
				n++
				if n == 2 {
					st := read(t, m).(*event.Status)
					arrived = st.Time
				}
			}
		}
		rec.mu.Unlock()
		late := arrived.Sub(sentAt[d.id]) - time.Duration(2.1*float64(d.interval))
		t.Logf("%s: offline %v after its deadline", d.id, late)
		if late < 0 || late > d.interval/10 {
			t.Errorf("%s: offline %v after its deadline of 2.1 intervals, want within 10 %% of %v", d.id, late, d.interval)
		}
	}
}
