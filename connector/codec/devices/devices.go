// Package devices describes the campus's LoRaWAN device types — their
// fields, units, resolutions, ranges and FPort — and encodes readings into
// the exact bytes each device sends, so that the simulator produces real
// payloads for the JavaScript codecs of examples/campus/codecs to decode.
//
// Encode(type, values) writes what the device's firmware would; the codec
// {type}.js decodes it back to the same values within the field's
// resolution (TestRoundTrip checks it for random values in range). The
// byte layouts, with their sources, are at the top of each codec and in
// docs/connectors.md ("Device codecs").
package devices

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Field is one value a device type reports.
type Field struct {
	// Name is the decoded field's name, lowerCamelCase.
	Name string
	// Unit is the value's unit ("°C", "%", "µS/cm", "V"; "" for none).
	Unit string
	// Resolution is the smallest step the payload carries.
	Resolution float64
	// Min and Max bound what Encode accepts: the sensor's documented range
	// where there is one.
	Min, Max float64
	// Optional fields may be left out of Encode's values.
	Optional bool
	// Description says what the value is.
	Description string
}

// Type is a device type.
type Type struct {
	// ID names the type and its codec (examples/campus/codecs/{ID}.js).
	ID string
	// Vendor and Model name the product.
	Vendor, Model string
	// FPort is the port its measurement uplinks use.
	FPort uint8
	// Fields are the values it reports, battery among them.
	Fields []Field
	// encode writes the payload of values, which Encode has checked.
	encode func(v map[string]float64) []byte
}

// Field returns the type's field of the name.
func (t Type) Field(name string) (Field, bool) {
	for _, f := range t.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// The device type IDs.
const (
	SenseCAPS2120  = "sensecap-s2120"
	DraginoLSE01   = "dragino-lse01"
	DraginoLSPH01  = "dragino-lsph01"
	DraginoLSNPK01 = "dragino-lsnpk01"
	DraginoLLMS01  = "dragino-llms01"
)

// draginoBattery and draginoProbe are the fields every Dragino soil and
// leaf sensor shares.
var (
	draginoBattery = Field{Name: "battery", Unit: "V", Resolution: 0.001, Min: 0, Max: 16.383,
		Description: "battery voltage (an 8500 mAh Li-SOCl2 cell: about 3.6 V full, replace below 2.5 V)"}
	draginoProbe = Field{Name: "externalTemperature", Unit: "°C", Resolution: 0.1, Min: -55, Max: 125, Optional: true,
		Description: "temperature of an optional DS18B20 probe; the payload carries 0 without a probe, and the codec then leaves the field out"}
)

var types = []Type{
	{
		ID: SenseCAPS2120, Vendor: "SenseCAP (Seeed Studio)", Model: "S2120 8-in-1 LoRaWAN weather station", FPort: 3,
		Fields: []Field{
			{Name: "airTemperature", Unit: "°C", Resolution: 0.1, Min: -40, Max: 85, Description: "air temperature"},
			{Name: "relativeHumidity", Unit: "%", Resolution: 1, Min: 0, Max: 100, Description: "relative humidity of the air"},
			{Name: "lightIntensity", Unit: "lx", Resolution: 1, Min: 0, Max: 200000, Description: "light intensity"},
			{Name: "uvIndex", Unit: "", Resolution: 0.1, Min: 0, Max: 15, Description: "UV index"},
			{Name: "windSpeed", Unit: "m/s", Resolution: 0.1, Min: 0, Max: 40, Description: "wind speed"},
			{Name: "windDirection", Unit: "°", Resolution: 1, Min: 0, Max: 359, Description: "direction the wind comes from, clockwise from north"},
			{Name: "rainfall", Unit: "mm/h", Resolution: 0.001, Min: 0, Max: 240, Description: "rain of the last hour (SenseCAP measurement 4113, \"rain gauge\")"},
			{Name: "barometricPressure", Unit: "Pa", Resolution: 10, Min: 30000, Max: 110000, Description: "barometric pressure (10 Pa = 0.1 hPa)"},
			{Name: "peakWindGust", Unit: "m/s", Resolution: 0.1, Min: 0, Max: 60, Optional: true, Description: "peak wind gust (firmware 2.x, frame 0x4C; give it with rainAccumulation)"},
			{Name: "rainAccumulation", Unit: "mm", Resolution: 0.001, Min: 0, Max: 4294967, Optional: true, Description: "rain accumulated since the counter was reset (firmware 2.x, frame 0x4C)"},
			{Name: "battery", Unit: "%", Resolution: 1, Min: 0, Max: 100, Description: "battery level"},
		},
		encode: encodeS2120,
	},
	{
		ID: DraginoLSE01, Vendor: "Dragino", Model: "LSE01 LoRaWAN soil moisture & EC sensor", FPort: 2,
		Fields: []Field{
			{Name: "soilMoisture", Unit: "%", Resolution: 0.01, Min: 0, Max: 100, Description: "volumetric water content of the soil"},
			{Name: "soilTemperature", Unit: "°C", Resolution: 0.01, Min: -40, Max: 85, Description: "soil temperature"},
			{Name: "soilConductivity", Unit: "µS/cm", Resolution: 1, Min: 0, Max: 20000, Description: "electrical conductivity of the soil"},
			draginoBattery, draginoProbe,
		},
		encode: func(v map[string]float64) []byte {
			b := dragino(v)
			binary.BigEndian.PutUint16(b[4:], uint16(q(v["soilMoisture"], 0.01)))
			binary.BigEndian.PutUint16(b[6:], uint16(int16(q(v["soilTemperature"], 0.01))))
			binary.BigEndian.PutUint16(b[8:], uint16(q(v["soilConductivity"], 1)))
			return b
		},
	},
	{
		ID: DraginoLSPH01, Vendor: "Dragino", Model: "LSPH01 LoRaWAN soil pH sensor", FPort: 2,
		Fields: []Field{
			{Name: "soilPh", Unit: "pH", Resolution: 0.01, Min: 0, Max: 14, Description: "soil pH"},
			{Name: "soilTemperature", Unit: "°C", Resolution: 0.1, Min: -40, Max: 85, Description: "soil temperature"},
			draginoBattery, draginoProbe,
		},
		encode: func(v map[string]float64) []byte {
			b := dragino(v)
			binary.BigEndian.PutUint16(b[4:], uint16(q(v["soilPh"], 0.01)))
			binary.BigEndian.PutUint16(b[6:], uint16(int16(q(v["soilTemperature"], 0.1))))
			b[10] = 0x01 // message type of a periodic uplink, as in the vendor's example
			return b
		},
	},
	{
		ID: DraginoLSNPK01, Vendor: "Dragino", Model: "LSNPK01 LoRaWAN soil NPK sensor", FPort: 2,
		Fields: []Field{
			{Name: "nitrogen", Unit: "mg/kg", Resolution: 1, Min: 0, Max: 1999, Description: "soil nitrogen (N)"},
			{Name: "phosphorus", Unit: "mg/kg", Resolution: 1, Min: 0, Max: 1999, Description: "soil phosphorus (P)"},
			{Name: "potassium", Unit: "mg/kg", Resolution: 1, Min: 0, Max: 1999, Description: "soil potassium (K)"},
			draginoBattery, draginoProbe,
		},
		encode: func(v map[string]float64) []byte {
			b := dragino(v)
			binary.BigEndian.PutUint16(b[4:], uint16(q(v["nitrogen"], 1)))
			binary.BigEndian.PutUint16(b[6:], uint16(q(v["phosphorus"], 1)))
			binary.BigEndian.PutUint16(b[8:], uint16(q(v["potassium"], 1)))
			return b
		},
	},
	{
		ID: DraginoLLMS01, Vendor: "Dragino", Model: "LLMS01 LoRaWAN leaf moisture sensor", FPort: 2,
		Fields: []Field{
			{Name: "leafMoisture", Unit: "%", Resolution: 0.1, Min: 0, Max: 100, Description: "share of the leaf's surface that is wet"},
			{Name: "leafTemperature", Unit: "°C", Resolution: 0.1, Min: -50, Max: 80, Description: "leaf temperature"},
			draginoBattery, draginoProbe,
		},
		encode: func(v map[string]float64) []byte {
			b := dragino(v)
			binary.BigEndian.PutUint16(b[4:], uint16(q(v["leafMoisture"], 0.1)))
			binary.BigEndian.PutUint16(b[6:], uint16(int16(q(v["leafTemperature"], 0.1))))
			b[10] = 0x01
			return b
		},
	},
}

// Types returns the device types, sorted by ID.
func Types() []Type {
	out := slices.Clone(types)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lookup returns the device type of the ID.
func Lookup(id string) (Type, bool) {
	for _, t := range types {
		if t.ID == id {
			return t, true
		}
	}
	return Type{}, false
}

// Encode writes the uplink payload a device of the type sends for values
// (by field name, in the field's unit) and the FPort it sends it on. Every
// field that is not Optional must be given, within its range; a value is
// rounded to the field's resolution. A name the type does not have is an
// error.
func Encode(deviceType string, values map[string]float64) ([]byte, uint8, error) {
	t, ok := Lookup(deviceType)
	if !ok {
		return nil, 0, fmt.Errorf("devices: unknown device type %q", deviceType)
	}
	for name, v := range values {
		f, ok := t.Field(name)
		if !ok {
			return nil, 0, fmt.Errorf("devices: %s has no field %q (it has %s)", deviceType, name, t.fieldNames())
		}
		if math.IsNaN(v) || v < f.Min || v > f.Max {
			return nil, 0, fmt.Errorf("devices: %s %s = %v, want %v to %v %s", deviceType, name, v, f.Min, f.Max, f.Unit)
		}
	}
	for _, f := range t.Fields {
		if _, ok := values[f.Name]; !ok && !f.Optional {
			return nil, 0, fmt.Errorf("devices: %s needs %s", deviceType, f.Name)
		}
	}
	if deviceType == SenseCAPS2120 {
		_, gust := values["peakWindGust"]
		_, acc := values["rainAccumulation"]
		if gust != acc {
			return nil, 0, fmt.Errorf("devices: %s sends peakWindGust and rainAccumulation together (frame 0x4C): give both or neither", deviceType)
		}
	}
	return t.encode(values), t.FPort, nil
}

func (t Type) fieldNames() string {
	names := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// q rounds v to a whole number of steps of res.
func q(v, res float64) int64 { return int64(math.Round(v / res)) }

// dragino returns the 11 bytes of a Dragino soil or leaf sensor's uplink
// with the battery (mV in the low 14 bits) and the external probe's
// temperature (0.1 °C, 0 without a probe) written.
func dragino(v map[string]float64) []byte {
	b := make([]byte, 11)
	binary.BigEndian.PutUint16(b[0:], uint16(q(v["battery"], 0.001))&0x3fff)
	if t, ok := v["externalTemperature"]; ok {
		binary.BigEndian.PutUint16(b[2:], uint16(int16(q(t, 0.1))))
	}
	return b
}

// encodeS2120 writes firmware 2.x frames: 0x4A, 0x4B, 0x4C when the gust
// and accumulation are given, and the battery frame 0x03.
func encodeS2120(v map[string]float64) []byte {
	b := make([]byte, 0, 29)
	b = append(b, 0x4a)
	b = binary.BigEndian.AppendUint16(b, uint16(int16(q(v["airTemperature"], 0.1))))
	b = append(b, byte(q(v["relativeHumidity"], 1)))
	b = binary.BigEndian.AppendUint32(b, uint32(q(v["lightIntensity"], 1)))
	b = append(b, byte(q(v["uvIndex"], 0.1)))
	b = binary.BigEndian.AppendUint16(b, uint16(q(v["windSpeed"], 0.1)))
	b = append(b, 0x4b)
	b = binary.BigEndian.AppendUint16(b, uint16(q(v["windDirection"], 1)))
	b = binary.BigEndian.AppendUint32(b, uint32(q(v["rainfall"], 0.001)))
	b = binary.BigEndian.AppendUint16(b, uint16(q(v["barometricPressure"], 10)))
	if gust, ok := v["peakWindGust"]; ok {
		b = append(b, 0x4c)
		b = binary.BigEndian.AppendUint16(b, uint16(q(gust, 0.1)))
		b = binary.BigEndian.AppendUint32(b, uint32(q(v["rainAccumulation"], 0.001)))
	}
	b = append(b, 0x03, byte(q(v["battery"], 1)))
	return b
}
