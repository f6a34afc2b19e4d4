package broker_test

// Durability tests: each kind of durable state survives a restart. A crash
// is simulated by cloning the memory engine under a running broker (what the
// store held at that moment) and starting a second broker on the clone.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

func openStore(t *testing.T, e store.Engine) *store.Store {
	t.Helper()
	st, err := store.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// persistentConnect is the CONNECT of an MQTT 5 client that resumes (or
// starts) a session kept for an hour.
func persistentConnect(id string) *mqtt.Connect {
	return &mqtt.Connect{ClientID: id, Props: mqtt.Properties{SessionExpiry: 3600}}
}

// expectPacket reads packets until one of type kind arrives, skipping none:
// any other packet fails the test.
func (c *raw) expect(kind mqtt.PacketType) mqtt.Packet {
	c.t.Helper()
	p := c.read()
	if p.Type() != kind {
		c.t.Fatalf("got %s %+v, want %s", p.Type(), p, kind)
	}
	return p
}

// publishAcked publishes p and completes its QoS flow as a publisher,
// returning the reason code of the PUBACK or PUBREC.
func (c *raw) publishAcked(p *mqtt.Publish) mqtt.ReasonCode {
	c.t.Helper()
	c.send(p)
	switch p.QoS {
	case 1:
		a := c.expect(mqtt.PUBACK).(*mqtt.Ack)
		if a.PacketID != p.PacketID {
			c.t.Fatalf("PUBACK for %d, want %d", a.PacketID, p.PacketID)
		}
		return a.ReasonCode
	case 2:
		a := c.expect(mqtt.PUBREC).(*mqtt.Ack)
		if a.PacketID != p.PacketID {
			c.t.Fatalf("PUBREC for %d, want %d", a.PacketID, p.PacketID)
		}
		if a.ReasonCode.IsError() {
			return a.ReasonCode
		}
		c.send(&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: p.PacketID})
		if comp := c.expect(mqtt.PUBCOMP).(*mqtt.Ack); comp.ReasonCode != 0 {
			c.t.Fatalf("PUBCOMP reason %#x", comp.ReasonCode)
		}
		return a.ReasonCode
	}
	return 0
}

// receive reads a PUBLISH and acknowledges it as a receiver completing the
// exchange (PUBACK, or PUBREC then PUBCOMP after the broker's PUBREL).
func (c *raw) receive() *mqtt.Publish {
	c.t.Helper()
	p := c.readPublish()
	switch p.QoS {
	case 1:
		c.send(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p.PacketID})
	case 2:
		c.send(&mqtt.Ack{Kind: mqtt.PUBREC, PacketID: p.PacketID})
		for {
			// Later PUBLISH packets may come before the PUBREL, which
			// waits for the store: hold them for readPublish.
			switch q := c.read().(type) {
			case *mqtt.Publish:
				cp := *q
				cp.Payload = bytes.Clone(q.Payload)
				c.held = append(c.held, &cp)
				continue
			case *mqtt.Ack:
				if q.Kind != mqtt.PUBREL || q.PacketID != p.PacketID {
					c.t.Fatalf("got %s for %d, want PUBREL for %d", q.Kind, q.PacketID, p.PacketID)
				}
			default:
				c.t.Fatalf("got %s, want PUBREL", q.Type())
			}
			break
		}
		c.send(&mqtt.Ack{Kind: mqtt.PUBCOMP, PacketID: p.PacketID})
	}
	return p
}

// expectSilence fails if a packet arrives within d.
func (c *raw) expectSilence(d time.Duration) {
	c.t.Helper()
	if p, err := c.readErr(d); err == nil {
		c.t.Fatalf("unexpected %s %+v", p.Type(), p)
	}
}

func TestDurableQueueSurvivesRestart(t *testing.T) {
	for _, mode := range []broker.SyncMode{broker.SyncBatch, broker.SyncAlways, broker.SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			e := store.NewMemoryEngine()
			b1, addr1 := startBroker(t, broker.Options{Store: openStore(t, e), Sync: mode})
			sub := dialRaw(t, addr1)
			sub.connect(persistentConnect("gateway"))
			sub.subscribe(mqtt.Subscription{Filter: "vineyard/#", QoS: 2})
			sub.send(&mqtt.Disconnect{})
			waitClients(t, b1, 0)

			pub := dialRaw(t, addr1)
			pub.connect(&mqtt.Connect{CleanStart: true, ClientID: "sensor"})
			want := []struct {
				payload string
				qos     byte
			}{{"a", 1}, {"b", 2}, {"d", 1}}
			pub.publishAcked(&mqtt.Publish{Topic: "vineyard/w/1", QoS: 1, PacketID: 1, Payload: []byte("a")})
			pub.publishAcked(&mqtt.Publish{Topic: "vineyard/w/1", QoS: 2, PacketID: 2, Payload: []byte("b")})
			pub.publishAcked(&mqtt.Publish{Topic: "vineyard/w/1", QoS: 0, Payload: []byte("c")}) // not kept for an offline session
			pub.publishAcked(&mqtt.Publish{Topic: "vineyard/w/1", QoS: 1, PacketID: 3, Payload: []byte("d")})
			// Acknowledged means stored: the crash comes right after.
			b2, addr2 := startBroker(t, broker.Options{Store: openStore(t, e.Clone()), Sync: mode})
			if st := b2.Stats(); st.Sessions != 1 || st.Stored != 3 || st.Queued != 3 || st.Subscriptions != 1 {
				t.Fatalf("after restart: %d sessions, %d stored, %d queued, %d subscriptions; want 1, 3, 3, 1", st.Sessions, st.Stored, st.Queued, st.Subscriptions)
			}
			sub2 := dialRaw(t, addr2)
			if ack := sub2.connect(persistentConnect("gateway")); !ack.SessionPresent {
				t.Fatal("session not present after restart")
			}
			ids := map[uint16]bool{}
			for _, w := range want {
				p := sub2.receive()
				if string(p.Payload) != w.payload || p.QoS != w.qos || ids[p.PacketID] {
					t.Fatalf("got %q QoS %d id %d, want %q QoS %d with a new id", p.Payload, p.QoS, p.PacketID, w.payload, w.qos)
				}
				ids[p.PacketID] = true
			}
			sub2.expectSilence(100 * time.Millisecond)
			waitFor(t, "acknowledged entries to leave the store", func() bool { return b2.Stats().Stored == 0 })
		})
	}
}

func TestDurableInflightKeepsPacketIDsAndRelease(t *testing.T) {
	e := store.NewMemoryEngine()
	_, addr1 := startBroker(t, broker.Options{Store: openStore(t, e)})
	sub := dialRaw(t, addr1)
	sub.connect(persistentConnect("robot"))
	sub.subscribe(mqtt.Subscription{Filter: "robot/#", QoS: 2})
	pub := dialRaw(t, addr1)
	pub.connect(&mqtt.Connect{CleanStart: true, ClientID: "p"})
	pub.publishAcked(&mqtt.Publish{Topic: "robot/1", QoS: 1, PacketID: 1, Payload: []byte("one")})
	pub.publishAcked(&mqtt.Publish{Topic: "robot/1", QoS: 2, PacketID: 2, Payload: []byte("two")})
	pub.publishAcked(&mqtt.Publish{Topic: "robot/1", QoS: 2, PacketID: 3, Payload: []byte("three")})
	// The subscriber receives all three and acknowledges only the second
	// with PUBREC; the broker's PUBREL shows the release is stored.
	got := []*mqtt.Publish{sub.readPublish(), sub.readPublish(), sub.readPublish()}
	sub.send(&mqtt.Ack{Kind: mqtt.PUBREC, PacketID: got[1].PacketID})
	if rel := sub.expect(mqtt.PUBREL).(*mqtt.Ack); rel.PacketID != got[1].PacketID {
		t.Fatalf("PUBREL for %d, want %d", rel.PacketID, got[1].PacketID)
	}

	_, addr2 := startBroker(t, broker.Options{Store: openStore(t, e.Clone())})
	sub2 := dialRaw(t, addr2)
	if ack := sub2.connect(persistentConnect("robot")); !ack.SessionPresent {
		t.Fatal("session not present after restart")
	}
	// Everything unacknowledged again, in the original order, with the
	// original packet identifiers [MQTT-4.4.0-1]: PUBLISH with DUP, the
	// PUBREL instead of the released PUBLISH [MQTT-4.3.3-6].
	p := sub2.expect(mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Payload) != "one" || p.PacketID != got[0].PacketID || !p.Dup || p.QoS != 1 {
		t.Fatalf("first resend: %q id %d dup %v QoS %d; want \"one\" id %d dup", p.Payload, p.PacketID, p.Dup, p.QoS, got[0].PacketID)
	}
	if rel := sub2.expect(mqtt.PUBREL).(*mqtt.Ack); rel.PacketID != got[1].PacketID {
		t.Fatalf("second resend: PUBREL %d, want %d", rel.PacketID, got[1].PacketID)
	}
	p = sub2.expect(mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Payload) != "three" || p.PacketID != got[2].PacketID || !p.Dup || p.QoS != 2 {
		t.Fatalf("third resend: %q id %d dup %v; want \"three\" id %d dup", p.Payload, p.PacketID, p.Dup, got[2].PacketID)
	}
}

func TestDurableInboundQoS2(t *testing.T) {
	e := store.NewMemoryEngine()
	b1, addr1 := startBroker(t, broker.Options{Store: openStore(t, e)})
	sub := dialRaw(t, addr1)
	sub.connect(persistentConnect("twin"))
	sub.subscribe(mqtt.Subscription{Filter: "energy/#", QoS: 2})
	sub.send(&mqtt.Disconnect{})
	waitClients(t, b1, 0)
	pub := dialRaw(t, addr1)
	pub.connect(persistentConnect("meter"))
	pub.send(&mqtt.Publish{Topic: "energy/b1/m1", QoS: 2, PacketID: 7, Payload: []byte("reading")})
	if a := pub.expect(mqtt.PUBREC).(*mqtt.Ack); a.PacketID != 7 || a.ReasonCode != 0 {
		t.Fatalf("PUBREC %+v", a)
	}

	_, addr2 := startBroker(t, broker.Options{Store: openStore(t, e.Clone())})
	pub2 := dialRaw(t, addr2)
	if ack := pub2.connect(persistentConnect("meter")); !ack.SessionPresent {
		t.Fatal("publisher's session not present after restart")
	}
	// The publisher did not see the PUBREC in time and sends again: it is
	// acknowledged, not delivered twice [MQTT-4.3.3-10].
	pub2.send(&mqtt.Publish{Topic: "energy/b1/m1", QoS: 2, PacketID: 7, Dup: true, Payload: []byte("reading")})
	if a := pub2.expect(mqtt.PUBREC).(*mqtt.Ack); a.PacketID != 7 || a.ReasonCode != 0 {
		t.Fatalf("PUBREC after restart %+v", a)
	}
	pub2.send(&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: 7})
	if c := pub2.expect(mqtt.PUBCOMP).(*mqtt.Ack); c.ReasonCode != 0 {
		t.Fatalf("PUBCOMP reason %#x: the broker forgot the exchange", c.ReasonCode)
	}
	// Packet identifier 7 is free again: a new message with it is new.
	pub2.publishAcked(&mqtt.Publish{Topic: "energy/b1/m1", QoS: 2, PacketID: 7, Payload: []byte("next")})

	sub2 := dialRaw(t, addr2)
	sub2.connect(persistentConnect("twin"))
	for _, want := range []string{"reading", "next"} {
		if p := sub2.receive(); string(p.Payload) != want {
			t.Fatalf("got %q, want %q", p.Payload, want)
		}
	}
	sub2.expectSilence(100 * time.Millisecond)
}

func TestDurableWills(t *testing.T) {
	will := func(payload string, delay uint32) *mqtt.Will {
		return &mqtt.Will{Topic: "status/" + payload, Payload: []byte(payload), QoS: 1, Retain: true, Props: mqtt.Properties{WillDelay: delay}}
	}
	e := store.NewMemoryEngine()
	b1, addr1 := startBroker(t, broker.Options{Store: openStore(t, e)})
	// A will whose delay runs when the broker stops.
	pending := dialRaw(t, addr1)
	c := persistentConnect("pending")
	c.Will = will("pending", 1)
	pending.connect(c)
	// A client still connected when the broker stops: its connection is
	// lost then, so its will is due.
	connected := dialRaw(t, addr1)
	c = &mqtt.Connect{ClientID: "connected", CleanStart: true, Will: will("connected", 0)}
	connected.connect(c)
	// A client whose will is cancelled because it resumes its session
	// before the delay.
	resumes := dialRaw(t, addr1)
	c = persistentConnect("resumes")
	c.Will = will("resumes", 30)
	resumes.connect(c)
	// A client that disconnects normally: no will.
	normal := dialRaw(t, addr1)
	c = &mqtt.Connect{ClientID: "normal", CleanStart: true, Will: will("normal", 0)}
	normal.connect(c)
	normal.send(&mqtt.Disconnect{})
	pending.nc.Close()
	resumes.nc.Close()
	waitClients(t, b1, 1)
	// Wait until the store has what the broker decided; a connection ending
	// is not acknowledged, so look for it.
	waitFor(t, "the wills in the store", func() bool {
		snap, err := openStore(t, e.Clone()).Load()
		return err == nil && len(snap.Wills) == 3
	})

	b2, addr2 := startBroker(t, broker.Options{Store: openStore(t, e.Clone())})
	again := dialRaw(t, addr2)
	again.connect(persistentConnect("resumes"))
	watcher := dialRaw(t, addr2)
	watcher.connect(&mqtt.Connect{ClientID: "watcher", CleanStart: true})
	watcher.subscribe(mqtt.Subscription{Filter: "status/#", QoS: 1})
	got := map[string]bool{}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && len(got) < 2 {
		p, err := watcher.readErr(time.Until(deadline))
		if err != nil {
			break
		}
		if pub, ok := p.(*mqtt.Publish); ok {
			got[string(pub.Payload)] = true
			if pub.QoS == 1 {
				watcher.send(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: pub.PacketID})
			}
		}
	}
	if !got["pending"] || !got["connected"] || got["resumes"] || got["normal"] {
		t.Fatalf("wills published after the restart: %v; want pending and connected only", got)
	}
	waitFor(t, "published wills to leave the store", func() bool {
		return b2.Stats().WillsPublished == 2
	})
}

func TestDurableQuotaExceeded(t *testing.T) {
	st := openStore(t, store.NewMemoryEngine())
	b, addr := startBroker(t, broker.Options{Store: st, MaxStoredMessages: 3})
	for _, id := range []string{"full", "roomy"} {
		s := dialRaw(t, addr)
		s.connect(persistentConnect(id))
		s.subscribe(mqtt.Subscription{Filter: "q/" + id + "/#", QoS: 1}, mqtt.Subscription{Filter: "q/both", QoS: 1})
		s.send(&mqtt.Disconnect{})
	}
	waitClients(t, b, 0)
	pub := dialRaw(t, addr)
	pub.connect(&mqtt.Connect{ClientID: "p", CleanStart: true})
	for i := range 3 {
		if code := pub.publishAcked(&mqtt.Publish{Topic: "q/full/x", QoS: 1, PacketID: uint16(i + 1), Payload: []byte("m")}); code != 0 {
			t.Fatalf("message %d refused with %#x before the quota", i, code)
		}
	}
	// Only the full session matches: the message is refused [MQTT 5.0
	// §3.4.2.1, 0x97 Quota exceeded]; QoS 2 likewise.
	if code := pub.publishAcked(&mqtt.Publish{Topic: "q/full/x", QoS: 1, PacketID: 4, Payload: []byte("m")}); code != mqtt.QuotaExceeded {
		t.Fatalf("over quota: reason %#x, want 0x97", code)
	}
	if code := pub.publishAcked(&mqtt.Publish{Topic: "q/full/x", QoS: 2, PacketID: 5, Payload: []byte("m")}); code != mqtt.QuotaExceeded {
		t.Fatalf("over quota, QoS 2: reason %#x, want 0x97", code)
	}
	// Another session still has room: accepted, and the full one's loss is
	// counted.
	before := b.Stats().Dropped["queue_full"]
	if code := pub.publishAcked(&mqtt.Publish{Topic: "q/both", QoS: 1, PacketID: 6, Payload: []byte("m")}); code != 0 {
		t.Fatalf("message for a session with room: reason %#x", code)
	}
	if got := b.Stats().Dropped["queue_full"]; got != before+1 {
		t.Fatalf("queue_full counted %d, want %d", got, before+1)
	}
}

func TestDurablePagedQueue(t *testing.T) {
	const n = 2000 // several pages
	e := store.NewMemoryEngine()
	b1, addr1 := startBroker(t, broker.Options{Store: openStore(t, e)})
	sub := dialRaw(t, addr1)
	sub.connect(persistentConnect("archive"))
	sub.subscribe(mqtt.Subscription{Filter: "log/#", QoS: 1})
	sub.send(&mqtt.Disconnect{})
	waitClients(t, b1, 0)
	pub := dialRaw(t, addr1)
	pub.connect(&mqtt.Connect{ClientID: "p", CleanStart: true})
	for i := range n {
		pub.send(&mqtt.Publish{Topic: "log/a", QoS: 1, PacketID: uint16(i%60000 + 1), Payload: fmt.Appendf(nil, "%d", i)})
	}
	for range n {
		pub.expect(mqtt.PUBACK)
	}
	if st := b1.Stats(); st.Stored != n || st.Queued != n {
		t.Fatalf("%d stored, %d queued; want %d", st.Stored, st.Queued, n)
	}
	b2, addr2 := startBroker(t, broker.Options{Store: openStore(t, e.Clone())})
	sub2 := dialRaw(t, addr2)
	sub2.connect(persistentConnect("archive"))
	for i := range n {
		if p := sub2.receive(); string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q", i, p.Payload)
		}
	}
	// New messages flow once the backlog is read.
	pub2 := dialRaw(t, addr2)
	pub2.connect(&mqtt.Connect{ClientID: "p", CleanStart: true})
	pub2.publishAcked(&mqtt.Publish{Topic: "log/a", QoS: 1, PacketID: 1, Payload: []byte("live")})
	if p := sub2.receive(); string(p.Payload) != "live" {
		t.Fatalf("after the backlog: %q", p.Payload)
	}
	waitFor(t, "the store to empty", func() bool { return b2.Stats().Stored == 0 })
}

func TestDurableMessageExpiry(t *testing.T) {
	e := store.NewMemoryEngine()
	b1, addr1 := startBroker(t, broker.Options{Store: openStore(t, e)})
	sub := dialRaw(t, addr1)
	sub.connect(persistentConnect("late"))
	sub.subscribe(mqtt.Subscription{Filter: "alerts/#", QoS: 1})
	sub.send(&mqtt.Disconnect{})
	waitClients(t, b1, 0)
	pub := dialRaw(t, addr1)
	pub.connect(&mqtt.Connect{ClientID: "p", CleanStart: true})
	short := mqtt.Properties{MessageExpiry: 1}
	long := mqtt.Properties{MessageExpiry: 600}
	pub.publishAcked(&mqtt.Publish{Topic: "alerts/a", QoS: 1, PacketID: 1, Payload: []byte("stale"), Props: short})
	pub.publishAcked(&mqtt.Publish{Topic: "alerts/a", QoS: 1, PacketID: 2, Payload: []byte("fresh"), Props: long})
	b2, addr2 := startBroker(t, broker.Options{Store: openStore(t, e.Clone())})
	time.Sleep(1100 * time.Millisecond) // the first message's expiry passes while it is queued
	sub2 := dialRaw(t, addr2)
	sub2.connect(persistentConnect("late"))
	p := sub2.receive()
	if string(p.Payload) != "fresh" || p.Props.MessageExpiry == 0 || p.Props.MessageExpiry >= 600 {
		t.Fatalf("got %q with expiry %d; want \"fresh\" with less than 600 s left [MQTT-3.3.2-6]", p.Payload, p.Props.MessageExpiry)
	}
	sub2.expectSilence(100 * time.Millisecond)
	if got := b2.Stats().Dropped["expired"]; got != 1 {
		t.Fatalf("expired counted %d, want 1", got)
	}
	waitFor(t, "the store to empty", func() bool { return b2.Stats().Stored == 0 })
}

func TestDurableSessionExpiryRemovesState(t *testing.T) {
	e := store.NewMemoryEngine()
	st := openStore(t, e)
	b, addr := startBroker(t, broker.Options{Store: st})
	sub := dialRaw(t, addr)
	sub.connect(&mqtt.Connect{ClientID: "brief", Props: mqtt.Properties{SessionExpiry: 1}})
	sub.subscribe(mqtt.Subscription{Filter: "t/#", QoS: 1})
	sub.send(&mqtt.Disconnect{})
	waitClients(t, b, 0)
	pub := dialRaw(t, addr)
	pub.connect(&mqtt.Connect{ClientID: "p", CleanStart: true})
	pub.publishAcked(&mqtt.Publish{Topic: "t/1", QoS: 1, PacketID: 1, Payload: []byte("x")})
	waitFor(t, "the session to expire and leave the store", func() bool {
		snap, err := st.Load()
		return err == nil && len(snap.Sessions) == 0 && snap.Orphans == 0 && b.Stats().Sessions == 1
	})
}

// gateEngine holds every Apply until the test opens the gate, to show that
// acknowledgements wait for the store.
type gateEngine struct {
	store.Engine
	mu     sync.Mutex
	closed bool
	open   chan struct{}
}

func (g *gateEngine) Apply(b *store.Batch, durable bool) error {
	g.mu.Lock()
	closed, open := g.closed, g.open
	g.mu.Unlock()
	if closed {
		select {
		case <-open:
		case <-time.After(10 * time.Second): // a failed test must not hold the broker's shutdown
		}
	}
	return g.Engine.Apply(b, durable)
}

func (g *gateEngine) shut() {
	g.mu.Lock()
	g.closed = true
	g.open = make(chan struct{})
	g.mu.Unlock()
}

// newGateEngine returns an open gate over a memory engine.
func newGateEngine(*testing.T) *gateEngine {
	return &gateEngine{Engine: store.NewMemoryEngine()}
}

func (g *gateEngine) release() {
	g.mu.Lock()
	g.closed = false
	close(g.open)
	g.mu.Unlock()
}

func TestAcknowledgementsWaitForTheStore(t *testing.T) {
	g := newGateEngine(t)
	_, addr := startBroker(t, broker.Options{Store: openStore(t, g)})
	sub := dialRaw(t, addr)
	sub.connect(persistentConnect("durable"))
	sub.subscribe(mqtt.Subscription{Filter: "d/#", QoS: 2})
	pub := dialRaw(t, addr)
	pub.connect(persistentConnect("pub"))

	g.shut()
	pub.send(&mqtt.Publish{Topic: "d/1", QoS: 2, PacketID: 2, Payload: []byte("y")})
	pub.send(&mqtt.Publish{Topic: "d/1", QoS: 1, PacketID: 1, Payload: []byte("x")})
	sub.send(&mqtt.Subscribe{PacketID: 9, Subscriptions: []mqtt.Subscription{{Filter: "e/#", QoS: 1}}})
	pub.expectSilence(200 * time.Millisecond) // no PUBREC, no PUBACK while the writes are pending
	// No SUBACK, and no delivery: the QoS 2 message waits for the store, and
	// the QoS 1 one behind it keeps its place in the order.
	sub.expectSilence(50 * time.Millisecond)
	g.release()
	if a := pub.expect(mqtt.PUBREC).(*mqtt.Ack); a.PacketID != 2 {
		t.Fatalf("PUBREC %+v", a)
	}
	if a := pub.expect(mqtt.PUBACK).(*mqtt.Ack); a.PacketID != 1 {
		t.Fatalf("PUBACK %+v", a)
	}
	// The deliveries, in order, and the SUBACK follow once durable.
	var got []string
	sawSuback := false
	for !sawSuback || len(got) < 2 {
		switch p := sub.read().(type) {
		case *mqtt.Suback:
			sawSuback = p.PacketID == 9
		case *mqtt.Publish:
			got = append(got, string(p.Payload))
			if p.QoS == 2 {
				sub.send(&mqtt.Ack{Kind: mqtt.PUBREC, PacketID: p.PacketID})
			}
		}
	}
	if got[0] != "y" || got[1] != "x" {
		t.Fatalf("deliveries %q, want [y x]", got)
	}
	// PUBCOMP waits for the inbound record of the publisher's exchange to
	// leave the store.
	g.shut()
	pub.send(&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: 2})
	pub.expectSilence(200 * time.Millisecond)
	g.release()
	if a := pub.expect(mqtt.PUBCOMP).(*mqtt.Ack); a.PacketID != 2 || a.ReasonCode != 0 {
		t.Fatalf("PUBCOMP %+v", a)
	}
}

func TestQoS1GoesOutBeforeItsWriteIsDurable(t *testing.T) {
	g := newGateEngine(t)
	_, addr := startBroker(t, broker.Options{Store: openStore(t, g)})
	sub := dialRaw(t, addr)
	sub.connect(persistentConnect("durable"))
	sub.subscribe(mqtt.Subscription{Filter: "d/#", QoS: 1})
	pub := dialRaw(t, addr)
	pub.connect(&mqtt.Connect{ClientID: "pub", CleanStart: true})
	g.shut()
	pub.send(&mqtt.Publish{Topic: "d/1", QoS: 1, PacketID: 1, Payload: []byte("x")})
	// The subscriber has it at once; the publisher's PUBACK waits: if a
	// crash loses the write, the publisher sends the message again.
	if p := sub.readPublish(); string(p.Payload) != "x" {
		t.Fatalf("got %q", p.Payload)
	}
	pub.expectSilence(100 * time.Millisecond)
	g.release()
	pub.expect(mqtt.PUBACK)
}

func TestDurableSharedMessagesMoveWhenAMemberExpires(t *testing.T) {
	st := openStore(t, store.NewMemoryEngine())
	b, addr := startBroker(t, broker.Options{Store: st})
	for _, m := range []struct {
		id     string
		expiry uint32
	}{{"brief", 1}, {"lasting", 3600}} {
		c := dialRaw(t, addr)
		c.connect(&mqtt.Connect{ClientID: m.id, Props: mqtt.Properties{SessionExpiry: m.expiry}})
		c.subscribe(mqtt.Subscription{Filter: "$share/workers/jobs/#", QoS: 1})
		c.send(&mqtt.Disconnect{})
	}
	waitClients(t, b, 0)
	// Both members are offline: the messages are shared out between their
	// stored queues.
	pub := dialRaw(t, addr)
	pub.connect(&mqtt.Connect{ClientID: "p", CleanStart: true})
	const n = 20
	for i := range n {
		pub.publishAcked(&mqtt.Publish{Topic: "jobs/1", QoS: 1, PacketID: uint16(i + 1), Payload: fmt.Appendf(nil, "%d", i)})
	}
	// The brief member's session expires; what it held goes to the other.
	waitFor(t, "the brief session to expire", func() bool { return b.Stats().Sessions == 2 }) // lasting and p
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "lasting", Props: mqtt.Properties{SessionExpiry: 3600}})
	got := map[string]bool{}
	for range n {
		got[string(c.receive().Payload)] = true
	}
	if len(got) != n {
		t.Fatalf("the remaining member got %d distinct messages, want %d", len(got), n)
	}
	c.expectSilence(100 * time.Millisecond)
}

// failingEngine fails every write once failing is set, like a disk that has
// gone away.
type failingEngine struct {
	store.Engine
	failing atomic.Bool
}

func (f *failingEngine) Apply(b *store.Batch, durable bool) error {
	if f.failing.Load() {
		return errors.New("write: input/output error")
	}
	return f.Engine.Apply(b, durable)
}

func TestStoreFailureIsNotAcknowledged(t *testing.T) {
	f := &failingEngine{Engine: store.NewMemoryEngine()}
	b, addr := startBroker(t, broker.Options{Store: openStore(t, f)})
	sub := dialRaw(t, addr)
	sub.connect(persistentConnect("durable"))
	sub.subscribe(mqtt.Subscription{Filter: "d/#", QoS: 1})
	v5 := dialRaw(t, addr)
	v5.connect(&mqtt.Connect{ClientID: "v5", CleanStart: true})
	v3 := dialRaw(t, addr)
	v3.connect(&mqtt.Connect{ClientID: "v3", CleanStart: true, Version: mqtt.V311})
	f.failing.Store(true)
	// MQTT 5: the acknowledgement says the message was not taken.
	if code := v5.publishAcked(&mqtt.Publish{Topic: "d/1", QoS: 1, PacketID: 1, Payload: []byte("x")}); code != mqtt.UnspecifiedError {
		t.Fatalf("PUBACK reason %#x after a failed store write, want 0x80", code)
	}
	// MQTT 3.1.1 has no such code: the connection closes instead of
	// acknowledging, and the client sends again when it reconnects.
	v3.send(&mqtt.Publish{Topic: "d/1", QoS: 1, PacketID: 1, Payload: []byte("y")})
	for {
		p, err := v3.readErr(wait)
		if err != nil {
			break // closed, as it should be
		}
		if a, ok := p.(*mqtt.Ack); ok && a.Kind == mqtt.PUBACK {
			t.Fatal("PUBACK after a failed store write")
		}
	}
	if b.Stats().StoreErrors == 0 {
		t.Fatal("the failure was not counted")
	}
}

// recordingEngine records the number of writes in each batch applied.
type recordingEngine struct {
	store.Engine
	mu      sync.Mutex
	batches []int
}

func (r *recordingEngine) Apply(b *store.Batch, durable bool) error {
	r.mu.Lock()
	r.batches = append(r.batches, b.Len())
	r.mu.Unlock()
	return r.Engine.Apply(b, durable)
}

// TestQoS2RoutingIsOneCommit checks that every write of a QoS 2 message, its
// entry in each durable session and the publisher's inbound record, lands in
// one commit, even in SyncAlways mode, which otherwise commits each write on
// its own: a crash between them would let the publisher's resend reach the
// sessions that already had it a second time.
func TestQoS2RoutingIsOneCommit(t *testing.T) {
	rec := &recordingEngine{Engine: store.NewMemoryEngine()}
	b, addr := startBroker(t, broker.Options{Store: openStore(t, rec), Sync: broker.SyncAlways})
	for i := range 3 {
		s := dialRaw(t, addr)
		s.connect(persistentConnect(fmt.Sprint("twin-", i)))
		s.subscribe(mqtt.Subscription{Filter: "energy/#", QoS: 2})
		s.send(&mqtt.Disconnect{})
	}
	waitClients(t, b, 0)
	pub := dialRaw(t, addr)
	pub.connect(persistentConnect("meter"))
	rec.mu.Lock()
	rec.batches = nil
	rec.mu.Unlock()
	pub.send(&mqtt.Publish{Topic: "energy/b1/m1", QoS: 2, PacketID: 1, Payload: []byte("reading")})
	pub.expect(mqtt.PUBREC)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.batches) != 1 || rec.batches[0] != 4 {
		t.Fatalf("the QoS 2 message was committed in batches of %v writes; want one batch of 4 (3 entries, 1 inbound record)", rec.batches)
	}
}

// An in-process publish at QoS 1 returns once the message is in the store,
// as a PUBACK would leave (acknowledged means stored); at QoS 0, or when no
// durable session took it, at once. A full queue is an error.
func TestLocalPublishWaitsForTheStore(t *testing.T) {
	g := newGateEngine(t)
	b, addr := startBroker(t, broker.Options{Store: openStore(t, g), MaxStoredMessages: 2})
	sub := dialRaw(t, addr)
	sub.connect(persistentConnect("durable"))
	sub.subscribe(mqtt.Subscription{Filter: "local/#", QoS: 1})
	sub.send(&mqtt.Disconnect{})
	waitClients(t, b, 0)
	l, err := b.NewLocal("connector")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	g.shut()
	done := make(chan error, 1)
	go func() {
		_, err := l.PublishContext(context.Background(), &broker.Message{Topic: "local/a", QoS: 1, Payload: []byte("a")})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("PublishContext returned (%v) before the store committed", err)
	case <-time.After(100 * time.Millisecond):
	}
	if n, err := l.PublishContext(context.Background(), &broker.Message{Topic: "elsewhere", QoS: 1}); err != nil || n != 0 {
		t.Fatalf("a message nobody stores: %d, %v; want 0, nil at once", n, err)
	}
	g.release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("PublishContext did not return after the commit")
	}

	ctx, cancel := context.WithCancel(context.Background())
	g.shut()
	cancel()
	if _, err := l.PublishContext(ctx, &broker.Message{Topic: "local/b", QoS: 1, Payload: []byte("b")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v, want context.Canceled", err)
	}
	g.release()
	if _, err := l.PublishContext(context.Background(), &broker.Message{Topic: "local/c", QoS: 1, Payload: []byte("c")}); !errors.Is(err, broker.ErrQuotaExceeded) {
		t.Fatalf("a full queue: %v, want ErrQuotaExceeded", err)
	}
}
