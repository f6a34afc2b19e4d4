package live

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
	"github.com/citymesh/citymesh/vineyard"
)

var campusOnce = sync.OnceValues(func() (*campus.Model, error) { return campus.Load("../../examples/campus/campus.yaml") })

func loadCampus(t testing.TB) *campus.Model {
	t.Helper()
	m, err := campusOnce()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startBroker runs a broker on a loopback port for the test.
func startBroker(t testing.TB) (*broker.Broker, string) {
	t.Helper()
	b := broker.New(broker.Options{SysInterval: -1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); b.Close(); <-done })
	return b, "mqtt://" + ln.Addr().String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// downyStart is the start of the downy-mildew weather of the feeds.
var downyStart = time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC)

// siteWeather is the simulated weather of the Wartberg with the
// downy-mildew scenario from downyStart for 10 days.
func siteWeather(t testing.TB) *sim.Weather {
	t.Helper()
	w, err := sim.NewWeather(7, sim.WeatherConfig{
		Site:      sim.Site{Name: "wartberg", Lat: 49.16, Lon: 9.241, AltitudeM: 250},
		Scenarios: []sim.WeatherScenario{{Kind: sim.FavourDownyMildew, From: downyStart, To: downyStart.Add(10 * 24 * time.Hour)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// feed returns the measurements the devices of plots send from from to to,
// as the connectors publish them: the weather station every 10 minutes
// (rain as the rain of the last hour, mm/h), leaf sensors and soil
// probes every 20 minutes.
func feed(t testing.TB, m *campus.Model, w weather, plots []string, from, to time.Time) []bus.Message {
	t.Helper()
	devs := map[string]bool{}
	for _, p := range plots {
		pl, _ := m.Plot(p)
		for _, d := range pl.Devices {
			devs[d] = true
		}
	}
	devs["weather-station-01"], devs["weather-station-03"] = true, true
	var ids []string
	for d := range devs {
		ids = append(ids, d)
	}
	sort.Strings(ids)
	var out []bus.Message
	for _, id := range ids {
		d, _ := m.Device(id)
		step := 20 * time.Minute
		if d.Type.ID == "sensecap-s2120" {
			step = 10 * time.Minute
		}
		k := 0
		for at := from; at.Before(to); at = at.Add(step) {
			k++
			c := w.At(at)
			var vals []event.Value
			for _, p := range m.PointsOf(id) {
				var v float64
				switch p.Field {
				case "airTemperature":
					v = c.TempC
				case "relativeHumidity":
					v = c.RHPct
				case "rainfall":
					v = w.RainMM(at.Add(-time.Hour), at)
				case "leafMoisture":
					v = 100 * c.LeafWet
				case "phosphorus":
					v = 60 + float64(len(id)%5)*10 + float64(k%3)
				case "potassium":
					v = 150 + float64(id[len(id)-1]%7)*12
				case "soilPh":
					v = 6.2 + float64(id[len(id)-1]%5)*0.15
				default:
					continue
				}
				vals = append(vals, event.Value{Point: p.ID, Value: v, Unit: p.Unit})
			}
			if len(vals) == 0 {
				break
			}
			me := event.NewMeasurement(id, at, event.Source{Type: event.SourceService, Service: "test-connector"}, vals...)
			msg, err := event.NewMessage(d.Topic(event.EventMeasurement), me)
			if err != nil {
				t.Fatal(err)
			}
			msg.Retain = false
			out = append(out, msg)
		}
	}
	// In time order, as a live feed arrives.
	sort.SliceStable(out, func(i, j int) bool {
		var a, b struct {
			Time time.Time `json:"time"`
		}
		json.Unmarshal(out[i].Payload, &a)
		json.Unmarshal(out[j].Payload, &b)
		return a.Time.Before(b.Time)
	})
	return out
}

// weather is what feed reads: *sim.Weather, or a test's own.
type weather interface {
	At(t time.Time) sim.Conditions
	RainMM(from, to time.Time) float64
}

// dryFrom is w until from, then dry: 50 % RH, no rain, dry leaves.
type dryFrom struct {
	*sim.Weather
	from time.Time
}

func (d dryFrom) At(t time.Time) sim.Conditions {
	c := d.Weather.At(t)
	if !t.Before(d.from) {
		c.RHPct, c.LeafWet = 50, 0
	}
	return c
}

func (d dryFrom) RainMM(from, to time.Time) float64 {
	if !to.After(d.from) {
		return d.Weather.RainMM(from, to)
	}
	if from.Before(d.from) {
		return d.Weather.RainMM(from, d.from)
	}
	return 0
}

// TestAlarmClearsWhenRiskFalls: the downy-mildew weather raises the
// alarm; three dry days after it clear it, and the retained alarm says so.
func TestAlarmClearsWhenRiskFalls(t *testing.T) {
	m := loadCampus(t)
	w := dryFrom{siteWeather(t), downyStart.Add(3 * 24 * time.Hour)}
	from := downyStart.Add(-2 * 24 * time.Hour)
	msgs := feed(t, m, w, []string{"wartberg-01"}, from, from.Add(8*24*time.Hour))
	b, url := startBroker(t)
	c := collect(t, url)
	s, err := New("vineyard", testConfig(m, "wartberg-01"))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := runService(t, b, s, service.NewMemoryStore())
	key := alarm.Key{Site: "wartberg", Kind: "plot", Asset: "wartberg-01", Type: "downy-mildew-risk"}
	// Up to the end of the wet days.
	cut := sort.Search(len(msgs), func(i int) bool {
		var e struct {
			Time time.Time `json:"time"`
		}
		json.Unmarshal(msgs[i].Payload, &e)
		return !e.Time.Before(w.from)
	})
	publishAll(t, url, msgs[:cut])
	waitFor(t, 30*time.Second, "events", func() bool { return env.Health().EventsIn >= uint64(cut) })
	c.quiet(t, s)
	if a, ok := s.alarms.Get(key); !ok || a.Status != alarm.Active {
		t.Fatalf("after the wet days: alarm %+v, want active", a)
	}
	publishAll(t, url, msgs[cut:])
	waitFor(t, 30*time.Second, "events", func() bool { return env.Health().EventsIn >= uint64(len(msgs)) })
	c.quiet(t, s)
	a, ok := s.alarms.Get(key)
	if !ok || a.Status != alarm.Cleared {
		t.Fatalf("after the dry days: alarm %+v, want cleared", a)
	}
	c.mu.Lock()
	retained := c.seen[key.Topic("alarm")]
	c.mu.Unlock()
	if !strings.Contains(retained, `"status":"cleared"`) {
		t.Errorf("retained alarm: %.200s", retained)
	}
	// The alarm carries the plot's tenant, for the alarm API's scoping.
	var ra alarm.Alarm
	if err := json.Unmarshal([]byte(retained), &ra); err != nil || ra.Tenant != "wartberg-growers" || a.Tenant != "wartberg-growers" {
		t.Errorf("alarm tenant %q (retained %q, %v), want wartberg-growers", a.Tenant, ra.Tenant, err)
	}
	r, _ := s.CurrentRisk("wartberg-01")
	if r.Diseases[0].AlarmLevel >= vineyard.Moderate {
		t.Errorf("downy-mildew alarm level %s after the dry days", r.Diseases[0].AlarmLevel)
	}
}

// results is what an independent client sees retained: the plots' risk
// and weather messages, and the open alarms' key, severity, status and
// data.
type results map[string]string

// collector subscribes over MQTT to the service's retained results.
type collector struct {
	mu   sync.Mutex
	seen map[string]string
	n    int
}

func collect(t testing.TB, url string) *collector {
	t.Helper()
	c := &collector{seen: map[string]string{}}
	sub, err := bus.DialRemote(context.Background(), bus.RemoteOptions{URL: url, ClientID: "results-" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	h := func(_ context.Context, m bus.Message) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.n++
		if len(m.Payload) == 0 {
			delete(c.seen, m.Topic)
			return
		}
		c.seen[m.Topic] = string(m.Payload)
	}
	for _, f := range []string{"vineyard/+/plot/#", "alarm/+/plot/#", "$tenant/+/vineyard/+/plot/#"} {
		if err := sub.Subscribe(context.Background(), f, 1, h); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// snapshot returns the results: risk and weather verbatim, soil without
// its build time, alarms reduced to what does not depend on the history.
func (c *collector) snapshot() results {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := results{}
	for k, v := range c.seen {
		switch {
		case len(k) > 6 && k[:6] == "alarm/":
			var a alarm.Alarm
			if json.Unmarshal([]byte(v), &a) != nil {
				continue
			}
			if a.Status != alarm.Active {
				continue
			}
			out[k] = string(a.Severity) + " " + string(a.Data)
		case len(k) > 5 && k[len(k)-5:] == "/soil":
			var s Soil
			json.Unmarshal([]byte(v), &s)
			s.Time = time.Time{}
			out[k] = string(marshal(s))
		default:
			out[k] = v
		}
	}
	return out
}

// quiet waits until c has received nothing for 400 ms and the service
// has no flush pending.
func (c *collector) quiet(t testing.TB, s *Service) {
	t.Helper()
	last, since := -1, time.Now()
	waitFor(t, 60*time.Second, "results settle", func() bool {
		c.mu.Lock()
		n := c.n
		c.mu.Unlock()
		if n != last {
			last, since = n, time.Now()
			return false
		}
		return time.Since(since) > 400*time.Millisecond && s.riskDeb.Pending() == 0 && s.soilDeb.Pending() == 0
	})
}

// runService runs s over a local bus of b with store st until the
// returned stop is called.
func runService(t testing.TB, b *broker.Broker, s *Service, st *service.Store) (env *service.Env, stop func()) {
	t.Helper()
	lb, err := bus.NewLocal(b, "svc-"+s.Name())
	if err != nil {
		t.Fatal(err)
	}
	env = service.NewTestEnv(s.Name(), lb, st.State(s.Name()), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, env) }()
	waitFor(t, 10*time.Second, "service running", func() bool { return env.Health().Status == service.StatusRunning })
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			lb.Close()
		})
	}
	t.Cleanup(stop)
	return env, stop
}

func testConfig(m *campus.Model, plots ...string) Config {
	return Config{Model: m, Plots: plots, Debounce: 30 * time.Millisecond, PriorDegreeDays: 200, ShootCM: 15}
}

func publishAll(t testing.TB, url string, msgs []bus.Message) {
	t.Helper()
	pub, err := bus.DialRemote(context.Background(), bus.RemoteOptions{URL: url, ClientID: "pub-" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, m := range msgs {
		if err := pub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// deliver runs a fresh service on a fresh broker, feeds it msgs (with a
// restart after restartAt of them when restartAt > 0) and returns what a
// subscriber sees.
func deliver(t *testing.T, m *campus.Model, msgs []bus.Message, restartAt int) results {
	b, url := startBroker(t)
	c := collect(t, url)
	st := service.NewMemoryStore()
	s, err := New("vineyard", testConfig(m, "wartberg-01", "wartberg-02"))
	if err != nil {
		t.Fatal(err)
	}
	env, stop := runService(t, b, s, st)
	first := msgs
	if restartAt > 0 {
		first = msgs[:restartAt]
	}
	publishAll(t, url, first)
	waitFor(t, 60*time.Second, "events delivered", func() bool { return env.Health().EventsIn >= uint64(len(first)) })
	if restartAt > 0 {
		stop()
		s2, err := New("vineyard", testConfig(m, "wartberg-01", "wartberg-02"))
		if err != nil {
			t.Fatal(err)
		}
		s = s2
		env, _ = runService(t, b, s, st)
		publishAll(t, url, msgs[restartAt:])
		waitFor(t, 60*time.Second, "events delivered", func() bool { return env.Health().EventsIn >= uint64(len(msgs)-restartAt) })
	}
	c.quiet(t, s)
	if h := env.Health(); h.Errors > 0 {
		t.Errorf("service errors: %d, last %s", h.Errors, h.LastError)
	}
	return c.snapshot()
}

// TestOrderDuplicatesRestart: the results after a shuffled delivery with
// duplicates and a restart in the middle equal those of the same events
// delivered once in order.
func TestOrderDuplicatesRestart(t *testing.T) {
	m := loadCampus(t)
	w := siteWeather(t)
	from := downyStart.Add(-2 * 24 * time.Hour)
	msgs := feed(t, m, w, []string{"wartberg-01", "wartberg-02"}, from, from.Add(5*24*time.Hour))
	want := deliver(t, m, msgs, 0)
	if len(want) == 0 {
		t.Fatal("no results in order")
	}
	for _, k := range []string{"vineyard/wartberg/plot/wartberg-01/risk", "vineyard/wartberg/plot/wartberg-02/weather", "vineyard/wartberg/plot/wartberg-01/soil", "alarm/wartberg/plot/wartberg-01/downy-mildew-risk"} {
		if want[k] == "" {
			t.Errorf("in order: no %s; have %v", k, mapKeysS(want))
		}
	}
	// The plots' tenant reads the same in its namespace.
	for _, k := range []string{"vineyard/wartberg/plot/wartberg-01/risk", "vineyard/wartberg/plot/wartberg-02/weather", "vineyard/wartberg/plot/wartberg-01/soil"} {
		if c := want["$tenant/wartberg-growers/"+k]; c != want[k] {
			t.Errorf("the tenant's copy of %s: %.80q, want %.80q", k, c, want[k])
		}
	}

	// Shuffled, a quarter delivered twice, a restart halfway.
	r := rand.New(rand.NewPCG(1, 2))
	mixed := append([]bus.Message{}, msgs...)
	for i := 0; i < len(msgs)/4; i++ {
		mixed = append(mixed, msgs[r.IntN(len(msgs))])
	}
	r.Shuffle(len(mixed), func(i, j int) { mixed[i], mixed[j] = mixed[j], mixed[i] })
	got := deliver(t, m, mixed, len(mixed)/2)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s differs:\nin order: %.300s\nmixed:    %.300s", k, v, got[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("mixed delivery has %s, in order has not", k)
		}
	}
}

func mapKeysS(m results) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestRiskMatchesModel: the plot's day-by-day risk equals the models' on
// the plot's own hourly weather (what `citymesh model disease` computes
// from the same hours as a CSV), and the downy-mildew weather raises the
// risk on the day the models say.
func TestRiskMatchesModel(t *testing.T) {
	m := loadCampus(t)
	w := siteWeather(t)
	from := downyStart.Add(-3 * 24 * time.Hour)
	msgs := feed(t, m, w, []string{"wartberg-01"}, from, from.Add(7*24*time.Hour))
	b, url := startBroker(t)
	c := collect(t, url)
	s, err := New("vineyard", testConfig(m, "wartberg-01"))
	if err != nil {
		t.Fatal(err)
	}
	runService(t, b, s, service.NewMemoryStore())
	publishAll(t, url, msgs)
	c.quiet(t, s)
	s.mu.Lock()
	res := s.mu.results["wartberg-01"]
	s.mu.Unlock()
	if res == nil {
		t.Fatal("no result")
	}
	if len(res.hours) != 7*24 {
		t.Errorf("%d hours, want %d", len(res.hours), 7*24)
	}
	a, err := vineyard.Assess(vineyard.Weather{Hours: res.hours}, vineyard.Config{Downy: vineyard.DownyConfig{PriorDegreeDays: 200, ShootCM: 15}, From: time.Date(2026, 1, 1, 0, 0, 0, 0, m.Location)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(marshal(res.assessment.Risk)), string(marshal(a.Risk)); got != want {
		t.Errorf("risk differs from the models'")
	}
	firstHigh := func(rs []vineyard.DiseaseRisk) string {
		for _, d := range rs[0].Days {
			if d.Level == vineyard.High {
				return d.Date
			}
		}
		return ""
	}
	day := firstHigh(a.Risk)
	if day == "" || day < downyStart.Format("2006-01-02") {
		t.Fatalf("first high downy-mildew day %q, want on or after %s", day, downyStart.Format("2006-01-02"))
	}
	// The models on the simulator's exact hourly weather give the same day.
	var exact []vineyard.Hour
	for at := from; at.Before(from.Add(7 * 24 * time.Hour)); at = at.Add(time.Hour) {
		c := w.At(at.Add(30 * time.Minute))
		exact = append(exact, vineyard.Hour{Time: at.In(m.Location), TempC: c.TempC, RHPct: c.RHPct, RainMM: w.RainMM(at, at.Add(time.Hour)), LeafWet: c.LeafWet, HasLeafWet: true})
	}
	ea, err := vineyard.Assess(vineyard.Weather{Hours: exact}, vineyard.Config{Downy: vineyard.DownyConfig{PriorDegreeDays: 200, ShootCM: 15}})
	if err != nil {
		t.Fatal(err)
	}
	if d := firstHigh(ea.Risk); d != day {
		t.Errorf("first high day: service %s, models on the simulator's hourly weather %s", day, d)
	}
	t.Logf("downy mildew high from %s (scenario from %s)", day, downyStart.Format("2006-01-02"))
	waitFor(t, 5*time.Second, "downy-mildew alarm", func() bool {
		a, ok := s.alarms.Get(alarm.Key{Site: "wartberg", Kind: "plot", Asset: "wartberg-01", Type: "downy-mildew-risk"})
		return ok && a.Status == alarm.Active && a.Severity == alarm.Major
	})
	snap := c.snapshot()
	if v := snap["alarm/wartberg/plot/wartberg-01/downy-mildew-risk"]; v == "" {
		t.Errorf("no retained alarm seen by the subscriber")
	}
}

// TestLateValuesAndPruning: values more than late_days behind the latest
// hour are dropped and their hours kept as they were; the raw values of
// those hours are deleted from the state.
func TestLateValuesAndPruning(t *testing.T) {
	m := loadCampus(t)
	w := siteWeather(t)
	from := downyStart.Add(-4 * 24 * time.Hour)
	msgs := feed(t, m, w, []string{"wartberg-01"}, from, from.Add(5*24*time.Hour))
	b, url := startBroker(t)
	c := collect(t, url)
	cfg := testConfig(m, "wartberg-01")
	cfg.LateDays = 2
	s, err := New("vineyard", cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := service.NewMemoryStore()
	env, _ := runService(t, b, s, st)
	publishAll(t, url, msgs)
	waitFor(t, 30*time.Second, "events", func() bool { return env.Health().EventsIn >= uint64(len(msgs)) })
	c.quiet(t, s)
	first := s.Hours("wartberg-01")[0]
	// A late copy of the first hour's values with another temperature.
	late := event.NewMeasurement("weather-station-01", from.Add(5*time.Minute), event.Source{Type: event.SourceService, Service: "test"},
		event.Value{Point: "weather-station-01/temperature", Value: 35, Unit: "CEL"},
		event.Value{Point: "weather-station-01/relativeHumidity", Value: 20, Unit: "P1"})
	dev, _ := m.Device("weather-station-01")
	msg, err := event.NewMessage(dev.Topic(event.EventMeasurement), late)
	if err != nil {
		t.Fatal(err)
	}
	publishAll(t, url, []bus.Message{msg})
	waitFor(t, 10*time.Second, "the late event", func() bool { return env.Health().EventsIn >= uint64(len(msgs)+1) })
	c.quiet(t, s)
	if got := s.Hours("wartberg-01")[0]; got != first {
		t.Errorf("first hour changed by a value older than late_days: %+v, was %+v", got, first)
	}
	s.mu.Lock()
	tooLate, horizon := s.mu.tooLate, s.horizonLocked()
	s.mu.Unlock()
	if tooLate != 2 {
		t.Errorf("%d values dropped as too late, want 2", tooLate)
	}
	old, kept := 0, 0
	st.State("vineyard").Scan("r/", func(key string, _ []byte) error {
		hour, _ := strconv.ParseInt(key[strings.LastIndexByte(key[:len(key)-19], '/')+1:len(key)-19], 16, 64)
		if hour < horizon-24*3600 {
			old++
		} else {
			kept++
		}
		return nil
	})
	if old != 0 || kept == 0 {
		t.Errorf("raw values: %d of hours a day before the horizon, %d kept", old, kept)
	}
	if len(s.Hours("wartberg-01")) != 5*24 {
		t.Errorf("%d hours, want all %d kept", len(s.Hours("wartberg-01")), 5*24)
	}
}
