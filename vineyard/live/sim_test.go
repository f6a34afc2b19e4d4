package live_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
	"github.com/citymesh/citymesh/vineyard"
	"github.com/citymesh/citymesh/vineyard/live"
)

// TestSimulatorDownyMildew: the simulator plays wartberg-01's LoRaWAN
// devices (those of the small campus, the same as the example campus's) as
// The Things Stack publishes their uplinks, with the
// downy_mildew_weather fault on the site; the TTS connector turns them
// into city events; the service raises wartberg-01's downy-mildew risk on
// the day the models give on the same hourly weather (as `citymesh model
// disease` computes it from the weather as a CSV), and raises the alarm.
func TestSimulatorDownyMildew(t *testing.T) {
	if testing.Short() {
		t.Skip("plays five simulated days")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := live.LoadCampus(t)
	loc := m.Location
	start := time.Date(2026, 5, 31, 0, 0, 0, 0, loc)
	faultStart := time.Date(2026, 6, 3, 0, 0, 0, 0, loc)
	faults, err := sim.NewFaultSet([]sim.Fault{{Kind: sim.FaultDownyWeather, Asset: "wartberg", Start: faultStart, Duration: 10 * 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	// The simulator plays the small campus: the same site and the same
	// devices on wartberg-01 (ids, EUIs, application), without the other
	// thirteen plots' uplinks, which the service would ignore.
	small, err := campus.Load("../../examples/campus/small/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := &sim.MemoryOutput{}
	p, err := sim.NewPlayer(sim.PlayerConfig{Campus: small, Seed: 3, Start: start, Until: start.Add(5 * 24 * time.Hour), Faults: faults,
		Outputs: sim.Outputs{TTS: out}, DecodedPayload: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("played in %v: %d messages", time.Since(t0), len(out.Messages()))
	t0 = time.Now()

	// One broker is both The Things Stack's MQTT server and the city bus.
	b, url := live.StartBroker(t)
	conn, err := run.New(run.Config{Campus: "../../examples/campus/campus.yaml",
		TTS: []run.TTSConfig{{Application: "wartberg-ttn", URL: url, APIKey: "test"}}}, run.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := bus.NewLocal(b, "connectors")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Start(ctx, cb); err != nil {
		t.Fatal(err)
	}
	defer func() { conn.Close(); cb.Close() }()
	c := live.Collect(t, url)
	s, err := live.New("vineyard", live.Config{Model: m, Plots: []string{"wartberg-01"}, Debounce: 50 * time.Millisecond, PriorDegreeDays: 200, ShootCM: 15})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := live.RunService(t, b, s, service.NewMemoryStore())

	// The network server's uplinks, paced so that no QoS 0 message is
	// dropped on the way: a chunk, then wait for the service to have them.
	tts, err := bus.DialRemote(ctx, bus.RemoteOptions{URL: url, ClientID: "tts"})
	if err != nil {
		t.Fatal(err)
	}
	defer tts.Close()
	live.WaitFor(t, 10*time.Second, "the connector subscribed", func() bool { return conn.Stats().Connected > 0 })
	// The uplinks of wartberg-01's devices (the service ignores the
	// others; leaving them out keeps the test short).
	pl, _ := m.Plot("wartberg-01")
	mine := map[string]bool{}
	for _, d := range pl.Devices {
		mine[d] = true
	}
	ups := 0
	// Messages copies the whole recording: once, not per uplink (with
	// -race each copy of the 28,000 messages costs milliseconds).
	msgs := out.Messages()
	for i, r := range msgs {
		parts := strings.Split(r.Topic, "/")
		if !strings.HasSuffix(r.Topic, "/up") || len(parts) < 4 || !mine[parts[3]] {
			continue
		}
		if err := tts.Publish(ctx, bus.Message{Topic: r.Topic, Payload: r.Payload, QoS: 1}); err != nil {
			t.Fatal(err)
		}
		ups++
		if ups%500 == 0 || i == len(msgs)-1 {
			live.WaitFor(t, 30*time.Second, "the service to receive the uplinks' measurements", func() bool { return env.Health().EventsIn >= uint64(ups) })
		}
	}
	live.WaitFor(t, 30*time.Second, "the service to receive the uplinks' measurements", func() bool { return env.Health().EventsIn >= uint64(ups) })
	c.Quiet(t, s)
	t.Logf("%d uplinks through the connector and the service in %v", ups, time.Since(t0))

	risk, ok := s.CurrentRisk("wartberg-01")
	if !ok {
		t.Fatal("no risk")
	}
	hours := s.Hours("wartberg-01")
	if len(hours) < 5*24-1 {
		t.Errorf("%d hours of weather, want about %d", len(hours), 5*24)
	}
	// The models on the service's hourly weather, as the service serves it
	// for `citymesh model disease -weather FILE -dd0 200 -shoot-cm 15`.
	rec := httptest.NewRecorder()
	s.HTTPHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/vineyard/plots/wartberg-01/weather.csv", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("weather.csv: %d %s", rec.Code, rec.Body)
	}
	if dir := os.Getenv("VINEYARD_CSV_DIR"); dir != "" {
		os.WriteFile(dir+"/wartberg-01.csv", rec.Body.Bytes(), 0o644)
	}
	w, err := vineyard.ReadCSV(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Hours) != len(hours) {
		t.Errorf("weather.csv has %d hours, the service %d", len(w.Hours), len(hours))
	}
	a, err := vineyard.Assess(w, vineyard.Config{WetRH: vineyard.DefaultWetRH, Downy: vineyard.DownyConfig{PriorDegreeDays: 200, ShootCM: 15, Rule310RainMM: 10, Rule310TempC: 10, Rule310ShootCM: 10, Rule310WindowHours: 24}})
	if err != nil {
		t.Fatal(err)
	}
	firstHigh := func(days []vineyard.DayRisk) string {
		for _, d := range days {
			if d.Level == vineyard.High {
				return d.Date
			}
		}
		return ""
	}
	want := firstHigh(a.Risk[0].Days)
	if want == "" || want < "2026-06-03" {
		t.Fatalf("the models give the first high downy-mildew day %q; the fault starts 2026-06-03", want)
	}
	all, err := s.RiskDays("wartberg-01", vineyard.DiseaseDowny)
	if err != nil {
		t.Fatal(err)
	}
	if got := firstHigh(all); got != want {
		t.Errorf("the service's first high downy-mildew day %s, the models' %s", got, want)
	}
	for _, d := range all {
		if d.Date < "2026-06-03" && d.Level == vineyard.High {
			t.Errorf("high downy-mildew risk on %s, before the fault", d.Date)
		}
	}
	t.Logf("downy mildew high from %s; latest day %s %s", want, risk.Date, risk.Level)
	key := alarm.Key{Site: "wartberg", Kind: "plot", Asset: "wartberg-01", Type: "downy-mildew-risk"}
	live.WaitFor(t, 10*time.Second, "the downy-mildew alarm at the subscriber", func() bool {
		// The collector keeps an active alarm as "{severity} {data}".
		return strings.HasPrefix(c.Snapshot()[key.Topic("alarm")], "major {")
	})
}
