package sim

import (
	"fmt"
	"sync"
	"time"
)

// BuildingKind says what a building is used for; it picks the occupancy
// profile and the default consumption intensities.
type BuildingKind string

// Building kinds.
const (
	KindLecture   BuildingKind = "lecture"
	KindOffice    BuildingKind = "office"
	KindLab       BuildingKind = "lab"
	KindLibrary   BuildingKind = "library"
	KindCanteen   BuildingKind = "canteen"
	KindResidence BuildingKind = "residence"
)

// usage is a building kind's occupancy profile and default annual
// intensities. All numbers are estimates for a German university campus
// (docs/simulator.md): no measured campus profile is published.
type usage struct {
	// hours is the occupancy (0–1) of a lecture-period working day by
	// local hour.
	hours [24]float64
	// scale multiplies hours by day type (LectureDay, BreakDay, Saturday,
	// Sunday, Closure).
	scale [5]float64
	// electricity, heat (space heating and hot water, kWh/m²a) and water
	// (m³/m²a) per year and floor area.
	electricity, heat, water float64
	// hotWater is the share of heat used for hot water, which follows
	// occupancy rather than the weather.
	hotWater float64
	// comfort is the span of local hours with comfort temperature on
	// working days (heating schedule).
	comfortFrom, comfortTo float64
}

var usages = map[BuildingKind]*usage{
	KindLecture: {
		hours:       [24]float64{0, 0, 0, 0, 0, 0, 0.02, 0.15, 0.6, 0.9, 0.95, 0.95, 0.75, 0.85, 0.9, 0.85, 0.7, 0.5, 0.35, 0.25, 0.12, 0.05, 0.02, 0},
		scale:       [5]float64{1, 0.45, 0.15, 0.03, 0.03},
		electricity: 60, heat: 90, water: 0.12, hotWater: 0.05,
		comfortFrom: 6, comfortTo: 20,
	},
	KindOffice: {
		hours:       [24]float64{0, 0, 0, 0, 0, 0, 0.05, 0.35, 0.8, 0.95, 0.95, 0.9, 0.7, 0.85, 0.9, 0.85, 0.7, 0.4, 0.15, 0.05, 0.02, 0, 0, 0},
		scale:       [5]float64{1, 0.9, 0.08, 0.02, 0.05},
		electricity: 70, heat: 85, water: 0.15, hotWater: 0.05,
		comfortFrom: 6, comfortTo: 19,
	},
	KindLab: {
		hours:       [24]float64{0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.05, 0.3, 0.75, 0.9, 0.95, 0.9, 0.75, 0.85, 0.9, 0.85, 0.75, 0.55, 0.35, 0.2, 0.12, 0.08, 0.05, 0.03},
		scale:       [5]float64{1, 0.85, 0.2, 0.08, 0.1},
		electricity: 130, heat: 110, water: 0.3, hotWater: 0.05,
		comfortFrom: 6, comfortTo: 21,
	},
	KindLibrary: {
		hours:       [24]float64{0, 0, 0, 0, 0, 0, 0, 0.05, 0.3, 0.5, 0.7, 0.8, 0.75, 0.85, 0.9, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.35, 0.25, 0.1},
		scale:       [5]float64{1, 0.6, 0.5, 0.05, 0.05},
		electricity: 75, heat: 80, water: 0.1, hotWater: 0.05,
		comfortFrom: 7, comfortTo: 24,
	},
	KindCanteen: {
		hours:       [24]float64{0, 0, 0, 0, 0, 0, 0.05, 0.2, 0.3, 0.35, 0.5, 0.9, 1, 0.9, 0.5, 0.3, 0.2, 0.1, 0.05, 0, 0, 0, 0, 0},
		scale:       [5]float64{1, 0.5, 0.1, 0, 0},
		electricity: 160, heat: 150, water: 1.2, hotWater: 0.3,
		comfortFrom: 6, comfortTo: 17,
	},
	KindResidence: {
		hours:       [24]float64{0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.9, 0.8, 0.5, 0.35, 0.3, 0.3, 0.35, 0.35, 0.3, 0.35, 0.45, 0.55, 0.7, 0.8, 0.85, 0.9, 0.9, 0.9},
		scale:       [5]float64{1, 0.85, 1, 1, 0.5},
		electricity: 35, heat: 100, water: 1.3, hotWater: 0.25,
		comfortFrom: 0, comfortTo: 24,
	},
}

func usageOf(k BuildingKind) (*usage, error) {
	u, ok := usages[k]
	if !ok {
		return nil, fmt.Errorf("unknown building kind %q (want lecture, office, lab, library, canteen or residence)", k)
	}
	return u, nil
}

// profile returns the occupancy (0–1) of usage u at local hour hr (a
// fraction) on a day of type dt, interpolated linearly between hour
// midpoints.
func (u *usage) profile(dt DayType, hr float64) float64 {
	x := hr - 0.5
	i := int(x + 24)
	f := x + 24 - float64(i)
	a := u.hours[i%24]
	b := u.hours[(i+1)%24]
	return (a + (b-a)*f) * u.scale[dt]
}

// occupancy sums of a usage over a reference year.
type occupancySums struct {
	// hours is the occupancy summed over the year in hours: the hours its
	// variable load is spread over.
	hours float64
	// waterHours is the same with the night (0–5 h) damped as water use
	// is.
	waterHours float64
}

// occupiedHours returns the occupancy sums of every usage over a reference
// year (2025, Baden-Württemberg holidays).
var occupiedHours = sync.OnceValue(func() map[BuildingKind]occupancySums {
	out := map[BuildingKind]occupancySums{}
	for k, u := range usages {
		var s occupancySums
		for d := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC); d.Year() == 2025; d = d.AddDate(0, 0, 1) {
			dt := dayTypeOfDate(d.Date())
			for h := range 24 {
				v := u.hours[h] * u.scale[dt]
				s.hours += v
				if h < 5 {
					v *= nightWaterFactor
				}
				s.waterHours += v
			}
		}
		out[k] = s
	}
	return out
})
