// Package lorawantest builds the messages a LoRaWAN network server
// publishes for the devices of a campus model — The Things Stack v3
// uplinks and joins, ChirpStack v4 events — with the real payload bytes
// each device type sends (devices.Encode), and the values a connector must
// make of them. Tests and benchmarks of the connectors use it.
package lorawantest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/chirpstack"
	"github.com/citymesh/citymesh/connector/codec/devices"
	"github.com/citymesh/citymesh/connector/pbjson"
	"github.com/citymesh/citymesh/connector/tts"
)

// Gateway is a gateway that received an uplink.
type Gateway struct {
	ID        string
	EUI       connector.EUI64
	RSSI, SNR float32
}

// DefaultGateway is the gateway of an uplink that names none.
var DefaultGateway = Gateway{ID: "hn-wartberg-tower", EUI: connector.EUI64{0xA8, 0x40, 0x41, 0xFF, 0xFF, 0x24, 0xA4, 0x38}, RSSI: -97, SNR: 7.25}

// Uplink is one uplink of a device.
type Uplink struct {
	App    *campus.Application
	Device *campus.Device
	FCnt   uint32
	// Values are the device type's fields (codec names, codec units).
	Values map[string]float64
	// Decoded adds the values as the network server's decoded payload, as
	// when a payload formatter runs there.
	Decoded bool
	// Payload, when set, is sent instead of Encode's bytes (garbage, say).
	Payload []byte
	// FPort, when set, is sent instead of the device type's.
	FPort uint8
	// Gateways received it; none means DefaultGateway.
	Gateways []Gateway
	// ReceivedAt is when the network server received it; zero is now.
	ReceivedAt time.Time
	// Session is the session key id (The Things Stack).
	Session []byte
	// Normalized is The Things Stack's normalized payload.
	Normalized []map[string]any
}

// bytes returns the FRMPayload and FPort.
func (u *Uplink) bytes() ([]byte, uint8, error) {
	payload, fPort := u.Payload, u.FPort
	if payload == nil {
		b, p, err := devices.Encode(u.Device.Type.ID, u.Values)
		if err != nil {
			return nil, 0, err
		}
		payload = b
		if fPort == 0 {
			fPort = p
		}
	}
	if fPort == 0 {
		fPort = 2
	}
	return payload, fPort, nil
}

func (u *Uplink) at() time.Time {
	if u.ReceivedAt.IsZero() {
		return time.Now().UTC()
	}
	return u.ReceivedAt
}

func (u *Uplink) gateways() []Gateway {
	if len(u.Gateways) == 0 {
		return []Gateway{DefaultGateway}
	}
	return u.Gateways
}

// TTS returns the topic and payload The Things Stack publishes for the
// uplink.
func (u *Uplink) TTS() (string, []byte, error) {
	payload, fPort, err := u.bytes()
	if err != nil {
		return "", nil, err
	}
	eui, err := connector.ParseEUI64(u.Device.DevEUI)
	if err != nil {
		return "", nil, err
	}
	at := u.at()
	session := u.Session
	if session == nil {
		session = []byte("session-1")
	}
	ul := &tts.Uplink{
		SessionKeyID: session, FPort: uint32(fPort), FCnt: u.FCnt, FRMPayload: payload,
		NormalizedPayload: u.Normalized,
		Settings: tts.TxSettings{DataRate: tts.DataRate{LoRa: &tts.LoRaDataRate{Bandwidth: 125000, SpreadingFactor: 9, CodingRate: "4/5"}},
			Frequency: 867500000},
		ReceivedAt:      at,
		ConsumedAirtime: pbjson.Duration(205824 * time.Microsecond),
		NetworkIDs:      &tts.NetworkIdentifiers{TenantID: u.App.TenantID, ClusterID: "eu1"},
	}
	if u.Decoded {
		ul.DecodedPayload = make(map[string]any, len(u.Values))
		for k, v := range u.Values {
			ul.DecodedPayload[k] = v
		}
	}
	for _, g := range u.gateways() {
		ul.RxMetadata = append(ul.RxMetadata, tts.RxMetadata{GatewayIDs: tts.GatewayIdentifiers{GatewayID: g.ID, EUI: g.EUI},
			RSSI: g.RSSI, ChannelRSSI: g.RSSI, SNR: g.SNR, Time: at.Add(-250 * time.Millisecond), ReceivedAt: at.Add(-200 * time.Millisecond)})
	}
	m := &tts.Message{
		EndDeviceIDs: tts.EndDeviceIdentifiers{DeviceID: u.Device.NetworkID,
			ApplicationIDs: tts.ApplicationIdentifiers{ApplicationID: u.App.ApplicationID},
			DevEUI:         eui, DevAddr: connector.DevAddr{0x26, 0x0B, eui[6], eui[7]}},
		CorrelationIDs: []string{fmt.Sprintf("as:up:%016X%08X", eui, u.FCnt)},
		ReceivedAt:     at.Add(200 * time.Millisecond),
		Uplink:         ul,
	}
	body, err := tts.Marshal(m)
	if err != nil {
		return "", nil, err
	}
	return m.Topic(u.App.TenantID).String(), body, nil
}

// TTSJoin returns the topic and payload of a join of d.
func TTSJoin(app *campus.Application, d *campus.Device, session []byte, at time.Time) (string, []byte, error) {
	eui, err := connector.ParseEUI64(d.DevEUI)
	if err != nil {
		return "", nil, err
	}
	m := &tts.Message{
		EndDeviceIDs: tts.EndDeviceIdentifiers{DeviceID: d.NetworkID,
			ApplicationIDs: tts.ApplicationIdentifiers{ApplicationID: app.ApplicationID}, DevEUI: eui},
		ReceivedAt: at,
		JoinAccept: &tts.JoinAccept{SessionKeyID: session, ReceivedAt: at},
	}
	body, err := tts.Marshal(m)
	if err != nil {
		return "", nil, err
	}
	return m.Topic(app.TenantID).String(), body, nil
}

// ChirpStack returns the topic and payload ChirpStack publishes for the
// uplink.
func (u *Uplink) ChirpStack() (string, []byte, error) {
	payload, fPort, err := u.bytes()
	if err != nil {
		return "", nil, err
	}
	eui, err := connector.ParseEUI64(u.Device.DevEUI)
	if err != nil {
		return "", nil, err
	}
	at := u.at()
	up := &chirpstack.UplinkEvent{
		DeduplicationID: fmt.Sprintf("%08x-0000-4000-8000-%012x", u.FCnt, eui[2:]),
		Time:            at,
		DeviceInfo:      DeviceInfo(u.App, u.Device),
		DevAddr:         chirpstack.DevAddr{0x01, 0x89, eui[6], eui[7]},
		DR:              3, FCnt: u.FCnt, FPort: uint32(fPort), Data: payload,
		TxInfo: &chirpstack.UplinkTxInfo{Frequency: 868100000, Modulation: chirpstack.Modulation{
			LoRa: &chirpstack.LoRaModulation{Bandwidth: 125000, SpreadingFactor: 9, CodeRate: "CR_4_5"}}},
		RegionConfigID: "eu868",
	}
	if u.Decoded {
		up.Object = make(map[string]any, len(u.Values))
		for k, v := range u.Values {
			up.Object[k] = v
		}
	}
	for _, g := range u.gateways() {
		up.RxInfo = append(up.RxInfo, chirpstack.UplinkRxInfo{GatewayID: g.EUI.Lower(), UplinkID: 1, GWTime: at.Add(-250 * time.Millisecond),
			RSSI: int32(g.RSSI), SNR: g.SNR, Channel: 1, CRCStatus: "CRC_OK"})
	}
	ev := &chirpstack.Event{Up: up}
	body, err := chirpstack.MarshalEvent(ev)
	if err != nil {
		return "", nil, err
	}
	t := chirpstack.Topic{ApplicationID: u.App.ApplicationID, DevEUI: eui, Event: chirpstack.EventUp}
	return t.String(), body, nil
}

// DeviceInfo is what ChirpStack says of device d.
func DeviceInfo(app *campus.Application, d *campus.Device) chirpstack.DeviceInfo {
	eui, _ := connector.ParseEUI64(d.DevEUI)
	return chirpstack.DeviceInfo{TenantID: app.TenantID, TenantName: "campus", ApplicationID: app.ApplicationID,
		ApplicationName: app.ID, DeviceProfileID: "0c1a9a6e-6b3d-4c3e-9d3f-2f0f3b0a1c11", DeviceProfileName: d.Type.ID,
		DeviceName: d.NetworkID, DevEUI: chirpstack.EUI64(eui)}
}

// ChirpStackEvent returns the topic and payload of a ChirpStack event ev
// (Status, Join, Ack, TxAck, ...) of d.
func ChirpStackEvent(app *campus.Application, d *campus.Device, typ chirpstack.EventType, ev *chirpstack.Event) (string, []byte, error) {
	eui, err := connector.ParseEUI64(d.DevEUI)
	if err != nil {
		return "", nil, err
	}
	body, err := chirpstack.MarshalEvent(ev)
	if err != nil {
		return "", nil, err
	}
	t := chirpstack.Topic{ApplicationID: app.ApplicationID, DevEUI: eui, Event: typ}
	return t.String(), body, nil
}

// RandomValues returns values of every field of the campus device type
// typ, within the campus catalogue's range and the device's, on the
// device's resolution.
func RandomValues(rng *rand.Rand, typ campus.DeviceType) map[string]float64 {
	dt, _ := devices.Lookup(typ.ID)
	out := make(map[string]float64)
	for _, f := range typ.Fields {
		df, ok := dt.Field(f.Field)
		if !ok {
			continue
		}
		lo, hi := max(df.Min, f.Min/scale(f)), min(df.Max, f.Max/scale(f))
		v := lo + rng.Float64()*(hi-lo)
		v = math.Round(v/df.Resolution) * df.Resolution
		out[f.Field] = math.Min(math.Max(v, df.Min), df.Max)
	}
	return out
}

func scale(f campus.DeviceField) float64 {
	if f.Scale == 0 {
		return 1
	}
	return f.Scale
}

// Expected returns the values of d's points the connector must publish
// for values, by point id, and each point's tolerance: half the field's
// resolution, in the point's unit.
func Expected(d *campus.Device, values map[string]float64) (want, tolerance map[string]float64) {
	dt, _ := devices.Lookup(d.Type.ID)
	want, tolerance = make(map[string]float64), make(map[string]float64)
	for _, f := range d.Type.Fields {
		v, ok := values[f.Field]
		if !ok {
			continue
		}
		p := d.ID + "/" + f.Key
		want[p] = f.FromCodec(v)
		res := 1e-9
		if df, ok := dt.Field(f.Field); ok {
			res = df.Resolution
		}
		tolerance[p] = math.Abs(f.FromCodec(res))/2 + 1e-9
	}
	return want, tolerance
}
