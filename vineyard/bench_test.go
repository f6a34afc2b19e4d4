package vineyard

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// syntheticYear makes a year of hourly weather with a seasonal and daily
// cycle, humid nights and rain events, roughly like Heilbronn.
func syntheticYear(seed uint64) []Hour {
	r := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	hs := make([]Hour, 8760)
	rainLeft := 0
	for i := range hs {
		day := float64(i / 24)
		hour := float64(i % 24)
		season := 10.5 - 9.5*math.Cos((day-15)/365*2*math.Pi)
		daily := math.Sin((hour - 9) / 24 * 2 * math.Pi)
		t := season + 5*daily + r.NormFloat64()
		rh := 78 - 20*daily + 3*r.NormFloat64()
		rain := 0.0
		if rainLeft == 0 && r.IntN(60) == 0 {
			rainLeft = 2 + r.IntN(10)
		}
		if rainLeft > 0 {
			rainLeft--
			rain = 0.2 + 2*r.Float64()
			rh = 97
		}
		hs[i] = Hour{Time: start.Add(time.Duration(i) * time.Hour), TempC: t, RHPct: math.Min(100, math.Max(20, rh)), RainMM: rain}
	}
	return hs
}

// BenchmarkAssessPlotYears runs all models over a year of hourly weather
// (8,760 h) for 100 plots per iteration; it reports plot-years per second.
func BenchmarkAssessPlotYears(b *testing.B) {
	const plots = 100
	years := make([]Weather, plots)
	for p := range years {
		years[p] = Weather{Hours: syntheticYear(uint64(p))}
	}
	cfg := Config{Downy: DownyConfig{ShootCM: 15}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, w := range years {
			if _, err := Assess(w, cfg); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(plots*b.N)/b.Elapsed().Seconds(), "plot-years/s")
}
