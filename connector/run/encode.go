package run

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/event"
)

// The connectors publish a measurement and an uplink event per uplink.
// event.NewMessage writes them with encoding/json's reflection, which took
// a quarter of an uplink's time (BenchmarkStages); message writes these two
// kinds by hand into the very bytes and properties event.NewMessage gives
// (TestMessageMatchesNewMessage compares them for every kind of value),
// after the same validation. Any other event goes through NewMessage.

// message returns the bus message of event e on topic t (whose text is
// name), as event.NewMessage does.
func message(t event.Topic, name string, e event.Event) (bus.Message, error) {
	if h := e.Head(); h.ID == "" || h.Asset != t.Asset {
		return event.NewMessage(t, e) // the id from a hash; or NewMessage's error
	}
	var payload []byte
	switch e := e.(type) {
	case *event.Measurement:
		if err := e.Validate(); err != nil {
			return bus.Message{}, err
		}
		payload = appendMeasurement(make([]byte, 0, 384+128*len(e.Values)), e)
	case *event.Uplink:
		if err := e.Validate(); err != nil {
			return bus.Message{}, err
		}
		payload = appendUplink(make([]byte, 0, 640+192*len(e.Gateways)+48*len(e.Points)), e)
	default:
		return event.NewMessage(t, e)
	}
	h := e.Head()
	k := e.Kind()
	props := make([]bus.Property, 6, 7)
	props[0] = bus.Property{Key: "specversion", Value: event.CloudEventsSpecVersion}
	props[1] = bus.Property{Key: "id", Value: h.ID}
	props[2] = bus.Property{Key: "source", Value: "/" + string(t.Domain) + "/" + t.Site + "/" + string(t.Kind) + "/" + t.Asset}
	props[3] = bus.Property{Key: "type", Value: ceTypes[k]}
	props[4] = bus.Property{Key: "time", Value: h.Time.UTC().Format(time.RFC3339Nano)}
	props[5] = bus.Property{Key: "dataschema", Value: schemaURLs[k]}
	if m, ok := e.(*event.Measurement); ok && len(m.Values) == 1 {
		props = append(props, bus.Property{Key: "subject", Value: m.Values[0].Point})
	}
	return bus.Message{Topic: name, Payload: payload, QoS: event.QoS, Retain: event.Retained(k),
		ContentType: event.ContentType, Properties: props}, nil
}

// ceTypes and schemaURLs are the CloudEvents type and data schema of the
// two kinds message writes.
var (
	ceTypes = map[event.Kind]string{
		event.KindMeasurement: event.CloudEventsType(event.KindMeasurement),
		event.KindUplink:      event.CloudEventsType(event.KindUplink),
	}
	schemaURLs = map[event.Kind]string{
		event.KindMeasurement: event.SchemaURL(event.KindMeasurement),
		event.KindUplink:      event.SchemaURL(event.KindUplink),
	}
)

func appendHeader(b []byte, h *event.Header) []byte {
	b = append(b, '{')
	if h.ID != "" {
		b = append(b, `"id":`...)
		b = appendString(b, h.ID)
		b = append(b, ',')
	}
	b = append(b, `"time":"`...)
	b = h.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","asset":`...)
	b = appendString(b, h.Asset)
	b = append(b, `,"source":`...)
	return appendSource(b, &h.Source)
}

func appendSource(b []byte, s *event.Source) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, string(s.Type))
	if s.Simulated {
		b = append(b, `,"simulated":true`...)
	}
	b = appendField(b, "network_server", s.NetworkServer)
	b = appendField(b, "tenant", s.Tenant)
	b = appendField(b, "application", s.Application)
	b = appendField(b, "device_id", s.DeviceID)
	b = appendField(b, "dev_eui", s.DevEUI)
	if s.FCnt != nil {
		b = append(b, `,"f_cnt":`...)
		b = strconv.AppendUint(b, uint64(*s.FCnt), 10)
	}
	b = appendField(b, "gateway", s.Gateway)
	if s.RSSIdBm != nil {
		b = append(b, `,"rssi_dbm":`...)
		b = appendFloat(b, *s.RSSIdBm)
	}
	if s.SNRdB != nil {
		b = append(b, `,"snr_db":`...)
		b = appendFloat(b, *s.SNRdB)
	}
	b = appendField(b, "service", s.Service)
	return append(b, '}')
}

// appendField appends ,"name":"value" unless value is empty (omitempty).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

func appendMeasurement(b []byte, m *event.Measurement) []byte {
	b = appendHeader(b, &m.Header)
	b = append(b, `,"values":[`...)
	for i := range m.Values {
		if i > 0 {
			b = append(b, ',')
		}
		v := &m.Values[i]
		b = append(b, `{"point":`...)
		b = appendString(b, v.Point)
		b = appendField(b, "quantity", v.Quantity)
		b = append(b, `,"value":`...)
		b = appendFloat(b, v.Value)
		b = append(b, `,"unit":`...)
		b = appendString(b, string(v.Unit))
		b = appendField(b, "obis", v.OBIS)
		if v.Time != nil {
			b = append(b, `,"time":"`...)
			b = v.Time.AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func appendUplink(b []byte, u *event.Uplink) []byte {
	b = appendHeader(b, &u.Header)
	b = append(b, `,"f_port":`...)
	b = strconv.AppendUint(b, uint64(u.FPort), 10)
	b = appendField(b, "dev_addr", u.DevAddr)
	if u.Confirmed {
		b = append(b, `,"confirmed":true`...)
	}
	if len(u.Payload) > 0 {
		b = append(b, `,"payload":"`...)
		b = base64.StdEncoding.AppendEncode(b, u.Payload)
		b = append(b, '"')
	}
	b = append(b, `,"frequency_hz":`...)
	b = strconv.AppendUint(b, u.FrequencyHz, 10)
	dr := &u.DataRate
	b = append(b, `,"data_rate":{"modulation":`...)
	b = appendString(b, dr.Modulation)
	if dr.SpreadingFactor != 0 {
		b = append(b, `,"spreading_factor":`...)
		b = strconv.AppendUint(b, uint64(dr.SpreadingFactor), 10)
	}
	if dr.BandwidthHz != 0 {
		b = append(b, `,"bandwidth_hz":`...)
		b = strconv.AppendUint(b, uint64(dr.BandwidthHz), 10)
	}
	b = appendField(b, "coding_rate", dr.CodingRate)
	if dr.BitRate != 0 {
		b = append(b, `,"bit_rate":`...)
		b = strconv.AppendUint(b, uint64(dr.BitRate), 10)
	}
	if dr.Index != nil {
		b = append(b, `,"index":`...)
		b = strconv.AppendUint(b, uint64(*dr.Index), 10)
	}
	b = append(b, '}')
	if u.AirtimeS != nil {
		b = append(b, `,"airtime_s":`...)
		b = appendFloat(b, *u.AirtimeS)
	}
	b = append(b, `,"gateways":[`...)
	for i := range u.Gateways {
		if i > 0 {
			b = append(b, ',')
		}
		g := &u.Gateways[i]
		b = append(b, `{"id":`...)
		b = appendString(b, g.ID)
		b = appendField(b, "eui", g.EUI)
		b = append(b, `,"rssi_dbm":`...)
		b = appendFloat(b, g.RSSIdBm)
		b = append(b, `,"snr_db":`...)
		b = appendFloat(b, g.SNRdB)
		if g.Time != nil {
			b = append(b, `,"time":"`...)
			b = g.Time.AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
		if l := g.Location; l != nil {
			b = append(b, `,"location":{"lat":`...)
			b = appendFloat(b, l.Lat)
			b = append(b, `,"lon":`...)
			b = appendFloat(b, l.Lon)
			if l.AltitudeM != nil {
				b = append(b, `,"altitude_m":`...)
				b = appendFloat(b, *l.AltitudeM)
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendField(b, "correlation_id", u.CorrelationID)
	if len(u.Points) > 0 {
		b = append(b, `,"points":[`...)
		for i, p := range u.Points {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendString appends s as encoding/json writes it. Plain printable
// ASCII without the characters it escapes (", \, <, >, &) is written as it
// is; anything else goes through encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat appends a finite f as encoding/json writes a float64: the
// shortest decimal that reads back as f, in exponent form below 1e-6 and
// from 1e21 on (with a one-digit negative exponent written e-7, not
// e-07).
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// A one-digit exponent has no leading zero: e-7, as encoding/json writes it.
		n := len(b) - start
		if n >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}
