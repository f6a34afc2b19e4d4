package energy

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestESG checks the arithmetic with a factor set whose numbers are test
// values (only the 363 g/kWh for 2024 is the UBA figure).
//
//	location electricity: 100 000 kWh × 363 g/kWh = 36.3 t
//	market: 40 MWh by guarantees of origin at 0 g, 60 000 kWh × 500 g residual = 30 t
//	natural gas (Scope 1): 50 000 kWh × 201 g = 10.05 t
//	mix: renewable 40 + 60 × 0.6 = 76 MWh, fossil 24 + 50 = 74 MWh, total 150 MWh
//	intensity: 150 MWh / 3 M€ = 50 MWh per million
func TestESG(t *testing.T) {
	f, err := ReadFactorsYAML(strings.NewReader(`
defaults: uba
location:
  natural_gas: {0: 201}
residual:
  electricity: {2024: 500}
mix:
  electricity: {fossil: 0.4, nuclear: 0, renewable: 0.6}
contracts:
  - {name: hydro GoO, carrier: electricity, kind: certificate, factor: 0, mwh: 40, renewable: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	rev := 3e6
	rep, err := ESG([]CarrierUse{{Electricity, 60_000}, {NaturalGas, 50_000}, {Electricity, 40_000}, {Water, 12}}, f, 2024, &rev)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Carriers) != 2 || !near(rep.Scope2LocT, 36.3) || !near(rep.Scope2MktT, 30) || !near(rep.Scope1T, 10.05) ||
		!near(rep.TotalMWh, 150) || !near(rep.Renewable, 76) || !near(rep.Fossil, 74) || rep.Nuclear != 0 ||
		!near(rep.RenewableShare, 76.0/150) || rep.IntensityMWhPerMEUR == nil || !near(*rep.IntensityMWhPerMEUR, 50) {
		t.Errorf("got %+v", rep)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "water") {
		t.Errorf("notes %v", rep.Notes)
	}
	// 2025 has no UBA figure here: 2024's is used and noted; without a
	// residual mix the market-based method falls back to the grid factor.
	rep, err = ESG([]CarrierUse{{Electricity, 1000}}, UBAFactors(), 2025, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !near(rep.Scope2LocT, 0.363) || !near(rep.Scope2MktT, 0.363) || rep.IntensityMWhPerMEUR != nil || len(rep.Notes) != 3 || rep.Unclassified != 1 {
		t.Errorf("fallbacks: %+v", rep)
	}
	if _, err := ESG([]CarrierUse{{NaturalGas, 1}}, UBAFactors(), 2024, nil); err == nil || !strings.Contains(err.Error(), "no location-based factor for natural_gas") {
		t.Errorf("missing factor: %v", err)
	}
	if _, err := ESG([]CarrierUse{{Electricity, 1}}, UBAFactors(), 2010, nil); err == nil {
		t.Errorf("a year before every factor must fail")
	}
	g := GEGFactors()
	rep, err = ESG([]CarrierUse{{Heat, 1000}, {NaturalGas, 1000}}, g, 2026, nil)
	if err != nil || !near(rep.Scope2LocT, 0.18) || !near(rep.Scope1T, 0.24) {
		t.Errorf("GEG: %+v %v", rep, err)
	}
	for _, bad := range []string{
		"defaults: other",
		"mix: {electricity: {fossil: 0.5, nuclear: 0, renewable: 0.6}}",
		"contracts: [{carrier: electricity, kind: rec}]",
		"contracts: [{kind: ppa}]",
		"location: {electricity: {2024: -1}}",
		"",
	} {
		if _, err := ReadFactorsYAML(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestUsesFromSeries(t *testing.T) {
	site := Site{Meters: []Meter{{ID: "MAIN", OBIS: "1-0:1.8.0"}, {ID: "SUB", OBIS: "1-0:1.8.0"}, {ID: "G", OBIS: "7-0:3.0.0", Factor: 10.5}},
		Tenants: []Tenant{{ID: "T", AreaM2: 1, Meters: []string{"SUB"}}},
		Shared:  []Allocation{{Meter: "MAIN", SubMeters: []string{"SUB"}, Tenants: []string{"T"}}}}
	uses, err := UsesFromSeries([]Series{{Meter: "MAIN", OBIS: "1-0:1.8.0", Total: 100}, {Meter: "SUB", OBIS: "1-0:1.8.0", Total: 40}, {Meter: "G", OBIS: "7-0:3.0.0", Total: 2}, {Meter: "X", OBIS: "1-0:1.8.0", Total: 5}}, site)
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) != 2 || uses[0] != (CarrierUse{Electricity, 100}) || uses[1] != (CarrierUse{NaturalGas, 21}) {
		t.Errorf("got %+v (sub-meters are inside the main meter, gas m³ × 10.5 kWh/m³)", uses)
	}
}

// TestGoodnessOfFit reproduces small hand computations of the ASHRAE
// Guideline 14 metrics.
func TestGoodnessOfFit(t *testing.T) {
	for _, tc := range []struct {
		y, yhat   []float64
		p         int
		cv, nmbe  float64
		month, hr bool
	}{
		// errors +1, 0, −1: Σe² = 2, ȳ = 12: √(2/3)/12 = 6.804 %, NMBE 0.
		{[]float64{10, 12, 14}, []float64{11, 12, 13}, 0, 100 * math.Sqrt(2.0/3) / 12, 0, true, true},
		// with p = 1: √(2/2)/12 = 8.333 %.
		{[]float64{10, 12, 14}, []float64{11, 12, 13}, 1, 100.0 / 12, 0, true, true},
		// constant over-prediction by 10 %: CV 10 %, NMBE +10 %: fails monthly, meets hourly.
		{[]float64{100, 100, 100, 100}, []float64{110, 110, 110, 110}, 0, 10, 10, false, true},
		// errors −20, +20 on ȳ = 50: CV 40 %: fails both.
		{[]float64{40, 60}, []float64{20, 80}, 0, 40, 0, false, false},
	} {
		f, err := GoodnessOfFit(tc.y, tc.yhat, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if !near(f.CVRMSE, tc.cv) || !near(f.NMBE, tc.nmbe) || f.MonthlyOK != tc.month || f.HourlyOK != tc.hr {
			t.Errorf("%v vs %v p=%d: got %+v, want cv %v nmbe %v", tc.y, tc.yhat, tc.p, f, tc.cv, tc.nmbe)
		}
	}
	for _, tc := range []struct {
		y, yhat []float64
		p       int
	}{{[]float64{1}, []float64{1, 2}, 0}, {[]float64{1, 2}, []float64{1, 2}, 2}, {[]float64{0, 0}, []float64{1, 1}, 0}, {[]float64{math.NaN()}, []float64{1}, 0}, {[]float64{1, 2}, []float64{math.Inf(1), 2}, 0}} {
		if _, err := GoodnessOfFit(tc.y, tc.yhat, tc.p); err == nil {
			t.Errorf("%v %v %d: want an error", tc.y, tc.yhat, tc.p)
		}
	}
}

func TestFitDegreeDays(t *testing.T) {
	// consumption = 50 + 10·HDD with base 15 °C.
	temps := map[string]float64{"2026-01-01": 5, "2026-01-02": 10, "2026-01-03": 15, "2026-01-04": 20, "2026-01-05": 0}
	var days []DayValue
	for _, d := range []string{"2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06"} {
		v := 50.0
		if tc, ok := temps[d]; ok {
			v = 50 + 10*HDD(tc, 15)
		}
		days = append(days, DayValue{Date: d, Value: v, Complete: true})
	}
	b, err := FitDegreeDays(days, temps, 15, DeviationRule{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(b.Intercept, 50) || !near(b.Slope, 10) || b.Fit.N != 5 || b.Fit.CVRMSE > 1e-9 || len(b.Deviations) != 0 {
		t.Errorf("got %+v", b)
	}
	if _, err := FitDegreeDays(days[:2], temps, 15, DeviationRule{}); err == nil {
		t.Error("two days: want an error")
	}
}

func TestDeviations(t *testing.T) {
	labels := []string{"a", "b", "c", "d", "e"}
	got := Deviations(labels, []float64{10, 13, 13, 10, 20}, []float64{10, 10, 10, 10, 10}, DeviationRule{Rel: 0.2, Abs: 2, MinPeriods: 2})
	if len(got) != 1 || got[0].From != "b" || got[0].To != "c" || got[0].Periods != 2 || got[0].Measured != 26 || got[0].Baseline != 20 {
		t.Errorf("got %+v", got)
	}
	// Relative but not absolute: 1.5 > 20 % of 5 but not > 2.
	if got := Deviations([]string{"x"}, []float64{6.5}, []float64{5}, DeviationRule{Rel: 0.2, Abs: 2}); len(got) != 0 {
		t.Errorf("got %+v", got)
	}
}

// series builds a series of 15-minute intervals from a per-interval function
// of local time.
func series(t *testing.T, start time.Time, days int, f func(l time.Time) float64) Series {
	t.Helper()
	var rs []Reading
	v := 0.0
	n := days * 96
	for i := 0; i <= n; i++ {
		ts := start.Add(time.Duration(i) * 15 * time.Minute)
		rs = append(rs, Reading{ts, "W", water, v})
		v += f(ts.In(start.Location()))
	}
	s, err := Consume(rs, Register{Meter: "W", OBIS: water}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNightBaseLoad(t *testing.T) {
	loc := berlin(t)
	start := time.Date(2026, 2, 2, 0, 0, 0, 0, loc)
	s := series(t, start, 10, func(l time.Time) float64 {
		if l.Hour() < 6 {
			if l.Day() == 10 {
				return 2
			}
			return 1
		}
		return 3
	})
	got := NightBaseLoad(s, loc, NightRule{})
	if len(got) != 10 {
		t.Fatalf("got %d nights", len(got))
	}
	for i, n := range got {
		wantFlag := n.Date == "2026-02-10"
		if n.Flag != wantFlag {
			t.Errorf("%s: flag %v, want %v (%+v)", n.Date, n.Flag, wantFlag, n)
		}
		if i == 0 && (!near(n.Base, 4) || !near(n.DayMean, 12) || !near(n.Ratio, 1.0/3)) {
			t.Errorf("first night: %+v (1 kWh per quarter hour = 4 kW; day 12 kW)", n)
		}
	}
}

func TestWaterLeaks(t *testing.T) {
	loc := berlin(t)
	start := time.Date(2026, 2, 2, 0, 0, 0, 0, loc)
	s := series(t, start, 6, func(l time.Time) float64 {
		if l.Hour() >= 1 && l.Hour() < 5 {
			if l.Day() >= 4 && l.Day() <= 6 {
				return 0.01 // 40 l/h never stops: a leak
			}
			return 0
		}
		return 0.2
	})
	flows, sus := WaterLeaks(s, loc, LeakRule{})
	if len(flows) != 6 || len(sus) != 1 || sus[0].From != "2026-02-04" || sus[0].To != "2026-02-06" || sus[0].Nights != 3 || !near(sus[0].MinMNF, 0.04) {
		t.Errorf("flows %+v suspects %+v", flows, sus)
	}
	if flows[0].NonZero || !flows[2].NonZero || flows[2].Ratio <= 0 {
		t.Errorf("flows %+v", flows)
	}
	if _, sus := WaterLeaks(s, loc, LeakRule{Nights: 4}); len(sus) != 0 {
		t.Errorf("4 nights needed: %+v", sus)
	}
}

func TestHourOfWeek(t *testing.T) {
	loc := berlin(t)
	start := time.Date(2026, 2, 2, 0, 0, 0, 0, loc) // a Monday
	s := series(t, start, 21, func(l time.Time) float64 {
		v := 1.0
		if l.Weekday() != time.Saturday && l.Weekday() != time.Sunday && l.Hour() >= 8 && l.Hour() < 18 {
			v = 5
		}
		if l.Day() == 18 && l.Hour() == 3 {
			v = 10 // an unusual night
		}
		return v
	})
	b, err := FitHourOfWeek(s, loc, 14, DeviationRule{Rel: 0.2, Abs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if b.Fit.CVRMSE > 1e-9 || b.TrainedHours != 14*24 || len(b.Deviations) != 1 || b.Deviations[0].From != "2026-02-18T02:00:00Z" {
		t.Errorf("got %+v", b)
	}
	if _, err := FitHourOfWeek(s, loc, 0, DeviationRule{}); err == nil {
		t.Error("zero training days: want an error")
	}
}

func TestDailyTotalsDST(t *testing.T) {
	loc := berlin(t)
	start := time.Date(2026, 3, 29, 0, 0, 0, 0, loc) // 23-hour day: 92 quarter hours
	s := series(t, start, 1, func(time.Time) float64 { return 1 })
	days := DailyTotals(s, loc)
	if len(days) != 2 || days[0].Value != 92 || !days[0].Complete || days[1].Complete {
		t.Errorf("got %+v", days)
	}
}

func TestReadTemperatureCSV(t *testing.T) {
	m, err := ReadTemperatureCSV(strings.NewReader("date,temp_c\n2026-01-01,-3.5\n2026-01-02, 4\n"))
	if err != nil || len(m) != 2 || m["2026-01-01"] != -3.5 {
		t.Fatalf("got %v %v", m, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"}, {"day,t\n", "want columns"}, {"date,temp_c\n2026-13-01,1\n", "line 2: field date"},
		{"date,temp_c\n2026-01-01,hot\n", "line 2: field temp_c"}, {"date,temp_c\n2026-01-01,99\n", "-90..60"},
		{"date,temp_c\n2026-01-01,1\n2026-01-01,2\n", "line 3: date 2026-01-01 twice"}, {"date,temp_c\n2026-01-01\n", "missing fields"},
	} {
		if _, err := ReadTemperatureCSV(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzReadReadingsCSV(f *testing.F) {
	f.Add([]byte("time,meter,obis,value\n2026-01-05T00:00:00+01:00,M1,1-0:1.8.0,100.5\n2026-01-05T00:15:00+01:00,M1,1-0:1.8.0,101\n"))
	f.Add([]byte("obis,value,time,meter\n1.8.0,1,2026-01-05T00:00:00Z,X\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ReadReadingsCSV(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Meter == "" || r.Value < 0 || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
				t.Fatalf("reader accepted %+v", r)
			}
		}
		// Whatever the reader accepts, consumption must not panic.
		_, _ = ConsumeAll(rs, nil, Options{FillGaps: true})
	})
}

func FuzzReadTemperatureCSV(f *testing.F) {
	f.Add([]byte("date,temp_c\n2026-01-01,-3.5\n2026-01-02,4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadTemperatureCSV(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for d, v := range m {
			if _, err := time.Parse(time.DateOnly, d); err != nil || v < -90 || v > 60 {
				t.Fatalf("reader accepted %q %v", d, v)
			}
		}
	})
}

// BenchmarkConsumeMeterMonth computes one meter-month: 30 days of 15-minute
// readings (2,881) in random order with 1 % identical duplicates.
func BenchmarkConsumeMeterMonth(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rs []Reading
	v := 0.0
	for i := 0; i <= 30*96; i++ {
		rs = append(rs, Reading{t0.Add(time.Duration(i) * 15 * time.Minute), "M1", elec, v})
		if i%100 == 0 {
			rs = append(rs, rs[len(rs)-1])
		}
		v += r.Float64()
	}
	r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	reg := Register{Meter: "M1", OBIS: elec, Max: 1e6}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := Consume(rs, reg, Options{})
		if err != nil || len(s.Intervals) != 30*96 {
			b.Fatal(err, len(s.Intervals))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*35666/1e9, "s/35666-meters")
}

// BenchmarkRunningBillingAdd adds one 15-minute reading to a live bill of
// one tenant and recomputes the invoice, as real-time billing does.
func BenchmarkRunningBillingAdd(b *testing.B) {
	loc, _ := time.LoadLocation("Europe/Berlin")
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	site := Site{Meters: []Meter{{ID: "M1", OBIS: "1-0:1.8.0"}}, Tenants: []Tenant{{ID: "T", AreaM2: 1, Meters: []string{"M1"}}}}
	tf, err := ReadTariffYAML(strings.NewReader(tariffYAML))
	if err != nil {
		b.Fatal(err)
	}
	rb, err := NewRunningBilling(site, tf, InvoiceOptions{From: from, To: from.AddDate(0, 1, 0)})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 15*96; i++ { // half a month already in
		rb.Add(Reading{from.Add(time.Duration(i) * 15 * time.Minute), "M1", elec, float64(i)})
	}
	i := 15 * 96
	b.ReportAllocs()
	for b.Loop() {
		rb.Add(Reading{from.Add(time.Duration(i) * 15 * time.Minute), "M1", elec, float64(i)})
		i++
		if _, _, err := rb.Invoices(); err != nil {
			b.Fatal(err)
		}
	}
}
