package run

import (
	"math"

	"github.com/citymesh/citymesh/event"
)

// normalizedField is one member of The Things Stack's normalized payload:
// which quantity of the campus model it is, in which unit the network
// server gives it.
type normalizedField struct {
	path     string // "soil.moisture"
	quantity string // the campus model's quantity
	unit     event.Unit
}

// normalizedFields are the measurements of The Things Stack's normalized
// payload (the Device Repository's lib/payload.json schema, which the
// application server validates: pkg/messageprocessors/normalizedpayload)
// that are quantities of the campus model. soil.depth and time have no
// point.
var normalizedFields = []normalizedField{
	{"soil.moisture", "soilMoistureVwc", event.Percent},
	{"soil.temperature", "soilTemperature", event.Celsius},
	{"soil.ec", "soilMoistureEc", unitDSPerM},
	{"soil.pH", "soilPH", event.PH},
	{"soil.n", "soilNitrogen", event.MilligramPerKilogram},
	{"soil.p", "soilPhosphorus", event.MilligramPerKilogram},
	{"soil.k", "soilPotassium", event.MilligramPerKilogram},
	{"air.temperature", "temperature", event.Celsius},
	{"air.relativeHumidity", "relativeHumidity", event.Percent},
	{"air.pressure", "atmosphericPressure", event.Hectopascal},
	{"air.co2", "co2", event.PartsPerMillion},
	{"air.lightIntensity", "illuminance", event.Lux},
	{"wind.speed", "windSpeed", event.MetrePerSecond},
	{"wind.direction", "windDirection", event.Degree},
}

// unitDSPerM stands for decisiemens per metre, the unit of soil.ec; no
// event carries it.
const unitDSPerM event.Unit = "dS/m"

// convert returns v, given in unit from, in unit to, and false when
// citymesh knows no conversion.
func convert(v float64, from, to event.Unit) (float64, bool) {
	if from == to {
		return v, true
	}
	switch {
	case from == unitDSPerM && to == event.MicrosiemensPerCentimetre:
		return v * 1000, true // 1 dS/m = 1 mS/cm = 1000 µS/cm
	case from == unitDSPerM && to == event.SiemensPerMetre:
		return v / 10, true
	case from == event.Celsius && to == event.Kelvin:
		return v + 273.15, true
	}
	return 0, false
}

// normalizedValues maps The Things Stack's normalized measurements onto
// d's points by quantity: each member of the table above whose quantity
// one of d's points measures becomes a value of that point, converted into
// the point's unit. Later measurements of a list override earlier ones.
func (r *Runtime) normalizedValues(d *device, ms []map[string]any) []event.Value {
	var out []event.Value
	points := r.model.PointsOf(d.dev.ID)
	for _, m := range ms {
		for _, f := range normalizedFields {
			raw, ok := lookupPath(m, f.path)
			if !ok {
				continue
			}
			x, ok := raw.(float64)
			if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
				continue
			}
			for _, p := range points {
				if p.Quantity != f.quantity {
					continue
				}
				v, ok := convert(x, f.unit, p.Unit)
				if !ok {
					break
				}
				val := event.Value{Point: p.ID, Quantity: p.Quantity, Value: v, Unit: p.Unit}
				replaced := false
				for i := range out {
					if out[i].Point == p.ID {
						out[i], replaced = val, true
					}
				}
				if !replaced {
					out = append(out, val)
				}
				break
			}
		}
	}
	return out
}

// lookupPath returns the member "a.b" of a JSON object.
func lookupPath(m map[string]any, path string) (any, bool) {
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			sub, ok := m[path[:i]].(map[string]any)
			if !ok {
				return nil, false
			}
			return lookupPath(sub, path[i+1:])
		}
	}
	v, ok := m[path]
	return v, ok
}
