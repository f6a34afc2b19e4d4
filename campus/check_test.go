package campus

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/citymesh/citymesh/event"
)

func loadSmall(t *testing.T) *Model {
	t.Helper()
	m, err := Load("testdata/small/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var t0 = time.Date(2026, 5, 12, 7, 15, 0, 0, time.UTC)

func TestCheckEvents(t *testing.T) {
	m := loadSmall(t)
	lora := event.Source{Type: event.SourceLoRaWAN, NetworkServer: "tts", Tenant: "ttn", Application: "hn-wartberg-vineyards",
		DeviceID: "soil-probe-01", DevEUI: "A840410000000101", FCnt: new(uint32(7))}
	bms := event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"}
	rob := event.Source{Type: event.SourceRobot}
	meas := func(asset string, src event.Source, vs ...event.Value) event.Event {
		return event.NewMeasurement(asset, t0, src, vs...)
	}
	v := func(point string, x float64, u event.Unit) event.Value {
		return event.Value{Point: point, Value: x, Unit: u}
	}
	good := []struct {
		topic string
		e     event.Event
	}{
		{"vineyard/wartberg/device/soil-probe-01/measurement", meas("soil-probe-01", lora, v("soil-probe-01/soilMoistureVwc", 31, event.Percent),
			event.Value{Point: "soil-probe-01/battery", Quantity: "batteryVoltage", Value: 3.1, Unit: event.Volt})},
		{"building/campus/room/b01-0.02/measurement", meas("b01-0.02", bms, v("b01-0.02/windowContact", 1, event.One))},
		{"energy/campus/meter/el-b01-main/reading", meas("el-b01-main", bms, event.Value{Point: "el-b01-main/1-0:1.8.0", Value: 12, Unit: event.KilowattHour, OBIS: "1-0:1.8.0"})},
		{"building/campus/building/b01/measurement", meas("b01", event.Source{Type: event.SourceSimulator, Service: "sim"}, v("b01/outdoorTemperature", 9, event.Celsius))},
		{"vineyard/wartberg/device/soil-probe-01/status", &event.Status{Header: event.Header{Time: t0, Asset: "soil-probe-01", Source: lora},
			State: event.Online, Reason: event.ReasonUplink, Battery: &event.Value{Point: "soil-probe-01/battery", Value: 3.1, Unit: event.Volt}}},
		{"building/campus/gateway/bms-b01/status", event.NewStatus("bms-b01", t0, bms, event.Offline, event.ReasonDisconnected)},
		{"vineyard/wartberg/device/soil-probe-01/uplink", &event.Uplink{Header: event.Header{Time: t0, Asset: "soil-probe-01", Source: lora}, FPort: 2,
			FrequencyHz: 868_100_000, DataRate: event.DataRate{Modulation: "lora", SpreadingFactor: 7, BandwidthHz: 125000}, Gateways: []event.GatewayRx{},
			Points: []string{"soil-probe-01/battery"}}},
		{"robot/campus/robot/loomi/position", &event.Position{Header: event.Header{Time: t0, Asset: "loomi", Source: rob}, Point: "loomi/position",
			Lat: 49.1479, Lon: 9.212, Route: "test-patrol", Battery: &event.Value{Point: "loomi/battery", Value: 80, Unit: event.Percent}}},
		{"robot/campus/robot/loomi/check", &event.Check{Header: event.Header{Time: t0, Asset: "loomi", Source: rob}, Point: "loomi/check/b01-escape",
			Route: "test-patrol", Waypoint: "wp02", Check: "b01-escape", CheckKind: "escape_route", Target: "b01-escape-east", Observed: "clear"}},
		{"robot/campus/robot/loomi/picture", &event.Picture{Header: event.Header{Time: t0, Asset: "loomi", Source: rob},
			Hash: "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ContentType: "image/png", Size: 10,
			URL: "file:///pictures/a.png", Check: "b01-light"}},
	}
	for _, tc := range good {
		tp, err := event.ParseTopic(tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Check(tp, tc.e); err != nil {
			t.Errorf("%s: %v", tc.topic, err)
		}
	}
	bad := []struct {
		name  string
		topic string
		e     event.Event
	}{
		{"unknown asset", "vineyard/wartberg/device/soil-probe-09/measurement", meas("soil-probe-09", lora, v("soil-probe-09/battery", 3, event.Volt))},
		{"wrong site", "vineyard/campus/device/soil-probe-01/measurement", meas("soil-probe-01", lora, v("soil-probe-01/battery", 3, event.Volt))},
		{"wrong domain", "building/wartberg/device/soil-probe-01/measurement", meas("soil-probe-01", lora, v("soil-probe-01/battery", 3, event.Volt))},
		{"meter as measurement", "energy/campus/meter/el-b01-main/measurement", meas("el-b01-main", bms, v("el-b01-main/1-0:1.8.0", 1, event.KilowattHour))},
		{"room as reading", "building/campus/room/b01-0.02/reading", meas("b01-0.02", bms, v("b01-0.02/windowContact", 1, event.One))},
		{"unknown point", "building/campus/room/b01-0.02/measurement", meas("b01-0.02", bms, v("b01-0.02/co2", 400, event.PartsPerMillion))},
		{"removed point", "building/campus/room/b01-0.01/measurement", meas("b01-0.01", bms, v("b01-0.01/windowContact", 1, event.One))},
		{"another asset's point", "building/campus/room/b01-0.02/measurement", meas("b01-0.02", bms, v("b01-0.03/temperature", 21, event.Celsius))},
		{"wrong unit", "building/campus/room/b01-0.02/measurement", meas("b01-0.02", bms, v("b01-0.02/temperature", 294, event.Kelvin))},
		{"wrong quantity", "building/campus/room/b01-0.02/measurement", meas("b01-0.02", bms, event.Value{Point: "b01-0.02/temperature", Quantity: "soilTemperature", Value: 21, Unit: event.Celsius})},
		{"wrong obis", "energy/campus/meter/el-b01-main/reading", meas("el-b01-main", bms, event.Value{Point: "el-b01-main/1-0:1.8.0", Value: 1, Unit: event.KilowattHour, OBIS: "1-0:2.8.0"})},
		{"obis on a room", "building/campus/room/b01-0.02/measurement", meas("b01-0.02", bms, event.Value{Point: "b01-0.02/temperature", Value: 1, Unit: event.Celsius, OBIS: "1-0:2.8.0"})},
		{"unknown building gateway", "building/campus/room/b01-0.02/measurement", meas("b01-0.02", event.Source{Type: event.SourceBuilding, Gateway: "bms-b99"}, v("b01-0.02/temperature", 21, event.Celsius))},
		{"lorawan source on a room", "building/campus/room/b01-0.02/measurement", meas("b01-0.02", lora, v("b01-0.02/temperature", 21, event.Celsius))},
		{"wrong dev eui", "vineyard/wartberg/device/npk-probe-01/measurement", meas("npk-probe-01", lora, v("npk-probe-01/battery", 3, event.Volt))},
		{"wrong application", "vineyard/wartberg/device/soil-probe-01/measurement", meas("soil-probe-01",
			func() event.Source { s := lora; s.NetworkServer = "chirpstack"; return s }(), v("soil-probe-01/battery", 3, event.Volt))},
		{"status of a room", "building/campus/room/b01-0.02/status", event.NewStatus("b01-0.02", t0, bms, event.Online, "started")},
		{"check of another route", "robot/campus/robot/loomi/check", &event.Check{Header: event.Header{Time: t0, Asset: "loomi", Source: rob}, Point: "loomi/check/b01-escape",
			Route: "other", Waypoint: "wp02", Check: "b01-escape", CheckKind: "escape_route", Target: "b01-escape-east", Observed: "clear"}},
		{"check at another waypoint", "robot/campus/robot/loomi/check", &event.Check{Header: event.Header{Time: t0, Asset: "loomi", Source: rob}, Point: "loomi/check/b01-escape",
			Route: "test-patrol", Waypoint: "wp01", Check: "b01-escape", CheckKind: "escape_route", Target: "b01-escape-east", Observed: "clear"}},
		{"check of another kind", "robot/campus/robot/loomi/check", &event.Check{Header: event.Header{Time: t0, Asset: "loomi", Source: rob}, Point: "loomi/check/b01-escape",
			Route: "test-patrol", Waypoint: "wp02", Check: "b01-escape", CheckKind: "lighting", Target: "b01-escape-east", Observed: "on"}},
		{"position point", "robot/campus/robot/loomi/position", &event.Position{Header: event.Header{Time: t0, Asset: "loomi", Source: rob}, Point: "loomi/battery", Lat: 49, Lon: 9}},
		{"kind of topic", "robot/campus/robot/loomi/status", &event.Position{Header: event.Header{Time: t0, Asset: "loomi", Source: rob}, Point: "loomi/position", Lat: 49, Lon: 9}},
	}
	for _, tc := range bad {
		tp, err := event.ParseTopic(tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		err = m.Check(tp, tc.e)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else if !errors.Is(err, ErrEventMismatch) {
			t.Errorf("%s: %v is not ErrEventMismatch", tc.name, err)
		}
	}
	// An invalid event is refused by its own rules first.
	if err := m.Check(event.NewTopic("building", "campus", "room", "b01-0.02", "measurement"), meas("b01-0.02", bms)); !errors.Is(err, event.ErrInvalid) {
		t.Errorf("invalid event: %v", err)
	}
}

func TestDeviceValues(t *testing.T) {
	m := loadSmall(t)
	d, _ := m.Device("soil-probe-01")
	var data map[string]any
	json.Unmarshal([]byte(`{"soilMoisture": 31.6, "soilTemperature": 14.2, "soilConductivity": 412, "battery": 3.098, "interrupt": 0, "sensorFlag": 1}`), &data)
	vs, unknown, err := m.DeviceValues(d, data)
	if err != nil {
		t.Fatal(err)
	}
	want := []event.Value{
		{Point: "soil-probe-01/soilMoistureVwc", Quantity: "soilMoistureVwc", Value: 31.6, Unit: event.Percent},
		{Point: "soil-probe-01/soilTemperature", Quantity: "soilTemperature", Value: 14.2, Unit: event.Celsius},
		{Point: "soil-probe-01/soilMoistureEc", Quantity: "soilMoistureEc", Value: 412, Unit: event.MicrosiemensPerCentimetre},
		{Point: "soil-probe-01/battery", Quantity: "batteryVoltage", Value: 3.098, Unit: event.Volt},
	}
	if len(vs) != len(want) {
		t.Fatalf("values %+v", vs)
	}
	for i := range want {
		if vs[i] != want[i] {
			t.Errorf("value %d: %+v, want %+v", i, vs[i], want[i])
		}
	}
	if len(unknown) != 2 || unknown[0] != "interrupt" || unknown[1] != "sensorFlag" {
		t.Errorf("unknown %v", unknown)
	}
	// The values make a measurement the model accepts.
	src := event.Source{Type: event.SourceLoRaWAN, NetworkServer: "tts", Application: "hn-wartberg-vineyards", DeviceID: "soil-probe-01",
		DevEUI: d.DevEUI, FCnt: new(uint32(1))}
	if err := m.Check(d.Topic(event.EventMeasurement), event.NewMeasurement(d.ID, t0, src, vs...)); err != nil {
		t.Error(err)
	}
	for _, bad := range []map[string]any{{"battery": "3.1"}, {"soilMoisture": nil}, {"soilTemperature": []any{1.0}}} {
		if _, _, err := m.DeviceValues(d, bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if vs, _, err := m.DeviceValues(d, map[string]any{"soilMoisture": json.Number("12.5"), "battery": 3}); err != nil || len(vs) != 2 || vs[0].Value != 12.5 || vs[1].Value != 3 {
		t.Errorf("json.Number and int: %+v %v", vs, err)
	}
}

// The catalogue is consistent: device fields are unique per type, keys
// give unique point ids, quantities exist and allow the field's unit,
// ranges are ordered, and every device has a battery point.
func TestCatalogue(t *testing.T) {
	for _, q := range Quantities() {
		if len(q.Units) == 0 || q.Description == "" || q.Model == "" {
			t.Errorf("quantity %s: %+v", q.Name, q)
		}
		for _, u := range q.Units {
			if !u.Known() {
				t.Errorf("quantity %s: unit %s unknown to package event", q.Name, u)
			}
		}
	}
	want := []string{"sensecap-s2120", "dragino-lse01", "dragino-lsph01", "dragino-lsnpk01", "dragino-llms01"}
	types := DeviceTypes()
	if len(types) != len(want) {
		t.Fatalf("%d device types", len(types))
	}
	for i, dt := range types {
		if dt.ID != want[i] || dt.Interval <= 0 || dt.Vendor == "" || dt.Model == "" {
			t.Errorf("device type %d: %+v", i, dt)
		}
		fields, keys := map[string]bool{}, map[string]bool{}
		battery := false
		for _, f := range dt.Fields {
			if fields[f.Field] || keys[f.Key] {
				t.Errorf("%s: field %s or key %s twice", dt.ID, f.Field, f.Key)
			}
			fields[f.Field], keys[f.Key] = true, true
			q, ok := LookupQuantity(f.Quantity)
			if !ok || !q.Allows(f.Unit) || !(f.Min < f.Max) || !validCamel(f.Field) {
				t.Errorf("%s: field %+v", dt.ID, f)
			}
			if f.Key == "battery" && f.Field == "battery" {
				battery = true
			}
		}
		if !battery {
			t.Errorf("%s has no battery field", dt.ID)
		}
		if got, ok := dt.Field(dt.Fields[0].Field); !ok || got != dt.Fields[0] {
			t.Errorf("%s: Field lookup", dt.ID)
		}
	}
	if _, ok := LookupDeviceType("dragino-lse02"); ok {
		t.Error("unknown device type found")
	}
	// DeviceTypes returns copies.
	types[0].Fields[0].Field = "changed"
	if dt, _ := LookupDeviceType(types[0].ID); dt.Fields[0].Field == "changed" {
		t.Error("DeviceTypes shares the catalogue")
	}
}

func validCamel(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// A meter's reading event becomes package energy's readings.
func TestMeterReadings(t *testing.T) {
	m := loadSmall(t)
	vt := t0.Add(-15 * time.Minute)
	e := event.NewMeasurement("el-b01-main", t0, event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"},
		event.Value{Point: "el-b01-main/1-0:1.8.0", Value: 1200.5, Unit: event.KilowattHour, OBIS: "1-0:1.8.0"},
		event.Value{Point: "el-b01-main/1-0:2.8.0", Value: 60, Unit: event.KilowattHour, Time: &vt})
	rs, err := m.MeterReadings(e)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Meter != "el-b01-main" || rs[0].OBIS.String() != "1-0:1.8.0" || rs[0].Value != 1200.5 || !rs[0].Time.Equal(t0) ||
		rs[1].OBIS.String() != "1-0:2.8.0" || !rs[1].Time.Equal(vt) {
		t.Errorf("%+v", rs)
	}
	for name, bad := range map[string]*event.Measurement{
		"not a meter":   event.NewMeasurement("b01-0.02", t0, event.Source{Type: event.SourceRobot}, event.Value{Point: "b01-0.02/temperature", Value: 1, Unit: event.Celsius}),
		"other meter":   event.NewMeasurement("el-b01-main", t0, event.Source{Type: event.SourceRobot}, event.Value{Point: "ht-b01-uni/6-0:1.0.0", Value: 1, Unit: event.MegawattHour}),
		"wrong unit":    event.NewMeasurement("el-b01-main", t0, event.Source{Type: event.SourceRobot}, event.Value{Point: "el-b01-main/1-0:1.8.0", Value: 1, Unit: event.WattHour}),
		"unknown meter": event.NewMeasurement("el-b09", t0, event.Source{Type: event.SourceRobot}, event.Value{Point: "el-b09/1-0:1.8.0", Value: 1, Unit: event.KilowattHour}),
	} {
		if _, err := m.MeterReadings(bad); !errors.Is(err, ErrEventMismatch) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
