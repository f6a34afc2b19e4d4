package campus_test

import (
	"testing"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector/codec/devices"
	"github.com/citymesh/citymesh/event"
)

// The device-type catalogue and the codecs agree: every field the campus
// maps to a point is a member the device's codec returns, in the point's
// unit (or scaled into it), and the ranges fit what the device can report.
func TestCatalogueMatchesCodecs(t *testing.T) {
	codecUnit := map[string]event.Unit{
		"°C": event.Celsius, "%": event.Percent, "lx": event.Lux, "": event.One, "m/s": event.MetrePerSecond,
		"°": event.Degree, "mm/h": event.MillimetrePerHour, "V": event.Volt, "µS/cm": event.MicrosiemensPerCentimetre,
		"pH": event.PH, "mg/kg": event.MilligramPerKilogram,
		"Pa": event.Hectopascal, // scaled by 0.01
	}
	for _, dt := range campus.DeviceTypes() {
		dev, ok := devices.Lookup(dt.ID)
		if !ok {
			t.Errorf("device type %s has no codec", dt.ID)
			continue
		}
		for _, f := range dt.Fields {
			var cf *devices.Field
			for i := range dev.Fields {
				if dev.Fields[i].Name == f.Field {
					cf = &dev.Fields[i]
				}
			}
			if cf == nil {
				t.Errorf("%s: the codec returns no %q", dt.ID, f.Field)
				continue
			}
			if u, ok := codecUnit[cf.Unit]; !ok || u != f.Unit {
				t.Errorf("%s.%s: codec unit %q, point unit %s", dt.ID, f.Field, cf.Unit, f.Unit)
			}
			if scaled := cf.Unit == "Pa"; scaled != (f.Scale == 0.01) {
				t.Errorf("%s.%s: scale %v for codec unit %q", dt.ID, f.Field, f.Scale, cf.Unit)
			}
			if lo, hi := f.FromCodec(cf.Min), f.FromCodec(cf.Max); f.Min < lo-1e-9 || f.Max > hi+1e-9 {
				t.Errorf("%s.%s: campus range %v…%v outside what the device reports, %v…%v", dt.ID, f.Field, f.Min, f.Max, lo, hi)
			}
		}
	}
}
