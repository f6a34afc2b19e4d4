package live

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/service"
)

// TestBuildFromYAML: the registry builds the service from its section;
// bad sections are refused with the field named.
func TestBuildFromYAML(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"whole campus", "campus: ../../examples/campus/campus.yaml", ""},
		{"one site, two plots, options", `campus: ../../examples/campus/campus.yaml
site: wartberg
plots: [wartberg-02, wartberg-03]
stations: {wartberg-02: weather-station-01}
wet_rh: 92
shoot_cm: 12
budbreak: "04-15"
alarm_level: high
alarm_days: 3
publish_days: 10
debounce: 5s
soil_cell_m: 3
soil_type: light`, ""},
		{"no campus", "site: wartberg", "campus"},
		{"unknown key", "campus: ../../examples/campus/campus.yaml\nwetrh: 90", "wetrh"},
		{"bad budbreak", "campus: ../../examples/campus/campus.yaml\nbudbreak: April", "budbreak"},
		{"bad alarm level", "campus: ../../examples/campus/campus.yaml\nalarm_level: none", "alarm_level"},
		{"bad wet_rh", "campus: ../../examples/campus/campus.yaml\nwet_rh: 120", "wet_rh"},
		{"bad soil type", "campus: ../../examples/campus/campus.yaml\nsoil_type: clay", "soil_type"},
		{"negative debounce", "campus: ../../examples/campus/campus.yaml\ndebounce: -1s", "debounce"},
		{"unknown plot", "campus: ../../examples/campus/campus.yaml\nplots: [nowhere]", "nowhere"},
		{"station not a station", "campus: ../../examples/campus/campus.yaml\nstations: {wartberg-02: soil-probe-01}", "not a weather station"},
		{"missing file", "campus: nowhere.yaml", "nowhere.yaml"},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tc.yaml), &n); err != nil {
			t.Fatal(err)
		}
		s, err := service.Build(Kind, "vineyard", n.Content[0])
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.err)
		case tc.err == "" && s.Name() != "vineyard":
			t.Errorf("%s: name %q", tc.name, s.Name())
		}
	}
	s, err := New("v", Config{Model: loadCampus(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.plots) != 14 || s.plots["wartberg-02"].station != "weather-station-03" || s.plots["wartberg-01"].station != "weather-station-01" || len(s.plots["wartberg-01"].leaf) != 2 {
		t.Errorf("plots: %d; wartberg-02's station %s", len(s.plots), s.plots["wartberg-02"].station)
	}
}
