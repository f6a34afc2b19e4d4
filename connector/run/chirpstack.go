package run

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/chirpstack"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/mqtt"
)

// chirpStackEvents are the event types a ChirpStack connector counts.
var chirpStackEvents = []chirpstack.EventType{chirpstack.EventUp, chirpstack.EventStatus, chirpstack.EventJoin,
	chirpstack.EventAck, chirpstack.EventTxAck, chirpstack.EventLog, chirpstack.EventLocation, chirpstack.EventIntegration}

// csProto reads ChirpStack v4's MQTT integration.
type csProto struct {
	up  *upstream
	qos byte
}

// setupChirpStack prepares the connection to the broker ChirpStack's MQTT
// integration publishes to: a subscription to every event of the
// application (application/{id}/device/+/event/+), at QoS 1 in a
// persistent session unless configured otherwise.
func (u *upstream) setupChirpStack(c ChirpStackConfig) error {
	app := u.app
	if err := chirpstack.ValidateUUID(app.ApplicationID); err != nil {
		return fmt.Errorf("application %s: ChirpStack id: %w", app.ID, err)
	}
	pass, err := secret(c.Password, c.PasswordFile)
	if err != nil {
		return fmt.Errorf("password_file: %w", err)
	}
	tc, err := c.TLS.config(c.URL)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	qos := byte(1)
	if c.QoS != nil {
		qos = *c.QoS
	}
	id := c.ClientID
	if id == "" {
		id = u.rt.opts.ClientIDPrefix + "-" + u.name
	}
	u.proto = &csProto{up: u, qos: qos}
	u.stats.messages = make(map[string]*atomic.Uint64)
	for _, ev := range chirpStackEvents {
		u.stats.messages[string(ev)] = new(atomic.Uint64)
	}
	u.src = &source{
		name: u.name,
		opts: client.Options{Addr: c.URL, TLSConfig: tc, ClientID: id, Version: mqtt.V311, CleanStart: qos == 0,
			Username: c.Username, Password: []byte(pass), HasPassword: pass != "", KeepAlive: 30 * time.Second,
			Logger: u.rt.log},
		subs: []mqtt.Subscription{{Filter: chirpstack.EventFilter(app.ApplicationID, ""), QoS: qos}},
		min:  u.rt.cfg.ReconnectMin, max: u.rt.cfg.ReconnectMax, log: u.rt.log,
		handler: u.onMessage,
	}
	return nil
}

// route finds the device of application/{id}/device/{DevEUI}/event/{type}.
func (p *csProto) route(topic string) *device {
	eui, err := connector.ParseEUI64(topicLevel(topic, 3))
	if err != nil {
		return nil
	}
	return p.up.byEUI[eui]
}

// handle handles one event of ChirpStack.
func (p *csProto) handle(ctx context.Context, j *job) {
	u, r := p.up, p.up.rt
	u.countEvent(topicLevel(j.topic, 5))
	ev, err := chirpstack.Decode(j.topic, j.payload)
	if err != nil {
		r.fail(u, j.dev, reasonParse, "event not parsed", "topic", j.topic, "err", err)
		return
	}
	info := ev.DeviceInfo()
	d := j.dev
	if d == nil {
		r.fail(u, nil, reasonUnknownDevice, "device not in the campus model's application",
			"device_name", info.DeviceName, "dev_eui", connector.EUI64(info.DevEUI).String())
		return
	}
	switch {
	case ev.Up != nil:
		r.handleUplink(ctx, d, p.uplink(d, ev.Up))
	case ev.Join != nil:
		r.join(ctx, d, p.at(ev.Join.Time), p.source(d, info, 0))
	case ev.Status != nil:
		s := ev.Status
		var detail string
		var pct *float64
		switch {
		case s.ExternalPowerSource:
			detail = "external power source"
		case s.BatteryLevelUnavailable:
			detail = "battery level unavailable"
		default:
			b := float64(s.BatteryLevel)
			pct = &b
			detail = fmt.Sprintf("battery %g %%", b)
		}
		detail += fmt.Sprintf(", link margin %d dB", s.Margin)
		r.deviceStatus(ctx, d, p.at(s.Time), p.source(d, info, 0), detail, pct)
	case ev.Ack != nil:
		res := resultAcknowledged
		if !ev.Ack.Acknowledged {
			res = resultNotAcknowledged
		}
		r.cmds.serverResult(ctx, d, res, ev.Ack.QueueItemID, "")
	case ev.TxAck != nil:
		r.cmds.serverResult(ctx, d, resultSent, ev.TxAck.QueueItemID, "")
	case ev.Log != nil:
		l := ev.Log
		if l.Level == "ERROR" || l.Level == "WARNING" {
			r.logEvery[reasonParse].Do(func() {
				r.log.Warn("connector: ChirpStack reports", "connector", u.name, "device", d.dev.ID,
					"level", string(l.Level), "code", string(l.Code), "description", l.Description)
			})
		}
	}
	// location, integration: counted only.
}

// at is t, or now when ChirpStack gave no time.
func (p *csProto) at(t time.Time) time.Time {
	if t.IsZero() {
		return p.up.rt.clock.Now()
	}
	return t
}

// source returns the LoRaWAN source of an event of d.
func (p *csProto) source(d *device, info *chirpstack.DeviceInfo, fCnt uint32) event.Source {
	name := info.DeviceName
	if name == "" {
		name = d.dev.NetworkID
	}
	return event.Source{
		Type: event.SourceLoRaWAN, NetworkServer: event.NetworkServerChirpStack,
		Tenant: info.TenantID, Application: info.ApplicationID, DeviceID: truncate(name, 128),
		DevEUI: d.dev.DevEUI, FCnt: &fCnt,
	}
}

// uplink turns an "up" event into the connectors' uplink.
func (p *csProto) uplink(d *device, ul *chirpstack.UplinkEvent) *uplink {
	key := ul.DedupeKey()
	up := &uplink{key: key, hasKey: true, id: eventID("chirpstack", key), time: p.at(ul.Time)}
	if ul.FPort <= 255 {
		up.fPort = uint8(ul.FPort)
	}
	up.payload, up.decoded = ul.Data, ul.Object

	meta := &up.meta
	meta.Source = p.source(d, &ul.DeviceInfo, ul.FCnt)
	meta.FPort = up.fPort
	if a := connector.DevAddr(ul.DevAddr); !a.IsZero() {
		meta.DevAddr = a.String()
	}
	meta.Confirmed = ul.Confirmed
	meta.Payload = ul.Data
	meta.CorrelationID = truncate(ul.DeduplicationID, 256)
	if ul.DR <= 15 {
		dr := uint8(ul.DR)
		meta.DataRate.Index = &dr
	}
	if tx := ul.TxInfo; tx != nil {
		meta.FrequencyHz = uint64(tx.Frequency)
		switch m := &tx.Modulation; {
		case m.LoRa != nil:
			cr := codeRate(string(m.LoRa.CodeRate), m.LoRa.CodeRateLegacy)
			meta.DataRate = event.DataRate{Modulation: event.ModulationLoRa, SpreadingFactor: uint8(min(m.LoRa.SpreadingFactor, 255)),
				BandwidthHz: m.LoRa.Bandwidth, CodingRate: cr, Index: meta.DataRate.Index}
		case m.FSK != nil:
			meta.DataRate = event.DataRate{Modulation: event.ModulationFSK, BitRate: m.FSK.Datarate, Index: meta.DataRate.Index}
		case m.LRFHSS != nil:
			meta.DataRate = event.DataRate{Modulation: event.ModulationLRFHSS, Index: meta.DataRate.Index}
		}
	}
	meta.Gateways = make([]event.GatewayRx, 0, len(ul.RxInfo))
	for i := range ul.RxInfo {
		rx := &ul.RxInfo[i]
		rssi, snr := float64(rx.RSSI), float64(rx.SNR)
		if rx.GatewayID == "" || !validRx(rssi, snr) {
			continue
		}
		g := event.GatewayRx{ID: truncate(rx.GatewayID, 128), RSSIdBm: rssi, SNRdB: snr}
		if eui, err := connector.ParseEUI64(rx.GatewayID); err == nil {
			g.EUI = eui.String()
		}
		if !rx.GWTime.IsZero() {
			at := rx.GWTime
			g.Time = &at
		}
		if l := rx.Location; l != nil && (l.Latitude != 0 || l.Longitude != 0) {
			g.Location = &event.Location{Lat: l.Latitude, Lon: l.Longitude}
			if l.Altitude != 0 {
				alt := l.Altitude
				g.Location.AltitudeM = &alt
			}
		}
		meta.Gateways = addGateway(meta.Gateways, g)
	}
	bestFirst(meta.Gateways)
	if len(meta.Gateways) > 100 {
		meta.Gateways = meta.Gateways[:100]
	}
	setBest(&meta.Source, meta.Gateways)
	return up
}

// codeRate returns a LoRa coding rate as events write it ("4/5") from
// ChirpStack's enum (CR_4_5) or its 4.0 text.
func codeRate(enum, legacy string) string {
	if s, ok := strings.CutPrefix(enum, "CR_"); ok {
		if a, b, ok := strings.Cut(s, "_"); ok {
			switch s := a + "/" + b; s {
			case "4/5", "4/6", "4/7", "4/8":
				return s
			}
		}
		return ""
	}
	switch enum {
	case "4/5", "4/6", "4/7", "4/8":
		return enum
	}
	switch legacy {
	case "4/5", "4/6", "4/7", "4/8":
		return legacy
	}
	return ""
}

// send enqueues a downlink at ChirpStack: a DownlinkCommand on
// application/{id}/device/{DevEUI}/command/down, whose id (a UUID) comes
// back in the ack and txack events.
func (p *csProto) send(ctx context.Context, d *device, dl *downlink) error {
	if dl.Replace {
		return fmt.Errorf("replace: ChirpStack's MQTT integration can only add to the queue")
	}
	topic, err := chirpstack.CommandTopic(p.up.app.ApplicationID, d.eui)
	if err != nil {
		return err
	}
	cmd := chirpstack.NewDownlinkCommand(d.eui, dl.FPort, dl.bytes)
	cmd.ID, cmd.Confirmed = dl.ref, dl.Confirmed
	body, err := chirpstack.MarshalDownlink(cmd)
	if err != nil {
		return err
	}
	return p.up.src.publish(ctx, &mqtt.Publish{Topic: topic, Payload: body, QoS: p.qos})
}
