package energy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const tariffYAML = `
currency: EUR
timezone: Europe/Berlin
tariffs:
  - carrier: electricity
    bands:
      - name: HT
        price: "0.3187"
        days: [mon, tue, wed, thu, fri]
        from: "06:00"
        to: "22:00"
      - name: NT
        price: "0.2413"
    standing_charge:
      amount: "10.00"
      per: month
`

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func readTariff(t *testing.T, s string) Tariffs {
	t.Helper()
	tf, err := ReadTariffYAML(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

func readSite(t *testing.T, s string) Site {
	t.Helper()
	st, err := ReadSiteYAML(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestInvoiceWorked reproduces a hand-computed invoice. Monday 5 January
// 2026 (Europe/Berlin), 1 kWh every quarter hour: 64 quarter hours fall in
// HT (Mon–Fri 06:00–22:00), 32 in NT.
//
//	HT 64.000 kWh × 0.3187 = 20.3968 → 20.40
//	NT 32.000 kWh × 0.2413 =  7.7216 →  7.72
//	standing charge 1/31 month = 0.0323 × 10.00 = 0.323 → 0.32
//	net 28.44; VAT 19 % of the net sum 5.4036 → 5.40; gross 33.84
//
// Rounding VAT per line instead would give 3.88 + 1.47 + 0.06 = 5.41; the
// invoice computes VAT once on the net sum (§ 14 (4) Nr. 7 and 8 UStG: the
// Entgelt per tax rate and the tax amount on it; see docs/models/energy.md).
func TestInvoiceWorked(t *testing.T) {
	loc := berlin(t)
	from := time.Date(2026, 1, 5, 0, 0, 0, 0, loc)
	to := from.AddDate(0, 0, 1)
	site := readSite(t, `
name: Bildungscampus building A (synthetic)
meters:
  - {id: M1, obis: "1-0:1.8.0"}
tenants:
  - {id: T1, name: Lab, area_m2: 120, meters: [M1]}
`)
	rs := ramp("M1", elec, from, 96, 15*time.Minute, 1000, 1)
	inv, warn, err := Invoices(rs, site, readTariff(t, tariffYAML), InvoiceOptions{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 || len(inv) != 1 {
		t.Fatalf("warnings %v, %d invoices", warn, len(inv))
	}
	got := inv[0]
	want := []struct{ qty, price, amount string }{{"64", "0.3187", "20.40"}, {"32", "0.2413", "7.72"}, {"0.0323", "10", "0.32"}}
	if len(got.Lines) != len(want) {
		t.Fatalf("lines %+v", got.Lines)
	}
	for i, w := range want {
		l := got.Lines[i]
		if !l.Quantity.Equal(dec(w.qty)) || !l.UnitPrice.Equal(dec(w.price)) || !l.Amount.Equal(dec(w.amount)) {
			t.Errorf("line %d: got %s × %s = %s, want %s × %s = %s", i, l.Quantity, l.UnitPrice, l.Amount, w.qty, w.price, w.amount)
		}
	}
	if !got.Net.Equal(dec("28.44")) || !got.VAT.Equal(dec("5.40")) || !got.Gross.Equal(dec("33.84")) || !got.VATPercent.Equal(dec("19")) || got.Estimated {
		t.Errorf("got net %s vat %s gross %s rate %s estimated %v", got.Net, got.VAT, got.Gross, got.VATPercent, got.Estimated)
	}
}

// TestInvoiceSharedMeter: the main meter draws 2 kWh per quarter hour, the
// sub-meters 1 and 0.5; the remainder 0.5 × 96 = 48 kWh is split by area
// 100 : 300 m², so T1 gets 12 kWh and T2 36 kWh on top of their own meters.
func TestInvoiceSharedMeter(t *testing.T) {
	loc := berlin(t)
	from := time.Date(2026, 1, 10, 0, 0, 0, 0, loc) // a Saturday: all NT
	to := from.AddDate(0, 0, 1)
	site := readSite(t, `
meters:
  - {id: MAIN, obis: "1-0:1.8.0"}
  - {id: M1, obis: "1-0:1.8.0"}
  - {id: M2, obis: "1-0:1.8.0"}
tenants:
  - {id: T1, area_m2: 100, meters: [M1]}
  - {id: T2, area_m2: 300, meters: [M2]}
shared:
  - {meter: MAIN, sub_meters: [M1, M2], tenants: [T1, T2]}
`)
	tf := readTariff(t, `
vat_percent: 7
tariffs:
  - carrier: electricity
    bands: [{name: flat, price: "0.25"}]
`)
	var rs []Reading
	rs = append(rs, ramp("MAIN", elec, from, 96, 15*time.Minute, 0, 2)...)
	rs = append(rs, ramp("M1", elec, from, 96, 15*time.Minute, 0, 1)...)
	rs = append(rs, ramp("M2", elec, from, 96, 15*time.Minute, 0, 0.5)...)
	rs = append(rs, Reading{from, "OTHER", elec, 1})
	inv, warn, err := Invoices(rs, site, tf, InvoiceOptions{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 1 || !strings.Contains(warn[0], "1 readings of registers not in the site") {
		t.Errorf("warnings %v", warn)
	}
	// T1: 96 + 12 = 108 kWh × 0.25 = 27.00, VAT 7 % 1.89; T2: 48 + 36 = 84 → 21.00, 1.47.
	for i, w := range []struct{ qty, net, vat string }{{"108", "27", "1.89"}, {"84", "21", "1.47"}} {
		g := inv[i]
		if len(g.Lines) != 1 || !g.Lines[0].Quantity.Equal(dec(w.qty)) || !g.Net.Equal(dec(w.net)) || !g.VAT.Equal(dec(w.vat)) {
			t.Errorf("tenant %s: got %+v net %s vat %s", g.Tenant, g.Lines, g.Net, g.VAT)
		}
	}
	// Sub-meters larger than the main meter: a negative remainder is reported.
	rs = append(ramp("MAIN", elec, from, 96, 15*time.Minute, 0, 1), ramp("M1", elec, from, 96, 15*time.Minute, 0, 1)...)
	rs = append(rs, ramp("M2", elec, from, 96, 15*time.Minute, 0, 0.5)...)
	_, warn, err = Invoices(rs, site, tf, InvoiceOptions{From: from, To: to})
	if err != nil || len(warn) != 1 || !strings.Contains(warn[0], "negative") {
		t.Errorf("negative remainder: got %v %v", warn, err)
	}
}

// TestInvoiceHeatingSplit bills a heating cost through the §7 split and
// marks a meter with missing data as estimated.
func TestInvoiceHeatingSplit(t *testing.T) {
	loc := berlin(t)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	to := from.AddDate(0, 0, 1)
	site := readSite(t, `
meters:
  - {id: H1, obis: "6-0:1.0.0"}
  - {id: H2, obis: "6-0:1.0.0"}
tenants:
  - {id: A, area_m2: 100, meters: [H1]}
  - {id: B, area_m2: 50, meters: [H2]}
`)
	tf := readTariff(t, `
tariffs:
  - carrier: electricity
    bands: [{name: flat, price: "0.25"}]
heating:
  cost: "10000.00"
  consumption_share: "0.7"
`)
	rs := append(ramp("H1", heat, from, 96, 15*time.Minute, 0, 6.25), ramp("H2", heat, from, 80, 15*time.Minute, 0, 5)...)
	inv, _, err := Invoices(rs, site, tf, InvoiceOptions{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	// E_A = 600, E_B = 400 kWh: A 7000·0.6 + 3000·100/150 = 4200 + 2000.
	if !inv[0].Net.Equal(dec("6200")) || !inv[1].Net.Equal(dec("3800")) {
		t.Errorf("got %s and %s, want 6200 and 3800", inv[0].Net, inv[1].Net)
	}
	if inv[0].Estimated || !inv[1].Estimated || len(inv[1].Notes) == 0 {
		t.Errorf("estimated flags %v %v notes %v", inv[0].Estimated, inv[1].Estimated, inv[1].Notes)
	}
}

// TestSplitHeatingCost reproduces §7 HeizkostenV examples.
func TestSplitHeatingCost(t *testing.T) {
	sh, err := SplitHeatingCost(dec("10000"), dec("0.7"), []HeatingUser{{"A", 600, 100}, {"B", 400, 50}})
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]string{{"4200", "2000", "6200"}, {"2800", "1000", "3800"}}
	for i, w := range want {
		if !sh[i].ByConsumption.Equal(dec(w[0])) || !sh[i].ByArea.Equal(dec(w[1])) || !sh[i].Total.Equal(dec(w[2])) {
			t.Errorf("%s: got %+v, want %v", sh[i].ID, sh[i], w)
		}
	}
	// 100.00 split 50/50 between three equal users: 16.67, 16.67, 16.66 per
	// part (largest remainder, ties by ID), so the parts add up to 100.00.
	sh, err = SplitHeatingCost(dec("100"), dec("0.5"), []HeatingUser{{"c", 1, 1}, {"a", 1, 1}, {"b", 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	sum := decimal.Zero
	for _, s := range sh {
		sum = sum.Add(s.Total)
	}
	if !sum.Equal(dec("100")) || !sh[1].ByConsumption.Equal(dec("16.67")) || !sh[0].ByConsumption.Equal(dec("16.66")) {
		t.Errorf("got %+v sum %s", sh, sum)
	}
	for _, tc := range []struct {
		cost, share string
		users       []HeatingUser
		want        string
	}{
		{"100", "0.45", []HeatingUser{{"a", 1, 1}}, "outside 0.5..0.7"},
		{"100", "0.71", []HeatingUser{{"a", 1, 1}}, "outside 0.5..0.7"},
		{"-1", "0.5", []HeatingUser{{"a", 1, 1}}, "negative"},
		{"100", "0.5", nil, "no users"},
		{"100", "0.5", []HeatingUser{{"a", 1, 1}, {"a", 1, 1}}, "repeated"},
		{"100", "0.5", []HeatingUser{{"a", 0, 1}}, "must be positive"},
		{"100", "0.5", []HeatingUser{{"a", -1, 1}}, "non-negative"},
	} {
		if _, err := SplitHeatingCost(dec(tc.cost), dec(tc.share), tc.users); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc, err, tc.want)
		}
	}
}

// randomBilling builds a site of three tenants with random readings and a
// random three-band tariff.
func randomBilling(r *rand.Rand) ([]Reading, Site, Tariffs, InvoiceOptions) {
	loc, _ := time.LoadLocation("Europe/Berlin")
	from := time.Date(2026, 3, 1+r.IntN(20), 0, 0, 0, 0, loc)
	to := from.AddDate(0, 0, 1+r.IntN(10))
	site := Site{
		Meters: []Meter{{ID: "MAIN", OBIS: "1-0:1.8.0"}, {ID: "A", OBIS: "1-0:1.8.0", Max: 1e5}, {ID: "B", OBIS: "1-0:1.8.0"}, {ID: "HA", OBIS: "6-0:1.0.0"}, {ID: "HB", OBIS: "6-0:1.0.0"}},
		Tenants: []Tenant{{ID: "TA", AreaM2: 10 + r.Float64()*100, Meters: []string{"A", "HA"}}, {ID: "TB", AreaM2: 10 + r.Float64()*100, Meters: []string{"B", "HB"}},
			{ID: "TC", AreaM2: 10 + r.Float64()*100}},
		Shared: []Allocation{{Meter: "MAIN", SubMeters: []string{"A", "B"}, Tenants: []string{"TA", "TB", "TC"}}},
	}
	price := func() decimal.Decimal { return decimal.New(int64(1000+r.IntN(4000)), -4) }
	vat := decimal.NewFromInt(int64(r.IntN(25)))
	tf := Tariffs{VATPercent: &vat, Tariffs: []Tariff{{Carrier: Electricity, Bands: []Band{
		{Name: "peak", Price: price(), Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", To: "20:00"},
		{Name: "night", Price: price(), From: "22:00", To: "06:00"},
		{Name: "other", Price: price()},
	}, Standing: &StandingCharge{Amount: price().Mul(decimal.NewFromInt(100)), Per: []string{"day", "month"}[r.IntN(2)]}}},
		Heating: &Heating{Cost: decimal.New(int64(r.IntN(1_000_000)), -2), ConsumptionShare: decimal.New(int64(50+r.IntN(21)), -2)}}
	var rs []Reading
	step := 15 * time.Minute
	n := int(to.Sub(from) / step)
	vals := map[string]float64{"MAIN": 0, "A": 99_990, "B": 0, "HA": 0, "HB": 0}
	for i := 0; i <= n; i++ {
		t := from.Add(time.Duration(i) * step)
		a, b := r.Float64()*2, r.Float64()*2
		vals["A"] += a
		if vals["A"] >= 1e5 {
			vals["A"] -= 1e5
		}
		vals["B"] += b
		vals["MAIN"] += a + b + r.Float64()
		vals["HA"] += r.Float64() * 5
		vals["HB"] += r.Float64() * 5
		for _, m := range []string{"MAIN", "A", "B", "HA", "HB"} {
			if r.IntN(50) == 0 {
				continue // missing reading
			}
			o := elec
			if m[0] == 'H' {
				o = heat
			}
			rs = append(rs, Reading{t, m, o, vals[m]})
		}
	}
	return rs, site, tf, InvoiceOptions{From: from, To: to, Consumption: Options{FillGaps: r.IntN(2) == 0, MaxGap: 30 * time.Minute}}
}

// TestInvoiceProperties: every invoice's net is the sum of its lines, each
// line is its quantity × unit price rounded to the cent, VAT is the rounded
// rate on the net and gross is net + VAT.
func TestInvoiceProperties(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		rs, site, tf, opt := randomBilling(r)
		inv, _, err := Invoices(rs, site, tf, opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range inv {
			sum := decimal.Zero
			for _, l := range in.Lines {
				if l.Kind == "standing" && l.Unit == "months" {
					// The amount uses the exact day fraction; the quantity
					// shown is that fraction to 4 places (±0.00005).
					tol := l.UnitPrice.Mul(dec("0.00005")).Add(dec("0.005"))
					if l.Amount.Exponent() < -2 || l.Amount.Sub(l.Quantity.Mul(l.UnitPrice)).Abs().GreaterThan(tol) {
						t.Fatalf("seed %d: standing line %+v is not the prorated amount", seed, l)
					}
				} else if !l.Amount.Equal(l.Quantity.Mul(l.UnitPrice).Round(2)) {
					t.Fatalf("seed %d: line %+v does not reconcile", seed, l)
				}
				sum = sum.Add(l.Amount)
			}
			vat := sum.Mul(in.VATPercent).Div(decimal.NewFromInt(100)).Round(2)
			if !in.Net.Equal(sum) || !in.VAT.Equal(vat) || !in.Gross.Equal(in.Net.Add(in.VAT)) || in.Gross.Exponent() < -2 {
				t.Fatalf("seed %d: %s net %s (lines %s) vat %s (want %s) gross %s", seed, in.Tenant, in.Net, sum, in.VAT, vat, in.Gross)
			}
		}
	}
}

// TestRunningInvoiceEqualsBatch: feeding readings one at a time, in random
// order and asking for the invoice in between, ends with the batch invoice.
func TestRunningInvoiceEqualsBatch(t *testing.T) {
	for seed := uint64(1); seed <= 15; seed++ {
		r := rand.New(rand.NewPCG(seed, 13))
		rs, site, tf, opt := randomBilling(r)
		want, wwarn, err := Invoices(rs, site, tf, opt)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := NewRunningBilling(site, tf, opt)
		if err != nil {
			t.Fatal(err)
		}
		order := r.Perm(len(rs))
		if seed%2 == 0 {
			for i := range order {
				order[i] = i // in time order, as a live feed delivers them
			}
		}
		for k, i := range order {
			rb.Add(rs[i])
			if k%97 == 0 {
				if _, _, err := rb.Invoices(); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, gwarn, err := rb.Invoices()
		if err != nil {
			t.Fatal(err)
		}
		wj, _ := json.Marshal([]any{want, wwarn})
		gj, _ := json.Marshal([]any{got, gwarn})
		if string(wj) != string(gj) {
			t.Fatalf("seed %d: running invoices differ from batch:\n%s\n%s", seed, gj, wj)
		}
	}
}

func TestTariffAndSiteBadInput(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty file"},
		{"tariffs: [{carrier: electricity}]", "no bands"},
		{"tariffs: [{carrier: electricity, bands: [{name: a, price: '0.1', from: '06:00', to: '22:00'}]}]", "last band"},
		{"tariffs: [{carrier: electricity, bands: [{name: a, price: '0.1', days: [mo2]}, {name: b, price: '1'}]}]", "day"},
		{"tariffs: [{carrier: electricity, bands: [{name: a, price: '0.1', from: '6:00', to: '22:00'}, {name: b, price: '1'}]}]", "HH:MM"},
		{"tariffs: [{carrier: electricity, bands: [{name: a, price: '0.1', from: '25:00', to: '22:00'}, {name: b, price: '1'}]}]", "not a clock time"},
		{"tariffs: [{carrier: electricity, bands: [{name: a, price: '-0.1'}]}]", "negative"},
		{"tariffs: [{carrier: electricity, bands: [{name: a, price: 'x'}]}]", "tariff yaml"},
		{"tariffs: [{carrier: electricity, bands: [{name: a, price: '1'}], standing_charge: {amount: '1', per: week}}]", "want day or month"},
		{"vat_percent: 120\ntariffs: []", "0..100"},
		{"timezone: Mars/Base\n", "timezone"},
		{"heating: {cost: '10', consumption_share: '0.8'}", "outside 0.5..0.7"},
		{"colour: red", "field colour not found"},
	} {
		if _, err := ReadTariffYAML(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tariff %q: got %v, want %q", tc.in, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty file"},
		{"meters: [{id: M, obis: '1-0:1.8'}]", "obis"},
		{"meters: [{id: M, obis: '1-0:1.8.0'}, {id: M, obis: '1-0:1.8.0'}]", "twice"},
		{"meters: [{id: M, obis: '1-0:1.7.0'}]", "carrier is empty"},
		{"tenants: [{id: T, meters: [X]}]", "not in meters"},
		{"meters: [{id: M, obis: '1-0:1.8.0'}]\ntenants: [{id: T, meters: [M]}, {id: U, meters: [M]}]", "belongs to tenants"},
		{"meters: [{id: M, obis: '1-0:1.8.0'}]\ntenants: [{id: T, area_m2: 0}]\nshared: [{meter: M, tenants: [T]}]", "total area is zero"},
		{"meters: [{id: M, obis: '1-0:1.8.0'}, {id: H, obis: '6-0:1.0.0'}]\ntenants: [{id: T, area_m2: 1}]\nshared: [{meter: M, sub_meters: [H], tenants: [T]}]", "carrier"},
		{"meters: [{id: M, obis: '1-0:1.8.0', factor: -1}]", "negative"},
		{"meters: [{id: M, obis: '1-0:1.8.0', digits: 6, max: 100000}]", "agree with max"},
		{"meters: [{id: M, obis: '1-0:1.8.0', digits: 16}]", "1..15"},
	} {
		if _, err := ReadSiteYAML(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("site %q: got %v, want %q", tc.in, err, tc.want)
		}
	}
	site := readSite(t, "meters: [{id: M, obis: '1-0:1.8.0', digits: 6}]\ntenants: [{id: T, meters: [M]}]")
	if site.Meters[0].Max != 1e6 {
		t.Errorf("digits 6: max %v, want 1e6", site.Meters[0].Max)
	}
	tf := readTariff(t, tariffYAML)
	now := time.Now()
	if _, _, err := Invoices(nil, site, tf, InvoiceOptions{From: now, To: now}); err == nil || !strings.Contains(err.Error(), "before") {
		t.Errorf("empty period: %v", err)
	}
}

// TestStandingQuantity: per day counts calendar days (a DST day is one day);
// per month sums days/days-in-month over the months touched:
// 20 Jan – 10 Feb 2026 = 12/31 + 9/28 = 0.387097 + 0.321429 = 0.7085 months.
func TestStandingQuantity(t *testing.T) {
	loc := berlin(t)
	tf := readTariff(t, tariffYAML)
	site := readSite(t, "meters: [{id: M, obis: '1-0:1.8.0'}]\ntenants: [{id: T, meters: [M]}]")
	for _, tc := range []struct {
		from, to  time.Time
		per, want string
	}{
		{time.Date(2026, 1, 20, 0, 0, 0, 0, loc), time.Date(2026, 2, 10, 0, 0, 0, 0, loc), "month", "0.7085"},
		{time.Date(2026, 1, 20, 0, 0, 0, 0, loc), time.Date(2026, 2, 10, 0, 0, 0, 0, loc), "day", "21"},
		{time.Date(2026, 3, 28, 0, 0, 0, 0, loc), time.Date(2026, 3, 30, 0, 0, 0, 0, loc), "day", "2"},
		{time.Date(2026, 2, 1, 0, 0, 0, 0, loc), time.Date(2026, 3, 1, 0, 0, 0, 0, loc), "month", "1"},
	} {
		b, err := NewBilling(site, tf, InvoiceOptions{From: tc.from, To: tc.to})
		if err != nil {
			t.Fatal(err)
		}
		if q, _, _ := b.standingQuantity(tc.per); !q.Equal(dec(tc.want)) {
			t.Errorf("%s–%s per %s: got %s, want %s", tc.from, tc.to, tc.per, q, tc.want)
		}
	}
}

// TestTariffsShared: one Tariffs, built in code and never checked, is
// shared by billings made and run at once from many goroutines, as the
// energy service's sites and months share its tariff. Building a billing
// checks the tariffs, which prepares their bands' windows and fills in
// defaults: on a copy of the billing's own, so under -race nothing is
// written that another billing reads, and the caller's Tariffs is as it
// was. Every billing's invoices are the same.
func TestTariffsShared(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	rs, site, tf, opt := randomBilling(r)
	before := fmt.Sprintf("%#v %#v %#v", tf, tf.Tariffs, *tf.Heating)
	want, _, err := Invoices(rs, site, tf, opt)
	if err != nil {
		t.Fatal(err)
	}
	shared := &tf
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 4 {
				var got []Invoice
				var err error
				if g%2 == 0 {
					got, _, err = Invoices(rs, site, *shared, opt)
				} else {
					var rb *RunningBilling
					if rb, err = NewRunningBilling(site, *shared, opt); err == nil {
						for _, rd := range rs {
							rb.Add(rd)
						}
						got, _, err = rb.Invoices()
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("goroutine %d: invoices differ from the first billing's", g)
					return
				}
			}
		})
	}
	wg.Wait()
	if after := fmt.Sprintf("%#v %#v %#v", tf, tf.Tariffs, *tf.Heating); after != before {
		t.Errorf("the shared Tariffs changed:\n%s\nwas\n%s", after, before)
	}
}
