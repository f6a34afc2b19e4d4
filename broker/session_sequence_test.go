package broker_test

import (
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/broker"
)

// A sequence of sessions with one client identifier — persistent, resumed,
// taken over, clean — leaves nothing behind that changes what the next
// session receives: each receives what a fresh session with its own
// subscriptions would (MQTT 5.0 §3.1.2.4, §4.1, §3.1.4).
func TestSessionSequenceLeavesNoStaleState(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		name := "memory"
		if withStore {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			opts := broker.Options{}
			if withStore {
				opts.Store = diskStore(t)
			}
			b, addr := startBroker(t, opts)
			const id = "seq"
			persistent := &paho.ConnectProperties{SessionExpiryInterval: u32(300)}
			other, _ := dialV5(t, addr, &paho.Connect{ClientID: "other", CleanStart: true})

			// 1. A persistent session with No Local and Retain As
			// Published, and a second subscription.
			c1, ack := dialV5(t, addr, &paho.Connect{ClientID: id, CleanStart: true, Properties: persistent})
			if ack.SessionPresent {
				t.Fatal("first connection: Session Present 1")
			}
			c1.subscribe(t, paho.SubscribeOptions{Topic: "a/#", QoS: 1, NoLocal: true, RetainAsPublished: true},
				subOpt("b/#", 1))
			c1.publish(t, &paho.Publish{Topic: "a/own", QoS: 1, Payload: []byte("own")})
			c1.expectNone(t, 50*time.Millisecond) // No Local [MQTT-3.8.3-3]
			c1.Disconnect(&paho.Disconnect{})
			waitClients(t, b, 1)
			other.publish(t, &paho.Publish{Topic: "b/queued", QoS: 1, Payload: []byte("queued")})

			// 2. Resumed: its options and queue are kept.
			c2, ack := dialV5(t, addr, &paho.Connect{ClientID: id, CleanStart: false, Properties: persistent})
			if !ack.SessionPresent {
				t.Fatal("resume: Session Present 0")
			}
			if m := c2.expect(t); m.Topic != "b/queued" {
				t.Fatalf("resume: got %s, want b/queued", m.Topic)
			}
			c2.publish(t, &paho.Publish{Topic: "a/own", QoS: 1, Payload: []byte("own")})
			c2.expectNone(t, 50*time.Millisecond) // still No Local
			other.publish(t, &paho.Publish{Topic: "a/r", QoS: 1, Retain: true, Payload: []byte("r1")})
			if m := c2.expect(t); m.Topic != "a/r" || !m.Retain {
				t.Fatalf("resume: got %s retain %v, want a/r with RETAIN kept (Retain As Published)", m.Topic, m.Retain)
			}

			// 3. Taken over by a new connection, which keeps the session.
			// (Once c2's acknowledgements are in: an unacknowledged QoS 1
			// message would rightly go to c3 again.)
			waitFor(t, "c2's acknowledgements", func() bool { return b.Stats().Inflight == 0 })
			c3, ack := dialV5(t, addr, &paho.Connect{ClientID: id, CleanStart: false, Properties: persistent})
			if !ack.SessionPresent {
				t.Fatal("takeover: Session Present 0")
			}
			select {
			case d := <-c2.disc:
				if d.ReasonCode != 0x8E {
					t.Fatalf("taken over connection got DISCONNECT %#x, want 0x8E [MQTT-3.1.4-3]", d.ReasonCode)
				}
			case <-time.After(wait):
				t.Fatal("the taken over connection got no DISCONNECT")
			}
			other.publish(t, &paho.Publish{Topic: "a/x", QoS: 1, Payload: []byte("x")})
			m := c3.expect(t)
			if m.Topic == "a/r" && m.Duplicate() {
				// c2's client may not have acknowledged a/r before the
				// takeover: then it is sent again, with DUP [MQTT-4.4.0-1].
				m = c3.expect(t)
			}
			if m.Topic != "a/x" {
				t.Fatalf("takeover: got %s (DUP %v), want a/x", m.Topic, m.Duplicate())
			}

			// 4. A clean session: nothing of the old one is left.
			c3.Disconnect(&paho.Disconnect{})
			waitClients(t, b, 1)
			other.publish(t, &paho.Publish{Topic: "b/lost", QoS: 1, Payload: []byte("for the old session")})
			c4, ack := dialV5(t, addr, &paho.Connect{ClientID: id, CleanStart: true})
			if ack.SessionPresent {
				t.Fatal("clean start: Session Present 1 [MQTT-3.2.2-2]")
			}
			c4.expectNone(t, 100*time.Millisecond) // no queued message, no old subscription
			c4.subscribe(t, paho.SubscribeOptions{Topic: "a/#", QoS: 1, RetainHandling: 2})
			c4.publish(t, &paho.Publish{Topic: "a/own", QoS: 1, Payload: []byte("own")})
			if m := c4.expect(t); m.Topic != "a/own" {
				t.Fatalf("clean start: got %s, want its own message (No Local is off now)", m.Topic)
			}
			other.publish(t, &paho.Publish{Topic: "a/r", QoS: 1, Retain: true, Payload: []byte("r2")})
			if m := c4.expect(t); m.Topic != "a/r" || m.Retain {
				t.Fatalf("clean start: got %s retain %v, want a/r with RETAIN 0 (Retain As Published is off now) [MQTT-3.3.1-12]", m.Topic, m.Retain)
			}
			other.publish(t, &paho.Publish{Topic: "b/new", QoS: 1, Payload: []byte("b")})
			c4.expectNone(t, 100*time.Millisecond)
			if st := b.Stats(); st.Subscriptions != 1 {
				t.Fatalf("%d subscriptions after the clean start, want 1", st.Subscriptions)
			}
		})
	}
}

// After a takeover, what the old connection still sends must not reach the
// session, which belongs to the new connection now [MQTT-3.1.4-3]: the
// server reads it only to discard it, until the old client closes.
func TestTakenOverConnectionCannotChangeSession(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	old, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	cp := packets.NewControlPacket(packets.CONNECT)
	cc := cp.Content.(*packets.Connect)
	cc.ProtocolName, cc.ProtocolVersion, cc.ClientID, cc.CleanStart, cc.KeepAlive = "MQTT", 5, "twice", true, 30
	cc.Properties = &packets.Properties{SessionExpiryInterval: u32(300)}
	if _, err := cp.WriteTo(old); err != nil {
		t.Fatal(err)
	}
	old.SetReadDeadline(time.Now().Add(wait))
	if p, err := packets.ReadPacket(old); err != nil || p.Type != packets.CONNACK {
		t.Fatalf("CONNACK: %v %v", p, err)
	}

	nu, _ := dialV5(t, addr, &paho.Connect{ClientID: "twice", CleanStart: false,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(300)}})
	if p, err := packets.ReadPacket(old); err != nil || p.Type != packets.DISCONNECT || p.Content.(*packets.Disconnect).ReasonCode != 0x8E {
		t.Fatalf("old connection: got %v %v, want DISCONNECT 0x8E", p, err)
	}
	// The old client goes on as if nothing happened (a write may fail
	// once the server has closed).
	sp := packets.NewControlPacket(packets.SUBSCRIBE)
	sub := sp.Content.(*packets.Subscribe)
	sub.PacketID, sub.Subscriptions, sub.Properties = 1, []packets.SubOptions{{Topic: "stale/#", QoS: 1}}, &packets.Properties{}
	sp.WriteTo(old)
	pp := packets.NewControlPacket(packets.PUBLISH)
	pub := pp.Content.(*packets.Publish)
	pub.Topic, pub.QoS, pub.PacketID, pub.Payload, pub.Properties = "stale/from-old", 1, 2, []byte("old"), &packets.Properties{}
	pp.WriteTo(old)
	// The server ends the old connection: end of file, nothing else.
	if p, err := packets.ReadPacket(old); err == nil {
		t.Fatalf("old connection: got %s after DISCONNECT [MQTT-3.14.4-1]", p.PacketType())
	}

	nu.subscribe(t, subOpt("probe", 1))
	other, _ := dialV5(t, addr, &paho.Connect{ClientID: "other", CleanStart: true})
	other.publish(t, &paho.Publish{Topic: "stale/x", QoS: 1, Payload: []byte("x")})
	other.publish(t, &paho.Publish{Topic: "probe", QoS: 1, Payload: []byte("p")})
	if m := nu.expect(t); m.Topic != "probe" {
		t.Fatalf("the new connection got %s: the old connection's SUBSCRIBE changed its session", m.Topic)
	}
	if st := b.Stats(); st.Subscriptions != 1 || st.MessagesIn != 2 {
		t.Fatalf("subscriptions %d, messages in %d; want 1 and 2 (the old connection's packets discarded)", st.Subscriptions, st.MessagesIn)
	}
}
