package live

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/service"
)

func TestConfigFromYAML(t *testing.T) {
	for _, c := range []struct {
		name, yaml, err string
	}{
		{"good", "robots: [{id: loomi, site: campus, route: " + routeFile + "}]\nowners: {b01-escape-route: swhn}\npictures: {max_bytes: 1048576, retention: 720h}", ""},
		{"unknown key", "robots: [{id: loomi, site: campus, route: " + routeFile + "}]\npicture: {}", "unknown key picture"},
		{"no robots", "owners: {}", "at least one robot"},
		{"no route", "robots: [{id: loomi, site: campus}]", "route file is required"},
		{"missing route file", "robots: [{id: loomi, site: campus, route: nowhere.yaml}]", "no such file"},
		{"bad robot id", "robots: [{id: 'lo/omi', site: campus, route: " + routeFile + "}]", "must be ids"},
		{"twice", "robots: [{id: loomi, site: campus, route: " + routeFile + "}, {id: loomi, site: campus, route: " + routeFile + "}]", "listed twice"},
		{"total below one picture", "robots: [{id: loomi, site: campus, route: " + routeFile + "}]\npictures: {max_bytes: 100, max_total_bytes: 10}", "max_total_bytes"},
		{"bad owner", "robots: [{id: loomi, site: campus, route: " + routeFile + "}]\nowners: {b01: 'a b'}", "tenant id"},
		{"a route that is not one", "robots: [{id: loomi, site: campus, route: " + campusFile + "}]", "route"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(c.yaml), &n); err != nil {
				t.Fatal(err)
			}
			s, err := service.Build(Kind, "robot", n.Content[0])
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				rs := s.(*Service)
				if rs.cfg.Pictures.MaxBytes != 1<<20 || rs.cfg.Pictures.MaxTotalBytes != DefaultMaxTotalBytes || rs.cfg.routes["loomi"] == nil {
					t.Errorf("config %+v", rs.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %v, want one with %q", err, c.err)
			}
		})
	}
}

// TestConfigModel: the demo configuration over the reference campus takes
// the robot's route from the campus and completes the owners: a checked
// asset the campus knows belongs to its tenant, one it does not know to
// the robot's tenant, the robot to its own; an owner listed wins; a robot
// the campus does not have still needs its route file.
func TestConfigModel(t *testing.T) {
	m, err := campus.Load(campusFile)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := service.DemoConfig(Kind, m)
	if !ok {
		t.Fatal("no demo configuration registered")
	}
	c := v.(Config)
	c.Owners = map[string]string{"b02-escape-route": "library"}
	s, err := service.BuildFrom(Kind, "robot", c)
	if err != nil {
		t.Fatal(err)
	}
	got := s.(*Service).cfg
	if got.routes["loomi"] != m.Robots[0].Route {
		t.Error("the route is not the campus's")
	}
	for asset, want := range map[string]string{
		"loomi":            "campus-service",  // the robot's tenant
		"b02-0.01":         "tech-university", // a room of the campus
		"b01-escape-route": "campus-service",  // unknown to the campus: the robot's
		"b02-escape-route": "library",         // listed
		"b14-0.01":         "startup-centre",  // another room
	} {
		if got.Owners[asset] != want {
			t.Errorf("owner of %s: %q, want %q", asset, got.Owners[asset], want)
		}
	}
	if len(c.Owners) != 1 {
		t.Errorf("the given owners were modified: %v", c.Owners)
	}
	c = Config{Model: m, Robots: []RobotConfig{{ID: "rover", Site: "campus"}}}
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "route file is required") {
		t.Errorf("a robot the campus lacks, without a route: %v", err)
	}
}

// TestFiltersDisjoint: no topic matches two of the service's
// subscriptions, which share one bus client (bus.Bus: overlapping filters
// on one client may deliver once).
func TestFiltersDisjoint(t *testing.T) {
	c := testConfig(t)
	c.TenantCommands = true
	s, err := New("robot", c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	types := make([]string, len(anomalyKinds))
	for i, k := range anomalyKinds {
		types[i] = alarmType(k)
	}
	fs := s.filters(types)
	if len(fs) != 5+len(types)+1 {
		t.Fatalf("filters %v", fs)
	}
	for i, a := range fs {
		for _, b := range fs[i+1:] {
			if filtersOverlap(a, b) {
				t.Errorf("%s and %s overlap", a, b)
			}
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"robot/+/incident/+/+", "robot/campus/incident/x/ack", true},
		{"robot/+/robot/+/check", "robot/+/incident/+/+", false},
		{"a/#", "a/b/c", true},
		{"+/x", "$tenant/x", false},
		{"a/+", "a/b/c", false},
	} {
		if got := filtersOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("filtersOverlap(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}

// filtersOverlap reports whether some topic matches both MQTT filters
// (MQTT 5.0 §4.7; a wildcard first level matches no topic starting with
// '$', [MQTT-4.7.2-1]).
func filtersOverlap(a, b string) bool {
	la, lb := strings.Split(a, "/"), strings.Split(b, "/")
	if (la[0] == "+" || la[0] == "#") && strings.HasPrefix(lb[0], "$") || (lb[0] == "+" || lb[0] == "#") && strings.HasPrefix(la[0], "$") {
		return false
	}
	for i := 0; ; i++ {
		switch {
		case i < len(la) && la[i] == "#", i < len(lb) && lb[i] == "#":
			return true
		case i == len(la) || i == len(lb):
			return len(la) == len(lb)
		case la[i] != "+" && lb[i] != "+" && la[i] != lb[i]:
			return false
		}
	}
}
