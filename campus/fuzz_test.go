package campus

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/citymesh/citymesh/event"
)

// FuzzParse feeds campus files to Parse, with the minimal campus's
// geometry and route files beside them. Parse never panics; it returns a
// model or campus.Errors, never both; and a model it returns keeps its
// promises: every point has a valid, unique id, an existing asset, a known
// quantity and a unit that fits it, a position in range, and is found by
// the indexes.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/minimal/*.yaml")
	seeds = append(seeds, "testdata/small/campus.yaml")
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	geo, _ := os.ReadFile("testdata/minimal/geometry.geojson")
	route, _ := os.ReadFile("testdata/minimal/route.yaml")
	files := fstest.MapFS{"geometry.geojson": {Data: geo}, "route.yaml": {Data: route}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.yaml", data, files)
		if err != nil {
			if m != nil {
				t.Fatal("a model returned with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 || len(errs) > MaxErrors {
				t.Fatalf("error is not a list of 1..%d campus errors: %v", MaxErrors, err)
			}
			for _, e := range errs {
				if e.Err == nil || e.Msg == "" || e.File != "fuzz.yaml" {
					t.Fatalf("error without kind, message or file: %#v", e)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range m.Points {
			if err := event.ValidPointID(p.ID); err != nil || seen[p.ID] {
				t.Fatalf("point id %q: %v (seen %v)", p.ID, err, seen[p.ID])
			}
			seen[p.ID] = true
			if q, ok := m.Point(p.ID); !ok || q != p {
				t.Fatalf("point %s not indexed", p.ID)
			}
			a, ok := m.Asset(p.Asset)
			if !ok {
				t.Fatalf("point %s of unknown asset %s", p.ID, p.Asset)
			}
			qt, ok := LookupQuantity(p.Quantity)
			if !ok || !qt.Allows(p.Unit) {
				t.Fatalf("point %s: quantity %s unit %s", p.ID, p.Quantity, p.Unit)
			}
			if checkLonLat(p.Location[0], p.Location[1]) != nil {
				t.Fatalf("point %s at %v", p.ID, p.Location)
			}
			if err := p.Topic.Validate(); err != nil || p.Topic.Asset != a.ID {
				t.Fatalf("point %s topic %s: %v", p.ID, p.Topic, err)
			}
		}
		n := 0
		for _, a := range m.assets {
			n += len(m.PointsOf(a.ID))
		}
		if n != len(m.Points) {
			t.Fatalf("points by asset %d, points %d", n, len(m.Points))
		}
		for _, d := range m.Devices {
			if x, ok := m.DeviceByEUI(d.DevEUI); !ok || x != d {
				t.Fatalf("device %s not found by DevEUI %s", d.ID, d.DevEUI)
			}
		}
	})
}
