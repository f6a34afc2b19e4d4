// Package service is the runtime of citymesh's services: the energy,
// vineyard and robot models, and any other program that turns events on the
// bus into derived events. A service implements Service; a Runner runs
// several of them in one process (citymesh serve) or one alone (citymesh
// run NAME), gives each its Env — a bus client of its own, a logger, a
// durable State, a clock and a health report — restarts one that fails with
// back-off, and reports their health over HTTP and as Prometheus metrics.
//
// What the bus really delivers is not what a model wants: QoS 1 delivers
// some events twice, a mesh link drains an hour of backlog at once, events
// arrive out of order, a service restarts in the middle of a billing period.
// Dedup, Latest and Debouncer are the helpers that make a service correct
// under that; their state lives in the service's State, so a restart does
// not apply an event twice.
package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/citymesh/citymesh/bus"
)

// Service is one service run by a Runner.
type Service interface {
	// Name is the service's name: its namespace in the state, its bus
	// client's identifier, its label in metrics and health. An id: 1 to 64
	// ASCII letters, digits, '.', '_' and '-'.
	Name() string
	// Run runs the service until ctx ends, with env. It returns nil when
	// ctx ended (or when the service has nothing more to do), an error
	// when it failed: the Runner then starts it again, after a back-off,
	// with a new Env on the same State. Every goroutine Run starts ends
	// before Run returns.
	Run(ctx context.Context, env *Env) error
}

// Env is what a Runner gives a running service.
type Env struct {
	// Bus is the service's own bus client, for this run only: closed (and
	// its subscriptions ended) when Run returns. The Runner counts the
	// events it delivers and the messages published through it.
	Bus bus.Bus
	// Log is the service's logger, with the attribute service=NAME.
	Log *slog.Logger
	// State is the service's durable state, which survives restarts of the
	// service and of the process.
	State State
	// Now is the clock: time.Now, or a simulation's.
	Now func() time.Time

	health *reporter
}

// Running reports that the service is running normally: it has recovered
// its state and subscribed. Until it calls Running a service is starting.
func (e *Env) Running() { e.health.set(StatusRunning, "") }

// Degraded reports that the service runs but not fully: reason says what is
// wrong (a model's input missing, a publish failing). Running ends it.
func (e *Env) Degraded(reason string) { e.health.set(StatusDegraded, reason) }

// Error counts an error the service handled without stopping (an event that
// does not parse, a publish that failed) and keeps it as the last error.
func (e *Env) Error(err error) {
	if err != nil {
		e.health.error(err, e.Now())
	}
}

// Health returns the service's current health.
func (e *Env) Health() Health { return e.health.snapshot() }

// NewTestEnv returns an Env outside a Runner, for tests of a service: over
// b, with state st, clock now (time.Now when nil) and a discarding logger.
func NewTestEnv(name string, b bus.Bus, st State, now func() time.Time) *Env {
	if now == nil {
		now = time.Now
	}
	h := newReporter(name)
	return &Env{Bus: &countingBus{Bus: b, h: h, now: now}, Log: slog.New(slog.DiscardHandler), State: st, Now: now, health: h}
}
