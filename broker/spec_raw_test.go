package broker_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
)

// raw is a client that writes exact packets, for the features and violations
// that ordinary clients hide.
type raw struct {
	t  *testing.T
	nc net.Conn
	r  *mqtt.Reader
	v  byte
	// held are PUBLISH packets read while waiting for another packet,
	// returned by readPublish first.
	held []*mqtt.Publish
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc, r: mqtt.NewReader(nc, 4096)}
}

// connect sends CONNECT and returns the CONNACK.
func (c *raw) connect(p *mqtt.Connect) *mqtt.Connack {
	c.t.Helper()
	if p.Version == 0 {
		p.Version = mqtt.V5
	}
	if p.KeepAlive == 0 {
		p.KeepAlive = 30
	}
	c.v = p.Version
	c.send(p)
	c.r.Version = p.Version
	ack, ok := c.read().(*mqtt.Connack)
	if !ok {
		c.t.Fatal("expected CONNACK")
	}
	return ack
}

func (c *raw) send(p mqtt.Packet) {
	c.t.Helper()
	buf, err := p.AppendTo(nil, c.v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(buf)
}

func (c *raw) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// readErr reads the next packet within the deadline.
func (c *raw) readErr(d time.Duration) (mqtt.Packet, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	return c.r.ReadPacket()
}

func (c *raw) read() mqtt.Packet {
	c.t.Helper()
	p, err := c.readErr(wait)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p
}

// readPublish skips acknowledgements until a PUBLISH arrives and returns a
// copy of it.
func (c *raw) readPublish() *mqtt.Publish {
	c.t.Helper()
	if len(c.held) > 0 {
		p := c.held[0]
		c.held = c.held[1:]
		return p
	}
	for {
		if p, ok := c.read().(*mqtt.Publish); ok {
			cp := *p
			cp.Payload = bytes.Clone(p.Payload)
			return &cp
		}
	}
}

// expectDisconnect reads until the broker sends DISCONNECT (returning its
// reason code) or closes the connection (returning -1).
func (c *raw) expectDisconnect() int {
	c.t.Helper()
	for {
		p, err := c.readErr(wait)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return -1
			}
			c.t.Fatalf("waiting for the connection to end: %v", err)
		}
		if d, ok := p.(*mqtt.Disconnect); ok {
			// The connection must close afterwards [MQTT-4.13.1-1].
			if _, err := c.readErr(wait); err == nil {
				c.t.Fatal("connection still open after DISCONNECT")
			}
			return int(d.ReasonCode)
		}
	}
}

func (c *raw) subscribe(subs ...mqtt.Subscription) *mqtt.Suback {
	c.t.Helper()
	c.send(&mqtt.Subscribe{PacketID: 1, Subscriptions: subs})
	for {
		if a, ok := c.read().(*mqtt.Suback); ok {
			return a
		}
	}
}

// healthyPair connects a subscriber and a publisher and returns a function
// that checks a message still goes through.
func healthyPair(t *testing.T, addr string) func() {
	sub, _ := dialV5(t, addr, &paho.Connect{ClientID: "healthy-sub", CleanStart: true})
	sub.subscribe(t, subOpt("healthy/#", 1))
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "healthy-pub", CleanStart: true})
	n := 0
	return func() {
		t.Helper()
		n++
		want := fmt.Sprint("ping ", n)
		pub.publish(t, &paho.Publish{Topic: "healthy/x", QoS: 1, Payload: []byte(want)})
		if m := sub.expect(t); string(m.Payload) != want {
			t.Fatalf("healthy pair got %q, want %q", m.Payload, want)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSpecBadInput sends one malformed or illegal packet per case and checks
// the reason code (MQTT 5: DISCONNECT; 3.1.1: the connection is closed) and
// that another pair of clients keeps exchanging messages.
func TestSpecBadInput(t *testing.T) {
	b, addr := startBroker(t, broker.Options{MaxPacketSize: 1024, ReceiveMaximum: 2})
	check := healthyPair(t, addr)
	tests := []struct {
		name string
		v    byte
		hex  string // sent after CONNECT
		want int    // reason code in DISCONNECT, -1 for a plain close
	}{
		{"remaining length of five bytes", mqtt.V5, "30 ff ff ff ff 01", 0x81},
		{"invalid UTF-8 in topic", mqtt.V5, "30 05 0002 c328 00", 0x81},
		{"wildcard in PUBLISH topic", mqtt.V5, "30 06 0003 612f23 00", 0x90},
		{"unknown property", mqtt.V5, "30 06 000161 02 7f00", 0x81},
		{"duplicated property", mqtt.V5, "30 08 000161 04 0101 0101", 0x82},
		{"packet id 0", mqtt.V5, "32 06 000161 0000 00", 0x82},
		{"second CONNECT", mqtt.V5, "10 0e 00044d515454 05 02 003c 00 0001 63", 0x82},
		{"reserved flags", mqtt.V5, "41 02 0001", 0x81},
		{"QoS 3", mqtt.V5, "36 06 000161 0001 00", 0x81},
		{"oversize packet", mqtt.V5, "30 90 08" + strings.Repeat("00", 10), 0x95},
		{"unknown topic alias", mqtt.V5, "30 06 0000 03 230005", 0x82},
		{"topic alias above maximum", mqtt.V5, "30 08 000161 03 23ffff 78", 0x94},
		{"SUBSCRIBE without filters", mqtt.V5, "82 03 0001 00", 0x82},
		{"shared subscription with No Local", mqtt.V5, "82 12 0001 00 000c 2473686172652f672f612f62 05", 0x82},
		{"AUTH without authentication method", mqtt.V5, "f0 00", 0x82},
		{"CONNACK from a client", mqtt.V5, "20 03 00 00 00", 0x82},
		{"3.1.1: wildcard in PUBLISH topic", mqtt.V311, "30 05 0003 612f2b", -1},
		{"3.1.1: packet id 0", mqtt.V311, "32 05 000161 0000", -1},
		{"3.1.1: invalid UTF-8", mqtt.V311, "30 04 0002 c328", -1},
		{"3.1.1: second CONNECT", mqtt.V311, "10 0d 00044d515454 04 02 003c 000163", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.connect(&mqtt.Connect{Version: tc.v, CleanStart: true, ClientID: "bad"})
			c.write(unhex(t, tc.hex))
			if got := c.expectDisconnect(); got != tc.want {
				t.Fatalf("got %d (0x%02X), want 0x%02X", got, got, tc.want)
			}
			check()
		})
	}
	if b.Stats().ProtocolErrors < uint64(len(tests)) {
		t.Fatalf("protocol errors counted: %d, want at least %d", b.Stats().ProtocolErrors, len(tests))
	}
}

func TestSpecPubrelUnknownPacketID(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "rel", CleanStart: true})
	c.send(&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: 99})
	a, ok := c.read().(*mqtt.Ack)
	if !ok || a.Kind != mqtt.PUBCOMP || a.ReasonCode != mqtt.PacketIdentifierNotFound {
		t.Fatalf("got %+v, want PUBCOMP 0x92", a)
	}
}

func TestSpecFirstPacketNotConnect(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.write(unhex(t, "c0 00")) // PINGREQ before CONNECT [MQTT-3.1.0-1]
	if _, err := c.readErr(wait); err == nil {
		t.Fatal("connection still open")
	}
}

func TestSpecConnectTimeout(t *testing.T) {
	_, addr := startBroker(t, broker.Options{ConnectTimeout: 200 * time.Millisecond})
	c := dialRaw(t, addr)
	c.write(unhex(t, "10 0d 00044d51")) // a CONNECT that never completes
	start := time.Now()
	if _, err := c.readErr(wait); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("slow CONNECT not cut off: %v after %v", err, time.Since(start))
	}
}

func TestSpecUnsupportedProtocolVersion(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	for _, tc := range []struct {
		hex  string
		code byte
	}{
		{"10 0d 00044d515454 07 02 003c 000163", 0x01},    // unknown level: 3.1.1 CONNACK return code 1
		{"10 0e 00044d515454 05 02 003c 00 000163", 0x00}, // a valid MQTT 5 CONNECT for contrast
	} {
		c := dialRaw(t, addr)
		c.write(unhex(t, tc.hex))
		c.r.Version = mqtt.V311
		if tc.code == 0 {
			c.r.Version = mqtt.V5
		}
		ack, ok := c.read().(*mqtt.Connack)
		if !ok || byte(ack.ReasonCode) != tc.code {
			t.Fatalf("%s: got %+v, want CONNACK code 0x%02X", tc.hex, ack, tc.code)
		}
	}
}

func TestSpecKeepAliveTimeout(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	watcher, _ := dialV5(t, addr, &paho.Connect{ClientID: "w", CleanStart: true})
	watcher.subscribe(t, subOpt("ka/will", 0))
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{Version: mqtt.V311, KeepAlive: 1, ClientID: "silent",
		Will: &mqtt.Will{Topic: "ka/will", Payload: []byte("timed out")}})
	start := time.Now()
	if got := c.expectDisconnect(); got != -1 {
		t.Fatalf("3.1.1 client got reason %d, want a plain close", got)
	}
	if d := time.Since(start); d < time.Second || d > 3*time.Second {
		t.Fatalf("closed after %v, want about 1.5 keep alive periods", d) // [MQTT-3.1.2-24]
	}
	if m := watcher.expect(t); string(m.Payload) != "timed out" {
		t.Fatalf("will: got %q", m.Payload)
	}
}

func TestSpecTopicAliasFromClient(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	sub, _ := dialV5(t, addr, &paho.Connect{ClientID: "s", CleanStart: true})
	sub.subscribe(t, subOpt("alias/#", 0))
	c := dialRaw(t, addr)
	if ack := c.connect(&mqtt.Connect{ClientID: "aliaser", CleanStart: true}); ack.Props.TopicAliasMaximum == 0 {
		t.Fatal("CONNACK announces no Topic Alias Maximum")
	}
	c.send(&mqtt.Publish{Topic: "alias/long/topic", Props: mqtt.Properties{TopicAlias: 1}, Payload: []byte("first")})
	c.send(&mqtt.Publish{Topic: "", Props: mqtt.Properties{TopicAlias: 1}, Payload: []byte("second")})
	for _, want := range []string{"first", "second"} {
		if m := sub.expect(t); m.Topic != "alias/long/topic" || string(m.Payload) != want {
			t.Fatalf("got %s %q", m.Topic, m.Payload)
		}
	}
}

func TestSpecTopicAliasToClient(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "alias-sub", CleanStart: true, Props: mqtt.Properties{TopicAliasMaximum: 5}})
	c.subscribe(mqtt.Subscription{Filter: "ta/#"})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	for range 2 {
		pub.publish(t, &paho.Publish{Topic: "ta/some/topic", QoS: 0, Payload: []byte("x")})
	}
	first, second := c.readPublish(), c.readPublish()
	if first.Topic != "ta/some/topic" || first.Props.TopicAlias == 0 {
		t.Fatalf("first: topic %q alias %d, want the topic with an alias", first.Topic, first.Props.TopicAlias)
	}
	if second.Topic != "" || second.Props.TopicAlias != first.Props.TopicAlias || second.Props.TopicAlias > 5 {
		t.Fatalf("second: topic %q alias %d, want the alias alone", second.Topic, second.Props.TopicAlias) // [MQTT-3.3.2-8]
	}
}

func TestSpecReceiveMaximumToClient(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "slowacker", CleanStart: true, Props: mqtt.Properties{ReceiveMaximum: 2}})
	c.subscribe(mqtt.Subscription{Filter: "rm/#", QoS: 1})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	for i := range 5 {
		pub.publish(t, &paho.Publish{Topic: "rm/x", QoS: 1, Payload: []byte{byte('0' + i)}})
	}
	p1, p2 := c.readPublish(), c.readPublish()
	if _, err := c.readErr(300 * time.Millisecond); err == nil {
		t.Fatal("broker sent more than the client's Receive Maximum unacknowledged") // [MQTT-3.3.4-7]
	}
	c.nc.SetReadDeadline(time.Time{})
	c.send(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p1.PacketID})
	if p3 := c.readPublish(); p3.Payload[0] != '2' {
		t.Fatalf("after one PUBACK got %q, want message 2", p3.Payload)
	}
	_ = p2
}

func TestSpecReceiveMaximumFromClient(t *testing.T) {
	_, addr := startBroker(t, broker.Options{ReceiveMaximum: 2})
	c := dialRaw(t, addr)
	if ack := c.connect(&mqtt.Connect{ClientID: "flooder", CleanStart: true}); ack.Props.ReceiveMaximum != 2 {
		t.Fatalf("CONNACK Receive Maximum %d, want 2", ack.Props.ReceiveMaximum)
	}
	for id := uint16(1); id <= 3; id++ { // QoS 2 without PUBREL stays unacknowledged
		c.send(&mqtt.Publish{QoS: 2, PacketID: id, Topic: "rmx", Payload: []byte("x")})
	}
	if got := c.expectDisconnect(); got != 0x93 {
		t.Fatalf("got 0x%02X, want 0x93 Receive Maximum exceeded", got) // [MQTT-3.3.4-9]
	}
}

func TestSpecMaximumPacketSizeToClient(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "small", CleanStart: true, Props: mqtt.Properties{MaximumPacketSize: 64}})
	c.subscribe(mqtt.Subscription{Filter: "mps/#", QoS: 1})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "mps/big", QoS: 1, Payload: bytes.Repeat([]byte("x"), 200)})
	pub.publish(t, &paho.Publish{Topic: "mps/small", QoS: 1, Payload: []byte("ok")})
	if p := c.readPublish(); p.Topic != "mps/small" {
		t.Fatalf("got %s, want only the small message", p.Topic) // [MQTT-3.1.2-25]
	}
	if b.Stats().Dropped["too_large"] != 1 {
		t.Fatalf("too_large drops: %d", b.Stats().Dropped["too_large"])
	}
}

func TestSpecMessageExpiry(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "exp", CleanStart: true, Props: mqtt.Properties{SessionExpiry: 60}})
	c.subscribe(mqtt.Subscription{Filter: "exp/#", QoS: 1})
	c.nc.Close()
	waitClients(t, b, 0)
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "exp/short", QoS: 1, Payload: []byte("short"), Properties: &paho.PublishProperties{MessageExpiry: ptr(uint32(1))}})
	pub.publish(t, &paho.Publish{Topic: "exp/long", QoS: 1, Payload: []byte("long"), Properties: &paho.PublishProperties{MessageExpiry: ptr(uint32(100))}})
	time.Sleep(1100 * time.Millisecond) // the expiry itself is what is tested
	c2 := dialRaw(t, addr)
	if ack := c2.connect(&mqtt.Connect{ClientID: "exp", Props: mqtt.Properties{SessionExpiry: 60}}); !ack.SessionPresent {
		t.Fatal("session lost")
	}
	p := c2.readPublish()
	if p.Topic != "exp/long" { // [MQTT-3.3.2-5]
		t.Fatalf("got %s, want the expired message dropped", p.Topic)
	}
	if e := p.Props.MessageExpiry; e >= 100 || e < 95 {
		t.Fatalf("remaining expiry %d, want it decremented from 100", e) // [MQTT-3.3.2-6]
	}
}

func TestSpecQoS2ExactlyOnceOnResend(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	sub, _ := dialV5(t, addr, &paho.Connect{ClientID: "s", CleanStart: true})
	sub.subscribe(t, subOpt("q2/#", 2))
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "q2pub", CleanStart: true})
	p := &mqtt.Publish{QoS: 2, PacketID: 5, Topic: "q2/x", Payload: []byte("once")}
	c.send(p)
	if a := c.read().(*mqtt.Ack); a.Kind != mqtt.PUBREC {
		t.Fatalf("got %s, want PUBREC", a.Kind)
	}
	p.Dup = true
	c.send(p) // resent before PUBREL: acknowledged, not delivered again [MQTT-4.3.3-10]
	if a := c.read().(*mqtt.Ack); a.Kind != mqtt.PUBREC {
		t.Fatalf("got %s, want PUBREC", a.Kind)
	}
	c.send(&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: 5})
	if a := c.read().(*mqtt.Ack); a.Kind != mqtt.PUBCOMP || a.ReasonCode != 0 {
		t.Fatalf("got %+v, want PUBCOMP", a)
	}
	if m := sub.expect(t); string(m.Payload) != "once" {
		t.Fatal("wrong payload")
	}
	sub.expectNone(t, 300*time.Millisecond)
}

func TestSpecRedeliveryWithDupOnReconnect(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "redeliver", CleanStart: true, Props: mqtt.Properties{SessionExpiry: 60}})
	c.subscribe(mqtt.Subscription{Filter: "rd/#", QoS: 1})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "rd/x", QoS: 1, Payload: []byte("unacked")})
	first := c.readPublish()
	c.nc.Close() // no PUBACK
	c2 := dialRaw(t, addr)
	c2.connect(&mqtt.Connect{ClientID: "redeliver", Props: mqtt.Properties{SessionExpiry: 60}})
	again := c2.readPublish()
	if !again.Dup || again.PacketID != first.PacketID || string(again.Payload) != "unacked" {
		t.Fatalf("resend: dup %v id %d (first %d) payload %q", again.Dup, again.PacketID, first.PacketID, again.Payload) // [MQTT-4.4.0-1]
	}
}

func TestSpecSharedSubscriptionMemberLeaves(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	stuck := dialRaw(t, addr)
	stuck.connect(&mqtt.Connect{ClientID: "stuck", CleanStart: true, Props: mqtt.Properties{ReceiveMaximum: 1}})
	stuck.subscribe(mqtt.Subscription{Filter: "$share/g/work", QoS: 1})
	healthy, _ := dialV5(t, addr, &paho.Connect{ClientID: "healthy", CleanStart: true})
	healthy.subscribe(t, subOpt("$share/g/work", 1))
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	const n = 10
	for i := range n {
		pub.publish(t, &paho.Publish{Topic: "work", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	// The stuck member never acknowledges; when it leaves, what it held goes
	// to the healthy member.
	stuck.nc.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		seen[string(healthy.expect(t).Payload)] = true
	}
}

func TestSpecSlowConsumerDoesNotBlockOthers(t *testing.T) {
	b, addr := startBroker(t, broker.Options{MaxQueuedMessages: 1000})
	slow := dialRaw(t, addr)
	slow.connect(&mqtt.Connect{ClientID: "never-reads", CleanStart: true})
	slow.subscribe(mqtt.Subscription{Filter: "flood/#", QoS: 1})
	// From here on the slow client reads nothing.
	fast, _ := dialV5(t, addr, &paho.Connect{ClientID: "fast", CleanStart: true})
	fast.subscribe(t, subOpt("flood/#", 1))
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	payload := bytes.Repeat([]byte("x"), 1024)
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			pub.publish(t, &paho.Publish{Topic: "flood/x", QoS: 1, Payload: payload})
		}
	}()
	for i := range n {
		select {
		case <-fast.msgs:
		case <-time.After(wait):
			t.Fatalf("fast subscriber stalled after %d of %d", i, n)
		}
	}
	<-done
	if b.Stats().Dropped["queue_full"] == 0 {
		t.Fatal("no queue_full drops for the subscriber that never reads")
	}
}

// TestIdleConnectionsPark checks that idle connections give up their reader
// goroutine and still receive, send and time out as before.
func TestIdleConnectionsPark(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	const n = 20
	var subs []*raw
	for i := range n {
		c := dialRaw(t, addr)
		c.connect(&mqtt.Connect{ClientID: fmt.Sprint("idle-", i), CleanStart: true, KeepAlive: 60})
		c.subscribe(mqtt.Subscription{Filter: "park/#", QoS: 1})
		subs = append(subs, c)
	}
	deadline := time.Now().Add(wait)
	for b.Stats().Parked < n {
		if time.Now().After(deadline) {
			t.Skipf("connections did not park (%d of %d): no poller on this platform", b.Stats().Parked, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "park/x", QoS: 1, Payload: []byte("to parked")})
	for _, c := range subs {
		p := c.readPublish() // delivered while parked
		if string(p.Payload) != "to parked" {
			t.Fatalf("got %q", p.Payload)
		}
		c.send(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p.PacketID}) // wakes the reader
		c.send(&mqtt.Pingreq{})
		if _, ok := c.read().(*mqtt.Pingresp); !ok {
			t.Fatal("no PINGRESP from a resumed connection")
		}
	}
	if st := b.Stats(); st.Inflight != 0 {
		t.Fatalf("%d messages still inflight after PUBACKs to resumed readers", st.Inflight)
	}
}

func TestSpecPayloadFormatInvalid(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "pfi", CleanStart: true})
	c.send(&mqtt.Publish{QoS: 1, PacketID: 1, Topic: "pfi", Props: mqtt.Properties{PayloadFormat: 1}, Payload: []byte{0xff, 0xfe}})
	if a, ok := c.read().(*mqtt.Ack); !ok || a.ReasonCode != mqtt.PayloadFormatInvalid {
		t.Fatalf("got %+v, want PUBACK 0x99", a) // MQTT 5.0 §3.3.2.3.2
	}
	w := dialRaw(t, addr)
	w.v, w.r.Version = mqtt.V5, mqtt.V5
	w.send(&mqtt.Connect{Version: mqtt.V5, KeepAlive: 30, ClientID: "willpfi",
		Will: &mqtt.Will{Topic: "w", Payload: []byte{0xff}, Props: mqtt.Properties{PayloadFormat: 1}}})
	if ack, ok := w.read().(*mqtt.Connack); !ok || ack.ReasonCode != mqtt.PayloadFormatInvalid {
		t.Fatalf("got %+v, want CONNACK 0x99", ack) // MQTT 5.0 §3.1.3.2.3
	}
}

func TestSpecWillTopicInvalid(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	w := dialRaw(t, addr)
	w.write(unhex(t, "10 15 00044d515454 05 06 003c 00 000163 00 0003 612f23 0000")) // will topic a/#
	w.r.Version = mqtt.V5
	if ack, ok := w.read().(*mqtt.Connack); !ok || ack.ReasonCode != mqtt.TopicNameInvalid {
		t.Fatalf("got %+v, want CONNACK 0x90", ack)
	}
}

func TestSpecSessionExpiryOnDisconnect(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "zero", CleanStart: true}) // Session Expiry 0
	d := &mqtt.Disconnect{}
	d.Props.SessionExpiry = 60
	c.send(d)
	if got := c.expectDisconnect(); got != 0x82 {
		t.Fatalf("got %d, want DISCONNECT 0x82", got) // [MQTT-3.14.2-2]
	}
	c2 := dialRaw(t, addr)
	c2.connect(&mqtt.Connect{ClientID: "extend", CleanStart: true, Props: mqtt.Properties{SessionExpiry: 1}})
	d2 := &mqtt.Disconnect{}
	d2.Props.SessionExpiry = 3600 // extended at DISCONNECT
	c2.send(d2)
	deadline := time.Now().Add(wait)
	for b.Stats().Clients > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c3 := dialRaw(t, addr)
	if ack := c3.connect(&mqtt.Connect{ClientID: "extend", Props: mqtt.Properties{SessionExpiry: 60}}); !ack.SessionPresent {
		t.Fatal("session expiry set on DISCONNECT was not kept")
	}
}

func TestSpecSharedSubscriptionNoRetained(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "sr/x", QoS: 1, Retain: true, Payload: []byte("kept")})
	s, _ := dialV5(t, addr, &paho.Connect{ClientID: "s", CleanStart: true})
	s.subscribe(t, subOpt("$share/g/sr/#", 1))
	s.expectNone(t, 300*time.Millisecond) // MQTT 5.0 §4.8.2
	pub.publish(t, &paho.Publish{Topic: "sr/x", QoS: 1, Payload: []byte("live")})
	if m := s.expect(t); string(m.Payload) != "live" {
		t.Fatalf("got %q", m.Payload)
	}
}
