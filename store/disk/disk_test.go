package disk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/store/storetest"
)

func open(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.Store {
		st := open(t, t.TempDir())
		t.Cleanup(func() { st.Close() })
		return st
	})
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	var b store.Batch
	b.PutSession(&store.Session{ClientID: "gateway-7", Expiry: 3600, Subscriptions: []store.Subscription{{Subscription: mqtt.Subscription{Filter: "v/#", QoS: 2}}}})
	b.PutEntry("gateway-7", &store.Entry{Seq: 41, Message: store.Message{Topic: "v/1", Payload: []byte("queued"), QoS: 2}})
	b.PutRetained(&store.Message{Topic: "twin/b1", Payload: []byte("on"), QoS: 1, Props: &mqtt.Properties{ContentType: "text/plain"}})
	if err := st.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir)
	defer st.Close()
	snap, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sessions) != 1 || snap.Sessions[0].Subscriptions[0].QoS != 2 || snap.Sessions[0].Queue.Count != 1 || snap.Sessions[0].Queue.First != 41 {
		t.Fatalf("session after reopen: %+v", snap.Sessions)
	}
	if len(snap.Retained) != 1 || snap.Retained[0].Props.ContentType != "text/plain" {
		t.Fatalf("retained after reopen: %+v", snap.Retained)
	}
	if err := st.Engine().(*Engine).Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("opening a file as a store: %v", err)
	}
}
