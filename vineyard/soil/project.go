package soil

import "math"

// EarthRadius is the mean Earth radius in metres (IUGG mean radius R1 of
// the GRS 80 ellipsoid, 6 371 008.8 m) used by Projection.
const EarthRadius = 6371008.8

// Projection is an equirectangular projection about a reference point
// (Lon0, Lat0) in degrees. It maps longitude and latitude to metres east (X)
// and north (Y) of the reference point:
//
//	x = R·cos(φ0)·(λ − λ0),  y = R·(φ − φ0)   (angles in radians)
//
// Over a vineyard plot (a few hundred metres) the scale error is below 0.1 %,
// the inverse is exact, and cells stay rectangles in longitude and latitude,
// which is why the package uses it instead of UTM. The zero value projects
// about (0°, 0°).
type Projection struct {
	Lon0, Lat0 float64
}

// Forward returns the metric coordinates of a longitude and latitude.
func (p Projection) Forward(lon, lat float64) (x, y float64) {
	const rad = math.Pi / 180
	x = EarthRadius * math.Cos(p.Lat0*rad) * (lon - p.Lon0) * rad
	y = EarthRadius * (lat - p.Lat0) * rad
	return x, y
}

// Inverse returns the longitude and latitude of metric coordinates.
func (p Projection) Inverse(x, y float64) (lon, lat float64) {
	const deg = 180 / math.Pi
	lon = p.Lon0 + x/(EarthRadius*math.Cos(p.Lat0*math.Pi/180))*deg
	lat = p.Lat0 + y/EarthRadius*deg
	return lon, lat
}
