package alarm_test

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
)

// co2 is a small service of the kind the domain services are: it raises
// the alarm co2-high of a room while its CO₂ is above a limit, and clears
// it when the CO₂ falls back.
type co2 struct{ limit float64 }

func (co2) Name() string { return "air" }

func (s co2) Run(ctx context.Context, env *service.Env) error {
	m, err := alarm.NewManager(alarm.Options{Bus: env.Bus, State: env.State.Sub("alarm"), Originator: "air",
		Types: []string{"co2-high"}, Logger: env.Log, Now: env.Now})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { m.Run(ctx) })
	select {
	case <-m.Ready():
	case <-ctx.Done():
		return nil
	}
	err = env.Bus.Subscribe(ctx, event.Filter(event.DomainBuilding, "", event.AssetRoom, "", event.EventMeasurement), 1,
		func(ctx context.Context, msg bus.Message) {
			t, e, err := event.ReadMessage(msg)
			if err != nil {
				env.Error(err)
				return
			}
			meas := e.(*event.Measurement)
			key := alarm.Key{Site: t.Site, Kind: string(t.Kind), Asset: t.Asset, Type: "co2-high"}
			for _, v := range meas.Values {
				if v.Unit != event.PartsPerMillion {
					continue
				}
				if v.Value > s.limit {
					_, _, err = m.Raise(ctx, alarm.Condition{Key: key, Severity: alarm.Major, Category: "health", SubCategory: "airPollution",
						Description: "CO₂ above the limit", Data: map[string]float64{"co2": v.Value, "limit": s.limit}, Time: meas.Time})
				} else {
					_, _, err = m.Clear(ctx, key, meas.Time, "CO₂ back below the limit")
				}
				if err != nil {
					env.Error(err)
				}
			}
		})
	if err != nil {
		return err
	}
	env.Running()
	<-ctx.Done()
	return nil
}

func startBroker(t *testing.T) string {
	t.Helper()
	b := broker.New(broker.Options{SysInterval: -1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); b.Close(); <-done })
	return ln.Addr().String()
}

// startRunner runs the co2 service as its own process would: over the
// remote bus, with its state in dir. It returns a function that stops it.
func startRunner(t *testing.T, addr, dir string) (stop func()) {
	t.Helper()
	st, err := service.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := service.NewRunner(service.RunnerOptions{
		Store: st,
		Dial: func(ctx context.Context, name string) (bus.Bus, error) {
			return bus.DialRemote(ctx, bus.RemoteOptions{URL: "mqtt://" + addr, ClientID: "svc-" + name})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Add(co2{limit: 1000})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for r.Health()[0].Status != service.StatusRunning {
		if time.Now().After(deadline) {
			t.Fatalf("service not running within 10 s: %+v", r.Health())
		}
		time.Sleep(5 * time.Millisecond)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			st.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// observer is an independent MQTT 5 client (Eclipse Paho) that records
// what it receives on the alarm topics.
type observer struct {
	c    *paho.Client
	msgs chan *paho.Publish
}

func newObserver(t *testing.T, addr, id string, filters ...string) *observer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{msgs: make(chan *paho.Publish, 100)}
	o.c = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) { o.msgs <- pr.Packet; return true, nil },
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ack, err := o.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v %+v", err, ack)
	}
	t.Cleanup(func() { o.c.Disconnect(&paho.Disconnect{}) })
	for _, f := range filters {
		if _, err := o.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: f, QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// next returns the next message on topic that satisfies ok, within 10 s.
func (o *observer) next(t *testing.T, topic string, ok func(p *paho.Publish) bool) *paho.Publish {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-o.msgs:
			if p.Topic == topic && ok(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("no such message on %s within 10 s", topic)
		}
	}
}

// quiet reports the messages on topic that arrive within d.
func (o *observer) quiet(topic string, d time.Duration) []*paho.Publish {
	var got []*paho.Publish
	deadline := time.After(d)
	for {
		select {
		case p := <-o.msgs:
			if p.Topic == topic {
				got = append(got, p)
			}
		case <-deadline:
			return got
		}
	}
}

func decode(t *testing.T, p *paho.Publish) alarm.Alarm {
	t.Helper()
	if err := alarm.ValidateJSON(p.Payload); err != nil {
		t.Errorf("published alarm: %v", err)
	}
	var a alarm.Alarm
	if err := json.Unmarshal(p.Payload, &a); err != nil {
		t.Fatalf("alarm payload %q: %v", p.Payload, err)
	}
	return a
}

func TestAlarmLifecycleOverABroker(t *testing.T) {
	addr := startBroker(t)
	dir := t.TempDir()
	stop := startRunner(t, addr, dir)
	const room = "b03-2.14"
	alarmTopic := "alarm/campus/room/" + room + "/co2-high"
	watch := newObserver(t, addr, "operator-console", "alarm/+/+/+/+")

	// A building gateway (an MQTT 3.1.1 client) publishes each
	// measurement twice, as a QoS 1 redelivery does, from two connections
	// at once.
	t0 := time.Date(2026, 5, 12, 9, 0, 0, 0, time.UTC)
	measure := func(at time.Time, ppm float64) []byte {
		msg, err := event.NewMessage(event.NewTopic(event.DomainBuilding, "campus", event.AssetRoom, room, event.EventMeasurement),
			event.NewMeasurement(room, at, event.Source{Type: event.SourceBuilding, Gateway: "bms-b03"},
				event.Value{Point: room + "/co2", Value: ppm, Unit: event.PartsPerMillion}))
		if err != nil {
			t.Fatal(err)
		}
		return msg.Payload
	}
	topic := "building/campus/room/" + room + "/measurement"
	var gws []pahov3.Client
	for _, id := range []string{"bms-b03-a", "bms-b03-b"} {
		c := pahov3.NewClient(pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("gateway connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		gws = append(gws, c)
	}
	publishTwice := func(payload []byte) {
		var wg sync.WaitGroup
		for _, c := range gws {
			wg.Go(func() {
				if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Errorf("publish: %v", tok.Error())
				}
			})
		}
		wg.Wait()
	}
	publishTwice(measure(t0, 1400))
	publishTwice(measure(t0.Add(time.Millisecond), 1500)) // a millisecond later

	a := decode(t, watch.next(t, alarmTopic, func(p *paho.Publish) bool {
		return len(p.Payload) > 0 && decode(t, p).Count == 2
	}))
	if a.ID != "alarm:campus:room:b03-2.14:co2-high:1" || a.Status != alarm.Active || a.Acknowledged || a.Severity != alarm.Major ||
		a.Asset != room || a.Originator != "air" || !a.ValidFrom.Equal(t0) || a.Category != "health" {
		t.Fatalf("alarm %+v", a)
	}
	// Four deliveries of two events: one alarm, counted twice, and no
	// second alarm on any topic.
	late := newObserver(t, addr, "late", "alarm/+/+/+/+")
	if got := late.quiet(alarmTopic, 300*time.Millisecond); len(got) != 1 || !got[0].Retain || decode(t, got[0]).Count != 2 {
		t.Fatalf("a new subscriber got %d retained alarms, want 1 with count 2", len(got))
	}

	// An operator acknowledges over MQTT 5 request/response.
	op := newObserver(t, addr, "anna", "replies/anna")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 { // twice: a redelivered command changes nothing more
		_, err := op.c.Publish(ctx, &paho.Publish{Topic: alarmTopic + "/ack", QoS: 1, Payload: []byte(`{"by":"anna","comment":"window opened"}`),
			Properties: &paho.PublishProperties{ResponseTopic: "replies/anna", CorrelationData: []byte("req-1")}})
		if err != nil {
			t.Fatal(err)
		}
	}
	var replies []alarm.Reply
	for range 2 {
		p := op.next(t, "replies/anna", func(*paho.Publish) bool { return true })
		if string(p.Properties.CorrelationData) != "req-1" {
			t.Errorf("reply correlation data %q", p.Properties.CorrelationData)
		}
		var r alarm.Reply
		json.Unmarshal(p.Payload, &r)
		replies = append(replies, r)
	}
	if !replies[0].OK || replies[0].Result != alarm.Acknowledged || replies[1].Result != alarm.Unchanged {
		t.Errorf("replies %+v", replies)
	}
	a = decode(t, watch.next(t, alarmTopic, func(p *paho.Publish) bool { return len(p.Payload) > 0 && decode(t, p).Acknowledged }))
	if a.AcknowledgedBy != "anna" || a.Status != alarm.Active || len(a.Audit) != 2 || a.Audit[1].Comment != "window opened" {
		t.Errorf("acknowledged alarm %+v", a)
	}

	// Mosquitto's client, a third independent one (MQTT 3.1.1), finds the
	// acknowledged alarm retained.
	if _, err := exec.LookPath("mosquitto_sub"); err == nil {
		host, port, _ := net.SplitHostPort(addr)
		out, err := exec.CommandContext(ctx, "mosquitto_sub", "-h", host, "-p", port, "-t", "alarm/+/+/+/+",
			"-C", "1", "-W", "5", "-F", "%r %t %p").Output()
		if err != nil {
			t.Fatalf("mosquitto_sub: %v", err)
		}
		retain, rest, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		tp, payload, _ := strings.Cut(rest, " ")
		var got alarm.Alarm
		if err := json.Unmarshal([]byte(payload), &got); err != nil || retain != "1" || tp != alarmTopic || !got.Acknowledged || got.Count != 2 {
			t.Errorf("mosquitto_sub read %q (%v)", out, err)
		}
	} else {
		t.Log("mosquitto_sub not installed (apt-get install mosquitto-clients; .ci/run installs it): its check skipped")
	}

	// A bad command is answered, not applied.
	op.c.Publish(ctx, &paho.Publish{Topic: alarmTopic + "/ack", QoS: 1, Payload: []byte(`{"comment":"who am I"}`),
		Properties: &paho.PublishProperties{ResponseTopic: "replies/anna", CorrelationData: []byte("req-2")}})
	var bad alarm.Reply
	json.Unmarshal(op.next(t, "replies/anna", func(*paho.Publish) bool { return true }).Payload, &bad)
	if bad.OK || bad.Error == "" {
		t.Errorf("reply to a command without by: %+v", bad)
	}

	// The service restarts (its process stops and starts again on the same
	// state); then the room's CO₂ falls: the alarm is cleared, and since
	// it was acknowledged, closed: its retained message is removed.
	stop()
	startRunner(t, addr, dir)
	publishTwice(measure(t0.Add(time.Minute), 600))
	watch.next(t, alarmTopic, func(p *paho.Publish) bool { return len(p.Payload) == 0 })
	after := newObserver(t, addr, "after", "alarm/+/+/+/+")
	if got := after.quiet(alarmTopic, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("retained alarm after close: %q", got[0].Payload)
	}

	// A late copy of the first measurement does not open a new alarm.
	publishTwice(measure(t0, 1400))
	if got := watch.quiet(alarmTopic, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("a stale raise published %q", got[0].Payload)
	}
}

// TestConcurrentRaisesOverABroker: three gateways publish the same 30
// measurements, a millisecond apart, all at once, to a service on the
// remote bus; every alarm message any client sees is the one alarm, and it
// ends counted 30 times.
func TestConcurrentRaisesOverABroker(t *testing.T) {
	addr := startBroker(t)
	startRunner(t, addr, t.TempDir())
	watch := newObserver(t, addr, "console", "alarm/#")
	const room, events = "b01-0.01", 30
	alarmTopic := "alarm/campus/room/" + room + "/co2-high"
	t0 := time.Date(2026, 5, 12, 9, 0, 0, 0, time.UTC)
	var payloads [][]byte
	for i := range events {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		msg, err := event.NewMessage(event.NewTopic(event.DomainBuilding, "campus", event.AssetRoom, room, event.EventMeasurement),
			event.NewMeasurement(room, at, event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"},
				event.Value{Point: room + "/co2", Value: 1200 + float64(i), Unit: event.PartsPerMillion}))
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, msg.Payload)
	}
	var wg sync.WaitGroup
	for g := range 3 {
		c := pahov3.NewClient(pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("gw-" + strconv.Itoa(g)))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("gateway connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		wg.Go(func() {
			for _, p := range payloads {
				if tok := c.Publish("building/campus/room/"+room+"/measurement", 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Errorf("publish: %v", tok.Error())
				}
			}
		})
	}
	wg.Wait()
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case p := <-watch.msgs:
			if p.Topic != alarmTopic {
				t.Fatalf("a message on %s", p.Topic)
			}
			a := decode(t, p)
			if a.ID != "alarm:campus:room:b01-0.01:co2-high:1" || a.Count > events {
				t.Fatalf("alarm %s counted %d", a.ID, a.Count)
			}
			done = a.Count == events
		case <-deadline:
			t.Fatalf("no alarm counted %d within 10 s", events)
		}
	}
	late := newObserver(t, addr, "late", "alarm/#")
	if got := late.quiet(alarmTopic, 300*time.Millisecond); len(got) != 1 {
		t.Fatalf("%d retained alarms, want 1", len(got))
	}
}
