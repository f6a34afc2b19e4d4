package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/chirpstack"
	"github.com/citymesh/citymesh/connector/codec/devices"
	"github.com/citymesh/citymesh/connector/pbjson"
	"github.com/citymesh/citymesh/connector/tts"
	"github.com/citymesh/citymesh/event"
)

// loraGateway is a LoRaWAN gateway of one copy of the campus.
type loraGateway struct {
	id    string
	eui   connector.EUI64
	lat   float64
	lon   float64
	clock uint32 // offset of its concentrator's microsecond counter
}

// radioLink is a device's mean signal at one gateway.
type radioLink struct {
	gw               int // index into the copy's gateways
	distM, rssi, snr float64
}

// deviceField is one decoded field of a device: its encoder field, its
// catalogue entry and its point (empty when the campus removed it).
type deviceField struct {
	name  string
	field campus.DeviceField
	enc   devices.Field
	point string
	unit  event.Unit
}

// simDevice is one LoRaWAN device of one copy.
type simDevice struct {
	copy      int
	id        string
	networkID string
	eui       connector.EUI64
	joinEUI   connector.EUI64
	dev       *campus.Device
	app       *campus.Application
	ctype     campus.DeviceType
	dtype     devices.Type
	fields    []deviceField
	ttsTopic  tts.Topic
	csTopic   chirpstack.Topic
	profileID string

	w     *Weather
	probe *SoilProbe
	lat   float64
	lon   float64
	seed  uint64

	links []radioLink
	sf    int

	session     int
	devAddr     connector.DevAddr
	sessionKey  []byte
	fcnt        uint32
	rejoins     []time.Time
	uplinks     uint64
	lastStatus  time.Time
	statusSent  bool
	batteryBase float64

	reorder Reorder[*emission]

	// scratch buffers reused between uplinks
	vals []float64
	enc  map[string]float64
}

// newSession starts session n: a device address (in The Things Network's
// block 0x260B…, NetID 0x000013; in a private network's block 0x01… on
// ChirpStack) and a session key id.
func (d *simDevice) newSession(n int) {
	d.session = n
	h := hash(d.seed, stSession, int64(n))
	if d.app.Server == campus.ChirpStack {
		d.devAddr = connector.DevAddr{0x01, byte(h >> 16), byte(h >> 8), byte(h)}
	} else {
		d.devAddr = connector.DevAddr{0x26, 0x0b, byte(h >> 8), byte(h)}
	}
	d.sessionKey = make([]byte, 16)
	binary.BigEndian.PutUint64(d.sessionKey, hash(d.seed, stSession, int64(n)+1<<32))
	binary.BigEndian.PutUint64(d.sessionKey[8:], hash(d.seed, stSession, int64(n)+2<<32))
}

// values computes the device's readings at t in the codec's units, within
// the encoder's range and at its resolution, into d.vals.
func (p *Player) deviceValues(d *simDevice, t time.Time) {
	if cap(d.vals) < len(d.fields) {
		d.vals = make([]float64, len(d.fields))
	}
	d.vals = d.vals[:len(d.fields)]
	days := t.Sub(p.cfg.Start).Hours() / 24
	noise := func(i int64) float64 { return gauss(d.seed, stSensorNoise, t.Unix()*16+i) }
	var c Conditions
	var s SoilReading
	switch d.ctype.ID {
	case devices.SenseCAPS2120, devices.DraginoLLMS01:
		c = d.w.At(t)
	default:
		if d.probe != nil {
			s = d.probe.Reading(t)
		}
	}
	draginoV := 3.3 + 0.3*d.batteryBase - 0.0002*days + 0.002*noise(15)
	for i, f := range d.fields {
		var v float64
		switch f.name {
		case "airTemperature":
			v = c.TempC + 0.1*noise(0)
		case "relativeHumidity":
			v = c.RHPct
		case "lightIntensity":
			v = c.IlluminanceLux
		case "uvIndex":
			v = c.UVIndex
		case "windSpeed":
			v = c.WindMS
		case "windDirection":
			v = math.Mod(math.Round(c.WindDirDeg), 360)
		case "rainfall": // the rain of the last hour
			v = d.w.RainMM(t.Add(-time.Hour), t)
		case "barometricPressure":
			v = c.PressureHPa * 100
		case "leafMoisture":
			v = 100 * c.LeafWet
		case "leafTemperature":
			// Warmer than the air in sunshine, colder on clear nights
			// (radiative cooling); estimates.
			v = c.TempC + 3*c.GHIWm2/1000
			if c.GHIWm2 == 0 {
				v -= 1.5 * (1 - c.CloudFraction)
			}
		case "soilMoisture":
			v = s.MoisturePct
		case "soilTemperature":
			v = s.TempC
		case "soilConductivity":
			v = s.ECuScm
		case "soilPh":
			v = s.PH
		case "nitrogen":
			v = s.NMgKg
		case "phosphorus":
			v = s.PMgKg
		case "potassium":
			v = s.KMgKg
		case "battery":
			if f.enc.Unit == "%" {
				v = 100*d.batteryBase - 0.02*days
			} else {
				v = draginoV
			}
		}
		lo, hi := f.enc.Min, f.enc.Max
		scale := f.field.Scale
		if scale == 0 {
			scale = 1
		}
		lo, hi = math.Max(lo, f.field.Min/scale), math.Min(hi, f.field.Max/scale)
		d.vals[i] = roundTo(clamp(v, lo, hi), f.enc.Resolution)
	}
}

// gatewayDown reports whether a gateway outage fault holds id at t.
func (p *Player) gatewayDown(id string, t time.Time) bool {
	for _, f := range p.cfg.Faults.For(id) {
		if f.Kind == FaultGatewayOutage && f.Active(t) {
			return true
		}
	}
	return false
}

// reception is one gateway's reception of one uplink.
type reception struct {
	gw        *loraGateway
	rssi, snr float64
	gwTime    time.Time // end of the frame at the gateway
	gsTime    time.Time // when the gateway server received it
	timestamp uint32
}

// uplink is one uplink as the network server saw it.
type uplink struct {
	t       time.Time
	fcnt    uint32
	fport   uint8
	payload []byte
	sf      int
	channel int
	airtime time.Duration
	rx      []reception
	nsTime  time.Time
	asTime  time.Time
	key     int64
}

// emitDevice sends one uplink of a device.
func (p *Player) emitDevice(ctx context.Context, d *simDevice, due Due) error {
	t := due.At
	for len(d.rejoins) > 0 && !d.rejoins[0].After(t) {
		if err := p.rejoin(ctx, d, d.rejoins[0]); err != nil {
			return err
		}
		d.rejoins = d.rejoins[1:]
	}
	p.deviceValues(d, t)
	if d.enc == nil {
		d.enc = make(map[string]float64, len(d.fields))
	}
	for i, f := range d.fields {
		d.enc[f.name] = d.vals[i]
	}
	payload, fport, err := devices.Encode(d.ctype.ID, d.enc)
	if err != nil {
		return fmt.Errorf("player: device %s: %w", d.id, err)
	}
	out := p.cfg.Outputs.TTS
	if d.app.Server == campus.ChirpStack {
		out = p.cfg.Outputs.ChirpStack
	}
	outName := string(d.app.Server)
	del := p.cfg.Faults.Delivery(d.id, "", t, due.Seq)
	d.uplinks++
	if p.cfg.DuplicateEvery > 0 && d.uplinks%uint64(p.cfg.DuplicateEvery) == 0 {
		del.Duplicate = true
	}
	truth := make([]Truth, 0, len(d.fields))
	for i, f := range d.fields {
		if f.point == "" {
			continue
		}
		scale := f.field.Scale
		if scale == 0 {
			scale = 1
		}
		v := roundTo(f.field.FromCodec(d.vals[i]), f.enc.Resolution*scale)
		truth = append(truth, Truth{Point: f.point, Value: ptr(v), Unit: f.unit, Resolution: f.enc.Resolution * scale,
			Output: outName, DevEUI: d.eui.String()})
	}
	if del.Drop { // silent: the device sends nothing, its counter stays
		for i := range truth {
			truth[i].Time = t
			truth[i].Topic = p.deviceTopic(d)
		}
		p.deliver(ctx, &d.reorder, del, "silent", nil, truth)
		return nil
	}
	up := uplink{t: t, fcnt: d.fcnt, fport: fport, payload: payload, sf: d.sf, key: int64(d.copy)<<48 ^ int64(SeedOf(0, d.id)&0xffff)<<32 ^ int64(d.fcnt)<<4 ^ int64(d.session)}
	d.fcnt++
	up.channel = int(hash(d.seed, stChannel, int64(up.fcnt)) % uint64(len(EU868Channels)))
	up.airtime = Airtime(up.sf, LoRaBandwidthHz, LoRaWANOverhead+len(payload))
	gws := p.lgws[d.copy-p.cfg.FirstCopy]
	for i, l := range d.links {
		g := gws[l.gw]
		if p.gatewayDown(g.id, t) {
			continue
		}
		fade := FadingSigmaDB * clamp(gauss(d.seed, stFading, int64(up.fcnt)*64+int64(i)), -3, 3)
		rssi := math.Round(l.rssi + fade)
		snr := math.Max(RequiredSNR(up.sf), math.Round(SNRFromRSSI(l.rssi+fade)*4)/4)
		gwTime := t.Add(up.airtime)
		lat := time.Duration(20+60*unit(d.seed, stLatency, int64(up.fcnt)*64+int64(i))) * time.Millisecond
		up.rx = append(up.rx, reception{gw: g, rssi: rssi, snr: snr, gwTime: gwTime, gsTime: gwTime.Add(lat),
			timestamp: uint32(gwTime.UnixMicro()) + g.clock})
	}
	// Best first, as the network server orders them: highest SNR, then RSSI.
	for i := 1; i < len(up.rx); i++ {
		for j := i; j > 0 && (up.rx[j].snr > up.rx[j-1].snr || up.rx[j].snr == up.rx[j-1].snr && up.rx[j].rssi > up.rx[j-1].rssi); j-- {
			up.rx[j], up.rx[j-1] = up.rx[j-1], up.rx[j]
		}
	}
	for i := range truth {
		fc := up.fcnt
		truth[i].FCnt = &fc
		truth[i].Topic = p.deviceTopic(d)
	}
	if len(up.rx) == 0 {
		for i := range truth {
			truth[i].Time = t.Add(up.airtime)
		}
		p.deliver(ctx, &d.reorder, Delivery{Drop: true}, "gateway_outage", nil, truth)
		return nil
	}
	up.nsTime = up.rx[0].gsTime
	for _, r := range up.rx[1:] {
		if r.gsTime.Before(up.nsTime) {
			up.nsTime = r.gsTime
		}
	}
	up.nsTime = up.nsTime.Add(2 * time.Millisecond)
	up.asTime = up.nsTime.Add(210 * time.Millisecond) // after the network server's deduplication window
	names := make([]string, len(up.rx))
	for i, r := range up.rx {
		names[i] = r.gw.id
	}
	for i := range truth {
		truth[i].Time = up.nsTime
		truth[i].Gateways = names
	}
	from := p.ttsPub
	if d.app.Server == campus.ChirpStack {
		from = p.csPub
	}
	e := &emission{out: out, from: from, counter: &p.stats.uplinks}
	m, err := p.uplinkMessage(d, &up)
	if err != nil {
		return err
	}
	e.msgs = []Message{m}
	if del.Duplicate {
		// The copy arrives through another path: the second gateway's
		// alone if there is one, later, with its own correlation ids.
		alt := up
		alt.key ^= 0x5a5a
		if len(up.rx) > 1 {
			alt.rx = up.rx[1:2]
		} else {
			alt.rx = []reception{up.rx[0]}
		}
		alt.rx[0].gsTime = alt.rx[0].gsTime.Add(40 * time.Millisecond)
		alt.nsTime = alt.nsTime.Add(40 * time.Millisecond)
		alt.asTime = alt.asTime.Add(40 * time.Millisecond)
		am, err := p.uplinkMessage(d, &alt)
		if err != nil {
			return err
		}
		e.alt = []Message{am}
	}
	p.deliver(ctx, &d.reorder, del, "", e, truth)
	if d.app.Server == campus.ChirpStack && (!d.statusSent || !t.Before(d.lastStatus.Add(p.cfg.StatusEvery))) {
		d.statusSent, d.lastStatus = true, t
		if err := p.chirpStackStatus(ctx, d, &up); err != nil {
			return err
		}
	}
	return nil
}

// deviceTopic is the network server topic a device's uplinks go to.
func (p *Player) deviceTopic(d *simDevice) string {
	if d.app.Server == campus.ChirpStack {
		return d.csTopic.String()
	}
	return d.ttsTopic.String()
}

// brandModel returns a device type's Device Repository brand and model
// ids: "dragino-lse01" → dragino, lse01.
func brandModel(typeID string) (string, string) {
	b, m, _ := strings.Cut(typeID, "-")
	return b, m
}

// correlationIDs returns The Things Stack's correlation ids of an uplink:
// the application server's, the gateway server's and the network server's,
// and those of the RPCs between them.
func (p *Player) correlationIDs(d *simDevice, up *uplink) []string {
	id := func(i int64) string { return ulid(up.nsTime, d.seed, up.key*16+i) }
	return []string{
		"as:up:" + id(0),
		"gs:conn:" + ulid(up.rx[0].gwTime.Truncate(24*time.Hour), SeedOf(p.cfg.Seed, up.rx[0].gw.id), 0),
		"gs:up:host:" + id(1),
		"gs:uplink:" + id(2),
		"ns:uplink:" + id(3),
		"rpc:/ttn.lorawan.v3.GsNs/HandleUplink:" + id(4),
		"rpc:/ttn.lorawan.v3.NsAs/HandleUplink:" + id(5),
	}
}

// decoded returns the decoded payload a payload formatter would give.
func (d *simDevice) decoded() map[string]any {
	m := make(map[string]any, len(d.fields))
	for i, f := range d.fields {
		m[f.name] = d.vals[i]
	}
	return m
}

// uplinkMessage writes an uplink as its network server publishes it.
func (p *Player) uplinkMessage(d *simDevice, up *uplink) (Message, error) {
	freq := EU868Channels[up.channel]
	var payload []byte
	var err error
	if d.app.Server == campus.ChirpStack {
		ev := &chirpstack.Event{Up: &chirpstack.UplinkEvent{
			DeduplicationID: uuid(d.seed, up.key), Time: up.nsTime, DeviceInfo: p.deviceInfo(d),
			DevAddr: chirpstack.DevAddr(d.devAddr), ADR: true, DR: uint32(EU868DataRate(up.sf)), FCnt: up.fcnt, FPort: uint32(up.fport),
			Data: pbjson.Bytes(up.payload), RegionConfigID: "eu868",
			TxInfo: &chirpstack.UplinkTxInfo{Frequency: freq, Modulation: chirpstack.Modulation{LoRa: &chirpstack.LoRaModulation{
				Bandwidth: LoRaBandwidthHz, SpreadingFactor: uint32(up.sf), CodeRate: "CR_4_5"}}},
		}}
		if p.cfg.DecodedPayload {
			ev.Up.Object = d.decoded()
		}
		for i, r := range up.rx {
			ctx := make([]byte, 4)
			binary.BigEndian.PutUint32(ctx, r.timestamp)
			ev.Up.RxInfo = append(ev.Up.RxInfo, chirpstack.UplinkRxInfo{
				GatewayID: r.gw.eui.Lower(), UplinkID: uint32(hash(d.seed, stUUID, up.key*8+int64(i))), GWTime: r.gwTime, NSTime: up.nsTime,
				RSSI: int32(r.rssi), SNR: float32(r.snr), Channel: uint32(up.channel),
				Location: &chirpstack.Location{Latitude: r.gw.lat, Longitude: r.gw.lon}, Context: ctx, CRCStatus: "CRC_OK",
			})
		}
		payload, err = chirpstack.MarshalEvent(ev)
		if err != nil {
			return Message{}, fmt.Errorf("player: device %s: %w", d.id, err)
		}
		return Message{Topic: d.csTopic.String(), Payload: payload}, nil
	}
	brand, model := brandModel(d.ctype.ID)
	u := &tts.Uplink{
		SessionKeyID: pbjson.Bytes(d.sessionKey), FPort: uint32(up.fport), FCnt: up.fcnt, FRMPayload: pbjson.Bytes(up.payload),
		Settings: tts.TxSettings{DataRate: tts.DataRate{LoRa: &tts.LoRaDataRate{Bandwidth: LoRaBandwidthHz, SpreadingFactor: uint32(up.sf), CodingRate: "4/5"}},
			Frequency: pbjson.Uint64(freq), Timestamp: up.rx[0].timestamp, Time: up.rx[0].gwTime},
		ReceivedAt: up.nsTime, ConsumedAirtime: pbjson.Duration(up.airtime),
		VersionIDs: &tts.EndDeviceVersionIdentifiers{BrandID: brand, ModelID: model, BandID: "EU_863_870"},
		NetworkIDs: &tts.NetworkIdentifiers{NetID: tts.HexBytes{0x00, 0x00, 0x13}, TenantID: d.app.TenantID, ClusterID: clusterID(d.app.Address), ClusterAddress: d.app.Address},
	}
	if p.cfg.DecodedPayload {
		u.DecodedPayload = d.decoded()
	}
	for i, r := range up.rx {
		tok := make([]byte, 16)
		binary.BigEndian.PutUint64(tok, hash(d.seed, stUUID, up.key*8+int64(i)))
		binary.BigEndian.PutUint32(tok[8:], r.timestamp)
		u.RxMetadata = append(u.RxMetadata, tts.RxMetadata{
			GatewayIDs: tts.GatewayIdentifiers{GatewayID: r.gw.id, EUI: r.gw.eui}, Time: r.gwTime, Timestamp: r.timestamp,
			RSSI: float32(r.rssi), ChannelRSSI: float32(r.rssi), SNR: float32(r.snr),
			Location:    &tts.Location{Latitude: r.gw.lat, Longitude: r.gw.lon, Source: "SOURCE_REGISTRY"},
			UplinkToken: tok, ChannelIndex: uint32(up.channel), ReceivedAt: r.gsTime,
		})
	}
	msg := &tts.Message{
		EndDeviceIDs:   tts.EndDeviceIdentifiers{DeviceID: d.networkID, ApplicationIDs: tts.ApplicationIdentifiers{ApplicationID: d.app.ApplicationID}, DevEUI: d.eui, JoinEUI: d.joinEUI, DevAddr: d.devAddr},
		CorrelationIDs: p.correlationIDs(d, up),
		ReceivedAt:     up.asTime,
		Uplink:         u,
	}
	payload, err = tts.Marshal(msg)
	if err != nil {
		return Message{}, fmt.Errorf("player: device %s: %w", d.id, err)
	}
	return Message{Topic: d.ttsTopic.String(), Payload: payload}, nil
}

// clusterID returns a The Things Stack cluster's id from its address
// ("eu1.cloud.thethings.network" → "eu1").
func clusterID(address string) string {
	id, _, _ := strings.Cut(address, ".")
	return id
}

// deviceInfo is a device's ChirpStack description.
func (p *Player) deviceInfo(d *simDevice) chirpstack.DeviceInfo {
	return chirpstack.DeviceInfo{
		TenantID: d.app.TenantID, TenantName: p.m.Name, ApplicationID: d.app.ApplicationID, ApplicationName: d.app.ID,
		DeviceProfileID: d.profileID, DeviceProfileName: d.ctype.Vendor + " " + d.ctype.Model,
		DeviceName: d.networkID, DevEUI: chirpstack.EUI64(d.eui), DeviceClassEnabled: "CLASS_A",
	}
}

// chirpStackStatus publishes a ChirpStack status event after an uplink:
// the battery level in per cent and the link margin (the uplink's best
// SNR, as a device's DevStatusAns reports it, rounded).
func (p *Player) chirpStackStatus(ctx context.Context, d *simDevice, up *uplink) error {
	var level float32
	for i, f := range d.fields {
		if f.name != "battery" {
			continue
		}
		v := d.vals[i]
		if f.enc.Unit == "V" { // a Li-SOCl2 cell: about empty at 3.0 V, full at 3.6 V (estimate)
			v = 100 * (v - 3.0) / 0.6
		}
		level = float32(math.Round(clamp(v, 0, 100)))
	}
	ev := &chirpstack.Event{Status: &chirpstack.StatusEvent{
		DeduplicationID: uuid(d.seed, up.key^0x7777), Time: up.nsTime.Add(time.Second), DeviceInfo: p.deviceInfo(d),
		Margin: int32(math.Round(up.rx[0].snr)), BatteryLevel: level,
	}}
	b, err := chirpstack.MarshalEvent(ev)
	if err != nil {
		return fmt.Errorf("player: device %s: %w", d.id, err)
	}
	topic := d.csTopic
	topic.Event = chirpstack.EventStatus
	p.publish(ctx, p.cfg.Outputs.ChirpStack, p.csPub, Message{Topic: topic.String(), Payload: b}, &p.stats.devStatus)
	return nil
}

// rejoin starts a device's new session at t and publishes the join.
func (p *Player) rejoin(ctx context.Context, d *simDevice, t time.Time) error {
	d.newSession(d.session + 1)
	d.fcnt = 0
	if d.app.Server == campus.ChirpStack {
		ev := &chirpstack.Event{Join: &chirpstack.JoinEvent{DeduplicationID: uuid(d.seed, int64(d.session)<<40), Time: t,
			DeviceInfo: p.deviceInfo(d), DevAddr: chirpstack.DevAddr(d.devAddr), RegionConfigID: "eu868"}}
		b, err := chirpstack.MarshalEvent(ev)
		if err != nil {
			return fmt.Errorf("player: device %s: %w", d.id, err)
		}
		topic := d.csTopic
		topic.Event = chirpstack.EventJoin
		p.publish(ctx, p.cfg.Outputs.ChirpStack, p.csPub, Message{Topic: topic.String(), Payload: b}, &p.stats.joins)
		return nil
	}
	msg := &tts.Message{
		EndDeviceIDs:   tts.EndDeviceIdentifiers{DeviceID: d.networkID, ApplicationIDs: tts.ApplicationIdentifiers{ApplicationID: d.app.ApplicationID}, DevEUI: d.eui, JoinEUI: d.joinEUI, DevAddr: d.devAddr},
		CorrelationIDs: []string{"as:up:" + ulid(t, d.seed, int64(d.session)<<40), "ns:uplink:" + ulid(t, d.seed, int64(d.session)<<40+1)},
		ReceivedAt:     t,
		JoinAccept:     &tts.JoinAccept{SessionKeyID: pbjson.Bytes(d.sessionKey), ReceivedAt: t},
	}
	b, err := tts.Marshal(msg)
	if err != nil {
		return fmt.Errorf("player: device %s: %w", d.id, err)
	}
	topic := d.ttsTopic
	topic.Event = tts.EventJoin
	p.publish(ctx, p.cfg.Outputs.TTS, p.ttsPub, Message{Topic: topic.String(), Payload: b}, &p.stats.joins)
	return nil
}
