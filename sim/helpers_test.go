package sim

import (
	"testing"
	"time"

	"github.com/citymesh/citymesh/vineyard"
)

// campusSite is the Bildungscampus, wartberg a vineyard above Heilbronn.
var (
	campusSite   = Site{Name: "campus", Lat: 49.1484, Lon: 9.2165, AltitudeM: 160}
	wartbergSite = Site{Name: "wartberg", Lat: 49.1605, Lon: 9.2400, AltitudeM: 250}
)

func mustWeather(t testing.TB, seed uint64, cfg WeatherConfig) *Weather {
	t.Helper()
	if cfg.Site.Name == "" {
		cfg.Site = campusSite
	}
	w, err := NewWeather(seed, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// vineyardHours turns the simulated weather into the hourly records a
// vineyard weather station would send: hourly means of six samples of
// temperature, humidity and leaf wetness, and the hour's rain. Hours for
// which keep returns false are left out.
func vineyardHours(w *Weather, from, to time.Time, keep func(time.Time) bool) vineyard.Weather {
	var vw vineyard.Weather
	for t := from; t.Before(to); t = t.Add(time.Hour) {
		if keep != nil && !keep(t) {
			continue
		}
		var ts, rh, lw float64
		for k := range 6 {
			c := w.At(t.Add(time.Duration(k)*10*time.Minute + 5*time.Minute))
			ts += c.TempC
			rh += c.RHPct
			lw += c.LeafWet
		}
		vw.Hours = append(vw.Hours, vineyard.Hour{Time: t, TempC: ts / 6, RHPct: rh / 6,
			RainMM: w.RainMM(t, t.Add(time.Hour)), LeafWet: lw / 6, HasLeafWet: true})
	}
	return vw
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, Berlin) }
