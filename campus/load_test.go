package campus

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/paulmach/orb"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
)

var errKinds = map[string]error{
	"ErrSyntax": ErrSyntax, "ErrUnknownField": ErrUnknownField, "ErrMissing": ErrMissing, "ErrBadID": ErrBadID,
	"ErrDuplicateID": ErrDuplicateID, "ErrUnknownReference": ErrUnknownReference, "ErrBadGeometry": ErrBadGeometry,
	"ErrOutOfRange": ErrOutOfRange, "ErrUnknownQuantity": ErrUnknownQuantity, "ErrUnitMismatch": ErrUnitMismatch,
	"ErrBadDevEUI": ErrBadDevEUI, "ErrBadInterval": ErrBadInterval, "ErrUnknownOBIS": ErrUnknownOBIS,
	"ErrUnknownDeviceType": ErrUnknownDeviceType, "ErrBadRoute": ErrBadRoute, "ErrFile": ErrFile, "ErrInvalid": ErrInvalid,
}

// Each testdata/minimal/bad-*.yaml breaks the minimal campus once. Its
// first line says which error and field it expects ("# want: ErrX
// field"); the line marked "# <- here" is where the error must point
// (for a route, the line the route's own error names).
func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/minimal/bad-*.yaml")
	if len(files) < 30 {
		t.Fatalf("only %d bad files", len(files))
	}
	covered := map[string]bool{}
	for _, f := range files {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "bad-"), ".yaml"), func(t *testing.T) {
			kindName, field, line := badFileWant(t, f)
			kind := errKinds[kindName]
			if kind == nil {
				t.Fatalf("unknown error kind %q", kindName)
			}
			covered[kindName] = true
			m, err := Load(f)
			if err == nil {
				t.Fatalf("loaded (%d points), want %s", len(m.Points), kindName)
			}
			if m != nil {
				t.Error("a model was returned with the error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %v is not campus.Errors", err)
			}
			if !errors.Is(err, kind) {
				t.Fatalf("error is not %s:\n%v", kindName, err)
			}
			for _, e := range errs {
				if !errors.Is(e, kind) || e.File != f || !strings.HasPrefix(e.Field, field) {
					continue
				}
				if line == 0 || e.Line == line || strings.Contains(e.Msg, fmt.Sprintf("line %d)", line)) {
					if strings.Count(e.Error(), ":") < 2 || e.Msg == "" {
						t.Errorf("error %q does not read file:line: field: message", e)
					}
					return
				}
			}
			t.Errorf("no %s at line %d field %q:\n%v", kindName, line, field, err)
		})
	}
	for name := range errKinds {
		if !covered[name] {
			t.Errorf("no bad file for %s", name)
		}
	}
}

// badFileWant reads a bad file's expectation.
func badFileWant(t *testing.T, path string) (kind, field string, line int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		s := sc.Text()
		if n == 1 {
			parts := strings.Fields(strings.TrimPrefix(s, "# want:"))
			if len(parts) < 1 {
				t.Fatalf("%s: first line %q is not '# want: ErrX field'", path, s)
			}
			kind = parts[0]
			if len(parts) > 1 {
				field = parts[1]
			}
		}
		if strings.HasSuffix(s, "# <- here") {
			line = n
		}
	}
	return kind, field, line
}

func TestLoadMinimal(t *testing.T) {
	m, err := Load("testdata/minimal/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// 2 rooms × 2 + 1 register + 2 devices × 4 + robot (position, battery, 1 check).
	if got := len(m.Points); got != 4+1+8+3 {
		t.Errorf("%d points", got)
	}
	if p, ok := m.Plot("p01"); !ok || len(p.Area) != 1 || p.Area[0][0][0] != (orb.Point{9.24, 49.159}) || len(p.Devices) != 2 {
		t.Errorf("plot from file: %+v", p)
	}
	if r, ok := m.Robot("loomi"); !ok || r.RouteFile != "route.yaml" || r.Route.ID != "minimal-patrol" {
		t.Errorf("robot: %+v", r)
	}
	if m.Location.String() != "UTC" {
		t.Errorf("default time zone %s", m.Location)
	}
}

func TestLoadSmall(t *testing.T) {
	m, err := Load("testdata/small/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Rooms: 7 offices × 4 points − 1 removed, aula and basement hall × 3;
	// meters 2 + 1 registers; devices 4 + 4; robot 2 + 2; 1 added point.
	if got, want := len(m.Points), 7*4-1+2*3+3+8+4+1; got != want {
		t.Errorf("%d points, want %d", got, want)
	}
	b, _ := m.Building("b01")
	wantRooms := []string{"b01-0.01", "b01-0.02", "b01-0.03", "b01-0.04", "b01-0.05", "b01-1.10", "b01-1.11", "b01-aula", "b01-u1.01"}
	if strings.Join(b.Rooms, " ") != strings.Join(wantRooms, " ") || b.Gateway != "bms-b01" || b.Location != (orb.Point{9.2124, 49.1482}) {
		t.Errorf("building: rooms %v gateway %s location %v", b.Rooms, b.Gateway, b.Location)
	}
	for id, want := range map[string]struct {
		quantity string
		unit     event.Unit
		topic    string
		tenant   string
	}{
		"b01-0.02/windowContact":        {"windowContact", event.One, "building/campus/room/b01-0.02/measurement", "uni"},
		"b01-aula/occupied":             {"occupancy", event.One, "building/campus/room/b01-aula/measurement", "uni"},
		"el-b01-main/1-0:2.8.0":         {"activeEnergyExport", event.KilowattHour, "energy/campus/meter/el-b01-main/reading", ""},
		"ht-b01-uni/6-0:1.0.0":          {"heatEnergy", event.MegawattHour, "energy/campus/meter/ht-b01-uni/reading", "uni"},
		"soil-probe-01/soilMoistureEc":  {"soilMoistureEc", event.MicrosiemensPerCentimetre, "vineyard/wartberg/device/soil-probe-01/measurement", "growers"},
		"npk-probe-01/battery":          {"batteryVoltage", event.Volt, "vineyard/wartberg/device/npk-probe-01/measurement", "growers"},
		"loomi/position":                {"location", event.Degree, "robot/campus/robot/loomi/position", ""},
		"loomi/check/b01-escape":        {"escapeRouteClear", event.One, "robot/campus/robot/loomi/check", ""},
		"b01/outdoorTemperature":        {"temperature", event.Celsius, "building/campus/building/b01/measurement", "uni"},
		"b01-u1.01/co2":                 {"co2", event.PartsPerMillion, "building/campus/room/b01-u1.01/measurement", "uni"},
		"soil-probe-01/soilMoistureVwc": {"soilMoistureVwc", event.Percent, "vineyard/wartberg/device/soil-probe-01/measurement", "growers"},
		"npk-probe-01/soilPhosphorus":   {"soilPhosphorus", event.MilligramPerKilogram, "vineyard/wartberg/device/npk-probe-01/measurement", "growers"},
		"el-b01-main/1-0:1.8.0":         {"activeEnergyImport", event.KilowattHour, "energy/campus/meter/el-b01-main/reading", ""},
		"loomi/battery":                 {"batteryLevel", event.Percent, "robot/campus/robot/loomi/status", ""},
		"loomi/check/b01-light":         {"lightState", event.One, "robot/campus/robot/loomi/check", ""},
		"b01-1.11/temperatureSetpoint":  {"temperatureSetpoint", event.Celsius, "building/campus/room/b01-1.11/measurement", "uni"},
		"soil-probe-01/soilTemperature": {"soilTemperature", event.Celsius, "vineyard/wartberg/device/soil-probe-01/measurement", "growers"},
		"npk-probe-01/soilNitrogen":     {"soilNitrogen", event.MilligramPerKilogram, "vineyard/wartberg/device/npk-probe-01/measurement", "growers"},
		"b01-aula/temperature":          {"temperature", event.Celsius, "building/campus/room/b01-aula/measurement", "uni"},
		"b01-0.01/temperature":          {"temperature", event.Celsius, "building/campus/room/b01-0.01/measurement", "uni"},
		"b01-0.01/relativeHumidity":     {"relativeHumidity", event.Percent, "building/campus/room/b01-0.01/measurement", "uni"},
		"npk-probe-01/soilPotassium":    {"soilPotassium", event.MilligramPerKilogram, "vineyard/wartberg/device/npk-probe-01/measurement", "growers"},
		"soil-probe-01/battery":         {"batteryVoltage", event.Volt, "vineyard/wartberg/device/soil-probe-01/measurement", "growers"},
		"b01-0.05/temperatureSetpoint":  {"temperatureSetpoint", event.Celsius, "building/campus/room/b01-0.05/measurement", "uni"},
		"b01-1.10/windowContact":        {"windowContact", event.One, "building/campus/room/b01-1.10/measurement", "uni"},
		"b01-0.03/relativeHumidity":     {"relativeHumidity", event.Percent, "building/campus/room/b01-0.03/measurement", "uni"},
		"b01-aula/co2":                  {"co2", event.PartsPerMillion, "building/campus/room/b01-aula/measurement", "uni"},
		"b01-u1.01/occupied":            {"occupancy", event.One, "building/campus/room/b01-u1.01/measurement", "uni"},
		"b01-0.04/windowContact":        {"windowContact", event.One, "building/campus/room/b01-0.04/measurement", "uni"},
		"b01-1.10/temperature":          {"temperature", event.Celsius, "building/campus/room/b01-1.10/measurement", "uni"},
		"b01-0.02/temperature":          {"temperature", event.Celsius, "building/campus/room/b01-0.02/measurement", "uni"},
		"b01-0.03/temperatureSetpoint":  {"temperatureSetpoint", event.Celsius, "building/campus/room/b01-0.03/measurement", "uni"},
		"b01-0.05/relativeHumidity":     {"relativeHumidity", event.Percent, "building/campus/room/b01-0.05/measurement", "uni"},
		"b01-1.11/windowContact":        {"windowContact", event.One, "building/campus/room/b01-1.11/measurement", "uni"},
		"b01-0.04/temperature":          {"temperature", event.Celsius, "building/campus/room/b01-0.04/measurement", "uni"},
		"b01-u1.01/temperature":         {"temperature", event.Celsius, "building/campus/room/b01-u1.01/measurement", "uni"},
		"b01-0.02/temperatureSetpoint":  {"temperatureSetpoint", event.Celsius, "building/campus/room/b01-0.02/measurement", "uni"},
		"b01-1.10/relativeHumidity":     {"relativeHumidity", event.Percent, "building/campus/room/b01-1.10/measurement", "uni"},
		"b01-0.01/temperatureSetpoint":  {"temperatureSetpoint", event.Celsius, "building/campus/room/b01-0.01/measurement", "uni"},
		"b01-0.05/windowContact":        {"windowContact", event.One, "building/campus/room/b01-0.05/measurement", "uni"},
		"b01-0.03/windowContact":        {"windowContact", event.One, "building/campus/room/b01-0.03/measurement", "uni"},
		"b01-1.11/temperature":          {"temperature", event.Celsius, "building/campus/room/b01-1.11/measurement", "uni"},
		"b01-0.04/relativeHumidity":     {"relativeHumidity", event.Percent, "building/campus/room/b01-0.04/measurement", "uni"},
		"b01-0.05/temperature":          {"temperature", event.Celsius, "building/campus/room/b01-0.05/measurement", "uni"},
		"b01-1.10/temperatureSetpoint":  {"temperatureSetpoint", event.Celsius, "building/campus/room/b01-1.10/measurement", "uni"},
		"b01-0.04/temperatureSetpoint":  {"temperatureSetpoint", event.Celsius, "building/campus/room/b01-0.04/measurement", "uni"},
		"b01-1.11/relativeHumidity":     {"relativeHumidity", event.Percent, "building/campus/room/b01-1.11/measurement", "uni"},
		"b01-0.02/relativeHumidity":     {"relativeHumidity", event.Percent, "building/campus/room/b01-0.02/measurement", "uni"},
		"b01-0.03/temperature":          {"temperature", event.Celsius, "building/campus/room/b01-0.03/measurement", "uni"},
	} {
		p, ok := m.Point(id)
		if !ok {
			t.Errorf("no point %s", id)
			continue
		}
		if p.Quantity != want.quantity || p.Unit != want.unit || p.Topic.String() != want.topic || p.Tenant != want.tenant {
			t.Errorf("%s: %s %s %s tenant %q, want %+v", id, p.Quantity, p.Unit, p.Topic, p.Tenant, want)
		}
	}
	// Removed, overridden and added points.
	if _, ok := m.Point("b01-0.01/windowContact"); ok {
		t.Error("removed point present")
	}
	if p, _ := m.Point("b01-aula/temperature"); p.Location != (orb.Point{9.2121, 49.1481}) || p.Name != "Aula front" {
		t.Errorf("override: %+v", p)
	}
	// Indexes.
	if d, ok := m.DeviceByEUI("A840410000000101"); !ok || d.ID != "soil-probe-01" {
		t.Errorf("by EUI: %v", d)
	}
	if d, ok := m.DeviceByEUI("a840410000000401"); !ok || d.ID != "npk-probe-01" || d.Interval.String() != "1h0m0s" || d.Type.ID != "dragino-lsnpk01" {
		t.Errorf("by lower-case EUI: %v", d)
	}
	if d, ok := m.DeviceOnNetwork(TheThingsStack, "hn-wartberg-vineyards", "soil-probe-01"); !ok || d.ID != "soil-probe-01" || d.Interval.String() != "20m0s" {
		t.Errorf("on network: %v", d)
	}
	if _, ok := m.DeviceOnNetwork(ChirpStack, "hn-wartberg-vineyards", "soil-probe-01"); ok {
		t.Error("found on the wrong network server")
	}
	o, _ := energy.ParseOBIS("1-0:2.8.0")
	if p, ok := m.MeterPoint("el-b01-main", o); !ok || p.ID != "el-b01-main/1-0:2.8.0" || p.Register.Digits != 8 || p.Register.Max != 1e8 {
		t.Errorf("meter point: %+v", p)
	}
	if got := len(m.PointsOf("b01-0.01")); got != 3 {
		t.Errorf("points of b01-0.01: %d", got)
	}
	if a, ok := m.Asset("hn-wartberg-tower"); !ok || a.Kind != event.AssetGateway || a.Domain != event.DomainVineyard {
		t.Errorf("gateway asset: %+v", a)
	}
	mt, _ := m.Meter("ht-b01-uni")
	if mt.Carrier != energy.Heat || mt.Tenant != "uni" || len(mt.Registers) != 1 || mt.Registers[0].Unit != event.MegawattHour {
		t.Errorf("meter: %+v", mt)
	}
	uni, _ := m.Tenant("uni")
	if uni.AreaM2["b01"] != 3*20+2*15+2*20+300 || len(uni.Meters) != 1 || len(uni.Rooms) != 9 {
		t.Errorf("tenant: %+v", uni)
	}
	if a, _ := m.Application("soil-twin"); a.Server != ChirpStack {
		t.Errorf("application: %+v", a)
	}
}

// A geometry file is read from the campus file's directory; a missing one
// is an error naming it; nothing outside the directory is read.
func TestParseReferencedFiles(t *testing.T) {
	base, err := os.ReadFile("testdata/minimal/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	geo, _ := os.ReadFile("testdata/minimal/geometry.geojson")
	route, _ := os.ReadFile("testdata/minimal/route.yaml")
	files := fstest.MapFS{"geometry.geojson": {Data: geo}, "route.yaml": {Data: route}}
	if _, err := Parse("x/campus.yaml", base, files); err != nil {
		t.Fatal(err)
	}
	_, err = Parse("x/campus.yaml", base, nil)
	if !errors.Is(err, ErrFile) {
		t.Errorf("no files: %v", err)
	}
	up := strings.Replace(string(base), "{file: geometry.geojson, id: p01}", "{file: ../geometry.geojson, id: p01}", 1)
	if _, err := Parse("x/campus.yaml", []byte(up), files); !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), "inside it") {
		t.Errorf("path outside: %v", err)
	}
	delete(files, "route.yaml")
	if _, err := Parse("x/campus.yaml", base, files); !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), "x/route.yaml") {
		t.Errorf("missing route: %v", err)
	}
}

func TestParseRefusesOddInput(t *testing.T) {
	for name, data := range map[string]string{
		"empty":        "",
		"scalar":       "campus\n",
		"two docs":     "campus: a\n---\ncampus: b\n",
		"list":         "- a\n",
		"tabs":         "campus: a\n\tsites: []\n",
		"alias bomb":   "a: &a [x, x]\nb: &b [*a, *a]\ncampus: *b\n",
		"huge series":  "campus: a\nsites: [{id: s, kind: campus, location: [9, 49]}]\nroom_types: {r: {points: [{quantity: temperature}]}}\nbuildings: [{id: b, site: s, floors: 1, rooms: [{floor: 0, count: 100000000, type: r}]}]\n",
		"no sites":     "campus: a\n",
		"bad timezone": "campus: a\ntimezone: Mars/Olympus\nsites: [{id: s, kind: campus, location: [9, 49]}]\n",
	} {
		if m, err := Parse(name, []byte(data), nil); err == nil {
			t.Errorf("%s: accepted (%d points)", name, len(m.Points))
		}
	}
}

func TestErrorsFormat(t *testing.T) {
	e := &Error{File: "campus.yaml", Line: 12, Column: 5, Field: "devices[3].dev_eui", Err: ErrBadDevEUI, Msg: `EUI "A8": want 16 hex digits`}
	if got := e.Error(); got != `campus.yaml:12:5: devices[3].dev_eui: EUI "A8": want 16 hex digits` {
		t.Errorf("%s", got)
	}
	es := Errors{e, {File: "campus.yaml", Err: ErrMissing, Msg: "empty file"}}
	if got := es.Error(); got != e.Error()+"\ncampus.yaml: empty file" || !errors.Is(es, ErrMissing) || !errors.Is(es, ErrBadDevEUI) {
		t.Errorf("%s", got)
	}
}

// Many mistakes in one file are all reported, up to MaxErrors.
func TestManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("campus: many\nsites: [{id: s, kind: campus, location: [9.2, 49.1]}]\napplications: [{id: a, server: tts, application: x}]\ndevices:\n")
	for i := range 80 {
		fmt.Fprintf(&b, "  - {id: d%d, type: dragino-lse01, dev_eui: BAD%d, application: a, site: s, location: [9.2, 49.1]}\n", i, i)
	}
	_, err := Parse("many.yaml", []byte(b.String()), nil)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != MaxErrors || errs[0].Line != 5 || errs[1].Line != 6 {
		t.Errorf("%d errors, first at %d", len(errs), errs[0].Line)
	}
}

// The example in docs/campus.md loads, and expands as its comments say.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/campus.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in docs/campus.md")
	}
	m, err := Parse("docs/campus.md", []byte(block), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b01-0.03/temperature", "b01-0.05/occupied", "b01-1.10/windowContact", "b01-1.11/temperature", "b01-u1.01/temperature",
		"b01-aula/occupied", "el-b01-main/1-0:2.8.0", "el-b01-uni/1-0:1.8.0", "ht-b01-uni/6-0:1.0.0", "soil-probe-01/battery", "loomi/check/b01-escape", "b01/outdoorTemperature"} {
		if _, ok := m.Point(id); !ok {
			t.Errorf("no point %s", id)
		}
	}
	if _, ok := m.Point("b01-0.01/windowContact"); ok {
		t.Error("removed point present")
	}
}

// A document whose aliases multiply — thousands of aliased buildings, each
// with thousands of aliased rooms — is refused quickly, not walked.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("campus: bomb\nsites: [{id: s, kind: campus, location: [9.2, 49.1]}]\n")
	b.WriteString("room: &r {floor: 0, count: 1, type: t}\nbuilding: &b {id: b, site: s, floors: 1, rooms: [")
	for j := range 20000 {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*r")
	}
	b.WriteString("]}\nbuildings: [")
	for j := range 20000 {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*b")
	}
	b.WriteString("]\n")
	done := make(chan error, 1)
	go func() { _, err := Parse("bomb.yaml", []byte(b.String()), nil); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("accepted")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still parsing after 10 s")
	}
}
