package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/service"
)

// counterConfig is the toy service's configuration.
type counterConfig struct {
	// Filter is what it counts; Out where it publishes the count.
	Filter string `yaml:"filter"`
	Out    string `yaml:"out"`
}

func (c *counterConfig) Check() error {
	if c.Filter == "" || c.Out == "" {
		return errors.New("filter and out are required")
	}
	return nil
}

// counter is a toy service: it counts the distinct events on a filter (an
// event is its payload "key@unix-seconds"), keeps the count in its state,
// publishes it retained, and fails when it receives "fail".
type counter struct {
	name string
	c    counterConfig
	runs chan int // receives the run number at each start
	n    int
}

func (s *counter) Name() string { return s.name }

func (s *counter) Run(ctx context.Context, env *service.Env) error {
	s.n++
	if s.runs != nil {
		s.runs <- s.n
	}
	dd, err := service.NewDedup(env.State.Sub("dedup"), time.Hour)
	if err != nil {
		return err
	}
	count := 0
	if v, ok, err := env.State.Get("count"); err != nil {
		return err
	} else if ok {
		count, _ = strconv.Atoi(string(v))
	}
	failed := make(chan error, 1)
	events := make(chan bus.Message, 64)
	err = env.Bus.Subscribe(ctx, s.c.Filter, 1, func(_ context.Context, m bus.Message) {
		select {
		case events <- m:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return err
	}
	env.Running()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return err
		case m := <-events:
			p := string(m.Payload)
			if p == "fail" {
				return errors.New("told to fail")
			}
			key, sec, ok := strings.Cut(p, "@")
			ts, err := strconv.ParseInt(sec, 10, 64)
			if !ok || err != nil {
				env.Error(fmt.Errorf("bad event %q", p))
				continue
			}
			v, err := dd.Apply(key, time.Unix(ts, 0), func(b *service.Batch) error {
				b.Set(env.State, "count", []byte(strconv.Itoa(count+1)))
				return nil
			})
			if err != nil {
				return err
			}
			if v != service.New {
				continue
			}
			count++
			if err := env.Bus.Publish(ctx, bus.Message{Topic: s.c.Out, Payload: []byte(strconv.Itoa(count)), QoS: 1, Retain: true}); err != nil {
				env.Error(err)
			}
		}
	}
}

var registerOnce sync.Once

func registerCounter() {
	registerOnce.Do(func() {
		service.Register("counter", "counts distinct events (a test service)", func(name string, c counterConfig) (service.Service, error) {
			return &counter{name: name, c: c}, nil
		})
	})
}

func TestBuild(t *testing.T) {
	registerCounter()
	cases := []struct {
		name, kind, yaml string
		wantErr          string
	}{
		{"ok", "counter", "filter: a/#\nout: b", ""},
		{"unknown key", "counter", "filter: a/#\nout: b\nfiltre: x", "unknown key filtre at line 3"},
		{"check fails", "counter", "filter: a/#", "filter and out are required"},
		{"empty section", "counter", "", "filter and out are required"},
		{"unknown kind", "nope", "", "unknown kind of service"},
		{"bad name", "counter", "filter: a\nout: b", "service name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(c.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			var sec *yaml.Node
			if len(doc.Content) > 0 {
				sec = doc.Content[0]
			}
			name := "c1"
			if c.name == "bad name" {
				name = "-bad/name"
			}
			s, err := service.Build(c.kind, name, sec)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Build = %v, want an error with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Name() != "c1" || s.(*counter).c.Filter != "a/#" {
				t.Fatalf("built %+v", s)
			}
		})
	}
	if !errors.Is(func() error { _, err := service.Build("nope", "x", nil); return err }(), service.ErrUnknownKind) {
		t.Error("unknown kind is not ErrUnknownKind")
	}
}

func TestBuildAllFromNodeConfig(t *testing.T) {
	registerCounter()
	const cfg = `
services:
  meters:
    kind: counter
    config:
      filter: energy/+/meter/+/reading
      out: counts/meters
  counter:
    config: {filter: "x/#", out: counts/x}
`
	var doc struct {
		Services map[string]service.Section `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		t.Fatal(err)
	}
	svcs, err := service.BuildAll(doc.Services)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 || svcs[0].Name() != "counter" || svcs[1].Name() != "meters" || svcs[1].(*counter).c.Out != "counts/meters" {
		t.Fatalf("built %v", svcs)
	}
}

// startBroker runs a broker on a loopback port for the test.
func startBroker(t *testing.T) (*broker.Broker, string) {
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
	return b, "mqtt://" + ln.Addr().String()
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunnerRestartsAndKeepsState(t *testing.T) {
	b, url := startBroker(t)
	st := service.NewMemoryStore()
	r, err := service.NewRunner(service.RunnerOptions{
		Dial:       func(_ context.Context, name string) (bus.Bus, error) { return bus.NewLocal(b, "svc-"+name) },
		Store:      st,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runs := make(chan int, 10)
	svc := &counter{name: "count", c: counterConfig{Filter: "in/#", Out: "out/count"}, runs: runs}
	if err := r.Add(svc); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(&counter{name: "count"}); err == nil {
		t.Fatal("a second service of the same name was added")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- r.Run(ctx) }()

	// An independent client publishes the events, duplicates included, and
	// watches the retained count.
	pub, err := bus.DialRemote(context.Background(), bus.RemoteOptions{URL: url, ClientID: "test-pub"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	counts := make(chan string, 100)
	if err := pub.Subscribe(context.Background(), "out/count", 1, func(_ context.Context, m bus.Message) { counts <- string(m.Payload) }); err != nil {
		t.Fatal(err)
	}
	wantCount := func(want string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case c := <-counts:
				if c == want {
					return
				}
			case <-deadline:
				t.Fatalf("count %s not published within 5 s", want)
			}
		}
	}
	send := func(p string) {
		if err := pub.Publish(context.Background(), bus.Message{Topic: "in/x", Payload: []byte(p), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	<-runs
	waitFor(t, "running", func() bool { return r.Health()[0].Status == service.StatusRunning })
	send("a@1")
	send("a@1") // a QoS 1 redelivery
	send("a@2")
	wantCount("2")

	send("fail")
	if n := <-runs; n != 2 {
		t.Fatalf("run %d, want 2", n)
	}
	waitFor(t, "running again", func() bool { return r.Health()[0].Status == service.StatusRunning })
	h := r.Health()[0]
	if h.Restarts != 1 || h.Errors != 1 || !strings.Contains(h.LastError, "told to fail") {
		t.Fatalf("health after a failure: %+v", h)
	}
	// The restarted service has its state: a@2 again is a duplicate.
	send("a@2")
	send("b@1")
	send("garbage")
	wantCount("3")
	waitFor(t, "the bad event counted", func() bool { return r.Health()[0].Errors == 2 })

	h = r.Health()[0]
	if h.EventsIn < 3 || h.Published < 1 || h.LastEvent.IsZero() {
		t.Errorf("counters: %+v", h)
	}

	// The HTTP handler and the metrics.
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/services", nil))
	var list service.ServiceList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 {
		t.Fatalf("GET: %d %s %v", rec.Code, rec.Body, err)
	}
	if len(list.Services) != 1 || list.Services[0].Name != "count" || list.Services[0].Status != service.StatusRunning || list.Services[0].Restarts != 1 {
		t.Errorf("GET /api/v1/services = %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/services", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.Collector())
	want := `
# HELP citymesh_service_restarts_total Times the service was started again after a failure.
# TYPE citymesh_service_restarts_total counter
citymesh_service_restarts_total{service="count"} 1
# HELP citymesh_service_errors_total Errors the service reported or failed with.
# TYPE citymesh_service_errors_total counter
citymesh_service_errors_total{service="count"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "citymesh_service_restarts_total", "citymesh_service_errors_total"); err != nil {
		t.Error(err)
	}

	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of the end of its context")
	}
	if s := r.Health()[0].Status; s != service.StatusStopped {
		t.Errorf("status after Run: %s", s)
	}
}

// failing is a service that fails at once, always.
type failing struct{ runs chan struct{} }

func (failing) Name() string { return "failing" }
func (f failing) Run(ctx context.Context, env *service.Env) error {
	f.runs <- struct{}{}
	panic("model bug")
}

func TestRunnerBacksOffAndReportsFailure(t *testing.T) {
	b, _ := startBroker(t)
	r, err := service.NewRunner(service.RunnerOptions{
		Dial:       func(_ context.Context, name string) (bus.Bus, error) { return bus.NewLocal(b, "svc-"+name) },
		Store:      service.NewMemoryStore(),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: time.Hour, StableAfter: time.Hour,
		Logger: discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f := failing{runs: make(chan struct{}, 100)}
	r.Add(f)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.Run(ctx); close(ran) }()
	// Back-off doubles: 10, 20, 40, 80 ms... four runs take at least 70 ms.
	start := time.Now()
	for range 4 {
		select {
		case <-f.runs:
		case <-time.After(5 * time.Second):
			t.Fatal("not restarted within 5 s")
		}
	}
	if el := time.Since(start); el < 70*time.Millisecond {
		t.Errorf("four runs in %v: no back-off", el)
	}
	waitFor(t, "failed status", func() bool { return r.Health()[0].Status == service.StatusFailed })
	h := r.Health()[0]
	if !strings.Contains(h.Reason, "panic: model bug") || h.RetryAt.IsZero() {
		t.Errorf("health: %+v", h)
	}
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/services", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET with a failed service: %d", rec.Code)
	}
	cancel()
	<-ran
}

func TestRunnerDialFailureIsRetried(t *testing.T) {
	var mu sync.Mutex
	dials := 0
	r, _ := service.NewRunner(service.RunnerOptions{
		Dial: func(_ context.Context, name string) (bus.Bus, error) {
			mu.Lock()
			defer mu.Unlock()
			dials++
			return nil, errors.New("broker away")
		},
		Store:      service.NewMemoryStore(),
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Logger: discard(),
	})
	r.Add(&counter{name: "c"})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.Run(ctx); close(ran) }()
	waitFor(t, "three dials", func() bool { mu.Lock(); defer mu.Unlock(); return dials >= 3 })
	cancel()
	<-ran
	if h := r.Health()[0]; !strings.Contains(h.LastError, "broker away") {
		t.Errorf("health: %+v", h)
	}
	if _, err := service.NewRunner(service.RunnerOptions{}); err == nil {
		t.Error("a runner without Dial and Store was made")
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// degrading reports itself degraded, then stops on its own.
type degrading struct{ stop chan struct{} }

func (degrading) Name() string { return "degrading" }
func (d degrading) Run(ctx context.Context, env *service.Env) error {
	env.Running()
	env.Degraded("no weather for 2 h")
	select {
	case <-d.stop:
		return nil
	case <-ctx.Done():
		return nil
	}
}

func TestRunnerDegradedAndStoppedOnItsOwn(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	runs := 0
	var mu sync.Mutex
	r, _ := service.NewRunner(service.RunnerOptions{
		Dial: func(_ context.Context, name string) (bus.Bus, error) {
			mu.Lock()
			runs++
			mu.Unlock()
			return nopBus{}, nil
		},
		Store: service.NewMemoryStore(), MinBackoff: time.Millisecond, Logger: discard(),
	})
	d := degrading{stop: make(chan struct{})}
	r.Add(d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { r.Run(ctx); close(ran) }()
	waitFor(t, "degraded", func() bool { return r.Health()[0].Status == service.StatusDegraded })
	if h := r.Health()[0]; h.Reason != "no weather for 2 h" {
		t.Errorf("health %+v", h)
	}
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/services", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"reason":"no weather for 2 h"`) {
		t.Errorf("GET while degraded: %d %s", rec.Code, rec.Body)
	}
	close(d.stop)
	// A service that returns nil is stopped, not restarted, and Run
	// returns once every service has.
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its only service stopped")
	}
	if h := r.Health()[0]; h.Status != service.StatusStopped || h.Restarts != 0 || runs != 1 {
		t.Errorf("health %+v, %d runs", h, runs)
	}
}

// nopBus is a bus that carries nothing.
type nopBus struct{}

func (nopBus) Publish(context.Context, bus.Message) error                 { return nil }
func (nopBus) Subscribe(context.Context, string, byte, bus.Handler) error { return nil }
func (nopBus) Unsubscribe(context.Context, string) error                  { return nil }
func (nopBus) Close() error                                               { return nil }

// TestBuildFrom: a configuration value of the kind's type is taken as it
// is (a pointer too), nil is the zero configuration (checked), anything
// else goes through YAML, strictly.
func TestBuildFrom(t *testing.T) {
	registerCounter()
	cases := []struct {
		name    string
		config  any
		wantErr string
	}{
		{"value", counterConfig{Filter: "a/#", Out: "b"}, ""},
		{"pointer", &counterConfig{Filter: "a/#", Out: "b"}, ""},
		{"map", map[string]any{"filter": "a/#", "out": "b"}, ""},
		{"nil", nil, "filter and out are required"},
		{"map with an unknown key", map[string]any{"filter": "a/#", "out": "b", "outt": "c"}, "unknown key outt"},
		{"value failing its check", counterConfig{Filter: "a/#"}, "filter and out are required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := service.BuildFrom("counter", "c1", c.config)
			if c.wantErr != "" {
				var ce *service.ConfigError
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.As(err, &ce) {
					t.Fatalf("BuildFrom = %v, want a ConfigError with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.(*counter).c.Filter != "a/#" {
				t.Fatalf("built %+v", s)
			}
		})
	}
	if _, err := service.BuildFrom("nope", "c1", nil); !errors.Is(err, service.ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
}
