package sim

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/connector/tts"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/mqtt"
)

// The outputs against a real broker over loopback sockets, received by an
// independent client (Eclipse Paho for MQTT 5).

func startBroker(t *testing.T) (*broker.Broker, string) {
	t.Helper()
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); b.Close(); <-done })
	return b, ln.Addr().String()
}

// collector is a Paho MQTT 5 subscriber that keeps what it receives.
type collector struct {
	mu   sync.Mutex
	msgs []*paho.Publish
}

func subscribe(t *testing.T, addr, filter string) *collector {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{}
	c := paho.NewClient(paho.ClientConfig{ClientID: "checker", Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				col.mu.Lock()
				col.msgs = append(col.msgs, pr.Packet)
				col.mu.Unlock()
				return true, nil
			},
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "checker", KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}); nc.Close() })
	return col
}

// waitFor waits until the collector holds n messages.
func (c *collector) waitFor(t *testing.T, n int) []*paho.Publish {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.msgs)
		msgs := append([]*paho.Publish(nil), c.msgs...)
		c.mu.Unlock()
		if got >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMQTTOutput plays the small campus into a broker: building and
// robot events over MQTT 5, one connection per gateway and robot with its
// will, uplinks over MQTT 3.1.1 on one connection. A building gateway's
// outage closes its connection, and the broker publishes its will.
func TestMQTTOutput(t *testing.T) {
	_, addr := startBroker(t)
	col := subscribe(t, addr, "#")
	city, err := NewMQTTOutput(MQTTOptions{URL: "mqtt://" + addr, Version: mqtt.V5, PerPublisher: true, SessionExpiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := NewMQTTOutput(MQTTOptions{URL: "mqtt://" + addr, ClientID: "sim-network-servers"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := city.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	f, _ := ParseFault("kind=gateway_outage,asset=bms-b01,start=2026-05-12T05:10:00Z,duration=5m")
	fs, _ := NewFaultSet([]Fault{f})
	p, err := NewPlayer(PlayerConfig{Campus: loadSmall(t), Seed: 1, Start: may12, Until: may12.Add(20 * time.Minute), Faults: fs,
		Outputs: Outputs{TTS: ns, ChirpStack: ns, Building: city, Robot: city}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// One connection per building gateway and robot, and the network
	// servers' one.
	if got, want := city.Connections(), len(loadSmall(t).Robots)+1; got != want {
		t.Errorf("%d connections of building gateways and robots, want %d", got, want)
	}
	if got := ns.Connections(); got != 1 {
		t.Errorf("%d connections of the network servers, want 1", got)
	}
	if err := city.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if city.Connections() != 0 || ns.Connections() != 0 {
		t.Error("connections left after Close")
	}
	cs, nss := city.Stats(), ns.Stats()
	if cs.Errors != 0 || nss.Errors != 0 || cs.Drops != 1 {
		t.Fatalf("output stats: city %+v, network servers %+v", cs, nss)
	}
	// Everything published arrives, and the will besides.
	msgs := col.waitFor(t, int(cs.Messages+nss.Messages)+1)
	var will, uplinks int
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(m.Topic, "v3/"):
			if _, _, err := tts.Decode(m.Topic, m.Payload); err != nil {
				t.Errorf("%s: %v", m.Topic, err)
			}
			uplinks++
		default:
			tp, e, err := event.ReadMessage(bus.Message{Topic: m.Topic, Payload: m.Payload})
			if err != nil {
				t.Fatalf("%s: %v", m.Topic, err)
			}
			if m.Properties == nil || m.Properties.ContentType != event.ContentType || len(m.Properties.User) == 0 {
				t.Errorf("%s: no content type or CloudEvents properties over MQTT 5", m.Topic)
			}
			if s, ok := e.(*event.Status); ok && tp.Asset == "bms-b01" && s.State == event.Offline {
				will++
			}
		}
	}
	if will != 1 || uplinks == 0 {
		t.Errorf("%d wills, %d uplinks arrived", will, uplinks)
	}
	// A broker that is not there.
	bad, _ := NewMQTTOutput(MQTTOptions{URL: "mqtt://127.0.0.1:1", RetryAfter: time.Hour})
	if err := bad.Probe(ctx); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
	if err := bad.Publish(ctx, &Publisher{ID: "x"}, Message{Topic: "a", Payload: []byte("b")}); err == nil || bad.Stats().Errors != 1 {
		t.Fatalf("publish without a broker: %v, %+v", err, bad.Stats())
	}
	bad.Close()
	if _, err := NewMQTTOutput(MQTTOptions{}); err == nil {
		t.Fatal("an output without a URL was made")
	}
}

// TestBusOutput plays into a node's in-process bus; a dropped publisher's
// will is published by the output.
func TestBusOutput(t *testing.T) {
	b, addr := startBroker(t)
	col := subscribe(t, addr, "#")
	l, err := bus.NewLocal(b, "citymesh-sim")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := NewBusOutput(l)
	f, _ := ParseFault("kind=gateway_outage,asset=bms-b01,start=2026-05-12T05:10:00Z,duration=5m")
	fs, _ := NewFaultSet([]Fault{f})
	p, err := NewPlayer(PlayerConfig{Campus: loadSmall(t), Seed: 1, Start: may12, Until: may12.Add(20 * time.Minute), Faults: fs,
		Outputs: Outputs{Building: out}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := out.Stats()
	if st.Errors != 0 || st.Drops != 1 {
		t.Fatalf("stats %+v", st)
	}
	msgs := col.waitFor(t, int(st.Messages))
	var offline int
	for _, m := range msgs {
		if strings.Contains(string(m.Payload), `"state":"offline"`) {
			offline++
		}
	}
	if offline != 1 {
		t.Errorf("%d offline statuses, want the will once", offline)
	}
}
