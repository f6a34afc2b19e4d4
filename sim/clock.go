package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Clock is the simulation's time: Now reads it, WaitUntil blocks until it
// reads at least t (or ctx is done).
type Clock interface {
	Now() time.Time
	WaitUntil(ctx context.Context, t time.Time) error
}

// ScaledClock runs simulated time Speed times as fast as wall time from a
// simulated start instant: speed 1 is real time, 60 an hour a minute. It is
// safe for concurrent use.
type ScaledClock struct {
	start  time.Time
	origin time.Time // wall clock at start, with its monotonic reading
	speed  float64
	wall   func() time.Time
}

// NewScaledClock returns a clock that reads start now and advances speed
// simulated seconds per wall second.
func NewScaledClock(start time.Time, speed float64) (*ScaledClock, error) {
	if !(speed > 0) || math.IsInf(speed, 0) {
		return nil, fmt.Errorf("clock: speed %v must be a positive finite number (use a VirtualClock to run as fast as possible)", speed)
	}
	return &ScaledClock{start: start, origin: time.Now(), speed: speed, wall: time.Now}, nil
}

// Speed returns the clock's speed.
func (c *ScaledClock) Speed() float64 { return c.speed }

// Now returns the simulated time.
func (c *ScaledClock) Now() time.Time {
	el := c.wall().Sub(c.origin)
	return c.start.Add(time.Duration(float64(el) * c.speed))
}

// WaitUntil sleeps until the simulated time reaches t.
func (c *ScaledClock) WaitUntil(ctx context.Context, t time.Time) error {
	for {
		d := t.Sub(c.Now())
		if d <= 0 {
			return ctx.Err()
		}
		wall := time.Duration(math.Ceil(float64(d) / c.speed))
		timer := time.NewTimer(wall)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// VirtualClock is simulated time that jumps to whatever is awaited: the
// simulation runs as fast as the machine computes it (to generate data
// sets or to replay a year in seconds). It is safe for concurrent use.
type VirtualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewVirtualClock returns a virtual clock reading start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the current simulated time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// WaitUntil moves the clock to t (if it is later) and returns at once.
func (c *VirtualClock) WaitUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return ctx.Err()
}

// ManualClock is a clock for tests: it moves only when told to (Set,
// Advance), and WaitUntil blocks until it has. It is safe for concurrent
// use.
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []manualWaiter
}

type manualWaiter struct {
	t  time.Time
	ch chan struct{}
}

// NewManualClock returns a manual clock reading start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (never backwards) and wakes the waiters whose
// time has come.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.t.After(c.now) {
			close(w.ch)
			continue
		}
		keep = append(keep, w)
	}
	c.waiters = keep
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Waiting returns the times the clock's waiters wait for, earliest first:
// a test advances the clock once the code under test waits.
func (c *ManualClock) Waiting() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, len(c.waiters))
	for i, w := range c.waiters {
		out[i] = w.t
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// WaitUntil blocks until the clock reads at least t or ctx is done.
func (c *ManualClock) WaitUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if !t.After(c.now) {
		c.mu.Unlock()
		return ctx.Err()
	}
	w := manualWaiter{t: t, ch: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	select {
	case <-w.ch:
		return ctx.Err()
	case <-ctx.Done():
		c.mu.Lock()
		for i, x := range c.waiters {
			if x.ch == w.ch {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Runner drives a Scheduler by a Clock: it hands every due emission to
// Emit in batches, in time order, and sleeps until the next one is due. It
// runs in the goroutine that calls Run and starts none.
type Runner struct {
	Clock     Clock
	Scheduler *Scheduler
	// Emit receives each batch; the slice is reused once Emit returns. An
	// error from Emit ends Run with it.
	Emit func(ctx context.Context, batch []Due) error
	// MaxBatch bounds a batch (default 4096).
	MaxBatch int
	// Until, when not zero, ends Run (returning nil) once every emission up
	// to and including Until has been handed out.
	Until time.Time
}

// Run emits until ctx is done (returning its error), Emit fails, or Until
// is reached.
func (r *Runner) Run(ctx context.Context) error {
	if r.Clock == nil || r.Scheduler == nil || r.Emit == nil {
		return errors.New("runner: clock, scheduler and emit are required")
	}
	maxB := r.MaxBatch
	if maxB <= 0 {
		maxB = 4096
	}
	var batch []Due
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := r.Clock.Now()
		if !r.Until.IsZero() && now.After(r.Until) {
			now = r.Until
		}
		batch = r.Scheduler.AppendDue(batch[:0], now, maxB)
		if len(batch) > 0 {
			if err := r.Emit(ctx, batch); err != nil {
				return err
			}
			continue
		}
		next, ok := r.Scheduler.Next()
		if !r.Until.IsZero() && (!ok || next.After(r.Until)) {
			return nil
		}
		if !ok {
			<-ctx.Done()
			return ctx.Err()
		}
		if err := r.Clock.WaitUntil(ctx, next); err != nil {
			return err
		}
	}
}
