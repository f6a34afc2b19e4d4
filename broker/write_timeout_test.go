package broker_test

import (
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/eclipse/paho.golang/paho"
)

// TestIdleSubscriberOutlivesWriteTimeout: a subscriber that got nothing
// for longer than the write timeout is still served when the next message
// comes (a mesh link healing after an outage, a sensor's hourly report):
// the write timeout bounds a write that waits, and an idle connection's
// earlier deadline must not fail the next write. Each round leaves the
// subscriber idle for twice the timeout, then publishes to it from another
// client (whose reader writes to the subscriber itself, without a writer
// goroutine, when the socket takes it) and over the broker's in-process
// client.
func TestIdleSubscriberOutlivesWriteTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	b, addr := startBroker(t, broker.Options{WriteTimeout: timeout})
	sub, _ := dialV5(t, addr, &paho.Connect{ClientID: "idle-sub", CleanStart: true, KeepAlive: 60})
	sub.subscribe(t, paho.SubscribeOptions{Topic: "sensor/#", QoS: 1})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "hourly", CleanStart: true, KeepAlive: 60})
	local, err := b.NewLocal("in-process")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	for round := range 3 {
		// Idle: the scenario is time without traffic, not a condition to
		// wait for.
		time.Sleep(2 * timeout)
		topic := "sensor/" + string(rune('a'+round))
		if round%2 == 0 {
			pub.publish(t, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("reading")})
		} else if _, err := local.PublishContext(t.Context(), &broker.Message{Topic: topic, QoS: 1, Payload: []byte("reading")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-sub.msgs:
			if m.Topic != topic {
				t.Fatalf("round %d: got %s, want %s", round, m.Topic, topic)
			}
		case d := <-sub.disc:
			t.Fatalf("round %d: the idle subscriber was disconnected: %v", round, d)
		case <-sub.Done():
			t.Fatalf("round %d: the idle subscriber's connection ended after %v without traffic", round, 2*timeout)
		case <-time.After(wait):
			t.Fatalf("round %d: nothing arrived", round)
		}
	}
}
