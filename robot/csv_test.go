package robot

import (
	"os"
	"strings"
	"testing"
)

func TestReadTrackCSV(t *testing.T) {
	in := "\ufefftime,lat,lon,accuracy_m\n# a comment\n2026-03-02T22:00:00+01:00,49.148,9.216,1.5\n\n2026-03-02T22:00:05.5+01:00, 49.1481 ,9.2161,2\n"
	fixes, err := ReadTrackCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(fixes) != 2 || fixes[1].Lat != 49.1481 || fixes[1].Time.Sub(fixes[0].Time).Seconds() != 5.5 {
		t.Errorf("fixes %+v", fixes)
	}
}

func TestReadCSVBadInput(t *testing.T) {
	type reader func(string) error
	track := func(s string) error { _, err := ReadTrackCSV(strings.NewReader(s)); return err }
	checks := func(s string) error { _, err := ReadChecksCSV(strings.NewReader(s)); return err }
	events := func(s string) error { _, err := ReadEventsCSV(strings.NewReader(s)); return err }
	cases := []struct {
		name string
		read reader
		in   string
		want string
	}{
		{"track empty", track, "", "empty file"},
		{"track no lon", track, "time,lat\n", "no \"lon\" column"},
		{"track duplicate column", track, "time,lat,lon,lat\n", "appears twice"},
		{"track bad time", track, "time,lat,lon\nyesterday,1,2\n", "line 2: column time: \"yesterday\""},
		{"track bad lat", track, "time,lat,lon\n2026-03-02T22:00:00Z,north,2\n", "line 2: column lat"},
		{"track lat range", track, "time,lat,lon\n2026-03-02T22:00:00Z,91,2\n", "outside −90..90"},
		{"track lon range", track, "time,lat,lon\n2026-03-02T22:00:00Z,1,181\n", "outside −180..180"},
		{"track NaN", track, "time,lat,lon\n2026-03-02T22:00:00Z,NaN,2\n", "not a number"},
		{"track backwards", track, "time,lat,lon\n2026-03-02T22:00:05Z,1,2\n2026-03-02T22:00:00Z,1,2\n", "line 3: column time"},
		{"track short row", track, "time,lat,lon\n2026-03-02T22:00:00Z,1\n", "column lon"},
		{"track bad quote", track, "time,lat,lon\n\"2026,1,2\n", "track"},
		{"checks no value", checks, "time,check\n", "no \"value\" column"},
		{"checks empty check", checks, "time,check,value\n2026-03-02T22:00:00Z,,on\n", "line 2: column check: empty"},
		{"checks picture with space", checks, "time,check,value,picture\n2026-03-02T22:00:00Z,c,on,my picture.jpg\n", "not a URI or hash"},
		{"checks backwards", checks, "time,check,value\n2026-03-02T22:00:05Z,c,on\n2026-03-02T22:00:00Z,c,on\n", "line 3"},
		{"events no actor column", events, "time,action\n", "no \"actor\" column"},
		{"events empty actor", events, "time,incident,action,actor\n2026-03-02T22:00:00Z,INC-0001,resolve,\n", "column actor: empty"},
		{"events bad action", events, "time,incident,action,actor\n2026-03-02T22:00:00Z,INC-0001,escalate,bob\n", "column action: \"escalate\""},
		{"events no target", events, "time,asset,action,actor\n2026-03-02T22:00:00Z,door,resolve,bob\n", "name the incident, or the asset and kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.read(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// The example files run end to end: checks → anomalies → incidents, with
// the people's events (examples/models/robot/).
func TestRunIncidentsExample(t *testing.T) {
	rt := exampleRoute(t)
	open := func(name string) *os.File {
		f, err := os.Open(exampleDir + name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	obs, err := ReadChecksCSV(open("checks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	events, err := ReadEventsCSV(open("events.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunIncidents(rt, obs, events, BookConfig{ReopenWindow: 7 * 24 * 3600e9})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checks != 27 || rep.Passed != 19 || len(rep.Anomalies) != 8 {
		t.Errorf("checks %d passed %d anomalies %d, want 27 19 8", rep.Checks, rep.Passed, len(rep.Anomalies))
	}
	if rep.Outcomes[Opened] != 6 || rep.Outcomes[Updated] != 1 || rep.Outcomes[Reopened] != 1 {
		t.Errorf("outcomes %v, want 6 opened, 1 updated, 1 reopened", rep.Outcomes)
	}
	want := map[string]struct {
		state State
		count int
	}{
		"building-a-foyer-lighting/lighting_wrong_state":  {StateNew, 1},
		"room-b1.12-hvac/setpoint_out_of_range":           {StateClosed, 1},
		"building-c-escape-corridor/escape_route_blocked": {StateResolved, 2},
		"bollard-north-gate/bollard_wrong_state":          {StateInProgress, 2}, // resolved, then down again: reopened
		"carpark-footpath-lighting/check_failed":          {StateCancelled, 1},
		"carpark-footpath-lighting/lighting_wrong_state":  {StateNew, 1},
	}
	if len(rep.Incidents) != len(want) {
		t.Fatalf("%d incidents, want %d", len(rep.Incidents), len(want))
	}
	for _, inc := range rep.Incidents {
		w, ok := want[inc.Asset+"/"+string(inc.Kind)]
		if !ok || inc.State != w.state || inc.Count != w.count {
			t.Errorf("%s %s/%s: %s ×%d, want %s ×%d", inc.ID, inc.Asset, inc.Kind, inc.State, inc.Count, w.state, w.count)
		}
	}
	// Escape corridor: opened 22:07, acknowledged 22:09 (120 s), resolved
	// 4 March 09:00.
	for _, k := range rep.ByKind {
		if k.Kind == AnomalyEscapeRouteBlocked && (k.TimeToAcknowledge.MeanS != 120 || k.TimeToResolve.MeanS != (34*3600+53*60)) {
			t.Errorf("escape route response times %+v", k)
		}
	}
	// An event for an incident that does not exist yet is an error naming
	// its line.
	bad := []Event{{Time: obs[0].Time, Asset: "nope", Kind: AnomalyCheckFailed, Action: "acknowledge", Actor: "x", Line: 9}}
	if _, err := RunIncidents(rt, obs, bad, BookConfig{}); err == nil || !strings.Contains(err.Error(), "events: line 9") {
		t.Errorf("bad event: %v", err)
	}
}
