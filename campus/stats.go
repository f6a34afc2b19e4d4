package campus

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/citymesh/citymesh/event"
)

// Stats is a campus model's composition: how many assets of each kind and
// how many information points they contribute, by template.
type Stats struct {
	Campus string `json:"campus"`
	// Points is the number of information points.
	Points int `json:"points"`
	// Assets counts assets and their points by asset kind.
	Assets []Count `json:"assets"`
	// Groups breaks the points down by where they come from: rooms by
	// room type, meters by meter type, devices by device type, robots,
	// and points of the points list on other assets.
	Groups []Count `json:"groups"`
	// Quantities counts points by quantity.
	Quantities []Count `json:"quantities"`
	// Sites, Tenants, Applications are the numbers of each.
	Sites        int `json:"sites"`
	Tenants      int `json:"tenants"`
	Applications int `json:"applications"`
}

// Count is a number of assets and of the information points they have.
type Count struct {
	// Name is an asset kind, "room room-type", "meter meter-type",
	// "device device-type", "robot" or a quantity.
	Name   string `json:"name"`
	Assets int    `json:"assets,omitempty"`
	Points int    `json:"points"`
}

// Stats returns the model's composition.
func (m *Model) Stats() Stats {
	s := Stats{Campus: m.ID, Points: len(m.Points), Sites: len(m.Sites), Tenants: len(m.Tenants), Applications: len(m.Applications)}
	kinds := map[event.AssetKind]*Count{}
	groups := map[string]*Count{}
	quantities := map[string]*Count{}
	get := func(mp map[string]*Count, name string) *Count {
		c, ok := mp[name]
		if !ok {
			c = &Count{Name: name}
			mp[name] = c
		}
		return c
	}
	group := func(a *Asset) string {
		switch v := m.objects[a.ID].(type) {
		case *Room:
			return "room " + v.Type
		case *Meter:
			if v.Type == "" {
				return "meter (registers given)"
			}
			return "meter " + v.Type
		case *Device:
			return "device " + v.Type.ID
		}
		return string(a.Kind)
	}
	for _, a := range m.assets {
		k, ok := kinds[a.Kind]
		if !ok {
			k = &Count{Name: string(a.Kind)}
			kinds[a.Kind] = k
		}
		k.Assets++
		n := len(m.byAsset[a.ID])
		k.Points += n
		if n > 0 || a.Kind == event.AssetRoom || a.Kind == event.AssetMeter || a.Kind == event.AssetDevice || a.Kind == event.AssetRobot {
			g := get(groups, group(a))
			g.Assets++
			g.Points += n
		}
	}
	for _, p := range m.Points {
		get(quantities, p.Quantity).Points++
	}
	byName := func(a, b Count) int { return cmp.Compare(a.Name, b.Name) }
	for _, c := range kinds {
		s.Assets = append(s.Assets, *c)
	}
	for _, c := range groups {
		s.Groups = append(s.Groups, *c)
	}
	for _, c := range quantities {
		s.Quantities = append(s.Quantities, *c)
	}
	slices.SortFunc(s.Assets, byName)
	slices.SortFunc(s.Groups, byName)
	slices.SortFunc(s.Quantities, func(a, b Count) int {
		if c := cmp.Compare(b.Points, a.Points); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return s
}

// WriteText writes the composition as three tables: by asset kind, by
// template, by quantity.
func (s Stats) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "campus %s: %d information points, %d sites, %d tenants, %d LoRaWAN applications\n", s.Campus, s.Points, s.Sites, s.Tenants, s.Applications)
	table := func(title string, rows []Count, assets bool) {
		width := len(title)
		for _, r := range rows {
			width = max(width, len(r.Name))
		}
		b.WriteByte('\n')
		if assets {
			fmt.Fprintf(&b, "%-*s  %7s  %7s\n", width, title, "assets", "points")
		} else {
			fmt.Fprintf(&b, "%-*s  %7s\n", width, title, "points")
		}
		line := func(r Count) {
			if assets {
				fmt.Fprintf(&b, "%-*s  %7d  %7d\n", width, r.Name, r.Assets, r.Points)
			} else {
				fmt.Fprintf(&b, "%-*s  %7d\n", width, r.Name, r.Points)
			}
		}
		sum := Count{Name: "total"}
		for _, r := range rows {
			line(r)
			sum.Assets += r.Assets
			sum.Points += r.Points
		}
		line(sum)
	}
	table("asset kind", s.Assets, true)
	table("points from", s.Groups, true)
	table("quantity", s.Quantities, false)
	_, err := io.WriteString(w, b.String())
	return err
}
