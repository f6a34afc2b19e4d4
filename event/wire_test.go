package event_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
)

// These tests put events on a real broker over loopback sockets, with
// Eclipse Paho for MQTT 5 (paho.golang) and for MQTT 3.1.1
// (paho.mqtt.golang) as the independent clients.

const wait = 5 * time.Second

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

type v5client struct {
	*paho.Client
	nc   net.Conn
	msgs chan *paho.Publish
}

func dialV5(t *testing.T, addr string, cp *paho.Connect) *v5client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &v5client{nc: nc, msgs: make(chan *paho.Publish, 100)}
	c.Client = paho.NewClient(paho.ClientConfig{ClientID: cp.ClientID, Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { c.msgs <- pr.Packet; return true, nil },
		}})
	cp.KeepAlive = 30
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.Connect(ctx, cp); err != nil {
		t.Fatalf("connect %s: %v", cp.ClientID, err)
	}
	t.Cleanup(func() { nc.Close() })
	return c
}

func (c *v5client) expect(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message within the deadline")
	}
	return nil
}

func userProp(p *paho.Publish, key string) string {
	if p.Properties == nil {
		return ""
	}
	return p.Properties.User.Get(key)
}

// receiveBus collects the messages of a bus subscription.
func receiveBus(t *testing.T, b bus.Bus, filter string) <-chan bus.Message {
	t.Helper()
	ch := make(chan bus.Message, 100)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Subscribe(ctx, filter, 1, func(_ context.Context, m bus.Message) { ch <- m }); err != nil {
		t.Fatal(err)
	}
	return ch
}

func next(t *testing.T, ch <-chan bus.Message) bus.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatal("no message within the deadline")
	}
	return bus.Message{}
}

func loadSmallCampus(t *testing.T) *campus.Model {
	t.Helper()
	m, err := campus.Load("../examples/campus/small/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A building gateway publishes as docs/events.md says — its status with a
// will, a room's values, a meter's registers, over MQTT 5 and MQTT 3.1.1
// — and a service that subscribes later gets each asset's latest values,
// valid events that agree with the campus model; when the gateway's
// connection breaks, its will says it is offline.
func TestBuildingGatewayAsDocumented(t *testing.T) {
	m := loadSmallCampus(t)
	b, addr := startBroker(t)
	now := time.Date(2026, 5, 12, 9, 30, 0, 0, time.UTC)
	src := event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"}
	statusJSON := func(state event.State, reason string) []byte {
		data, err := event.Encode(event.NewStatus("bms-b01", now, src, state, reason))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	gw := dialV5(t, addr, &paho.Connect{ClientID: "bms-b01", CleanStart: true,
		WillMessage:    &paho.WillMessage{Topic: "building/campus/gateway/bms-b01/status", QoS: 1, Retain: true, Payload: statusJSON(event.Offline, event.ReasonDisconnected)},
		WillProperties: &paho.WillProperties{ContentType: "application/json"}})
	publish := func(c *v5client, topic string, payload []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if _, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: payload,
			Properties: &paho.PublishProperties{ContentType: "application/json"}}); err != nil {
			t.Fatal(err)
		}
	}
	publish(gw, "building/campus/gateway/bms-b01/status", statusJSON(event.Online, event.ReasonConnected))
	// A room's values, in the words of the documentation.
	room := `{"time":"2026-05-12T09:30:00Z","asset":"b01-0.01","source":{"type":"building","gateway":"bms-b01"},` +
		`"values":[{"point":"b01-0.01/temperature","value":21.8,"unit":"CEL"},{"point":"b01-0.01/temperatureSetpoint","value":21,"unit":"CEL"},` +
		`{"point":"b01-0.01/windowContact","value":0,"unit":"C62"}]}`
	publish(gw, "building/campus/room/b01-0.01/measurement", []byte(room))

	// A meter's registers from an MQTT 3.1.1 gateway (no user properties,
	// no content type).
	o := pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("bms-b01-meters").SetProtocolVersion(4).SetAutoReconnect(false)
	v3 := pahov3.NewClient(o)
	if tok := v3.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("3.1.1 connect: %v", tok.Error())
	}
	defer v3.Disconnect(0)
	reading := `{"time":"2026-05-12T07:15:00+02:00","asset":"el-b01-main","source":{"type":"building","gateway":"bms-b01"},` +
		`"values":[{"point":"el-b01-main/1-0:1.8.0","value":1284467.25,"unit":"KWH","obis":"1-0:1.8.0"},` +
		`{"point":"el-b01-main/1-0:2.8.0","value":60211.5,"unit":"KWH","obis":"1-0:2.8.0"}]}`
	if tok := v3.Publish("energy/campus/meter/el-b01-main/reading", 1, true, reading); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("3.1.1 publish: %v", tok.Error())
	}

	// A service subscribes afterwards and gets the retained latest values.
	svc, err := bus.NewLocal(b, "energy-service")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	got := map[string]event.Event{}
	for _, filter := range []string{"building/+/gateway/+/status", "building/+/room/+/measurement", "energy/+/meter/+/reading"} {
		msg := next(t, receiveBus(t, svc, filter))
		if !msg.Retain || msg.QoS != 1 {
			t.Errorf("%s: retain %v qos %d", msg.Topic, msg.Retain, msg.QoS)
		}
		tp, e, err := event.ReadMessage(msg)
		if err != nil {
			t.Fatalf("%s: %v", msg.Topic, err)
		}
		if err := m.Check(tp, e); err != nil {
			t.Errorf("%s: %v", msg.Topic, err)
		}
		if err := event.ValidateJSON(e.Kind(), msg.Payload); err != nil {
			t.Errorf("%s: %v", msg.Topic, err)
		}
		got[msg.Topic] = e
	}
	if r, ok := got["energy/campus/meter/el-b01-main/reading"].(*event.Measurement); !ok || len(r.Values) != 2 || r.Values[0].Value != 1284467.25 {
		t.Errorf("reading: %+v", got["energy/campus/meter/el-b01-main/reading"])
	}

	// The gateway's connection breaks: its will, retained, says offline.
	status := receiveBus(t, svc, "building/campus/gateway/bms-b01/status")
	if s := next(t, status); s.Retain != true {
		t.Errorf("retained status not first: %+v", s)
	}
	gw.nc.Close()
	msg := next(t, status)
	_, e, err := event.ReadMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := e.(*event.Status); !ok || s.State != event.Offline || s.Reason != event.ReasonDisconnected {
		t.Errorf("will: %+v", e)
	}
}

// What NewMessage builds reaches an MQTT 5 subscriber with the CloudEvents
// attributes as user properties and the content type, and an MQTT 3.1.1
// subscriber with the same payload; a late MQTT 5 subscriber gets it
// retained.
func TestNewMessageOnTheWire(t *testing.T) {
	m := loadSmallCampus(t)
	b, addr := startBroker(t)
	sub5 := dialV5(t, addr, &paho.Connect{ClientID: "sub5", CleanStart: true})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := sub5.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "vineyard/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	v3msgs := make(chan pahov3.Message, 10)
	v3 := pahov3.NewClient(pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("sub3").SetProtocolVersion(4).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ pahov3.Client, msg pahov3.Message) { v3msgs <- msg }))
	if tok := v3.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer v3.Disconnect(0)
	if tok := v3.Subscribe("vineyard/+/device/+/measurement", 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	d, ok := m.Device("soil-probe-01")
	if !ok {
		t.Fatal("no soil-probe-01 in the small campus")
	}
	app, _ := m.Application(d.Application)
	var data map[string]any
	json.Unmarshal([]byte(`{"soilMoisture":31.6,"soilTemperature":14.2,"soilConductivity":412,"battery":3.1}`), &data)
	values, _, err := m.DeviceValues(d, data)
	if err != nil {
		t.Fatal(err)
	}
	src := event.Source{Type: event.SourceLoRaWAN, NetworkServer: string(app.Server), Tenant: app.TenantID, Application: app.ApplicationID,
		DeviceID: d.NetworkID, DevEUI: d.DevEUI, FCnt: new(uint32(42))}
	e := event.NewMeasurement(d.ID, time.Date(2026, 5, 12, 7, 15, 42, 0, time.UTC), src, values...)
	topic := d.Topic(event.EventMeasurement)
	if err := m.Check(topic, e); err != nil {
		t.Fatal(err)
	}
	msg, err := event.NewMessage(topic, e)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := bus.NewLocal(b, "lorawan-connector")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Publish(ctx, msg); err != nil {
		t.Fatal(err)
	}

	p := sub5.expect(t)
	if p.Topic != "vineyard/wartberg/device/soil-probe-01/measurement" || p.QoS != 1 || string(p.Payload) != string(msg.Payload) {
		t.Errorf("MQTT 5: %s qos %d %s", p.Topic, p.QoS, p.Payload)
	}
	if p.Properties == nil || p.Properties.ContentType != "application/json" || userProp(p, "specversion") != "1.0" ||
		userProp(p, "type") != "citymesh.measurement.v1" || userProp(p, "source") != "/vineyard/wartberg/device/soil-probe-01" ||
		userProp(p, "time") != "2026-05-12T07:15:42Z" || userProp(p, "id") == "" || userProp(p, "dataschema") != event.SchemaURL(event.KindMeasurement) {
		t.Errorf("MQTT 5 properties: %+v", p.Properties)
	}
	select {
	case m3 := <-v3msgs:
		if m3.Topic() != p.Topic || string(m3.Payload()) != string(msg.Payload) {
			t.Errorf("MQTT 3.1.1: %s %s", m3.Topic(), m3.Payload())
		}
		if err := event.ValidateJSON(event.KindMeasurement, m3.Payload()); err != nil {
			t.Error(err)
		}
	case <-time.After(wait):
		t.Fatal("MQTT 3.1.1 subscriber got nothing")
	}
	late := dialV5(t, addr, &paho.Connect{ClientID: "late", CleanStart: true})
	if _, err := late.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "vineyard/+/device/soil-probe-01/measurement", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if r := late.expect(t); !r.Retain || userProp(r, "id") != userProp(p, "id") {
		t.Errorf("late subscriber: retain %v id %q", r.Retain, userProp(r, "id"))
	}
}
