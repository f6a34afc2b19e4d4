package campus

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/paulmach/orb"

	"github.com/citymesh/citymesh/event"
)

// The reference campus has exactly 35,666 information points, composed as
// docs/campus.md says.
func TestGenerateReference(t *testing.T) {
	files, err := Generate(GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := files.Model()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Points) != ReferencePoints || ReferencePoints != 35666 {
		t.Fatalf("%d points", len(m.Points))
	}
	s := m.Stats()
	want := map[string][2]int{ // group → assets, points (docs/campus.md, "The reference campus")
		"room room":              {3572, 28576},
		"room interior-room":     {894, 6258},
		"meter electricity-main": {24, 120},
		"meter electricity-sub":  {98, 98},
		"meter heat-main":        {24, 24},
		"meter heat-sub":         {98, 98},
		"meter water-main":       {24, 24},
		"meter cooling-main":     {10, 10},
		"meter hot-water":        {2, 2},
		"meter gas-main":         {1, 2},
		"device sensecap-s2120":  {4, 36},
		"device dragino-lse01":   {42, 168},
		"device dragino-llms01":  {28, 84},
		"device dragino-lsph01":  {14, 42},
		"device dragino-lsnpk01": {14, 56},
		"robot":                  {1, 68},
	}
	if len(s.Groups) != len(want) {
		t.Errorf("groups %+v", s.Groups)
	}
	for _, g := range s.Groups {
		if w, ok := want[g.Name]; !ok || w != [2]int{g.Assets, g.Points} {
			t.Errorf("%s: %d assets, %d points; want %v", g.Name, g.Assets, g.Points, w)
		}
	}
	if len(m.Buildings) != 24 || len(m.Rooms) != 4466 || len(m.Meters) != 281 || len(m.Plots) != 14 || len(m.Devices) != 102 ||
		len(m.Gateways) != 27 || len(m.Tenants) != 11 {
		t.Errorf("buildings %d rooms %d meters %d plots %d devices %d gateways %d tenants %d",
			len(m.Buildings), len(m.Rooms), len(m.Meters), len(m.Plots), len(m.Devices), len(m.Gateways), len(m.Tenants))
	}
	// Positions: the campus around 49.148 N, 9.212 E; the Wartberg
	// vineyards around 49.16 N, 9.24 E.
	for _, b := range m.Buildings {
		if d := distanceM(b.Location, orb.Point{9.212, 49.148}); d > 700 {
			t.Errorf("building %s is %.0f m from the campus", b.ID, d)
		}
		if b.Gateway == "" || len(b.Rooms) == 0 {
			t.Errorf("building %s: gateway %q, %d rooms", b.ID, b.Gateway, len(b.Rooms))
		}
	}
	for _, p := range m.Plots {
		if d := distanceM(p.Location, orb.Point{9.24, 49.16}); d > 700 || len(p.Devices) < 7 {
			t.Errorf("plot %s is %.0f m from the Wartberg, %d devices", p.ID, d, len(p.Devices))
		}
	}
	// Every robot check of a room's setpoint names a room; the route is
	// inside the campus.
	r, _ := m.Robot("loomi")
	for _, w := range r.Route.Waypoints {
		for _, c := range w.Checks {
			if c.Kind == "hvac_setpoint" {
				if _, ok := m.Room(c.Asset); !ok {
					t.Errorf("check %s: room %s", c.ID, c.Asset)
				}
			}
		}
	}
	// Both network servers, and the device of the article's example.
	if d, ok := m.Device("soil-probe-07"); !ok || d.Site != "wartberg" || d.Topic(event.EventMeasurement).String() != "vineyard/wartberg/device/soil-probe-07/measurement" {
		t.Errorf("soil-probe-07: %+v", d)
	}
	servers := map[NetworkServer]int{}
	for _, d := range m.Devices {
		a, _ := m.Application(d.Application)
		servers[a.Server]++
	}
	if servers[TheThingsStack] != 74 || servers[ChirpStack] != 28 {
		t.Errorf("devices by server: %v", servers)
	}
	// Every tenant but the growers has rooms; the growers have plots.
	for _, tn := range m.Tenants {
		if tn.ID != "wartberg-growers" && len(tn.Rooms) == 0 {
			t.Errorf("tenant %s has no rooms", tn.ID)
		}
	}
}

// The same options give the same bytes.
func TestGenerateDeterministic(t *testing.T) {
	for _, n := range []int{0, 500} {
		a, err := Generate(GenerateOptions{Points: n})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Generate(GenerateOptions{Points: n})
		if len(a) != 3 {
			t.Errorf("%d files", len(a))
		}
		for name := range a {
			if !bytes.Equal(a[name], b[name]) {
				t.Errorf("points %d: %s differs between two generations", n, name)
			}
		}
	}
}

// Any number of points in range is met exactly.
func TestGenerateSizes(t *testing.T) {
	for _, n := range []int{MinGeneratePoints, 151, 157, 500, 1234, 5000, 20001, 35665, 35667, 100000} {
		files, err := Generate(GenerateOptions{Points: n})
		if err != nil {
			t.Errorf("%d: %v", n, err)
			continue
		}
		m, err := files.Model()
		if err != nil {
			t.Errorf("%d: %v", n, err)
			continue
		}
		if len(m.Points) != n {
			t.Errorf("asked for %d points, got %d", n, len(m.Points))
		}
	}
	for _, n := range []int{-1, MinGeneratePoints - 1, MaxGeneratePoints + 1} {
		if _, err := Generate(GenerateOptions{Points: n}); err == nil {
			t.Errorf("%d points accepted", n)
		}
	}
}

// The checked-in examples are what the generator writes today, and load.
func TestCheckedInExamples(t *testing.T) {
	for dir, n := range map[string]int{"../examples/campus": 0, "../examples/campus/small": SmallPoints} {
		files, err := Generate(GenerateOptions{Points: n})
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatalf("%v (run: go run ./cmd/citymesh campus generate)", err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("%s/%s differs from a fresh generation (run: go run ./cmd/citymesh campus generate)", dir, name)
			}
		}
		m, err := Load(filepath.Join(dir, CampusFile))
		if err != nil {
			t.Fatal(err)
		}
		want := n
		if want == 0 {
			want = ReferencePoints
		}
		if len(m.Points) != want {
			t.Errorf("%s: %d points", dir, len(m.Points))
		}
	}
}
