package run

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/citymesh/citymesh/event"
)

// TestMessageMatchesNewMessage: the hand-written encoding of measurements
// and uplinks gives the bytes and properties event.NewMessage gives, for
// every optional member present or not, strings that need escaping, and
// floats in every form encoding/json writes.
func TestMessageMatchesNewMessage(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	strs := []string{"soil-probe-07", "hn-wartberg-tower", "a<b>&c", "quote\"back\\slash", "Grüße", "tab\there", "\u2028line", "日本", "x\x01y", "bad\xffutf8"}
	floats := []float64{0, -0.0, 1, -1, 0.1, 0.1 + 0.2, 21.8, -97, 7.25, 1284467.25, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 1.234e22, -3.4e-8,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.123456789, 0.000123}
	times := []time.Time{
		time.Date(2026, 5, 12, 7, 15, 42, 918236421, time.UTC),
		time.Date(2026, 5, 12, 9, 15, 0, 0, time.FixedZone("CEST", 7200)),
		time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -9000)),
	}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	pf := func() float64 { return floats[rng.IntN(len(floats))] }
	maybe := func() bool { return rng.IntN(2) == 0 }
	source := func() event.Source {
		fcnt := rng.Uint32()
		s := event.Source{Type: event.SourceLoRaWAN, NetworkServer: "tts", Application: pick(strs), DeviceID: pick(strs), DevEUI: "A840410100000001", FCnt: &fcnt}
		if maybe() {
			s.Simulated = true
		}
		if maybe() {
			s.Tenant = pick(strs)
		}
		if maybe() {
			s.Gateway = pick(strs)
			r, n := -float64(rng.IntN(200)), float64(rng.IntN(100))/4-20
			s.RSSIdBm, s.SNRdB = &r, &n
		}
		return s
	}
	topic := event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-07", event.EventMeasurement)
	utopic := topic
	utopic.Event = event.EventUplink
	for i := range 3000 {
		h := event.Header{ID: "tts:A840410100000001:1f:" + pick(strs) + "-m", Time: times[rng.IntN(len(times))], Asset: "soil-probe-07", Source: source()}
		var e event.Event
		var tp event.Topic
		if i%2 == 0 {
			m := &event.Measurement{Header: h}
			for range 1 + rng.IntN(4) {
				v := event.Value{Point: "soil-probe-07/soilMoistureVwc", Value: pf(), Unit: event.Percent}
				if maybe() {
					v.Quantity = "soilMoistureVwc"
				}
				if maybe() {
					v.OBIS = "1-0:1.8.0"
				}
				if maybe() {
					at := times[rng.IntN(len(times))]
					v.Time = &at
				}
				m.Values = append(m.Values, v)
			}
			e, tp = m, topic
		} else {
			u := &event.Uplink{Header: h, FPort: uint8(rng.IntN(224)), FrequencyHz: 867500000,
				DataRate: event.DataRate{Modulation: "lora", SpreadingFactor: 7 + uint8(rng.IntN(6)), BandwidthHz: 125000}, Gateways: []event.GatewayRx{}}
			if maybe() {
				u.DevAddr = "260B1A2C"
			}
			u.Confirmed = maybe()
			if maybe() {
				u.Payload = make([]byte, rng.IntN(40))
				for j := range u.Payload {
					u.Payload[j] = byte(rng.IntN(256))
				}
			}
			if maybe() {
				u.DataRate.CodingRate = "4/5"
			}
			if maybe() {
				idx := uint8(rng.IntN(16))
				u.DataRate.Index = &idx
			}
			if maybe() {
				a := 0.205824
				u.AirtimeS = &a
			}
			for range rng.IntN(3) {
				g := event.GatewayRx{ID: pick(strs), RSSIdBm: -float64(rng.IntN(150)), SNRdB: float64(rng.IntN(80))/4 - 10}
				if maybe() {
					g.EUI = "A84041FFFF24A438"
				}
				if maybe() {
					at := times[rng.IntN(len(times))]
					g.Time = &at
				}
				if maybe() {
					g.Location = &event.Location{Lat: 49.1595, Lon: 9.2410}
					if maybe() {
						alt := pf() / 1e300
						g.Location.AltitudeM = &alt
					}
				}
				u.Gateways = append(u.Gateways, g)
			}
			if maybe() {
				u.CorrelationID = "as:up:" + pick(strs)
			}
			if maybe() {
				u.Points = []string{"soil-probe-07/battery", "soil-probe-07/soilTemperature"}
			}
			e, tp = u, utopic
		}
		want, werr := event.NewMessage(tp, e)
		got, gerr := message(tp, tp.String(), e)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("event %d: NewMessage error %v, message error %v", i, werr, gerr)
		}
		if werr != nil {
			continue
		}
		if !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got.Payload, want.Payload)
		}
		got.Payload, want.Payload = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func BenchmarkMessage(b *testing.B) {
	fcnt := uint32(1842)
	rssi, snr := -97.0, 7.25
	src := event.Source{Type: event.SourceLoRaWAN, NetworkServer: "tts", Tenant: "ttn", Application: "hn-wartberg-vineyards", DeviceID: "soil-probe-07",
		DevEUI: "A840410100000007", FCnt: &fcnt, Gateway: "hn-wartberg-tower", RSSIdBm: &rssi, SNRdB: &snr}
	h := event.Header{ID: "tts:A840410100000007:1f:1842-m", Time: time.Date(2026, 5, 12, 7, 15, 42, 918236421, time.UTC), Asset: "soil-probe-07", Source: src}
	m := &event.Measurement{Header: h, Values: []event.Value{
		{Point: "soil-probe-07/soilMoistureVwc", Quantity: "soilMoistureVwc", Value: 31.6, Unit: event.Percent},
		{Point: "soil-probe-07/soilTemperature", Quantity: "soilTemperature", Value: 14.2, Unit: event.Celsius},
		{Point: "soil-probe-07/soilMoistureEc", Quantity: "soilMoistureEc", Value: 412, Unit: event.MicrosiemensPerCentimetre},
		{Point: "soil-probe-07/battery", Quantity: "batteryVoltage", Value: 3.098, Unit: event.Volt}}}
	tp := event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-07", event.EventMeasurement)
	name := tp.String()
	b.Run("NewMessage", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := event.NewMessage(tp, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := message(tp, name, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
