package energy

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// multiSite has a main meter with five registers (import total and
// tariffs, export, power) whose import is billed and shared by two
// tenants with the areas they have in the meter's building, and a
// sub-meter with an exchange.
const multiSite = `
name: multi
meters:
  - id: MAIN
    obis: "1-0:1.8.0"
    digits: 9
    registers:
      - {obis: "1-0:1.8.1", digits: 9}
      - {obis: "1-0:1.8.2", digits: 9}
      - {obis: "1-0:2.8.0", digits: 9}
      - {obis: "1-0:1.7.0"}
  - {id: SUB, obis: "1-0:1.8.0", digits: 8}
tenants:
  - {id: A, area_m2: 1000, meters: [SUB]}
  - {id: B, area_m2: 3000}
shared:
  - {meter: MAIN, sub_meters: [SUB], tenants: [A, B], areas: {A: 100, B: 300}}
`

// multiReadings returns a day of quarter-hour readings of every register
// of MAIN and of SUB, with SUB exchanged at 09:40 (old final at 09:40, new
// start 5 at 09:40:01, as a building gateway sends it).
func multiReadings(day time.Time) ([]Reading, Exchange) {
	var rs []Reading
	o := func(s string) OBIS { x, _ := ParseOBIS(s); return x }
	ex := Exchange{Time: day.Add(9*time.Hour + 40*time.Minute + time.Second), OldFinal: 500 + 38*1.5 + 1, NewStart: 5}
	for i := 0; i <= 96; i++ {
		t := day.Add(time.Duration(i) * 15 * time.Minute)
		imp := 1000 + float64(i)*4
		rs = append(rs,
			Reading{Time: t, Meter: "MAIN", OBIS: o("1-0:1.8.0"), Value: imp},
			Reading{Time: t, Meter: "MAIN", OBIS: o("1-0:1.8.1"), Value: imp * 0.6},
			Reading{Time: t, Meter: "MAIN", OBIS: o("1-0:1.8.2"), Value: imp * 0.4},
			Reading{Time: t, Meter: "MAIN", OBIS: o("1-0:2.8.0"), Value: 50 + float64(i)},
			Reading{Time: t, Meter: "MAIN", OBIS: o("1-0:1.7.0"), Value: 16})
		sub := 500 + float64(i)*1.5
		if t.After(ex.Time) {
			sub = ex.NewStart + float64(i)*1.5 - 38*1.5 - 1
		}
		rs = append(rs, Reading{Time: t, Meter: "SUB", OBIS: o("1-0:1.8.0"), Value: sub})
	}
	rs = append(rs,
		Reading{Time: ex.Time.Add(-time.Second), Meter: "SUB", OBIS: o("1-0:1.8.0"), Value: ex.OldFinal},
		Reading{Time: ex.Time, Meter: "SUB", OBIS: o("1-0:1.8.0"), Value: ex.NewStart})
	return rs, ex
}

// TestMultiRegisterMeter: the further registers of a meter are known (no
// "unknown readings" warning) but not billed, a shared meter is split by
// the areas given for it, and a running billing that learns the exchange
// record after the readings (in any order, with duplicates) bills what the
// batch bills with the exchange in the site file: the exchange changes
// nothing, and without the record it is a reset.
func TestMultiRegisterMeter(t *testing.T) {
	site := readSite(t, multiSite)
	tf := readTariff(t, tariffYAML)
	day := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	opt := InvoiceOptions{From: day, To: day.Add(24 * time.Hour)}
	rs, ex := multiReadings(day)

	withEx := readSite(t, multiSite)
	withEx.Meters[1].Exchanges = []Exchange{ex}
	want, warn, err := Invoices(rs, withEx, tf, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings %q, want none (all registers are the site's)", warn)
	}
	// MAIN draws 4 kWh a quarter hour, SUB 1.5: the remainder 2.5 × 96 =
	// 240 kWh goes 1:3 to A and B; A has SUB's 144 kWh too.
	qty := func(inv Invoice) float64 {
		var q float64
		for _, l := range inv.Lines {
			if l.Kind == "energy" {
				f, _ := l.Quantity.Float64()
				q += f
			}
		}
		return q
	}
	if a, b := qty(want[0]), qty(want[1]); a != 60+144 || b != 180 {
		t.Errorf("energy A %v kWh, B %v kWh; want 204 and 180", a, b)
	}
	for _, n := range want[0].Notes {
		if strings.Contains(n, "reset") {
			t.Errorf("note %q: the exchange is not a reset", n)
		}
	}

	rb, err := NewRunningBilling(site, tf, opt)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := append([]Reading(nil), rs...)
	shuffled = append(shuffled, rs[:40]...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, r := range shuffled {
		rb.Add(r)
	}
	pre, _, err := rb.Invoices()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(pre[0].Notes, "\n"), "reset") {
		t.Errorf("without the exchange record the new start is a reset: notes %q", pre[0].Notes)
	}
	o, _ := ParseOBIS("1-0:1.8.0")
	if !rb.AddExchange(RegisterKey{"SUB", o}, ex) || !rb.AddExchange(RegisterKey{"SUB", o}, ex) {
		t.Fatal("AddExchange: SUB's register unknown")
	}
	if rb.AddExchange(RegisterKey{"NOPE", o}, ex) {
		t.Error("AddExchange of an unknown register reported true")
	}
	got, _, err := rb.Invoices()
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("running\n%s\nbatch\n%s", gj, wj)
	}
	if len(site.Meters[1].Exchanges) != 0 {
		t.Error("AddExchange wrote into the caller's site")
	}
	if len(rb.Series()) != 2 {
		t.Errorf("series of %d meters, want 2", len(rb.Series()))
	}
}

func TestMultiRegisterSiteBadInput(t *testing.T) {
	for name, y := range map[string]string{
		"register twice":    "meters: [{id: M, obis: '1-0:1.8.0', registers: [{obis: '1-0:2.8.0'}, {obis: '1-0:2.8.0'}]}]",
		"billed twice":      "meters: [{id: M, obis: '1-0:1.8.0', registers: [{obis: '1-0:1.8.0'}]}]",
		"bad obis":          "meters: [{id: M, obis: '1-0:1.8.0', registers: [{obis: 'x'}]}]",
		"bad digits":        "meters: [{id: M, obis: '1-0:1.8.0', registers: [{obis: '1-0:2.8.0', digits: 40}]}]",
		"area of stranger":  "meters: [{id: M, obis: '1-0:1.8.0'}]\ntenants: [{id: A, area_m2: 1}, {id: B, area_m2: 1}]\nshared: [{meter: M, tenants: [A], areas: {B: 3}}]",
		"negative area":     "meters: [{id: M, obis: '1-0:1.8.0'}]\ntenants: [{id: A, area_m2: 1}]\nshared: [{meter: M, tenants: [A], areas: {A: -3}}]",
		"zero shared areas": "meters: [{id: M, obis: '1-0:1.8.0'}]\ntenants: [{id: A, area_m2: 1}]\nshared: [{meter: M, tenants: [A], areas: {A: 0}}]",
	} {
		if _, err := ReadSiteYAML(strings.NewReader(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
