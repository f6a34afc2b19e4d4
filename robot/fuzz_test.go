package robot

import (
	"bytes"
	"math"
	"os"
	"testing"
	"time"
)

// Seeds beyond the files in testdata/fuzz/FuzzXxx.
func addFileSeed(f *testing.F, path string) {
	if data, err := os.ReadFile(path); err == nil {
		f.Add(data)
	}
}

func FuzzReadRoute(f *testing.F) {
	addFileSeed(f, exampleDir+"route.yaml")
	f.Add([]byte(minimalRoute))
	f.Fuzz(func(t *testing.T, data []byte) {
		rt, err := ReadRoute(bytes.NewReader(data))
		if err != nil {
			if rt != nil {
				t.Fatal("route returned with an error")
			}
			return
		}
		if len(rt.Waypoints) < 2 || rt.CorridorM <= 0 || rt.ArrivalM <= 0 {
			t.Fatalf("accepted an invalid route: %d waypoints, corridor %v, arrival %v", len(rt.Waypoints), rt.CorridorM, rt.ArrivalM)
		}
		for _, w := range rt.Waypoints {
			if !validPoint(w.Lat, w.Lon) {
				t.Fatalf("accepted waypoint %q at (%v, %v)", w.ID, w.Lat, w.Lon)
			}
			for _, c := range w.Checks {
				if _, _, ok := rt.CheckByID(c.ID); !ok {
					t.Fatalf("check %q not found by id", c.ID)
				}
				if c.Kind != CheckEscapeRoute {
					if _, ok := rt.Schedules[c.Schedule]; !ok {
						t.Fatalf("check %q refers to missing schedule %q", c.ID, c.Schedule)
					}
				}
			}
		}
		tr, err := NewTracker(rt, TrackerConfig{})
		if err != nil {
			t.Fatalf("valid route refused by the tracker: %v", err)
		}
		w := rt.Waypoints[0]
		if _, err := tr.Update(Fix{Lat: w.Lat, Lon: w.Lon}); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzReadTrackCSV(f *testing.F) {
	addFileSeed(f, exampleDir+"track.csv")
	f.Add([]byte("time,lat,lon\n2026-03-02T22:00:00Z,49.148,9.216\n"))
	rt := exampleRouteForFuzz(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fixes, err := ReadTrackCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i, x := range fixes {
			if !validPoint(x.Lat, x.Lon) || (i > 0 && x.Time.Before(fixes[i-1].Time)) {
				t.Fatalf("accepted fix %d %+v", i, x)
			}
		}
		rep, err := Track(rt, fixes, TrackerConfig{})
		if err != nil {
			t.Fatalf("accepted fixes refused by the tracker: %v", err)
		}
		for _, p := range rep.Positions {
			if p.Progress < 0 || p.Progress > 1+1e-9 || math.IsNaN(p.DeviationM) || p.InCorridor != (math.Abs(p.DeviationM) <= rep.CorridorM) {
				t.Fatalf("position %+v", p)
			}
		}
		if rep.Reached+rep.Missed+rep.Pending != len(rt.Waypoints) {
			t.Fatalf("waypoint outcomes %d+%d+%d != %d", rep.Reached, rep.Missed, rep.Pending, len(rt.Waypoints))
		}
	})
}

func exampleRouteForFuzz(f *testing.F) *Route {
	data, err := os.ReadFile(exampleDir + "route.yaml")
	if err != nil {
		f.Fatal(err)
	}
	rt, err := ReadRoute(bytes.NewReader(data))
	if err != nil {
		f.Fatal(err)
	}
	return rt
}

func FuzzReadChecksCSV(f *testing.F) {
	addFileSeed(f, exampleDir+"checks.csv")
	rt := exampleRouteForFuzz(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		obs, err := ReadChecksCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 1; i < len(obs); i++ {
			if obs[i].Time.Before(obs[i-1].Time) {
				t.Fatal("accepted observations out of time order")
			}
		}
		rep, err := RunIncidents(rt, obs, nil, BookConfig{ReopenWindow: time.Hour})
		if err != nil {
			return // unknown checks or bad values are errors, not panics
		}
		if rep.Passed+len(rep.Anomalies) != rep.Checks {
			t.Fatalf("passed %d + anomalies %d != checks %d", rep.Passed, len(rep.Anomalies), rep.Checks)
		}
		checkBookInvariants(t, rep.Incidents)
	})
}

func FuzzReadEventsCSV(f *testing.F) {
	addFileSeed(f, exampleDir+"events.csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := ReadEventsCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, e := range events {
			if _, ok := actionTarget(e.Action); !ok || e.Actor == "" || (e.Incident == "" && (e.Asset == "" || e.Kind == "")) {
				t.Fatalf("accepted event %+v", e)
			}
		}
	})
}

// checkBookInvariants: at most one open incident per (asset, kind); every
// incident's audit trail starts with open, chains from → to, ends in the
// current state, never goes back in time, and its open/repeat/reopen
// entries add up to the count.
func checkBookInvariants(t *testing.T, incs []Incident) {
	t.Helper()
	open := map[incidentKey]string{}
	for _, inc := range incs {
		if inc.State.Open() {
			k := incidentKey{inc.Asset, inc.Kind}
			if other, dup := open[k]; dup {
				t.Fatalf("two open incidents %s and %s for %v", other, inc.ID, k)
			}
			open[k] = inc.ID
		}
		if len(inc.Audit) == 0 || inc.Audit[0].Action != ActionOpen || inc.Audit[0].To != StateNew || inc.Audit[0].From != "" {
			t.Fatalf("%s: audit does not start with open: %+v", inc.ID, inc.Audit)
		}
		sightings := 0
		for i, e := range inc.Audit {
			if e.Actor == "" {
				t.Fatalf("%s: audit entry %d has no actor", inc.ID, i)
			}
			switch e.Action {
			case ActionOpen, ActionRepeat, ActionReopen:
				if e.Action != ActionReopen || e.Actor == "robot" {
					sightings++
				}
			}
			if i == 0 {
				continue
			}
			prev := inc.Audit[i-1]
			if e.From != prev.To {
				t.Fatalf("%s: audit entry %d from %s, previous entry ended in %s", inc.ID, i, e.From, prev.To)
			}
			if e.Time.Before(prev.Time) {
				t.Fatalf("%s: audit entry %d goes back in time", inc.ID, i)
			}
			if e.Action == ActionRepeat {
				if e.From != e.To || !e.From.Open() {
					t.Fatalf("%s: repeat entry %+v", inc.ID, e)
				}
			} else if !CanTransition(e.From, e.To) {
				t.Fatalf("%s: audit entry %d records an illegal move %s → %s", inc.ID, i, e.From, e.To)
			}
		}
		if last := inc.Audit[len(inc.Audit)-1]; last.To != inc.State {
			t.Fatalf("%s: state %s but audit ends in %s", inc.ID, inc.State, last.To)
		}
		if sightings != inc.Count {
			t.Fatalf("%s: count %d but %d sightings in the audit", inc.ID, inc.Count, sightings)
		}
		if (inc.State == StateResolved || inc.State == StateClosed) != !inc.ResolvedAt.IsZero() && inc.State != StateCancelled {
			t.Fatalf("%s: state %s with resolved_at %s", inc.ID, inc.State, inc.ResolvedAt)
		}
	}
}

// FuzzIncidentBook drives a book with a random sequence of anomalies and
// people's transitions (valid or not) and checks the invariants after
// every step.
func FuzzIncidentBook(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0, 0, 16, 33, 50, 0, 0, 67, 84, 0, 200, 0})
	f.Add(bytes.Repeat([]byte{3, 130, 7, 250, 12}, 20))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 2000 {
			ops = ops[:2000]
		}
		b := NewBook(BookConfig{ReopenWindow: 30 * time.Minute, MaxPictures: 3})
		now := mustTime(t, "2026-03-02T22:00:00Z")
		assets := []string{"door", "bollard", "lamp"}
		kinds := []AnomalyKind{AnomalyEscapeRouteBlocked, AnomalyCheckFailed}
		sevs := []Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			now = now.Add(time.Duration(op%8) * 4 * time.Minute)
			if op%2 == 0 {
				a := Anomaly{Time: now, Asset: assets[int(arg)%len(assets)], Kind: kinds[int(arg>>2)%len(kinds)],
					Severity: sevs[int(arg>>3)%len(sevs)], Waypoint: "wp", Picture: string(rune('a' + arg%5))}
				if _, _, err := b.Record(a); err != nil {
					t.Fatalf("record %+v: %v", a, err)
				}
			} else if n := len(b.incidents); n > 0 {
				inc := b.incidents[int(arg)%n]
				to := States[int(arg>>4)%len(States)]
				before := copyIncident(inc)
				err := b.Transition(inc.ID, to, now, "person", "")
				allowed := CanTransition(before.State, to)
				if before.State == StateResolved && to == StateInProgress && b.latest[incidentKey{inc.Asset, inc.Kind}] != inc {
					allowed = false // only the latest incident of an asset and kind reopens
				}
				if (err == nil) != allowed {
					t.Fatalf("%s %s → %s: error %v", inc.ID, before.State, to, err)
				}
				if err != nil && (inc.State != before.State || len(inc.Audit) != len(before.Audit)) {
					t.Fatalf("refused move changed %s", inc.ID)
				}
			}
			checkBookInvariants(t, b.Incidents())
		}
	})
}
