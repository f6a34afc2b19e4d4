package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/store/disk"
)

// diskStore opens a Pebble store in a temporary directory, as a default node
// has, closed when the test ends.
func diskStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := disk.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A session resumed with another Session Expiry Interval keeps its state,
// queued messages included; the new interval applies only when the new
// connection ends (MQTT 5.0 §3.1.2.11.2, §4.1). Resuming with no Session
// Expiry Interval (0 from now on) used to delete the stored queue before the
// client read it, in about half of the runs: the test runs the scenario many
// times on fresh nodes.
func TestResumeWithOtherExpiryKeepsQueue(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) *store.Store
	}{
		{"disk", diskStore},
		{"memory", func(t *testing.T) *store.Store { return openStore(t, store.NewMemoryEngine()) }},
		{"none", func(t *testing.T) *store.Store { return nil }},
	}
	resumes := []struct {
		name  string
		props *paho.ConnectProperties
	}{
		{"no expiry", nil},
		{"expiry 10", &paho.ConnectProperties{SessionExpiryInterval: u32(10)}},
		{"expiry 99999", &paho.ConnectProperties{SessionExpiryInterval: u32(99999)}},
	}
	runs := 15
	if testing.Short() {
		runs = 3
	}
	for _, sc := range stores {
		for _, rs := range resumes {
			t.Run(sc.name+"/"+rs.name, func(t *testing.T) {
				t.Parallel()
				for i := range runs {
					resumeOnce(t, sc.open(t), rs.props, i)
				}
			})
		}
	}
}

func resumeOnce(t *testing.T, st *store.Store, resumeProps *paho.ConnectProperties, run int) {
	b, addr := startBroker(t, broker.Options{Store: st})
	id := fmt.Sprintf("resumer-%d", run)
	sub, _ := dialV5(t, addr, &paho.Connect{ClientID: id, CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(99999)}})
	sub.subscribe(t, subOpt("resume/#", 2))
	if err := sub.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	waitClients(t, b, 0)

	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: id + "-pub", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "resume/0", QoS: 0, Payload: []byte("q0")})
	pub.publish(t, &paho.Publish{Topic: "resume/1", QoS: 1, Payload: []byte("q1")})
	pub.publish(t, &paho.Publish{Topic: "resume/2", QoS: 2, Payload: []byte("q2")})
	pub.publish(t, &paho.Publish{Topic: "resume/e", QoS: 1, Payload: []byte("expiring"),
		Properties: &paho.PublishProperties{MessageExpiry: u32(600)}})
	if run == 0 {
		pub.publish(t, &paho.Publish{Topic: "resume/gone", QoS: 1, Payload: []byte("stale"),
			Properties: &paho.PublishProperties{MessageExpiry: u32(1)}})
		time.Sleep(1100 * time.Millisecond) // its 1 s expiry passes while it is queued
	}

	again, ack := dialV5(t, addr, &paho.Connect{ClientID: id, CleanStart: false, Properties: resumeProps})
	if !ack.SessionPresent {
		t.Fatalf("run %d: Session Present 0 on resume, want 1 [MQTT-3.2.2-3]", run)
	}
	want := []struct {
		topic string
		qos   byte
	}{{"resume/1", 1}, {"resume/2", 2}, {"resume/e", 1}}
	for _, w := range want {
		m := again.expect(t)
		if m.Topic != w.topic || m.QoS != w.qos {
			t.Fatalf("run %d: got %s at QoS %d, want %s at QoS %d", run, m.Topic, m.QoS, w.topic, w.qos)
		}
		if w.topic == "resume/e" {
			if m.Properties == nil || m.Properties.MessageExpiry == nil {
				t.Fatalf("run %d: resume/e without its Message Expiry Interval [MQTT-3.3.2-6]", run)
			}
			// Run 0 waited over a second with the message queued.
			if left := *m.Properties.MessageExpiry; left == 0 || left > 600 || run == 0 && left >= 600 {
				t.Fatalf("run %d: resume/e with %d s left, want the remaining interval [MQTT-3.3.2-6]", run, left)
			}
		}
	}
	again.expectNone(t, 100*time.Millisecond) // QoS 0 is not queued offline; the expired one is dropped
	waitFor(t, "the queue to empty", func() bool { return b.Stats().Queued == 0 && b.Stats().Stored == 0 })

	// The new interval applies when this connection ends.
	if err := again.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	waitClients(t, b, 1) // the publisher
	last, ack := dialV5(t, addr, &paho.Connect{ClientID: id, CleanStart: false})
	if want := resumeProps != nil; ack.SessionPresent != want {
		t.Fatalf("run %d: Session Present %v after the resumed connection ended, want %v", run, ack.SessionPresent, want)
	}
	last.Disconnect(&paho.Disconnect{})
}
