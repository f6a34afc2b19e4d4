package broker

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

var (
	fuzzOnce   sync.Once
	fuzzBroker *Broker
)

// connectBytes is a valid CONNECT for version v with client id id.
func connectBytes(v byte, id string) []byte {
	b, _ := (&mqtt.Connect{Version: v, CleanStart: true, KeepAlive: 10, ClientID: id}).AppendTo(nil, v)
	return b
}

// exchange writes data to a fresh connection served by b and reads whatever
// comes back until the broker closes it or it goes quiet.
func exchange(b *Broker, data []byte, quiet time.Duration, enough func([]byte) bool) []byte {
	client, server := net.Pipe()
	b.ServeConn(server)
	go func() {
		client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		client.Write(data)
	}()
	var out []byte
	buf := make([]byte, 4096)
	for {
		client.SetReadDeadline(time.Now().Add(quiet))
		n, err := client.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil || (enough != nil && enough(out)) {
			break
		}
	}
	client.Close()
	return out
}

// FuzzConn drives the connection state machine with arbitrary bytes after a
// valid CONNECT (of either version, or none): the broker must not panic, and
// must still serve a well-behaved client afterwards. The seed corpus is in
// testdata/fuzz/FuzzConn.
func FuzzConn(f *testing.F) {
	seed := func(pkts ...mqtt.Packet) []byte {
		var b []byte
		for _, p := range pkts {
			b, _ = p.AppendTo(b, mqtt.V5)
		}
		return b
	}
	f.Add(byte(5), seed(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "a/#", QoS: 2}}},
		&mqtt.Publish{QoS: 2, PacketID: 2, Topic: "a/b", Retain: true, Payload: []byte("x")},
		&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: 2}, &mqtt.Pingreq{}, &mqtt.Disconnect{ReasonCode: 4}))
	f.Add(byte(4), []byte{0x30, 0x05, 0x00, 0x03, 'a', '/', '#'})
	f.Add(byte(5), seed(&mqtt.Publish{Topic: "t", Props: mqtt.Properties{TopicAlias: 1}}, &mqtt.Publish{Props: mqtt.Properties{TopicAlias: 1}}))
	f.Add(byte(0), []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, version byte, data []byte) {
		fuzzOnce.Do(func() {
			fuzzBroker = New(Options{SysInterval: -1, ConnectTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		})
		var in []byte
		switch version % 3 {
		case 1:
			in = connectBytes(mqtt.V311, "fuzz")
		case 2:
			in = connectBytes(mqtt.V5, "fuzz")
		}
		exchange(fuzzBroker, append(in, data...), 10*time.Millisecond, nil)
		// A well-behaved client is still served: CONNACK then PINGRESP.
		probe := append(connectBytes(mqtt.V5, "probe"), 0xc0, 0x00)
		out := exchange(fuzzBroker, probe, time.Second, func(b []byte) bool {
			return len(b) >= 2 && b[len(b)-2] == 0xd0 && b[len(b)-1] == 0x00
		})
		pkt, n, err := mqtt.Decode(out, mqtt.V5)
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatalf("probe: %v", err)
		}
		if ack, ok := pkt.(*mqtt.Connack); !ok || ack.ReasonCode != 0 {
			t.Fatalf("probe got %v (%x), want CONNACK", pkt, out)
		}
		if p, _, err := mqtt.Decode(out[n:], mqtt.V5); err != nil || p.Type() != mqtt.PINGRESP {
			t.Fatalf("probe got %v %v after CONNACK, want PINGRESP", p, err)
		}
	})
}
