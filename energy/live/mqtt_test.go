package live_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/service"
)

var clientSeq atomic.Int64

// observer is an independent MQTT 5 client (Eclipse Paho) that records
// what it receives.
type observer struct {
	c    *paho.Client
	msgs chan *paho.Publish
}

func newObserver(t testing.TB, addr string, filters ...string) *observer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{msgs: make(chan *paho.Publish, 10000)}
	o.c = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			select {
			case o.msgs <- pr.Packet:
			default:
			}
			return true, nil
		},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id := "observer-" + time.Now().Format("150405") + "-" + string(rune('a'+clientSeq.Add(1)%26))
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

// next returns the next message on topic that satisfies ok, within d.
func (o *observer) next(t testing.TB, topic string, d time.Duration, ok func(p *paho.Publish) bool) *paho.Publish {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-o.msgs:
			if p.Topic == topic && ok(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("no such message on %s within %v", topic, d)
		}
	}
}

// retained returns the retained message on topic, as a new subscriber
// receives it.
func retained(t testing.TB, addr, topic string) []byte {
	t.Helper()
	o := newObserver(t, addr, topic)
	return o.next(t, topic, 5*time.Second, func(p *paho.Publish) bool { return p.Retain }).Payload
}

// filterBus records the filters subscribed through it.
type filterBus struct {
	bus.Bus
	mu      sync.Mutex
	filters []string
}

func (f *filterBus) Subscribe(ctx context.Context, filter string, qos byte, h bus.Handler) error {
	f.mu.Lock()
	f.filters = append(f.filters, filter)
	f.mu.Unlock()
	return f.Bus.Subscribe(ctx, filter, qos, h)
}

// overlap reports whether some topic matches both filters a and b.
func overlap(a, b string) bool {
	x, y := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; ; i++ {
		switch {
		case i < len(x) && x[i] == "#", i < len(y) && y[i] == "#":
			return true
		case i == len(x) || i == len(y):
			return len(x) == len(y)
		case x[i] != "+" && y[i] != "+" && x[i] != y[i]:
			return false
		}
	}
}

// TestSubscriptionsDoNotOverlap: the service's filters on its one bus
// client (readings, gateway status, the alarm manager's commands) have no
// topic in common, so that none of its handlers misses a message that a
// bus delivers once for overlapping filters (bus.Bus).
func TestSubscriptionsDoNotOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{{"a/+/c", "a/b/+", true}, {"a/#", "a/b/c", true}, {"a/b", "a/b/c", false}, {"a/+", "b/+", false}, {"+/+/#", "x", false}} {
		if overlap(c.a, c.b) != c.want {
			t.Errorf("overlap(%s, %s) = %v", c.a, c.b, !c.want)
		}
	}
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	tf := loadTariff(t)
	b, _ := startBroker(t)
	bc, err := bus.NewLocal(b, "svc-energy-filters")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	fb := &filterBus{Bus: bc}
	svc, err := live.New("energy", live.Config{Model: m, Tariffs: &tf})
	if err != nil {
		t.Fatal(err)
	}
	env := service.NewTestEnv("energy", fb, service.NewMemoryStore().State("energy"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, env) }()
	for deadline := time.Now().Add(10 * time.Second); env.Health().Status != service.StatusRunning; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("service not running: %+v", env.Health())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.filters) < 5 {
		t.Fatalf("filters %v: want readings, gateway status and three alarm types' commands", fb.filters)
	}
	for i, a := range fb.filters {
		for _, b := range fb.filters[i+1:] {
			if overlap(a, b) {
				t.Errorf("filters %s and %s overlap", a, b)
			}
		}
	}
}
