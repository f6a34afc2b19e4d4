package vineyard

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Degree-day sums above 8 °C (Agroscope/VitiMeteo via FieldClimate): days
// with means 6, 10, 14 and 8.5 °C add 0, 2, 6 and 0.5 °C·d.
func TestOosporeMaturity(t *testing.T) {
	var temps []float64
	for _, m := range []float64{6, 10, 14, 8.5} {
		temps = append(temps, repeat(m, 24)...)
	}
	got := OosporeMaturity(series(temps, 80, 0), 8, 160, 150)
	want := []float64{150, 152, 158, 158.5}
	for d, o := range got {
		if !near(o.DegreeDays, want[d], 1e-9) || o.Mature {
			t.Errorf("day %d: %.2f °C·d mature %v, want %.2f and not mature", d, o.DegreeDays, o.Mature, want[d])
		}
	}
	got = OosporeMaturity(series(temps, 80, 0), 8, 160, 152)
	if !got[3].Mature || got[2].Mature == false || got[1].Mature {
		t.Errorf("with 152 prior: mature flags %v %v %v, want false true true", got[1].Mature, got[2].Mature, got[3].Mature)
	}
	// The sum restarts on 1 January.
	nye := []Hour{
		{Time: time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC), TempC: 20},
		{Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), TempC: 10},
	}
	if o := OosporeMaturity(nye, 8, 160, 0); o[0].DegreeDays != 12 || o[1].DegreeDays != 2 {
		t.Errorf("over new year: %+v", o)
	}
	// Also when a gap spans 1 January.
	nye[1].Time = time.Date(2026, 1, 3, 12, 0, 0, 0, time.UTC)
	if o := OosporeMaturity(nye, 8, 160, 0); o[1].DegreeDays != 2 {
		t.Errorf("over new year with a gap: %+v", o)
	}
}

func TestRule310(t *testing.T) {
	rainy := func(mm float64, temp float64) []Hour {
		hs := series(repeat(temp, 30), 95, 0)
		for i := 10; i < 20; i++ {
			hs[i].RainMM = mm / 10
		}
		return hs
	}
	for _, c := range []struct {
		name   string
		hs     []Hour
		cfg    DownyConfig
		events int
		known  bool
	}{
		{"10 mm at 12 °C, 12 cm shoots", rainy(10, 12), DownyConfig{ShootCM: 12}, 1, true},
		{"9.9 mm", rainy(9.9, 12), DownyConfig{ShootCM: 12}, 0, true},
		{"9.9 °C", rainy(12, 9.9), DownyConfig{ShootCM: 12}, 0, true},
		{"8 cm shoots", rainy(12, 12), DownyConfig{ShootCM: 8}, 0, true},
		{"shoots not known", rainy(12, 12), DownyConfig{}, 1, false},
		{"5 mm with a 5 mm threshold", rainy(5, 12), DownyConfig{ShootCM: 12, Rule310RainMM: 5}, 1, true},
		{"shoots observed later", rainy(12, 12), DownyConfig{Shoots: []ShootObservation{{t0.Add(5 * time.Hour), 4}, {t0.Add(25 * time.Hour), 11}}}, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := Rule310(c.hs, c.cfg)
			if len(ev) != c.events {
				t.Fatalf("%d events %+v, want %d", len(ev), ev, c.events)
			}
			if len(ev) == 1 && ev[0].ShootKnown != c.known {
				t.Errorf("shoot known %v, want %v", ev[0].ShootKnown, c.known)
			}
		})
	}
	// With shoots of 4 cm from hour 5 and 11 cm from hour 25, the rule holds
	// only from hour 25, with the shoot length then.
	ev := Rule310(rainy(12, 12), DownyConfig{Shoots: []ShootObservation{{t0.Add(5 * time.Hour), 4}, {t0.Add(25 * time.Hour), 11}}})
	if !ev[0].From.Equal(t0.Add(25*time.Hour)) || ev[0].ShootCM != 11 {
		t.Errorf("with shoot observations: event %+v, want from hour 25 at 11 cm", ev[0])
	}
	// The 10 mm arrive at hour 19 and leave the 24 h window after hour 33;
	// here the series ends at hour 29, so the event runs 19–29.
	ev = Rule310(rainy(10, 12), DownyConfig{ShootCM: 12})
	if !ev[0].From.Equal(t0.Add(19*time.Hour)) || !ev[0].To.Equal(t0.Add(29*time.Hour)) || !near(ev[0].RainMM, 10, 1e-9) {
		t.Errorf("event %+v", ev[0])
	}
	// A negative window (Assess refuses it) counts as 1 h instead of
	// running the window's start past the hour: 20 mm in each of 5 hours.
	if ev := Rule310(series(repeat(12, 5), 95, 20), DownyConfig{Rule310WindowHours: -3, ShootCM: 20}); len(ev) != 1 || ev[0].RainMM != 20 {
		t.Errorf("negative window: %+v, want one event with the hour's 20 mm", ev)
	}
	// The minimum-temperature variant is stricter than the mean.
	hs := rainy(12, 14)
	hs[15].TempC = 2
	if n := len(Rule310(hs, DownyConfig{ShootCM: 12, Rule310MinTemp: true})); n != 0 {
		t.Errorf("min-temp variant: %d events with a 2 °C hour in the window", n)
	}
	if n := len(Rule310(hs, DownyConfig{ShootCM: 12})); n != 1 {
		t.Errorf("mean variant: %d events, want 1", n)
	}
}

// Rossi et al. (2008): the primary season runs from HT 1.3 to 8.6, which the
// paper gives as 3 % and 97 % of oospores out of dormancy.
func TestDormancyBounds(t *testing.T) {
	if d := Dormancy(htSeasonStart); !near(d, 0.03, 0.002) {
		t.Errorf("DOR(1.3) = %.4f, want 0.03", d)
	}
	if d := Dormancy(htSeasonEnd); !near(d, 0.97, 0.002) {
		t.Errorf("DOR(8.6) = %.4f, want 0.97", d)
	}
	prev := 0.0
	for ht := 0.0; ht < 12; ht += 0.1 {
		d := Dormancy(ht)
		if d < prev || d > 1 {
			t.Fatalf("DOR not rising within 0..1 at HT %.1f: %g", ht, d)
		}
		prev = d
	}
}

// Hand-computed from the Rossi et al. (2008) equations as given in
// /work/shared/reference/domain.md §1.1.3.
func TestRossiRates(t *testing.T) {
	if r := HTRate(20); !near(1/r, 56.54, 0.01) {
		t.Errorf("1/HTRate(20) = %.2f, want 56.54", 1/r)
	}
	if HTRate(0) != 0 || HTRate(-3) != 0 {
		t.Error("HTRate must be 0 at T ≤ 0")
	}
	// Sporangia at 20 °C, 80 % RH: x = 4, 5.67 − 1.88 + 0.16 = 3.95 days.
	if r := SporangiaSurvivalRate(20, 80); !near(1/(24*r), 3.95, 1e-9) {
		t.Errorf("sporangia survival at 20 °C 80 %% = %.3f d, want 3.95", 1/(24*r))
	}
	// Incubation at 20 °C: 45.1 − 69 + 29.2 = 5.3 d and 59.9 − 91 + 38 = 6.9 d.
	a, b := IncubationRates(20)
	if !near(1/(24*a), 5.3, 1e-9) || !near(1/(24*b), 6.9, 1e-9) {
		t.Errorf("incubation at 20 °C: %.3f and %.3f d, want 5.3 and 6.9", 1/(24*a), 1/(24*b))
	}
	// Release at 15 °C: exp(−1.022 + 19.634/15) = 1.332 h; the other reading exp(18.612/15) = 3.458 h.
	if h := ReleaseHours(15, false); !near(h, 1.3323, 0.0005) {
		t.Errorf("release at 15 °C = %.4f h", h)
	}
	if h := ReleaseHours(15, true); !near(h, 3.4585, 0.0005) {
		t.Errorf("release (exp of sum) at 15 °C = %.4f h", h)
	}
	if !math.IsInf(ReleaseHours(0, false), 1) {
		t.Error("release at 0 °C must never happen")
	}
}

// rossiScenario: a rain event, humid days to germinate, then a rainy wet
// night to release, splash and infect, then mild days for incubation.
func rossiScenario() []Hour {
	var hs []Hour
	add := func(n int, temp, rh, rain float64) {
		for range n {
			hs = append(hs, Hour{Time: t0.Add(time.Duration(len(hs)) * time.Hour), TempC: temp, RHPct: rh, RainMM: rain})
		}
	}
	add(2, 18, 70, 0)
	add(3, 18, 98, 2)  // cohort starts at hour 2
	add(60, 20, 85, 0) // moist (VPD 0.35 ≤ 0.45 kPa) but not wet (RH < 90 %)
	add(4, 16, 60, 0)  // dry afternoon
	add(6, 16, 98, 1)  // wet, rainy: release and splash, then 60 °C·h
	add(24*9, 20, 75, 0)
	return hs
}

func TestRossiInfection(t *testing.T) {
	hs := rossiScenario()
	a, err := Assess(Weather{Hours: hs}, Config{Downy: DownyConfig{InitialHT: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Primary.Cohorts) != 2 {
		t.Fatalf("%d cohorts, want 2 (two rain events)", len(a.Primary.Cohorts))
	}
	co := a.Primary.Cohorts[0]
	if co.Fate != "infection" || co.Germinated.IsZero() || co.ZoosporesReleased.IsZero() || co.Dispersed.IsZero() {
		t.Fatalf("first cohort %+v, want an infection", co)
	}
	// Germination needs Σ 1/(1330.1 − 116.19·T + 2.6256·T²) ≥ 1: 3 h at 18 °C
	// (1/89.37 each) plus 55 h at 20 °C (1/56.54 each): the 58th hour.
	if got := co.Germinated.Sub(co.Start) / time.Hour; got != 57 {
		t.Errorf("germinated %d h after the start, want 57", got)
	}
	// Release needs exp(−1.022 + 19.634/16) = 1.23 wet hours, so the second
	// wet hour, which also splashes. Infection: wet hours at 16 °C from the
	// splash until Σ T ≥ 60: 4 hours.
	if got := co.Infection.Sub(co.Dispersed) / time.Hour; got != 3 || co.InfectionDegreeHours != 64 {
		t.Errorf("infection %d h after splash with %g °C·h, want 3 h and 64", got, co.InfectionDegreeHours)
	}
	// Incubation at 20 °C opens after about 5.3 days (127 h) and closes after 6.9.
	if got := co.IncubationStart.Sub(co.Infection).Hours(); got < 120 || got > 130 {
		t.Errorf("incubation window opens after %.0f h, want about 127", got)
	}
	if co.IncubationEnd.IsZero() || !co.IncubationEnd.After(co.IncubationStart) {
		t.Errorf("incubation window end %v", co.IncubationEnd)
	}
	var found bool
	for _, d := range a.Risk[0].Days {
		for _, r := range d.Reasons {
			if r.Rule == "downy.rossi.infection" {
				found = d.Level == High && r.Values["degree_hours"] == 64 && strings.Contains(r.Text, "WD·TWD = 64")
			}
		}
	}
	if !found {
		t.Error("no high downy-mildew day with the infection's reason")
	}
	// Before the season (HT < 1.3) no cohort starts.
	a, _ = Assess(Weather{Hours: hs}, Config{})
	if len(a.Primary.Cohorts) != 0 {
		t.Errorf("%d cohorts before HT 1.3", len(a.Primary.Cohorts))
	}
}

// Without rain splash released zoospores dry out: no infection.
func TestRossiNoSplash(t *testing.T) {
	hs := rossiScenario()
	for i := 69; i < 75; i++ {
		hs[i].RainMM = 0
	}
	a, _ := Assess(Weather{Hours: hs}, Config{Downy: DownyConfig{InitialHT: 2}})
	for _, co := range a.Primary.Cohorts {
		if co.Fate == "infection" {
			t.Fatalf("infection without splash: %+v", co)
		}
	}
	// The first cohort still releases zoospores in the wet night, and they
	// die at the first dry hour after it (hour 75).
	if len(a.Primary.Cohorts) == 0 {
		t.Fatal("no cohort")
	}
	co := a.Primary.Cohorts[0]
	if co.ZoosporesReleased.IsZero() || !co.Dispersed.IsZero() || co.Fate != "zoospores dried out" {
		t.Errorf("first cohort %+v, want released, not dispersed, dried out", co)
	}
}

// FieldClimate's examples of 50 °C·h: 4 h at 13 °C and 3 h at 17 °C; VineForecast
// bands > 50 moderate, > 150 high. Secondary risk needs oil spots.
func TestSecondary(t *testing.T) {
	for _, c := range []struct {
		name  string
		temps []float64
		want  Level
	}{
		{"4 h at 13 °C", repeat(13, 4), Moderate},
		{"3 h at 17 °C", repeat(17, 3), Moderate},
		{"3 h at 13 °C", repeat(13, 3), None},
		{"8 h at 19 °C", repeat(19, 8), High},
	} {
		t.Run(c.name, func(t *testing.T) {
			hs := series(append(append([]float64{15}, c.temps...), 15), 95, 0)
			hs[0].RHPct, hs[len(hs)-1].RHPct = 60, 60
			a, err := Assess(Weather{Hours: hs}, Config{Downy: DownyConfig{LesionsFrom: t0}})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Risk[0].Days[0].Level; got != c.want {
				t.Errorf("level %v, want %v (%+v)", got, c.want, a.Secondary)
			}
			a, _ = Assess(Weather{Hours: hs}, Config{})
			if a.Risk[0].Days[0].Level != None {
				t.Errorf("without oil spots: level %v", a.Risk[0].Days[0].Level)
			}
		})
	}
}

// powderyDays makes whole days whose hours are 15 °C except a run of good
// hours at 25 °C and, on hot days, one hour at 36 °C.
func powderyDays(spec string) []Hour {
	var temps []float64
	for _, c := range spec {
		day := repeat(15, 24)
		switch c {
		case 'G': // 6 h at 25 °C
			copy(day[10:], repeat(25, 6))
		case 'S': // 5 h only
			copy(day[10:], repeat(25, 5))
		case 'H': // good and hot
			copy(day[10:], repeat(25, 6))
			day[17] = 36
		case 'X': // hot, not good
			day[17] = 36
		}
		temps = append(temps, day...)
	}
	return series(temps, 60, 0)
}

// Gubler-Thomas index sequences following the rules of westernfarmpress.com
// (pages 1–2) and the Spectrum WatchDog manual.
func TestGublerThomas(t *testing.T) {
	for _, c := range []struct {
		spec string
		want []int
	}{
		{"GGG", []int{20, 40, 60}},                                      // start phase
		{"GGBGGG", []int{20, 40, 0, 20, 40, 60}},                        // a broken run resets to 0
		{"GGSG", []int{20, 40, 0, 20}},                                  // 5 h is not enough
		{"GGGGGGGG", []int{20, 40, 60, 80, 100, 100, 100, 100}},         // capped at 100
		{"GGGBBBBBBBB", []int{20, 40, 60, 50, 40, 30, 20, 10, 0, 0, 0}}, // floored at 0
		{"GGGHXG", []int{20, 40, 60, 70, 60, 80}},                       // +10 net; hot and short −10 only (at most −10 a day)
		{"HHH", []int{20, 40, 60}},                                      // heat is not checked in the start phase
		{"GGGBGB", []int{20, 40, 60, 50, 70, 60}},                       //
	} {
		got := GublerThomas(powderyDays(c.spec), PowderyConfig{})
		var idx []int
		for _, d := range got {
			idx = append(idx, d.Index)
		}
		if len(idx) != len(c.want) {
			t.Fatalf("%s: %v, want %v", c.spec, idx, c.want)
		}
		for i := range idx {
			if idx[i] != c.want[i] {
				t.Errorf("%s: %v, want %v", c.spec, idx, c.want)
				break
			}
		}
	}
	// A missing day breaks the start run.
	hs := powderyDays("GGGG")
	hs = append(hs[:48], hs[72:]...)
	got := GublerThomas(hs, PowderyConfig{})
	if got[2].Index != 20 || got[2].Started {
		t.Errorf("after a missing day: %+v, want the run to restart at 20", got[2])
	}
}

func TestAdviceBands(t *testing.T) {
	for _, c := range []struct {
		index int
		level Level
		sulf  string
	}{{0, Low, "14-21 d"}, {30, Low, "14-21 d"}, {40, Moderate, "10-17 d"}, {60, Moderate, "10-17 d"}, {70, High, "7 d"}, {100, High, "7 d"}} {
		if a := AdviceFor(c.index); a.RiskLevel != c.level || a.Sulfur != c.sulf {
			t.Errorf("index %d: %+v", c.index, a)
		}
	}
}

// Property: for random weather the Gubler-Thomas index stays within 0–100,
// moves in steps of 10, and by at most +20 / −10 per day (westernfarmpress.com:
// "You can't subtract more than 10 points a day").
func TestGublerThomasBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 1))
	for trial := range 200 {
		n := 24 * (1 + r.IntN(60))
		temps := make([]float64, n)
		base := 10 + 20*r.Float64()
		for i := range temps {
			temps[i] = base + 10*math.Sin(float64(i%24-9)/24*2*math.Pi) + 6*r.NormFloat64()
		}
		prev, wasStarted := 0, false
		for d, p := range GublerThomas(series(temps, 60, 0), PowderyConfig{}) {
			if p.Index < 0 || p.Index > 100 || p.Index%10 != 0 {
				t.Fatalf("trial %d day %d: index %d", trial, d, p.Index)
			}
			if p.Change != p.Index-prev {
				t.Fatalf("trial %d day %d: change %d, index %d → %d", trial, d, p.Change, prev, p.Index)
			}
			if wasStarted && (p.Change > 20 || p.Change < -10) {
				t.Fatalf("trial %d day %d: index moved %d → %d", trial, d, prev, p.Index)
			}
			prev, wasStarted = p.Index, p.Started
		}
	}
}

// Broome et al. (1995) index hand-computed from the published coefficients,
// with GrapeCast's bands.
func TestBroomeIndex(t *testing.T) {
	for _, c := range []struct {
		w, t, want float64
		level      Level
	}{
		{0, 20, -2.647866, None},
		{10, 20, -0.120936, None},
		{16, 20, 1.395222, High},
		{12, 20, 0.384450, Low},
		{14, 18, 0.772712, Moderate},
	} {
		got := BroomeIndex(c.w, c.t)
		if !near(got, c.want, 1e-6) || BroomeLevel(got) != c.level {
			t.Errorf("W=%g T=%g: %.6f (%v), want %.6f (%v)", c.w, c.t, got, BroomeLevel(got), c.want, c.level)
		}
	}
	if p := BroomeProbability(0); p != 0.5 {
		t.Errorf("P(0) = %g", p)
	}
}

func TestBotrytisPeriods(t *testing.T) {
	// 16 wet hours at 20 °C between dry hours: index 1.395, high.
	hs := series(append(append([]float64{20}, repeat(20, 16)...), 20), 95, 0)
	hs[0].RHPct, hs[17].RHPct = 60, 60
	a, err := Assess(Weather{Hours: hs}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Botrytis) != 1 || a.Botrytis[0].WetHours != 16 || !near(a.Botrytis[0].Index, 1.395222, 1e-6) {
		t.Fatalf("periods %+v", a.Botrytis)
	}
	if a.Risk[2].Days[0].Level != High || len(a.Risk[2].Days[0].Reasons) != 1 {
		t.Errorf("botrytis day %+v", a.Risk[2].Days[0])
	}
	// A gap ends a wet period even when the hour after it is ignored as
	// too hot (> 40 °C): 5 wet hours, 3 missing, one at 41 °C, 5 wet hours.
	gapped := series(repeat(20, 14), 95, 0)
	gapped = append(gapped[:5], gapped[8:]...)
	gapped[5].TempC = 41
	a, err = Assess(Weather{Hours: gapped}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Botrytis) != 2 || a.Botrytis[0].WetHours != 5 || a.Botrytis[1].WetHours != 5 {
		t.Errorf("across a gap and a hot hour: %+v, want two periods of 5 h", a.Botrytis)
	}
	// Cold hours are raised to 12.2 °C.
	hs = series(repeat(5, 16), 95, 0)
	a, _ = Assess(Weather{Hours: hs}, Config{})
	if !near(a.Botrytis[0].MeanTempC, 12.2, 1e-9) {
		t.Errorf("mean of clamped hours %g", a.Botrytis[0].MeanTempC)
	}
}

// Property: making any one hour dry never raises the Botrytis level of any
// day (a dry hour ends the wet period; the index rises with W for every
// clamped temperature, and is concave in T).
func TestBotrytisDryHourNeverRaises(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 2))
	for trial := range 100 {
		n := 24 * (1 + r.IntN(4))
		hs := make([]Hour, n)
		for i := range hs {
			rh := 99.0
			if r.IntN(8) == 0 {
				rh = 60
			}
			hs[i] = Hour{Time: t0.Add(time.Duration(i) * time.Hour), TempC: 5 + 30*r.Float64(), RHPct: rh}
		}
		before, _ := Assess(Weather{Hours: hs}, Config{})
		k := r.IntN(n)
		hs[k].RHPct = 50
		after, _ := Assess(Weather{Hours: hs}, Config{})
		for d := range before.Risk[2].Days {
			if after.Risk[2].Days[d].Level > before.Risk[2].Days[d].Level {
				t.Fatalf("trial %d: drying hour %d raised day %d from %v to %v", trial, k, d, before.Risk[2].Days[d].Level, after.Risk[2].Days[d].Level)
			}
		}
		maxIdx := func(a Assessment) float64 {
			m := math.Inf(-1)
			for _, p := range a.Botrytis {
				m = math.Max(m, p.Index)
			}
			return m
		}
		if maxIdx(after) > maxIdx(before)+1e-12 {
			t.Fatalf("trial %d: drying hour %d raised the highest index", trial, k)
		}
	}
}

func TestAscospores(t *testing.T) {
	// 3 mm of rain, then 8 wet hours at 12 °C.
	hs := series(append(repeat(12, 1), repeat(12, 9)...), 95, 0)
	hs[0].RHPct, hs[0].RainMM = 60, 3
	a, _ := Assess(Weather{Hours: hs}, Config{})
	if len(a.Ascospores) != 1 || a.Ascospores[0].WetHours != 8 {
		t.Fatalf("events %+v", a.Ascospores)
	}
	// Too cold, or too little rain: none.
	for _, mod := range []func([]Hour){
		func(h []Hour) { h[0].RainMM = 2 },
		func(h []Hour) {
			for i := range h {
				h[i].TempC = 9
			}
		},
	} {
		hs := series(repeat(12, 10), 95, 0)
		hs[0].RHPct, hs[0].RainMM = 60, 3
		mod(hs)
		a, _ := Assess(Weather{Hours: hs}, Config{})
		if len(a.Ascospores) != 0 {
			t.Errorf("events %+v", a.Ascospores)
		}
	}
}

// withHour returns a copy of hs with hour i changed by f.
func withHour(hs []Hour, i int, f func(*Hour)) []Hour {
	c := append([]Hour(nil), hs...)
	f(&c[i])
	return c
}

func TestAssessBadInput(t *testing.T) {
	hs := series(repeat(12, 3), 80, 0)
	for _, c := range []struct {
		name string
		w    Weather
		cfg  Config
		want string
	}{
		{"empty", Weather{}, Config{}, "no weather hours"},
		{"unordered", Weather{Hours: []Hour{hs[1], hs[0]}}, Config{}, "not after"},
		{"wet RH", Weather{Hours: hs}, Config{WetRH: 120}, "wet RH"},
		{"wet RH NaN", Weather{Hours: hs}, Config{WetRH: math.NaN()}, "wet RH"},
		{"NaN temperature", Weather{Hours: withHour(hs, 1, func(h *Hour) { h.TempC = math.NaN() })}, Config{}, "hour 2 (2026-05-01T01:00:00+02:00): temp_c NaN"},
		{"infinite rain", Weather{Hours: withHour(hs, 2, func(h *Hour) { h.RainMM = math.Inf(1) })}, Config{}, "rain_mm +Inf"},
		{"negative RH", Weather{Hours: withHour(hs, 0, func(h *Hour) { h.RHPct = -1 })}, Config{}, "rh_pct -1"},
		{"leaf wetness", Weather{Hours: withHour(hs, 0, func(h *Hour) { h.LeafWet, h.HasLeafWet = 2, true })}, Config{}, "leaf_wet 2"},
		{"window", Weather{Hours: hs}, Config{Downy: DownyConfig{Rule310WindowHours: -1}}, "window"},
		{"shoot", Weather{Hours: hs}, Config{Downy: DownyConfig{ShootCM: -1}}, "shoot"},
		{"powdery range", Weather{Hours: hs}, Config{Powdery: PowderyConfig{LowC: 30, HighC: 20}}, "empty"},
		{"powdery NaN", Weather{Hours: hs}, Config{Powdery: PowderyConfig{LowC: math.NaN()}}, "powdery: low temperature NaN"},
		{"downy NaN", Weather{Hours: hs}, Config{Downy: DownyConfig{InitialHT: math.NaN()}}, "downy: initial hydrothermal time NaN"},
		{"shoot NaN", Weather{Hours: hs}, Config{Downy: DownyConfig{Shoots: []ShootObservation{{Time: t0, CM: math.NaN()}}}}, "shoot observation 1"},
		{"botrytis clamp", Weather{Hours: hs}, Config{Botrytis: BotrytisConfig{ClampLowC: 30, ClampHighC: 20}}, "clamp range"},
		{"botrytis cap", Weather{Hours: hs}, Config{Botrytis: BotrytisConfig{MaxWetHours: -1}}, "cap"},
		{"botrytis NaN", Weather{Hours: hs}, Config{Botrytis: BotrytisConfig{IgnoreAboveC: math.Inf(1)}}, "ignore above +Inf"},
	} {
		if _, err := Assess(c.w, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

// The From setting trims the day-by-day risk and starts the powdery index.
func TestAssessFrom(t *testing.T) {
	hs := powderyDays("BBGGG")
	a, err := Assess(Weather{Hours: hs}, Config{From: t0.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Powdery) != 3 || a.Powdery[2].Index != 60 {
		t.Errorf("powdery %+v", a.Powdery)
	}
	for _, r := range a.Risk {
		if len(r.Days) != 3 || r.Days[0].Date != "2026-05-03" {
			t.Errorf("%s: %d days from %s", r.Disease, len(r.Days), r.Days[0].Date)
		}
	}
}

// Rossi's hydrothermal time restarts on 1 January, so a cohort needs the
// new year's HT to reach 1.3 again.
func TestRossiNewYear(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	hs := []Hour{
		{Time: time.Date(2025, 12, 31, 23, 0, 0, 0, cet), TempC: 8, RHPct: 80},
		{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, cet), TempC: 8, RHPct: 95, RainMM: 2},
	}
	a, err := Assess(Weather{Hours: hs}, Config{Downy: DownyConfig{InitialHT: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Primary.Cohorts) != 0 || a.Primary.HTEnd > 0.01 {
		t.Errorf("after 1 January: %d cohorts, HT %g", len(a.Primary.Cohorts), a.Primary.HTEnd)
	}
	// Without the year change the same rain starts a cohort.
	hs[1].Time = time.Date(2026, 1, 1, 1, 0, 0, 0, cet)
	hs[0].Time = time.Date(2026, 1, 1, 0, 0, 0, 0, cet)
	if a, _ := Assess(Weather{Hours: hs}, Config{Downy: DownyConfig{InitialHT: 3}}); len(a.Primary.Cohorts) != 1 {
		t.Errorf("within one year: %d cohorts, want 1", len(a.Primary.Cohorts))
	}
}

// Property: over a synthetic year, every day's level is the highest level
// of its reasons, a day above none always has a reason, and every reason
// names its rule, says something and covers hours in order.
func TestRiskDaysExplained(t *testing.T) {
	a, err := Assess(Weather{Hours: syntheticYear(3)}, Config{Downy: DownyConfig{ShootCM: 20}})
	if err != nil {
		t.Fatal(err)
	}
	levels := map[Level]int{}
	for _, dr := range a.Risk {
		if len(dr.Days) != 365 {
			t.Errorf("%s: %d days", dr.Disease, len(dr.Days))
		}
		for _, d := range dr.Days {
			top := None
			for _, r := range d.Reasons {
				if r.Rule == "" || r.Text == "" || r.To.Before(r.From) {
					t.Fatalf("%s %s: bad reason %+v", dr.Disease, d.Date, r)
				}
				top = max(top, r.Level)
			}
			if top != d.Level {
				t.Fatalf("%s %s: level %v, reasons' highest %v", dr.Disease, d.Date, d.Level, top)
			}
			if d.Level > dr.Peak {
				t.Fatalf("%s: day %s above the peak", dr.Disease, d.Date)
			}
			levels[d.Level]++
		}
	}
	if levels[High] == 0 || levels[None] == 0 {
		t.Errorf("a synthetic year should have both high and quiet days: %v", levels)
	}
}

// Days are calendar days in each record's own offset and never repeat,
// even when a file mixes offsets: 00:00+02:00 on 2 May is followed one
// hour later by 23:00Z on 1 May and then 02:00+02:00 on 2 May.
func TestDaysMixedOffsets(t *testing.T) {
	cest := time.FixedZone("CEST", 2*3600)
	hs := []Hour{
		{Time: time.Date(2026, 5, 2, 0, 0, 0, 0, cest), TempC: 12, RHPct: 80},
		{Time: time.Date(2026, 5, 1, 23, 0, 0, 0, time.UTC), TempC: 12, RHPct: 80},
		{Time: time.Date(2026, 5, 2, 2, 0, 0, 0, cest), TempC: 12, RHPct: 80},
	}
	a, err := Assess(Weather{Hours: hs}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range a.Risk {
		if len(r.Days) != 1 || r.Days[0].Date != "2026-05-02" || r.Days[0].Hours != 3 {
			t.Errorf("%s: days %+v, want one day 2026-05-02 of 3 hours", r.Disease, r.Days)
		}
	}
	if len(a.Oospores) != 1 || len(a.Powdery) != 1 {
		t.Errorf("%d oospore days, %d powdery days, want 1 each", len(a.Oospores), len(a.Powdery))
	}
	// From the second hour the powdery index sees two days (1 and 2 May in
	// the records' offsets) within what the whole series calls one day; the
	// reasons are filed without running past the series' days.
	a, err = Assess(Weather{Hours: hs}, Config{From: hs[1].Time})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Powdery) != 2 || len(a.Risk[1].Days) != 1 || len(a.Risk[1].Days[0].Reasons) != 2 {
		t.Errorf("from the second hour: %d powdery days, risk days %+v", len(a.Powdery), a.Risk[1].Days)
	}
}
