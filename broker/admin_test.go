package broker_test

import (
	"slices"
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

// TestAdminSessions: Sessions lists the network clients' sessions,
// connected or waiting for their clients, without the in-process ones;
// Session gives one with its subscriptions and their options; a clean
// session is gone when its client leaves.
func TestAdminSessions(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	expiry := uint32(300)
	keep, _ := dialV5(t, addr, &paho.Connect{ClientID: "keeper", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}})
	subID := 7
	if _, err := keep.Subscribe(t.Context(), &paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: &subID},
		Subscriptions: []paho.SubscribeOptions{{Topic: "a/#", QoS: 1, NoLocal: true}, {Topic: "b", QoS: 0, RetainHandling: 2}}}); err != nil {
		t.Fatal(err)
	}
	dialV5(t, addr, &paho.Connect{ClientID: "passer", CleanStart: true, KeepAlive: 30})
	l, err := b.NewLocal("in-process")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	ids := func() []string {
		var out []string
		for _, s := range b.Sessions() {
			out = append(out, s.ID)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{"keeper", "passer"}) {
		t.Fatalf("Sessions() = %v, want keeper and passer", got)
	}
	s, ok := b.Session("keeper")
	want := []broker.SubscriptionInfo{{Filter: "a/#", QoS: 1, NoLocal: true, Identifier: 7}, {Filter: "b", RetainHandling: 2, Identifier: 7}}
	if !ok || !s.Connected || s.Client.Version != 5 || s.Expiry != 300 || s.SubscriptionCount != 2 || !slices.Equal(s.Subscriptions, want) {
		t.Fatalf("Session(keeper) = %+v, %v", s, ok)
	}
	if _, ok := b.Session("in-process"); ok {
		t.Error("Session of an in-process client")
	}
	if _, ok := b.Session("nobody"); ok {
		t.Error("Session of nobody")
	}

	// Both clients leave: the kept session waits, offline; the clean one
	// ends.
	keep.Disconnect(&paho.Disconnect{})
	b.Disconnect("passer", "bye")
	waitFor(t, "keeper offline, passer gone", func() bool {
		s, ok := b.Session("keeper")
		return ok && !s.Connected && !s.Offline.IsZero() && slices.Equal(ids(), []string{"keeper"})
	})
}

// TestLoginBackoffShared: failed logins told by another way of logging in
// (LoginFailed, as the HTTP API does) make the address wait (LoginWait)
// and refuse its MQTT CONNECT with 0x9F; a success forgives.
func TestLoginBackoffShared(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	if w := b.LoginWait("127.0.0.1:1234"); w != 0 {
		t.Fatalf("LoginWait before any failure: %v", w)
	}
	for range 3 {
		b.LoginFailed("127.0.0.1:1234", "http", "ops")
	}
	if w := b.LoginWait("127.0.0.1:5678"); w <= 0 || w > time.Second {
		t.Fatalf("LoginWait after 3 failures: %v, want up to 1 s (for the address, any port)", w)
	}
	if w := b.LoginWait("[::2]:1"); w != 0 {
		t.Errorf("LoginWait of another address: %v", w)
	}
	if _, ack, err := tryDialV5(addr, &paho.Connect{ClientID: "x", CleanStart: true, KeepAlive: 30}); ack == nil || ack.ReasonCode != 0x9F {
		t.Errorf("CONNECT during the back-off: %+v %v, want 0x9F", ack, err)
	}
	b.LoginSucceeded("127.0.0.1:1", "http", "ops")
	if w := b.LoginWait("127.0.0.1:1234"); w != 0 {
		t.Errorf("LoginWait after a success: %v", w)
	}
}
