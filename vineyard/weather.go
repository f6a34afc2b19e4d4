package vineyard

import (
	"math"
	"time"
)

// Hour is one hourly weather record of a vineyard station.
//
// The zero value is a dry, 0 °C, 0 % RH hour at the zero time; readers fill
// every field. LeafWet is only meaningful when HasLeafWet is true.
type Hour struct {
	// Time is the start of the hour.
	Time time.Time
	// TempC is the mean air temperature in °C.
	TempC float64
	// RHPct is the mean relative humidity in % (0–100).
	RHPct float64
	// RainMM is the rain in the hour in mm.
	RainMM float64
	// LeafWet is the wet fraction of the hour from a leaf-wetness sensor,
	// 0 (dry) to 1 (wet the whole hour).
	LeafWet float64
	// HasLeafWet says whether LeafWet holds a sensor reading.
	HasLeafWet bool
}

// Gap is a stretch of missing hours between two records. Models never fill
// gaps: a gap ends every wet period and every run of consecutive hours.
type Gap struct {
	// After is the time of the last record before the gap.
	After time.Time `json:"after"`
	// Before is the time of the first record after the gap.
	Before time.Time `json:"before"`
	// MissingHours is the number of hourly records missing.
	MissingHours int `json:"missing_hours"`
}

// Weather is an hourly weather series in time order, with the gaps found in it.
type Weather struct {
	// Hours are the records, strictly increasing in time.
	Hours []Hour
	// Gaps are the stretches of missing hours between records.
	Gaps []Gap
}

// Derived is what the models read from one hour: wetness, dew point and VPD.
type Derived struct {
	Time time.Time `json:"time"`
	// Wet says whether the leaves count as wet in this hour.
	Wet bool `json:"wet"`
	// WetSource names the rule that decided Wet: "sensor" (leaf-wetness
	// sensor fraction ≥ 0.5), "rh" (RH ≥ the threshold, Sentelhas et al.
	// 2008) or "rain" (rain in the hour).
	WetSource string `json:"wet_source,omitempty"`
	// DewPointC is the dew point in °C (Magnus form, Alduchov & Eskridge 1996).
	DewPointC float64 `json:"dew_point_c"`
	// VPDkPa is the vapour-pressure deficit in kPa.
	VPDkPa float64 `json:"vpd_kpa"`
}

// Magnus-form constants of Alduchov & Eskridge (1996), "Improved Magnus form
// approximation of saturation vapor pressure", J. Appl. Meteor. 35:601–609:
// e_s(T) = 0.61094 kPa · exp(17.625·T / (T + 243.04 °C)), over water.
const (
	magnusA = 0.61094 // kPa
	magnusB = 17.625
	magnusC = 243.04 // °C
)

// DefaultWetRH is the relative humidity (%) at or above which an hour counts
// as wet when there is no leaf-wetness sensor. Sentelhas et al. (2008),
// Agric. For. Meteorol., doi:10.1016/j.agrformet.2007.09.011, found the
// RH ≥ 90 % rule the best of the simple estimators (fraction correct 0.87–0.92).
const DefaultWetRH = 90.0

// SaturationVapourPressure returns the saturation vapour pressure over water
// in kPa at tempC °C (Magnus form, Alduchov & Eskridge 1996).
func SaturationVapourPressure(tempC float64) float64 {
	return magnusA * math.Exp(magnusB*tempC/(tempC+magnusC))
}

// DewPoint returns the dew point in °C for air at tempC °C and rhPct % relative
// humidity, by inverting the Magnus form of Alduchov & Eskridge (1996):
// γ = ln(RH/100) + 17.625·T/(243.04+T), Td = 243.04·γ/(17.625 − γ).
// RH is clamped to at least 0.1 % so that the logarithm stays finite.
func DewPoint(tempC, rhPct float64) float64 {
	rh := math.Min(math.Max(rhPct, 0.1), 100)
	g := math.Log(rh/100) + magnusB*tempC/(magnusC+tempC)
	return magnusC * g / (magnusB - g)
}

// VPD returns the vapour-pressure deficit in kPa: (1 − RH/100) · e_s(T).
func VPD(tempC, rhPct float64) float64 {
	rh := math.Min(math.Max(rhPct, 0), 100)
	return (1 - rh/100) * SaturationVapourPressure(tempC)
}

// Derive computes wetness, dew point and VPD for every hour. wetRH is the RH
// threshold (%) for hours without a sensor reading; 0 means DefaultWetRH.
// A sensor reading, when present, decides wetness alone (wet when at least
// half the hour was wet); without one, an hour is wet when RH ≥ wetRH or
// when it rained.
func Derive(hours []Hour, wetRH float64) []Derived {
	if wetRH == 0 {
		wetRH = DefaultWetRH
	}
	out := make([]Derived, len(hours))
	for i, h := range hours {
		d := Derived{
			Time:      h.Time,
			DewPointC: DewPoint(h.TempC, h.RHPct),
			VPDkPa:    VPD(h.TempC, h.RHPct),
		}
		switch {
		case h.HasLeafWet:
			if h.LeafWet >= 0.5 {
				d.Wet, d.WetSource = true, "sensor"
			}
		case h.RHPct >= wetRH:
			d.Wet, d.WetSource = true, "rh"
		case h.RainMM > 0:
			d.Wet, d.WetSource = true, "rain"
		}
		out[i] = d
	}
	return out
}
