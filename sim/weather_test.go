package sim

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/vineyard"
)

func TestWeatherDeterministic(t *testing.T) {
	a := mustWeather(t, 7, WeatherConfig{})
	b := mustWeather(t, 7, WeatherConfig{})
	c := mustWeather(t, 8, WeatherConfig{})
	start := date(2026, 5, 1)
	var times []time.Time
	for i := range 500 {
		times = append(times, start.Add(time.Duration(i)*37*time.Minute))
	}
	var fromA []Conditions
	for _, tt := range times {
		fromA = append(fromA, a.At(tt))
	}
	// b is asked in reverse order and twice: the answers must not depend on
	// the order of questions or on the caches.
	fromB := make([]Conditions, len(times))
	for i := len(times) - 1; i >= 0; i-- {
		fromB[i] = b.At(times[i])
		if again := b.At(times[i]); !reflect.DeepEqual(again, fromB[i]) {
			t.Fatalf("second call at %v differs", times[i])
		}
	}
	if !reflect.DeepEqual(fromA, fromB) {
		t.Fatal("same seed, different weather")
	}
	differ := 0
	for i, tt := range times {
		if c.At(tt).TempC != fromA[i].TempC {
			differ++
		}
	}
	if differ < len(times)/2 {
		t.Fatalf("seeds 7 and 8 give the same temperature at %d of %d times", len(times)-differ, len(times))
	}
	if got, want := a.RainMM(start, start.AddDate(0, 1, 0)), b.RainMM(start, start.AddDate(0, 1, 0)); got != want {
		t.Fatalf("rain sums differ: %v and %v", got, want)
	}
}

// yearStats runs a year of hourly weather.
type yearStats struct {
	monthMean [12]float64
	monthRain [12]float64
	rain      float64
	ghiKWh    float64
	maxT      float64
	minT      float64
}

func simulateYear(t testing.TB, seed uint64, year int) yearStats {
	w := mustWeather(t, seed, WeatherConfig{})
	var s yearStats
	var n [12]float64
	s.maxT, s.minT = -100, 100
	for h := date(year, 1, 1); h.Year() == year; h = h.Add(time.Hour) {
		c := w.At(h.Add(30 * time.Minute))
		m := int(h.Month()) - 1
		s.monthMean[m] += c.TempC
		n[m]++
		r := w.RainMM(h, h.Add(time.Hour))
		s.monthRain[m] += r
		s.rain += r
		s.ghiKWh += c.GHIWm2 / 1000
		s.maxT = math.Max(s.maxT, c.TempC)
		s.minT = math.Min(s.minT, c.TempC)
	}
	for m := range 12 {
		s.monthMean[m] /= n[m]
	}
	return s
}

// TestWeatherClimate checks ten simulated years against the climate the
// model is built on: each month's mean temperature, averaged over the ten
// years, within 1.25 K of the Heilbronn table (a ten-year mean of the
// simulated anomalies spreads by about 0.35 K), every single month within
// 6 K;
// annual rain in every year within 450–1,100 mm and on average within
// 680–820 mm (the table's 744 mm, the region's ~700–800 mm); global
// radiation 1,000–1,300 kWh/m²; extremes plausible for the Neckar valley.
func TestWeatherClimate(t *testing.T) {
	const years = 10
	var mean [12]float64
	var rain float64
	for seed := uint64(1); seed <= years; seed++ {
		s := simulateYear(t, seed, 2026)
		for m := range 12 {
			mean[m] += s.monthMean[m] / years
			if d := s.monthMean[m] - Heilbronn.MeanTempC[m]; math.Abs(d) > 6 {
				t.Errorf("seed %d month %d: mean %.1f °C is %.1f K from the climate's %.1f", seed, m+1, s.monthMean[m], d, Heilbronn.MeanTempC[m])
			}
		}
		if s.rain < 450 || s.rain > 1100 {
			t.Errorf("seed %d: annual rain %.0f mm outside 450–1100", seed, s.rain)
		}
		if s.ghiKWh < 1000 || s.ghiKWh > 1300 {
			t.Errorf("seed %d: global radiation %.0f kWh/m² outside 1000–1300", seed, s.ghiKWh)
		}
		if s.maxT < 27 || s.maxT > 40 || s.minT < -20 || s.minT > -2 {
			t.Errorf("seed %d: extremes %.1f / %.1f °C implausible", seed, s.minT, s.maxT)
		}
		rain += s.rain / years
		t.Logf("seed %d: rain %.0f mm, radiation %.0f kWh/m², %.1f to %.1f °C", seed, s.rain, s.ghiKWh, s.minT, s.maxT)
	}
	for m := range 12 {
		if d := mean[m] - Heilbronn.MeanTempC[m]; math.Abs(d) > 1.25 {
			t.Errorf("month %d: ten-year mean %.2f °C is %.2f K from the climate's %.1f", m+1, mean[m], d, Heilbronn.MeanTempC[m])
		}
	}
	if rain < 680 || rain > 820 {
		t.Errorf("mean annual rain %.0f mm outside 680–820", rain)
	}
	t.Logf("mean annual rain %.0f mm; monthly means %.1f", rain, mean)
}

func TestWeatherRelations(t *testing.T) {
	w := mustWeather(t, 3, WeatherConfig{})
	var summerRain, afternoonRain float64
	var sx, sy, sxx, syy, sxy, n float64
	for h := date(2026, 6, 1); h.Before(date(2026, 9, 1)); h = h.Add(20 * time.Minute) {
		c := w.At(h)
		switch {
		case c.RHPct < 15 || c.RHPct > 100:
			t.Fatalf("%v: RH %v outside 15–100", h, c.RHPct)
		case c.DewPointC > c.TempC+0.05:
			t.Fatalf("%v: dew point %v above temperature %v", h, c.DewPointC, c.TempC)
		case c.Sun.ElevationDeg < 0 && (c.GHIWm2 != 0 || c.UVIndex != 0 || c.IlluminanceLux != 0):
			t.Fatalf("%v: sun below the horizon but GHI %v, UV %v, %v lx", h, c.GHIWm2, c.UVIndex, c.IlluminanceLux)
		case c.UVIndex > 11 || c.GHIWm2 > 1100:
			t.Fatalf("%v: UV index %v or GHI %v implausible", h, c.UVIndex, c.GHIWm2)
		case c.RainMMH > 0 && c.LeafWet != 1:
			t.Fatalf("%v: raining %v mm/h but leaves %v wet", h, c.RainMMH, c.LeafWet)
		case c.RHPct >= 93 && c.LeafWet < 1:
			t.Fatalf("%v: RH %v but leaves only %v wet", h, c.RHPct, c.LeafWet)
		case c.PressureHPa < 950 || c.PressureHPa > 1030 || c.WindMS < 0 || c.GustMS < c.WindMS:
			t.Fatalf("%v: pressure %v hPa, wind %v, gust %v implausible", h, c.PressureHPa, c.WindMS, c.GustMS)
		}
		x, y := c.TempC, c.RHPct
		sx += x
		sy += y
		sxx += x * x
		syy += y * y
		sxy += x * y
		n++
	}
	r := (n*sxy - sx*sy) / math.Sqrt((n*sxx-sx*sx)*(n*syy-sy*sy))
	if r > -0.5 {
		t.Errorf("summer temperature and humidity correlate at %.2f, want below −0.5", r)
	}
	// 8 of 24 hours hold a third of the day; afternoon showers push the
	// afternoon's share of summer rain above that. One summer's rain is a
	// few events, so count eight summers.
	for seed := uint64(1); seed <= 8; seed++ {
		w := mustWeather(t, seed, WeatherConfig{})
		for h := date(2026, 6, 1); h.Before(date(2026, 9, 1)); h = h.Add(time.Hour) {
			r := w.RainMM(h, h.Add(time.Hour))
			summerRain += r
			if hr := h.Hour(); hr >= 12 && hr < 20 {
				afternoonRain += r
			}
		}
	}
	if share := afternoonRain / summerRain; share < 0.42 {
		t.Errorf("afternoon (12–20 h) share of summer rain %.2f, want ≥ 0.42", share)
	}
}

func TestSunPosition(t *testing.T) {
	lat, lon := 49.15, 9.22
	for _, tc := range []struct {
		day  time.Time
		want float64 // noon elevation: 90 − lat + declination
	}{
		{time.Date(2026, 6, 21, 0, 0, 0, 0, time.UTC), 90 - lat + 23.44},
		{time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC), 90 - lat - 23.44},
		{time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), 90 - lat},
	} {
		best, bestAt := -90.0, time.Time{}
		for m := 0; m < 24*60; m++ {
			at := tc.day.Add(time.Duration(m) * time.Minute)
			if e := Sun(at, lat, lon).ElevationDeg; e > best {
				best, bestAt = e, at
			}
		}
		if math.Abs(best-tc.want) > 0.3 {
			t.Errorf("%s: noon elevation %.2f°, want %.2f°", tc.day.Format(time.DateOnly), best, tc.want)
		}
		// Solar noon at 9.22° E is about 11:23 UTC ± the equation of time
		// (at most 16 min); the sun stands in the south then.
		noon := tc.day.Add(12*time.Hour - time.Duration(lon/15*float64(time.Hour)))
		if d := bestAt.Sub(noon); d < -17*time.Minute || d > 17*time.Minute {
			t.Errorf("%s: solar noon at %s, want within 17 min of %s", tc.day.Format(time.DateOnly), bestAt.Format("15:04"), noon.Format("15:04"))
		}
		if az := Sun(bestAt, lat, lon).AzimuthDeg; math.Abs(az-180) > 1 {
			t.Errorf("%s: azimuth at noon %.1f°, want 180°", tc.day.Format(time.DateOnly), az)
		}
	}
	// Sunrise in the east, sunset in the west.
	rise := Sun(time.Date(2026, 3, 20, 5, 30, 0, 0, time.UTC), lat, lon)
	set := Sun(time.Date(2026, 3, 20, 17, 20, 0, 0, time.UTC), lat, lon)
	if math.Abs(rise.ElevationDeg) > 3 || math.Abs(rise.AzimuthDeg-90) > 5 || math.Abs(set.ElevationDeg) > 3 || math.Abs(set.AzimuthDeg-270) > 5 {
		t.Errorf("equinox sunrise %+v, sunset %+v: want near the horizon in the east and west", rise, set)
	}
}

func TestRadiationModels(t *testing.T) {
	if g := ClearSkyGHI(90); math.Abs(g-1098*math.Exp(-0.059)) > 1e-9 {
		t.Errorf("Haurwitz at the zenith: %v", g)
	}
	if ClearSkyGHI(-1) != 0 || ClearSkyUVIndex(-1, 300) != 0 {
		t.Error("radiation below the horizon")
	}
	// Madronich: overhead sun and 300 DU give 12.5.
	if u := ClearSkyUVIndex(90, 300); math.Abs(u-12.5) > 1e-9 {
		t.Errorf("UV index overhead at 300 DU: %v, want 12.5", u)
	}
	if k := CloudTransmission(1); math.Abs(k-0.25) > 1e-12 || CloudTransmission(0) != 1 {
		t.Errorf("Kasten-Czeplak: overcast %v, clear %v", k, CloudTransmission(0))
	}
}

func TestDewPointInvertsMagnus(t *testing.T) {
	for _, tc := range []struct{ temp, rh float64 }{{20, 50}, {0, 90}, {30, 30}, {-5, 80}, {15, 100}} {
		d := DewPoint(tc.temp, tc.rh)
		rh := 100 * SaturationVapourPressure(d) / SaturationVapourPressure(tc.temp)
		if math.Abs(rh-tc.rh) > 1e-9 {
			t.Errorf("T %v RH %v: dew point %v gives RH %v back", tc.temp, tc.rh, d, rh)
		}
	}
	// Cross-check with the vineyard package's implementation of the same form.
	if a, b := DewPoint(18.3, 71), vineyard.DewPoint(18.3, 71); math.Abs(a-b) > 1e-12 {
		t.Errorf("dew point %v, vineyard says %v", a, b)
	}
}

// TestWeatherScenariosRaiseDiseaseRisk runs the vineyard package's disease
// models on a normal year and on years with a downy-mildew scenario (20 May
// to 20 June) and a powdery-mildew scenario (June), and checks that each
// scenario raises its own disease's risk: more 3-10 rule events and days of
// high downy-mildew risk, more days with a Gubler-Thomas index above 60.
func TestWeatherScenariosRaiseDiseaseRisk(t *testing.T) {
	from, to := date(2026, 1, 1), date(2026, 8, 1)
	dFrom, dTo := date(2026, 5, 20), date(2026, 6, 20)
	pFrom, pTo := date(2026, 6, 1), date(2026, 7, 1)
	type risk struct{ rule310, downyHigh, powderyHigh int }
	assess := func(seed uint64, sc []WeatherScenario) risk {
		w := mustWeather(t, seed, WeatherConfig{Site: wartbergSite, Scenarios: sc})
		a, err := vineyard.Assess(vineyardHours(w, from, to, nil), vineyard.Config{
			Downy: vineyard.DownyConfig{ShootCM: 20}, From: date(2026, 4, 20)})
		if err != nil {
			t.Fatal(err)
		}
		var r risk
		for _, e := range a.Rule310 {
			if !e.From.Before(dFrom) && e.From.Before(dTo) {
				r.rule310++
			}
		}
		for _, d := range a.Risk[0].Days {
			if d.Level == vineyard.High && d.Date >= dFrom.Format(time.DateOnly) && d.Date < dTo.Format(time.DateOnly) {
				r.downyHigh++
			}
		}
		for _, p := range a.Powdery {
			if p.Index > 60 && p.Date >= pFrom.Format(time.DateOnly) && p.Date < pTo.Format(time.DateOnly) {
				r.powderyHigh++
			}
		}
		return r
	}
	for _, seed := range []uint64{1, 2} {
		normal := assess(seed, nil)
		downy := assess(seed, []WeatherScenario{{Kind: FavourDownyMildew, From: dFrom, To: dTo}})
		powdery := assess(seed, []WeatherScenario{{Kind: FavourPowderyMildew, From: pFrom, To: pTo}})
		t.Logf("seed %d: normal %+v, downy %+v, powdery %+v", seed, normal, downy, powdery)
		if downy.rule310 < 10 || downy.rule310 < 3*normal.rule310 {
			t.Errorf("seed %d: downy scenario gives %d 3-10 events (normal year %d), want ≥ 10 and ≥ 3×", seed, downy.rule310, normal.rule310)
		}
		if downy.downyHigh < 25 || downy.downyHigh <= 2*normal.downyHigh {
			t.Errorf("seed %d: downy scenario gives %d high-risk days of 31 (normal %d)", seed, downy.downyHigh, normal.downyHigh)
		}
		if powdery.powderyHigh < 25 || powdery.powderyHigh <= normal.powderyHigh {
			t.Errorf("seed %d: powdery scenario gives %d days with index > 60 of 30 (normal %d)", seed, powdery.powderyHigh, normal.powderyHigh)
		}
		if powdery.rule310 > normal.rule310 {
			t.Errorf("seed %d: the dry powdery scenario adds 3-10 events (%d > %d)", seed, powdery.rule310, normal.rule310)
		}
	}
}

func TestNewWeatherRejects(t *testing.T) {
	when := date(2026, 5, 1)
	bad := Heilbronn
	bad.CloudFraction[3] = 1
	for _, tc := range []struct {
		name string
		cfg  WeatherConfig
		want string
	}{
		{"no name", WeatherConfig{Site: Site{Lat: 49, Lon: 9}}, "site name is empty"},
		{"latitude", WeatherConfig{Site: Site{Name: "x", Lat: 91, Lon: 9}}, "out of range"},
		{"altitude", WeatherConfig{Site: Site{Name: "x", Lat: 49, Lon: 9, AltitudeM: math.NaN()}}, "out of range"},
		{"scenario kind", WeatherConfig{Site: campusSite, Scenarios: []WeatherScenario{{Kind: "hail", From: when, To: when.Add(time.Hour)}}}, "unknown scenario"},
		{"scenario order", WeatherConfig{Site: campusSite, Scenarios: []WeatherScenario{{Kind: FavourDownyMildew, From: when, To: when}}}, "ends"},
		{"climate", WeatherConfig{Site: campusSite, Climate: &bad}, "cloud fraction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewWeather(1, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCalendar(t *testing.T) {
	for _, tc := range []struct {
		year int
		m    time.Month
		d    int
	}{{2024, 3, 31}, {2025, 4, 20}, {2026, 4, 5}, {2027, 3, 28}, {2038, 4, 25}, {2000, 4, 23}} {
		if m, d := Easter(tc.year); m != tc.m || d != tc.d {
			t.Errorf("Easter %d: %v %d, want %v %d", tc.year, m, d, tc.m, tc.d)
		}
	}
	count := func(year int) int {
		n := 0
		for d := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == year; d = d.AddDate(0, 0, 1) {
			if Holiday(d.Date()) != "" {
				n++
			}
		}
		return n
	}
	if n := count(2026); n != 12 {
		t.Errorf("2026 has %d Baden-Württemberg holidays, want 12", n)
	}
	if n := count(2017); n != 13 {
		t.Errorf("2017 has %d holidays, want 13 (Reformation Day)", n)
	}
	for _, tc := range []struct {
		day  time.Time
		want DayType
		name string
	}{
		{date(2026, 6, 4), Sunday, "Fronleichnam"},
		{date(2026, 5, 14), Sunday, "Christi Himmelfahrt"},
		{date(2026, 4, 3), Sunday, "Karfreitag"},
		{date(2026, 5, 13), LectureDay, ""},
		{date(2026, 8, 12), BreakDay, ""},
		{date(2026, 8, 15), Saturday, ""},
		{date(2026, 12, 29), Closure, ""},
		{date(2026, 10, 3), Sunday, "Tag der Deutschen Einheit"},
	} {
		if got := DayTypeOf(tc.day.Add(10*time.Hour), nil); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.day.Format(time.DateOnly), got, tc.want)
		}
		if got := Holiday(tc.day.Date()); got != tc.name {
			t.Errorf("%s: holiday %q, want %q", tc.day.Format(time.DateOnly), got, tc.name)
		}
	}
}

// TestWeatherConcurrent shares one Weather between goroutines, as the
// models of a site do: every goroutine sees the values a lone caller sees.
func TestWeatherConcurrent(t *testing.T) {
	w := mustWeather(t, 12, WeatherConfig{})
	ref := mustWeather(t, 12, WeatherConfig{})
	start := date(2026, 4, 1)
	const workers, n = 4, 400
	errs := make(chan error, workers)
	for g := range workers {
		go func() {
			for i := range n {
				at := start.Add(time.Duration((i*7+g*13)%n) * 5 * time.Minute)
				if got, want := w.At(at), ref.At(at); !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("goroutine %d at %v: %+v, want %+v", g, at, got, want)
					return
				}
				w.RainMM(at, at.Add(time.Hour))
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
