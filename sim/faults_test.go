package sim

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/vineyard"
)

func mustFaults(t testing.TB, fs ...Fault) *FaultSet {
	t.Helper()
	s, err := NewFaultSet(fs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// meterRun builds the lecture hall with faults and a twin without, reads
// both every 15 minutes over [start, end] and returns the faulty readings,
// the faulty meter's register and the twin's true consumption.
func meterRun(t *testing.T, seed uint64, id string, start, end time.Time, faults ...Fault) ([]energy.Reading, energy.Register, float64) {
	t.Helper()
	w := mustWeather(t, seed, WeatherConfig{})
	b := mustBuilding(t, seed, w, lectureHall(start, mustFaults(t, faults...)))
	clean := mustBuilding(t, seed, w, lectureHall(start, nil))
	var rs []energy.Reading
	for at := start; !at.After(end); at = at.Add(15 * time.Minute) {
		rs = append(rs, b.Meter(id).Read(at))
	}
	m := clean.Meter(id)
	truth := m.consumed(end) - m.consumed(start)
	return rs, b.Meter(id).Register(end), truth
}

func eventsOf(s energy.Series, kind string) []energy.Event {
	var out []energy.Event
	for _, e := range s.Events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestFaultMeterReset(t *testing.T) {
	start, end := date(2026, 2, 2), date(2026, 2, 9)
	at := date(2026, 2, 5).Add(10 * time.Hour)
	rs, reg, truth := meterRun(t, 1, "b1-el", start, end, Fault{Kind: FaultMeterReset, Asset: "b1-el", Start: at})
	s, err := energy.Consume(rs, reg, energy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	resets := eventsOf(s, energy.EventReset)
	if len(resets) != 1 || !resets[0].Time.Equal(at) || len(s.Events) != 1 {
		t.Fatalf("events %+v, want one reset at %v", s.Events, at)
	}
	if r := rs[len(rs)-1]; r.Value > truth {
		t.Errorf("after the reset the register reads %v, more than the week's consumption %v", r.Value, truth)
	}
	// A reset loses what the old register counted since the last reading
	// (here the quarter hour before the reset): energy counts the new
	// register from zero.
	w := mustWeather(t, 1, WeatherConfig{})
	m := mustBuilding(t, 1, w, lectureHall(start, nil)).Meter("b1-el")
	lost := m.consumed(at) - m.consumed(at.Add(-15*time.Minute))
	if math.Abs(s.Total-(truth-lost)) > 0.05 {
		t.Errorf("consumption across the reset %.2f kWh, want %.2f (%.2f less the %.2f of the quarter hour before it)", s.Total, truth-lost, truth, lost)
	}
}

func TestFaultMeterRollover(t *testing.T) {
	start, end := date(2026, 2, 2), date(2026, 2, 9)
	at := date(2026, 2, 6).Add(14*time.Hour + 15*time.Minute)
	rs, reg, truth := meterRun(t, 2, "b1-el", start, end, Fault{Kind: FaultMeterRollover, Asset: "b1-el", Start: at})
	if rs[0].Value < 0.9*reg.Max {
		t.Fatalf("register starts at %v, not near its maximum %v", rs[0].Value, reg.Max)
	}
	s, err := energy.Consume(rs, reg, energy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rolls := eventsOf(s, energy.EventRollover)
	if len(rolls) != 1 || !rolls[0].Time.Equal(at) || len(s.Events) != 1 {
		t.Fatalf("events %+v, want one rollover at %v", s.Events, at)
	}
	if math.Abs(s.Total-truth) > 0.05 {
		t.Errorf("consumption across the wrap %.2f kWh, true %.2f", s.Total, truth)
	}
}

func TestFaultMeterExchange(t *testing.T) {
	start, end := date(2026, 2, 2), date(2026, 2, 9)
	at := date(2026, 2, 4).Add(9*time.Hour + 40*time.Minute) // between two readings
	w := mustWeather(t, 3, WeatherConfig{})
	b := mustBuilding(t, 3, w, lectureHall(start, mustFaults(t, Fault{Kind: FaultMeterExchange, Asset: "b1-heat", Start: at, NewStart: 12.5})))
	evs := b.Meter("b1-heat").Events(start, end)
	if len(evs) != 1 || evs[0].Kind != energy.EventExchange || evs[0].Exchange == nil || evs[0].Exchange.NewStart != 12.5 {
		t.Fatalf("meter events %+v, want the exchange", evs)
	}
	rs, reg, truth := meterRun(t, 3, "b1-heat", start, end, Fault{Kind: FaultMeterExchange, Asset: "b1-heat", Start: at, NewStart: 12.5})
	if len(reg.Exchanges) != 1 || !reg.Exchanges[0].Time.Equal(at) {
		t.Fatalf("register exchanges %+v", reg.Exchanges)
	}
	s, err := energy.Consume(rs, reg, energy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ex := eventsOf(s, energy.EventExchange); len(ex) != 1 || len(s.Events) != 1 {
		t.Fatalf("events %+v, want one exchange", s.Events)
	}
	if math.Abs(s.Total-truth) > 0.3 {
		t.Errorf("consumption across the exchange %.2f kWh, true %.2f", s.Total, truth)
	}
	// Without the exchange record the same readings look like a reset: the
	// record is what tells the two apart.
	bare := reg
	bare.Exchanges = nil
	s2, _ := energy.Consume(rs, bare, energy.Options{})
	if len(eventsOf(s2, energy.EventReset)) != 1 {
		t.Errorf("without the record: events %+v, want a reset", s2.Events)
	}
}

func TestFaultWaterLeak(t *testing.T) {
	start, end := date(2026, 3, 2), date(2026, 3, 23)
	leakFrom := date(2026, 3, 10).Add(13 * time.Hour)
	rs, reg, truth := meterRun(t, 4, "b1-water", start, end,
		Fault{Kind: FaultWaterLeak, Asset: "b1-water", Start: leakFrom, Duration: 5 * 24 * time.Hour, FlowM3PerH: 0.02})
	s, err := energy.Consume(rs, reg, energy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	flows, sus := energy.WaterLeaks(s, Berlin, energy.LeakRule{})
	if len(sus) != 1 {
		t.Fatalf("leak suspects %+v, want one", sus)
	}
	// The nights of 11 to 15 March lie in the leak: their minimum night
	// flow is the leak's 20 l/h.
	if sus[0].From != "2026-03-11" || sus[0].To != "2026-03-15" || sus[0].Nights != 5 {
		t.Errorf("suspect %+v, want the nights of 2026-03-11 to 2026-03-15", sus[0])
	}
	if math.Abs(sus[0].MinMNF-0.02) > 0.005 {
		t.Errorf("lowest minimum night flow %.4f m³/h, leak 0.02", sus[0].MinMNF)
	}
	for _, f := range flows {
		if f.Date < "2026-03-10" || f.Date > "2026-03-15" {
			if f.MinFlow != 0 {
				t.Errorf("%s: minimum night flow %v outside the leak", f.Date, f.MinFlow)
			}
		}
	}
	if want := truth + 0.02*5*24; math.Abs(s.Total-want) > 0.01 {
		t.Errorf("total %.3f m³, want %.3f with the leak", s.Total, want)
	}
}

// deliver passes the readings through the fault set's delivery decisions,
// as the wiring would.
func deliver(fs *FaultSet, gateway string, rs []energy.Reading) []energy.Reading {
	var out []energy.Reading
	var r Reorder[energy.Reading]
	emit := func(x energy.Reading) { out = append(out, x) }
	for i, x := range rs {
		r.Deliver(fs.Delivery(x.Meter, gateway, x.Time, uint64(i)), x, emit)
	}
	r.Flush(emit)
	return out
}

func TestFaultOutOfOrderAndDuplicates(t *testing.T) {
	start, end := date(2026, 2, 2), date(2026, 2, 4)
	rs, reg, _ := meterRun(t, 5, "b1-el", start, end)
	clean, err := energy.Consume(rs, reg, energy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs := mustFaults(t,
		Fault{Kind: FaultOutOfOrder, Asset: "b1-el", Start: start.Add(6 * time.Hour), Duration: 12 * time.Hour, Every: 5},
		Fault{Kind: FaultDuplicate, Asset: "b1-el", Start: start.Add(20 * time.Hour), Duration: 12 * time.Hour, Every: 3})
	got := deliver(fs, "", rs)
	inversions := 0
	for i := 1; i < len(got); i++ {
		if got[i].Time.Before(got[i-1].Time) {
			inversions++
		}
	}
	// 12 h of quarter hours, every 5th held back: about 10 readings arrive
	// late; every 3rd of 48 arrives twice.
	if inversions < 8 || len(got)-len(rs) < 15 {
		t.Fatalf("%d readings out of order, %d duplicates", inversions, len(got)-len(rs))
	}
	s, err := energy.Consume(got, reg, energy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Duplicates != len(got)-len(rs) || s.Conflicts != 0 {
		t.Errorf("energy found %d duplicates and %d conflicts, want %d and 0", s.Duplicates, s.Conflicts, len(got)-len(rs))
	}
	if s.Total != clean.Total || len(s.Intervals) != len(clean.Intervals) {
		t.Errorf("total %v over %d intervals, clean %v over %d", s.Total, len(s.Intervals), clean.Total, len(clean.Intervals))
	}
}

func TestFaultSilentMeter(t *testing.T) {
	start, end := date(2026, 2, 2), date(2026, 2, 4)
	rs, reg, truth := meterRun(t, 6, "b1-el", start, end)
	from := start.Add(10 * time.Hour)
	fs := mustFaults(t, Fault{Kind: FaultSilent, Asset: "b1-el", Start: from, Duration: 3 * time.Hour})
	got := deliver(fs, "", rs)
	if len(rs)-len(got) != 12 {
		t.Fatalf("%d readings lost, want 12 (3 h of quarter hours)", len(rs)-len(got))
	}
	s, err := energy.Consume(got, reg, energy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Gaps) != 1 || !s.Gaps[0].From.Equal(from.Add(-15*time.Minute)) || !s.Gaps[0].To.Equal(from.Add(3*time.Hour)) {
		t.Fatalf("gaps %+v, want one from %v to %v", s.Gaps, from.Add(-15*time.Minute), from.Add(3*time.Hour))
	}
	if math.Abs(s.Total-truth) > 0.05 {
		t.Errorf("total %v, true %v (the gap's consumption is kept)", s.Total, truth)
	}
}

// TestFaultGatewayOutage drops the uplinks of a vineyard weather station
// behind a gateway for a day; the vineyard package reads the station's
// hourly records and reports the missing hours as a gap.
func TestFaultGatewayOutage(t *testing.T) {
	w := mustWeather(t, 7, WeatherConfig{Site: wartbergSite})
	out := date(2026, 6, 3).Add(8 * time.Hour)
	fs := mustFaults(t, Fault{Kind: FaultGatewayOutage, Asset: "gw-wartberg", Start: out, Duration: 26 * time.Hour})
	var seq uint64
	vw := vineyardHours(w, date(2026, 6, 1), date(2026, 6, 8), func(h time.Time) bool {
		seq++
		// The station sends its hourly record at the end of the hour.
		return !fs.Delivery("station-1", "gw-wartberg", h.Add(time.Hour), seq).Drop
	})
	var buf bytes.Buffer
	if err := vineyard.WriteCSV(&buf, vw.Hours); err != nil {
		t.Fatal(err)
	}
	got, err := vineyard.ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Gaps) != 1 || got.Gaps[0].MissingHours != 26 {
		t.Fatalf("gaps %+v, want one of 26 hours", got.Gaps)
	}
	if _, err := vineyard.Assess(got, vineyard.Config{}); err != nil {
		t.Fatal(err)
	}
	// Other gateways' devices are not affected.
	if fs.Delivery("station-2", "gw-campus", out.Add(time.Hour), 1).Drop {
		t.Error("a device behind another gateway was dropped")
	}
}

func TestFaultWeatherScenarioByAsset(t *testing.T) {
	fs := mustFaults(t, Fault{Kind: FaultDownyWeather, Asset: "wartberg", Start: date(2026, 5, 20), Duration: 31 * 24 * time.Hour})
	w := mustWeather(t, 1, WeatherConfig{Site: wartbergSite, Faults: fs})
	campus := mustWeather(t, 1, WeatherConfig{Site: campusSite, Faults: fs})
	a, err := vineyard.Assess(vineyardHours(w, date(2026, 1, 1), date(2026, 7, 1), nil), vineyard.Config{Downy: vineyard.DownyConfig{ShootCM: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(a.Rule310); n < 10 {
		t.Errorf("the fault's site has %d 3-10 events, want ≥ 10", n)
	}
	if w.RainMM(date(2026, 5, 21), date(2026, 6, 20)) < 2*campus.RainMM(date(2026, 5, 21), date(2026, 6, 20))/3+100 {
		t.Error("the fault did not add rain at its site")
	}
	// Another site keeps its normal weather.
	if campus.scenarioWeight(FavourDownyMildew, date(2026, 6, 1)) != 0 {
		t.Error("the fault leaked to another site")
	}
}

func TestReadScenario(t *testing.T) {
	const file = `# a scenario
seed: 42
faults:
  - kind: water_leak
    asset: b1-water
    start: 2026-03-10T00:00:00+01:00
    duration: 96h
  - {kind: meter_exchange, asset: b1-el, start: "2026-03-12T09:40:00+01:00", new_start: 3.5}
  - {kind: duplicate, asset: soil-7, start: "2026-03-12T00:00:00Z", duration: 2h}
  - {kind: check_fails, asset: b-east-stair, start: "2026-03-12T22:00:00+01:00", duration: 1h, mode: unreadable}
`
	sc, err := ReadScenario(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Seed == nil || *sc.Seed != 42 || len(sc.Faults) != 4 {
		t.Fatalf("scenario %+v", sc)
	}
	f := sc.Faults[0]
	if f.Kind != FaultWaterLeak || f.FlowM3PerH != DefaultLeakM3PerH || f.Duration != 96*time.Hour || !f.Start.Equal(time.Date(2026, 3, 9, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("leak %+v", f)
	}
	if sc.Faults[1].NewStart != 3.5 || sc.Faults[2].Every != DefaultEvery || sc.Faults[3].Mode != "unreadable" {
		t.Errorf("parameters %+v", sc.Faults[1:])
	}
	fs := mustFaults(t, sc.Faults...)
	if len(fs.For("b1-el")) != 1 || len(fs.All()) != 4 || fs.For("nothing") != nil {
		t.Error("fault set index")
	}
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "", "empty"},
		{"unknown key", "faults:\n  - {kind: silent, asset: a, start: 2026-01-01T00:00:00Z, duration: 1h, colour: red}\n", "colour"},
		{"unknown kind", "faults:\n  - {kind: fire, asset: a, start: 2026-01-01T00:00:00Z}\n", "fault 1 (line 2): unknown kind \"fire\""},
		{"no asset", "faults:\n  - {kind: silent, start: 2026-01-01T00:00:00Z, duration: 1h}\n", "asset is empty"},
		{"no start", "faults:\n  - {kind: silent, asset: a, duration: 1h}\n", "start is missing"},
		{"bad start", "faults:\n  - {kind: silent, asset: a, start: yesterday, duration: 1h}\n", "RFC 3339"},
		{"no duration", "faults:\n  - {kind: silent, asset: a, start: 2026-01-01T00:00:00Z}\n", "duration must be positive"},
		{"bad duration", "faults:\n  - {kind: silent, asset: a, start: 2026-01-01T00:00:00Z, duration: 3 days}\n", "Go duration"},
		{"reset with duration", "faults:\n  - {kind: meter_reset, asset: a, start: 2026-01-01T00:00:00Z, duration: 1h}\n", "no duration"},
		{"negative leak", "faults:\n  - {kind: water_leak, asset: a, start: 2026-01-01T00:00:00Z, duration: 1h, flow_m3_per_h: -1}\n", "flow_m3_per_h"},
		{"bad mode", "faults:\n  - {kind: check_fails, asset: a, start: 2026-01-01T00:00:00Z, duration: 1h, mode: maybe}\n", "mode"},
		{"every", "faults:\n  - {kind: duplicate, asset: a, start: 2026-01-01T00:00:00Z, duration: 1h, every: -2}\n", "every"},
		{"second fault line", "faults:\n  - {kind: silent, asset: a, start: 2026-01-01T00:00:00Z, duration: 1h}\n  - {kind: silent, asset: b}\n", "fault 2 (line 3)"},
		{"not yaml", "faults: [", "scenario"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadScenario(strings.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseFault(t *testing.T) {
	f, err := ParseFault("kind=robot_off_corridor, asset=loomi, start=2026-03-02T22:10:00+01:00, duration=90s, offset_m=12")
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != FaultRobotOffCorridor || f.Asset != "loomi" || f.Duration != 90*time.Second || f.OffsetM != 12 {
		t.Errorf("fault %+v", f)
	}
	for _, tc := range []struct{ in, want string }{
		{"kind=silent,asset", "not key=value"},
		{"kind=silent,kind=silent", "twice"},
		{"kind=silent,asset=a,start=2026-01-01T00:00:00Z,duration=1h,colour=red", "unknown key"},
		{"kind=water_leak,asset=a,start=2026-01-01T00:00:00Z,duration=1h,flow_m3_per_h=lots", "not a number"},
		{"kind=duplicate,asset=a,start=2026-01-01T00:00:00Z,duration=1h,every=2.5", "whole number"},
		{"kind=silent,asset=a", "start is missing"},
	} {
		if _, err := ParseFault(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

func TestReorder(t *testing.T) {
	var got []int
	emit := func(v int) { got = append(got, v) }
	var r Reorder[int]
	r.Deliver(Delivery{}, 1, emit)
	r.Deliver(Delivery{HoldBack: true}, 2, emit)
	r.Deliver(Delivery{Drop: true}, 3, emit)
	r.Deliver(Delivery{Duplicate: true}, 4, emit)
	r.Deliver(Delivery{HoldBack: true}, 5, emit)
	r.Flush(emit)
	r.Flush(emit)
	// A duplicate held back is delivered twice when it is released, after
	// the next message or at the end.
	r.Deliver(Delivery{HoldBack: true, Duplicate: true}, 6, emit)
	r.Deliver(Delivery{}, 7, emit)
	r.Deliver(Delivery{HoldBack: true, Duplicate: true}, 8, emit)
	r.Flush(emit)
	if want := []int{1, 4, 4, 2, 5, 7, 6, 6, 8, 8}; !slicesEqual(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestExampleScenario reads the documented example scenario file.
func TestExampleScenario(t *testing.T) {
	f, err := os.Open("../examples/sim/faults.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc, err := ReadScenario(f)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[FaultKind]bool{}
	for _, f := range sc.Faults {
		kinds[f.Kind] = true
	}
	if len(kinds) != len(faultKinds) || sc.Seed == nil {
		t.Errorf("the example uses %d of the %d fault kinds (seed %v)", len(kinds), len(faultKinds), sc.Seed)
	}
	if _, err := NewFaultSet(sc.Faults); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterFaultsRejected(t *testing.T) {
	w := mustWeather(t, 1, WeatherConfig{})
	start := date(2026, 2, 2)
	for _, tc := range []struct {
		name   string
		faults []Fault
		want   string
	}{
		{"rollover after a reset", []Fault{
			{Kind: FaultMeterReset, Asset: "b1-el", Start: start.Add(time.Hour)},
			{Kind: FaultMeterRollover, Asset: "b1-el", Start: start.Add(2 * time.Hour)}}, "must come before"},
		{"rollover at the start", []Fault{{Kind: FaultMeterRollover, Asset: "b1-el", Start: start}}, "not after the start"},
		{"reset before the start", []Fault{{Kind: FaultMeterReset, Asset: "b1-el", Start: start.Add(-time.Hour)}}, "before the start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewBuilding(1, w, lectureHall(start, mustFaults(t, tc.faults...)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
