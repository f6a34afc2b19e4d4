package sim

import (
	"fmt"
	"math"
)

// Climate holds the monthly statistics the weather model reproduces. Index
// 0 is January. The zero value is not usable; start from Heilbronn.
type Climate struct {
	Name string
	// ReferenceAltitudeM is the altitude the temperatures and pressures
	// refer to; a site higher up is colder by the standard lapse rate.
	ReferenceAltitudeM float64
	// MeanTempC is the monthly mean air temperature in °C.
	MeanTempC [12]float64
	// DailyRangeK is the mean difference between the daily maximum and
	// minimum in K.
	DailyRangeK [12]float64
	// AnomalySDK is the standard deviation of the daily mean temperature
	// around the monthly mean in K (synoptic weather).
	AnomalySDK [12]float64
	// RainMM is the monthly precipitation in mm.
	RainMM [12]float64
	// ConvectiveShare is the share of RainMM that falls in short, intense
	// afternoon showers rather than long frontal rain.
	ConvectiveShare [12]float64
	// FrontalDurationH and FrontalIntensityMMH are the mean duration in
	// hours and mean intensity in mm/h of frontal (stratiform) rain events.
	FrontalDurationH    [12]float64
	FrontalIntensityMMH [12]float64
	// CloudFraction is the mean cloud cover (0–1), about one minus the
	// relative sunshine duration.
	CloudFraction [12]float64
	// DewDepressionK is the mean difference between the daily mean
	// temperature and the dew point in K.
	DewDepressionK [12]float64
	// WindMS is the mean wind speed at 10 m in m/s.
	WindMS [12]float64
	// PrevailingWindDeg is the most frequent wind direction (from), degrees.
	PrevailingWindDeg float64
	// SeaLevelPressureHPa is the mean pressure reduced to sea level.
	SeaLevelPressureHPa float64
}

// Convective showers: mean duration (h), mean intensity (mm/h) and the
// longest shower (h). Estimates for central European summer convection.
const (
	convDurationH    = 1.5
	convIntensityMMH = 5.0
	convMaxH         = 6
	frontalMaxH      = 24
)

// Heilbronn is the climate of the Neckar valley at Heilbronn (about 160 m
// a.s.l.). The numbers are estimates: no DWD normal for a Heilbronn station
// was at hand, so they were set from neighbouring published figures —
// Heidelberg about 2 °C in January and 20 °C in July, 727 mm a year;
// Stuttgart 664 mm (Diercke Baden-Württemberg climate diagrams,
// diercke.de/diercke_karte/6974) — and DWD reference-station tables of
// similar lowland stations (agrimet.de, 1981–2010: monthly means 0–2 °C in
// January and 17–19 °C in July, summer rain maximum, about 1700 h of
// sunshine). Annual mean 10.6 °C, annual rain 744 mm. docs/simulator.md
// lists them.
var Heilbronn = Climate{
	Name:                "Heilbronn (estimate)",
	ReferenceAltitudeM:  160,
	MeanTempC:           [12]float64{1.8, 2.9, 6.5, 10.4, 14.6, 18.0, 19.9, 19.4, 15.2, 10.5, 5.7, 2.6},
	DailyRangeK:         [12]float64{5.5, 7.0, 9.0, 11.0, 11.5, 11.5, 12.0, 12.0, 11.0, 9.0, 6.0, 5.0},
	AnomalySDK:          [12]float64{3.5, 3.5, 3.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 3.0, 3.5},
	RainMM:              [12]float64{52, 46, 52, 47, 78, 82, 82, 72, 57, 60, 56, 60},
	ConvectiveShare:     [12]float64{0, 0, 0.05, 0.15, 0.4, 0.55, 0.6, 0.55, 0.35, 0.1, 0, 0},
	FrontalDurationH:    [12]float64{6, 6, 5, 5, 4, 4, 4, 4, 4, 5, 6, 6},
	FrontalIntensityMMH: [12]float64{0.9, 0.9, 1.0, 1.1, 1.4, 1.5, 1.5, 1.5, 1.3, 1.1, 1.0, 0.9},
	CloudFraction:       [12]float64{0.8, 0.7, 0.65, 0.57, 0.55, 0.53, 0.5, 0.5, 0.55, 0.65, 0.78, 0.83},
	DewDepressionK:      [12]float64{2.5, 3, 4, 5.5, 6, 6.5, 7, 7, 6, 4.5, 3, 2.5},
	WindMS:              [12]float64{2.8, 3.0, 3.0, 2.7, 2.4, 2.3, 2.3, 2.2, 2.2, 2.4, 2.6, 2.8},
	PrevailingWindDeg:   240,
	SeaLevelPressureHPa: 1016,
}

// Validate checks that the climate's numbers are finite and in range.
func (c *Climate) Validate() error {
	for m := range 12 {
		vals := map[string]float64{
			"mean temperature": c.MeanTempC[m], "daily range": c.DailyRangeK[m], "anomaly sd": c.AnomalySDK[m],
			"rain": c.RainMM[m], "convective share": c.ConvectiveShare[m], "frontal duration": c.FrontalDurationH[m],
			"frontal intensity": c.FrontalIntensityMMH[m], "cloud fraction": c.CloudFraction[m],
			"dew depression": c.DewDepressionK[m], "wind": c.WindMS[m],
		}
		for name, v := range vals {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("climate %s: month %d: %s %v is not a finite number", c.Name, m+1, name, v)
			}
		}
		switch {
		case c.MeanTempC[m] < -60 || c.MeanTempC[m] > 50:
			return fmt.Errorf("climate %s: month %d: mean temperature %v °C out of range", c.Name, m+1, c.MeanTempC[m])
		case c.DailyRangeK[m] < 0 || c.AnomalySDK[m] < 0 || c.RainMM[m] < 0 || c.DewDepressionK[m] < 0 || c.WindMS[m] < 0:
			return fmt.Errorf("climate %s: month %d: ranges, rain, dew depression and wind must not be negative", c.Name, m+1)
		case c.ConvectiveShare[m] < 0 || c.ConvectiveShare[m] > 1:
			return fmt.Errorf("climate %s: month %d: convective share %v outside 0–1", c.Name, m+1, c.ConvectiveShare[m])
		case c.CloudFraction[m] <= 0 || c.CloudFraction[m] >= 1:
			return fmt.Errorf("climate %s: month %d: cloud fraction %v must lie strictly between 0 and 1", c.Name, m+1, c.CloudFraction[m])
		case c.FrontalDurationH[m] < 1 || c.FrontalDurationH[m] > frontalMaxH || c.FrontalIntensityMMH[m] <= 0:
			return fmt.Errorf("climate %s: month %d: frontal rain needs a duration of 1–%d h and a positive intensity", c.Name, m+1, frontalMaxH)
		}
	}
	if !(c.SeaLevelPressureHPa > 800 && c.SeaLevelPressureHPa < 1100) {
		return fmt.Errorf("climate %s: sea-level pressure %v hPa out of range", c.Name, c.SeaLevelPressureHPa)
	}
	return nil
}

// interp interpolates a monthly table at month position p (0 is the middle
// of January, 1 the middle of February, 11.5 the turn of the year) with a
// periodic Catmull-Rom spline through the monthly values.
func interp(a *[12]float64, p float64) float64 {
	fi := math.Floor(p)
	f := p - fi
	i := int(fi)
	at := func(k int) float64 { return a[((k%12)+12)%12] }
	p0, p1, p2, p3 := at(i-1), at(i), at(i+1), at(i+2)
	f2, f3 := f*f, f*f*f
	return 0.5 * (2*p1 + (-p0+p2)*f + (2*p0-5*p1+4*p2-p3)*f2 + (-p0+3*p1-3*p2+p3)*f3)
}

// geometricMean returns the mean of a geometric number of hours with mean
// mu (support 1, 2, …) truncated at max hours.
func geometricMean(mu float64, max int) float64 {
	q := 1 / mu
	return (1 - math.Pow(1-q, float64(max))) / q
}

// geometricDraw draws a duration from a geometric distribution with mean
// mu hours (support 1, 2, …) truncated at max, from a uniform u.
func geometricDraw(mu float64, max int, u float64) int {
	if mu <= 1 {
		return 1
	}
	q := 1 / mu
	d := 1 + int(math.Floor(math.Log(1-u)/math.Log(1-q)))
	return min(max, d)
}
