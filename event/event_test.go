package event

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/robot"
)

var t0 = time.Date(2026, 5, 12, 7, 15, 42, 918_000_000, time.UTC)

func lorawanSource() Source {
	return Source{Type: SourceLoRaWAN, NetworkServer: NetworkServerTTS, Tenant: "ttn", Application: "hn-wartberg-vineyards",
		DeviceID: "soil-probe-07", DevEUI: "A840410000000107", FCnt: new(uint32(1842)), Gateway: "hn-wartberg-tower",
		RSSIdBm: new(-97.0), SNRdB: new(7.25)}
}

// goEvents are events built in Go, one or more of every kind.
func goEvents() map[string]Event {
	building := Source{Type: SourceBuilding, Gateway: "bms-b01"}
	robotSrc := Source{Type: SourceRobot}
	vt := t0.Add(-15 * time.Minute)
	return map[string]Event{
		"measurement lorawan": NewMeasurement("soil-probe-07", t0, lorawanSource(),
			Value{Point: "soil-probe-07/soilMoistureVwc", Quantity: "soilMoistureVwc", Value: 31.6, Unit: Percent},
			Value{Point: "soil-probe-07/battery", Value: 3.1, Unit: Volt}),
		"measurement meter": NewMeasurement("el-b01-main", t0, building,
			Value{Point: "el-b01-main/1-0:1.8.0", Value: 1284467.25, Unit: KilowattHour, OBIS: "1-0:1.8.0", Time: &vt}),
		"measurement simulator": NewMeasurement("b01-0.01", t0, Source{Type: SourceSimulator, Service: "citymesh-sim", Simulated: true},
			Value{Point: "b01-0.01/windowContact", Value: 0, Unit: One}),
		"status": &Status{Header: Header{ID: "x-1", Time: t0, Asset: "weather-station-01", Source: lorawanSource()},
			State: Online, Reason: ReasonUplink, LastSeen: &t0, Battery: &Value{Point: "weather-station-01/battery", Value: 97, Unit: Percent}},
		"status offline": NewStatus("bms-b07", t0, Source{Type: SourceBuilding, Gateway: "bms-b07"}, Offline, ReasonDisconnected),
		"uplink": &Uplink{Header: Header{Time: t0, Asset: "soil-probe-07", Source: lorawanSource()}, FPort: 2, DevAddr: "260B1A2C",
			Payload: []byte{0x0c, 0x1a, 0x01}, FrequencyHz: 867_500_000,
			DataRate: DataRate{Modulation: ModulationLoRa, SpreadingFactor: 9, BandwidthHz: 125_000, CodingRate: "4/5", Index: new(uint8(3))},
			AirtimeS: new(0.205824), Gateways: []GatewayRx{{ID: "hn-wartberg-tower", EUI: "A84041FFFF24A438", RSSIdBm: -97, SNRdB: 7.25, Time: &t0,
				Location: &Location{Lat: 49.16152, Lon: 9.24118, AltitudeM: new(308.0)}}},
			CorrelationID: "as:up:01J9ZQ6M3S8V6F0QH3Y8K2N4TB", Points: []string{"soil-probe-07/soilMoistureVwc"}},
		"uplink fsk": &Uplink{Header: Header{Time: t0, Asset: "soil-probe-07", Source: lorawanSource()}, FPort: 0, FrequencyHz: 868_800_000,
			DataRate: DataRate{Modulation: ModulationFSK, BitRate: 50_000}, Gateways: []GatewayRx{}},
		"position": &Position{Header: Header{Time: t0, Asset: "loomi", Source: robotSrc}, Point: "loomi/position", Lat: 49.1481, Lon: 9.21205,
			AccuracyM: new(0.8), HeadingDeg: new(0.0), SpeedMPS: new(1.1), Route: "loomi-night-patrol", Waypoint: "wp03",
			Battery: &Value{Point: "loomi/battery", Value: 71, Unit: Percent}},
		"check": &Check{Header: Header{Time: t0, Asset: "loomi", Source: robotSrc}, Point: "loomi/check/b04-escape", Route: "loomi-night-patrol",
			Waypoint: "wp05", Check: "b04-escape", CheckKind: CheckEscapeRoute, Target: "b04-escape-route", Observed: "blocked", Expected: "clear",
			OK: new(false), Anomaly: &Anomaly{Kind: "escape_route_blocked", Severity: "high"}, Picture: "sha256:" + strings.Repeat("ab", 32)},
		"check numeric": &Check{Header: Header{Time: t0, Asset: "loomi", Source: robotSrc}, Point: "loomi/check/b02-hvac", Route: "loomi-night-patrol",
			Waypoint: "wp04", Check: "b02-hvac", CheckKind: CheckHVACSetpoint, Target: "b02-0.01", Observed: "21.5", Unit: Celsius, OK: new(true)},
		"picture": &Picture{Header: Header{Time: t0, Asset: "loomi", Source: robotSrc}, Hash: "sha256:" + strings.Repeat("0f", 32),
			ContentType: "image/jpeg", Size: 482113, URL: "s3://campus-robot-pictures/loomi/a.jpg", Width: 1920, Height: 1080, Check: "b04-escape"},
	}
}

// The JSON that the Go types produce is valid by their kind's JSON
// schema, and decodes back to the same event.
func TestGoEventsValidateAgainstSchemas(t *testing.T) {
	for name, e := range goEvents() {
		t.Run(name, func(t *testing.T) {
			data, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateJSON(e.Kind(), data); err != nil {
				t.Fatalf("%s\n%s", err, data)
			}
			back, err := Decode(e.Kind(), data)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := json.Marshal(back)
			if string(again) != string(data) {
				t.Errorf("round trip changed the event:\n%s\n%s", data, again)
			}
		})
	}
	seen := map[Kind]bool{}
	for _, e := range goEvents() {
		seen[e.Kind()] = true
	}
	for _, k := range Kinds() {
		if !seen[k] {
			t.Errorf("no Go example of kind %s", k)
		}
	}
}

// kindOfFile reads the kind from a test file's name: {kind}-what.json.
func kindOfFile(t *testing.T, name string) Kind {
	k, _, _ := strings.Cut(filepath.Base(name), "-")
	if New(Kind(k)) == nil {
		t.Fatalf("%s: file name does not start with an event kind", name)
	}
	return Kind(k)
}

// Every example in testdata/valid is accepted by its schema and by the Go
// type; every example of every kind is present.
func TestValidExamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.json")
	seen := map[Kind]bool{}
	for _, f := range files {
		k := kindOfFile(t, f)
		seen[k] = true
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateJSON(k, data); err != nil {
			t.Errorf("%s: schema: %v", f, err)
		}
		e, err := Decode(k, data)
		if err != nil {
			t.Errorf("%s: Go: %v", f, err)
			continue
		}
		// What Go writes back is valid too.
		out, err := Encode(e)
		if err != nil {
			t.Errorf("%s: encode: %v", f, err)
		} else if err := ValidateJSON(k, out); err != nil {
			t.Errorf("%s: re-encoded: %v", f, err)
		}
	}
	for _, k := range Kinds() {
		if !seen[k] {
			t.Errorf("no example of kind %s in testdata/valid", k)
		}
	}
}

// Every example in testdata/invalid is refused both by its schema and by
// the Go type, with an error wrapping ErrInvalid.
func TestInvalidExamplesRefused(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.json")
	if len(files) < 40 {
		t.Fatalf("only %d invalid examples", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			k := kindOfFile(t, f)
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateJSON(k, data); err == nil {
				t.Errorf("schema accepted it")
			} else if !errors.Is(err, ErrInvalid) {
				t.Errorf("schema error does not wrap ErrInvalid: %v", err)
			}
			if _, err := Decode(k, data); err == nil {
				t.Errorf("Go accepted it")
			} else if !errors.Is(err, ErrInvalid) {
				t.Errorf("Go error does not wrap ErrInvalid: %v", err)
			}
		})
	}
}

// Go refuses invalid values it can hold but JSON cannot carry, and the
// errors name the field.
func TestValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		e     Event
		field string
	}{
		{"zero time", NewMeasurement("a", time.Time{}, Source{Type: SourceRobot}, Value{Point: "a/b", Unit: One}), "time"},
		{"no source", NewMeasurement("a", t0, Source{}, Value{Point: "a/b", Unit: One}), "source.type"},
		{"no values", NewMeasurement("a", t0, Source{Type: SourceRobot}), "values"},
		{"unknown unit", NewMeasurement("a", t0, Source{Type: SourceRobot}, Value{Point: "a/b", Unit: "%"}), "values[0].unit"},
		{"service without name", NewMeasurement("a", t0, Source{Type: SourceService}, Value{Point: "a/b", Unit: One}), "source.service"},
		{"lorawan fields on robot", NewMeasurement("a", t0, Source{Type: SourceRobot, DevEUI: "A840410000000107"}, Value{Point: "a/b", Unit: One}), "source"},
		{"nil gateways", &Uplink{Header: Header{Time: t0, Asset: "a", Source: lorawanSource()}, FrequencyHz: 868_100_000,
			DataRate: DataRate{Modulation: ModulationLoRa, SpreadingFactor: 7, BandwidthHz: 125_000}}, "gateways"},
		{"long payload", &Uplink{Header: Header{Time: t0, Asset: "a", Source: lorawanSource()}, FrequencyHz: 868_100_000, Payload: make([]byte, 256),
			DataRate: DataRate{Modulation: ModulationLoRa, SpreadingFactor: 7, BandwidthHz: 125_000}, Gateways: []GatewayRx{}}, "payload"},
		{"bad status", NewStatus("a", t0, Source{Type: SourceRobot}, "sleeping", ReasonDocked), "state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), ": "+tc.field+": ") {
				t.Errorf("error %q does not name field %s", err, tc.field)
			}
		})
	}
	nan := NewMeasurement("a", t0, Source{Type: SourceRobot}, Value{Point: "a/b", Value: 0, Unit: One})
	nan.Values[0].Value = func() float64 { var z float64; return z / z }()
	if err := nan.Validate(); err == nil || !strings.Contains(err.Error(), "values[0].value") {
		t.Errorf("NaN: %v", err)
	}
}

// The schema's unit list is the Go unit table.
func TestSchemaUnitsAreGoUnits(t *testing.T) {
	data, err := fs.ReadFile(Schemas(), "common.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			Unit struct {
				Enum []Unit `json:"enum"`
			} `json:"unit"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(doc.Defs.Unit.Enum)); !slices.Equal(got, Units()) {
		t.Errorf("schema units %v\nGo units     %v", got, Units())
	}
	for _, u := range Units() {
		if u.Name() == "" || u.Symbol() == "" {
			t.Errorf("unit %s has no name or symbol", u)
		}
	}
	if Unit("XYZ").Known() || Unit("").Known() {
		t.Error("unknown unit reported known")
	}
}

// The check kinds and anomaly kinds are the robot package's.
func TestCheckKindsAreRobots(t *testing.T) {
	for _, k := range []robot.CheckKind{robot.CheckHVACSetpoint, robot.CheckBollard, robot.CheckEscapeRoute, robot.CheckLighting} {
		c := goEvents()["check numeric"].(*Check)
		c.CheckKind = string(k)
		if err := c.Validate(); err != nil {
			t.Errorf("robot check kind %s: %v", k, err)
		}
	}
	for _, a := range []robot.AnomalyKind{robot.AnomalySetpointOutOfRange, robot.AnomalyBollardWrongState, robot.AnomalyEscapeRouteBlocked,
		robot.AnomalyLightingWrongState, robot.AnomalyCheckFailed} {
		for _, s := range []robot.Severity{robot.SeverityLow, robot.SeverityMedium, robot.SeverityHigh, robot.SeverityCritical} {
			c := goEvents()["check"].(*Check)
			c.Anomaly = &Anomaly{Kind: string(a), Severity: string(s)}
			if err := c.Validate(); err != nil {
				t.Errorf("robot anomaly %s %s: %v", a, s, err)
			}
		}
	}
}

func TestTopics(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind Kind
		ok   bool
	}{
		{"vineyard/wartberg/device/soil-probe-07/measurement", KindMeasurement, true},
		{"energy/campus/meter/el-b01-main/reading", KindMeasurement, true},
		{"robot/campus/robot/loomi/position", KindPosition, true},
		{"robot/campus/robot/loomi/check", KindCheck, true},
		{"robot/campus/robot/loomi/picture", KindPicture, true},
		{"vineyard/wartberg/device/soil-probe-07/uplink", KindUplink, true},
		{"building/campus/gateway/bms-b01/status", KindStatus, true},
		{"building/campus/room/b03-2.14/measurement", KindMeasurement, true},
		{"vineyard/wartberg/plot/wartberg-03/risk", "", true}, // a derived event: a valid topic of no kind defined here
		{"vineyard/wartberg/device/soil-probe-07", "", false},
		{"vineyard/wartberg/device/soil-probe-07/measurement/x", "", false},
		{"vineyard/+/device/soil-probe-07/measurement", "", false},
		{"vineyard/wartberg/device/#/measurement", "", false},
		{"$SYS/wartberg/device/x/measurement", "", false},
		{"vineyard//device/x/measurement", "", false},
		{"vineyard/wart berg/device/x/measurement", "", false},
		{"vineyard/-wartberg/device/x/measurement", "", false},
		{"vineyard/wartberg/device/" + strings.Repeat("x", 65) + "/measurement", "", false},
	} {
		tp, err := ParseTopic(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ParseTopic(%q): error %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			continue
		}
		if tp.String() != tc.name {
			t.Errorf("ParseTopic(%q).String() = %q", tc.name, tp)
		}
		k, ok := tp.EventKind()
		if k != tc.kind || ok != (tc.kind != "") {
			t.Errorf("%q: kind %q %v, want %q", tc.name, k, ok, tc.kind)
		}
	}
	if got := NewTopic(DomainEnergy, "campus", AssetMeter, "el-b01-main", EventReading).String(); got != "energy/campus/meter/el-b01-main/reading" {
		t.Errorf("NewTopic: %s", got)
	}
	if got := Filter(DomainVineyard, "", AssetDevice, "", EventMeasurement); got != "vineyard/+/device/+/measurement" {
		t.Errorf("Filter: %s", got)
	}
	if got := Filter("", "", "", "", ""); got != "+/+/+/+/+" {
		t.Errorf("Filter: %s", got)
	}
}

func TestPointIDs(t *testing.T) {
	for _, ok := range []string{"a", "soil-probe-07/soilMoistureVwc", "el-b01-main/1-0:1.8.0", "loomi/check/wp01/lighting", "b03-2.14/co2"} {
		if err := ValidPointID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "a b", "a/+", "a/#", "é", strings.Repeat("a", 201), "1-0:1.8.0*255"} {
		if err := ValidPointID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseEUI(t *testing.T) {
	for in, want := range map[string]string{"a840410000000107": "A840410000000107", "2CF7F1C044000001": "2CF7F1C044000001"} {
		if got, err := ParseEUI(in); err != nil || got != want {
			t.Errorf("ParseEUI(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "A8404100000001", "A84041000000010G", "A8-40-41-00-00-00-01-07", "A8404100000001070"} {
		if _, err := ParseEUI(bad); err == nil {
			t.Errorf("ParseEUI(%q) accepted", bad)
		}
	}
}

func prop(m bus.Message, key string) string {
	for _, p := range m.Properties {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

func TestMessagePolicy(t *testing.T) {
	evs := goEvents()
	for _, tc := range []struct {
		topic   string
		e       Event
		retain  bool
		subject string
	}{
		{"vineyard/wartberg/device/soil-probe-07/measurement", evs["measurement lorawan"], true, ""},
		{"energy/campus/meter/el-b01-main/reading", evs["measurement meter"], true, "el-b01-main/1-0:1.8.0"},
		{"vineyard/wartberg/device/weather-station-01/status", evs["status"], true, ""},
		{"vineyard/wartberg/device/soil-probe-07/uplink", evs["uplink"], false, ""},
		{"robot/campus/robot/loomi/position", evs["position"], true, "loomi/position"},
		{"robot/campus/robot/loomi/check", evs["check"], false, "loomi/check/b04-escape"},
		{"robot/campus/robot/loomi/picture", evs["picture"], false, ""},
	} {
		tp, err := ParseTopic(tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMessage(tp, tc.e)
		if err != nil {
			t.Fatalf("%s: %v", tc.topic, err)
		}
		if m.Topic != tc.topic || m.QoS != 1 || m.Retain != tc.retain || m.ContentType != "application/json" {
			t.Errorf("%s: topic %s qos %d retain %v content type %q", tc.topic, m.Topic, m.QoS, m.Retain, m.ContentType)
		}
		k := tc.e.Kind()
		if prop(m, "specversion") != "1.0" || prop(m, "type") != "citymesh."+string(k)+".v1" || prop(m, "dataschema") != SchemaURL(k) ||
			prop(m, "source") != "/"+tc.topic[:strings.LastIndexByte(tc.topic, '/')] || prop(m, "id") == "" || prop(m, "subject") != tc.subject {
			t.Errorf("%s: CloudEvents properties %v", tc.topic, m.Properties)
		}
		if tm, err := time.Parse(time.RFC3339Nano, prop(m, "time")); err != nil || !tm.Equal(tc.e.Head().Time) {
			t.Errorf("%s: time property %q", tc.topic, prop(m, "time"))
		}
		if err := ValidateJSON(k, m.Payload); err != nil {
			t.Errorf("%s: %v", tc.topic, err)
		}
		// The same event gets the same id; the event's own id wins.
		m2, _ := NewMessage(tp, tc.e)
		if prop(m2, "id") != prop(m, "id") {
			t.Errorf("%s: id not stable", tc.topic)
		}
		gotTopic, back, err := ReadMessage(bus.Message{Topic: m.Topic, Payload: m.Payload})
		if err != nil || gotTopic != tp || !reflect.DeepEqual(back.Head().Time.UTC(), tc.e.Head().Time.UTC()) || back.Kind() != k {
			t.Errorf("%s: ReadMessage: %v %v", tc.topic, gotTopic, err)
		}
	}
	if m, _ := NewMessage(NewTopic(DomainVineyard, "wartberg", AssetDevice, "weather-station-01", EventStatus), evs["status"]); prop(m, "id") != "x-1" {
		t.Errorf("event id not used: %v", m.Properties)
	}
	// Refusals: wrong kind for the topic, another asset, unknown event
	// name, invalid event, bad topic.
	for name, tc := range map[string]struct {
		topic Topic
		e     Event
	}{
		"kind":    {NewTopic(DomainVineyard, "wartberg", AssetDevice, "soil-probe-07", EventUplink), evs["measurement lorawan"]},
		"asset":   {NewTopic(DomainVineyard, "wartberg", AssetDevice, "soil-probe-08", EventMeasurement), evs["measurement lorawan"]},
		"name":    {NewTopic(DomainVineyard, "wartberg", AssetDevice, "soil-probe-07", "data"), evs["measurement lorawan"]},
		"invalid": {NewTopic(DomainVineyard, "wartberg", AssetDevice, "a", EventMeasurement), NewMeasurement("a", t0, Source{})},
		"topic":   {NewTopic(DomainVineyard, "+", AssetDevice, "soil-probe-07", EventMeasurement), evs["measurement lorawan"]},
	} {
		if _, err := NewMessage(tc.topic, tc.e); err == nil {
			t.Errorf("NewMessage accepted a bad %s", name)
		}
	}
	good, _ := NewMessage(NewTopic(DomainVineyard, "wartberg", AssetDevice, "soil-probe-07", EventMeasurement), evs["measurement lorawan"])
	for name, m := range map[string]bus.Message{
		"other asset": {Topic: "vineyard/wartberg/device/soil-probe-08/measurement", Payload: good.Payload},
		"other kind":  {Topic: "vineyard/wartberg/device/soil-probe-07/status", Payload: good.Payload},
		"bad topic":   {Topic: "vineyard/wartberg/soil-probe-07/measurement", Payload: good.Payload},
		"unknown":     {Topic: "vineyard/wartberg/device/soil-probe-07/data", Payload: good.Payload},
		"not json":    {Topic: "vineyard/wartberg/device/soil-probe-07/measurement", Payload: []byte("21.5")},
	} {
		if _, _, err := ReadMessage(m); err == nil {
			t.Errorf("ReadMessage accepted %s", name)
		}
	}
}

func TestSchemasEmbedded(t *testing.T) {
	for _, k := range Kinds() {
		data, err := fs.ReadFile(Schemas(), string(k)+".schema.json")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			ID     string `json:"$id"`
			Schema string `json:"$schema"`
		}
		if err := json.Unmarshal(data, &doc); err != nil || doc.ID != SchemaURL(k) || doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $id %q $schema %q %v", k, doc.ID, doc.Schema, err)
		}
	}
	if err := ValidateJSON("weather", []byte(`{}`)); err == nil {
		t.Error("unknown kind accepted")
	}
}
