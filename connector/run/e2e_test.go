package run_test

// End-to-end tests: a real Mosquitto stands for The Things Stack's MQTT
// server and for the broker ChirpStack publishes to; a citymesh node runs
// the connectors in-process; a test publisher (Eclipse Paho, MQTT 3.1.1)
// plays the network servers, and a subscriber (Eclipse Paho, MQTT 5)
// checks every event against its JSON schema and the values the devices
// sent.

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/lorawantest"
	"github.com/citymesh/citymesh/node"
)

var (
	smallCampus = filepath.Join("..", "..", "examples", "campus", "small", "campus.yaml")
	codecDir    = filepath.Join("..", "..", "examples", "campus", "codecs")
)

// received is a message the subscriber got.
type received struct {
	topic   string
	payload []byte
	props   *paho.PublishProperties
}

// subscriber is an MQTT 5 client of the citymesh node.
type subscriber struct {
	t  *testing.T
	c  *paho.Client
	mu sync.Mutex
	ms []received
}

func subscribe(t *testing.T, addr string, filters ...string) *subscriber {
	t.Helper()
	s := &subscriber{t: t}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.c = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			s.mu.Lock()
			s.ms = append(s.ms, received{pr.Packet.Topic, append([]byte(nil), pr.Packet.Payload...), pr.Packet.Properties})
			s.mu.Unlock()
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.c.Connect(ctx, &paho.Connect{ClientID: "dashboard-" + filters[0], CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	var subs []paho.SubscribeOptions
	for _, f := range filters {
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	if _, err := s.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.c.Disconnect(&paho.Disconnect{}) })
	return s
}

// waitFor waits until cond holds of the messages so far.
func (s *subscriber) waitFor(what string, cond func([]received) bool) []received {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		ms := append([]received(nil), s.ms...)
		s.mu.Unlock()
		if cond(ms) {
			return ms
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s (%d messages)", what, len(ms))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func count(ms []received, topic string) int {
	n := 0
	for _, m := range ms {
		if m.topic == topic {
			n++
		}
	}
	return n
}

// publisher plays the network servers on Mosquitto: MQTT 3.1.1, as The
// Things Stack speaks it.
func publisher(t *testing.T, addr string) pahov3.Client {
	t.Helper()
	opts := pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("network-server").SetCleanSession(true).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := pahov3.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c pahov3.Client, topic string, qos byte, body []byte) {
	t.Helper()
	if tok := c.Publish(topic, qos, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// metric returns the sum of a metric's series in the node's registry.
func metric(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}

func waitMetric(t *testing.T, n *node.Node, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for metric(t, n, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, metric(t, n, name), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startNode starts a citymesh node that runs the connectors against the
// Mosquitto at addr.
func startNode(t *testing.T, addr string) *node.Node {
	t.Helper()
	cfg := node.Default()
	cfg.MQTT, cfg.WS, cfg.HTTP, cfg.Store, cfg.SysIntervalSeconds = "127.0.0.1:0", "off", "off", "memory", -1
	cfg.Connectors = run.Config{Campus: smallCampus, Codecs: codecDir,
		TTS:          []run.TTSConfig{{Application: "wartberg-ttn", URL: "tcp://" + addr, APIKey: "NNSXS.TEST"}},
		ChirpStack:   []run.ChirpStackConfig{{Application: "soil-twin", URL: "tcp://" + addr}},
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second}
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// sendRound publishes one uplink of every device with frame counter fCnt,
// each twice (through a second gateway, or delivered again), and returns
// the values sent by device.
func sendRound(t *testing.T, pub pahov3.Client, model *campus.Model, rng *rand.Rand, fCnt uint32) map[string]map[string]float64 {
	t.Helper()
	sent := make(map[string]map[string]float64)
	second := lorawantest.Gateway{ID: "hn-wartberg-north", RSSI: -112, SNR: -3.5}
	for _, d := range model.Devices {
		app, _ := model.Application(d.Application)
		vals := lorawantest.RandomValues(rng, d.Type)
		sent[d.ID] = vals
		for copy := range 2 {
			up := lorawantest.Uplink{App: app, Device: d, FCnt: fCnt, Values: vals, Decoded: fCnt%2 == 0}
			if copy == 1 {
				up.Gateways = []lorawantest.Gateway{second}
			}
			if app.Server == campus.TheThingsStack {
				topic, body, err := up.TTS()
				if err != nil {
					t.Fatal(err)
				}
				publish(t, pub, topic, 0, body)
			} else {
				topic, body, err := up.ChirpStack()
				if err != nil {
					t.Fatal(err)
				}
				publish(t, pub, topic, 1, body)
			}
		}
	}
	return sent
}

// checkRound checks that the events of round fCnt are there once each,
// valid and with the values sent.
func checkRound(t *testing.T, model *campus.Model, ms []received, fCnt uint32, sent map[string]map[string]float64) {
	t.Helper()
	for _, d := range model.Devices {
		var meas []*event.Measurement
		var ups int
		for _, m := range ms {
			k, ok := event.KindOf(lastLevel(m.topic))
			if !ok {
				t.Fatalf("%s: not an event topic", m.topic)
			}
			if err := event.ValidateJSON(k, m.payload); err != nil {
				t.Fatalf("%s: %v\n%s", m.topic, err, m.payload)
			}
			if m.props == nil || m.props.ContentType != event.ContentType {
				t.Errorf("%s: content type %+v", m.topic, m.props)
			}
			e, err := event.Decode(k, m.payload)
			if err != nil {
				t.Fatal(err)
			}
			src := e.Head().Source
			if e.Head().Asset != d.ID || src.FCnt == nil || *src.FCnt != fCnt {
				continue
			}
			switch e := e.(type) {
			case *event.Measurement:
				meas = append(meas, e)
			case *event.Uplink:
				ups++
			}
		}
		if len(meas) != 1 || ups != 1 {
			t.Fatalf("%s, frame %d: %d measurements and %d uplinks, want one each", d.ID, fCnt, len(meas), ups)
		}
		want, tol := lorawantest.Expected(d, sent[d.ID])
		if len(meas[0].Values) != len(want) {
			t.Errorf("%s: %d values, want %d", d.ID, len(meas[0].Values), len(want))
		}
		for _, v := range meas[0].Values {
			if math.Abs(v.Value-want[v.Point]) > tol[v.Point] {
				t.Errorf("%s, frame %d: %s = %v, want %v ± %v", d.ID, fCnt, v.Point, v.Value, want[v.Point], tol[v.Point])
			}
		}
		if err := model.Check(d.Topic(event.EventMeasurement), meas[0]); err != nil {
			t.Errorf("%s: %v", d.ID, err)
		}
	}
}

func lastLevel(topic string) string {
	for i := len(topic) - 1; i >= 0; i-- {
		if topic[i] == '/' {
			return topic[i+1:]
		}
	}
	return topic
}

// TestThroughMosquitto: The Things Stack's and ChirpStack's uplinks
// through a real MQTT server become each device's events exactly once,
// copies dropped, values right; the connectors come back after the server
// restarts; a downlink command reaches the server.
func TestThroughMosquitto(t *testing.T) {
	m := lorawantest.StartMosquitto(t)
	n := startNode(t, m.Addr)
	model, err := campus.Load(smallCampus)
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, n.Addr(node.ListenerMQTT).String(), "vineyard/+/device/+/measurement", "vineyard/+/device/+/uplink")
	status := subscribe(t, n.Addr(node.ListenerMQTT).String(), "vineyard/+/device/+/status")
	waitMetric(t, n, "citymesh_connector_connected", 2)
	pub := publisher(t, m.Addr)
	rng := rand.New(rand.NewPCG(9, 9))
	devices := len(model.Devices)

	const rounds = 4
	sent := make(map[uint32]map[string]map[string]float64)
	for f := uint32(1); f <= rounds; f++ {
		sent[f] = sendRound(t, pub, model, rng, f)
	}
	ms := sub.waitFor("every uplink's events", func(ms []received) bool { return len(ms) >= 2*rounds*devices })
	waitMetric(t, n, "citymesh_connector_uplinks_received_total", float64(2*rounds*devices))
	for f := uint32(1); f <= rounds; f++ {
		checkRound(t, model, ms, f, sent[f])
	}
	waitMetric(t, n, "citymesh_connector_uplinks_duplicate_total", rounds*float64(devices))
	// Each device went online once: one status, retained.
	sts := status.waitFor("a status per device", func(ms []received) bool { return len(ms) == devices })
	for _, s := range sts {
		var st event.Status
		json.Unmarshal(s.payload, &st)
		if st.State != event.Online || st.Reason != event.ReasonUplink {
			t.Errorf("%s: %s %s", s.topic, st.State, st.Reason)
		}
	}

	// The server restarts: the connectors reconnect and carry on.
	m.Stop()
	waitMetric(t, n, "citymesh_connector_connected", 0)
	m.Start()
	waitMetric(t, n, "citymesh_connector_connected", 2)
	pub = publisher(t, m.Addr)
	sent[rounds+1] = sendRound(t, pub, model, rng, rounds+1)
	ms = sub.waitFor("the uplinks after the restart", func(ms []received) bool { return len(ms) >= 2*(rounds+1)*devices })
	checkRound(t, model, ms, rounds+1, sent[rounds+1])
	if got := metric(t, n, "citymesh_connector_failures_total"); got != 0 {
		t.Errorf("%v failures", got)
	}

	// A downlink command on citymesh reaches The Things Stack.
	downs := make(chan pahov3.Message, 4)
	if tok := pub.Subscribe("v3/+/devices/+/down/push", 0, func(_ pahov3.Client, msg pahov3.Message) { downs <- msg }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	probe, _ := model.Device("soil-probe-02")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sub.c.Publish(ctx, &paho.Publish{Topic: probe.Topic(run.CommandEvent).String(), QoS: 1,
		Payload: []byte(`{"data":{"interval":600}}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-downs:
		if want := "v3/hn-wartberg-vineyards@ttn/devices/soil-probe-02/down/push"; msg.Topic() != want {
			t.Errorf("downlink on %s, want %s", msg.Topic(), want)
		}
		var q struct {
			Downlinks []struct {
				FPort      int    `json:"f_port"`
				FRMPayload []byte `json:"frm_payload"`
			} `json:"downlinks"`
		}
		if err := json.Unmarshal(msg.Payload(), &q); err != nil || len(q.Downlinks) != 1 || q.Downlinks[0].FPort != 2 ||
			string(q.Downlinks[0].FRMPayload) != "\x01\x00\x02\x58" {
			t.Errorf("downlink %s (%v)", msg.Payload(), err)
		}
	case <-ctx.Done():
		t.Fatal("no downlink at the server")
	}
}

// TestBuildingGatewayBesideConnectors: with the connectors running, a
// building gateway publishes as docs/events.md says (its status with a
// will, a room's values, a meter's registers) and a later subscriber gets
// exactly what it published, retained and valid: the connectors neither
// consume nor touch the building's topics.
func TestBuildingGatewayBesideConnectors(t *testing.T) {
	n := startNode(t, "127.0.0.1:1") // network servers unreachable: no matter here
	model, err := campus.Load(smallCampus)
	if err != nil {
		t.Fatal(err)
	}
	addr := n.Addr(node.ListenerMQTT).String()
	status := `{"time":"2026-05-12T09:30:00Z","asset":"bms-b01","source":{"type":"building","gateway":"bms-b01"},"state":"online","reason":"connected"}`
	will := `{"time":"2026-05-12T09:30:00Z","asset":"bms-b01","source":{"type":"building","gateway":"bms-b01"},"state":"offline","reason":"disconnected"}`
	room := `{"time":"2026-05-12T09:30:00Z","asset":"b01-0.01","source":{"type":"building","gateway":"bms-b01"},` +
		`"values":[{"point":"b01-0.01/temperature","value":21.8,"unit":"CEL"},{"point":"b01-0.01/windowContact","value":0,"unit":"C62"}]}`
	reading := `{"time":"2026-05-12T07:15:00+02:00","asset":"el-b01-main","source":{"type":"building","gateway":"bms-b01"},` +
		`"values":[{"point":"el-b01-main/1-0:1.8.0","value":1284467.25,"unit":"KWH","obis":"1-0:1.8.0"}]}`
	published := map[string]string{
		"building/campus/gateway/bms-b01/status":    status,
		"building/campus/room/b01-0.01/measurement": room,
		"energy/campus/meter/el-b01-main/reading":   reading,
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	gw := paho.NewClient(paho.ClientConfig{Conn: nc})
	expiry := uint32(3600)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := gw.Connect(ctx, &paho.Connect{ClientID: "bms-b01", KeepAlive: 30, CleanStart: false,
		WillMessage: &paho.WillMessage{Topic: "building/campus/gateway/bms-b01/status", QoS: 1, Retain: true, Payload: []byte(will)},
		Properties:  &paho.ConnectProperties{SessionExpiryInterval: &expiry}}); err != nil {
		t.Fatal(err)
	}
	for topic, body := range published {
		if _, err := gw.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte(body),
			Properties: &paho.PublishProperties{ContentType: "application/json"}}); err != nil {
			t.Fatal(err)
		}
	}
	later := subscribe(t, addr, "building/#", "energy/#")
	ms := later.waitFor("the building's retained events", func(ms []received) bool { return len(ms) == len(published) })
	for _, m := range ms {
		if string(m.payload) != published[m.topic] {
			t.Errorf("%s: got %s, published %s", m.topic, m.payload, published[m.topic])
		}
		tp, err := event.ParseTopic(m.topic)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := tp.EventKind()
		e, err := event.Decode(k, m.payload)
		if err != nil {
			t.Fatalf("%s: %v", m.topic, err)
		}
		if err := event.ValidateJSON(k, m.payload); err != nil {
			t.Errorf("%s: %v", m.topic, err)
		}
		if err := model.Check(tp, e); err != nil {
			t.Errorf("%s: %v", m.topic, err)
		}
	}
	// The gateway's connection breaks: its will says it is offline.
	nc.Close()
	later.waitFor("the will", func(ms []received) bool { return len(ms) == len(published)+1 })
	if got := metric(t, n, "citymesh_connector_events_published_total"); got != 0 {
		t.Errorf("the connectors published %v events", got)
	}
	if got := metric(t, n, "citymesh_connector_failures_total"); got != 0 {
		t.Errorf("the connectors counted %v failures", got)
	}
}
