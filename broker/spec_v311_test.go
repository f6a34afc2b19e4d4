package broker_test

import (
	"fmt"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/citymesh/citymesh/broker"
)

// These tests use Eclipse Paho for MQTT 3.1.1 (paho.mqtt.golang).

type v3client struct {
	pahov3.Client
	msgs chan pahov3.Message
}

func dialV3(t *testing.T, addr, id string, clean bool, configure ...func(*pahov3.ClientOptions)) *v3client {
	t.Helper()
	c, err := tryDialV3(addr, id, clean, configure...)
	if err != nil {
		t.Fatalf("connect %q: %v", id, err)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func tryDialV3(addr, id string, clean bool, configure ...func(*pahov3.ClientOptions)) (*v3client, error) {
	c := &v3client{msgs: make(chan pahov3.Message, 10000)}
	o := pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ pahov3.Client, m pahov3.Message) { c.msgs <- m })
	for _, f := range configure {
		f(o)
	}
	c.Client = pahov3.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, fmt.Errorf("connect timed out")
	}
	return c, tok.Error()
}

func (c *v3client) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

func (c *v3client) publish(t *testing.T, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func (c *v3client) expect(t *testing.T) pahov3.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message within the deadline")
	}
	return nil
}

func TestSpecQoSRoundTripV311(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	sub := dialV3(t, addr, "sub3", true)
	pub := dialV3(t, addr, "pub3", true)
	for _, qos := range []byte{0, 1, 2} {
		topic := fmt.Sprintf("v3/qos%d", qos)
		sub.subscribe(t, topic, qos)
		pub.publish(t, topic, qos, false, topic)
		if m := sub.expect(t); string(m.Payload()) != topic || m.Qos() != qos || m.Retained() {
			t.Fatalf("got %q qos %d retained %v", m.Payload(), m.Qos(), m.Retained()) // 3.1.1 [MQTT-3.3.1-9]
		}
	}
}

func TestSpecRetainedV311(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	pub := dialV3(t, addr, "pub3", true)
	pub.publish(t, "v3/ret", 1, true, "kept")
	sub := dialV3(t, addr, "late3", true)
	sub.subscribe(t, "v3/#", 1)
	if m := sub.expect(t); string(m.Payload()) != "kept" || !m.Retained() {
		t.Fatalf("got %q retained %v", m.Payload(), m.Retained())
	}
}

func TestSpecPersistentSessionV311(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	s := dialV3(t, addr, "persist3", false)
	s.subscribe(t, "v3q/#", 1)
	s.Disconnect(50)
	pub := dialV3(t, addr, "pub3", true)
	for i := range 5 {
		pub.publish(t, "v3q/x", 1, false, fmt.Sprint(i))
	}
	s2 := dialV3(t, addr, "persist3", false)
	for i := range 5 {
		if m := s2.expect(t); string(m.Payload()) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q", i, m.Payload())
		}
	}
}

func TestSpecEmptyClientIDV311(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	if _, err := tryDialV3(addr, "", false); err == nil {
		t.Fatal("empty client id with clean session 0 accepted") // 3.1.1 [MQTT-3.1.3-8]
	}
	c := dialV3(t, addr, "", true) // [MQTT-3.1.3-6]
	c.subscribe(t, "anon/x", 0)
}
