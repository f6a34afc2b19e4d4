package live_test

import (
	"net/http"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/service"
)

// TestBuildFromConfig: the service builds from its YAML section through the
// registry (kind "energy"), and refuses bad sections with the reason.
func TestBuildFromConfig(t *testing.T) {
	build := func(src string) (service.Service, error) {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(src), &n); err != nil {
			t.Fatal(err)
		}
		return service.Build(live.Kind, "energy", n.Content[0])
	}
	s, err := build("campus: ../../examples/campus/campus.yaml\ntariff: campus-tariff.yaml\ndebounce: 2s\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "energy" {
		t.Errorf("name %q", s.Name())
	}
	if _, ok := s.(interface{ HTTPHandler() http.Handler }); !ok {
		t.Error("the service has no HTTPHandler() http.Handler to mount")
	}
	for src, want := range map[string]string{
		"tariff: campus-tariff.yaml":                                                                        "one of campus and site",
		"campus: a.yaml\nsite: b.yaml\ntariff: campus-tariff.yaml":                                          "one of campus and site",
		"site: ../../examples/models/energy/site.yaml\ntariff: campus-tariff.yaml":                          "site_id is required",
		"campus: ../../examples/campus/campus.yaml":                                                         "tariff is required",
		"campus: ../../examples/campus/campus.yaml\ntariff: campus-tariff.yaml\ndebounce: -1s":              "must not be negative",
		"campus: ../../examples/campus/campus.yaml\ntariff: campus-tariff.yaml\nanomalies: {train_days: 3}": "at least 8",
		"campus: ../../examples/campus/campus.yaml\ntariff: ../../examples/models/energy/tariff.yaml":       "heating split",
		"campus: ../../examples/campus/campus.yaml\ntariff: nowhere.yaml":                                   "nowhere.yaml",
		"campus: ../../examples/campus/campus.yaml\ntariff: campus-tariff.yaml\nbogus: 1":                   "bogus",
	} {
		if _, err := build(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", src, err, want)
		}
	}
}
