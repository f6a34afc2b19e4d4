package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const robotExamples = "../../examples/models/robot/"

func TestRouteModelExample(t *testing.T) {
	var out bytes.Buffer
	err := runRouteModel(context.Background(), []string{"-route", robotExamples + "route.yaml", "-track", robotExamples + "track.csv"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Model     string `json:"model"`
		Fixes     int    `json:"fixes"`
		Reached   int    `json:"reached"`
		Missed    int    `json:"missed"`
		Positions []struct {
			DeviationM float64 `json:"deviation_m"`
		} `json:"positions"`
		OffRoute  []json.RawMessage `json:"off_route"`
		Waypoints []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"waypoints"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Model != "route" || got.Fixes != 115 || got.Reached != 9 || got.Missed != 1 || len(got.Positions) != 115 || len(got.OffRoute) != 2 {
		t.Errorf("output: model %s fixes %d reached %d missed %d positions %d off-route %d", got.Model, got.Fixes, got.Reached, got.Missed, len(got.Positions), len(got.OffRoute))
	}
	if got.Waypoints[7].ID != "wp08" || got.Waypoints[7].State != "missed" {
		t.Errorf("wp08: %+v", got.Waypoints[7])
	}
	// -positions=false leaves the per-fix list out; -o writes a file.
	path := filepath.Join(t.TempDir(), "route.json")
	geo := filepath.Join(t.TempDir(), "route.geojson")
	out.Reset()
	if err := runRouteModel(context.Background(), []string{"-route", robotExamples + "route.yaml", "-track", robotExamples + "track.csv", "-positions=false", "-o", path, "-geojson", geo}, &out); err != nil {
		t.Fatal(err)
	}
	if g, err := os.ReadFile(geo); err != nil || !strings.Contains(string(g), `"FeatureCollection"`) || !strings.Contains(string(g), `"off_route"`) {
		t.Errorf("-geojson: %v %.200s", err, g)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 || strings.Contains(string(data), `"positions"`) || !strings.Contains(string(data), `"missed": 1`) {
		t.Errorf("-o with -positions=false: stdout %d bytes, file %.200s", out.Len(), data)
	}
}

func TestIncidentsModelExample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "incidents.json")
	err := runModel(context.Background(), []string{"incidents", "-route", robotExamples + "route.yaml", "-checks", robotExamples + "checks.csv",
		"-events", robotExamples + "events.csv", "-o", path})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Checks    int            `json:"checks"`
		Passed    int            `json:"passed"`
		Outcomes  map[string]int `json:"outcomes"`
		Incidents []struct {
			ID    string `json:"id"`
			Asset string `json:"asset"`
			State string `json:"state"`
			Audit []struct {
				Actor, Action, From, To string
			} `json:"audit"`
		} `json:"incidents"`
		ResponseTimes struct {
			Incidents         int `json:"incidents"`
			TimeToAcknowledge struct {
				N     int     `json:"n"`
				MeanS float64 `json:"mean_s"`
			} `json:"time_to_acknowledge"`
		} `json:"response_times"`
		ByKind []json.RawMessage `json:"response_times_by_kind"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Checks != 27 || got.Passed != 19 || got.Outcomes["opened"] != 6 || got.Outcomes["reopened"] != 1 || len(got.Incidents) != 6 || len(got.ByKind) != 5 {
		t.Errorf("checks %d passed %d outcomes %v incidents %d kinds %d", got.Checks, got.Passed, got.Outcomes, len(got.Incidents), len(got.ByKind))
	}
	// Escape corridor (opened 22:07, acknowledged 22:09), lecture hall
	// (22:05:30 → 22:20) and north bollard (22:08:30 → 22:25).
	if tta := got.ResponseTimes.TimeToAcknowledge; tta.N != 3 || tta.MeanS != (120+870+990)/3.0 {
		t.Errorf("time to acknowledge %+v", tta)
	}
	for _, inc := range got.Incidents {
		if inc.Asset == "bollard-north-gate" {
			acts := []string{}
			for _, a := range inc.Audit {
				acts = append(acts, a.Actor+":"+a.Action)
			}
			if strings.Join(acts, " ") != "robot:open night-desk:acknowledge security-1:start security-1:resolve robot:reopen" {
				t.Errorf("bollard audit %v", acts)
			}
		}
	}
}

func TestRobotModelsBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	route := robotExamples + "route.yaml"
	badRoute := write("bad.yaml", "id: r\nwaypoints:\n  - {id: a, lat: 1, lon: 1}\n  - {id: b, lat: 100, lon: 2}\n")
	badTrack := write("bad.csv", "time,lat,lon\n2026-03-02T22:00:00Z,49.148,east\n")
	badChecks := write("checks.csv", "time,check,value\n2026-03-02T22:00:00+01:00,b112-hvac,warm\n")
	badEvents := write("events.csv", "time,asset,kind,action,actor\n2026-03-01T22:00:00+01:00,room-b1.12-hvac,setpoint_out_of_range,resolve,x\n")
	cases := []struct {
		run  func(context.Context, []string, *bytes.Buffer) error
		args []string
		want string
	}{
		{routeRun, []string{"-track", badTrack}, "-route FILE.yaml and -track FILE.csv are required"},
		{routeRun, []string{"-route", route, "-track", filepath.Join(dir, "missing.csv")}, "no such file"},
		{routeRun, []string{"-route", badRoute, "-track", badTrack}, "bad.yaml: route file (line 4)"},
		{routeRun, []string{"-route", route, "-track", badTrack}, "bad.csv: track: line 2: column lon"},
		{routeRun, []string{"-route", route, "-track", badTrack, "-corridor-m", "-1"}, "must not be negative"},
		{routeRun, []string{"-route", route, "-track", badTrack, "extra"}, "unexpected argument"},
		{incidentsRun, []string{"-route", route}, "-checks FILE.csv are required"},
		{incidentsRun, []string{"-route", route, "-checks", robotExamples + "checks.csv", "extra"}, "model incidents: unexpected argument \"extra\""},
		{incidentsRun, []string{"-no-such-flag"}, "model incidents: flag provided but not defined"},
		{incidentsRun, []string{"-route", route, "-checks", badChecks}, "line 2: check \"b112-hvac\": value \"warm\""},
		{incidentsRun, []string{"-route", route, "-checks", robotExamples + "checks.csv", "-events", badEvents}, "events: line 2: no incident for asset"},
		{incidentsRun, []string{"-route", route, "-checks", robotExamples + "checks.csv", "-reopen-window", "-1h"}, "must not be negative"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := c.run(context.Background(), c.args, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	// -h prints the usage and is not an error.
	for _, run := range []func(context.Context, []string, *bytes.Buffer) error{routeRun, incidentsRun} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"-h"}, &out); err != nil || !strings.Contains(out.String(), "-route") {
			t.Errorf("-h: error %v, usage %q", err, out.String())
		}
	}
}

func routeRun(ctx context.Context, args []string, out *bytes.Buffer) error {
	return runRouteModel(ctx, args, out)
}

func incidentsRun(ctx context.Context, args []string, out *bytes.Buffer) error {
	return runIncidentsModel(ctx, args, out)
}
