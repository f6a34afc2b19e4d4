package robot

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

func TestWriteTrackGeoJSON(t *testing.T) {
	rt := exampleRoute(t)
	f, err := os.Open(exampleDir + "track.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fixes, err := ReadTrackCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Track(rt, fixes, TrackerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTrackGeoJSON(&buf, rt, rep); err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Geometry struct {
				Type        string          `json:"type"`
				Coordinates json.RawMessage `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(buf.Bytes(), &fc); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, ft := range fc.Features {
		count[ft.Properties["kind"].(string)]++
	}
	offRoute := 0
	for _, p := range rep.Positions {
		if !p.InCorridor {
			offRoute++
		}
	}
	if fc.Type != "FeatureCollection" || count["route"] != 1 || count["waypoint"] != 10 || count["track"] != 1 || count["off_route"] != offRoute {
		t.Errorf("features %v, want 1 route, 10 waypoints, 1 track, %d off-route fixes", count, offRoute)
	}
	// GeoJSON order is [lon, lat].
	var first [][2]float64
	if err := json.Unmarshal(fc.Features[0].Geometry.Coordinates, &first); err != nil {
		t.Fatal(err)
	}
	if first[0][0] != rt.Waypoints[0].Lon || first[0][1] != rt.Waypoints[0].Lat {
		t.Errorf("first route vertex %v, want [lon, lat] of wp01", first[0])
	}
	if fc.Features[8].Properties["id"] != "wp08" || fc.Features[8].Properties["state"] != "missed" {
		t.Errorf("wp08 feature %v", fc.Features[8].Properties)
	}
}
