package sim

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/energy"
)

func mustBuilding(t testing.TB, seed uint64, w *Weather, cfg BuildingConfig) *Building {
	t.Helper()
	b, err := NewBuilding(seed, w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readEvery reads every meter of b every step over [from, to].
func readEvery(b *Building, from, to time.Time, step time.Duration) []energy.Reading {
	var out []energy.Reading
	for t := from; !t.After(to); t = t.Add(step) {
		for _, m := range b.Meters() {
			out = append(out, m.Read(t))
		}
	}
	return out
}

func lectureHall(start time.Time, faults *FaultSet) BuildingConfig {
	return BuildingConfig{ID: "b1", Kind: KindLecture, FloorAreaM2: 6000, Start: start, Faults: faults,
		Meters: []MeterConfig{
			{ID: "b1-el", Flow: FlowElectricity},
			{ID: "b1-heat", Flow: FlowHeat},
			{ID: "b1-water", Flow: FlowWater},
		}}
}

// meanKW returns the mean electric load of b over the local hours [h0, h1)
// of day.
func meanKW(b *Building, day time.Time, h0, h1 int) float64 {
	var sum float64
	n := 0
	for m := h0 * 60; m < h1*60; m += 5 {
		sum += b.Loads(day.Add(time.Duration(m) * time.Minute)).ElectricityKW
		n++
	}
	return sum / float64(n)
}

func TestBuildingLoadShape(t *testing.T) {
	w := mustWeather(t, 2, WeatherConfig{})
	b := mustBuilding(t, 2, w, lectureHall(date(2026, 1, 1), nil))
	wed, sat, sun := date(2026, 5, 6), date(2026, 5, 9), date(2026, 5, 10)
	ascension := date(2026, 5, 14) // a Thursday and a public holiday
	dayPeak := meanKW(b, wed, 10, 12)
	night := meanKW(b, wed, 1, 4)
	satPeak := meanKW(b, sat, 10, 12)
	sunPeak := meanKW(b, sun, 10, 12)
	holiday := meanKW(b, ascension, 10, 12)
	t.Logf("lecture hall, May: weekday 10–12 h %.0f kW, night %.0f kW, Saturday %.0f, Sunday %.0f, Ascension %.0f", dayPeak, night, satPeak, sunPeak, holiday)
	switch {
	case dayPeak < 3*night:
		t.Errorf("weekday peak %.0f kW not ≥ 3 × the night's %.0f", dayPeak, night)
	case satPeak > 0.5*dayPeak:
		t.Errorf("Saturday %.0f kW not below half the weekday's %.0f", satPeak, dayPeak)
	case sunPeak > 1.3*night || holiday > 1.3*night:
		t.Errorf("Sunday %.0f kW or holiday %.0f kW above the night base %.0f", sunPeak, holiday, night)
	}
	// Outside the lecture period the campus is quieter.
	aug := meanKW(b, date(2026, 8, 12), 10, 12)
	if aug > 0.8*dayPeak {
		t.Errorf("August weekday %.0f kW, lecture-period weekday %.0f kW", aug, dayPeak)
	}
}

// TestBuildingYear runs a lecture hall for a year with its meters read
// every 15 minutes and checks the annual consumption the energy package
// computes against the building's configured intensities, and heating
// against degree days (VDI 3807 heating days, G20/15).
func TestBuildingYear(t *testing.T) {
	w := mustWeather(t, 3, WeatherConfig{})
	start := date(2026, 1, 1)
	end := start.AddDate(1, 0, 0)
	b := mustBuilding(t, 3, w, lectureHall(start, nil))
	rs := readEvery(b, start, end, 15*time.Minute)
	per := map[string]float64{}
	series := map[string]energy.Series{}
	for _, m := range b.Meters() {
		s, err := energy.Consume(rs, m.Register(end), energy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Events) != 0 || len(s.Gaps) != 0 {
			t.Errorf("%s: events %v, gaps %v in a year without faults", m.ID(), s.Events, s.Gaps)
		}
		per[m.ID()] = s.Total / 6000
		series[m.ID()] = s
	}
	// Degree days of the simulated year: Σ (20 − Tm) over days with a mean
	// below 15 °C.
	temps := map[string]float64{}
	var gt float64
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		var sum float64
		for h := range 24 {
			sum += w.At(d.Add(time.Duration(h)*time.Hour + 30*time.Minute)).TempC
		}
		tm := sum / 24
		temps[d.Format(time.DateOnly)] = tm
		if tm < heatingLimitC {
			gt += degreeDayBaseC - tm
		}
	}
	t.Logf("per m²: electricity %.1f kWh, heat %.1f kWh, water %.3f m³; G20/15 %.0f K·d", per["b1-el"], per["b1-heat"], per["b1-water"], gt)
	if e := per["b1-el"]; math.Abs(e-60)/60 > 0.12 {
		t.Errorf("electricity %.1f kWh/m², configured 60", e)
	}
	if v := per["b1-water"]; math.Abs(v-0.12)/0.12 > 0.15 {
		t.Errorf("water %.3f m³/m², configured 0.12", v)
	}
	// Heat scales with the year's degree days against the reference year;
	// set-back at nights and weekends saves a part.
	want := 90 * (0.05 + 0.95*gt/referenceDegreeDay)
	if h := per["b1-heat"]; h < 0.55*want || h > 1.05*want {
		t.Errorf("heat %.1f kWh/m², expected 55–105 %% of %.1f for %.0f K·d", h, want, gt)
	}
	// Daily heat against heating degree days on heating days: a good linear
	// fit (ASHRAE Guideline 14 hourly criteria on daily data).
	var heating []energy.DayValue
	for _, d := range energy.DailyTotals(series["b1-heat"], Berlin) {
		if tm, ok := temps[d.Date]; ok && tm < heatingLimitC {
			heating = append(heating, d)
		}
	}
	fit, err := energy.FitDegreeDays(heating, temps, degreeDayBaseC, energy.DeviationRule{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("heat = %.0f + %.0f·HDD kWh/day, CV(RMSE) %.1f %%", fit.Intercept, fit.Slope, fit.Fit.CVRMSE)
	if fit.Slope <= 0 || fit.Fit.CVRMSE > 30 {
		t.Errorf("heat against degree days: slope %.1f, CV(RMSE) %.1f %%", fit.Slope, fit.Fit.CVRMSE)
	}
	// Summer: no space heating, only hot water.
	if h := b.Loads(date(2026, 7, 20).Add(3 * time.Hour)).HeatKW; h > 0.5 {
		t.Errorf("heating %.1f kW on a July night", h)
	}
}

// TestWaterNightMinimum: a normal building's water meter shows a zero
// flow in some quarter hour of every night (night flushes are sparse), so
// the energy package finds no leak.
func TestWaterNightMinimum(t *testing.T) {
	w := mustWeather(t, 4, WeatherConfig{})
	start := date(2026, 3, 1)
	end := date(2026, 4, 1)
	for _, k := range []BuildingKind{KindLecture, KindOffice, KindCanteen, KindResidence} {
		b := mustBuilding(t, 4, w, BuildingConfig{ID: "b-" + string(k), Kind: k, FloorAreaM2: 5000, Start: start,
			Meters: []MeterConfig{{ID: "water", Flow: FlowWater}}})
		s, err := energy.Consume(readEvery(b, start, end, 15*time.Minute), b.Meter("water").Register(end), energy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		flows, sus := energy.WaterLeaks(s, Berlin, energy.LeakRule{})
		if len(sus) != 0 {
			t.Errorf("%s: leak suspects %+v without a leak", k, sus)
		}
		var day float64
		for _, f := range flows {
			day += f.MeanFlow / float64(len(flows))
		}
		if day <= 0 {
			t.Errorf("%s: no water used", k)
		}
	}
}

func TestPVExport(t *testing.T) {
	w := mustWeather(t, 5, WeatherConfig{})
	start := date(2026, 6, 1)
	b := mustBuilding(t, 5, w, BuildingConfig{ID: "pv", Kind: KindOffice, FloorAreaM2: 2000, PVkWp: 300, Start: start,
		Meters: []MeterConfig{{ID: "imp", Flow: FlowElectricity}, {ID: "exp", Flow: FlowElectricityExport}, {ID: "gen", Flow: FlowPV}}})
	var exported, nightExport, generated float64
	for at := start; at.Before(start.AddDate(0, 0, 14)); at = at.Add(10 * time.Minute) {
		l := b.Loads(at)
		if l.ImportKW > 0 && l.ExportKW > 0 {
			t.Fatalf("%v: importing %v and exporting %v at once", at, l.ImportKW, l.ExportKW)
		}
		if math.Abs(l.ElectricityKW-l.PVKW-(l.ImportKW-l.ExportKW)) > 1e-9 {
			t.Fatalf("%v: balance broken: %+v", at, l)
		}
		exported += l.ExportKW
		generated += l.PVKW
		if w.At(at).Sun.ElevationDeg < 0 {
			nightExport += l.ExportKW + l.PVKW
		}
	}
	if nightExport != 0 {
		t.Errorf("PV at night: %v", nightExport)
	}
	if exported <= 0 {
		t.Error("a 300 kWp roof on a 2000 m² office never exports in June")
	}
	// The registers agree with the loads: generation = consumption −
	// import + export.
	end := start.AddDate(0, 0, 14)
	d := func(id string) float64 { return b.Meter(id).Read(end).Value - b.Meter(id).Read(start).Value }
	gen := d("gen")
	t.Logf("14 June days: generated %.0f kWh, exported %.0f kWh, imported %.0f kWh", gen, d("exp"), d("imp"))
	if gen < 0.8*generated/6 || gen > 1.2*generated/6 {
		t.Errorf("generation register %.0f kWh, loads integrate to %.0f", gen, generated/6)
	}
}

func TestRegistersQuantisedAndMonotonic(t *testing.T) {
	w := mustWeather(t, 6, WeatherConfig{})
	start := date(2026, 2, 1)
	b := mustBuilding(t, 6, w, BuildingConfig{ID: "r", Kind: KindCanteen, FloorAreaM2: 1500, Heating: HeatGas, Start: start,
		Meters: []MeterConfig{{ID: "el", Flow: FlowElectricity}, {ID: "gas", Flow: FlowGas}, {ID: "water", Flow: FlowWater, Share: 0.5},
			{ID: "heat", Flow: FlowHeat, Decimals: -1}}})
	prev := map[string]float64{}
	for _, r := range readEvery(b, start, start.AddDate(0, 0, 10), 7*time.Minute) {
		m := b.Meter(r.Meter)
		if r.Value < 0 || r.Value >= m.max {
			t.Fatalf("%s: %v outside the register", r.Meter, r.Value)
		}
		if q := r.Value / m.res; math.Abs(q-math.Round(q)) > 1e-6 {
			t.Fatalf("%s: %v not a multiple of %v", r.Meter, r.Value, m.res)
		}
		if r.Value < prev[r.Meter] {
			t.Fatalf("%s: %v after %v", r.Meter, r.Value, prev[r.Meter])
		}
		prev[r.Meter] = r.Value
	}
	if b.Meter("gas").Unit() != "m3" || b.Meter("el").Unit() != "kWh" || b.Meter("gas").OBIS().String() != "7-0:3.0.0" {
		t.Error("units or OBIS codes wrong")
	}
}

func TestBuildingDeterministic(t *testing.T) {
	w := mustWeather(t, 8, WeatherConfig{})
	start := date(2026, 10, 1)
	a := mustBuilding(t, 8, w, lectureHall(start, nil))
	b := mustBuilding(t, 8, w, lectureHall(start, nil))
	ra := readEvery(a, start, start.AddDate(0, 0, 3), 15*time.Minute)
	// b reads its meters in a different order and jumps back in time.
	b.Meter("b1-water").Read(start.AddDate(0, 0, 3))
	b.Meter("b1-el").Read(start.AddDate(0, 0, 1))
	rb := readEvery(b, start, start.AddDate(0, 0, 3), 15*time.Minute)
	if !reflect.DeepEqual(ra, rb) {
		t.Fatal("same seed, different readings")
	}
	c := mustBuilding(t, 9, w, lectureHall(start, nil))
	if reflect.DeepEqual(ra, readEvery(c, start, start.AddDate(0, 0, 3), 15*time.Minute)) {
		t.Fatal("different seeds, same readings")
	}
}

func TestNewBuildingRejects(t *testing.T) {
	w := mustWeather(t, 1, WeatherConfig{})
	start := date(2026, 1, 1)
	ok := func() BuildingConfig { return lectureHall(start, nil) }
	for _, tc := range []struct {
		name string
		edit func(*BuildingConfig)
		want string
	}{
		{"kind", func(c *BuildingConfig) { c.Kind = "stadium" }, "unknown building kind"},
		{"area", func(c *BuildingConfig) { c.FloorAreaM2 = 0 }, "floor area"},
		{"start", func(c *BuildingConfig) { c.Start = time.Time{} }, "start"},
		{"heating", func(c *BuildingConfig) { c.Heating = "coal" }, "heating"},
		{"flow", func(c *BuildingConfig) { c.Meters[0].Flow = "steam" }, "unknown flow"},
		{"duplicate meter", func(c *BuildingConfig) { c.Meters[1].ID = c.Meters[0].ID }, "used twice"},
		{"share", func(c *BuildingConfig) { c.Meters[0].Share = 2 }, "share"},
		{"initial", func(c *BuildingConfig) { c.Meters[0].Initial = 1e7 }, "initial"},
		{"obis", func(c *BuildingConfig) { c.Meters[0].OBIS = "x" }, "obis"},
		{"negative intensity", func(c *BuildingConfig) { c.HeatKWhPerM2 = -1 }, "heat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.edit(&c)
			_, err := NewBuilding(1, w, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestTariffRegisters: the tariff registers 1-0:1.8.1 (T1: Monday to
// Friday, 6–22 h) and 1-0:1.8.2 (T2: the rest) split the import register
// between them: over a week their advances add up to the total's, T1 does
// not move at night or at the weekend, T2 not on weekday daytime.
func TestTariffRegisters(t *testing.T) {
	w := mustWeather(t, 1, WeatherConfig{})
	start := date(2026, 5, 11) // a Monday
	b := mustBuilding(t, 1, w, BuildingConfig{ID: "b", Kind: KindOffice, FloorAreaM2: 4000, Start: start, Meters: []MeterConfig{
		{ID: "total", Flow: FlowElectricity, Initial: 1000}, {ID: "t1", Flow: FlowElectricityT1, Initial: 1000}, {ID: "t2", Flow: FlowElectricityT2, Initial: 1000},
	}})
	if b.Meter("t1").OBIS().String() != "1-0:1.8.1" || b.Meter("t2").OBIS().String() != "1-0:1.8.2" {
		t.Fatalf("default OBIS codes %s, %s", b.Meter("t1").OBIS(), b.Meter("t2").OBIS())
	}
	read := func(id string, at time.Time) float64 { return b.Meter(id).Read(at).Value }
	prev := map[string]float64{"total": 1000, "t1": 1000, "t2": 1000}
	for at := start.Add(time.Hour); !at.After(start.AddDate(0, 0, 7)); at = at.Add(time.Hour) {
		lt := at.Add(-time.Minute).In(Berlin) // the hour just ended
		day := lt.Weekday() >= time.Monday && lt.Weekday() <= time.Friday && lt.Hour() >= 6 && lt.Hour() < 22
		d1, d2 := read("t1", at)-prev["t1"], read("t2", at)-prev["t2"]
		if day && d2 != 0 || !day && d1 != 0 {
			t.Errorf("%s (high tariff %v): T1 advanced %v, T2 %v", lt.Format(time.RFC3339), day, d1, d2)
		}
		for id := range prev {
			prev[id] = read(id, at)
		}
	}
	end := start.AddDate(0, 0, 7)
	if sum, total := read("t1", end)+read("t2", end)-2000, read("total", end)-1000; math.Abs(sum-total) > 0.02 || total < 1000 {
		t.Errorf("a week: T1 + T2 advanced %v, the total %v", sum, total)
	}
}

// TestInitialRegisters checks the default initial readings: 2 to 15 years
// of the building's annual amount times the meter's share, tariff
// registers of one meter adding up to its total, and a small register
// that would overflow kept two years below its end.
func TestInitialRegisters(t *testing.T) {
	w := mustWeather(t, 3, WeatherConfig{})
	start := date(2026, 1, 1)
	cfg := BuildingConfig{ID: "b9", Kind: KindOffice, FloorAreaM2: 4000, Start: start, PVkWp: 80,
		ElectricityKWhPerM2: 100, HeatKWhPerM2: 80, WaterM3PerM2: 0.3,
		Meters: []MeterConfig{
			{ID: "el-main/1-0:1.8.0", Flow: FlowElectricity, Digits: 9},
			{ID: "el-main/1-0:1.8.1", Flow: FlowElectricityT1, Digits: 9},
			{ID: "el-main/1-0:1.8.2", Flow: FlowElectricityT2, Digits: 9},
			{ID: "el-main/1-0:2.8.0", Flow: FlowElectricityExport, Digits: 9},
			{ID: "el-f1/1-0:1.8.0", Flow: FlowElectricity, Share: 0.25, Digits: 8},
			{ID: "ht-main/6-0:1.0.0", Flow: FlowHeat, Digits: 8},
			{ID: "wa-main/8-0:1.0.0", Flow: FlowWater, Digits: 7},
			{ID: "tiny/1-0:1.8.0", Flow: FlowElectricity, Digits: 6}, // 400 MWh a year: wraps
		}}
	b := mustBuilding(t, 3, w, cfg)
	at := func(id string) float64 { return b.Meter(id).Read(start).Value }
	for _, c := range []struct {
		id   string
		year float64
	}{
		{"el-main/1-0:1.8.0", 400_000},
		{"el-main/1-0:2.8.0", 80_000},
		{"el-f1/1-0:1.8.0", 100_000},
		{"ht-main/6-0:1.0.0", 320_000},
		{"wa-main/8-0:1.0.0", 1_200},
	} {
		if v := at(c.id); v < 2*c.year*0.999 || v > 15*c.year*1.001 {
			t.Errorf("%s starts at %.2f, want 2–15 years of %.0f", c.id, v, c.year)
		}
	}
	if sum, total := at("el-main/1-0:1.8.1")+at("el-main/1-0:1.8.2"), at("el-main/1-0:1.8.0"); math.Abs(sum-total) > 0.02 {
		t.Errorf("tariff registers add up to %.2f, total %.2f", sum, total)
	}
	if v := at("tiny/1-0:1.8.0"); v < 0 || v >= 1e6-2*400_000 {
		t.Errorf("a 6-digit register starts at %.2f, want below %v", v, 1e6-2*400_000)
	}
}
