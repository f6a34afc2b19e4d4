package live

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// testBroker starts an in-process broker listening on a TCP port of the
// loopback interface.
func testBroker(t testing.TB) (*broker.Broker, string) {
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
	return b, ln.Addr().String()
}

func testConfig(t testing.TB) Config {
	t.Helper()
	c := Config{Robots: []RobotConfig{{ID: "loomi", Site: "campus", Route: routeFile}},
		Owners: map[string]string{"b01-escape-route": "swhn"}}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	return c
}

// svcRun is the service running over a broker's in-process bus.
type svcRun struct {
	s      *Service
	cancel context.CancelFunc
	done   chan error
	bus    *bus.Local
	mu     sync.Mutex
	marks  map[string]bool // markers handled
}

// startService runs the service on b with state st and clock now, and
// waits until it runs.
func startService(t testing.TB, b *broker.Broker, st service.State, cfg Config, now func() time.Time) *svcRun {
	t.Helper()
	s, err := New("robot", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := bus.NewLocal(b, "svc-robot")
	if err != nil {
		t.Fatal(err)
	}
	r := &svcRun{s: s, done: make(chan error, 1), bus: lb, marks: map[string]bool{}}
	s.processed = func(topic string) {
		if m, ok := strings.CutPrefix(topic, "robot/campus/incident/marker-"); ok {
			r.mu.Lock()
			r.marks[strings.TrimSuffix(m, "/state")] = true
			r.mu.Unlock()
		}
	}
	env := service.NewTestEnv("robot", lb, st, now)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- s.Run(ctx, env) }()
	waitFor(t, 10*time.Second, "the service running", func() bool { return s.cur.Load() != nil })
	t.Cleanup(r.stop)
	return r
}

func (r *svcRun) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.bus.Close()
	r.cancel = nil
}

// waitFor polls cond until it holds or d passed.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// publishAll publishes msgs in order from one in-process client, waiting
// out full queues.
func publishAll(t testing.TB, b *bus.Local, msgs []sim.Recorded) {
	t.Helper()
	ctx := context.Background()
	for _, m := range msgs {
		bm := bus.Message{Topic: m.Topic, Payload: m.Payload, QoS: 1, Retain: m.Retain, ContentType: m.ContentType, Properties: m.Properties}
		for {
			err := b.Publish(ctx, bm)
			if err == nil {
				break
			}
			if !errors.Is(err, broker.ErrQuotaExceeded) {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// snapshot returns every incident as JSON, in order.
func snapshot(t testing.TB, s *Service) []string {
	t.Helper()
	r := s.cur.Load()
	var out []string
	for _, inc := range r.book.list(func(*Incident) bool { return true }) {
		b, err := json.Marshal(inc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// sync publishes a marker after what was published and waits until the
// service handled it: one publisher's messages reach the service in order,
// so everything before it was handled too.
func (r *svcRun) sync(t testing.TB, pub *bus.Local, name string) {
	t.Helper()
	if err := pub.Publish(context.Background(), bus.Message{Topic: "robot/campus/incident/marker-" + name + "/state", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "marker "+name, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.marks[name]
	})
}
