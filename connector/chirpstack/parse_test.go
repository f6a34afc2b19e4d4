package chirpstack_test

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
	"github.com/citymesh/citymesh/connector/chirpstack"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// topicOf builds the topic an event file is published on.
func topicOf(t testing.TB, payload []byte, event chirpstack.EventType) string {
	t.Helper()
	var v struct {
		DeviceInfo struct {
			ApplicationID string `json:"applicationId"`
			DevEUI        string `json:"devEui"`
		} `json:"deviceInfo"`
	}
	if err := json.Unmarshal(payload, &v); err != nil {
		t.Fatal(err)
	}
	return "application/" + v.DeviceInfo.ApplicationID + "/device/" + v.DeviceInfo.DevEUI + "/event/" + string(event)
}

// TestDocsExamples parses the JSON example of every event type in
// ChirpStack's documentation (src/chirpstack/integrations/events.md).
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	dev := connector.EUI64{1, 1, 1, 1, 1, 1, 1, 1}
	tests := []struct {
		event chirpstack.EventType
		check func(t *testing.T, e *chirpstack.Event)
	}{
		{chirpstack.EventUp, func(t *testing.T, e *chirpstack.Event) {
			up := e.Up
			want := &chirpstack.UplinkEvent{
				DeduplicationID: "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
				Time:            time.Date(2022, 7, 18, 9, 34, 15, 775023242, time.UTC),
				DeviceInfo: chirpstack.DeviceInfo{
					TenantID: "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", TenantName: "ChirpStack",
					ApplicationID: "17c82e96-be03-4f38-aef3-f83d48582d97", ApplicationName: "Test application",
					DeviceProfileID: "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", DeviceProfileName: "Test device-profile",
					DeviceName: "Test device", DevEUI: chirpstack.EUI64(dev), Tags: map[string]string{"key": "value"},
				},
				DevAddr: chirpstack.DevAddr{0x00, 0x18, 0x94, 0x40},
				DR:      1,
				FPort:   1,
				Data:    []byte{0xaa},
				RxInfo: []chirpstack.UplinkRxInfo{{
					GatewayID: "0016c001f153a14c", UplinkID: 4217106255, RSSI: -36, SNR: 10.5,
					Context:  []byte{0x13, 0x73, 0x96, 0x39},
					Metadata: map[string]string{"region_name": "eu868", "region_common_name": "EU868"},
				}},
				TxInfo: &chirpstack.UplinkTxInfo{Frequency: 867100000, Modulation: chirpstack.Modulation{
					LoRa: &chirpstack.LoRaModulation{Bandwidth: 125000, SpreadingFactor: 11, CodeRate: "CR_4_5"},
				}},
			}
			if !up.Time.Equal(want.Time) {
				t.Errorf("time %v", up.Time)
			}
			up.Time = want.Time
			if !reflect.DeepEqual(up, want) {
				t.Errorf("up:\n%+v\nwant\n%+v", up, want)
			}
			if k := up.DedupeKey(); k.DevEUI != dev || k.FCnt != 0 || k.DevAddr != (connector.DevAddr{0x00, 0x18, 0x94, 0x40}) {
				t.Errorf("DedupeKey = %+v", k)
			}
		}},
		{chirpstack.EventStatus, func(t *testing.T, e *chirpstack.Event) {
			if s := e.Status; s.Margin != 10 || s.BatteryLevel != 88.3 || s.ExternalPowerSource || s.BatteryLevelUnavailable {
				t.Errorf("status %+v", s)
			}
		}},
		{chirpstack.EventJoin, func(t *testing.T, e *chirpstack.Event) {
			if e.Join.DevAddr.String() != "00189440" || e.Join.DeduplicationID != "c9dbe358-2578-4fb7-b295-66b44edc45a6" {
				t.Errorf("join %+v", e.Join)
			}
		}},
		{chirpstack.EventAck, func(t *testing.T, e *chirpstack.Event) {
			if a := e.Ack; !a.Acknowledged || a.FCntDown != 3 || a.QueueItemID != "1bbcab1d-6ec6-4136-b3f5-d63be1dc08de" {
				t.Errorf("ack %+v", a)
			}
		}},
		{chirpstack.EventTxAck, func(t *testing.T, e *chirpstack.Event) {
			a := e.TxAck
			if a.DownlinkID != 3461958127 || a.FCntDown != 2 || a.GatewayID != "0016c001f153a14c" || a.TxInfo.Frequency != 867900000 ||
				a.TxInfo.Power != 14 || !a.TxInfo.Modulation.LoRa.PolarizationInversion || !bytes.Equal(a.TxInfo.Context, []byte{0x20, 0x26, 0x15, 0x1b}) {
				t.Errorf("txack %+v", a)
			}
			if delay, _ := a.TxInfo.Timing["delay"].(map[string]any); delay["delay"] != "1s" {
				t.Errorf("timing %v", a.TxInfo.Timing)
			}
		}},
		{chirpstack.EventLog, func(t *testing.T, e *chirpstack.Event) {
			l := e.Log
			if l.Level != "ERROR" || l.Code != "UPLINK_MIC" || !strings.HasPrefix(l.Description, "MIC of join-request") || l.Context["deduplication_id"] == "" {
				t.Errorf("log %+v", l)
			}
		}},
		{chirpstack.EventLocation, func(t *testing.T, e *chirpstack.Event) {
			if l := e.Location.Location; l.Latitude != 37.344214 || l.Longitude != -8.839375 || l.Altitude != 2 {
				t.Errorf("location %+v", l)
			}
		}},
		{chirpstack.EventIntegration, func(t *testing.T, e *chirpstack.Event) {
			i := e.Integration
			if i.IntegrationName != "loracloud" || i.EventType != "modem_UplinkResponse" || i.Object["dnlink"] != nil || i.Object["fports"] == nil {
				t.Errorf("integration %+v", i)
			}
			if i.DeviceInfo.DevEUI.String() != "0016c001f000175a" {
				t.Errorf("devEui %s", i.DeviceInfo.DevEUI)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.event), func(t *testing.T) {
			t.Parallel()
			in := readFile(t, "docs-"+string(tt.event)+".json")
			e, err := chirpstack.Decode(topicOf(t, in, tt.event), in)
			if err != nil {
				t.Fatal(err)
			}
			if e.Topic.Event != tt.event || e.DeviceInfo() == nil {
				t.Fatalf("event %+v", e)
			}
			tt.check(t, e)
			// Written back and read again, the event is the same.
			out, err := chirpstack.MarshalEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := chirpstack.Decode(e.Topic.String(), out)
			if err != nil {
				t.Fatalf("Decode of MarshalEvent's output %s: %v", out, err)
			}
			e2.Topic = e.Topic
			if !sameEvent(e, e2) {
				t.Errorf("round trip differs:\n%s", out)
			}
		})
	}
}

// sameEvent compares two events, times by instant.
func sameEvent(a, b *chirpstack.Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestRoundTrip: an uplink written as ChirpStack writes it (every field,
// gateway metadata without zeros) comes back field for field.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"up-full.json", "up-emit-fields.json"} {
		t.Run(file, func(t *testing.T) {
			in := readFile(t, file)
			e, err := chirpstack.Decode(topicOf(t, in, chirpstack.EventUp), in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := chirpstack.MarshalEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, out, in)
		})
	}
	up, _ := chirpstack.ParseUplink(readFile(t, "up-full.json"))
	if len(up.RxInfo) != 2 || up.RxInfo[0].CRCStatus != "CRC_OK" || up.RxInfo[0].Location.Altitude != 212 ||
		time.Duration(up.RxInfo[0].TimeSinceGPSEpoch) != 1462601760671*time.Millisecond || up.Object["soilConductivity"] != 28200.0 ||
		up.DeviceInfo.Tags["plot"] != "wartberg-3" || up.DeviceInfo.DeviceClassEnabled != "CLASS_A" || up.RegionConfigID != "eu868" || !up.ADR || up.DR != 3 {
		t.Errorf("up-full: %+v", up)
	}
	min, _ := chirpstack.ParseUplink(readFile(t, "up-emit-fields.json"))
	if min.FPort != 0 || min.FCnt != 0 || min.Data != nil || min.Object != nil || len(min.RxInfo) != 0 || min.TxInfo != nil {
		t.Errorf("up-emit-fields: %+v", min)
	}
}

// TestSnakeCaseNames: a protobuf JSON parser accepts the proto field names
// too, and integers as strings, and enum numbers.
func TestSnakeCaseNames(t *testing.T) {
	t.Parallel()
	up, err := chirpstack.ParseUplink(readFile(t, "up-snake.json"))
	if err != nil {
		t.Fatal(err)
	}
	if up.FCnt != 10 || up.FPort != 1 || up.DR != 1 || up.DeviceInfo.DevEUI.String() != "0101010101010101" || up.DevAddr.String() != "00189440" ||
		len(up.RxInfo) != 1 || up.RxInfo[0].UplinkID != 4217106255 || up.RxInfo[0].CRCStatus != "2" || up.TxInfo.Modulation.LoRa.SpreadingFactor != 11 {
		t.Errorf("up %+v", up)
	}
}

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

// sameInstants writes every timestamp in one form: ChirpStack writes
// "+00:00" and 9 digits, Go "Z" and no trailing zeros.
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

func TestParseBadInput(t *testing.T) {
	t.Parallel()
	const info = `"deviceInfo":{"applicationId":"17c82e96-be03-4f38-aef3-f83d48582d97","devEui":"0101010101010101"}`
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"empty", ``, chirpstack.ErrSyntax},
		{"not JSON", `up`, chirpstack.ErrSyntax},
		{"truncated", `{"deviceInfo":{`, chirpstack.ErrSyntax},
		{"array", `[]`, chirpstack.ErrSyntax},
		{"null", `null`, chirpstack.ErrInvalid},
		{"no device", `{"fCnt":1}`, chirpstack.ErrInvalid},
		{"no DevEUI", `{"deviceInfo":{"applicationId":"17c82e96-be03-4f38-aef3-f83d48582d97"}}`, chirpstack.ErrInvalid},
		{"bad DevEUI", `{"deviceInfo":{"applicationId":"x","devEui":"0101"}}`, chirpstack.ErrInvalid},
		{"fCnt negative", `{` + info + `,"fCnt":-1}`, chirpstack.ErrInvalid},
		{"fCnt over 32 bits", `{` + info + `,"fCnt":4294967296}`, chirpstack.ErrInvalid},
		{"fPort 256", `{` + info + `,"fPort":256}`, chirpstack.ErrInvalid},
		{"fPort as word", `{` + info + `,"fPort":"two"}`, chirpstack.ErrInvalid},
		{"bad base64", `{` + info + `,"data":"qg=!"}`, chirpstack.ErrInvalid},
		{"object as array", `{` + info + `,"object":[1]}`, chirpstack.ErrInvalid},
		{"rxInfo as object", `{` + info + `,"rxInfo":{}}`, chirpstack.ErrInvalid},
		{"rssi as float", `{` + info + `,"rxInfo":[{"rssi":-36.5}]}`, chirpstack.ErrInvalid},
		{"bad time", `{` + info + `,"time":"18.07.2022"}`, chirpstack.ErrInvalid},
		{"bad devAddr", `{` + info + `,"devAddr":"0018944"}`, chirpstack.ErrInvalid},
		{"duplicate field", `{` + info + `,"fCnt":1,"fCnt":2}`, chirpstack.ErrSyntax},
		{"trailing garbage", `{` + info + `}}`, chirpstack.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := chirpstack.ParseUplink([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseUplink(%s) = %v, want %v", tt.in, err, tt.wantErr)
			}
		})
	}
	for _, parse := range []func([]byte) error{
		func(b []byte) error { _, err := chirpstack.ParseStatus(b); return err },
		func(b []byte) error { _, err := chirpstack.ParseJoin(b); return err },
		func(b []byte) error { _, err := chirpstack.ParseAck(b); return err },
		func(b []byte) error { _, err := chirpstack.ParseTxAck(b); return err },
		func(b []byte) error { _, err := chirpstack.ParseLog(b); return err },
		func(b []byte) error { _, err := chirpstack.ParseLocation(b); return err },
		func(b []byte) error { _, err := chirpstack.ParseIntegration(b); return err },
	} {
		if err := parse([]byte(`{`)); !errors.Is(err, chirpstack.ErrSyntax) {
			t.Errorf("truncated: %v", err)
		}
		if err := parse([]byte(`{"time":"x",` + info + `}`)); !errors.Is(err, chirpstack.ErrInvalid) {
			t.Errorf("bad time: %v", err)
		}
		if err := parse([]byte(`{}`)); !errors.Is(err, chirpstack.ErrInvalid) {
			t.Errorf("no device: %v", err)
		}
	}
	if _, err := chirpstack.ParseStatus([]byte(`{` + info + `,"batteryLevel":"full"}`)); !errors.Is(err, chirpstack.ErrInvalid) {
		t.Errorf("status with a bad battery level: %v", err)
	}
}

func TestDecodeChecksTopic(t *testing.T) {
	t.Parallel()
	up := readFile(t, "docs-up.json")
	const app = "17c82e96-be03-4f38-aef3-f83d48582d97"
	tests := []struct {
		topic   string
		wantErr error
	}{
		{"application/" + app + "/device/0101010101010101/event/up", nil},
		{"application/" + app + "/device/0101010101010102/event/up", chirpstack.ErrMismatch},
		{"application/27c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up", chirpstack.ErrMismatch},
		{"application/" + app + "/device/0101010101010101/command/down", chirpstack.ErrTopic},
		{"application/" + app + "/device/0101010101010101/event/bogus", chirpstack.ErrTopic},
		{"v3/app@ttn/devices/dev/up", chirpstack.ErrTopic},
	}
	for _, tt := range tests {
		_, err := chirpstack.Decode(tt.topic, up)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("Decode(%s) = %v, want %v", tt.topic, err, tt.wantErr)
		}
	}
	// The status example has the same device: on the up topic it is read
	// as an uplink, which it is not, but it parses; its type is the
	// topic's.
	if e, err := chirpstack.Decode("application/"+app+"/device/0101010101010101/event/status", readFile(t, "docs-status.json")); err != nil || e.Status == nil || e.Up != nil {
		t.Errorf("status: %+v, %v", e, err)
	}
}
