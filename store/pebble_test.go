package store

import (
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/citymesh/citymesh/mqtt"
)

func TestDiskSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	props := &mqtt.Properties{ContentType: "text/plain", User: []mqtt.UserProperty{{Key: "k", Value: "v"}}}
	d.PutSession(Session{ClientID: "gateway-7", Expiry: 3600, Subscriptions: []Subscription{{Subscription: mqtt.Subscription{Filter: "v/#", QoS: 2}}}})
	d.PutRetained(Message{Topic: "twin/b1", Payload: []byte("on"), QoS: 1, Props: props})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ss, err := d.Sessions()
	if err != nil || len(ss) != 1 || ss[0].ClientID != "gateway-7" || ss[0].Subscriptions[0].QoS != 2 {
		t.Fatalf("sessions after reopen: %+v %v", ss, err)
	}
	rs, err := d.Retained()
	if err != nil || len(rs) != 1 || string(rs[0].Payload) != "on" || rs[0].Props.ContentType != "text/plain" || rs[0].Props.User[0].Value != "v" {
		t.Fatalf("retained after reopen: %+v %v", rs, err)
	}
}

func TestDiskReportsCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.PutSession(Session{ClientID: "good", Expiry: 1})
	if err := d.db.Set([]byte(sessionPrefix+"torn"), []byte(`{"ClientID":"to`), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	ss, err := d.Sessions()
	if err == nil || !strings.Contains(err.Error(), "torn") {
		t.Fatalf("corrupt record not reported: %v", err)
	}
	if len(ss) != 1 || ss[0].ClientID != "good" {
		t.Fatalf("the good record was not returned alongside the error: %+v", ss)
	}
}
