package robot

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// benchRoute is a 200-waypoint zigzag route on the campus, 15 m between
// waypoints, with two checks per waypoint.
func benchRoute(b *testing.B) *Route {
	rt := &Route{ID: "bench", CorridorM: 5, ArrivalM: 3, Schedules: map[string]Schedule{
		"hvac":    {Default: Expect{Min: 16, Max: 18, HasRange: true}, Slots: []Slot{{Days: AllDays, From: 7 * 60, To: 20 * 60, Expect: Expect{Min: 20, Max: 22, HasRange: true}}}},
		"light":   {Default: Expect{State: "off"}, Slots: []Slot{{Days: AllDays, From: 17 * 60, To: 7 * 60, Expect: Expect{State: "on"}}}},
		"bollard": {Default: Expect{State: "up"}},
	}}
	kinds := []Check{{Kind: CheckHVACSetpoint, Schedule: "hvac"}, {Kind: CheckLighting, Schedule: "light"}, {Kind: CheckBollard, Schedule: "bollard"}, {Kind: CheckEscapeRoute}}
	for i := 0; i < 200; i++ {
		east := float64(i%20) * 15
		if (i/20)%2 == 1 {
			east = float64(19-i%20) * 15
		}
		p := offset(49.148, 9.216, east, float64(i/20)*15)
		w := Waypoint{ID: fmt.Sprintf("w%03d", i), Lat: p.Lat, Lon: p.Lon}
		for j := 0; j < 2; j++ {
			c := kinds[(i+j)%len(kinds)]
			c.ID = fmt.Sprintf("w%03d-%d", i, j)
			c.Asset = c.ID
			w.Checks = append(w.Checks, c)
		}
		rt.Waypoints = append(rt.Waypoints, w)
	}
	if err := rt.Validate(); err != nil {
		b.Fatal(err)
	}
	return rt
}

// benchTrack walks the route at 1.2 m/s with a fix a second and GPS noise
// of 1 m.
func benchTrack(rt *Route, n int) []Fix {
	rng := rand.New(rand.NewSource(1))
	t0 := time.Date(2026, 3, 2, 22, 0, 0, 0, time.UTC)
	var fixes []Fix
	for len(fixes) < n {
		for s := 0; s+1 < len(rt.Waypoints) && len(fixes) < n; s++ {
			a, b := rt.Waypoints[s], rt.Waypoints[s+1]
			for k := 0; k < 12; k++ { // 15 m at 1.25 m per fix
				f := float64(k) / 12
				lat := a.Lat + (b.Lat-a.Lat)*f + rng.NormFloat64()*1/111195
				lon := a.Lon + (b.Lon-a.Lon)*f + rng.NormFloat64()*1/72700
				fixes = append(fixes, Fix{Time: t0.Add(time.Duration(len(fixes)) * time.Second), Lat: lat, Lon: lon})
			}
		}
	}
	return fixes[:n]
}

// BenchmarkTrackerUpdate: one position update against a 200-waypoint route.
func BenchmarkTrackerUpdate(b *testing.B) {
	rt := benchRoute(b)
	fixes := benchTrack(rt, 199*12)
	tr, err := NewTracker(rt, TrackerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(fixes)
		if k == 0 {
			tr.Reset()
		}
		f := fixes[k]
		f.Time = f.Time.Add(time.Duration(i) * time.Second) // keep time moving forward
		if _, err := tr.Update(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrack1M: 1,000,000 position updates against a 200-waypoint
// route (about 419 patrols of the route), as one operation.
func BenchmarkTrack1M(b *testing.B) {
	rt := benchRoute(b)
	fixes := benchTrack(rt, 199*12)
	const n = 1_000_000
	tr, err := NewTracker(rt, TrackerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	t0 := fixes[0].Time
	for i := 0; i < b.N; i++ {
		tr.Reset()
		for j := 0; j < n; j++ {
			k := j % len(fixes)
			if k == 0 {
				tr.Reset()
			}
			f := fixes[k]
			f.Time = t0.Add(time.Duration(j) * time.Second)
			if _, err := tr.Update(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/update")
}

// BenchmarkPatrolDay: a day of hourly patrols of the 200-waypoint route,
// two checks per waypoint (24 × 400 = 9,600 check results, about 1 in 10 an
// anomaly), evaluated and run through a new incident book, with people
// resolving half of the anomalies 40 minutes after they are seen.
func BenchmarkPatrolDay(b *testing.B) {
	rt := benchRoute(b)
	rng := rand.New(rand.NewSource(2))
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var obs []Observation
	var events []Event
	for h := 0; h < 24; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		for _, w := range rt.Waypoints {
			for _, c := range w.Checks {
				at = at.Add(time.Second)
				exp := rt.Schedules[c.Schedule].At(at, nil)
				bad := rng.Intn(10) == 0
				var v string
				switch c.Kind {
				case CheckHVACSetpoint:
					v = fmt.Sprint(exp.Min + 1)
					if bad {
						v = fmt.Sprint(exp.Max + 2)
					}
				case CheckLighting, CheckBollard:
					v = exp.State
					if bad {
						v = map[string]string{"on": "off", "off": "on", "up": "down", "down": "up"}[v]
					}
				case CheckEscapeRoute:
					v = "clear"
					if bad {
						v = "blocked"
					}
				}
				obs = append(obs, Observation{Time: at, Check: c.ID, Value: v, Picture: "sha256:" + c.ID})
				if bad && rng.Intn(2) == 0 {
					// Resolving is legal from every open state, and the
					// next sighting of this check is an hour later.
					events = append(events, Event{Time: at.Add(40 * time.Minute), Asset: c.Asset, Kind: kindFor(c.Kind), Action: ActionResolve, Actor: "team"})
				}
			}
		}
	}
	rep, err := RunIncidents(rt, obs, events, BookConfig{ReopenWindow: 6 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rep, err = RunIncidents(rt, obs, events, BookConfig{ReopenWindow: 6 * time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(obs)), "ns/check")
	if len(rep.Anomalies) == 0 || rep.ResponseTimes.TimeToResolve.N == 0 || rep.Outcomes[Reopened] == 0 {
		b.Fatalf("benchmark day without anomalies, resolutions or reopens: %v", rep.Outcomes)
	}
}

func kindFor(k CheckKind) AnomalyKind {
	switch k {
	case CheckHVACSetpoint:
		return AnomalySetpointOutOfRange
	case CheckBollard:
		return AnomalyBollardWrongState
	case CheckEscapeRoute:
		return AnomalyEscapeRouteBlocked
	}
	return AnomalyLightingWrongState
}

// BenchmarkWriteTrackGeoJSON: the GeoJSON export of one patrol of the
// 200-waypoint route (2,388 fixes, every 20th pushed 8 m off the route).
func BenchmarkWriteTrackGeoJSON(b *testing.B) {
	rt := benchRoute(b)
	fixes := benchTrack(rt, 199*12)
	for i := 0; i < len(fixes); i += 20 {
		fixes[i].Lat += 8.0 / 111195
	}
	rep, err := Track(rt, fixes, TrackerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTrackGeoJSON(&buf, rt, rep); err != nil {
		b.Fatal(err)
	}
	size := buf.Len()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := WriteTrackGeoJSON(&buf, rt, rep); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(fixes)), "ns/fix")
}
