package soil_test

import (
	"fmt"

	"github.com/citymesh/citymesh/vineyard/soil"
	"github.com/paulmach/orb"
)

// ExampleNewMap maps phosphorus on a 40 m square plot from four samples.
// With four samples kriging falls back to IDW, and the map says why. Two
// cells next to the poorest sample (4.4 mg P = 10.1 mg P2O5) are class B.
func ExampleNewMap() {
	p := soil.Projection{Lon0: 9.243, Lat0: 49.1565}
	corner := func(x, y float64) orb.Point {
		lon, lat := p.Inverse(x, y)
		return orb.Point{lon, lat}
	}
	plot := orb.MultiPolygon{{{corner(-20, -20), corner(20, -20), corner(20, 20), corner(-20, 20), corner(-20, -20)}}}
	var samples []soil.Sample
	for i, xy := range [][2]float64{{-10, -10}, {10, -10}, {10, 10}, {-10, 10}} {
		lon, lat := p.Inverse(xy[0], xy[1])
		// 4.4 … 8.9 mg P/100 g, i.e. about 10 … 20 mg P2O5/100 g.
		samples = append(samples, soil.Sample{Lon: lon, Lat: lat, P: 4.4 + 1.5*float64(i), K: 20, PH: 7})
	}
	m, err := soil.NewMap(samples, plot, soil.Options{CellSize: 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Method, m.Rows, m.Cols, m.Unit())
	for _, a := range m.ClassAreas {
		fmt.Printf("%v %.0f m²\n", a.Class, a.AreaM2)
	}
	// Output:
	// idw 4 4 mg P/100 g
	// A 0 m²
	// B 200 m²
	// C 1400 m²
	// D 0 m²
	// E 0 m²
}
