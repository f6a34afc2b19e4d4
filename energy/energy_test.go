package energy

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"
)

var (
	elec  = mustOBIS("1-0:1.8.0")
	heat  = mustOBIS("6-0:1.0.0")
	water = mustOBIS("8-0:1.0.0")
)

func mustOBIS(s string) OBIS {
	o, err := ParseOBIS(s)
	if err != nil {
		panic(err)
	}
	return o
}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// ramp returns n+1 readings every step from start, rising by per each step.
func ramp(meter string, o OBIS, start time.Time, n int, step time.Duration, v0, per float64) []Reading {
	out := make([]Reading, 0, n+1)
	for i := 0; i <= n; i++ {
		out = append(out, Reading{Time: start.Add(time.Duration(i) * step), Meter: meter, OBIS: o, Value: v0 + float64(i)*per})
	}
	return out
}

func TestParseOBIS(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		carrier  Carrier
		unit     string
	}{
		{"1-0:1.8.0", "1-0:1.8.0", Electricity, "kWh"},
		{"1-0:1.8.0*255", "1-0:1.8.0", Electricity, "kWh"},
		{"1-0:1.8.1*01", "1-0:1.8.1*1", Electricity, "kWh"},
		{" 1-0:2.8.0 ", "1-0:2.8.0", ElectricityFeed, "kWh"},
		{"1.8.2", "1-0:1.8.2", Electricity, "kWh"},
		{"6-0:1.0.0", "6-0:1.0.0", Heat, "kWh"},
		{"7-0:3.0.0", "7-0:3.0.0", NaturalGas, "m3"},
		{"8-0:1.0.0", "8-0:1.0.0", Water, "m3"},
		{"9-0:1.0.0", "9-0:1.0.0", Water, "m3"},
		{"1-0:1.7.0", "1-0:1.7.0", "", ""},
	} {
		o, err := ParseOBIS(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if o.String() != tc.want || o.DefaultCarrier() != tc.carrier || o.Unit() != tc.unit {
			t.Errorf("%q: got %s %q %q, want %s %q %q", tc.in, o, o.DefaultCarrier(), o.Unit(), tc.want, tc.carrier, tc.unit)
		}
	}
	for _, bad := range []string{"", "1-0:1.8", "1-0:1.8.0.0", "1:1.8.0", "1-0:1.8.x", "1-0:1.256.0", "16-0:1.8.0", "1-0:1.8.0*", "-0:1.8.0", "1-0:1..0"} {
		if _, err := ParseOBIS(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestReadReadingsCSV(t *testing.T) {
	in := "time,meter,obis,value,extra\n" +
		"2026-01-05T00:00:00+01:00,M1,1-0:1.8.0,100.5,x\n" +
		"\n" +
		"2026-01-05T00:15:00+01:00, M1 ,1-0:1.8.0,101\n"
	rs, err := ReadReadingsCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Value != 100.5 || rs[1].Meter != "M1" || rs[1].OBIS != elec || !rs[1].Time.Equal(time.Date(2026, 1, 4, 23, 15, 0, 0, time.UTC)) {
		t.Fatalf("got %+v", rs)
	}
	var b strings.Builder
	if err := WriteReadingsCSV(&b, rs); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReadingsCSV(strings.NewReader(b.String()))
	if err != nil || len(back) != 2 || back[1].Value != 101 || !back[0].Time.Equal(rs[0].Time) {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty input"},
		{"time,meter,value\n", `missing column "obis"`},
		{"time,meter,obis,value,meter\n", `column "meter" twice`},
		{"time,meter,obis,value\nyesterday,M1,1-0:1.8.0,1\n", "line 2: field time"},
		{"time,meter,obis,value\n2026-01-05T00:00:00Z,,1-0:1.8.0,1\n", "line 2: field meter is empty"},
		{"time,meter,obis,value\n2026-01-05T00:00:00Z,M1,1-0:1.8,1\n", "line 2: field obis"},
		{"time,meter,obis,value\n2026-01-05T00:00:00Z,M1,1-0:1.8.0,1,5\n2026-01-05T00:00:00Z,M1,1-0:1.8.0,abc\n", "line 3: field value"},
		{"time,meter,obis,value\n2026-01-05T00:00:00Z,M1,1-0:1.8.0,NaN\n", "not a finite number"},
		{"time,meter,obis,value\n2026-01-05T00:00:00Z,M1,1-0:1.8.0,-3\n", "cannot be negative"},
		{"time,meter,obis,value\n2026-01-05T00:00:00Z,M1\n", `line 2: missing field "obis"`},
		{"time,meter,obis,value\n\"2026,M1\n", "readings csv"},
	} {
		_, err := ReadReadingsCSV(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestConsume(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	q := 15 * time.Minute
	reg := Register{Meter: "M1", OBIS: elec}
	type want struct {
		values []float64
		est    []bool
		total  float64
		kinds  []string
		gaps   int
	}
	for _, tc := range []struct {
		name string
		rs   []Reading
		reg  Register
		opt  Options
		want want
	}{
		{"aligned", ramp("M1", elec, t0, 3, q, 100, 2), reg, Options{}, want{values: []float64{2, 2, 2}, est: []bool{false, false, false}, total: 6}},
		{"5-minute readings sum to quarter hours", ramp("M1", elec, t0, 6, 5*time.Minute, 0, 1), reg, Options{}, want{values: []float64{3, 3}, est: []bool{false, false}, total: 6}},
		{"identical duplicate ignored", append(ramp("M1", elec, t0, 2, q, 100, 2), Reading{t0.Add(q), "M1", elec, 102}), reg, Options{},
			want{values: []float64{2, 2}, est: []bool{false, false}, total: 4}},
		{"conflicting duplicate dropped and reported", append(ramp("M1", elec, t0, 2, q, 100, 2), Reading{t0.Add(q), "M1", elec, 150}), reg, Options{MaxGap: time.Hour},
			want{values: []float64{2, 2}, est: []bool{true, true}, total: 4, kinds: []string{EventConflict}}},
		{"rollover of a 6-digit register", []Reading{{t0, "M1", elec, 999_998}, {t0.Add(q), "M1", elec, 3}}, Register{Meter: "M1", OBIS: elec, Max: 1e6}, Options{},
			want{values: []float64{5}, est: []bool{false}, total: 5, kinds: []string{EventRollover}}},
		{"rollover within the maximum rate", []Reading{{t0, "M1", elec, 999_990}, {t0.Add(q), "M1", elec, 5}}, Register{Meter: "M1", OBIS: elec, Max: 1e6, MaxRate: 100}, Options{},
			want{values: []float64{15}, est: []bool{false}, total: 15, kinds: []string{EventRollover}}},
		// 999,000 → 3 in 15 minutes would be 1,003 kWh, impossible at 100 kW
		// (25 kWh): a reset, not a rollover plus a spike.
		{"impossible rollover is a reset", []Reading{{t0, "M1", elec, 999_000}, {t0.Add(q), "M1", elec, 3}}, Register{Meter: "M1", OBIS: elec, Max: 1e6, MaxRate: 100}, Options{},
			want{values: []float64{3}, est: []bool{false}, total: 3, kinds: []string{EventReset}}},
		{"decrease without max is a reset", []Reading{{t0, "M1", elec, 500}, {t0.Add(q), "M1", elec, 3}}, reg, Options{},
			want{values: []float64{3}, est: []bool{false}, total: 3, kinds: []string{EventReset}}},
		{"decrease far from max is a reset", []Reading{{t0, "M1", elec, 500}, {t0.Add(q), "M1", elec, 3}}, Register{Meter: "M1", OBIS: elec, Max: 1e6}, Options{},
			want{values: []float64{3}, est: []bool{false}, total: 3, kinds: []string{EventReset}}},
		{"meter exchange", []Reading{{t0, "M1", elec, 5000}, {t0.Add(q), "M1", elec, 12}},
			Register{Meter: "M1", OBIS: elec, Exchanges: []Exchange{{Time: t0.Add(10 * time.Minute), OldFinal: 5004, NewStart: 10}}}, Options{},
			want{values: []float64{6}, est: []bool{false}, total: 6, kinds: []string{EventExchange}}},
		{"gap not filled", []Reading{{t0, "M1", elec, 0}, {t0.Add(q), "M1", elec, 1}, {t0.Add(4 * q), "M1", elec, 7}, {t0.Add(5 * q), "M1", elec, 8}}, reg, Options{},
			want{values: []float64{1, 1}, est: []bool{false, false}, total: 8, gaps: 1}},
		{"gap filled is estimated", []Reading{{t0, "M1", elec, 0}, {t0.Add(q), "M1", elec, 1}, {t0.Add(4 * q), "M1", elec, 7}, {t0.Add(5 * q), "M1", elec, 8}}, reg, Options{FillGaps: true},
			want{values: []float64{1, 2, 2, 2, 1}, est: []bool{false, true, true, true, false}, total: 8, gaps: 1}},
		{"unaligned readings are apportioned", []Reading{{t0.Add(10 * time.Minute), "M1", elec, 0}, {t0.Add(25 * time.Minute), "M1", elec, 3}}, reg, Options{},
			want{values: []float64{1, 2}, est: []bool{true, true}, total: 3}},
		{"spike reported", []Reading{{t0, "M1", elec, 0}, {t0.Add(q), "M1", elec, 100}}, Register{Meter: "M1", OBIS: elec, MaxRate: 50}, Options{},
			want{values: []float64{100}, est: []bool{false}, total: 100, kinds: []string{EventSpike}}},
		{"other registers ignored", append(ramp("M1", elec, t0, 1, q, 0, 1), ramp("M2", elec, t0, 1, q, 0, 9)...), reg, Options{}, want{values: []float64{1}, est: []bool{false}, total: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Consume(tc.rs, tc.reg, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			var vals []float64
			var est []bool
			for _, iv := range s.Intervals {
				vals = append(vals, math.Round(iv.Value*1e9)/1e9)
				est = append(est, iv.Estimated)
			}
			var kinds []string
			for _, e := range s.Events {
				kinds = append(kinds, e.Kind)
			}
			if !reflect.DeepEqual(vals, tc.want.values) || !reflect.DeepEqual(est, tc.want.est) || math.Abs(s.Total-tc.want.total) > 1e-9 ||
				!reflect.DeepEqual(kinds, tc.want.kinds) || len(s.Gaps) != tc.want.gaps {
				t.Errorf("got values %v est %v total %v events %v gaps %d; want %+v", vals, est, s.Total, kinds, len(s.Gaps), tc.want)
			}
		})
	}
}

func TestConsumeCompleteness(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	s, err := Consume([]Reading{{t0.Add(5 * time.Minute), "M", elec, 0}, {t0.Add(15 * time.Minute), "M", elec, 1}, {t0.Add(30 * time.Minute), "M", elec, 2}}, Register{Meter: "M", OBIS: elec}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Intervals) != 2 || s.Intervals[0].Complete || !s.Intervals[1].Complete {
		t.Errorf("first interval covers 10 of 15 minutes: got %+v", s.Intervals)
	}
}

func TestConsumeBadInput(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	ok := ramp("M", elec, t0, 2, time.Minute, 0, 1)
	for _, tc := range []struct {
		name string
		rs   []Reading
		reg  Register
		opt  Options
		want string
	}{
		{"negative interval", ok, Register{Meter: "M", OBIS: elec}, Options{Interval: -time.Minute}, "must be positive"},
		{"NaN value", []Reading{{t0, "M", elec, math.NaN()}}, Register{Meter: "M", OBIS: elec}, Options{}, "not a finite"},
		{"value above max", []Reading{{t0, "M", elec, 1e6}}, Register{Meter: "M", OBIS: elec, Max: 1e6}, Options{}, "register maximum"},
		{"span too long", []Reading{{t0, "M", elec, 0}, {t0.AddDate(400, 0, 0), "M", elec, 1}}, Register{Meter: "M", OBIS: elec}, Options{}, "span more than"},
		{"negative max", ok, Register{Meter: "M", OBIS: elec, Max: -1}, Options{}, "must not be negative"},
	} {
		if _, err := Consume(tc.rs, tc.reg, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	s, err := Consume(nil, Register{Meter: "M", OBIS: elec}, Options{})
	if err != nil || len(s.Intervals) != 0 || s.Total != 0 {
		t.Errorf("no readings: got %+v %v", s, err)
	}
}

// messyReadings makes a day of 15-minute readings of two registers with
// duplicates, a conflicting duplicate, a gap, a rollover and an exchange.
func messyReadings(r *rand.Rand) ([]Reading, map[RegisterKey]Register) {
	t0 := time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC) // spans the DST change in Berlin
	var rs []Reading
	v := 999_900.0
	for i := 0; i <= 96; i++ {
		if i >= 40 && i < 44 {
			continue // gap
		}
		v += r.Float64() * 5
		if v >= 1e6 {
			v -= 1e6
		}
		rd := Reading{t0.Add(time.Duration(i) * 15 * time.Minute), "E1", elec, math.Round(v*1000) / 1000}
		rs = append(rs, rd)
		if r.IntN(5) == 0 {
			rs = append(rs, rd)
		}
	}
	rs = append(rs, Reading{t0.Add(30 * 15 * time.Minute), "E1", elec, 12345})
	h := 100.0
	for i := 0; i <= 96; i++ {
		h += r.Float64() * 3
		if i == 50 {
			h = 7
		}
		rs = append(rs, Reading{t0.Add(time.Duration(i) * 15 * time.Minute), "H1", heat, math.Round(h*100) / 100})
	}
	regs := map[RegisterKey]Register{
		{"E1", elec}: {Meter: "E1", OBIS: elec, Max: 1e6},
		{"H1", heat}: {Meter: "H1", OBIS: heat, Exchanges: []Exchange{{Time: t0.Add(50*15*time.Minute - time.Minute), OldFinal: 0, NewStart: 5}}},
	}
	return rs, regs
}

// TestConsumptionOrderInvariant is the property test: consumption does not
// depend on the order of readings.
func TestConsumptionOrderInvariant(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		rs, regs := messyReadings(r)
		for _, fill := range []bool{false, true} {
			opt := Options{FillGaps: fill}
			want, err := ConsumeAll(append([]Reading(nil), rs...), regs, opt)
			if err != nil {
				t.Fatal(err)
			}
			wj, _ := json.Marshal(want)
			for k := 0; k < 5; k++ {
				sh := append([]Reading(nil), rs...)
				r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
				got, err := ConsumeAll(sh, regs, opt)
				if err != nil {
					t.Fatal(err)
				}
				if gj, _ := json.Marshal(got); string(gj) != string(wj) {
					t.Fatalf("seed %d fill %v: shuffled readings gave a different result", seed, fill)
				}
			}
			if len(want[0].Gaps) != 2 || want[0].Conflicts != 1 { // the gap and the dropped conflicting reading
				t.Fatalf("seed %d: want two gaps and one conflict, got %d, %d", seed, len(want[0].Gaps), want[0].Conflicts)
			}
		}
	}
}
