package tts_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/pbjson"
	"github.com/citymesh/citymesh/connector/tts"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// TestParseFullUplink checks every field of the complete uplink of
// docs/platforms reference §1.4.
func TestParseFullUplink(t *testing.T) {
	t.Parallel()
	m, err := tts.Parse(readFile(t, "up-full.json"))
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := connector.ParseEUI64("A84041000181C61F")
	join, _ := connector.ParseEUI64("A840410000000101")
	gw, _ := connector.ParseEUI64("A84041FFFF24A438")
	addr, _ := connector.ParseDevAddr("260B1A2C")
	want := &tts.Message{
		EndDeviceIDs: tts.EndDeviceIdentifiers{
			DeviceID:       "soil-probe-07",
			ApplicationIDs: tts.ApplicationIdentifiers{ApplicationID: "vineyard-north"},
			DevEUI:         dev, JoinEUI: join, DevAddr: addr,
		},
		CorrelationIDs: []string{
			"as:up:01J9ZQ6M3S8V6F0QH3Y8K2N4TB",
			"gs:conn:01J9Y1C4G7W2ZC0Q7R5X9M3D1A",
			"gs:up:host:01J9Y1C4GB1R0S8E2J6V4K7P5N",
			"gs:uplink:01J9ZQ6KXW4T9D3F8B2C6N1M0Q",
			"ns:uplink:01J9ZQ6KXZ6H2J8L4P0R7T5V3W",
			"rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01J9ZQ6KXZ9Q1S5U7W3Y0A2C4E",
			"rpc:/ttn.lorawan.v3.NsAs/HandleUplink:01J9ZQ6M3R2T4V6X8Z0B1D3F5H",
		},
		ReceivedAt: mustTime(t, "2024-10-21T07:15:42.918236421Z"),
		Uplink: &tts.Uplink{
			SessionKeyID: pbjson.Bytes{0x01, 0x92, 0xbc, 0xc5, 0x6d, 0xe6, 0xd1, 0xc6, 0x1b, 0xe9, 0xdf, 0x19, 0xab, 0x5c, 0x76, 0x2f},
			FPort:        2,
			FCnt:         1842,
			FRMPayload:   pbjson.Bytes{0x0c, 0x1a, 0x01, 0x00, 0x64, 0x02, 0xbc, 0x00, 0x37, 0x00, 0x52, 0x01, 0x1a},
			DecodedPayload: map[string]any{
				"battery_v": 3.098, "soil_temperature_c": 14.2, "soil_moisture_pct": 31.6,
				"soil_ec_us_cm": 412.0, "soil_ph": 6.4, "soil_n_mg_kg": 55.0, "soil_p_mg_kg": 82.0, "soil_k_mg_kg": 282.0,
			},
			NormalizedPayload: []map[string]any{{"soil": map[string]any{
				"temperature": 14.2, "moisture": 31.6, "ec": 0.412, "pH": 6.4, "n": 55.0, "p": 82.0, "k": 282.0,
			}}},
			RxMetadata: []tts.RxMetadata{{
				GatewayIDs:      tts.GatewayIdentifiers{GatewayID: "eui-a84041ffff24a438", EUI: gw},
				Time:            mustTime(t, "2024-10-21T07:15:42.671391Z"),
				Timestamp:       1010590159,
				RSSI:            -97,
				ChannelRSSI:     -97,
				SNR:             7.25,
				FrequencyOffset: -2414,
				Location:        &tts.Location{Latitude: 46.52071, Longitude: 6.63361, Altitude: 412, Source: "SOURCE_REGISTRY"},
				UplinkToken:     mustBase64(t, "CiIKIAoUZXVpLWE4NDA0MWZmZmYyNGE0MzgSCKhAQf//JKQ4EM/P8OEDGgwIjra/uAYQ0dHt5wIgyMKFy9i7Ag=="),
				ChannelIndex:    5,
				ReceivedAt:      mustTime(t, "2024-10-21T07:15:42.699107273Z"),
			}},
			Settings: tts.TxSettings{
				DataRate:  tts.DataRate{LoRa: &tts.LoRaDataRate{Bandwidth: 125000, SpreadingFactor: 9, CodingRate: "4/5"}},
				Frequency: 867500000,
				Timestamp: 1010590159,
				Time:      mustTime(t, "2024-10-21T07:15:42.671391Z"),
			},
			ReceivedAt:      mustTime(t, "2024-10-21T07:15:42.706299995Z"),
			ConsumedAirtime: pbjson.Duration(205824 * time.Microsecond),
			Locations: map[string]tts.Location{
				"user": {Latitude: 46.52102, Longitude: 6.63290, Altitude: 405, Source: "SOURCE_REGISTRY"},
			},
			VersionIDs: &tts.EndDeviceVersionIdentifiers{
				BrandID: "dragino", ModelID: "lse01", HardwareVersion: "1.0", FirmwareVersion: "1.1.4", BandID: "EU_863_870",
			},
			NetworkIDs: &tts.NetworkIdentifiers{
				NetID: tts.HexBytes{0x00, 0x00, 0x13}, TenantID: "ttn", ClusterID: "eu1", ClusterAddress: "eu1.cloud.thethings.network",
			},
		},
	}
	if !reflect.DeepEqual(m, want) {
		g, _ := json.MarshalIndent(m, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("Parse:\n%s\nwant:\n%s", g, w)
	}
	key, ok := m.DedupeKey()
	if !ok || key.DevEUI != dev || key.FCnt != 1842 || key.DevAddr != addr || key.Session != connector.SessionID(m.Uplink.SessionKeyID) {
		t.Errorf("DedupeKey = %+v, %v", key, ok)
	}
	if m.Topic("ttn").String() != "v3/vineyard-north@ttn/devices/soil-probe-07/up" {
		t.Errorf("Topic = %s", m.Topic("ttn"))
	}
}

func mustBase64(t testing.TB, s string) pbjson.Bytes {
	t.Helper()
	var b pbjson.Bytes
	if err := json.Unmarshal([]byte(`"`+s+`"`), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGolden parses each message kind and writes it back: the result must
// be the same JSON as the input (what the stack wrote), field for field.
func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		event tts.Event
		check func(t *testing.T, m *tts.Message)
	}{
		{"up-full.json", tts.EventUp, nil},
		{"up-docs-2025.json", tts.EventUp, func(t *testing.T, m *tts.Message) {
			up := m.Uplink
			if !up.Confirmed || up.LastBatteryPercentage == nil || up.LastBatteryPercentage.Value != 90.118576 || up.LastBatteryPercentage.FCnt != 14 {
				t.Errorf("confirmed %v, last battery %+v", up.Confirmed, up.LastBatteryPercentage)
			}
			if up.NetworkIDs.NSID.String() != "EC656E000010181D" || up.NetworkIDs.TenantAddress == "" {
				t.Errorf("network IDs %+v", up.NetworkIDs)
			}
			if up.DecodedPayload["thermistorProperlyConnected"] != true || time.Duration(up.ConsumedAirtime) != 61696*time.Microsecond {
				t.Errorf("decoded %v, airtime %v", up.DecodedPayload, up.ConsumedAirtime)
			}
		}},
		{"up-minimal.json", tts.EventUp, func(t *testing.T, m *tts.Message) {
			up := m.Uplink
			if up.FPort != 0 || up.FCnt != 0 || up.FRMPayload != nil || up.DecodedPayload != nil || up.RxMetadata != nil ||
				!up.ReceivedAt.IsZero() || up.Confirmed || up.VersionIDs != nil || up.NetworkIDs != nil {
				t.Errorf("absent fields are not zero: %+v", up)
			}
			if !m.EndDeviceIDs.DevEUI.IsZero() || !m.ReceivedAt.IsZero() || m.CorrelationIDs != nil {
				t.Errorf("absent identifiers are not zero: %+v", m.EndDeviceIDs)
			}
			if _, ok := m.DedupeKey(); ok {
				t.Error("DedupeKey without a DevEUI")
			}
			if up.Settings.DataRate.LoRa.SpreadingFactor != 12 || up.Settings.Frequency != 868100000 || up.Settings.DataRate.LoRa.CodingRate != "" {
				t.Errorf("settings %+v", up.Settings)
			}
		}},
		{"up-normalized.json", tts.EventUpNormalized, func(t *testing.T, m *tts.Message) {
			soil, _ := m.UplinkNormalized.NormalizedPayload["soil"].(map[string]any)
			if soil["pH"] != 6.4 || m.UplinkNormalized.FCnt != 1842 {
				t.Errorf("normalized %v", m.UplinkNormalized.NormalizedPayload)
			}
		}},
		{"join.json", tts.EventJoin, func(t *testing.T, m *tts.Message) {
			if len(m.JoinAccept.SessionKeyID) != 16 || m.JoinAccept.ReceivedAt.IsZero() || m.EndDeviceIDs.DevAddr.String() != "260B7D33" {
				t.Errorf("join %+v", m.JoinAccept)
			}
		}},
		{"down-queued.json", tts.EventDownQueued, checkDown(func(m *tts.Message) *tts.Downlink { return m.DownlinkQueued })},
		{"down-sent.json", tts.EventDownSent, checkDown(func(m *tts.Message) *tts.Downlink { return m.DownlinkSent })},
		{"down-ack.json", tts.EventDownAck, checkDown(func(m *tts.Message) *tts.Downlink { return m.DownlinkAck })},
		{"down-nack.json", tts.EventDownNack, checkDown(func(m *tts.Message) *tts.Downlink { return m.DownlinkNack })},
		{"down-failed.json", tts.EventDownFailed, func(t *testing.T, m *tts.Message) {
			f := m.DownlinkFailed
			if f.Error.Name != "application_downlink_too_long" || f.Error.Attributes["maximum"] != 11.0 || len(f.Downlink.FRMPayload) != 47 {
				t.Errorf("failed %+v", f)
			}
		}},
		{"down-invalidated.json", tts.EventDownInvalidated, func(t *testing.T, m *tts.Message) {
			if q := m.DownlinkQueueInvalidated; len(q.Downlinks) != 1 || q.LastFCntDown != 16 {
				t.Errorf("invalidated %+v", q)
			}
		}},
		{"location-solved.json", tts.EventLocationSolved, func(t *testing.T, m *tts.Message) {
			l := m.LocationSolved
			if l.Location.Latitude != 49.148312 || l.Location.Accuracy != 18 || l.Location.Source != "SOURCE_LORA_TDOA_GEOLOCATION" || l.Attributes["hdop"] != "1.2" {
				t.Errorf("location %+v", l)
			}
		}},
		{"service-data.json", tts.EventServiceData, func(t *testing.T, m *tts.Message) {
			if m.ServiceData.Service != "lora-cloud-device-management-v1" || m.ServiceData.Data["result"] == nil {
				t.Errorf("service data %+v", m.ServiceData)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			in := readFile(t, tt.file)
			m, err := tts.Parse(in)
			if err != nil {
				t.Fatal(err)
			}
			if m.Event() != tt.event {
				t.Fatalf("Event = %q, want %q", m.Event(), tt.event)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
			out, err := tts.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, out, in)
			topic := m.Topic("ttn").String()
			if _, m2, err := tts.Decode(topic, in); err != nil || !reflect.DeepEqual(m, m2) {
				t.Errorf("Decode(%s) = %v", topic, err)
			}
		})
	}
}

func checkDown(get func(*tts.Message) *tts.Downlink) func(t *testing.T, m *tts.Message) {
	return func(t *testing.T, m *tts.Message) {
		d := get(m)
		if d == nil || d.FPort != 10 || d.FCnt != 17 || !bytes.Equal(d.FRMPayload, []byte{1, 0, 0, 0x3c}) || !d.Confirmed || d.Priority != tts.PriorityNormal || len(d.CorrelationIDs) != 2 {
			t.Errorf("downlink %+v", d)
		}
	}
}

// assertSameJSON checks that two JSON texts have the same value.
func assertSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	g, w = sameInstants(g), sameInstants(w)
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", " ")
		wi, _ := json.MarshalIndent(w, "", " ")
		t.Errorf("JSON differs:\n%s\nwant:\n%s", gi, wi)
	}
}

// sameInstants rewrites every timestamp in a JSON value in one form:
// protobuf writes 0, 3, 6 or 9 fractional digits, Go drops trailing zeros,
// and both are the same instant.
func sameInstants(v any) any {
	switch v := v.(type) {
	case string:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil && strings.Contains(v, "T") {
			return t.UTC().Format(time.RFC3339Nano)
		}
	case map[string]any:
		for k, e := range v {
			v[k] = sameInstants(e)
		}
	case []any:
		for i, e := range v {
			v[i] = sameInstants(e)
		}
	}
	return v
}

// TestOlderSettings: releases before 3.12 wrote the coding rate and the data
// rate index beside data_rate; Parse puts the coding rate where newer ones
// write it.
func TestOlderSettings(t *testing.T) {
	t.Parallel()
	in := readFile(t, "up-old-settings.json")
	m, err := tts.Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	s := m.Uplink.Settings
	if s.DataRate.LoRa.CodingRate != "4/5" || s.CodingRate != "4/5" || s.DataRateIndex == nil || *s.DataRateIndex != 5 || s.DataRate.LoRa.SpreadingFactor != 7 {
		t.Fatalf("settings %+v, lora %+v", s, s.DataRate.LoRa)
	}
	if !m.ReceivedAt.IsZero() || m.Uplink.RxMetadata[0].SNR != 6.8 {
		t.Errorf("received_at %v, snr %v", m.ReceivedAt, m.Uplink.RxMetadata[0].SNR)
	}
	// Written back, the coding rate appears in both places.
	out, _ := tts.Marshal(m)
	want := bytes.Replace(in, []byte(`"spreading_factor": 7
        }`), []byte(`"spreading_factor": 7, "coding_rate": "4/5"
        }`), 1)
	assertSameJSON(t, out, want)
}

func TestParseBadInput(t *testing.T) {
	t.Parallel()
	const ids = `"end_device_ids":{"device_id":"soil-probe-07","application_ids":{"application_id":"vineyard-north"}}`
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"empty", ``, tts.ErrSyntax},
		{"not JSON", `not json`, tts.ErrSyntax},
		{"truncated", `{"end_device_ids":{"device_id":"x"`, tts.ErrSyntax},
		{"array", `[1,2]`, tts.ErrSyntax},
		{"string", `"up"`, tts.ErrSyntax},
		{"null", `null`, tts.ErrInvalid},
		{"empty object", `{}`, tts.ErrInvalid},
		{"no device ID", `{"end_device_ids":{"application_ids":{"application_id":"vineyard-north"}},"uplink_message":{}}`, tts.ErrInvalid},
		{"bad device ID", `{"end_device_ids":{"device_id":"Soil_Probe","application_ids":{"application_id":"vineyard-north"}},"uplink_message":{}}`, tts.ErrInvalid},
		{"wildcard in device ID", `{"end_device_ids":{"device_id":"soil+","application_ids":{"application_id":"vineyard-north"}},"uplink_message":{}}`, tts.ErrInvalid},
		{"no application ID", `{"end_device_ids":{"device_id":"soil-probe-07"},"uplink_message":{}}`, tts.ErrInvalid},
		{"no message kind", `{` + ids + `}`, tts.ErrInvalid},
		{"null message kind", `{` + ids + `,"uplink_message":null}`, tts.ErrInvalid},
		{"two message kinds", `{` + ids + `,"uplink_message":{},"join_accept":{}}`, tts.ErrInvalid},
		{"f_port as a non-integer string", `{` + ids + `,"uplink_message":{"f_port":"2x"}}`, tts.ErrInvalid},
		{"f_port fraction", `{` + ids + `,"uplink_message":{"f_port":2.5}}`, tts.ErrInvalid},
		{"f_port as boolean", `{` + ids + `,"uplink_message":{"f_port":true}}`, tts.ErrInvalid},
		{"uplink_message as array", `{` + ids + `,"uplink_message":[]}`, tts.ErrInvalid},
		{"duplicate field", `{` + ids + `,"uplink_message":{"f_cnt":1,"f_cnt":2}}`, tts.ErrSyntax},
		{"invalid UTF-8", "{" + ids + ",\"uplink_message\":{\"decoded_payload\":{\"a\":\"\xff\"}}}", tts.ErrSyntax},
		{"join_accept with wrong type", `{` + ids + `,"join_accept":{"pending_session":"yes"}}`, tts.ErrInvalid},
		{"downlink_ack with bad base64", `{` + ids + `,"downlink_ack":{"frm_payload":"*"}}`, tts.ErrInvalid},
		{"f_port negative", `{` + ids + `,"uplink_message":{"f_port":-1}}`, tts.ErrInvalid},
		{"f_port 256", `{` + ids + `,"uplink_message":{"f_port":256}}`, tts.ErrInvalid},
		{"f_port 224", `{` + ids + `,"uplink_message":{"f_port":224}}`, tts.ErrInvalid},
		{"f_cnt over 32 bits", `{` + ids + `,"uplink_message":{"f_cnt":4294967296}}`, tts.ErrInvalid},
		{"bad base64", `{` + ids + `,"uplink_message":{"frm_payload":"DBoBAGQC!!"}}`, tts.ErrInvalid},
		{"frm_payload as number", `{` + ids + `,"uplink_message":{"frm_payload":12}}`, tts.ErrInvalid},
		{"decoded_payload as array", `{` + ids + `,"uplink_message":{"decoded_payload":[1,2]}}`, tts.ErrInvalid},
		{"frequency not a number", `{` + ids + `,"uplink_message":{"settings":{"frequency":"868.1MHz"}}}`, tts.ErrInvalid},
		{"frequency negative", `{` + ids + `,"uplink_message":{"settings":{"frequency":"-1"}}}`, tts.ErrInvalid},
		{"bad DevEUI", `{"end_device_ids":{"device_id":"soil-probe-07","application_ids":{"application_id":"vineyard-north"},"dev_eui":"A840"},"uplink_message":{}}`, tts.ErrInvalid},
		{"DevEUI not hex", `{"end_device_ids":{"device_id":"soil-probe-07","application_ids":{"application_id":"vineyard-north"},"dev_eui":"XX4041000181C61F"},"uplink_message":{}}`, tts.ErrInvalid},
		{"bad received_at", `{` + ids + `,"received_at":"yesterday","uplink_message":{}}`, tts.ErrInvalid},
		{"bad airtime", `{` + ids + `,"uplink_message":{"consumed_airtime":"0.2"}}`, tts.ErrInvalid},
		{"rssi as a word", `{` + ids + `,"uplink_message":{"rx_metadata":[{"gateway_ids":{"gateway_id":"gw-1"},"rssi":"strong"}]}}`, tts.ErrInvalid},
		{"snr as object", `{` + ids + `,"uplink_message":{"rx_metadata":[{"snr":{}}]}}`, tts.ErrInvalid},
		{"rx_metadata as object", `{` + ids + `,"uplink_message":{"rx_metadata":{}}}`, tts.ErrInvalid},
		{"correlation_ids as string", `{` + ids + `,"correlation_ids":"as:up:1","uplink_message":{}}`, tts.ErrInvalid},
		{"trailing garbage", `{` + ids + `,"uplink_message":{}} x`, tts.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := tts.Parse([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse(%s) = %v, %v; want %v", tt.in, m, err, tt.wantErr)
			}
		})
	}
}

// TestProtobufJSONForms: a protobuf JSON parser must accept integers and
// floats as strings, "NaN", null for any field, and URL-safe base64; the
// stack's own parser does.
func TestProtobufJSONForms(t *testing.T) {
	t.Parallel()
	in := `{"end_device_ids":{"device_id":"soil-probe-07","application_ids":{"application_id":"vineyard-north"},"dev_eui":"a84041000181c61f","join_eui":null},
	"correlation_ids":null,"received_at":null,"simulated":null,
	"uplink_message":{"f_port":"2","f_cnt":"1842","frm_payload":"-_8B","decoded_payload":null,
	"rx_metadata":[{"gateway_ids":{"gateway_id":"gw-1"},"rssi":"-97","snr":"NaN","channel_rssi":-97.5,"timestamp":1e3,"frequency_offset":-2414}],
	"settings":{"frequency":867500000,"data_rate":{"lora":{"bandwidth":"125000","spreading_factor":9}}}}}`
	m, err := tts.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	up := m.Uplink
	md := up.RxMetadata[0]
	if up.FPort != 2 || up.FCnt != 1842 || !bytes.Equal(up.FRMPayload, []byte{0xfb, 0xff, 0x01}) || up.DecodedPayload != nil ||
		md.RSSI != -97 || md.SNR == md.SNR || md.ChannelRSSI != -97.5 || md.Timestamp != 1000 || md.FrequencyOffset != -2414 ||
		up.Settings.Frequency != 867500000 || up.Settings.DataRate.LoRa.Bandwidth != 125000 || m.EndDeviceIDs.DevEUI.String() != "A84041000181C61F" {
		t.Fatalf("Parse = %+v", up)
	}
}

func TestParseToleratesUnknownFields(t *testing.T) {
	t.Parallel()
	in := `{"end_device_ids":{"device_id":"soil-probe-07","application_ids":{"application_id":"vineyard-north"},"future":1},
	"uplink_message":{"f_port":2,"attributes":{"row":"7"},"settings":{"data_rate":{"lora":{"bandwidth":125000},"newmod":{}}}},
	"@type":"type.googleapis.com/ttn.lorawan.v3.ApplicationUp","brand_new_field":[1,{"a":null}]}`
	m, err := tts.Parse([]byte(in))
	if err != nil || m.Uplink.FPort != 2 {
		t.Fatalf("Parse = %+v, %v", m, err)
	}
}

func TestDecodeChecksTopic(t *testing.T) {
	t.Parallel()
	up := readFile(t, "up-full.json")
	join := readFile(t, "join.json")
	tests := []struct {
		name    string
		topic   string
		payload []byte
		wantErr error
	}{
		{"right", "v3/vineyard-north@ttn/devices/soil-probe-07/up", up, nil},
		{"open source, no tenant", "v3/vineyard-north/devices/soil-probe-07/up", up, nil},
		{"other device", "v3/vineyard-north@ttn/devices/soil-probe-08/up", up, tts.ErrMismatch},
		{"other application", "v3/vineyard-south@ttn/devices/soil-probe-07/up", up, tts.ErrMismatch},
		{"join on the up topic", "v3/vineyard-north@ttn/devices/soil-probe-07/up", join, tts.ErrMismatch},
		{"uplink on the join topic", "v3/vineyard-north@ttn/devices/soil-probe-07/join", up, tts.ErrMismatch},
		{"a client's topic", "v3/vineyard-north@ttn/devices/soil-probe-07/down/push", up, tts.ErrTopic},
		{"not a topic of the API", "application/1/device/2/event/up", up, tts.ErrTopic},
		{"bad payload", "v3/vineyard-north@ttn/devices/soil-probe-07/up", []byte("{"), tts.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := tts.Decode(tt.topic, tt.payload)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Decode = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	t.Parallel()
	m := &tts.Message{EndDeviceIDs: tts.EndDeviceIdentifiers{DeviceID: "soil-probe-07", ApplicationIDs: tts.ApplicationIdentifiers{ApplicationID: "vineyard-north"}}}
	if _, err := tts.Marshal(m); !errors.Is(err, tts.ErrInvalid) {
		t.Errorf("Marshal without a kind = %v", err)
	}
	m.Uplink = &tts.Uplink{FPort: 2, FCnt: 1, FRMPayload: []byte{1}}
	b, err := tts.Marshal(m)
	if err != nil || !strings.Contains(string(b), `"uplink_message":{"f_port":2,"f_cnt":1,"frm_payload":"AQ=="}`) {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}

// TestFastPathMatchesReflection: the hand-written reader of the hot path
// gives the same Message as encoding/json's reflection over the same tags.
func TestFastPathMatchesReflection(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		in, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fast, err := tts.Parse(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var slow tts.Message
		if err := json.Unmarshal(in, &slow); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if up := slow.Uplink; up != nil && up.Settings.CodingRate != "" && up.Settings.DataRate.LoRa.CodingRate == "" {
			up.Settings.DataRate.LoRa.CodingRate = up.Settings.CodingRate // what Parse adds
		}
		if !reflect.DeepEqual(fast, &slow) {
			t.Errorf("%s: the fast path and reflection differ:\n%+v\n%+v", name, fast.Uplink, slow.Uplink)
		}
	}
}
