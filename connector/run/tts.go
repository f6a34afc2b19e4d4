package run

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/pbjson"
	"github.com/citymesh/citymesh/connector/tts"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/mqtt"
)

// ttsEvents are the events a TTS connector subscribes to.
var ttsEvents = []tts.Event{tts.EventUp, tts.EventJoin, tts.EventLocationSolved,
	tts.EventDownSent, tts.EventDownAck, tts.EventDownNack, tts.EventDownFailed}

// ttsProto reads The Things Stack v3's MQTT API.
type ttsProto struct {
	up     *upstream
	tenant string
}

// setupTTS prepares the connection to The Things Stack for c: the
// application server's MQTT server, user {application}@{tenant}, the API
// key as password, MQTT 3.1.1 with a clean session (the stack publishes
// at QoS 0 and keeps no session), the subscriptions at QoS 0.
func (u *upstream) setupTTS(c TTSConfig) error {
	app := u.app
	if err := tts.ValidateID(app.ApplicationID); err != nil {
		return fmt.Errorf("application %s: The Things Stack id: %w", app.ID, err)
	}
	url := c.URL
	if url == "" {
		if app.Address == "" {
			return fmt.Errorf("url: required, as the campus model gives application %s no address", app.ID)
		}
		url = "tls://" + app.Address + ":8883"
	}
	key, err := secret(c.APIKey, c.APIKeyFile)
	if err != nil {
		return fmt.Errorf("api_key_file: %w", err)
	}
	tc, err := c.TLS.config(url)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	user := c.Username
	if user == "" {
		user = app.ApplicationID
		if app.TenantID != "" {
			user += "@" + app.TenantID
		}
	}
	id := c.ClientID
	if id == "" {
		id = fmt.Sprintf("%s-%s-%x", u.rt.opts.ClientIDPrefix, u.name, time.Now().UnixNano()&0xffffff)
	}
	p := &ttsProto{up: u, tenant: app.TenantID}
	u.proto = p
	u.stats.messages = make(map[string]*atomic.Uint64)
	var subs []mqtt.Subscription
	for _, ev := range ttsEvents {
		subs = append(subs, mqtt.Subscription{Filter: tts.Filter(app.ApplicationID, app.TenantID, ev), QoS: 0})
		u.stats.messages[string(ev)] = new(atomic.Uint64)
	}
	u.src = &source{
		name: u.name,
		opts: client.Options{Addr: url, TLSConfig: tc, ClientID: id, Version: mqtt.V311, CleanStart: true,
			Username: user, Password: []byte(key), HasPassword: true, KeepAlive: 30 * time.Second,
			Logger: u.rt.log},
		subs: subs, min: u.rt.cfg.ReconnectMin, max: u.rt.cfg.ReconnectMax, log: u.rt.log,
		handler: u.onMessage,
	}
	return nil
}

// route finds the device of v3/{app}@{tenant}/devices/{device}/{event}.
func (p *ttsProto) route(topic string) *device {
	return p.up.byNetworkID[topicLevel(topic, 3)]
}

// handle handles one message of The Things Stack.
func (p *ttsProto) handle(ctx context.Context, j *job) {
	u, r := p.up, p.up.rt
	t, m, err := tts.Decode(j.topic, j.payload)
	if t.Event != "" {
		u.countEvent(string(t.Event))
	}
	if err != nil {
		r.fail(u, j.dev, reasonParse, "message not parsed", "topic", j.topic, "err", err)
		return
	}
	ids := &m.EndDeviceIDs
	d := j.dev
	if d == nil && !ids.DevEUI.IsZero() {
		// A device whose id on the server is not the model's network_id.
		d = u.byEUI[ids.DevEUI]
	}
	switch {
	case d == nil:
		r.fail(u, nil, reasonUnknownDevice, "device not in the campus model's application",
			"device_id", ids.DeviceID, "dev_eui", ids.DevEUI.String())
		return
	case !ids.DevEUI.IsZero() && ids.DevEUI != d.eui:
		r.fail(u, d, reasonUnknownDevice, "the device's DevEUI is not the campus model's",
			"device_id", ids.DeviceID, "dev_eui", ids.DevEUI.String(), "model_dev_eui", d.dev.DevEUI)
		return
	}
	switch {
	case m.Uplink != nil:
		r.handleUplink(ctx, d, p.uplink(d, t, m))
	case m.JoinAccept != nil:
		at := m.JoinAccept.ReceivedAt
		if at.IsZero() {
			at = p.received(m)
		}
		r.join(ctx, d, at, p.source(d, t, m, 0))
	case m.DownlinkSent != nil:
		r.cmds.serverResult(ctx, d, resultSent, p.correlation(m, m.DownlinkSent), "")
	case m.DownlinkAck != nil:
		r.cmds.serverResult(ctx, d, resultAcknowledged, p.correlation(m, m.DownlinkAck), "")
	case m.DownlinkNack != nil:
		r.cmds.serverResult(ctx, d, resultNotAcknowledged, p.correlation(m, m.DownlinkNack), "")
	case m.DownlinkFailed != nil:
		e := m.DownlinkFailed.Error
		detail := strings.TrimSpace(e.Namespace + " " + e.Name + ": " + e.MessageFormat)
		r.cmds.serverResult(ctx, d, resultFailed, p.correlation(m, &m.DownlinkFailed.Downlink), detail)
	}
	// location/solved: no event kind carries a device's position (the
	// campus model holds it); counted only.
}

// received is when the application server received m, else now.
func (p *ttsProto) received(m *tts.Message) time.Time {
	if !m.ReceivedAt.IsZero() {
		return m.ReceivedAt
	}
	return p.up.rt.clock.Now()
}

// correlation returns the command id citymesh put into a downlink's
// correlation ids, "" if none.
func (p *ttsProto) correlation(m *tts.Message, dl *tts.Downlink) string {
	if dl != nil {
		if id := commandFromCorrelation(dl.CorrelationIDs); id != "" {
			return id
		}
	}
	return commandFromCorrelation(m.CorrelationIDs)
}

// source returns the LoRaWAN source of a message of d.
func (p *ttsProto) source(d *device, t tts.Topic, m *tts.Message, fCnt uint32) event.Source {
	tenant := t.TenantID
	if tenant == "" && m.Uplink != nil && m.Uplink.NetworkIDs != nil {
		tenant = m.Uplink.NetworkIDs.TenantID
	}
	return event.Source{
		Type: event.SourceLoRaWAN, Simulated: m.Simulated, NetworkServer: event.NetworkServerTTS,
		Tenant: tenant, Application: m.EndDeviceIDs.ApplicationIDs.ApplicationID,
		DeviceID: m.EndDeviceIDs.DeviceID, DevEUI: d.dev.DevEUI, FCnt: &fCnt,
	}
}

// uplink turns an uplink message into the connectors' uplink.
func (p *ttsProto) uplink(d *device, t tts.Topic, m *tts.Message) *uplink {
	ul := m.Uplink
	key, ok := m.DedupeKey()
	if !ok { // an ABP device without a DevEUI on the server
		key = connector.UplinkKey{DevEUI: d.eui, DevAddr: m.EndDeviceIDs.DevAddr, Session: connector.SessionID(ul.SessionKeyID), FCnt: ul.FCnt}
	}
	up := &uplink{key: key, hasKey: true, id: eventID("tts", key), time: ul.ReceivedAt}
	if up.time.IsZero() {
		up.time = p.received(m)
	}
	if ul.FPort <= 255 {
		up.fPort = uint8(ul.FPort)
	}
	if ul.AppSKey == nil { // else the payload is still encrypted
		up.payload = ul.FRMPayload
	}
	up.decoded, up.normalized = ul.DecodedPayload, ul.NormalizedPayload

	meta := &up.meta
	meta.Source = p.source(d, t, m, ul.FCnt)
	meta.FPort = up.fPort
	if !m.EndDeviceIDs.DevAddr.IsZero() {
		meta.DevAddr = m.EndDeviceIDs.DevAddr.String()
	}
	meta.Confirmed = ul.Confirmed
	meta.Payload = ul.FRMPayload
	meta.FrequencyHz = uint64(ul.Settings.Frequency)
	dr := &ul.Settings.DataRate
	switch {
	case dr.LoRa != nil:
		meta.DataRate = event.DataRate{Modulation: event.ModulationLoRa, SpreadingFactor: uint8(min(dr.LoRa.SpreadingFactor, 255)),
			BandwidthHz: dr.LoRa.Bandwidth, CodingRate: dr.LoRa.CodingRate}
	case dr.FSK != nil:
		meta.DataRate = event.DataRate{Modulation: event.ModulationFSK, BitRate: dr.FSK.BitRate}
	case dr.LRFHSS != nil:
		meta.DataRate = event.DataRate{Modulation: event.ModulationLRFHSS}
	}
	if i := ul.Settings.DataRateIndex; i != nil && *i <= 15 {
		idx := uint8(*i)
		meta.DataRate.Index = &idx
	}
	if a := time.Duration(ul.ConsumedAirtime); a > 0 && a < 100*time.Second {
		s := a.Seconds()
		meta.AirtimeS = &s
	}
	for _, c := range m.CorrelationIDs {
		if strings.HasPrefix(c, "as:up:") {
			meta.CorrelationID = truncate(c, 256)
			break
		}
	}
	meta.Gateways = make([]event.GatewayRx, 0, len(ul.RxMetadata))
	for i := range ul.RxMetadata {
		md := &ul.RxMetadata[i]
		id := md.GatewayIDs.GatewayID
		if id == "" && md.PacketBroker != nil {
			id = "packetbroker"
			if g := md.PacketBroker.ForwarderGatewayID; g != nil && *g != "" {
				id = *g
			}
		}
		rssi := float64(md.RSSI)
		if rssi == 0 {
			rssi = float64(md.ChannelRSSI)
		}
		snr := float64(md.SNR)
		if id == "" || !validRx(rssi, snr) {
			continue
		}
		g := event.GatewayRx{ID: truncate(id, 128), RSSIdBm: rssi, SNRdB: snr}
		if !md.GatewayIDs.EUI.IsZero() {
			g.EUI = md.GatewayIDs.EUI.String()
		}
		if !md.Time.IsZero() {
			at := md.Time
			g.Time = &at
		}
		if l := md.Location; l != nil && (l.Latitude != 0 || l.Longitude != 0) {
			g.Location = &event.Location{Lat: l.Latitude, Lon: l.Longitude}
			if l.Altitude != 0 {
				alt := float64(l.Altitude)
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

// addGateway adds g, or keeps the better of g and an antenna of the same
// gateway already in gws.
func addGateway(gws []event.GatewayRx, g event.GatewayRx) []event.GatewayRx {
	for i := range gws {
		if gws[i].ID == g.ID {
			if g.SNRdB > gws[i].SNRdB || (g.SNRdB == gws[i].SNRdB && g.RSSIdBm > gws[i].RSSIdBm) {
				gws[i] = g
			}
			return gws
		}
	}
	return append(gws, g)
}

// send queues a downlink at The Things Stack: down/push (or
// down/replace), at QoS 0 as the stack accepts.
func (p *ttsProto) send(ctx context.Context, d *device, dl *downlink) error {
	app := p.up.app
	topic, err := tts.DownlinkTopic(app.ApplicationID, app.TenantID, d.dev.NetworkID, dl.Replace)
	if err != nil {
		return err
	}
	prio := tts.PriorityNormal
	if dl.Priority != "" {
		prio = pbjson.Enum(dl.Priority)
	}
	body, err := tts.MarshalDownlinks(tts.Downlink{FPort: uint32(dl.FPort), FRMPayload: dl.bytes, Confirmed: dl.Confirmed,
		Priority: prio, CorrelationIDs: []string{correlationPrefix + dl.ref}})
	if err != nil {
		return err
	}
	return p.up.src.publish(ctx, &mqtt.Publish{Topic: topic, Payload: body, QoS: 0})
}
