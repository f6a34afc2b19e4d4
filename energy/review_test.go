package energy

import (
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const dstTariffYAML = `
tariffs:
  - carrier: electricity
    bands:
      - {name: night, price: "0.20", from: "00:00", to: "06:00"}
      - {name: day, price: "0.30"}
    standing_charge: {amount: "1000.00", per: month}
`

// TestInvoiceBandsAcrossDST bills one kWh per quarter hour on the two DST
// days of 2026 in Europe/Berlin. Bands are read in local time: on 29 March
// (92 quarter hours) the night band 00:00–06:00 holds 2 h + 3 h = 20 quarter
// hours, on 25 October (100 quarter hours) 3 h + the repeated hour 02–03 +
// 3 h = 28; the day band holds 72 on both. The standing charge of 1000.00 a
// month for one day is 1000 × 1/31 = 32.258 → 32.26 (the quantity shown,
// 0.0323 months, would give 32.30).
func TestInvoiceBandsAcrossDST(t *testing.T) {
	loc := berlin(t)
	site := readSite(t, "meters: [{id: M, obis: '1-0:1.8.0'}]\ntenants: [{id: T, area_m2: 1, meters: [M]}]")
	for _, tc := range []struct {
		day          time.Time
		n            int
		night, daySt string
	}{
		{time.Date(2026, 3, 29, 0, 0, 0, 0, loc), 92, "20", "72"},
		{time.Date(2026, 10, 25, 0, 0, 0, 0, loc), 100, "28", "72"},
	} {
		to := tc.day.AddDate(0, 0, 1)
		if got := int(to.Sub(tc.day) / (15 * time.Minute)); got != tc.n {
			t.Fatalf("%s has %d quarter hours, want %d", tc.day.Format(time.DateOnly), got, tc.n)
		}
		rs := ramp("M", elec, tc.day, tc.n, 15*time.Minute, 0, 1)
		inv, _, err := Invoices(rs, site, readTariff(t, dstTariffYAML), InvoiceOptions{From: tc.day, To: to})
		if err != nil {
			t.Fatal(err)
		}
		ls := inv[0].Lines
		if len(ls) != 3 || !ls[0].Quantity.Equal(dec(tc.night)) || !ls[1].Quantity.Equal(dec(tc.daySt)) {
			t.Fatalf("%s: lines %+v", tc.day.Format(time.DateOnly), ls)
		}
		if !ls[2].Quantity.Equal(dec("0.0323")) || !ls[2].Amount.Equal(dec("32.26")) {
			t.Errorf("%s: standing charge %s months = %s, want 0.0323 months = 32.26", tc.day.Format(time.DateOnly), ls[2].Quantity, ls[2].Amount)
		}
		if inv[0].Estimated {
			t.Errorf("%s: complete data marked estimated: %v", tc.day.Format(time.DateOnly), inv[0].Notes)
		}
	}
}

// TestNonFiniteInputRefused: values that are not finite numbers, or that
// overflow once multiplied, give an error, never a panic (decimal.NewFromFloat
// panics on ±Inf and NaN).
func TestNonFiniteInputRefused(t *testing.T) {
	tf := readTariff(t, dstTariffYAML)
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, site string
		value      float64
		want       string
	}{
		{"factor inf", "meters: [{id: M, obis: '1-0:1.8.0', factor: .inf}]\ntenants: [{id: T, meters: [M]}]", 1, "finite"},
		{"factor nan", "meters: [{id: M, obis: '1-0:1.8.0', factor: .nan}]\ntenants: [{id: T, meters: [M]}]", 1, "finite"},
		{"max rate inf", "meters: [{id: M, obis: '1-0:1.8.0', max_rate: .inf}]\ntenants: [{id: T, meters: [M]}]", 1, "finite"},
		{"area inf", "meters: [{id: M, obis: '1-0:1.8.0'}]\ntenants: [{id: T, area_m2: .inf, meters: [M]}]", 1, "finite"},
		{"overflow", "meters: [{id: M, obis: '1-0:1.8.0', factor: 1e300}]\ntenants: [{id: T, meters: [M]}]", 1e300, "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site, err := ReadSiteYAML(strings.NewReader(tc.site))
			if err == nil {
				rs := []Reading{{t0, "M", elec, 0}, {t0.Add(15 * time.Minute), "M", elec, tc.value}}
				_, _, err = Invoices(rs, site, tf, InvoiceOptions{From: t0, To: t0.Add(time.Hour)})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	half := decimal.RequireFromString("0.5")
	for _, users := range [][]HeatingUser{
		{{"a", math.Inf(1), 1}, {"b", 1, 1}},
		{{"a", 1, math.Inf(1)}, {"b", 1, 1}},
		{{"a", math.MaxFloat64, 1}, {"b", math.MaxFloat64, 1}},
	} {
		if _, err := SplitHeatingCost(decimal.NewFromInt(100), half, users); err == nil {
			t.Errorf("heating split %v: want an error", users)
		}
	}
	for name, f := range map[string]FactorSet{
		"NaN mix":          {Mix: map[Carrier]EnergyMix{Electricity: {Fossil: math.NaN()}}},
		"Inf contract":     {Contracts: []Contract{{Carrier: Electricity, Kind: "ppa", Factor: math.Inf(1)}}},
		"Inf contract MWh": {Contracts: []Contract{{Carrier: Electricity, Kind: "ppa", MWh: math.Inf(1)}}},
	} {
		if err := f.Check(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := ESG([]CarrierUse{{Electricity, math.MaxFloat64}, {Electricity, math.MaxFloat64}}, UBAFactors(), 2024, nil); err == nil {
		t.Error("ESG: overflowing total: want an error")
	}
}

// TestAnomalyRulesDoNotPanic: a negative night-load window means the
// default, and Deviations examines only as many periods as all three slices
// hold.
func TestAnomalyRulesDoNotPanic(t *testing.T) {
	s := series(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 10, func(time.Time) float64 { return 1 })
	got := NightBaseLoad(s, time.UTC, NightRule{Window: -3})
	want := NightBaseLoad(s, time.UTC, NightRule{})
	if len(got) != len(want) || got[9] != want[9] {
		t.Errorf("window -3: got %+v, want the default window's %+v", got, want)
	}
	d := Deviations([]string{"a"}, []float64{100, 100}, []float64{1, 1}, DeviationRule{})
	if len(d) != 1 || d[0].Periods != 1 || d[0].From != "a" {
		t.Errorf("got %+v, want one deviation of one period at a", d)
	}
}

// TestConsumeFarApartReadings: two readings 50 years apart are one unfilled
// gap. Consume used to allocate every interval of the span (1.75 million
// quarter hours, over 100 MB); now an unfilled gap costs nothing. A filled
// gap of more than maxIntervals intervals is refused.
func TestConsumeFarApartReadings(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	rs := []Reading{{t0, "M", elec, 0}, {t0.Add(15 * time.Minute), "M", elec, 1}, {t0.AddDate(50, 0, 0), "M", elec, 9}, {t0.AddDate(50, 0, 0).Add(15 * time.Minute), "M", elec, 10}}
	reg := Register{Meter: "M", OBIS: elec}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s, err := Consume(rs, reg, Options{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Intervals) != 2 || len(s.Gaps) != 1 || s.Total != 10 || s.Intervals[1].Start != t0.AddDate(50, 0, 0) {
		t.Errorf("got %d intervals %+v, gaps %+v, total %v", len(s.Intervals), s.Intervals, s.Gaps, s.Total)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Errorf("allocated %d bytes for 4 readings", a)
	}
	if _, err := Consume(rs, reg, Options{FillGaps: true, Interval: time.Minute}); err == nil || !strings.Contains(err.Error(), "intervals of") {
		t.Errorf("filling 26 million minutes: got %v, want an error", err)
	}
}

// FuzzBillingYAML: whatever site and tariff files the readers accept, a day
// of readings of every site meter is billed without a panic, and every
// invoice reconciles (net = Σ lines, gross = net + VAT).
func FuzzBillingYAML(f *testing.F) {
	f.Add([]byte("meters: [{id: M, obis: '1-0:1.8.0', digits: 6}]\ntenants: [{id: T, area_m2: 10, meters: [M]}]\n"), []byte(dstTariffYAML))
	f.Add([]byte("meters: [{id: M, obis: '1-0:1.8.0'}, {id: S, obis: '1-0:1.8.0'}, {id: H, obis: '6-0:1.0.0', factor: 2}]\n"+
		"tenants: [{id: A, area_m2: 10, meters: [S, H]}, {id: B, area_m2: 30}]\nshared: [{meter: M, sub_meters: [S], tenants: [A, B]}]\n"),
		[]byte(tariffYAML+"heating: {cost: '1000', consumption_share: '0.7'}\n"))
	t0 := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, siteYAML, tariffYAML []byte) {
		site, err := ReadSiteYAML(strings.NewReader(string(siteYAML)))
		if err != nil {
			return
		}
		tf, err := ReadTariffYAML(strings.NewReader(string(tariffYAML)))
		if err != nil {
			return
		}
		var rs []Reading
		for k, m := range site.Meters {
			for i := 0; i <= 96; i++ {
				v := float64(i * (k + 1))
				if m.Max > 0 {
					v = math.Mod(v, m.Max)
				}
				rs = append(rs, Reading{t0.Add(time.Duration(i) * 15 * time.Minute), m.ID, m.Register().OBIS, v})
			}
		}
		inv, _, err := Invoices(rs, site, tf, InvoiceOptions{From: t0, To: t0.AddDate(0, 0, 1)})
		if err != nil {
			return
		}
		for _, in := range inv {
			sum := decimal.Zero
			for _, l := range in.Lines {
				sum = sum.Add(l.Amount)
			}
			if !in.Net.Equal(sum) || !in.Gross.Equal(in.Net.Add(in.VAT)) {
				t.Fatalf("invoice %s does not reconcile: %+v", in.Tenant, in)
			}
		}
	})
}

// TestAnomalyNilLocation: a nil location means UTC (time.Time.In panics on
// nil), as robot.Schedule.At does.
func TestAnomalyNilLocation(t *testing.T) {
	s := series(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 15, func(time.Time) float64 { return 1 })
	if got, want := DailyTotals(s, nil), DailyTotals(s, time.UTC); len(got) != len(want) || got[0] != want[0] {
		t.Errorf("DailyTotals nil: %v, want %v", got, want)
	}
	if got, want := NightBaseLoad(s, nil, NightRule{}), NightBaseLoad(s, time.UTC, NightRule{}); len(got) != len(want) || got[0] != want[0] {
		t.Errorf("NightBaseLoad nil: %v, want %v", got, want)
	}
	if got, _ := WaterLeaks(s, nil, LeakRule{}); len(got) != 15 {
		t.Errorf("WaterLeaks nil: %v", got)
	}
	if _, err := FitHourOfWeek(s, nil, 14, DeviationRule{}); err != nil {
		t.Errorf("FitHourOfWeek nil: %v", err)
	}
}

// TestHeatingSplitMeasuredOnly: HeizkostenV §7 (1) splits the consumption
// part by measured consumption ("nach dem erfassten Wärmeverbrauch"). A's
// own heat meter S measures 96 kWh; the shared main meter M measures 192,
// and its remainder of 96 kWh is allocated by area (A 10, B 30 m²) but is
// nobody's measured use. Cost 1000.00, share 0.7: A gets all 700.00 of the
// consumption part, the 300.00 by area are 75.00 and 225.00. (Counting the
// area-allocated remainder as consumption gave A 700·120/192 = 437.50.)
func TestHeatingSplitMeasuredOnly(t *testing.T) {
	from := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	site := readSite(t, `
meters:
  - {id: M, obis: "6-0:1.0.0"}
  - {id: S, obis: "6-0:1.0.0"}
tenants:
  - {id: A, area_m2: 10, meters: [S]}
  - {id: B, area_m2: 30}
shared: [{meter: M, sub_meters: [S], tenants: [A, B]}]
`)
	tf := readTariff(t, "tariffs: [{carrier: electricity, bands: [{name: flat, price: '0.25'}]}]\nheating: {cost: '1000.00', consumption_share: '0.7'}\n")
	rs := append(ramp("M", heat, from, 96, 15*time.Minute, 0, 2), ramp("S", heat, from, 96, 15*time.Minute, 0, 1)...)
	inv, warn, err := Invoices(rs, site, tf, InvoiceOptions{From: from, To: from.AddDate(0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{"A": {"700", "75"}, "B": {"0", "225"}}
	for _, in := range inv {
		var got [2]string
		for _, l := range in.Lines {
			if l.Kind == "heating" && strings.Contains(l.Description, "consumption") {
				got[0] = l.Amount.String()
			} else if l.Kind == "heating" {
				got[1] = l.Amount.String()
			}
		}
		if got != want[in.Tenant] {
			t.Errorf("tenant %s: heating by consumption, by area %v, want %v (warnings %v)", in.Tenant, got, want[in.Tenant], warn)
		}
	}
}
