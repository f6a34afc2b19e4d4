package live

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

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
