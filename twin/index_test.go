package twin

import (
	"slices"
	"testing"

	"github.com/citymesh/citymesh/campus"
)

// TestBuildingIndex: a query by building or by assets, which reads the
// index of the building's or the assets' points, selects exactly what a
// scan of every point and asset with the same conditions selects, in the
// same order, with paging and an unknown building.
func TestBuildingIndex(t *testing.T) {
	m, err := campus.Load("../examples/campus/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := NewState(m)
	scanPoints := func(building, quantity string, assets []string) []int32 {
		var out []int32
		for i := range int32(len(s.points)) {
			e := &s.points[i]
			if building != "" && s.buildingOf(e.asset) != building || quantity != "" && e.p.Quantity != quantity ||
				assets != nil && !slices.Contains(assets, s.assets[e.asset].a.ID) {
				continue
			}
			out = append(out, i)
		}
		return out
	}
	scanAssets := func(building string) []int32 {
		var out []int32
		for i := range int32(len(s.assets)) {
			if s.buildingOf(i) == building {
				out = append(out, i)
			}
		}
		return out
	}
	checked := 0
	for _, b := range append(m.Buildings, &campus.Building{Asset: campus.Asset{ID: "no-such-building"}}) {
		for _, quantity := range []string{"", "temperature", "energy"} {
			r, err := s.Points(Query{Building: b.ID, Quantity: quantity})
			if err != nil {
				t.Fatal(err)
			}
			if want := scanPoints(b.ID, quantity, nil); !slices.Equal(r.idx, want) || r.Total != len(want) {
				t.Fatalf("points of %s (%q): %d, want %d", b.ID, quantity, len(r.idx), len(want))
			}
			checked += r.Total
		}
		r, err := s.Assets(Query{Building: b.ID})
		if err != nil {
			t.Fatal(err)
		}
		if want := scanAssets(b.ID); !slices.Equal(r.idx, want) {
			t.Fatalf("assets of %s: %v, want %v", b.ID, r.idx, want)
		}
	}
	if checked == 0 {
		t.Fatal("no building has points")
	}
	// Paging the index's result.
	b := m.Buildings[0].ID
	all := scanPoints(b, "", nil)
	r, err := s.Points(Query{Building: b, Offset: 2, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Total != len(all) || !slices.Equal(r.idx, all[2:5]) {
		t.Errorf("page 2..5 of %s: %v (total %d), want %v (total %d)", b, r.idx, r.Total, all[2:5], len(all))
	}
	// Assets, in any order, with and without a building.
	assets := []string{m.Buildings[1].ID, m.Meters[len(m.Meters)-1].ID, m.Buildings[0].ID, "no-such-asset"}
	for _, building := range []string{"", m.Buildings[0].ID} {
		r, err := s.Points(Query{Asset: assets, Building: building})
		if err != nil {
			t.Fatal(err)
		}
		if want := scanPoints(building, "", assets); !slices.Equal(r.idx, want) {
			t.Errorf("points of assets %v in %q: %d, want %d", assets, building, len(r.idx), len(want))
		}
	}
}
