package service

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/bus"
)

// Status is a service's state as its health tells it.
type Status string

// The statuses of a service.
const (
	// StatusStarting: Run was called (or is about to be, after a
	// back-off) and the service has not yet reported Running.
	StatusStarting Status = "starting"
	// StatusRunning: the service reported Running.
	StatusRunning Status = "running"
	// StatusDegraded: the service runs but reported a problem (Reason).
	StatusDegraded Status = "degraded"
	// StatusFailed: Run returned an error; the Runner restarts it after
	// the back-off (Reason has the error, RetryAt the time).
	StatusFailed Status = "failed"
	// StatusStopped: Run returned without an error.
	StatusStopped Status = "stopped"
)

// Health is a snapshot of one service's health, as /api/v1/services gives it.
type Health struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason says why the service is degraded or failed.
	Reason string `json:"reason,omitempty"`
	// Since is when the status last changed.
	Since time.Time `json:"since"`
	// LastEvent is when the service last received an event; zero: never.
	LastEvent time.Time `json:"lastEvent,omitzero"`
	// EventsIn counts the messages delivered to the service's
	// subscriptions, Published the messages it published, Errors the
	// errors it reported or returned, Restarts how often it was started
	// again after a failure.
	EventsIn  uint64 `json:"eventsIn"`
	Published uint64 `json:"published"`
	Errors    uint64 `json:"errors"`
	Restarts  uint64 `json:"restarts"`
	// LastError is the last error reported, and LastErrorAt when.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// RetryAt is when a failed service is started again.
	RetryAt time.Time `json:"retryAt,omitzero"`
}

// reporter keeps one service's health; it outlives the service's runs.
type reporter struct {
	name                                  string
	eventsIn, published, errors, restarts atomic.Uint64
	lastEvent                             atomic.Int64 // unix nanoseconds, 0 for never

	mu struct {
		sync.Mutex
		status      Status
		reason      string
		since       time.Time
		lastError   string
		lastErrorAt time.Time
		retryAt     time.Time
	}
}

func newReporter(name string) *reporter {
	r := &reporter{name: name}
	r.mu.status = StatusStarting
	r.mu.since = time.Now()
	return r
}

func (r *reporter) set(s Status, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.status != s || r.mu.reason != reason {
		r.mu.since = time.Now()
	}
	r.mu.status, r.mu.reason = s, reason
	if s != StatusFailed {
		r.mu.retryAt = time.Time{}
	}
}

func (r *reporter) error(err error, at time.Time) {
	r.errors.Add(1)
	r.mu.Lock()
	r.mu.lastError, r.mu.lastErrorAt = err.Error(), at
	r.mu.Unlock()
}

func (r *reporter) snapshot() Health {
	h := Health{
		Name: r.name, EventsIn: r.eventsIn.Load(), Published: r.published.Load(),
		Errors: r.errors.Load(), Restarts: r.restarts.Load(),
	}
	if ns := r.lastEvent.Load(); ns != 0 {
		h.LastEvent = time.Unix(0, ns).UTC()
	}
	r.mu.Lock()
	h.Status, h.Reason, h.Since = r.mu.status, r.mu.reason, r.mu.since
	h.LastError, h.LastErrorAt, h.RetryAt = r.mu.lastError, r.mu.lastErrorAt, r.mu.retryAt
	r.mu.Unlock()
	return h
}

// countingBus counts what a service receives and publishes.
type countingBus struct {
	bus.Bus
	h   *reporter
	now func() time.Time
}

func (c *countingBus) Publish(ctx context.Context, m bus.Message) error {
	if err := c.Bus.Publish(ctx, m); err != nil {
		return err
	}
	c.h.published.Add(1)
	return nil
}

func (c *countingBus) Subscribe(ctx context.Context, filter string, qos byte, h bus.Handler) error {
	return c.Bus.Subscribe(ctx, filter, qos, func(ctx context.Context, m bus.Message) {
		c.h.eventsIn.Add(1)
		c.h.lastEvent.Store(c.now().UnixNano())
		h(ctx, m)
	})
}
