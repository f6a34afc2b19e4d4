package campus

import (
	"slices"
	"time"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
)

// Quantity is a kind of thing an information point measures, by the
// name Smart Data Models give the property where they have one, and the
// units a value of it may carry (the first is the usual one).
type Quantity struct {
	// Name is the property name: "temperature", "soilMoistureVwc".
	Name string
	// Units are the UN/CEFACT codes a point of this quantity may use.
	Units []event.Unit
	// Description says what it is, and for states what the numbers mean.
	Description string
	// Model is the Smart Data Model that defines the name
	// ("WeatherObserved"), or "citymesh" for names of our own.
	Model string
}

// Allows reports whether a point of the quantity may use unit u.
func (q Quantity) Allows(u event.Unit) bool { return slices.Contains(q.Units, u) }

// quantities is the table of quantities. Property names and units of Smart
// Data Models from smart-data-models/dataModel.Weather (WeatherObserved),
// dataModel.Agrifood (AgriParcelRecord), dataModel.Device (Device),
// dataModel.Energy (ACMeasurement), dataModel.WaterConsumption
// (WaterConsumptionObserved), dataModel.Environment (AirQualityObserved);
// see docs/campus.md.
var quantities = []Quantity{
	// Weather.
	{"temperature", []event.Unit{event.Celsius, event.Kelvin}, "air temperature", "WeatherObserved"},
	{"relativeHumidity", []event.Unit{event.Percent}, "relative humidity of the air", "WeatherObserved"},
	{"illuminance", []event.Unit{event.Lux}, "light intensity", "WeatherObserved"},
	{"uVIndexMax", []event.Unit{event.One}, "UV index (WHO scale)", "WeatherObserved"},
	{"windSpeed", []event.Unit{event.MetrePerSecond}, "wind speed", "WeatherObserved"},
	{"windDirection", []event.Unit{event.Degree}, "direction the wind comes from, clockwise from north", "WeatherObserved"},
	{"precipitation", []event.Unit{event.MillimetrePerHour, event.Millimetre}, "rain: intensity in mm/h, or amount in mm since the last value", "WeatherObserved"},
	{"atmosphericPressure", []event.Unit{event.Hectopascal}, "barometric air pressure", "WeatherObserved"},
	{"solarRadiation", []event.Unit{event.WattPerSquareMetre}, "solar irradiance", "AgriParcelRecord"},
	// Soil and leaves.
	{"soilMoistureVwc", []event.Unit{event.Percent}, "volumetric water content of the soil", "AgriParcelRecord"},
	{"soilMoistureEc", []event.Unit{event.MicrosiemensPerCentimetre, event.SiemensPerMetre}, "electrical conductivity of the soil", "AgriParcelRecord"},
	{"soilTemperature", []event.Unit{event.Celsius}, "soil temperature at the probe's depth", "AgriParcelRecord"},
	{"soilPH", []event.Unit{event.PH}, "soil pH", "citymesh"},
	{"soilNitrogen", []event.Unit{event.MilligramPerKilogram}, "soil nitrogen (N) content", "citymesh"},
	{"soilPhosphorus", []event.Unit{event.MilligramPerKilogram}, "soil phosphorus (P) content", "citymesh"},
	{"soilPotassium", []event.Unit{event.MilligramPerKilogram}, "soil potassium (K) content", "citymesh"},
	{"leafWetness", []event.Unit{event.Percent}, "leaf wetness (moisture on the leaf sensor)", "AgriParcelRecord"},
	{"leafTemperature", []event.Unit{event.Celsius}, "leaf temperature", "AgriParcelRecord"},
	// Devices and robots.
	{"batteryLevel", []event.Unit{event.Percent}, "battery charge", "Device"},
	{"batteryVoltage", []event.Unit{event.Volt}, "battery voltage", "citymesh"},
	{"location", []event.Unit{event.Degree}, "WGS 84 position (published as position events)", "citymesh"},
	// Rooms.
	{"temperatureSetpoint", []event.Unit{event.Celsius}, "room temperature setpoint", "citymesh"},
	{"co2", []event.Unit{event.PartsPerMillion}, "CO2 concentration of the air", "AirQualityObserved"},
	{"occupancy", []event.Unit{event.One}, "presence: 1 occupied, 0 free", "citymesh"},
	{"windowContact", []event.Unit{event.One}, "window contact: 1 open, 0 closed", "citymesh"},
	{"heatingValvePosition", []event.Unit{event.Percent}, "heating valve opening", "citymesh"},
	{"lightState", []event.Unit{event.One}, "lighting: 1 on, 0 off", "citymesh"},
	{"bollardPosition", []event.Unit{event.One}, "bollard: 1 up, 0 down", "citymesh"},
	{"escapeRouteClear", []event.Unit{event.One}, "escape route: 1 clear, 0 blocked", "citymesh"},
	// Meters.
	{"activeEnergyImport", []event.Unit{event.KilowattHour, event.WattHour, event.MegawattHour}, "active energy drawn from the grid, cumulative register", "ACMeasurement"},
	{"activeEnergyExport", []event.Unit{event.KilowattHour, event.WattHour, event.MegawattHour}, "active energy fed into the grid, cumulative register", "ACMeasurement"},
	{"reactiveEnergyImport", []event.Unit{event.KilovarHour}, "reactive energy, inductive, cumulative register", "ACMeasurement"},
	{"reactiveEnergyExport", []event.Unit{event.KilovarHour}, "reactive energy, capacitive, cumulative register", "ACMeasurement"},
	{"activePower", []event.Unit{event.Kilowatt, event.Watt}, "instantaneous active power drawn", "ACMeasurement"},
	{"activePowerDemand", []event.Unit{event.Kilowatt}, "active power, 15-minute average", "citymesh"},
	{"heatEnergy", []event.Unit{event.KilowattHour, event.MegawattHour}, "heat energy, cumulative register", "citymesh"},
	{"coolingEnergy", []event.Unit{event.KilowattHour, event.MegawattHour}, "cooling energy, cumulative register", "citymesh"},
	{"gasVolume", []event.Unit{event.CubicMetre}, "gas volume, cumulative register", "citymesh"},
	{"waterConsumption", []event.Unit{event.CubicMetre, event.Litre}, "water volume, cumulative register", "WaterConsumptionObserved"},
}

// Quantities returns the quantity table, in a fixed order.
func Quantities() []Quantity { return slices.Clone(quantities) }

// LookupQuantity returns the quantity named name.
func LookupQuantity(name string) (Quantity, bool) {
	for _, q := range quantities {
		if q.Name == name {
			return q, true
		}
	}
	return Quantity{}, false
}

// DeviceType is a kind of LoRaWAN device: the quantities its codec decodes
// from an uplink, and under which field names. Its ID is also the name of
// its codec (examples/campus/codecs/{id}.js).
type DeviceType struct {
	// ID names the type: "dragino-lse01".
	ID string
	// Vendor and Model name the real product whose uplink layout the
	// codec decodes.
	Vendor, Model string
	// Description says what the device measures.
	Description string
	// Interval is the uplink interval assumed when a device of this type
	// does not give one.
	Interval time.Duration
	// Fields are the values the codec's decodeUplink returns in its data
	// object, one information point each.
	Fields []DeviceField
}

// DeviceField is one value of a device type's decoded uplink.
type DeviceField struct {
	// Field is the member of the codec's data object ("soilMoisture").
	Field string
	// Key is the point id's last segment: {device}/{Key}. It is the
	// quantity's name, except "battery" for every device's battery.
	Key string
	// Quantity and Unit: the codec returns the value in this unit.
	Quantity string
	Unit     event.Unit
	// Min and Max bound plausible values in Unit (the simulator's range,
	// the codec tests' bounds); citymesh's choice, close to the products'
	// data sheets but not taken from them.
	Min, Max float64
	// Scale converts the codec's value into Unit where the codec reports
	// another unit (the S2120's pressure in Pa, the point in hPa: 0.01);
	// 0 means 1.
	Scale float64
}

// FromCodec returns the codec's value v in the field's unit.
func (f DeviceField) FromCodec(v float64) float64 {
	if f.Scale == 0 {
		return v
	}
	return v * f.Scale
}

// The device types of the vineyards. Field names are lowerCamelCase and
// fixed: the codecs in examples/campus/codecs/ return exactly these
// members.
var deviceTypes = []DeviceType{
	{
		ID: "sensecap-s2120", Vendor: "Seeed Studio", Model: "SenseCAP S2120",
		Description: "8-in-1 weather station: air temperature and humidity, light, UV, wind speed and direction, rain, pressure",
		Interval:    10 * time.Minute,
		Fields: []DeviceField{
			{"airTemperature", "temperature", "temperature", event.Celsius, -40, 85, 0},
			{"relativeHumidity", "relativeHumidity", "relativeHumidity", event.Percent, 0, 100, 0},
			{"lightIntensity", "illuminance", "illuminance", event.Lux, 0, 200000, 0},
			{"uvIndex", "uVIndexMax", "uVIndexMax", event.One, 0, 15, 0},
			{"windSpeed", "windSpeed", "windSpeed", event.MetrePerSecond, 0, 40, 0},
			{"windDirection", "windDirection", "windDirection", event.Degree, 0, 359, 0},
			{"rainfall", "precipitation", "precipitation", event.MillimetrePerHour, 0, 240, 0},
			{"barometricPressure", "atmosphericPressure", "atmosphericPressure", event.Hectopascal, 300, 1100, 0.01}, // the codec reports Pa
			{"battery", "battery", "batteryLevel", event.Percent, 0, 100, 0},
		},
	},
	{
		ID: "dragino-lse01", Vendor: "Dragino", Model: "LSE01",
		Description: "soil moisture, temperature and electrical conductivity probe",
		Interval:    20 * time.Minute,
		Fields: []DeviceField{
			{"soilMoisture", "soilMoistureVwc", "soilMoistureVwc", event.Percent, 0, 100, 0},
			{"soilTemperature", "soilTemperature", "soilTemperature", event.Celsius, -40, 85, 0},
			{"soilConductivity", "soilMoistureEc", "soilMoistureEc", event.MicrosiemensPerCentimetre, 0, 20000, 0},
			{"battery", "battery", "batteryVoltage", event.Volt, 2.5, 3.7, 0},
		},
	},
	{
		ID: "dragino-lsph01", Vendor: "Dragino", Model: "LSPH01",
		Description: "soil pH and temperature probe",
		Interval:    20 * time.Minute,
		Fields: []DeviceField{
			{"soilPh", "soilPH", "soilPH", event.PH, 0, 14, 0},
			{"soilTemperature", "soilTemperature", "soilTemperature", event.Celsius, -40, 85, 0},
			{"battery", "battery", "batteryVoltage", event.Volt, 2.5, 3.7, 0},
		},
	},
	{
		ID: "dragino-lsnpk01", Vendor: "Dragino", Model: "LSNPK01",
		Description: "soil nitrogen, phosphorus and potassium probe",
		Interval:    20 * time.Minute,
		Fields: []DeviceField{
			{"nitrogen", "soilNitrogen", "soilNitrogen", event.MilligramPerKilogram, 0, 1999, 0},
			{"phosphorus", "soilPhosphorus", "soilPhosphorus", event.MilligramPerKilogram, 0, 1999, 0},
			{"potassium", "soilPotassium", "soilPotassium", event.MilligramPerKilogram, 0, 1999, 0},
			{"battery", "battery", "batteryVoltage", event.Volt, 2.5, 3.7, 0},
		},
	},
	{
		ID: "dragino-llms01", Vendor: "Dragino", Model: "LLMS01",
		Description: "leaf moisture (wetness) and leaf temperature sensor",
		Interval:    20 * time.Minute,
		Fields: []DeviceField{
			{"leafMoisture", "leafWetness", "leafWetness", event.Percent, 0, 100, 0},
			{"leafTemperature", "leafTemperature", "leafTemperature", event.Celsius, -40, 80, 0},
			{"battery", "battery", "batteryVoltage", event.Volt, 2.5, 3.7, 0},
		},
	},
}

// DeviceTypes returns the device type catalogue, in a fixed order.
func DeviceTypes() []DeviceType {
	out := slices.Clone(deviceTypes)
	for i := range out {
		out[i].Fields = slices.Clone(out[i].Fields)
	}
	return out
}

// LookupDeviceType returns the device type with the given id.
func LookupDeviceType(id string) (DeviceType, bool) {
	for _, t := range deviceTypes {
		if t.ID == id {
			t.Fields = slices.Clone(t.Fields)
			return t, true
		}
	}
	return DeviceType{}, false
}

// Field returns the device type's field with the given decoded name.
func (t DeviceType) Field(name string) (DeviceField, bool) {
	for _, f := range t.Fields {
		if f.Field == name {
			return f, true
		}
	}
	return DeviceField{}, false
}

// obisQuantity maps OBIS registers to quantities. B (the channel) may be
// anything; F must be 255 (the current value); E (the tariff) is any for
// the energy registers C.8.E.
type obisQuantity struct {
	a, c, d  uint8
	anyE     bool
	e        uint8
	quantity string
	unit     event.Unit
}

// obisTable holds the registers citymesh knows (docs/models/energy.md's
// OBIS table; the quantity's first unit is the register's usual unit).
var obisTable = []obisQuantity{
	{1, 1, 8, true, 0, "activeEnergyImport", event.KilowattHour},
	{1, 2, 8, true, 0, "activeEnergyExport", event.KilowattHour},
	{1, 3, 8, true, 0, "reactiveEnergyImport", event.KilovarHour},
	{1, 4, 8, true, 0, "reactiveEnergyExport", event.KilovarHour},
	{1, 1, 7, false, 0, "activePower", event.Kilowatt},
	{1, 1, 29, false, 0, "activePowerDemand", event.Kilowatt},
	{5, 1, 0, false, 0, "coolingEnergy", event.KilowattHour},
	{6, 1, 0, false, 0, "heatEnergy", event.KilowattHour},
	{7, 3, 0, false, 0, "gasVolume", event.CubicMetre},
	{7, 13, 2, false, 0, "gasVolume", event.CubicMetre},
	{8, 1, 0, false, 0, "waterConsumption", event.CubicMetre},
	{9, 1, 0, false, 0, "waterConsumption", event.CubicMetre},
}

// OBISQuantity returns the quantity a meter register measures and its
// usual unit, false when citymesh does not know the code. Known are
// electricity active and reactive energy registers (1-b:1.8.e, 2.8.e,
// 3.8.e, 4.8.e), active power (1-b:1.7.0) and its 15-minute demand
// (1-b:1.29.0), cooling (5-b:1.0.0) and heat (6-b:1.0.0) energy, gas
// volume (7-b:3.0.0, normalised 7-b:13.2.0) and cold and hot water volume
// (8-b:1.0.0, 9-b:1.0.0), each for the current value (F 255).
func OBISQuantity(o energy.OBIS) (string, event.Unit, bool) {
	if o.F != 255 {
		return "", "", false
	}
	for _, q := range obisTable {
		if q.a == o.A && q.c == o.C && q.d == o.D && (q.anyE && o.E <= 9 || !q.anyE && q.e == o.E) {
			return q.quantity, q.unit, true
		}
	}
	return "", "", false
}
