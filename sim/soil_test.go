package sim

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/vineyard/soil"
	"github.com/paulmach/orb"
)

var wartbergPlot = SoilPlot{ID: "wartberg-1", CentreLat: 49.1605, CentreLon: 9.2400}

func mustProbe(t testing.TB, seed uint64, w *Weather, f *SoilField, cfg SoilProbeConfig) *SoilProbe {
	t.Helper()
	p, err := NewSoilProbe(seed, w, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSoilMoistureFollowsRain(t *testing.T) {
	w := mustWeather(t, 4, WeatherConfig{Site: wartbergSite})
	f, err := NewSoilField(4, wartbergPlot)
	if err != nil {
		t.Fatal(err)
	}
	p := mustProbe(t, 4, w, f, SoilProbeConfig{ID: "probe-1", Lat: 49.1606, Lon: 9.2401, Start: date(2026, 4, 1)})
	pl := f.Plot()
	// Find the wettest day of the summer; the soil must be wetter after it
	// than before, and a following dry spell must dry it.
	var wettest time.Time
	var most float64
	for d := date(2026, 5, 1); d.Before(date(2026, 8, 20)); d = d.AddDate(0, 0, 1) {
		if r := w.RainMM(d, d.AddDate(0, 0, 1)); r > most {
			wettest, most = d, r
		}
	}
	if most < 10 {
		t.Fatalf("no day with 10 mm of rain in the summer (wettest %.1f mm)", most)
	}
	before := p.State(wettest.Add(-time.Hour)).MoistureVol
	after := p.State(wettest.AddDate(0, 0, 1)).MoistureVol
	if after <= before+0.5*most/p.layerMM {
		t.Errorf("%s: %.1f mm of rain moved the water content only from %.3f to %.3f", wettest.Format(time.DateOnly), most, before, after)
	}
	t.Logf("%s: %.1f mm, water content %.3f → %.3f", wettest.Format(time.DateOnly), most, before, after)
	// Over the summer the content stays physical and falls in dry spells.
	falls := 0
	prev := p.State(date(2026, 5, 1)).MoistureVol
	for h := date(2026, 5, 1); h.Before(date(2026, 9, 1)); h = h.Add(time.Hour) {
		s := p.State(h)
		if s.MoistureVol < 0.8*pl.WiltingPoint-1e-12 || s.MoistureVol > pl.Saturation+1e-12 {
			t.Fatalf("%v: water content %v outside %v–%v", h, s.MoistureVol, 0.8*pl.WiltingPoint, pl.Saturation)
		}
		if w.RainMM(h.Add(-time.Hour), h) == 0 && s.MoistureVol < prev {
			falls++
		}
		prev = s.MoistureVol
	}
	if falls < 1000 {
		t.Errorf("water content fell in only %d dry summer hours", falls)
	}
}

func TestSoilTemperatureLagsAir(t *testing.T) {
	w := mustWeather(t, 5, WeatherConfig{Site: wartbergSite})
	f, _ := NewSoilField(5, wartbergPlot)
	p := mustProbe(t, 5, w, f, SoilProbeConfig{ID: "probe-2", Lat: 49.1605, Lon: 9.2400, DepthM: 0.3, Start: date(2026, 6, 1)})
	var air, st []float64
	for at := date(2026, 7, 1); at.Before(date(2026, 8, 1)); at = at.Add(20 * time.Minute) {
		air = append(air, w.At(at).TempC)
		st = append(st, p.State(at).TempC)
	}
	// Daily ranges, and the lag (in 20-minute steps) at which the soil's
	// deviations from its own daily mean best match the air's.
	var airAmp, soilAmp float64
	const perDay = 72
	days := len(air) / perDay
	for d := range days {
		a, s := air[d*perDay:(d+1)*perDay], st[d*perDay:(d+1)*perDay]
		airAmp += (maxOf(a) - minOf(a)) / float64(days)
		soilAmp += (maxOf(s) - minOf(s)) / float64(days)
	}
	detrend := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i := range v {
			lo, hi := max(0, i-perDay/2), min(len(v), i+perDay/2)
			var m float64
			for _, x := range v[lo:hi] {
				m += x
			}
			out[i] = v[i] - m/float64(hi-lo)
		}
		return out
	}
	da, ds := detrend(air), detrend(st)
	best, bestC := 0, math.Inf(-1)
	for k := 0; k < perDay/2; k++ {
		var c float64
		for i := perDay; i+k < len(da)-perDay; i++ {
			c += da[i] * ds[i+k]
		}
		if c > bestC {
			best, bestC = k, c
		}
	}
	lag := float64(best) / 3
	t.Logf("July: air range %.1f K, soil range at 0.3 m %.1f K, soil follows the air by %.1f h", airAmp, soilAmp, lag)
	if soilAmp > 0.4*airAmp {
		t.Errorf("soil daily range %.1f K is not damped below 40 %% of the air's %.1f K", soilAmp, airAmp)
	}
	if lag < 2 || lag > 12 {
		t.Errorf("soil follows the air by %.1f h, want 2–12 h", lag)
	}
}

// TestSoilFieldHasStructure samples a plot's field on a grid, as a soil
// survey would, and checks that the soil package's kriging predicts the
// field at other points much better than the plot mean does.
func TestSoilFieldHasStructure(t *testing.T) {
	f, err := NewSoilField(9, wartbergPlot)
	if err != nil {
		t.Fatal(err)
	}
	proj := soil.Projection{Lon0: wartbergPlot.CentreLon, Lat0: wartbergPlot.CentreLat}
	var pts [][2]float64
	var z []float64
	var samples []soil.Sample
	for i := range 8 {
		for j := range 8 {
			x, y := -105+30*float64(i), -105+30*float64(j)
			lon, lat := proj.Inverse(x, y)
			s := f.Sample(lat, lon)
			samples = append(samples, s)
			pts = append(pts, [2]float64{x, y})
			z = append(z, s.P)
		}
	}
	vg, _, err := soil.FitAuto(soil.Empirical(pts, z, 10, 0))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := soil.NewOrdinaryKriging(pts, z, vg)
	if err != nil {
		t.Fatal(err)
	}
	var se, sd, mean float64
	const n = 60
	truth := make([]float64, n)
	est := make([]float64, n)
	for k := range n {
		x := -100 + 200*unit(1, stSoilNoise, int64(2*k))
		y := -100 + 200*unit(1, stSoilNoise, int64(2*k+1))
		lon, lat := proj.Inverse(x, y)
		truth[k] = f.At(lat, lon).PMg100g
		est[k], _ = ok.Predict(x, y)
		mean += truth[k] / n
	}
	for k := range n {
		se += (est[k] - truth[k]) * (est[k] - truth[k]) / n
		sd += (truth[k] - mean) * (truth[k] - mean) / n
	}
	rmse, spread := math.Sqrt(se), math.Sqrt(sd)
	t.Logf("variogram %+v; kriging RMSE %.2f mg/100 g against a spread of %.2f", vg, rmse, spread)
	if rmse > 0.6*spread {
		t.Errorf("kriging RMSE %.2f is not well below the field's spread %.2f: no spatial structure to find", rmse, spread)
	}
	// The soil package maps the samples over the plot.
	var ring orb.Ring
	for _, c := range [][2]float64{{-110, -110}, {110, -110}, {110, 110}, {-110, 110}, {-110, -110}} {
		lon, lat := proj.Inverse(c[0], c[1])
		ring = append(ring, orb.Point{lon, lat})
	}
	m, err := soil.NewMap(samples, orb.MultiPolygon{{ring}}, soil.Options{Nutrient: soil.Phosphorus, CellSize: 10, MinKrigingSamples: 40})
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != soil.Kriging || m.Max-m.Min < spread {
		t.Errorf("map by %v ranges %.1f–%.1f", m.Method, m.Min, m.Max)
	}
}

func TestSoilReadings(t *testing.T) {
	w := mustWeather(t, 6, WeatherConfig{Site: wartbergSite})
	f, _ := NewSoilField(6, wartbergPlot)
	cfg := SoilProbeConfig{ID: "probe-3", Lat: 49.1604, Lon: 9.2399, Start: date(2026, 3, 1)}
	a := mustProbe(t, 6, w, f, cfg)
	b := mustProbe(t, 6, w, f, cfg)
	var times []time.Time
	for i := range 300 {
		times = append(times, date(2026, 3, 1).Add(time.Duration(i)*13*time.Minute))
	}
	var ra, rb []SoilReading
	for _, tt := range times {
		ra = append(ra, a.Reading(tt))
	}
	// b jumps back and forth: the readings must not depend on it.
	for i := len(times) - 1; i >= 0; i -= 2 {
		b.Reading(times[i])
	}
	for _, tt := range times {
		rb = append(rb, b.Reading(tt))
	}
	if !reflect.DeepEqual(ra, rb) {
		t.Fatal("same seed and times, different readings")
	}
	on := func(v, step float64) bool { return math.Abs(v/step-math.Round(v/step)) < 1e-6 }
	for _, r := range ra {
		if !on(r.MoisturePct, 0.1) || !on(r.TempC, 0.1) || !on(r.ECuScm, 1) || !on(r.NMgKg, 1) || !on(r.PMgKg, 1) || !on(r.KMgKg, 1) || !on(r.PH, 0.01) {
			t.Fatalf("reading %+v is not at the sensor's resolution", r)
		}
		if r.MoisturePct < 5 || r.MoisturePct > 50 || r.PH < 5 || r.PH > 9 || r.PMgKg < 10 || r.KMgKg < 20 || r.ECuScm <= 0 {
			t.Fatalf("reading %+v implausible", r)
		}
	}
}

func TestSoilRejects(t *testing.T) {
	w := mustWeather(t, 1, WeatherConfig{Site: wartbergSite})
	f, _ := NewSoilField(1, wartbergPlot)
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"plot id", func() error { _, err := NewSoilField(1, SoilPlot{}); return err }, "id is empty"},
		{"plot water", func() error {
			_, err := NewSoilField(1, SoilPlot{ID: "x", FieldCapacity: 0.5, Saturation: 0.4})
			return err
		}, "wilting point"},
		{"plot pH", func() error { _, err := NewSoilField(1, SoilPlot{ID: "x", PH: 12}); return err }, "pH"},
		{"probe start", func() error { _, err := NewSoilProbe(1, w, f, SoilProbeConfig{ID: "p"}); return err }, "start"},
		{"probe depth", func() error {
			_, err := NewSoilProbe(1, w, f, SoilProbeConfig{ID: "p", DepthM: 3, Start: date(2026, 1, 1)})
			return err
		}, "depth"},
		{"probe weather", func() error { _, err := NewSoilProbe(1, nil, f, SoilProbeConfig{ID: "p"}); return err }, "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func maxOf(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

func minOf(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = math.Min(m, x)
	}
	return m
}
