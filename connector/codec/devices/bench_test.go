package devices_test

import (
	"context"
	"testing"

	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/connector/codec/devices"
)

// BenchmarkDecode decodes each campus device type's uplink in the sandbox:
// one goroutine, and as many as GOMAXPROCS.
func BenchmarkDecode(b *testing.B) {
	reg := loadCodecs(b)
	values := map[string]map[string]float64{
		devices.SenseCAPS2120: {"airTemperature": 23.4, "relativeHumidity": 61, "lightIntensity": 35120, "uvIndex": 4.2, "windSpeed": 3.1,
			"windDirection": 228, "rainfall": 1.2, "barometricPressure": 101320, "peakWindGust": 7.8, "rainAccumulation": 12.75, "battery": 87},
		devices.DraginoLSE01:   {"soilMoisture": 31.6, "soilTemperature": 14.2, "soilConductivity": 412, "battery": 3.098},
		devices.DraginoLSPH01:  {"soilPh": 6.4, "soilTemperature": 14.2, "battery": 3.3},
		devices.DraginoLSNPK01: {"nitrogen": 55, "phosphorus": 82, "potassium": 282, "battery": 3.3},
		devices.DraginoLLMS01:  {"leafMoisture": 12.5, "leafTemperature": 9.8, "battery": 3.4},
	}
	for _, typ := range devices.Types() {
		payload, port, err := devices.Encode(typ.ID, values[typ.ID])
		if err != nil {
			b.Fatal(err)
		}
		c, _ := reg.Get(typ.ID)
		in := codec.UplinkInput{Bytes: payload, FPort: port}
		b.Run(typ.ID, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.DecodeUplink(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(typ.ID+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.DecodeUplink(context.Background(), in); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	v := map[string]float64{"soilMoisture": 31.6, "soilTemperature": 14.2, "soilConductivity": 412, "battery": 3.098}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := devices.Encode(devices.DraginoLSE01, v); err != nil {
			b.Fatal(err)
		}
	}
}
