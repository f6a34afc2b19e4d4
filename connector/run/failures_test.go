package run

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/lorawantest"
)

func TestDuplicatesDropped(t *testing.T) {
	tr := newTestRuntime(t, nil)
	rec := record(t, tr.b, "vineyard/+/device/soil-probe-01/+")
	d, app := tr.device(t, "soil-probe-01")
	vals := lorawantest.RandomValues(rand.New(rand.NewPCG(3, 3)), d.Type)
	gw2 := lorawantest.Gateway{ID: "hn-wartberg-north", RSSI: -110, SNR: -2}
	send := func(fCnt uint32, session string, gws ...lorawantest.Gateway) {
		up := lorawantest.Uplink{App: app, Device: d, FCnt: fCnt, Values: vals, Gateways: gws, Session: []byte(session), ReceivedAt: tr.clock.Now()}
		topic, body, err := up.TTS()
		if err != nil {
			t.Fatal(err)
		}
		tr.deliver(t, app.ID, topic, body)
	}
	send(7, "s1", lorawantest.DefaultGateway) // through one gateway,
	send(7, "s1", gw2)                        // the same uplink through another,
	send(7, "s1", lorawantest.DefaultGateway) // and again after a reconnect
	send(8, "s1")                             // a new uplink
	// The device joins again: a new session whose counter starts over.
	topic, body, err := lorawantest.TTSJoin(app, d, []byte("s2"), tr.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	tr.deliver(t, app.ID, topic, body)
	send(7, "s2")
	ms := rec.waitFor("three uplinks' events", func(ms []bus.Message) bool {
		return len(onTopic(ms, d.Topic(event.EventUplink).String())) == 3
	})
	waitStats(t, tr, func(st Stats) bool { return st.Received == 5 })
	st := tr.Stats()
	if st.Duplicates != 2 || st.Decoded != 3 {
		t.Errorf("duplicates %d, decoded %d; want 2 and 3", st.Duplicates, st.Decoded)
	}
	var fcnts []uint32
	for _, m := range onTopic(ms, d.Topic(event.EventMeasurement).String()) {
		fcnts = append(fcnts, *read(t, m).(*event.Measurement).Source.FCnt)
	}
	if len(fcnts) != 3 || fcnts[0] != 7 || fcnts[1] != 8 || fcnts[2] != 7 {
		t.Errorf("measurements of frame counters %v, want [7 8 7]", fcnts)
	}
	var reasons []string
	for _, s := range statuses(t, ms, d.Topic(event.EventStatus).String()) {
		reasons = append(reasons, s.Reason)
	}
	if strings.Join(reasons, ",") != "uplink,join" {
		t.Errorf("statuses %v, want uplink, join", reasons)
	}
	// The first copy's gateway is the one in the events.
	u := read(t, onTopic(ms, d.Topic(event.EventUplink).String())[0]).(*event.Uplink)
	if u.Source.Gateway != lorawantest.DefaultGateway.ID || len(u.Gateways) != 1 {
		t.Errorf("gateways %+v", u.Gateways)
	}
}

// TestBestGatewayFirst: an uplink heard by several gateways names them best
// first, and the best in its source.
func TestBestGatewayFirst(t *testing.T) {
	tr := newTestRuntime(t, nil)
	rec := record(t, tr.b, "+/+/device/+/uplink")
	tr.sendTTS(t, "soil-probe-02", 1, func(u *lorawantest.Uplink) {
		u.Gateways = []lorawantest.Gateway{{ID: "gw-a", RSSI: -120, SNR: -5}, {ID: "gw-b", RSSI: -90, SNR: 9}, {ID: "gw-c", RSSI: -80, SNR: 9}}
	})
	ms := rec.waitFor("the uplink", func(ms []bus.Message) bool { return len(ms) == 1 })
	u := read(t, ms[0]).(*event.Uplink)
	var ids []string
	for _, g := range u.Gateways {
		ids = append(ids, g.ID)
	}
	if strings.Join(ids, ",") != "gw-c,gw-b,gw-a" || u.Source.Gateway != "gw-c" || *u.Source.RSSIdBm != -80 || *u.Source.SNRdB != 9 {
		t.Errorf("gateways %v, source %+v", ids, u.Source)
	}
	if u.AirtimeS == nil || *u.AirtimeS != 0.205824 || u.CorrelationID == "" || u.DevAddr == "" {
		t.Errorf("uplink %+v", u)
	}
}

// brokenCodecs returns a codec directory with the campus codecs, the
// LSE01's replaced by src.
func brokenCodecs(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(codecDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(codecDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "dragino-lse01.js" {
			if src == "" {
				continue // no codec for the type
			}
			b = []byte(src)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDecodeFailures: a payload that is not decoded is reported — a
// counter, a log line, a decode_failed status — and its uplink event still
// carries the raw payload; the next good uplink makes the device's status
// uplink again.
func TestDecodeFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		codec   string // the LSE01's codec; "" is none at all
		payload []byte // sent instead of a good one
		detail  string
	}{
		{"garbage payload", "keep", []byte{0xde, 0xad}, "payload of 2 bytes"},
		{"codec throws", "function decodeUplink(input) { throw new TypeError('broken codec'); }", nil, "broken codec"},
		{"codec loops", "function decodeUplink(input) { for (;;) {} }", nil, "timeout"},
		{"codec returns text", "function decodeUplink(input) { return {data: {soilMoisture: 'wet'}}; }", nil, "not a finite number"},
		{"no codec", "", nil, "no codec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestRuntime(t, func(c *Config) {
				if tc.codec != "keep" {
					c.Codecs = brokenCodecs(t, tc.codec)
				}
				c.CodecLimits = codec.Limits{Timeout: 20 * time.Millisecond}
			})
			rec := record(t, tr.b, "vineyard/+/device/soil-probe-03/+")
			d, _ := tr.device(t, "soil-probe-03")
			statusTopic := d.Topic(event.EventStatus).String()
			tr.sendTTS(t, "soil-probe-03", 1, func(u *lorawantest.Uplink) { u.Payload = tc.payload })
			ms := rec.waitFor("the failure reported", func(ms []bus.Message) bool {
				return len(onTopic(ms, statusTopic)) == 1 && len(onTopic(ms, d.Topic(event.EventUplink).String())) == 1
			})
			st := statuses(t, ms, statusTopic)[0]
			if st.State != event.Online || st.Reason != reasonDecodeFailed || !strings.Contains(st.Detail, tc.detail) {
				t.Errorf("status %+v, want decode_failed with %q", st, tc.detail)
			}
			if n := len(onTopic(ms, d.Topic(event.EventMeasurement).String())); n != 0 {
				t.Errorf("%d measurements of an undecoded payload", n)
			}
			u := read(t, onTopic(ms, d.Topic(event.EventUplink).String())[0]).(*event.Uplink)
			if len(u.Payload) == 0 || len(u.Points) != 0 {
				t.Errorf("uplink payload %x, points %v", u.Payload, u.Points)
			}
			if got := tr.byID["soil-probe-03"].stats.failed[reasonCodec].Load(); got != 1 {
				t.Errorf("codec failures %d, want 1", got)
			}
			// A second failing uplink adds no status; a good one (decoded
			// by the network server) sets it back to uplink.
			tr.sendTTS(t, "soil-probe-03", 2, func(u *lorawantest.Uplink) { u.Payload = tc.payload })
			tr.sendTTS(t, "soil-probe-03", 3, func(u *lorawantest.Uplink) { u.Decoded = true })
			ms = rec.waitFor("the status back to uplink", func(ms []bus.Message) bool { return len(onTopic(ms, statusTopic)) == 2 })
			if st := statuses(t, ms, statusTopic)[1]; st.State != event.Online || st.Reason != event.ReasonUplink {
				t.Errorf("status after a good uplink %+v", st)
			}
			if got := tr.byID["soil-probe-03"].stats.failed[reasonCodec].Load(); got != 2 {
				t.Errorf("codec failures %d, want 2", got)
			}
		})
	}
}

// TestBadMessages: what is not a message of the network server, or names
// a device the campus model does not have, is counted by reason.
func TestBadMessages(t *testing.T) {
	tr := newTestRuntime(t, nil)
	d, app := tr.device(t, "leaf-sensor-01")
	good := lorawantest.Uplink{App: app, Device: d, FCnt: 1, Values: lorawantest.RandomValues(rand.New(rand.NewPCG(1, 1)), d.Type)}
	topic, body, err := good.TTS()
	if err != nil {
		t.Fatal(err)
	}
	stranger := *d
	stranger.NetworkID, stranger.DevEUI = "stranger-01", "0102030405060708"
	st := good
	st.Device = &stranger
	strangerTopic, strangerBody, err := st.TTS()
	if err != nil {
		t.Fatal(err)
	}
	liar := stranger
	liar.NetworkID = d.NetworkID // a known device id with another DevEUI
	lt := good
	lt.Device = &liar
	_, liarBody, _ := lt.TTS()
	csDev, csApp := tr.device(t, "ph-probe-01")
	csTopic, _, _ := (&lorawantest.Uplink{App: csApp, Device: csDev, FCnt: 1, Values: lorawantest.RandomValues(rand.New(rand.NewPCG(1, 1)), csDev.Type)}).ChirpStack()

	for _, m := range []struct{ app, topic, body string }{
		{app.ID, topic, "not json"},
		{app.ID, topic, `{"end_device_ids":{}}`},
		{app.ID, topic, strings.Replace(string(body), `"f_cnt":1`, `"f_cnt":"x"`, 1)},
		{app.ID, strings.Replace(topic, "/up", "/down/push", 1), string(body)},
		{app.ID, strangerTopic, string(strangerBody)},
		{app.ID, topic, string(liarBody)},
		{csApp.ID, csTopic, `{"deviceInfo":{}}`},
		{csApp.ID, strings.Replace(csTopic, "a840410300000001", "0102030405060708", 1), `{"deviceInfo":{"applicationId":"6a0b3f1e-9a55-4c3e-b2f1-0f0c7d2e8a11","devEui":"0102030405060708"},"fCnt":3}`},
	} {
		tr.deliver(t, m.app, m.topic, []byte(m.body))
	}
	waitStats(t, tr, func(st Stats) bool { return st.Failed["parse"]+st.Failed["unknown_device"] == 8 })
	st2 := tr.Stats()
	if st2.Failed["parse"] != 5 || st2.Failed["unknown_device"] != 3 || st2.Received != 0 {
		t.Errorf("failed %v, received %d; want 5 parse, 3 unknown_device, none received", st2.Failed, st2.Received)
	}
}

// TestNormalizedPayload: a device type without a codec is read from The
// Things Stack's normalized payload, converted into the points' units.
func TestNormalizedPayload(t *testing.T) {
	tr := newTestRuntime(t, func(c *Config) { c.Codecs = brokenCodecs(t, "") })
	rec := record(t, tr.b, "+/+/device/soil-probe-01/measurement")
	tr.sendTTS(t, "soil-probe-01", 1, func(u *lorawantest.Uplink) {
		u.Normalized = []map[string]any{{"soil": map[string]any{"moisture": 31.6, "temperature": 14.2, "ec": 0.412, "depth": 20.0},
			"air": map[string]any{"temperature": 20.0}}}
	})
	ms := rec.waitFor("the measurement", func(ms []bus.Message) bool { return len(ms) == 1 })
	m := read(t, ms[0]).(*event.Measurement)
	got := make(map[string]float64)
	for _, v := range m.Values {
		got[v.Point] = v.Value
	}
	want := map[string]float64{"soil-probe-01/soilMoistureVwc": 31.6, "soil-probe-01/soilTemperature": 14.2, "soil-probe-01/soilMoistureEc": 412}
	if len(got) != len(want) {
		t.Errorf("values %v, want %v", got, want)
	}
	for p, w := range want {
		if g := got[p]; g < w-1e-9 || g > w+1e-9 {
			t.Errorf("%s = %v, want %v", p, g, w)
		}
	}
	if n := tr.byID["soil-probe-01"].stats.decoded[viaNormalized].Load(); n != 1 {
		t.Errorf("decoded via normalized: %d", n)
	}
}

func TestNormalizedTable(t *testing.T) {
	for _, f := range normalizedFields {
		if f.unit == unitDSPerM {
			continue
		}
		if !f.unit.Known() {
			t.Errorf("%s: unit %s unknown", f.path, f.unit)
		}
	}
	for _, tc := range []struct {
		v        float64
		from, to event.Unit
		want     float64
		ok       bool
	}{
		{0.412, unitDSPerM, event.MicrosiemensPerCentimetre, 412, true},
		{0.5, unitDSPerM, event.SiemensPerMetre, 0.05, true},
		{20, event.Celsius, event.Kelvin, 293.15, true},
		{3, event.Percent, event.Percent, 3, true},
		{3, event.Percent, event.Volt, 0, false},
	} {
		got, ok := convert(tc.v, tc.from, tc.to)
		if ok != tc.ok || (ok && (got < tc.want-1e-9 || got > tc.want+1e-9)) {
			t.Errorf("convert(%v %s → %s) = %v %v, want %v %v", tc.v, tc.from, tc.to, got, ok, tc.want, tc.ok)
		}
	}
}
