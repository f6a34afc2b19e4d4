package store

import (
	"testing"

	"github.com/citymesh/citymesh/mqtt"
)

// implementations opens each Store implementation in a fresh state.
func implementations(t *testing.T) map[string]Store {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return map[string]Store{"memory": &Memory{}, "disk": d} // Memory's zero value works
}

func TestSessions(t *testing.T) {
	for name, m := range implementations(t) {
		t.Run(name, func(t *testing.T) { testSessions(t, m) })
	}
}

func TestRetained(t *testing.T) {
	for name, m := range implementations(t) {
		t.Run(name, func(t *testing.T) { testRetained(t, m) })
	}
}

func testSessions(t *testing.T, m Store) {
	subs := []Subscription{{Subscription: mqtt.Subscription{Filter: "a/#", QoS: 1}, ID: 7}}
	if err := m.PutSession(Session{ClientID: "c1", Expiry: 60, Subscriptions: subs}); err != nil {
		t.Fatal(err)
	}
	subs[0].Filter = "changed" // the store keeps its own copy
	m.PutSession(Session{ClientID: "c2", Expiry: 10})
	m.PutSession(Session{ClientID: "c2", Expiry: 20}) // replaces
	got, _ := m.Sessions()
	if len(got) != 2 {
		t.Fatalf("%d sessions, want 2", len(got))
	}
	for _, s := range got {
		switch s.ClientID {
		case "c1":
			if len(s.Subscriptions) != 1 || s.Subscriptions[0].Filter != "a/#" || s.Subscriptions[0].ID != 7 {
				t.Fatalf("c1 subscriptions %+v", s.Subscriptions)
			}
		case "c2":
			if s.Expiry != 20 {
				t.Fatalf("c2 expiry %d, want the replacement's 20", s.Expiry)
			}
		}
	}
	m.DeleteSession("c1")
	m.DeleteSession("never")
	if got, _ := m.Sessions(); len(got) != 1 || got[0].ClientID != "c2" {
		t.Fatalf("after delete: %+v", got)
	}
}

func testRetained(t *testing.T, m Store) {
	p := []byte("v1")
	m.PutRetained(Message{Topic: "t/1", Payload: p, QoS: 1})
	p[0] = 'X'
	m.PutRetained(Message{Topic: "t/2", Payload: []byte("other")})
	m.PutRetained(Message{Topic: "t/2", Payload: []byte("v2")})
	got, _ := m.Retained()
	byTopic := map[string]string{}
	for _, r := range got {
		byTopic[r.Topic] = string(r.Payload)
	}
	if byTopic["t/1"] != "v1" || byTopic["t/2"] != "v2" || len(byTopic) != 2 {
		t.Fatalf("retained %v", byTopic)
	}
	m.DeleteRetained("t/1")
	if got, _ := m.Retained(); len(got) != 1 {
		t.Fatalf("after delete: %d retained", len(got))
	}
}
