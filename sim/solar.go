package sim

import (
	"math"
	"time"
)

const (
	deg = math.Pi / 180
	// earthRadiusM is the mean Earth radius (IUGG R1 of GRS 80), used for
	// the small-distance conversions between degrees and metres.
	earthRadiusM = 6371008.8
)

// SunPosition is the sun's place in the sky seen from a point on Earth.
type SunPosition struct {
	// ElevationDeg is the geometric elevation above the horizon in degrees
	// (no refraction), negative at night.
	ElevationDeg float64
	// AzimuthDeg is measured clockwise from north, 0–360°.
	AzimuthDeg float64
	// DeclinationDeg is the sun's declination.
	DeclinationDeg float64
}

// Sun returns the position of the sun at t seen from lat, lon (degrees,
// east positive). It uses the U.S. Naval Observatory's "Approximate Solar
// Coordinates" (aa.usno.navy.mil, accurate to about 1 arcminute within two
// centuries of 2000): with D the days since J2000.0,
//
//	g = 357.529 + 0.98560028·D   (mean anomaly)
//	q = 280.459 + 0.98564736·D   (mean longitude)
//	L = q + 1.915·sin g + 0.020·sin 2g
//	ε = 23.439 − 0.00000036·D
//	RA = atan2(cos ε·sin L, cos L), δ = asin(sin ε·sin L)
//	GMST = 18.697374558 + 24.06570982441908·D hours
//
// and the local hour angle H = 15·GMST + lon − RA; elevation and azimuth
// follow from the spherical triangle.
func Sun(t time.Time, lat, lon float64) SunPosition {
	d := float64(t.UnixNano())/86400e9 + 2440587.5 - 2451545.0
	g := (357.529 + 0.98560028*d) * deg
	q := 280.459 + 0.98564736*d
	l := (q + 1.915*math.Sin(g) + 0.020*math.Sin(2*g)) * deg
	e := (23.439 - 0.00000036*d) * deg
	ra := math.Atan2(math.Cos(e)*math.Sin(l), math.Cos(l))
	dec := math.Asin(math.Sin(e) * math.Sin(l))
	gmst := 18.697374558 + 24.06570982441908*d
	h := math.Mod(gmst*15+lon, 360)*deg - ra
	phi := lat * deg
	sinEl := math.Sin(phi)*math.Sin(dec) + math.Cos(phi)*math.Cos(dec)*math.Cos(h)
	el := math.Asin(clamp(sinEl, -1, 1))
	az := math.Atan2(-math.Sin(h), math.Tan(dec)*math.Cos(phi)-math.Sin(phi)*math.Cos(h))
	azd := math.Mod(az/deg+360, 360)
	return SunPosition{ElevationDeg: el / deg, AzimuthDeg: azd, DeclinationDeg: dec / deg}
}

// ClearSkyGHI returns the global horizontal irradiance under a clear sky in
// W/m² for a sun elevation in degrees, by the Haurwitz model as given by
// Reno, Hansen and Stein (Sandia report SAND2012-2389, the form pvlib
// implements): GHI = 1098·cos z·exp(−0.059/cos z), zero with the sun below
// the horizon.
func ClearSkyGHI(elevationDeg float64) float64 {
	cz := math.Sin(elevationDeg * deg)
	if cz <= 0 {
		return 0
	}
	return 1098 * cz * math.Exp(-0.059/cz)
}

// CloudTransmission returns the ratio of global irradiance under a cloud
// cover fraction c (0–1) to the clear-sky irradiance, after Kasten and
// Czeplak (1980), Solar Energy 24:177–189: 1 − 0.75·c^3.4.
func CloudTransmission(c float64) float64 {
	return 1 - 0.75*math.Pow(clamp(c, 0, 1), 3.4)
}

// ClearSkyUVIndex returns the UV index under a cloud-free, unpolluted sky
// for a sun elevation in degrees and a total ozone column in Dobson units,
// by Madronich's analytic formula (Photochemistry and Photobiology 83:1537,
// 2007): UVI ≈ 12.5·μ0^2.42·(Ω/300)^−1.23, μ0 the cosine of the zenith angle.
func ClearSkyUVIndex(elevationDeg, ozoneDU float64) float64 {
	mu := math.Sin(elevationDeg * deg)
	if mu <= 0 {
		return 0
	}
	return 12.5 * math.Pow(mu, 2.42) * math.Pow(ozoneDU/300, -1.23)
}

// luminousEfficacy converts global irradiance (W/m²) to illuminance (lx).
// Daylight's luminous efficacy is about 100–125 lm/W; 115 is an estimate
// in that range.
const luminousEfficacy = 115.0

// uvCloudFactor is the share of the clear-sky UV index left under cloud
// cover c. Clouds dim UV less than visible light; 1 − 0.5·c^2.5 is an
// estimate, not a published fit.
func uvCloudFactor(c float64) float64 { return 1 - 0.5*math.Pow(clamp(c, 0, 1), 2.5) }

// ozoneDU is the total ozone column over southern Germany by day of year:
// about 330 DU with a spring maximum and an autumn minimum (an estimate of
// the climatology, ±35 DU).
func ozoneDU(t time.Time) float64 {
	doy := float64(t.YearDay())
	return 330 + 35*math.Cos(2*math.Pi*(doy-95)/365.25)
}

// offsetMetres returns the point dx metres east and dy metres north of
// (lat, lon) in an equirectangular approximation (good to well under a
// metre over a campus).
func offsetMetres(lat, lon, dx, dy float64) (float64, float64) {
	dlat := dy / earthRadiusM / deg
	dlon := dx / (earthRadiusM * math.Cos(lat*deg)) / deg
	return lat + dlat, lon + dlon
}

// metresBetween returns the east and north offsets in metres of (lat2,
// lon2) from (lat1, lon1) in the same approximation.
func metresBetween(lat1, lon1, lat2, lon2 float64) (dx, dy float64) {
	dx = (lon2 - lon1) * deg * earthRadiusM * math.Cos((lat1+lat2)/2*deg)
	dy = (lat2 - lat1) * deg * earthRadiusM
	return dx, dy
}
