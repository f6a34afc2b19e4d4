package campus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/paulmach/orb"
)

// ReferencePoints is the number of information points of the
// Bildungscampus Heilbronn, as its smart-campus team reports it (RFID
// Journal, "A Blueprint For the Future of Urban Living", 15 April 2026:
// "35.666 information points").
const ReferencePoints = 35666

// GenerateOptions choose the campus Generate builds.
type GenerateOptions struct {
	// Points is the exact number of information points; 0 means
	// ReferencePoints. Smaller campuses have fewer buildings and plots,
	// larger ones more rooms per building. Between MinGeneratePoints and
	// MaxGeneratePoints.
	Points int
}

// SmallPoints is the size of the small example campus
// (examples/campus/small/), for tests and demos that want the reference's
// shape without its size.
const SmallPoints = 500

// Bounds of GenerateOptions.Points.
const (
	MinGeneratePoints = 150
	MaxGeneratePoints = 1_000_000
)

// Files is a generated campus: file name → content. campus.yaml refers to
// geometry.geojson (buildings' footprints, plots' outlines) and
// loomi-route.yaml (the robot's route) beside it.
type Files map[string][]byte

// Names of the generated files.
const (
	CampusFile   = "campus.yaml"
	GeometryFile = "geometry.geojson"
	RouteFile    = "loomi-route.yaml"
)

// WriteDir writes the files into dir, creating it if needed.
func (f Files) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range f {
			if !yield(k) {
				return
			}
		}
	}) {
		if err := os.WriteFile(filepath.Join(dir, name), f[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Model parses the generated files.
func (f Files) Model() (*Model, error) {
	fsys := fstest.MapFS{}
	for name, data := range f {
		fsys[name] = &fstest.MapFile{Data: data}
	}
	return Parse(CampusFile, f[CampusFile], fsys)
}

// refBuilding is one building of the reference campus.
type refBuilding struct {
	name      string
	use       string
	tenants   []string // by blocks of floors, bottom up
	floors    int
	basements int
	w, d      float64 // footprint east-west and north-south, metres
}

// The campus's tenants. Schwarz Campus Service (the operator) and
// Fraunhofer IAO (which runs the Smart Campus Initiative) are named in the
// project's sources; the others are described, not named.
var refTenants = [][2]string{
	{"campus-service", "Schwarz Campus Service (campus operations and facility management)"},
	{"fraunhofer-iao", "Fraunhofer IAO (Smart Campus Initiative)"},
	{"tech-university", "Technical university, Heilbronn campus"},
	{"applied-sciences", "University of applied sciences"},
	{"state-university", "Cooperative state university"},
	{"business-school", "Graduate school of management"},
	{"science-centre", "Technology experience centre for children"},
	{"startup-centre", "Start-up and innovation centre"},
	{"student-services", "Student services (refectory, advice)"},
	{"library", "Campus library and learning centre"},
	{"wartberg-growers", "Wine growers of the Wartberg"},
}

// The buildings, west to east and north to south (rows of six). Names and
// uses are invented; footprints are of plausible size.
var refBuildings = []refBuilding{
	{"Campus forum and operations centre", "office", []string{"campus-service"}, 4, 1, 62, 28},
	{"Lecture hall centre", "lecture", []string{"tech-university"}, 3, 1, 74, 42},
	{"Library and learning centre", "library", []string{"library"}, 5, 1, 58, 40},
	{"Refectory", "refectory", []string{"student-services"}, 2, 1, 54, 36},
	{"Technical university, building A", "office", []string{"tech-university"}, 6, 1, 68, 24},
	{"Technical university, building B", "lab", []string{"tech-university"}, 5, 1, 64, 30},
	{"Applied sciences, building C", "office", []string{"applied-sciences"}, 5, 1, 70, 22},
	{"Applied sciences, laboratories", "lab", []string{"applied-sciences"}, 4, 1, 60, 32},
	{"Cooperative state university", "office", []string{"state-university"}, 6, 1, 66, 24},
	{"Graduate school of management", "office", []string{"business-school"}, 5, 1, 52, 26},
	{"Technology experience centre", "science", []string{"science-centre"}, 4, 1, 80, 48},
	{"Technology experience centre, workshops", "lab", []string{"science-centre"}, 3, 0, 46, 28},
	{"Research building (Smart Campus)", "lab", []string{"fraunhofer-iao", "tech-university"}, 4, 1, 56, 28},
	{"Start-up centre", "office", []string{"startup-centre"}, 5, 1, 48, 26},
	{"Seminar building", "lecture", []string{"applied-sciences", "state-university"}, 3, 0, 60, 30},
	{"Institutes building", "office", []string{"tech-university", "business-school"}, 6, 1, 64, 22},
	{"Student services centre", "office", []string{"student-services"}, 3, 0, 40, 22},
	{"Laboratory building", "lab", []string{"applied-sciences"}, 4, 1, 62, 30},
	{"Lecture building west", "lecture", []string{"state-university"}, 3, 1, 66, 38},
	{"Office building north", "office", []string{"tech-university", "applied-sciences"}, 5, 1, 72, 22},
	{"Office building south", "office", []string{"business-school", "startup-centre"}, 5, 1, 58, 24},
	{"Energy centre", "energy", []string{"campus-service"}, 2, 1, 40, 30},
	{"Sports and health centre", "sport", []string{"student-services"}, 2, 0, 56, 40},
	{"Guest house", "office", []string{"campus-service"}, 4, 0, 44, 18},
}

// Average room area by use, m² (interior rooms are 60 % of it).
var useArea = map[string]float64{
	"office": 22, "lecture": 55, "library": 40, "refectory": 70, "lab": 34, "science": 65, "energy": 90, "sport": 80,
}

// The wine-growing plots' grape varieties, in turn (varieties grown in
// Württemberg).
var varieties = []string{"Trollinger", "Riesling", "Lemberger", "Schwarzriesling", "Samtrot", "Muskat-Trollinger", "Spätburgunder", "Kerner"}

// Reference positions (longitude, latitude).
var (
	campusCentre   = orb.Point{9.2125, 49.1482}
	wartbergCentre = orb.Point{9.2410, 49.1600}
)

// local converts metres east and north of origin into longitude and
// latitude (equirectangular, exact enough over a campus), rounded to 1e-7°.
func local(origin orb.Point, east, north float64) orb.Point {
	const mPerDegLat = 111320.0
	mPerDegLon := mPerDegLat * math.Cos(origin[1]*math.Pi/180)
	return orb.Point{round7(origin[0] + east/mPerDegLon), round7(origin[1] + north/mPerDegLat)}
}

// yq quotes a text for YAML: double quotes, with backslash and quote
// escaped (other characters, UTF-8 included, stand as they are).
func yq(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

func fmtCoord(v float64) string { return strconv.FormatFloat(round7(v), 'f', -1, 64) }

func fmtPoint(p orb.Point) string { return "[" + fmtCoord(p[0]) + ", " + fmtCoord(p[1]) + "]" }

// genBuilding is a building as generated.
type genBuilding struct {
	ref        refBuilding
	id         string
	x, y       float64 // centre, metres east and north of the campus centre
	footprint  orb.Ring
	floorRooms []int // rooms per floor above ground
	interior   []int // of which interior
}

// genPlot is a plot as generated.
type genPlot struct {
	id, name, variety string
	x, y              float64
	ring              orb.Ring
}

// Generate builds a campus with exactly opts.Points information points:
// the Bildungscampus Heilbronn (docs/campus.md, "The reference campus").
// The same options always give the same bytes.
func Generate(opts GenerateOptions) (Files, error) {
	total := opts.Points
	if total == 0 {
		total = ReferencePoints
	}
	if total < MinGeneratePoints || total > MaxGeneratePoints {
		return nil, fmt.Errorf("campus generate: %d points; want %d..%d", total, MinGeneratePoints, MaxGeneratePoints)
	}
	f := float64(total) / ReferencePoints
	nb := min(len(refBuildings), max(1, int(math.Round(float64(len(refBuildings))*f))))
	np := min(14, max(1, int(math.Round(14*f))))

	g := &generator{}
	g.layoutBuildings(nb)
	g.layoutPlots(np)
	fixed := g.meterPoints() + g.devicePoints() + g.robotPoints()
	rooms := total - fixed
	if err := g.allocateRooms(rooms); err != nil {
		return nil, fmt.Errorf("campus generate: %d points: %w", total, err)
	}
	files := Files{
		CampusFile:   g.campusYAML(total),
		GeometryFile: g.geometryJSON(),
		RouteFile:    g.routeYAML(),
	}
	return files, nil
}

type generator struct {
	buildings []*genBuilding
	plots     []*genPlot
	route     []routeStop
}

func (g *generator) layoutBuildings(n int) {
	for i := range n {
		ref := refBuildings[i]
		row, col := i/6, i%6
		b := &genBuilding{ref: ref, id: fmt.Sprintf("b%02d", i+1), x: -275 + float64(col)*110, y: 150 - float64(row)*100}
		// A slight offset per building so the rows are not a ruler's.
		b.x += float64((i*37)%17) - 8
		b.y += float64((i*53)%13) - 6
		hw, hd := ref.w/2, ref.d/2
		for _, c := range [][2]float64{{-hw, -hd}, {hw, -hd}, {hw, hd}, {-hw, hd}, {-hw, -hd}} {
			b.footprint = append(b.footprint, local(campusCentre, b.x+c[0], b.y+c[1]))
		}
		g.buildings = append(g.buildings, b)
	}
}

func (g *generator) layoutPlots(n int) {
	for i := range n {
		row, col := i/7, i%7
		p := &genPlot{id: fmt.Sprintf("wartberg-%02d", i+1), variety: varieties[i%len(varieties)],
			x: -390 + float64(col)*130, y: -40 + float64(row)*80}
		p.name = fmt.Sprintf("Wartberg, %s slope, terrace %d", [2]string{"lower", "upper"}[row%2], col+1)
		// A terrace: a slightly skewed quadrilateral about 110 m × 60 m.
		for _, c := range [][2]float64{{-55, -28}, {55, -32}, {58, 28}, {-52, 32}, {-55, -28}} {
			p.ring = append(p.ring, local(wartbergCentre, p.x+c[0], p.y+c[1]))
		}
		g.plots = append(g.plots, p)
	}
}

// Meter types of the reference campus: their registers.
var refMeterTypes = []struct {
	id, description string
	registers       []string // obis:digits
}{
	{"electricity-main", "main electricity meter: import total and tariffs, export (PV), power", []string{"1-0:1.8.0:9", "1-0:1.8.1:9", "1-0:1.8.2:9", "1-0:2.8.0:9", "1-0:1.7.0:0"}},
	{"electricity-sub", "electricity sub-meter of a floor", []string{"1-0:1.8.0:8"}},
	{"heat-main", "heat meter at the district heating substation", []string{"6-0:1.0.0:8"}},
	{"heat-sub", "heat meter of a floor's heating circuit", []string{"6-0:1.0.0:7"}},
	{"cooling-main", "cooling energy meter", []string{"5-0:1.0.0:8"}},
	{"water-main", "cold water main meter", []string{"8-0:1.0.0:7"}},
	{"hot-water", "hot water meter", []string{"9-0:1.0.0:7"}},
	{"gas-main", "gas meter: operating and normalised volume", []string{"7-0:3.0.0:8", "7-0:13.2.0:8"}},
}

func meterTypeRegisters(id string) int {
	for _, t := range refMeterTypes {
		if t.id == id {
			return len(t.registers)
		}
	}
	return 0
}

// meter is one meter of a building: id, type, parent, tenant.
type genMeter struct{ id, typ, parent, tenant string }

// meters lists a building's meters: main meters by use, and electricity
// and heat sub-meters per floor.
func (b *genBuilding) meters() []genMeter {
	id := b.id
	ms := []genMeter{{"el-" + id + "-main", "electricity-main", "", ""}, {"ht-" + id + "-main", "heat-main", "", ""}, {"wa-" + id + "-main", "water-main", "", ""}}
	switch b.ref.use {
	case "lecture", "library", "lab", "science":
		ms = append(ms, genMeter{"co-" + id + "-main", "cooling-main", "", ""})
	case "refectory", "sport":
		ms = append(ms, genMeter{"hw-" + id + "-main", "hot-water", "", ""})
	case "energy":
		ms = append(ms, genMeter{"gs-" + id + "-main", "gas-main", "", ""})
	}
	for fl := 0; fl < b.ref.floors; fl++ {
		t := b.floorTenant(fl)
		ms = append(ms, genMeter{fmt.Sprintf("el-%s-f%d", id, fl), "electricity-sub", "el-" + id + "-main", t},
			genMeter{fmt.Sprintf("ht-%s-f%d", id, fl), "heat-sub", "ht-" + id + "-main", t})
	}
	return ms
}

// floorTenant is the tenant of a floor: the building's tenants take blocks
// of floors, bottom up.
func (b *genBuilding) floorTenant(floor int) string {
	return b.ref.tenants[floor*len(b.ref.tenants)/b.ref.floors]
}

func (g *generator) meterPoints() int {
	n := 0
	for _, b := range g.buildings {
		for _, m := range b.meters() {
			n += meterTypeRegisters(m.typ)
		}
	}
	return n
}

// Devices per plot, and one weather station per four plots.
const (
	soilProbesPerPlot  = 3
	leafSensorsPerPlot = 2
	plotsPerStation    = 4
)

// genDevice is a device as generated.
type genDevice struct {
	id, typ, eui, app, plot, interval string
	at                                orb.Point
}

func (g *generator) devices() []genDevice {
	var out []genDevice
	counters := map[string]int{}
	add := func(prefix, typ, app, interval string, p *genPlot, frac, across float64) {
		counters[prefix]++
		n := counters[prefix]
		var eui string
		switch typ {
		case "sensecap-s2120":
			eui = fmt.Sprintf("2CF7F1C0%08X", n)
		default:
			code := map[string]int{"dragino-lse01": 1, "dragino-llms01": 2, "dragino-lsph01": 3, "dragino-lsnpk01": 4}[typ]
			eui = fmt.Sprintf("A84041%02X%08X", code, n)
		}
		out = append(out, genDevice{id: fmt.Sprintf("%s-%02d", prefix, n), typ: typ, eui: eui, app: app, plot: p.id, interval: interval,
			at: local(wartbergCentre, p.x-45+90*frac, p.y+across)})
	}
	for i, p := range g.plots {
		if i%plotsPerStation == 0 {
			add("weather-station", "sensecap-s2120", "wartberg-ttn", "", p, 0.5, 18)
		}
		for k := range soilProbesPerPlot {
			add("soil-probe", "dragino-lse01", "wartberg-ttn", "", p, (float64(k)+0.5)/soilProbesPerPlot, -8)
		}
		for k := range leafSensorsPerPlot {
			add("leaf-sensor", "dragino-llms01", "wartberg-ttn", "", p, (float64(k)+0.5)/leafSensorsPerPlot, 4)
		}
		add("ph-probe", "dragino-lsph01", "soil-twin", "1h", p, 0.3, -2)
		add("npk-probe", "dragino-lsnpk01", "soil-twin", "1h", p, 0.7, -2)
	}
	return out
}

func (g *generator) devicePoints() int {
	n := 0
	for _, d := range g.devices() {
		t, _ := LookupDeviceType(d.typ)
		n += len(t.Fields)
	}
	return n
}

// routeStop is one waypoint of the robot's route with its checks.
type routeStop struct {
	id, name string
	at       orb.Point
	checks   [][4]string // id, kind, asset, schedule
}

// buildRoute lays the robot's patrol: from its dock at the first building
// along the rows (alternating direction), a stop at each building's south
// entrance, gates with bollards, and back to the dock.
func (g *generator) buildRoute() []routeStop {
	var stops []routeStop
	dock := g.buildings[0]
	stops = append(stops, routeStop{id: "dock", name: "Charging dock, " + dock.ref.name, at: local(campusCentre, dock.x-dock.ref.w/2-6, dock.y-dock.ref.d/2-6)})
	rows := (len(g.buildings) + 5) / 6
	gate := 0
	for r := range rows {
		var row []*genBuilding
		for c := range 6 {
			if i := r*6 + c; i < len(g.buildings) {
				row = append(row, g.buildings[i])
			}
		}
		if r%2 == 1 {
			slices.Reverse(row)
		}
		for k, b := range row {
			s := routeStop{name: b.ref.name + ", south entrance", at: local(campusCentre, b.x, b.y-b.ref.d/2-5)}
			s.checks = append(s.checks, [4]string{b.id + "-light", "lighting", b.id + "-foyer-lighting", "lighting-foyer"},
				[4]string{b.id + "-escape", "escape_route", b.id + "-escape-route", ""})
			if n, _ := strconv.Atoi(b.id[1:]); n%2 == 0 {
				sched := "hvac-office"
				if b.ref.use == "lecture" || b.ref.use == "library" {
					sched = "hvac-lecture"
				}
				s.checks = append(s.checks, [4]string{b.id + "-hvac", "hvac_setpoint", roomID(b.id, 0, 1), sched})
			}
			stops = append(stops, s)
			// A gate with a bollard and path lighting at the end of each
			// row but the last.
			if k == len(row)-1 && r < rows-1 && gate < 3 {
				gate++
				name := [...]string{"north", "east", "delivery"}[gate-1]
				gs := routeStop{id: "gate-" + name, name: "Gate " + name + ", bollard and footpath", at: local(campusCentre, b.x+float64(1-2*(r%2))*(b.ref.w/2+20), b.y-50)}
				sched := "bollard-closed"
				if name == "delivery" {
					sched = "bollard-delivery"
				}
				gs.checks = [][4]string{{"gate-" + name + "-bollard", "bollard", "bollard-" + name, sched},
					{"gate-" + name + "-path-light", "lighting", "footpath-" + name + "-lighting", "lighting-paths"}}
				stops = append(stops, gs)
			}
		}
	}
	stops = append(stops, routeStop{name: "Back at the dock", at: stops[0].at})
	for i := range stops {
		if stops[i].id == "" || stops[i].id == "dock" {
			stops[i].id = fmt.Sprintf("wp%02d", i+1)
		}
	}
	return stops
}

func (g *generator) robotPoints() int {
	g.route = g.buildRoute()
	n := 2 // position, battery
	for _, s := range g.route {
		n += len(s.checks)
	}
	return n
}

// Points of the reference room types.
var (
	roomPoints     = []string{"temperature", "temperatureSetpoint", "relativeHumidity", "co2", "occupancy", "windowContact", "heatingValvePosition", "lightState"}
	interiorPoints = []string{"temperature", "temperatureSetpoint", "relativeHumidity", "co2", "occupancy", "heatingValvePosition", "lightState"}
)

// allocateRooms gives the buildings' floors rooms with exactly points
// information points: about a fifth of the rooms are interior rooms (no
// window, one point fewer). Rooms go to floors by floor area (largest
// remainder), at least one per floor.
func (g *generator) allocateRooms(points int) error {
	lp, ip := len(roomPoints), len(interiorPoints)
	n := int(math.Round(float64(points) / (0.8*float64(lp) + 0.2*float64(ip))))
	for n > 0 && lp*n-points < 0 {
		n++
	}
	for n > 0 && (lp-ip)*n < lp*n-points {
		n--
	}
	interior := lp*n - points // each interior room has lp−ip = 1 point fewer
	floors := 0
	for _, b := range g.buildings {
		floors += b.ref.floors
	}
	if n < floors || interior < 0 || interior > n {
		return fmt.Errorf("too few points for %d floors' rooms", floors)
	}
	// Rooms by floor area, per floor.
	var weights []float64
	for _, b := range g.buildings {
		for range b.ref.floors {
			weights = append(weights, b.ref.w*b.ref.d*0.7/useArea[b.ref.use])
		}
	}
	perFloor := apportion(n, weights, 1)
	perFloorInterior := apportionCapped(interior, perFloor)
	k := 0
	for _, b := range g.buildings {
		b.floorRooms = perFloor[k : k+b.ref.floors]
		b.interior = perFloorInterior[k : k+b.ref.floors]
		k += b.ref.floors
	}
	return nil
}

// apportion splits n into len(weights) parts proportional to weights, each
// at least least, by the largest remainder.
func apportion(n int, weights []float64, least int) []int {
	out := make([]int, len(weights))
	rest := n - least*len(weights)
	sum := 0.0
	for _, w := range weights {
		sum += w
	}
	type rem struct {
		i int
		r float64
	}
	var rems []rem
	given := 0
	for i, w := range weights {
		share := float64(rest) * w / sum
		out[i] = least + int(math.Floor(share))
		given += int(math.Floor(share))
		rems = append(rems, rem{i, share - math.Floor(share)})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.r > b.r:
			return -1
		case a.r < b.r:
			return 1
		}
		return a.i - b.i
	})
	for j := 0; j < rest-given; j++ {
		out[rems[j].i]++
	}
	return out
}

// apportionCapped splits n over the parts proportional to caps, no part
// above its cap.
func apportionCapped(n int, caps []int) []int {
	w := make([]float64, len(caps))
	for i, c := range caps {
		w[i] = float64(c)
	}
	out := apportion(n, w, 0)
	// Move any excess over a cap to the next part with room.
	excess := 0
	for i := range out {
		if out[i] > caps[i] {
			excess += out[i] - caps[i]
			out[i] = caps[i]
		}
	}
	for i := 0; excess > 0 && i < len(out); i++ {
		add := min(excess, caps[i]-out[i])
		out[i] += add
		excess -= add
	}
	return out
}

// campusYAML writes campus.yaml.
func (g *generator) campusYAML(total int) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	reference := total == ReferencePoints
	if reference {
		w("# The reference campus: the Bildungscampus Heilbronn with its %d information points.\n", total)
	} else {
		w("# A campus after the Bildungscampus Heilbronn with %d information points.\n", total)
	}
	w("#\n# Generated by `citymesh campus generate` (campus.Generate); change the generator, not\n")
	w("# this file. SYNTHETIC: the site positions follow the real campus (the former Suedbahnhof\n")
	w("# area) and the Wartberg vineyards, but the buildings, rooms, meters, tenants' floors, plots,\n")
	w("# devices and the route are invented. docs/campus.md describes the format and the composition.\n")
	if reference {
		w("campus: bildungscampus-heilbronn\nname: Bildungscampus Heilbronn (reference campus, synthetic)\n")
	} else {
		w("campus: bildungscampus-%d\nname: Bildungscampus Heilbronn, %d points (synthetic)\n", total, total)
	}
	w("timezone: Europe/Berlin\n\n")
	w("sites:\n")
	w("  - {id: campus, kind: campus, name: Bildungscampus Heilbronn, location: %s, radius_m: 1500}\n", fmtPoint(campusCentre))
	w("  - {id: wartberg, kind: vineyard, name: Wartberg vineyards, location: %s, radius_m: 1500}\n\n", fmtPoint(wartbergCentre))

	w("tenants:\n")
	for _, t := range refTenants {
		w("  - {id: %s, name: %s}\n", t[0], yq(t[1]))
	}
	w("\napplications:\n")
	w("  # The Things Network (The Things Stack v3): weather stations, soil moisture and leaf sensors.\n")
	w("  - {id: wartberg-ttn, server: tts, application: hn-wartberg-vineyards, tenant: ttn, address: eu1.cloud.thethings.network}\n")
	w("  # The soil twin's own ChirpStack v4: pH and NPK probes.\n")
	w("  - {id: soil-twin, server: chirpstack, application: 6a0b3f1e-9a55-4c3e-b2f1-0f0c7d2e8a11, tenant: 52f14cd4-c6f1-4fbd-8f87-4025e1d49242}\n\n")

	w("gateways:\n")
	w("  - {id: hn-wartberg-north, kind: lorawan, site: wartberg, eui: A84041FFFF2A0001, location: %s}\n", fmtPoint(local(wartbergCentre, -60, 150)))
	w("  - {id: hn-wartberg-east, kind: lorawan, site: wartberg, eui: A84041FFFF2A0002, location: %s}\n", fmtPoint(local(wartbergCentre, 480, 60)))
	b0 := g.buildings[0]
	w("  - {id: hn-campus-roof, kind: lorawan, site: campus, eui: A84041FFFF2A0003, location: %s}\n", fmtPoint(local(campusCentre, b0.x, b0.y)))
	for _, bl := range g.buildings {
		w("  - {id: bms-%s, kind: building, building: %s}\n", bl.id, bl.id)
	}

	w("\nroom_types:\n")
	w("  room:\n    description: a room with windows\n    points:\n")
	for _, q := range roomPoints {
		w("      - {quantity: %s}\n", q)
	}
	w("  interior-room:\n    description: a room without windows (no window contact)\n    points:\n")
	for _, q := range interiorPoints {
		w("      - {quantity: %s}\n", q)
	}

	w("\nmeter_types:\n")
	for _, t := range refMeterTypes {
		w("  %s:\n    description: %s\n    registers:\n", t.id, yq(t.description))
		for _, r := range t.registers {
			code := r[:strings.LastIndexByte(r, ':')]
			digits := r[strings.LastIndexByte(r, ':')+1:]
			if digits == "0" {
				w("      - {obis: %q}\n", code)
			} else {
				w("      - {obis: %q, digits: %s}\n", code, digits)
			}
		}
	}

	w("\nbuildings:\n")
	for _, bl := range g.buildings {
		w("  - id: %s\n    name: %s\n    site: campus\n    tenant: %s\n    floors: %d\n", bl.id, yq(bl.ref.name), bl.ref.tenants[0], bl.ref.floors)
		if bl.ref.basements > 0 {
			w("    basements: %d\n", bl.ref.basements)
		}
		w("    footprint: {file: %s, id: %s}\n    rooms:\n", GeometryFile, bl.id)
		area := useArea[bl.ref.use]
		for fl := range bl.ref.floors {
			tenant := ""
			if t := bl.floorTenant(fl); t != bl.ref.tenants[0] {
				tenant = ", tenant: " + t
			}
			if n := bl.floorRooms[fl] - bl.interior[fl]; n > 0 {
				w("      - {floor: %d, count: %d, type: room, area_m2: %g%s}\n", fl, n, area, tenant)
			}
			if n := bl.interior[fl]; n > 0 {
				w("      - {floor: %d, count: %d, type: interior-room, area_m2: %g%s}\n", fl, n, math.Round(area*0.6), tenant)
			}
		}
	}

	w("\nmeters:\n")
	for _, bl := range g.buildings {
		for _, m := range bl.meters() {
			w("  - {id: %s, type: %s, building: %s", m.id, m.typ, bl.id)
			if m.parent != "" {
				w(", parent: %s", m.parent)
			}
			if m.tenant != "" {
				w(", tenant: %s", m.tenant)
			}
			w("}\n")
		}
	}

	w("\nplots:\n")
	for _, p := range g.plots {
		w("  - {id: %s, name: %s, site: wartberg, tenant: wartberg-growers, variety: %s, area: {file: %s, id: %s}}\n",
			p.id, yq(p.name), yq(p.variety), GeometryFile, p.id)
	}

	w("\ndevices:\n")
	for _, d := range g.devices() {
		w("  - {id: %s, type: %s, dev_eui: %s, application: %s, plot: %s, location: %s", d.id, d.typ, d.eui, d.app, d.plot, fmtPoint(d.at))
		if d.interval != "" {
			w(", interval: %s", d.interval)
		}
		w("}\n")
	}

	w("\nrobots:\n")
	w("  - {id: loomi, name: Loomi, site: campus, tenant: campus-service, route: {file: %s}}\n", RouteFile)
	return b.Bytes()
}

// routeYAML writes the robot's route in package robot's format.
func (g *generator) routeYAML() []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Loomi's night patrol on the reference campus, in the robot route format (docs/models/robot.md).\n")
	w("# Generated by `citymesh campus generate`; SYNTHETIC: the route, assets and schedules are invented.\n")
	w("id: loomi-night-patrol\nname: Loomi night patrol (synthetic)\ntimezone: Europe/Berlin\ncorridor_m: 6\narrival_m: 3\n\n")
	w(`schedules:
  hvac-lecture:
    default: {min: 16, max: 18}
    slots:
      - {days: mon-fri, from: "07:00", to: "20:00", min: 20, max: 22}
      - {days: sat, from: "08:00", to: "14:00", min: 20, max: 22}
  hvac-office:
    default: {min: 16, max: 18}
    slots:
      - {days: mon-fri, from: "06:30", to: "19:00", min: 20, max: 23}
  bollard-closed:
    default: {state: up}
  bollard-delivery:
    default: {state: up}
    slots:
      - {days: mon-fri, from: "06:00", to: "10:00", state: down}
  lighting-paths:
    default: {state: "off"}
    slots:
      - {days: daily, from: "17:00", to: "07:00", state: "on"}
  lighting-foyer:
    default: {state: "off"}
    slots:
      - {days: mon-fri, from: "07:00", to: "22:00", state: "on"}

waypoints:
`)
	for _, s := range g.route {
		w("  - id: %s\n    name: %s\n    lat: %s\n    lon: %s\n", s.id, yq(s.name), fmtCoord(s.at[1]), fmtCoord(s.at[0]))
		if len(s.checks) > 0 {
			w("    checks:\n")
			for _, c := range s.checks {
				if c[3] == "" {
					w("      - {id: %s, kind: %s, asset: %s}\n", c[0], c[1], c[2])
				} else {
					w("      - {id: %s, kind: %s, asset: %s, schedule: %s}\n", c[0], c[1], c[2], c[3])
				}
			}
		}
	}
	return b.Bytes()
}

// geometryJSON writes the footprints and plot outlines as a GeoJSON
// FeatureCollection whose features carry the asset ids.
func (g *generator) geometryJSON() []byte {
	type geometry struct {
		Type        string        `json:"type"`
		Coordinates [][][]float64 `json:"coordinates"`
	}
	type feature struct {
		Type       string            `json:"type"`
		ID         string            `json:"id"`
		Properties map[string]string `json:"properties"`
		Geometry   geometry          `json:"geometry"`
	}
	ring := func(r orb.Ring) [][][]float64 {
		out := make([][]float64, len(r))
		for i, p := range r {
			out[i] = []float64{round7(p[0]), round7(p[1])}
		}
		return [][][]float64{out}
	}
	var feats []feature
	for _, b := range g.buildings {
		feats = append(feats, feature{"Feature", b.id, map[string]string{"kind": "building", "name": b.ref.name}, geometry{"Polygon", ring(b.footprint)}})
	}
	for _, p := range g.plots {
		feats = append(feats, feature{"Feature", p.id, map[string]string{"kind": "plot", "name": p.name, "variety": p.variety}, geometry{"Polygon", ring(p.ring)}})
	}
	var b bytes.Buffer
	b.WriteString("{\"type\": \"FeatureCollection\", \"features\": [\n")
	for i, f := range feats {
		data, _ := json.Marshal(f) // plain strings and numbers: cannot fail
		b.Write(data)
		if i < len(feats)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	return b.Bytes()
}
