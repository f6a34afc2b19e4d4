package sim

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/paulmach/orb/geo"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/chirpstack"
	"github.com/citymesh/citymesh/connector/codec/devices"
	"github.com/citymesh/citymesh/connector/tts"
	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/robot"
)

// How the campus description becomes simulation models. The campus model
// says what exists, not how it behaves; what the models need beyond it is
// derived here, by rules that are estimates (docs/simulator.md, "The
// campus player"):
//
//   - a site's altitude: 160 m for the campus, 250 m for a vineyard;
//   - a building's use from its name (lecture, library, refectory or
//     canteen, laboratory or workshop, guest house or residence; else
//     office), its floor area its footprint times its storeys, gas heating
//     when it has a gas meter, air conditioning when it has a cooling
//     meter, rooftop PV (0.06 kWp per m² of footprint) when a meter has an
//     export register;
//   - a room's use from its building's and its area;
//   - a sub-meter's share: 90 % of its parent's flow split evenly among
//     the parent's sub-meters of the same medium.

// Site altitudes (estimates: the campus lies at about 160 m, the
// Wartberg's vineyards between about 200 and 300 m).
const (
	campusAltitudeM   = 160.0
	vineyardAltitudeM = 250.0
	pvKWpPerM2        = 0.06 // rooftop PV per m² of footprint (estimate)
	subMeterShare     = 0.9  // of a parent's flow, split among its sub-meters
	coolingWPerM2K    = 1.5  // air conditioning, electric W per m² and K above 22 °C (estimate)
	defaultRoomAreaM2 = 20.0
)

// build creates every copy's models.
func (p *Player) build() error {
	for _, s := range p.m.Sites {
		alt := campusAltitudeM
		if s.Kind == campus.SiteVineyard {
			alt = vineyardAltitudeM
		}
		w, err := NewWeather(p.cfg.Seed, WeatherConfig{Site: Site{Name: s.ID, Lat: s.Location.Lat(), Lon: s.Location.Lon(), AltitudeM: alt}, Faults: p.cfg.Faults})
		if err != nil {
			return fmt.Errorf("player: site %s: %w", s.ID, err)
		}
		p.weather[s.ID] = w
	}
	for k := p.cfg.FirstCopy; k < p.cfg.FirstCopy+p.cfg.Copies; k++ {
		if err := p.buildCopy(k); err != nil {
			if p.cfg.Copies > 1 {
				return fmt.Errorf("player: copy %d: %w", k, err)
			}
			return fmt.Errorf("player: %w", err)
		}
	}
	return nil
}

// dayStart returns the local midnight of t's day.
func dayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func (p *Player) buildCopy(k int) error {
	seed := p.copySeed(k)
	// LoRaWAN gateways.
	var lgws []*loraGateway
	for _, g := range p.m.Gateways {
		if g.GatewayKind != campus.GatewayLoRaWAN {
			continue
		}
		eui, err := CopyEUI(g.EUI, k)
		if err != nil {
			return fmt.Errorf("gateway %s: %w", g.ID, err)
		}
		id := CopyID(g.ID, k)
		if err := tts.ValidateID(id); err != nil {
			return fmt.Errorf("gateway %s: its id is not a The Things Stack id: %w", g.ID, err)
		}
		e, _ := connector.ParseEUI64(eui)
		lgws = append(lgws, &loraGateway{id: id, eui: e, lat: g.Location.Lat(), lon: g.Location.Lon(),
			clock: uint32(hash(seed, stGatewayClock, int64(len(lgws))))})
	}
	p.lgws = append(p.lgws, lgws)

	// Building gateways, one per building that has one.
	gws := map[string]*simGateway{}
	for _, b := range p.m.Buildings {
		g := p.gatewayOf(b, k)
		gws[b.ID] = g
		if g.status {
			p.bgws = append(p.bgws, g)
		}
	}

	// Buildings with their meters.
	if err := p.buildMeters(k, seed, gws); err != nil {
		return err
	}
	// Rooms.
	cooled := map[string]bool{}
	for _, mt := range p.m.Meters {
		for _, r := range mt.Registers {
			if r.OBIS.A == 5 {
				cooled[mt.Building] = true
			}
		}
	}
	for _, r := range p.m.Rooms {
		b, _ := p.m.Building(r.Building)
		area := r.AreaM2
		if area <= 0 {
			area = defaultRoomAreaM2
		}
		id := CopyID(r.ID, k)
		rm, err := NewRoom(seed, p.weather[r.Site], RoomConfig{ID: id, Kind: roomKind(buildingKind(b), area), AreaM2: area,
			HasCooling: cooled[r.Building], Start: p.cfg.Start, Location: p.loc})
		if err != nil {
			return err
		}
		sr := &simRoom{id: id, topic: event.NewTopic(r.Domain, r.Site, r.Kind, id, event.EventMeasurement), gw: gws[r.Building], r: rm}
		for _, pt := range p.m.PointsOf(r.ID) {
			rp, ok := roomPointOf(pt)
			if !ok {
				p.log.Warn("sim: a room point of this quantity is not simulated; it is left out", "point", pt.ID, "quantity", pt.Quantity)
				continue
			}
			rp.id = CopyPoint(pt.ID, r.ID, k)
			sr.points = append(sr.points, rp)
		}
		if len(sr.points) > 0 {
			p.rooms = append(p.rooms, sr)
		}
	}
	// Plots' soil and the devices.
	fields := map[string]*SoilField{}
	for _, pl := range p.m.Plots {
		c := pl.Location
		f, err := NewSoilField(seed, SoilPlot{ID: pl.ID, CentreLat: c.Lat(), CentreLon: c.Lon()})
		if err != nil {
			return fmt.Errorf("plot %s: %w", pl.ID, err)
		}
		fields[pl.ID] = f
	}
	for _, d := range p.m.Devices {
		sd, err := p.newDevice(k, seed, d, fields, lgws)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.ID, err)
		}
		p.devices = append(p.devices, sd)
	}
	// Robots.
	for _, r := range p.m.Robots {
		sr, err := p.newRobot(k, seed, r)
		if err != nil {
			return fmt.Errorf("robot %s: %w", r.ID, err)
		}
		p.robots = append(p.robots, sr)
	}
	return nil
}

// gatewayOf returns the publisher of a building's events in copy k: its
// building gateway, or, for a building without one, the simulator itself.
func (p *Player) gatewayOf(b *campus.Building, k int) *simGateway {
	if b.Gateway == "" {
		id := "citymesh-sim-" + CopyID(b.ID, k)
		return &simGateway{id: id, from: &Publisher{ID: id}, src: event.Source{Type: event.SourceSimulator, Service: "citymesh-sim"}}
	}
	g, _ := p.m.Gateway(b.Gateway)
	id := CopyID(g.ID, k)
	return &simGateway{id: id, status: true, from: &Publisher{ID: id},
		topic: event.NewTopic(g.Domain, g.Site, g.Kind, id, event.EventStatus),
		src:   event.Source{Type: event.SourceBuilding, Gateway: id}}
}

// buildingKind guesses a building's use from its name.
func buildingKind(b *campus.Building) BuildingKind {
	n := strings.ToLower(b.Name + " " + b.ID)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(n, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("lecture", "seminar", "auditorium", "hörsaal"):
		return KindLecture
	case has("library", "learning centre", "bibliothek"):
		return KindLibrary
	case has("refectory", "canteen", "mensa", "cafeteria"):
		return KindCanteen
	case has("laborator", " lab", "workshop", "werkstatt"):
		return KindLab
	case has("guest house", "residence", "dormitor", "wohnheim"):
		return KindResidence
	}
	return KindOffice
}

// roomKind chooses a room's use from its building's and its area.
func roomKind(b BuildingKind, areaM2 float64) RoomKind {
	switch b {
	case KindLecture:
		switch {
		case areaM2 >= 60:
			return RoomLecture
		case areaM2 >= 30:
			return RoomSeminar
		}
	case KindLibrary:
		if areaM2 >= 30 {
			return RoomReading
		}
	case KindLab:
		if areaM2 >= 30 {
			return RoomLab
		}
	default:
		if areaM2 >= 50 {
			return RoomSeminar
		}
	}
	return RoomOffice
}

// roomPointOf returns how a room point's value comes from the room model,
// with the change that makes the building gateway report it.
func roomPointOf(pt *campus.Point) (roomPoint, bool) {
	rp := roomPoint{unit: pt.Unit}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	switch pt.Quantity {
	case "temperature":
		rp.get, rp.thr, rp.res = func(s *RoomState) float64 { return s.TempC }, 0.2, 0.1
		if pt.Unit == event.Kelvin {
			rp.get = func(s *RoomState) float64 { return s.TempC + 273.15 }
		}
	case "temperatureSetpoint":
		rp.get, rp.res = func(s *RoomState) float64 { return s.SetpointC }, 0.1
	case "relativeHumidity":
		rp.get, rp.thr, rp.res = func(s *RoomState) float64 { return s.RHPct }, 2, 0.1
	case "co2":
		rp.get, rp.thr, rp.res = func(s *RoomState) float64 { return s.CO2PPM }, 50, 1
	case "occupancy":
		rp.get, rp.res = func(s *RoomState) float64 { return b(s.Occupied) }, 1
	case "windowContact":
		rp.get, rp.res = func(s *RoomState) float64 { return b(s.WindowOpen) }, 1
	case "heatingValvePosition":
		rp.get, rp.thr, rp.res = func(s *RoomState) float64 { return s.ValvePct }, 5, 1
	case "lightState":
		rp.get, rp.res = func(s *RoomState) float64 { return b(s.LightOn) }, 1
	case "illuminance":
		rp.get, rp.thr, rp.res = func(s *RoomState) float64 { return s.IlluminanceLux }, 50, 1
	default:
		return roomPoint{}, false
	}
	if pt.Unit == event.Kelvin && pt.Quantity != "temperature" {
		return roomPoint{}, false
	}
	return rp, true
}

// registerFlow maps an OBIS register to the building flow it counts and
// its share of it; power registers (1-b:1.7.0, 1.29.0) are derived from
// the import register instead (flow "").
func registerFlow(o energy.OBIS) (Flow, float64, regKind, error) {
	switch {
	case o.A == 1 && o.C == 1 && o.D == 8 && o.E == 1:
		return FlowElectricityT1, 1, regRegister, nil
	case o.A == 1 && o.C == 1 && o.D == 8 && o.E >= 2:
		return FlowElectricityT2, 1, regRegister, nil
	case o.A == 1 && o.C == 1 && o.D == 8:
		return FlowElectricity, 1, regRegister, nil
	case o.A == 1 && o.C == 2 && o.D == 8:
		return FlowElectricityExport, 1, regRegister, nil
	case o.A == 1 && o.C == 3 && o.D == 8:
		return FlowElectricity, 0.3, regRegister, nil // inductive reactive energy, tan φ ≈ 0.3 (estimate)
	case o.A == 1 && o.C == 4 && o.D == 8:
		return FlowElectricity, 0.05, regRegister, nil // capacitive (estimate)
	case o.A == 1 && o.C == 1 && o.D == 7:
		return "", 1, regPower, nil
	case o.A == 1 && o.C == 1 && o.D == 29:
		return "", 1, regDemand, nil
	case o.A == 5:
		return FlowCooling, 1, regRegister, nil
	case o.A == 6:
		return FlowHeat, 1, regRegister, nil
	case o.A == 7 && o.C == 13:
		return FlowGas, 0.95, regRegister, nil // normalised volume: operating × a conversion factor of about 0.95 (estimate)
	case o.A == 7:
		return FlowGas, 1, regRegister, nil
	case o.A == 8:
		return FlowWater, 1, regRegister, nil
	case o.A == 9:
		return FlowWater, 0.25, regRegister, nil // hot water, a quarter of the water drawn (estimate)
	}
	return "", 0, 0, fmt.Errorf("register %s is not simulated", o)
}

// unitScale returns how many of the campus unit one unit of the model's
// (kWh, m³, kW) makes, and the power of ten of it.
func unitScale(u event.Unit) (float64, int) {
	switch u {
	case event.MegawattHour:
		return 1e-3, -3
	case event.WattHour, event.Litre, event.Watt:
		return 1e3, 3
	}
	return 1, 0
}

// buildMeters creates each building's model with one model meter per
// register, and the player's meters.
func (p *Player) buildMeters(k int, seed uint64, gws map[string]*simGateway) error {
	byBuilding := map[string][]*campus.Meter{}
	subs := map[string]int{} // parent id and carrier → number of sub-meters
	for _, mt := range p.m.Meters {
		byBuilding[mt.Building] = append(byBuilding[mt.Building], mt)
		if mt.Parent != "" {
			subs[mt.Parent+"/"+string(mt.Carrier)]++
		}
	}
	start := dayStart(p.cfg.Start, p.loc)
	for _, b := range p.m.Buildings {
		meters := byBuilding[b.ID]
		if len(meters) == 0 {
			continue
		}
		bid := CopyID(b.ID, k)
		cfg := BuildingConfig{ID: bid, Kind: buildingKind(b), Start: start, Location: p.loc}
		cfg.FloorAreaM2 = math.Abs(geo.Area(b.Footprint)) * float64(b.Floors+b.Basements)
		if !(cfg.FloorAreaM2 > 0) {
			cfg.FloorAreaM2 = 1000
		}
		type regPlan struct {
			meter *campus.Meter
			reg   campus.Register
			flow  Flow
			share float64
			kind  regKind
		}
		var plans []regPlan
		var faults []Fault
		for _, mt := range meters {
			share := 1.0
			if mt.Parent != "" {
				share = subMeterShare / float64(subs[mt.Parent+"/"+string(mt.Carrier)])
			}
			mid := CopyID(mt.ID, k)
			for _, r := range mt.Registers {
				flow, rs, kind, err := registerFlow(r.OBIS)
				if err != nil {
					return fmt.Errorf("meter %s: %w", mt.ID, err)
				}
				switch flow {
				case FlowGas:
					cfg.Heating = HeatGas
				case FlowCooling:
					cfg.CoolingWPerM2K = coolingWPerM2K
				case FlowElectricityExport:
					cfg.PVkWp = pvKWpPerM2 * math.Abs(geo.Area(b.Footprint))
				}
				plans = append(plans, regPlan{mt, r, flow, share * rs, kind})
				// Meter faults name the meter: each of its registers gets them.
				for _, f := range p.cfg.Faults.For(mid) {
					switch f.Kind {
					case FaultMeterReset, FaultMeterRollover, FaultMeterExchange, FaultWaterLeak:
						if kind != regRegister {
							continue
						}
						if f.Kind.instantaneous() && !f.Start.After(start) {
							p.log.Warn("sim: a meter fault before the registers' start is ignored", "meter", mid, "kind", f.Kind, "start", start)
							continue
						}
						f.Asset = CopyPoint(r.Point, mt.ID, k)
						faults = append(faults, f)
					}
				}
			}
		}
		for _, f := range p.cfg.Faults.For(bid) {
			if f.Kind == FaultWaterLeak {
				faults = append(faults, f)
			}
		}
		fs, err := NewFaultSet(faults)
		if err != nil {
			return fmt.Errorf("building %s: %w", b.ID, err)
		}
		cfg.Faults = fs
		for _, pl := range plans {
			if pl.kind != regRegister {
				continue
			}
			_, exp := unitScale(pl.reg.Unit)
			mc := MeterConfig{ID: CopyPoint(pl.reg.Point, pl.meter.ID, k), Flow: pl.flow, OBIS: pl.reg.OBIS.String(), Share: pl.share}
			if pl.reg.Digits > 0 {
				mc.Digits = min(12, max(1, pl.reg.Digits-exp))
			} else {
				mc.Digits = 12
			}
			if exp > 0 { // Wh, litres: whole units of the campus's
				mc.Decimals = exp
			}
			cfg.Meters = append(cfg.Meters, mc)
		}
		// A power register needs its meter's import register; add a
		// hidden one where the meter has none.
		hidden := map[string]string{}
		for _, pl := range plans {
			if pl.kind == regRegister || hidden[pl.meter.ID] != "" || hasImport(pl.meter) {
				continue
			}
			id := CopyID(pl.meter.ID, k) + "/import"
			hidden[pl.meter.ID] = id
			cfg.Meters = append(cfg.Meters, MeterConfig{ID: id, Flow: FlowElectricity, Share: pl.share, Digits: 12})
		}
		bm, err := NewBuilding(seed, p.weather[b.Site], cfg)
		if err != nil {
			return err
		}
		for _, mt := range meters {
			mid := CopyID(mt.ID, k)
			sm := &simMeter{id: mid, topic: event.NewTopic(mt.Domain, mt.Site, mt.Kind, mid, event.EventReading), gw: gws[b.ID], b: bm}
			for _, pl := range plans {
				if pl.meter != mt {
					continue
				}
				scale, _ := unitScale(pl.reg.Unit)
				sr := simRegister{point: CopyPoint(pl.reg.Point, mt.ID, k), obis: pl.reg.OBIS.String(), unit: pl.reg.Unit,
					scale: scale, kind: pl.kind, share: pl.share}
				if pl.kind == regRegister {
					sr.m = bm.Meter(sr.point)
					sr.res = math.Pow(10, -float64(sr.m.cfg.Decimals)) * scale
				} else {
					sr.res = 0.01 * scale
					if sm.importM == nil {
						if id := hidden[mt.ID]; id != "" {
							sm.importM = bm.Meter(id)
						}
					}
				}
				sm.regs = append(sm.regs, sr)
			}
			if sm.importM == nil && hasImport(mt) {
				for _, r := range sm.regs {
					if r.m == nil {
						continue
					}
					if o := r.m.OBIS(); o.A == 1 && o.C == 1 && o.D == 8 && o.E == 0 {
						sm.importM = r.m
						break
					}
				}
			}
			p.meters = append(p.meters, sm)
		}
	}
	return nil
}

// hasImport reports whether a meter has the total import register
// 1-b:1.8.0, from which its power registers are derived.
func hasImport(mt *campus.Meter) bool {
	for _, r := range mt.Registers {
		if o := r.OBIS; o.A == 1 && o.C == 1 && o.D == 8 && o.E == 0 {
			return true
		}
	}
	return false
}

// newDevice builds a LoRaWAN device of copy k: its values' model, its
// radio links and its session.
func (p *Player) newDevice(k int, seed uint64, d *campus.Device, fields map[string]*SoilField, lgws []*loraGateway) (*simDevice, error) {
	app, ok := p.m.Application(d.Application)
	if !ok {
		return nil, fmt.Errorf("application %s is not in the campus", d.Application)
	}
	dt, ok := devices.Lookup(d.Type.ID)
	if !ok {
		return nil, fmt.Errorf("device type %s has no encoder", d.Type.ID)
	}
	eui, err := CopyEUI(d.DevEUI, k)
	if err != nil {
		return nil, err
	}
	e, _ := connector.ParseEUI64(eui)
	id := CopyID(d.ID, k)
	sd := &simDevice{copy: k, id: id, networkID: CopyID(d.NetworkID, k), eui: e, dev: d, app: app, ctype: d.Type, dtype: dt,
		w: p.weather[d.Site], lat: d.Location.Lat(), lon: d.Location.Lon(), seed: SeedOf(seed, "device/"+id)}
	switch app.Server {
	case campus.TheThingsStack:
		sd.ttsTopic = tts.Topic{ApplicationID: app.ApplicationID, TenantID: app.TenantID, DeviceID: sd.networkID, Event: tts.EventUp}
		if err := sd.ttsTopic.Validate(); err != nil {
			return nil, err
		}
	case campus.ChirpStack:
		sd.csTopic = chirpstack.Topic{ApplicationID: app.ApplicationID, DevEUI: e, Event: chirpstack.EventUp}
		if err := sd.csTopic.Validate(); err != nil {
			return nil, err
		}
		sd.profileID = uuid(p.cfg.Seed, int64(SeedOf(0, "profile/"+d.Type.ID)))
	default:
		return nil, fmt.Errorf("network server %q is not simulated", app.Server)
	}
	// The join EUI: The Things Industries' prefix on The Things Stack, the
	// vendor's on ChirpStack (both invented but well-formed).
	sd.joinEUI = connector.EUI64{0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x00, 0x00, byte(len(d.Type.ID))}
	if app.Server == campus.ChirpStack {
		sd.joinEUI = connector.EUI64{0xa8, 0x40, 0x41, 0x00, 0x00, 0x00, 0x01, 0x01}
	}
	for _, cf := range d.Type.Fields {
		f, ok := dt.Field(cf.Field)
		if !ok {
			return nil, fmt.Errorf("device type %s: field %s has no encoder field", d.Type.ID, cf.Field)
		}
		df := deviceField{name: cf.Field, field: cf, enc: f}
		if pt, ok := p.m.Point(d.ID + "/" + cf.Key); ok {
			df.point, df.unit = CopyPoint(pt.ID, d.ID, k), pt.Unit
		}
		sd.fields = append(sd.fields, df)
	}
	switch d.Type.ID {
	case devices.DraginoLSE01, devices.DraginoLSPH01, devices.DraginoLSNPK01:
		f := fields[d.Plot]
		if f == nil {
			f, err = NewSoilField(seed, SoilPlot{ID: "device/" + d.ID, CentreLat: sd.lat, CentreLon: sd.lon})
			if err != nil {
				return nil, err
			}
		}
		sd.probe, err = NewSoilProbe(seed, sd.w, f, SoilProbeConfig{ID: id, Lat: sd.lat, Lon: sd.lon, Start: p.cfg.Start})
		if err != nil {
			return nil, err
		}
	}
	sd.batteryBase = 0.9 + 0.1*unit(sd.seed, stBattery, 0)
	p.links(sd, lgws)
	sd.newSession(0)
	sd.fcnt = 100 + uint32(hash(sd.seed, stFCnt, 0)%20000) // a device that has been running a while
	for _, f := range p.cfg.Faults.For(id) {
		if f.Kind == FaultRejoin {
			sd.rejoins = append(sd.rejoins, f.Start)
		}
	}
	slices.SortFunc(sd.rejoins, time.Time.Compare)
	return sd, nil
}

// links finds the gateways that hear a device: the mean signal at each
// (path loss over the distance and a fixed shadowing per link), the
// spreading factor the network server settles on for the best of them,
// and every gateway whose mean SNR is above that spreading factor's
// demodulation floor. A device no gateway would hear at SF12 is heard by
// its best gateway anyway (with a warning): the simulator loses uplinks
// only through faults.
func (p *Player) links(d *simDevice, lgws []*loraGateway) {
	var all []radioLink
	for i, g := range lgws {
		dist := robot.HaversineM(robot.Point{Lat: d.lat, Lon: d.lon}, robot.Point{Lat: g.lat, Lon: g.lon})
		sh := clamp(gauss(SeedOf(d.seed, g.id), stShadow, 0), -2, 2) * ShadowSigmaDB
		rssi := DeviceTxPowerDBm - PathLossDB(dist) - sh
		all = append(all, radioLink{gw: i, distM: dist, rssi: rssi, snr: rssi - NoiseFloorDBm})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].snr > all[j].snr })
	if len(all) == 0 {
		p.log.Warn("sim: the campus has no LoRaWAN gateway; the device's uplinks name none", "device", d.id)
		d.sf = 7
		return
	}
	d.sf = ChooseSF(all[0].snr)
	for _, l := range all {
		if l.snr >= RequiredSNR(d.sf) {
			d.links = append(d.links, l)
		}
	}
	if len(d.links) == 0 {
		p.log.Warn("sim: no gateway hears the device, even at SF12; its best gateway receives it anyway", "device", d.id,
			"gateway", lgws[all[0].gw].id, "distance_m", math.Round(all[0].distM))
		l := all[0]
		l.snr = RequiredSNR(12) + 1
		l.rssi = l.snr + NoiseFloorDBm
		d.links = append(d.links, l)
	}
}

// newRobot builds a robot of copy k on its route.
func (p *Player) newRobot(k int, seed uint64, r *campus.Robot) (*simRobot, error) {
	id := CopyID(r.ID, k)
	route := *r.Route
	if route.Location == nil {
		route.Location = p.loc
	}
	rb, err := NewRobot(seed, RobotConfig{ID: id, Route: &route, Start: dayStart(p.cfg.Start, p.loc), Faults: p.cfg.Faults})
	if err != nil {
		return nil, err
	}
	sr := &simRobot{id: id, r: rb, route: &route, from: &Publisher{ID: id}, checkPoints: map[string]string{},
		src: event.Source{Type: event.SourceRobot}}
	topic := func(ev string) event.Topic { return event.NewTopic(r.Domain, r.Site, r.Kind, id, ev) }
	sr.topicPos, sr.topicStatus, sr.topicCheck, sr.topicPicture = topic(event.EventPosition), topic(event.EventStatus), topic(event.EventCheck), topic(event.EventPicture)
	for _, pt := range p.m.PointsOf(r.ID) {
		pid := CopyPoint(pt.ID, r.ID, k)
		switch {
		case pt.Check != "":
			sr.checkPoints[pt.Check] = pid
		case pt.Quantity == "location":
			sr.posPoint = pid
		case pt.Quantity == "batteryLevel":
			sr.batPoint, sr.batUnit = pid, pt.Unit
		}
	}
	if sr.posPoint == "" {
		return nil, fmt.Errorf("robot %s has no position point", r.ID)
	}
	return sr, nil
}

// schedule adds every source to the scheduler.
func (p *Player) schedule() error {
	from := p.cfg.Start
	add := func(kind sourceKind, idx int, e Every) error {
		id := SourceID(len(p.srcs))
		p.srcs = append(p.srcs, source{kind: kind, idx: int32(idx)})
		if p.cfg.LoadRate > 0 {
			return nil // scheduled evenly below
		}
		return p.sched.Add(id, e, from)
	}
	// Sources whose kind has no output are not played at all.
	o := p.cfg.Outputs
	for i, d := range p.devices {
		if d.app.Server == campus.ChirpStack && o.ChirpStack == nil || d.app.Server != campus.ChirpStack && o.TTS == nil {
			continue
		}
		iv := d.dev.Interval
		if err := add(srcDevice, i, Every{Interval: iv, Jitter: min(iv/10, 30*time.Second), Spread: true}); err != nil {
			return err
		}
	}
	for i := range p.meters {
		if o.Building == nil {
			break
		}
		if err := add(srcMeter, i, Every{Interval: p.cfg.MeterEvery, Jitter: min(p.cfg.MeterEvery/10, 20*time.Second)}); err != nil {
			return err
		}
	}
	for i := range p.rooms {
		if o.Building == nil {
			break
		}
		if err := add(srcRoom, i, Every{Interval: p.cfg.RoomEvery, Spread: true}); err != nil {
			return err
		}
	}
	for i, r := range p.robots {
		if o.Robot == nil {
			break
		}
		if err := add(srcRobot, i, Every{Interval: p.cfg.RobotEvery}); err != nil {
			return err
		}
		if p.cfg.LoadRate > 0 {
			for _, w := range r.route.Waypoints {
				for _, c := range w.Checks {
					if _, ok := r.checkPoints[c.ID]; !ok {
						continue
					}
					p.checks = append(p.checks, robotCheck{robot: r, check: c.ID})
					if err := add(srcRobotCheck, len(p.checks)-1, Every{}); err != nil {
						return err
					}
				}
			}
		}
	}
	if p.cfg.LoadRate > 0 {
		iv := time.Duration(float64(time.Second) / p.cfg.LoadRate)
		if err := p.sched.AddEvenly(0, len(p.srcs), iv, from); err != nil {
			return err
		}
	}
	// Building gateways with an outage fault are watched every minute, to
	// drop and restore their connection.
	for i, g := range p.bgws {
		if o.Building == nil {
			break
		}
		for _, f := range p.cfg.Faults.For(g.id) {
			if f.Kind == FaultGatewayOutage {
				id := SourceID(len(p.srcs))
				p.srcs = append(p.srcs, source{kind: srcGateway, idx: int32(i)})
				if err := p.sched.Add(id, Every{Interval: time.Minute}, from); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}
