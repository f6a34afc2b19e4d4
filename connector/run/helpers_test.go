package run

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/mqtt"
)

var (
	smallCampus = filepath.Join("..", "..", "examples", "campus", "small", "campus.yaml")
	codecDir    = filepath.Join("..", "..", "examples", "campus", "codecs")
	quiet       = slog.New(slog.DiscardHandler)
)

// manualClock is a Clock that moves only when the test says so.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c    chan time.Time
	at   time.Time
	done bool
}

func newManualClock(t time.Time) *manualClock { return &manualClock{now: t} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: make(chan time.Time, 1), at: c.now.Add(d)}
	if d <= 0 {
		t.done = true
		t.c <- c.now
		return manualTimerRef{c, t}
	}
	c.timers = append(c.timers, t)
	return manualTimerRef{c, t}
}

// Advance moves the clock by d and fires the timers that came due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			t.c <- c.now
			continue
		}
		if !t.done {
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// pending returns how many timers wait.
func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type manualTimerRef struct {
	c *manualClock
	t *manualTimer
}

func (r manualTimerRef) C() <-chan time.Time { return r.t.c }

func (r manualTimerRef) Stop() bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	was := !r.t.done
	r.t.done = true
	return was
}

// recorder collects the events published on a bus.
type recorder struct {
	t  *testing.T
	mu sync.Mutex
	ms []bus.Message
	ch chan struct{}
}

func record(t *testing.T, b *broker.Broker, filter string) *recorder {
	t.Helper()
	l, err := bus.NewLocal(b, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rec := &recorder{t: t, ch: make(chan struct{}, 1)}
	if err := l.Subscribe(context.Background(), filter, 1, func(_ context.Context, m bus.Message) {
		rec.mu.Lock()
		rec.ms = append(rec.ms, m)
		rec.mu.Unlock()
		select {
		case rec.ch <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	return rec
}

// waitFor waits until cond holds of the messages so far, or fails.
func (r *recorder) waitFor(what string, cond func(ms []bus.Message) bool) []bus.Message {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ms := append([]bus.Message(nil), r.ms...)
		r.mu.Unlock()
		if cond(ms) {
			return ms
		}
		select {
		case <-r.ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s; have %d messages", what, len(ms))
		}
	}
}

// onTopic returns the messages on topic.
func onTopic(ms []bus.Message, topic string) []bus.Message {
	var out []bus.Message
	for _, m := range ms {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// read parses and validates an event message against its JSON schema.
func read(t *testing.T, m bus.Message) event.Event {
	t.Helper()
	_, e, err := event.ReadMessage(m)
	if err != nil {
		t.Fatalf("%s: %v\n%s", m.Topic, err, m.Payload)
	}
	if err := event.ValidateJSON(e.Kind(), m.Payload); err != nil {
		t.Fatalf("%s: schema: %v\n%s", m.Topic, err, m.Payload)
	}
	return e
}

// testRuntime is a runtime on an in-process broker, whose network
// servers are unreachable: tests hand it messages directly.
type testRuntime struct {
	*Runtime
	b     *broker.Broker
	clock *manualClock
}

func newTestRuntime(t *testing.T, mutate func(*Config)) *testRuntime {
	t.Helper()
	b := broker.New(broker.Options{SysInterval: -1, Logger: quiet})
	t.Cleanup(func() { b.Close() })
	l, err := bus.NewLocal(b, "citymesh-connectors")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := Config{
		Campus: smallCampus, Codecs: codecDir,
		TTS:          []TTSConfig{{Application: "wartberg-ttn", URL: "tcp://127.0.0.1:1", APIKey: "NNSXS.TEST"}},
		ChirpStack:   []ChirpStackConfig{{Application: "soil-twin", URL: "tcp://127.0.0.1:1"}},
		ReconnectMin: time.Hour, Workers: 4,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	clock := newManualClock(time.Date(2026, 5, 12, 7, 0, 0, 0, time.UTC))
	r, err := New(cfg, Options{Logger: quiet, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx, l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); r.Close() })
	return &testRuntime{Runtime: r, b: b, clock: clock}
}

// deliver hands a message to the connector of application app as if its
// network server had sent it.
func (tr *testRuntime) deliver(t *testing.T, app, topic string, payload []byte) {
	t.Helper()
	for _, u := range tr.ups {
		if u.app.ID == app {
			u.onMessage(&mqtt.Publish{Topic: topic, Payload: payload})
			return
		}
	}
	t.Fatalf("no connector of application %s", app)
}

// device returns a campus device and its application.
func (tr *testRuntime) device(t *testing.T, id string) (*campus.Device, *campus.Application) {
	t.Helper()
	d, ok := tr.model.Device(id)
	if !ok {
		t.Fatalf("no device %s", id)
	}
	app, _ := tr.model.Application(d.Application)
	return d, app
}
