package broker_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/broker"
)

// TestAdminClientsDisconnect: Clients lists a Paho client with its
// subscriptions, Disconnect ends it with DISCONNECT 0x98 (Administrative
// action) and the reason, and the client is gone from the list.
func TestAdminClientsDisconnect(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	before := time.Now()
	c, _ := dialV5(t, addr, &paho.Connect{ClientID: "probe", CleanStart: true, KeepAlive: 30})
	if _, err := c.Subscribe(t.Context(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "a/#"}, {Topic: "b"}}}); err != nil {
		t.Fatal(err)
	}
	ci, ok := b.Client("probe")
	if !ok || ci.Version != 5 || ci.Subscriptions != 2 || ci.Remote == "" || ci.Since.Before(before.Add(-time.Second)) {
		t.Fatalf("Client(probe) = %+v, %v", ci, ok)
	}
	if l := b.Clients(); len(l) != 1 || l[0].ID != "probe" {
		t.Fatalf("Clients() = %+v", l)
	}
	if b.Disconnect("nobody", "x") {
		t.Error("Disconnect of an unknown client reported true")
	}
	if !b.Disconnect("probe", "maintenance") {
		t.Fatal("Disconnect(probe) = false")
	}
	select {
	case d := <-c.disc:
		if d.ReasonCode != 0x98 || d.Properties == nil || d.Properties.ReasonString != "maintenance" {
			t.Errorf("DISCONNECT %#x %+v, want 0x98 maintenance", d.ReasonCode, d.Properties)
		}
	case <-time.After(wait):
		t.Fatal("no DISCONNECT from the broker")
	}
	deadline := time.Now().Add(wait)
	for len(b.Clients()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still listed: %+v", b.Clients())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b.Disconnect("probe", "again") {
		t.Error("Disconnect of a gone client reported true")
	}
}

// TestAdminRetained: Retained lists retained messages by filter, in topic
// order and up to a limit; ClearRetained removes one; bad filters and
// names are errors.
func TestAdminRetained(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	c, _ := dialV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true, KeepAlive: 30})
	for _, tp := range []string{"a/2/x", "a/1/x", "b/1/x"} {
		if _, err := c.Publish(t.Context(), &paho.Publish{Topic: tp, Payload: []byte("v-" + tp), QoS: 1, Retain: true}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Retained("a/+/x", 0)
	if err != nil || len(got) != 2 || got[0].Topic != "a/1/x" || got[1].Topic != "a/2/x" || string(got[0].Payload) != "v-a/1/x" {
		t.Fatalf("Retained(a/+/x) = %v, %v", got, err)
	}
	if got, _ := b.Retained("#", 2); len(got) != 2 {
		t.Errorf("Retained(#, 2): %d messages", len(got))
	}
	if _, err := b.Retained("a/#/x", 0); err == nil {
		t.Error("Retained of a bad filter: no error")
	}
	if ok, err := b.ClearRetained("a/1/x"); !ok || err != nil {
		t.Fatalf("ClearRetained(a/1/x) = %v, %v", ok, err)
	}
	if ok, err := b.ClearRetained("a/1/x"); ok || err != nil {
		t.Errorf("ClearRetained of a cleared topic = %v, %v", ok, err)
	}
	if _, err := b.ClearRetained("a/+"); err == nil {
		t.Error("ClearRetained of a filter: no error")
	}
	if got, _ := b.Retained("#", 0); len(got) != 2 || b.Stats().Retained != 2 {
		t.Errorf("after clearing: %v, stats %d", got, b.Stats().Retained)
	}
}
