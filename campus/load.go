package campus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // campus files name their time zone; hosts without zoneinfo load them too

	"github.com/paulmach/orb"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/robot"
)

// Limits of what Parse accepts, so that a hostile or mistaken file cannot
// exhaust memory.
const (
	// MaxFileBytes bounds the campus file itself.
	MaxFileBytes = 32 << 20
	// MaxPoints bounds the number of information points after expansion.
	MaxPoints = 2_000_000
	// MaxRoomsPerSeries bounds a room series' count.
	MaxRoomsPerSeries = 10_000
)

// DefaultSiteRadiusM is how far from its site's location an asset may be
// when the site does not say (radius_m).
const DefaultSiteRadiusM = 5000.0

// Load reads the campus file at path and the geometry and route files it
// refers to (paths relative to its directory), expands every template
// into its information points and validates the whole. On failure the
// error is an Errors listing each mistake with file, line and field.
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(path, data, os.DirFS(filepath.Dir(path)))
}

// Parse reads a campus file's content; name names it in errors and files
// holds the files it refers to (nil: references are errors). Load calls
// it; tests and fuzzing call it directly.
func Parse(name string, data []byte, files fs.FS) (*Model, error) {
	l := &loader{file: name, files: files, src: data, geoCache: map[string]any{}}
	if len(data) > MaxFileBytes {
		return nil, Errors{{File: name, Err: ErrInvalid, Msg: fmt.Sprintf("larger than %d bytes", MaxFileBytes)}}
	}
	return l.load()
}

type loader struct {
	file     string
	files    fs.FS
	src      []byte
	root     *yaml.Node
	doc      fileDoc
	errs     Errors
	m        *Model
	geoCache map[string]any
	// declared holds every asset id with the node that declared it, for
	// duplicate detection before the assets are built.
	declared map[string]*yaml.Node
	// plotDevices collects each plot's devices while devices are built.
	plotDevices map[string][]string
}

// add records a mistake at node n (nil: no position).
func (l *loader) add(n *yaml.Node, field string, kind error, format string, args ...any) {
	if len(l.errs) >= MaxErrors {
		return
	}
	e := &Error{File: l.file, Field: field, Err: kind, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	l.errs = append(l.errs, e)
}

// at returns the node of field key in item n, or n itself when the key is
// absent (the error then points at the item).
func at(n *yaml.Node, key string) *yaml.Node {
	if v := mapValue(n, key); v != nil {
		return v
	}
	return n
}

func (l *loader) load() (*Model, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(l.src))
	if err := yamlSafe(func() error { return dec.Decode(&doc) }); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: l.file, Err: ErrMissing, Msg: "empty file"}}
		}
		return nil, l.syntaxError(err)
	}
	var extra yaml.Node
	if err := yamlSafe(func() error { return dec.Decode(&extra) }); !errors.Is(err, io.EOF) {
		return nil, Errors{{File: l.file, Line: extra.Line, Err: ErrSyntax, Msg: "more than one YAML document"}}
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, Errors{{File: l.file, Line: 1, Err: ErrSyntax, Msg: "the campus file is a YAML mapping (campus:, sites:, buildings:, ...)"}}
	}
	l.root = doc.Content[0]
	// Decode first: the decoder refuses excessive aliasing (a "billion
	// laughs" document) before checkFields would walk it.
	var typeErrs Errors
	if err := yamlSafe(func() error { return l.root.Decode(&l.doc) }); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, l.syntaxError(err)
		}
		typeErrs = typeErrors(l.file, te)
	}
	checkFields(l.root, fileDocType, "", func(n *yaml.Node, path string, kind error, msg string) { l.add(n, path, kind, "%s", msg) })
	l.errs = append(l.errs, typeErrs...)
	if len(l.errs) > MaxErrors {
		l.errs = l.errs[:MaxErrors]
	}
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	l.m = &Model{
		sites: map[string]*Site{}, tenants: map[string]*Tenant{}, applications: map[string]*Application{},
		assets: map[string]*Asset{}, points: map[string]*Point{}, byAsset: map[string][]*Point{},
		byEUI: map[string]*Device{}, byNetwork: map[networkKey]*Device{}, registers: map[energy.RegisterKey]*Point{},
		roomTypes: map[string]*RoomType{}, meterTypes: map[string]*MeterType{}, objects: map[string]any{},
	}
	l.declared = map[string]*yaml.Node{}
	l.plotDevices = map[string][]string{}
	l.header()
	l.loadSites()
	l.loadTenants()
	l.loadApplications()
	l.loadRoomTypes()
	l.loadMeterTypes()
	if len(l.errs) == 0 {
		l.declareAssets()
	}
	if len(l.errs) == 0 {
		l.loadBuildings()
		l.loadGateways()
		l.loadMeters()
		l.loadPlots()
		l.loadDevices()
		l.loadRobots()
	}
	if len(l.errs) == 0 {
		l.expandPoints()
	}
	if len(l.errs) == 0 {
		l.applyPoints()
	}
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	l.finish()
	return l.m, nil
}

// yamlSafe runs a call into the YAML decoder, third-party code, turning a
// panic in it into an error, so that a hostile file cannot take the
// caller down. Panics in citymesh's own code are not hidden.
func yamlSafe(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("YAML decoder failed: %v", p)
		}
	}()
	return f()
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML parse error into a positioned error.
func (l *loader) syntaxError(err error) error {
	e := &Error{File: l.file, Err: ErrSyntax, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		fmt.Sscan(m[1], &e.Line)
		e.Msg = m[2]
		// yaml.v3 (decode.go, fail) numbers a parser error's line from
		// its context mark, which counts from 0; its parser errors are the
		// "did not find expected ..." ones.
		if strings.HasPrefix(e.Msg, "did not find expected") {
			e.Line++
		}
	}
	return Errors{e}
}

func (l *loader) header() {
	d := &l.doc
	if err := event.ValidID(d.Campus); err != nil {
		l.add(at(l.root, "campus"), "campus", idKind(d.Campus), "the campus id: %v", err)
	}
	l.m.ID, l.m.Name = d.Campus, d.Name
	l.m.Timezone = d.Timezone
	if l.m.Timezone == "" {
		l.m.Timezone = "UTC"
	}
	loc, err := time.LoadLocation(l.m.Timezone)
	if err != nil {
		l.add(at(l.root, "timezone"), "timezone", ErrInvalid, "%q is not an IANA time zone name (Europe/Berlin): %v", d.Timezone, err)
	}
	l.m.Location = loc
}

// idKind tells an empty id (missing) from a malformed one.
func idKind(id string) error {
	if id == "" {
		return ErrMissing
	}
	return ErrBadID
}

// checkID checks an id used as a topic level and records a mistake.
func (l *loader) checkID(n *yaml.Node, field, id string) bool {
	if err := event.ValidID(id); err != nil {
		l.add(at(n, "id"), field, idKind(id), "id %v", err)
		return false
	}
	return true
}

// location reads an optional [lon, lat]; ok is false when absent or wrong.
func (l *loader) location(n *yaml.Node, field string, v []float64) (orb.Point, bool) {
	if v == nil {
		return orb.Point{}, false
	}
	if len(v) != 2 {
		l.add(at(n, "location"), field, ErrInvalid, "want [longitude, latitude], got %d numbers", len(v))
		return orb.Point{}, false
	}
	if err := checkLonLat(v[0], v[1]); err != nil {
		l.add(at(n, "location"), field, ErrOutOfRange, "%v", err)
		return orb.Point{}, false
	}
	return orb.Point{v[0], v[1]}, true
}

// nearSite checks that p lies within the site's radius; a swapped
// longitude and latitude is named.
func (l *loader) nearSite(n *yaml.Node, field string, site string, p orb.Point) {
	s, ok := l.m.sites[site]
	if !ok {
		return
	}
	d := distanceM(s.Location, p)
	if d <= s.RadiusM {
		return
	}
	hint := ""
	if distanceM(s.Location, orb.Point{p[1], p[0]}) <= s.RadiusM {
		hint = "; longitude and latitude look swapped (positions are [longitude, latitude])"
	}
	l.add(n, field, ErrOutOfRange, "[%g, %g] is %.0f m from site %s, farther than its radius_m %g%s", p[0], p[1], d, site, s.RadiusM, hint)
}

func (l *loader) loadSites() {
	if len(l.doc.Sites) == 0 {
		l.add(at(l.root, "sites"), "sites", ErrMissing, "no sites: give at least one (id, kind, location)")
	}
	for i, sf := range l.doc.Sites {
		n := seqItem(l.root, "sites", i)
		field := fmt.Sprintf("sites[%d]", i)
		if !l.checkID(n, field+".id", sf.ID) {
			continue
		}
		if _, dup := l.m.sites[sf.ID]; dup {
			l.add(at(n, "id"), field+".id", ErrDuplicateID, "site %q is declared twice", sf.ID)
			continue
		}
		s := &Site{ID: sf.ID, Name: sf.Name, Kind: SiteKind(sf.Kind), RadiusM: sf.RadiusM}
		switch s.Kind {
		case SiteCampus, SiteVineyard:
		case "":
			l.add(n, field+".kind", ErrMissing, "kind is missing (campus or vineyard)")
		default:
			l.add(at(n, "kind"), field+".kind", ErrInvalid, "kind %q, want campus or vineyard", sf.Kind)
		}
		p, ok := l.location(n, field+".location", sf.Location)
		if !ok && sf.Location == nil {
			l.add(n, field+".location", ErrMissing, "location [longitude, latitude] is missing")
		}
		s.Location = p
		if s.RadiusM == 0 {
			s.RadiusM = DefaultSiteRadiusM
		}
		if !(s.RadiusM > 0) || math.IsInf(s.RadiusM, 0) {
			l.add(at(n, "radius_m"), field+".radius_m", ErrInvalid, "radius_m %v must be a positive number of metres", sf.RadiusM)
		}
		l.m.sites[s.ID] = s
		l.m.Sites = append(l.m.Sites, s)
	}
}

func (l *loader) loadTenants() {
	for i, tf := range l.doc.Tenants {
		n := seqItem(l.root, "tenants", i)
		field := fmt.Sprintf("tenants[%d]", i)
		if !l.checkID(n, field+".id", tf.ID) {
			continue
		}
		if _, dup := l.m.tenants[tf.ID]; dup {
			l.add(at(n, "id"), field+".id", ErrDuplicateID, "tenant %q is declared twice", tf.ID)
			continue
		}
		t := &Tenant{ID: tf.ID, Name: tf.Name, AreaM2: map[string]float64{}}
		l.m.tenants[t.ID] = t
		l.m.Tenants = append(l.m.Tenants, t)
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (l *loader) loadApplications() {
	for i, af := range l.doc.Applications {
		n := seqItem(l.root, "applications", i)
		field := fmt.Sprintf("applications[%d]", i)
		if !l.checkID(n, field+".id", af.ID) {
			continue
		}
		if _, dup := l.m.applications[af.ID]; dup {
			l.add(at(n, "id"), field+".id", ErrDuplicateID, "application %q is declared twice", af.ID)
			continue
		}
		a := &Application{ID: af.ID, Server: NetworkServer(af.Server), ApplicationID: af.Application, TenantID: af.Tenant, Address: af.Address}
		switch a.Server {
		case TheThingsStack:
			if af.Application == "" || len(af.Application) > 36 {
				l.add(at(n, "application"), field+".application", ErrMissing, "the application id on The Things Stack is missing or longer than 36 characters")
			}
		case ChirpStack:
			if !uuidPattern.MatchString(af.Application) {
				l.add(at(n, "application"), field+".application", ErrInvalid, "%q: a ChirpStack application id is a UUID", af.Application)
			}
			if af.Tenant != "" && !uuidPattern.MatchString(af.Tenant) {
				l.add(at(n, "tenant"), field+".tenant", ErrInvalid, "%q: a ChirpStack tenant id is a UUID", af.Tenant)
			}
		case "":
			l.add(n, field+".server", ErrMissing, "server is missing (tts or chirpstack)")
		default:
			l.add(at(n, "server"), field+".server", ErrInvalid, "server %q, want tts or chirpstack", af.Server)
		}
		l.m.applications[a.ID] = a
		l.m.Applications = append(l.m.Applications, a)
	}
}

// quantityUnit checks a point's quantity and unit (the quantity's usual
// unit when unit is empty) and returns them.
func (l *loader) quantityUnit(n *yaml.Node, field, quantity, unit string) (Quantity, event.Unit, bool) {
	q, ok := LookupQuantity(quantity)
	if !ok {
		if quantity == "" {
			l.add(n, field+".quantity", ErrMissing, "quantity is missing")
		} else {
			l.add(at(n, "quantity"), field+".quantity", ErrUnknownQuantity, "quantity %q is not in the quantity table (docs/campus.md)", quantity)
		}
		return q, "", false
	}
	u := event.Unit(unit)
	if u == "" {
		u = q.Units[0]
	}
	if !q.Allows(u) {
		l.add(at(n, "unit"), field+".unit", ErrUnitMismatch, "unit %q does not fit quantity %s (allowed: %s)", unit, q.Name, unitList(q.Units))
		return q, "", false
	}
	return q, u, true
}

func unitList(us []event.Unit) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = string(u)
	}
	return strings.Join(s, ", ")
}

// mapEntries returns the key and value nodes of the mapping under key, in
// file order.
func mapEntries(root *yaml.Node, key string) [][2]*yaml.Node {
	n := mapValue(root, key)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

func (l *loader) loadRoomTypes() {
	for _, kv := range mapEntries(l.root, "room_types") {
		id, n := kv[0].Value, kv[1]
		field := "room_types." + id
		if err := event.ValidID(id); err != nil {
			l.add(kv[0], field, ErrBadID, "room type id %v", err)
			continue
		}
		tf := l.doc.RoomTypes[id]
		rt := &RoomType{ID: id, Description: tf.Description}
		keys := map[string]bool{}
		if len(tf.Points) == 0 {
			l.add(kv[0], field+".points", ErrMissing, "room type %s has no points", id)
		}
		for j, pf := range tf.Points {
			pn := seqItem(n, "points", j)
			pfield := fmt.Sprintf("%s.points[%d]", field, j)
			q, u, ok := l.quantityUnit(pn, pfield, pf.Quantity, pf.Unit)
			if !ok {
				continue
			}
			key := pf.Key
			if key == "" {
				key = q.Name
			}
			if err := event.ValidPointID(key); err != nil {
				l.add(at(pn, "key"), pfield+".key", ErrBadID, "key %v", err)
				continue
			}
			if keys[key] {
				l.add(at(pn, "key"), pfield+".key", ErrDuplicateID, "room type %s has two points with key %q (give a key to tell them apart)", id, key)
				continue
			}
			keys[key] = true
			rt.Points = append(rt.Points, PointTemplate{Key: key, Quantity: q.Name, Unit: u, Name: pf.Name})
		}
		l.m.roomTypes[id] = rt
	}
}

// register checks one register of a meter or meter type.
func (l *loader) register(n *yaml.Node, field string, rf registerFile) (Register, bool) {
	if rf.OBIS == "" {
		l.add(n, field+".obis", ErrMissing, "obis is missing")
		return Register{}, false
	}
	o, err := energy.ParseOBIS(rf.OBIS)
	if err != nil {
		l.add(at(n, "obis"), field+".obis", ErrUnknownOBIS, "%v", err)
		return Register{}, false
	}
	q, usual, ok := OBISQuantity(o)
	if !ok {
		l.add(at(n, "obis"), field+".obis", ErrUnknownOBIS, "OBIS %s is not a register citymesh knows (docs/campus.md lists them)", o)
		return Register{}, false
	}
	quantity, _ := LookupQuantity(q)
	u := event.Unit(rf.Unit)
	if u == "" {
		u = usual
	}
	if !quantity.Allows(u) {
		l.add(at(n, "unit"), field+".unit", ErrUnitMismatch, "unit %q does not fit OBIS %s (%s; allowed: %s)", rf.Unit, o, q, unitList(quantity.Units))
		return Register{}, false
	}
	r := Register{OBIS: o, Quantity: q, Unit: u, Digits: rf.Digits, Max: rf.Max}
	if r.Digits < 0 || r.Digits > 15 || (r.Digits > 0 && r.Max > 0 && r.Max != math.Pow10(r.Digits)) {
		l.add(at(n, "digits"), field+".digits", ErrInvalid, "digits %d must be 1..15 and agree with max %v (max = 10^digits)", rf.Digits, rf.Max)
		return Register{}, false
	}
	if r.Digits > 0 {
		r.Max = math.Pow10(r.Digits)
	}
	if r.Max < 0 || math.IsNaN(r.Max) || math.IsInf(r.Max, 0) {
		l.add(at(n, "max"), field+".max", ErrInvalid, "max %v must be a finite, non-negative number", rf.Max)
		return Register{}, false
	}
	return r, true
}

// registers checks a list of registers: at least one, no OBIS code twice,
// one medium.
func (l *loader) registers(n *yaml.Node, field string, list []registerFile) ([]Register, bool) {
	if len(list) == 0 {
		l.add(n, field+".registers", ErrMissing, "no registers")
		return nil, false
	}
	var out []Register
	seen := map[energy.OBIS]bool{}
	ok := true
	for j, rf := range list {
		rn := seqItem(n, "registers", j)
		rfield := fmt.Sprintf("%s.registers[%d]", field, j)
		r, good := l.register(rn, rfield, rf)
		if !good {
			ok = false
			continue
		}
		if seen[r.OBIS] {
			l.add(at(rn, "obis"), rfield+".obis", ErrDuplicateID, "register %s is listed twice", r.OBIS)
			ok = false
			continue
		}
		if len(out) > 0 && out[0].OBIS.A != r.OBIS.A {
			l.add(at(rn, "obis"), rfield+".obis", ErrInvalid, "register %s measures another medium than %s; give each medium its own meter", r.OBIS, out[0].OBIS)
			ok = false
			continue
		}
		seen[r.OBIS] = true
		out = append(out, r)
	}
	return out, ok
}

func (l *loader) loadMeterTypes() {
	for _, kv := range mapEntries(l.root, "meter_types") {
		id, n := kv[0].Value, kv[1]
		field := "meter_types." + id
		if err := event.ValidID(id); err != nil {
			l.add(kv[0], field, ErrBadID, "meter type id %v", err)
			continue
		}
		tf := l.doc.MeterTypes[id]
		regs, ok := l.registers(n, field, tf.Registers)
		if !ok {
			continue
		}
		l.m.meterTypes[id] = &MeterType{ID: id, Description: tf.Description, Registers: regs}
	}
}

// roomID is the id of room number num on floor of building: b01-2.07,
// b01-u1.03 for the first basement.
func roomID(building string, floor, num int) string {
	f := fmt.Sprint(floor)
	if floor < 0 {
		f = fmt.Sprintf("u%d", -floor)
	}
	return fmt.Sprintf("%s-%s.%02d", building, f, num)
}

// declare records an asset id, refusing a second declaration.
func (l *loader) declare(n *yaml.Node, field, id string) bool {
	if err := event.ValidID(id); err != nil {
		l.add(at(n, "id"), field, idKind(id), "id %v", err)
		return false
	}
	if prev, dup := l.declared[id]; dup {
		l.add(at(n, "id"), field, ErrDuplicateID, "asset id %q is already used (line %d); asset ids are unique across buildings, rooms, meters, gateways, plots, devices and robots", id, prev.Line)
		return false
	}
	l.declared[id] = n
	return true
}

// declareAssets records every asset id, rooms of series included, so that
// references may point forward and duplicates are found once.
func (l *loader) declareAssets() {
	total := 0
	for i, g := range l.doc.Gateways {
		l.declare(seqItem(l.root, "gateways", i), fmt.Sprintf("gateways[%d].id", i), g.ID)
	}
	for i, b := range l.doc.Buildings {
		bn := seqItem(l.root, "buildings", i)
		if !l.declare(bn, fmt.Sprintf("buildings[%d].id", i), b.ID) {
			continue
		}
		next := map[int]int{}
		for j, r := range b.Rooms {
			rn := seqItem(bn, "rooms", j)
			field := fmt.Sprintf("buildings[%d].rooms[%d]", i, j)
			if r.Floor == nil {
				l.add(rn, field+".floor", ErrMissing, "floor is missing")
				continue
			}
			if r.ID != "" {
				if r.Count > 1 || r.First != 0 {
					l.add(at(rn, "count"), field, ErrInvalid, "a room with an id is one room: count and first are for series")
					continue
				}
				l.declare(rn, field+".id", r.ID)
				total++
				continue
			}
			if r.Count < 1 || r.Count > MaxRoomsPerSeries {
				l.add(at(rn, "count"), field+".count", ErrInvalid, "count %d: a room series has 1..%d rooms (or give one room an id)", r.Count, MaxRoomsPerSeries)
				continue
			}
			first := r.First
			if first == 0 {
				first = next[*r.Floor] + 1
			}
			if first < 1 {
				l.add(at(rn, "first"), field+".first", ErrInvalid, "first %d must be at least 1", r.First)
				continue
			}
			for k := 0; k < r.Count; k++ {
				if !l.declare(rn, field, roomID(b.ID, *r.Floor, first+k)) {
					break
				}
			}
			next[*r.Floor] = max(next[*r.Floor], first+r.Count-1)
			total += r.Count
		}
		if total > MaxPoints {
			l.add(bn, fmt.Sprintf("buildings[%d].rooms", i), ErrInvalid, "more than %d rooms", MaxPoints)
			return
		}
	}
	for i, m := range l.doc.Meters {
		l.declare(seqItem(l.root, "meters", i), fmt.Sprintf("meters[%d].id", i), m.ID)
	}
	for i, p := range l.doc.Plots {
		l.declare(seqItem(l.root, "plots", i), fmt.Sprintf("plots[%d].id", i), p.ID)
	}
	for i, d := range l.doc.Devices {
		l.declare(seqItem(l.root, "devices", i), fmt.Sprintf("devices[%d].id", i), d.ID)
	}
	for i, r := range l.doc.Robots {
		l.declare(seqItem(l.root, "robots", i), fmt.Sprintf("robots[%d].id", i), r.ID)
	}
}

// newAsset registers a built asset.
func (l *loader) newAsset(a *Asset, obj any) {
	l.m.assets[a.ID] = a
	l.m.objects[a.ID] = obj
}

// site resolves a site reference.
func (l *loader) site(n *yaml.Node, field, id string) (*Site, bool) {
	if id == "" {
		l.add(n, field, ErrMissing, "site is missing")
		return nil, false
	}
	s, ok := l.m.sites[id]
	if !ok {
		l.add(at(n, "site"), field, ErrUnknownReference, "site %q is not in sites", id)
	}
	return s, ok
}

// tenant resolves an optional tenant reference.
func (l *loader) tenant(n *yaml.Node, field, id string) bool {
	if id == "" {
		return true
	}
	if _, ok := l.m.tenants[id]; !ok {
		l.add(at(n, "tenant"), field, ErrUnknownReference, "tenant %q is not in tenants", id)
		return false
	}
	return true
}

// domainOf is the topic domain of an asset of kind k on site s.
func domainOf(k event.AssetKind, s *Site) event.Domain {
	switch k {
	case event.AssetMeter:
		return event.DomainEnergy
	case event.AssetRobot:
		return event.DomainRobot
	case event.AssetBuilding, event.AssetRoom:
		return event.DomainBuilding
	case event.AssetPlot:
		return event.DomainVineyard
	}
	if s != nil && s.Kind == SiteVineyard {
		return event.DomainVineyard
	}
	return event.DomainBuilding
}

func (l *loader) loadBuildings() {
	for i, bf := range l.doc.Buildings {
		bn := seqItem(l.root, "buildings", i)
		field := fmt.Sprintf("buildings[%d]", i)
		site, _ := l.site(bn, field+".site", bf.Site)
		l.tenant(bn, field+".tenant", bf.Tenant)
		b := &Building{Asset: Asset{ID: bf.ID, Kind: event.AssetBuilding, Name: bf.Name, Site: bf.Site, Tenant: bf.Tenant, Line: bn.Line},
			Floors: bf.Floors, Basements: bf.Basements}
		b.Domain = domainOf(b.Kind, site)
		mp, gerr := l.geometry(&bf.Footprint)
		fnode := at(bn, "footprint")
		switch {
		case gerr != nil:
			l.add(fnode, field+".footprint", gerr.kind, "%s", gerr.msg)
		case len(mp) != 1:
			l.add(fnode, field+".footprint", ErrBadGeometry, "a footprint is one Polygon, not %d", len(mp))
		default:
			b.Footprint = mp[0]
			b.Location = centroid(b.Footprint)
			if site != nil {
				l.nearSite(fnode, field+".footprint", site.ID, b.Location)
			}
		}
		if bf.Floors < 1 || bf.Floors > 200 {
			l.add(at(bn, "floors"), field+".floors", ErrInvalid, "floors %d: the storeys above ground, 1..200", bf.Floors)
		}
		if bf.Basements < 0 || bf.Basements > 20 {
			l.add(at(bn, "basements"), field+".basements", ErrInvalid, "basements %d: 0..20", bf.Basements)
		}
		l.newAsset(&b.Asset, b)
		l.m.Buildings = append(l.m.Buildings, b)
		next := map[int]int{}
		for j, rf := range bf.Rooms {
			rn := seqItem(bn, "rooms", j)
			rfield := fmt.Sprintf("%s.rooms[%d]", field, j)
			floor := *rf.Floor
			if floor < -bf.Basements || floor >= bf.Floors {
				l.add(at(rn, "floor"), rfield+".floor", ErrOutOfRange, "floor %d is not in building %s (floors %d..%d)", floor, bf.ID, -bf.Basements, bf.Floors-1)
				continue
			}
			if _, ok := l.m.roomTypes[rf.Type]; !ok {
				if rf.Type == "" {
					l.add(rn, rfield+".type", ErrMissing, "type is missing (a room type of room_types)")
				} else {
					l.add(at(rn, "type"), rfield+".type", ErrUnknownReference, "room type %q is not in room_types", rf.Type)
				}
				continue
			}
			tenant := rf.Tenant
			if tenant == "" {
				tenant = bf.Tenant
			} else if !l.tenant(rn, rfield+".tenant", tenant) {
				continue
			}
			if !(rf.AreaM2 >= 0) || math.IsInf(rf.AreaM2, 0) {
				l.add(at(rn, "area_m2"), rfield+".area_m2", ErrInvalid, "area_m2 %v must be a finite, non-negative number", rf.AreaM2)
				continue
			}
			loc := b.Location
			if p, ok := l.location(rn, rfield+".location", rf.Location); ok {
				loc = p
				l.nearSite(at(rn, "location"), rfield+".location", bf.Site, p)
			}
			var ids []string
			if rf.ID != "" {
				ids = []string{rf.ID}
			} else {
				first := rf.First
				if first == 0 {
					first = next[floor] + 1
				}
				for k := 0; k < rf.Count; k++ {
					ids = append(ids, roomID(bf.ID, floor, first+k))
				}
				next[floor] = max(next[floor], first+rf.Count-1)
			}
			for _, id := range ids {
				r := &Room{Asset: Asset{ID: id, Kind: event.AssetRoom, Name: rf.Name, Site: bf.Site, Domain: event.DomainBuilding, Tenant: tenant,
					Location: loc, Line: rn.Line}, Building: bf.ID, Floor: floor, Type: rf.Type, AreaM2: rf.AreaM2}
				l.newAsset(&r.Asset, r)
				l.m.Rooms = append(l.m.Rooms, r)
				b.Rooms = append(b.Rooms, id)
			}
		}
	}
}

func (l *loader) loadGateways() {
	for i, gf := range l.doc.Gateways {
		n := seqItem(l.root, "gateways", i)
		field := fmt.Sprintf("gateways[%d]", i)
		g := &Gateway{Asset: Asset{ID: gf.ID, Kind: event.AssetGateway, Name: gf.Name, Site: gf.Site, Line: n.Line}, GatewayKind: GatewayKind(gf.Kind)}
		var b *Building
		if gf.Building != "" {
			var ok bool
			if b, ok = l.m.objects[gf.Building].(*Building); !ok {
				l.add(at(n, "building"), field+".building", ErrUnknownReference, "building %q is not in buildings", gf.Building)
			} else if g.Site == "" {
				g.Site = b.Site
			}
		}
		site, _ := l.site(n, field+".site", g.Site)
		g.Domain = domainOf(g.Kind, site)
		if p, ok := l.location(n, field+".location", gf.Location); ok {
			g.Location = p
			if site != nil {
				l.nearSite(at(n, "location"), field+".location", site.ID, p)
			}
		} else if b != nil {
			g.Location = b.Location
		}
		switch g.GatewayKind {
		case GatewayLoRaWAN:
			eui, err := event.ParseEUI(gf.EUI)
			if err != nil {
				kind := ErrBadDevEUI
				if gf.EUI == "" {
					kind = ErrMissing
				}
				l.add(at(n, "eui"), field+".eui", kind, "a LoRaWAN gateway's EUI: %v", err)
			}
			g.EUI = eui
			if gf.Location == nil {
				l.add(n, field+".location", ErrMissing, "a LoRaWAN gateway's location is missing")
			}
			if gf.Building != "" {
				l.add(at(n, "building"), field+".building", ErrInvalid, "building is for building gateways")
			}
		case GatewayBuilding:
			if gf.Building == "" {
				l.add(n, field+".building", ErrMissing, "a building gateway's building is missing")
			} else if b != nil {
				if b.Gateway != "" {
					l.add(at(n, "building"), field+".building", ErrDuplicateID, "building %s already has gateway %s", b.ID, b.Gateway)
				}
				b.Gateway = g.ID
				g.Building = b.ID
			}
			if gf.EUI != "" {
				l.add(at(n, "eui"), field+".eui", ErrInvalid, "eui is for LoRaWAN gateways")
			}
		case "":
			l.add(n, field+".kind", ErrMissing, "kind is missing (lorawan or building)")
		default:
			l.add(at(n, "kind"), field+".kind", ErrInvalid, "kind %q, want lorawan or building", gf.Kind)
		}
		l.newAsset(&g.Asset, g)
		l.m.Gateways = append(l.m.Gateways, g)
	}
	seen := map[string]string{}
	for _, g := range l.m.Gateways {
		if g.EUI == "" {
			continue
		}
		if prev, dup := seen[g.EUI]; dup {
			l.add(at(l.declared[g.ID], "eui"), "gateways", ErrDuplicateID, "gateway EUI %s is used by %s and %s", g.EUI, prev, g.ID)
		}
		seen[g.EUI] = g.ID
	}
}

// mediumCarrier is the energy carrier of an OBIS medium (group A).
func mediumCarrier(a uint8) energy.Carrier {
	switch a {
	case 1:
		return energy.Electricity
	case 5:
		return energy.Cooling
	case 6:
		return energy.Heat
	case 7:
		return energy.NaturalGas
	case 8, 9:
		return energy.Water
	}
	return ""
}

func (l *loader) loadMeters() {
	for i, mf := range l.doc.Meters {
		n := seqItem(l.root, "meters", i)
		field := fmt.Sprintf("meters[%d]", i)
		m := &Meter{Asset: Asset{ID: mf.ID, Kind: event.AssetMeter, Name: mf.Name, Domain: event.DomainEnergy, Tenant: mf.Tenant, Line: n.Line},
			Building: mf.Building, Parent: mf.Parent, Type: mf.Type}
		b, ok := l.m.objects[mf.Building].(*Building)
		switch {
		case mf.Building == "":
			l.add(n, field+".building", ErrMissing, "building is missing")
		case !ok:
			l.add(at(n, "building"), field+".building", ErrUnknownReference, "building %q is not in buildings", mf.Building)
		default:
			m.Site, m.Location = b.Site, b.Location
		}
		l.tenant(n, field+".tenant", mf.Tenant)
		if p, ok := l.location(n, field+".location", mf.Location); ok {
			m.Location = p
			l.nearSite(at(n, "location"), field+".location", m.Site, p)
		}
		switch {
		case mf.Type != "" && len(mf.Registers) > 0:
			l.add(at(n, "type"), field, ErrInvalid, "give a meter type or registers, not both")
		case mf.Type != "":
			t, ok := l.m.meterTypes[mf.Type]
			if !ok {
				l.add(at(n, "type"), field+".type", ErrUnknownReference, "meter type %q is not in meter_types", mf.Type)
			} else {
				m.Registers = append([]Register(nil), t.Registers...)
			}
		default:
			m.Registers, _ = l.registers(n, field, mf.Registers)
		}
		if len(m.Registers) > 0 {
			m.Carrier = mediumCarrier(m.Registers[0].OBIS.A)
		}
		l.newAsset(&m.Asset, m)
		l.m.Meters = append(l.m.Meters, m)
	}
	for i, m := range l.m.Meters {
		if m.Parent == "" {
			continue
		}
		n := seqItem(l.root, "meters", i)
		field := fmt.Sprintf("meters[%d].parent", i)
		p, ok := l.m.objects[m.Parent].(*Meter)
		switch {
		case !ok:
			l.add(at(n, "parent"), field, ErrUnknownReference, "parent meter %q is not in meters", m.Parent)
		case p.ID == m.ID:
			l.add(at(n, "parent"), field, ErrInvalid, "a meter is not its own parent")
		case p.Building != m.Building:
			l.add(at(n, "parent"), field, ErrInvalid, "parent %s is in building %s, not %s", p.ID, p.Building, m.Building)
		case p.Carrier != m.Carrier:
			l.add(at(n, "parent"), field, ErrInvalid, "parent %s meters %s, not %s", p.ID, p.Carrier, m.Carrier)
		}
	}
}

func (l *loader) loadPlots() {
	for i, pf := range l.doc.Plots {
		n := seqItem(l.root, "plots", i)
		field := fmt.Sprintf("plots[%d]", i)
		site, _ := l.site(n, field+".site", pf.Site)
		l.tenant(n, field+".tenant", pf.Tenant)
		p := &Plot{Asset: Asset{ID: pf.ID, Kind: event.AssetPlot, Name: pf.Name, Site: pf.Site, Tenant: pf.Tenant, Line: n.Line}, Variety: pf.Variety}
		p.Domain = domainOf(p.Kind, site)
		anode := at(n, "area")
		if mp, gerr := l.geometry(&pf.Area); gerr != nil {
			l.add(anode, field+".area", gerr.kind, "%s", gerr.msg)
		} else {
			p.Area = mp
			p.Location = centroid(mp)
			if site != nil {
				l.nearSite(anode, field+".area", site.ID, p.Location)
			}
		}
		l.newAsset(&p.Asset, p)
		l.m.Plots = append(l.m.Plots, p)
	}
}

func (l *loader) loadDevices() {
	for i, df := range l.doc.Devices {
		n := seqItem(l.root, "devices", i)
		field := fmt.Sprintf("devices[%d]", i)
		d := &Device{Asset: Asset{ID: df.ID, Kind: event.AssetDevice, Name: df.Name, Site: df.Site, Tenant: df.Tenant, Line: n.Line},
			Application: df.Application, NetworkID: df.NetworkID, Plot: df.Plot}
		if df.Plot != "" {
			p, ok := l.m.objects[df.Plot].(*Plot)
			if !ok {
				l.add(at(n, "plot"), field+".plot", ErrUnknownReference, "plot %q is not in plots", df.Plot)
			} else {
				if d.Site == "" {
					d.Site = p.Site
				} else if d.Site != p.Site {
					l.add(at(n, "site"), field+".site", ErrInvalid, "site %s, but plot %s is on site %s", d.Site, p.ID, p.Site)
				}
				if d.Tenant == "" {
					d.Tenant = p.Tenant
				}
				l.plotDevices[p.ID] = append(l.plotDevices[p.ID], d.ID)
			}
		}
		site, _ := l.site(n, field+".site", d.Site)
		d.Domain = domainOf(d.Kind, site)
		l.tenant(n, field+".tenant", df.Tenant)
		t, ok := LookupDeviceType(df.Type)
		switch {
		case df.Type == "":
			l.add(n, field+".type", ErrMissing, "type is missing (a device type: %s)", deviceTypeList())
		case !ok:
			l.add(at(n, "type"), field+".type", ErrUnknownDeviceType, "device type %q is not in the catalogue (%s)", df.Type, deviceTypeList())
		}
		d.Type = t
		eui, err := event.ParseEUI(df.DevEUI)
		if err != nil {
			kind := ErrBadDevEUI
			if df.DevEUI == "" {
				kind = ErrMissing
			}
			l.add(at(n, "dev_eui"), field+".dev_eui", kind, "%v", err)
		} else if prev, dup := l.m.byEUI[eui]; dup {
			l.add(at(n, "dev_eui"), field+".dev_eui", ErrDuplicateID, "DevEUI %s is already device %s's", eui, prev.ID)
		} else {
			d.DevEUI = eui
			l.m.byEUI[eui] = d
		}
		app, ok := l.m.applications[df.Application]
		switch {
		case df.Application == "":
			l.add(n, field+".application", ErrMissing, "application is missing (an id of applications)")
		case !ok:
			l.add(at(n, "application"), field+".application", ErrUnknownReference, "application %q is not in applications", df.Application)
		default:
			if d.NetworkID == "" {
				d.NetworkID = d.ID
			}
			if len(d.NetworkID) > 36 {
				l.add(at(n, "network_id"), field+".network_id", ErrInvalid, "network_id %q is longer than 36 characters", d.NetworkID)
			}
			k := networkKey{string(app.Server), app.ApplicationID, d.NetworkID}
			if prev, dup := l.m.byNetwork[k]; dup {
				l.add(at(n, "network_id"), field+".network_id", ErrDuplicateID, "device %s is already %s in application %s", d.NetworkID, prev.ID, app.ID)
			} else {
				l.m.byNetwork[k] = d
			}
		}
		if p, ok := l.location(n, field+".location", df.Location); ok {
			d.Location = p
			if site != nil {
				l.nearSite(at(n, "location"), field+".location", site.ID, p)
			}
		} else if df.Location == nil {
			l.add(n, field+".location", ErrMissing, "location [longitude, latitude] is missing")
		}
		d.Interval = t.Interval
		if df.Interval != "" {
			iv, err := time.ParseDuration(df.Interval)
			switch {
			case err != nil:
				l.add(at(n, "interval"), field+".interval", ErrBadInterval, "interval %q is not a duration such as 20m or 1h", df.Interval)
			case iv <= 0:
				l.add(at(n, "interval"), field+".interval", ErrBadInterval, "interval %s must be positive", iv)
			default:
				d.Interval = iv
			}
		}
		l.newAsset(&d.Asset, d)
		l.m.Devices = append(l.m.Devices, d)
	}
	for _, p := range l.m.Plots {
		p.Devices = l.plotDevices[p.ID]
	}
}

func deviceTypeList() string {
	ids := make([]string, len(deviceTypes))
	for i, t := range deviceTypes {
		ids[i] = t.ID
	}
	return strings.Join(ids, ", ")
}

func (l *loader) loadRobots() {
	for i, rf := range l.doc.Robots {
		n := seqItem(l.root, "robots", i)
		field := fmt.Sprintf("robots[%d]", i)
		site, _ := l.site(n, field+".site", rf.Site)
		l.tenant(n, field+".tenant", rf.Tenant)
		r := &Robot{Asset: Asset{ID: rf.ID, Kind: event.AssetRobot, Name: rf.Name, Site: rf.Site, Domain: event.DomainRobot, Tenant: rf.Tenant, Line: n.Line}}
		rt, file, err := l.route(&rf.Route)
		if err != nil {
			l.add(at(n, "route"), field+".route", err.kind, "%s", err.msg)
		} else {
			r.Route, r.RouteFile = rt, file
			r.Location = orb.Point{rt.Waypoints[0].Lon, rt.Waypoints[0].Lat}
			if site != nil {
				for _, w := range rt.Waypoints {
					if distanceM(site.Location, orb.Point{w.Lon, w.Lat}) > site.RadiusM {
						l.nearSite(at(n, "route"), field+".route: waypoint "+w.ID, site.ID, orb.Point{w.Lon, w.Lat})
						break
					}
				}
			}
		}
		if p, ok := l.location(n, field+".location", rf.Location); ok {
			r.Location = p
			if site != nil {
				l.nearSite(at(n, "location"), field+".location", site.ID, p)
			}
		}
		l.newAsset(&r.Asset, r)
		l.m.Robots = append(l.m.Robots, r)
	}
}

// route reads a robot's route: {file: route.yaml} or the route inline, in
// package robot's format. Inline, the route's text is handed to
// robot.ReadRoute at its own line numbers, so its errors name the campus
// file's lines.
func (l *loader) route(n *yaml.Node) (*robot.Route, string, *problem) {
	if n == nil || n.Kind == 0 {
		return nil, "", badGeo(ErrMissing, "route is missing ({file: route.yaml} or the route inline)")
	}
	if f := mapValue(n, "file"); f != nil && len(n.Content) == 2 {
		name := f.Value
		data, err := l.readFile(name)
		if err != nil {
			return nil, "", badGeo(ErrFile, "%v", err)
		}
		rt, err := robot.ReadRoute(bytes.NewReader(data))
		if err != nil {
			return nil, "", badGeo(ErrBadRoute, "%s: %v", l.display(name), err)
		}
		return rt, name, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, "", badGeo(ErrBadRoute, "a route is a mapping: {file: route.yaml} or the route itself")
	}
	rt, err := robot.ReadRoute(bytes.NewReader(l.snippet(n)))
	if err != nil {
		return nil, "", badGeo(ErrBadRoute, "inline route: %v", err)
	}
	return rt, "", nil
}

// snippet returns the source text of node n, de-indented and preceded by
// empty lines so that its line numbers are those of the campus file.
func (l *loader) snippet(n *yaml.Node) []byte {
	lines := strings.Split(string(l.src), "\n")
	first := n.Line
	last := lastLine(n)
	// The node ends before the next node of the document starts.
	if next := nextLine(l.root, last); next > 0 {
		last = next - 1
	} else {
		last = len(lines)
	}
	indent := n.Column - 1
	var b strings.Builder
	for i := 1; i < first; i++ {
		b.WriteByte('\n')
	}
	for i := first; i <= last && i <= len(lines); i++ {
		s := lines[i-1]
		if i == first {
			if indent <= len(s) {
				s = s[indent:]
			}
		} else {
			k := 0
			for k < indent && k < len(s) && s[k] == ' ' {
				k++
			}
			s = s[k:]
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// lastLine is the last line any node under n starts on.
func lastLine(n *yaml.Node) int {
	last := n.Line
	for _, c := range n.Content {
		last = max(last, lastLine(c))
	}
	return last
}

// nextLine is the first line after line that a node of the document starts
// on, 0 if none.
func nextLine(n *yaml.Node, line int) int {
	best := 0
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Line > line && (best == 0 || n.Line < best) {
			best = n.Line
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return best
}

// addPoint adds an expanded point, refusing a duplicate id.
func (l *loader) addPoint(n *yaml.Node, field string, p *Point) {
	if err := event.ValidPointID(p.ID); err != nil {
		l.add(n, field, ErrBadID, "point id %v", err)
		return
	}
	if prev, dup := l.m.points[p.ID]; dup {
		l.add(n, field, ErrDuplicateID, "point %s is declared twice (first by asset %s)", p.ID, prev.Asset)
		return
	}
	if len(l.m.Points) >= MaxPoints {
		l.add(n, field, ErrInvalid, "more than %d information points", MaxPoints)
		return
	}
	l.m.points[p.ID] = p
	l.m.Points = append(l.m.Points, p)
}

// expandPoints expands rooms, meters, devices and robots into their
// information points.
func (l *loader) expandPoints() {
	for _, r := range l.m.Rooms {
		rt := l.m.roomTypes[r.Type]
		topic := r.Topic(event.EventMeasurement)
		for _, t := range rt.Points {
			l.addPoint(l.declared[r.ID], "room "+r.ID, &Point{ID: r.ID + "/" + t.Key, Asset: r.ID, AssetKind: r.Kind, Quantity: t.Quantity, Unit: t.Unit,
				Name: t.Name, Location: r.Location, Site: r.Site, Tenant: r.Tenant, Topic: topic})
		}
		if len(l.errs) >= MaxErrors {
			return
		}
	}
	for _, m := range l.m.Meters {
		topic := m.Topic(event.EventReading)
		for i := range m.Registers {
			reg := &m.Registers[i]
			reg.Point = m.ID + "/" + reg.OBIS.String()
			p := &Point{ID: reg.Point, Asset: m.ID, AssetKind: m.Kind, Quantity: reg.Quantity, Unit: reg.Unit, Location: m.Location,
				Site: m.Site, Tenant: m.Tenant, Topic: topic, Register: reg}
			l.addPoint(l.declared[m.ID], "meter "+m.ID, p)
		}
	}
	for _, d := range l.m.Devices {
		topic := d.Topic(event.EventMeasurement)
		for _, f := range d.Type.Fields {
			l.addPoint(l.declared[d.ID], "device "+d.ID, &Point{ID: d.ID + "/" + f.Key, Asset: d.ID, AssetKind: d.Kind, Quantity: f.Quantity,
				Unit: f.Unit, Location: d.Location, Site: d.Site, Tenant: d.Tenant, Topic: topic, Field: f.Field})
		}
	}
	for _, r := range l.m.Robots {
		n := l.declared[r.ID]
		base := Point{Asset: r.ID, AssetKind: r.Kind, Location: r.Location, Site: r.Site, Tenant: r.Tenant}
		pos, bat := base, base
		pos.ID, pos.Quantity, pos.Unit, pos.Topic = r.ID+"/position", "location", event.Degree, r.Topic(event.EventPosition)
		bat.ID, bat.Quantity, bat.Unit, bat.Topic = r.ID+"/battery", "batteryLevel", event.Percent, r.Topic(event.EventStatus)
		l.addPoint(n, "robot "+r.ID, &pos)
		l.addPoint(n, "robot "+r.ID, &bat)
		for _, w := range r.Route.Waypoints {
			for _, c := range w.Checks {
				p := base
				p.ID, p.Check, p.Topic = r.ID+"/check/"+c.ID, c.ID, r.Topic(event.EventCheck)
				p.Location = orb.Point{w.Lon, w.Lat}
				p.Quantity, p.Unit = checkQuantity(c.Kind)
				l.addPoint(n, "robot "+r.ID+" check "+c.ID, &p)
			}
		}
	}
}

// checkQuantity is the quantity a robot check observes.
func checkQuantity(k robot.CheckKind) (string, event.Unit) {
	switch k {
	case robot.CheckHVACSetpoint:
		return "temperatureSetpoint", event.Celsius
	case robot.CheckBollard:
		return "bollardPosition", event.One
	case robot.CheckEscapeRoute:
		return "escapeRouteClear", event.One
	}
	return "lightState", event.One
}

// applyPoints applies the points list: overrides of expanded points,
// removals, and points of their own.
func (l *loader) applyPoints() {
	seen := map[string]int{}
	removed := map[string]bool{}
	for i, pf := range l.doc.Points {
		n := seqItem(l.root, "points", i)
		field := fmt.Sprintf("points[%d]", i)
		if err := event.ValidPointID(pf.ID); err != nil {
			l.add(at(n, "id"), field+".id", idKind(pf.ID), "point id %v", err)
			continue
		}
		if j, dup := seen[pf.ID]; dup {
			l.add(at(n, "id"), field+".id", ErrDuplicateID, "point %s is listed twice in points (first at points[%d])", pf.ID, j)
			continue
		}
		seen[pf.ID] = i
		p, exists := l.m.points[pf.ID]
		if pf.Remove {
			if !exists {
				l.add(at(n, "id"), field+".id", ErrUnknownReference, "cannot remove point %s: no such point", pf.ID)
				continue
			}
			if pf.Asset != "" || pf.Quantity != "" || pf.Unit != "" || pf.Name != "" || pf.Tenant != "" || pf.Location != nil {
				l.add(at(n, "remove"), field, ErrInvalid, "a removed point takes no other fields")
				continue
			}
			removed[pf.ID] = true
			continue
		}
		if !exists {
			if pf.Asset == "" {
				l.add(n, field+".asset", ErrMissing, "point %s is not expanded from a template: give its asset, quantity and unit", pf.ID)
				continue
			}
			a, ok := l.m.assets[pf.Asset]
			if !ok {
				l.add(at(n, "asset"), field+".asset", ErrUnknownReference, "asset %q is not declared", pf.Asset)
				continue
			}
			if !strings.HasPrefix(pf.ID, a.ID+"/") {
				l.add(at(n, "id"), field+".id", ErrBadID, "point id %s must start with its asset's id: %s/...", pf.ID, a.ID)
				continue
			}
			eventName := event.EventMeasurement
			if a.Kind == event.AssetMeter {
				eventName = event.EventReading
			}
			p = &Point{ID: pf.ID, Asset: a.ID, AssetKind: a.Kind, Location: a.Location, Site: a.Site, Tenant: a.Tenant, Topic: a.Topic(eventName)}
			if pf.Quantity == "" {
				l.add(n, field+".quantity", ErrMissing, "quantity is missing")
				continue
			}
		} else if pf.Asset != "" && pf.Asset != p.Asset {
			l.add(at(n, "asset"), field+".asset", ErrInvalid, "point %s belongs to asset %s, not %s", pf.ID, p.Asset, pf.Asset)
			continue
		}
		quantity, unit := p.Quantity, string(p.Unit)
		if pf.Quantity != "" {
			if p.Register != nil || p.Field != "" || p.Check != "" {
				l.add(at(n, "quantity"), field+".quantity", ErrInvalid, "the quantity of a register, device field or check point is fixed")
				continue
			}
			quantity, unit = pf.Quantity, ""
		}
		if pf.Unit != "" {
			if p.Field != "" {
				l.add(at(n, "unit"), field+".unit", ErrInvalid, "a device field's unit is its codec's (%s)", p.Unit)
				continue
			}
			unit = pf.Unit
		}
		q, u, ok := l.quantityUnit(n, field, quantity, unit)
		if !ok {
			continue
		}
		if !l.tenant(n, field+".tenant", pf.Tenant) {
			continue
		}
		loc, hasLoc := l.location(n, field+".location", pf.Location)
		if hasLoc {
			l.nearSite(at(n, "location"), field+".location", p.Site, loc)
		}
		np := *p
		np.Quantity, np.Unit = q.Name, u
		if pf.Name != "" {
			np.Name = pf.Name
		}
		if pf.Tenant != "" {
			np.Tenant = pf.Tenant
		}
		if hasLoc {
			np.Location = loc
		}
		if np.Register != nil {
			reg := *np.Register
			reg.Unit = u
			np.Register = &reg
		}
		if exists {
			*p = np
		} else {
			l.addPoint(n, field, &np)
		}
	}
	if len(removed) > 0 {
		kept := l.m.Points[:0]
		for _, p := range l.m.Points {
			if removed[p.ID] {
				delete(l.m.points, p.ID)
				continue
			}
			kept = append(kept, p)
		}
		l.m.Points = kept
	}
}

// finish builds what needs the final points: the meters' registers (a
// removed register point removes the register), the indexes by asset and
// by register, and the tenants' rooms, meters and areas.
func (l *loader) finish() {
	clear(l.m.registers)
	for _, m := range l.m.Meters {
		var regs []Register
		for _, r := range m.Registers {
			if p, ok := l.m.points[r.Point]; ok {
				regs = append(regs, *p.Register)
			}
		}
		m.Registers = regs
		for i := range m.Registers {
			p := l.m.points[m.Registers[i].Point]
			p.Register = &m.Registers[i]
			l.m.registers[energy.RegisterKey{Meter: m.ID, OBIS: m.Registers[i].OBIS}] = p
		}
		if t, ok := l.m.tenants[m.Tenant]; ok {
			t.Meters = append(t.Meters, m.ID)
		}
	}
	for _, p := range l.m.Points {
		l.m.byAsset[p.Asset] = append(l.m.byAsset[p.Asset], p)
	}
	for _, r := range l.m.Rooms {
		if t, ok := l.m.tenants[r.Tenant]; ok {
			t.Rooms = append(t.Rooms, r.ID)
			t.AreaM2[r.Building] += r.AreaM2
		}
	}
}
