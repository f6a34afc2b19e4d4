package event

import "slices"

// Unit is a unit of measurement as a UN/CEFACT common code
// (UNECE Recommendation No. 20), the code NGSI-LD puts in unitCode:
// "CEL" for degree Celsius, "P1" for percent, "KWH" for kilowatt hour.
// Every value of an information point carries one.
type Unit string

// The units citymesh knows. Codes are from UNECE Recommendation No. 20,
// Annex II/III; the comment gives the unit's name and symbol.
const (
	Celsius                   Unit = "CEL" // degree Celsius, °C
	Kelvin                    Unit = "KEL" // kelvin, K
	Percent                   Unit = "P1"  // percent, %
	One                       Unit = "C62" // one: a count, an index or a state (0 off, 1 on)
	PartsPerMillion           Unit = "59"  // part per million, ppm
	KilowattHour              Unit = "KWH" // kilowatt hour, kWh
	WattHour                  Unit = "WHR" // watt hour, Wh
	MegawattHour              Unit = "MWH" // megawatt hour, MWh
	Kilowatt                  Unit = "KWT" // kilowatt, kW
	Watt                      Unit = "WTT" // watt, W
	KilovarHour               Unit = "K3"  // kilovolt ampere reactive hour, kvarh
	CubicMetre                Unit = "MTQ" // cubic metre, m³
	Litre                     Unit = "LTR" // litre, l
	CubicMetrePerHour         Unit = "MQH" // cubic metre per hour, m³/h
	Millimetre                Unit = "MMT" // millimetre, mm
	MillimetrePerHour         Unit = "H67" // millimetre per hour, mm/h
	Metre                     Unit = "MTR" // metre, m
	MetrePerSecond            Unit = "MTS" // metre per second, m/s
	Degree                    Unit = "DD"  // degree (unit of angle), °
	Hectopascal               Unit = "A97" // hectopascal, hPa
	Lux                       Unit = "LUX" // lux, lx
	WattPerSquareMetre        Unit = "D54" // watt per square metre, W/m²
	Volt                      Unit = "VLT" // volt, V
	SiemensPerMetre           Unit = "D10" // siemens per metre, S/m
	MicrosiemensPerCentimetre Unit = "G42" // microsiemens per centimetre, µS/cm
	MilligramPerKilogram      Unit = "NA"  // milligram per kilogram, mg/kg
	PH                        Unit = "Q30" // pH (potential of hydrogen)
)

type unitInfo struct{ name, symbol string }

var units = map[Unit]unitInfo{
	Celsius:                   {"degree Celsius", "°C"},
	Kelvin:                    {"kelvin", "K"},
	Percent:                   {"percent", "%"},
	One:                       {"one", "1"},
	PartsPerMillion:           {"part per million", "ppm"},
	KilowattHour:              {"kilowatt hour", "kWh"},
	WattHour:                  {"watt hour", "Wh"},
	MegawattHour:              {"megawatt hour", "MWh"},
	Kilowatt:                  {"kilowatt", "kW"},
	Watt:                      {"watt", "W"},
	KilovarHour:               {"kilovolt ampere reactive hour", "kvarh"},
	CubicMetre:                {"cubic metre", "m³"},
	Litre:                     {"litre", "l"},
	CubicMetrePerHour:         {"cubic metre per hour", "m³/h"},
	Millimetre:                {"millimetre", "mm"},
	MillimetrePerHour:         {"millimetre per hour", "mm/h"},
	Metre:                     {"metre", "m"},
	MetrePerSecond:            {"metre per second", "m/s"},
	Degree:                    {"degree (unit of angle)", "°"},
	Hectopascal:               {"hectopascal", "hPa"},
	Lux:                       {"lux", "lx"},
	WattPerSquareMetre:        {"watt per square metre", "W/m²"},
	Volt:                      {"volt", "V"},
	SiemensPerMetre:           {"siemens per metre", "S/m"},
	MicrosiemensPerCentimetre: {"microsiemens per centimetre", "µS/cm"},
	MilligramPerKilogram:      {"milligram per kilogram", "mg/kg"},
	PH:                        {"pH (potential of hydrogen)", "pH"},
}

// Known reports whether citymesh knows the unit code. Events with another
// code are refused: a typo in a unit is a wrong value, not a new unit.
func (u Unit) Known() bool {
	_, ok := units[u]
	return ok
}

// Name returns the unit's name ("degree Celsius"), or "" when unknown.
func (u Unit) Name() string { return units[u].name }

// Symbol returns the unit's symbol ("°C"), or "" when unknown.
func (u Unit) Symbol() string { return units[u].symbol }

// Units returns every known unit code, sorted.
func Units() []Unit {
	out := make([]Unit, 0, len(units))
	for u := range units {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}
