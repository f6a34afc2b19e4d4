package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citymesh/citymesh/bus"
)

// Defaults of RunnerOptions.
const (
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultStableAfter = time.Minute
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	// Dial returns a new bus client for one run of the service called
	// name; the Runner closes it when the run ends. In citymesh serve it
	// is bus.NewLocal(broker, "svc-"+name); in citymesh run a
	// bus.DialRemote. Required.
	Dial func(ctx context.Context, name string) (bus.Bus, error)
	// Store holds the services' states, each in the namespace of its
	// name. Required.
	Store *Store
	// Logger receives the runner's and the services' logs (default
	// slog.Default()).
	Logger *slog.Logger
	// Now is the services' clock (default time.Now).
	Now func() time.Time
	// MinBackoff and MaxBackoff bound the wait before a failed service is
	// started again: it doubles from MinBackoff with each failure in a
	// row, up to MaxBackoff (defaults 1 s and 1 min). A run that lasted
	// StableAfter (default 1 min) resets it.
	MinBackoff, MaxBackoff, StableAfter time.Duration
}

// Runner runs services, each in a goroutine it owns, restarts those that
// fail, and reports their health. Add the services, then call Run once.
type Runner struct {
	o RunnerOptions

	mu struct {
		sync.Mutex
		entries []*entry
		running bool
	}
}

// entry is one service of a Runner.
type entry struct {
	s Service
	h *reporter
}

// NewRunner returns a Runner with options o.
func NewRunner(o RunnerOptions) (*Runner, error) {
	if o.Dial == nil || o.Store == nil {
		return nil, errors.New("service: runner needs Dial and Store")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.StableAfter <= 0 {
		o.StableAfter = DefaultStableAfter
	}
	return &Runner{o: o}, nil
}

// Add adds s to the services that Run runs. Names must be ids and unique;
// services cannot be added once Run was called.
func (r *Runner) Add(s Service) error {
	if err := CheckName(s.Name()); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.running {
		return fmt.Errorf("service %s: the runner is running already", s.Name())
	}
	for _, e := range r.mu.entries {
		if e.s.Name() == s.Name() {
			return fmt.Errorf("service %s: added twice", s.Name())
		}
	}
	r.mu.entries = append(r.mu.entries, &entry{s: s, h: newReporter(s.Name())})
	return nil
}

// Run runs every service until ctx ends, and returns once all of them have
// returned. It returns an error only when called twice.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.mu.running {
		r.mu.Unlock()
		return errors.New("service: runner started twice")
	}
	r.mu.running = true
	entries := r.mu.entries
	r.mu.Unlock()

	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Go(func() { r.supervise(ctx, e) })
	}
	wg.Wait()
	return nil
}

// supervise runs e until ctx ends, starting it again after each failure.
func (r *Runner) supervise(ctx context.Context, e *entry) {
	log := r.o.Logger.With("service", e.s.Name())
	backoff := r.o.MinBackoff
	for {
		start := time.Now()
		e.h.set(StatusStarting, "")
		err := r.runOnce(ctx, e, log)
		if ctx.Err() != nil {
			e.h.set(StatusStopped, "")
			return
		}
		if err == nil {
			log.Info("service stopped")
			e.h.set(StatusStopped, "")
			return
		}
		e.h.error(err, r.o.Now())
		if time.Since(start) >= r.o.StableAfter {
			backoff = r.o.MinBackoff
		}
		retry := time.Now().Add(backoff)
		log.Error("service failed", "err", err, "retry_in", backoff)
		e.h.set(StatusFailed, err.Error())
		e.h.mu.Lock()
		e.h.mu.retryAt = retry
		e.h.mu.Unlock()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			e.h.set(StatusStopped, "")
			return
		case <-t.C:
		}
		backoff = min(2*backoff, r.o.MaxBackoff)
		e.h.restarts.Add(1)
	}
}

// runOnce gives e a new bus client and runs it once; a panic is returned as
// an error.
func (r *Runner) runOnce(ctx context.Context, e *entry, log *slog.Logger) (err error) {
	b, err := r.o.Dial(ctx, e.s.Name())
	if err != nil {
		return fmt.Errorf("dial bus: %w", err)
	}
	env := &Env{
		Bus:    &countingBus{Bus: b, h: e.h, now: r.o.Now},
		Log:    log,
		State:  r.o.Store.State(e.s.Name()),
		Now:    r.o.Now,
		health: e.h,
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
		if cerr := b.Close(); cerr != nil && err == nil && ctx.Err() == nil {
			log.Warn("closing the service's bus", "err", cerr)
		}
	}()
	return e.s.Run(ctx, env)
}

// Health returns the health of every service, in the order they were added.
func (r *Runner) Health() []Health {
	r.mu.Lock()
	entries := r.mu.entries
	r.mu.Unlock()
	out := make([]Health, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.h.snapshot())
	}
	return out
}

// ServiceList is the body of GET /api/v1/services.
type ServiceList struct {
	Services []Health `json:"services"`
}

// Handler returns the HTTP handler of GET /api/v1/services: the health of
// every service as a ServiceList in JSON. Its status is 200 when every
// service is starting, running or stopped, 503 when one is degraded or
// failed (so a load balancer or a probe can tell).
func (r *Runner) Handler() http.Handler {
	m := NewMux()
	m.HandleFunc("GET "+APIPrefix+"services", func(w http.ResponseWriter, req *http.Request) {
		list := ServiceList{Services: r.Health()}
		code := http.StatusOK
		for _, h := range list.Services {
			if h.Status == StatusDegraded || h.Status == StatusFailed {
				code = http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(list)
	})
	m.HandleFunc(APIPrefix+"services", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		WriteProblem(w, req, http.StatusMethodNotAllowed, req.Method+" is not allowed here: GET, HEAD")
	})
	return m
}

// The runner's metrics, labelled by service.
var (
	descEventsIn = prometheus.NewDesc("citymesh_service_events_received_total",
		"Messages delivered to the service's subscriptions, duplicates included.", []string{"service"}, nil)
	descPublished = prometheus.NewDesc("citymesh_service_messages_published_total",
		"Messages the service published.", []string{"service"}, nil)
	descErrors = prometheus.NewDesc("citymesh_service_errors_total",
		"Errors the service reported or failed with.", []string{"service"}, nil)
	descRestarts = prometheus.NewDesc("citymesh_service_restarts_total",
		"Times the service was started again after a failure.", []string{"service"}, nil)
	descUp = prometheus.NewDesc("citymesh_service_status",
		"1 for the service's current status (starting, running, degraded, failed, stopped), 0 for the others.",
		[]string{"service", "status"}, nil)
	descLastEvent = prometheus.NewDesc("citymesh_service_last_event_timestamp_seconds",
		"When the service last received a message (Unix time); absent before the first.", []string{"service"}, nil)
)

// Collector returns a Prometheus collector of the runner's metrics.
func (r *Runner) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Runner }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEventsIn, descPublished, descErrors, descRestarts, descUp, descLastEvent} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.r.Health() {
		ch <- prometheus.MustNewConstMetric(descEventsIn, prometheus.CounterValue, float64(h.EventsIn), h.Name)
		ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(h.Published), h.Name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(h.Errors), h.Name)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(h.Restarts), h.Name)
		for _, s := range []Status{StatusStarting, StatusRunning, StatusDegraded, StatusFailed, StatusStopped} {
			v := 0.0
			if h.Status == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, v, h.Name, string(s))
		}
		if !h.LastEvent.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastEvent, prometheus.GaugeValue, float64(h.LastEvent.UnixNano())/1e9, h.Name)
		}
	}
}
