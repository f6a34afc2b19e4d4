package twin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin/history"
)

// EventKinds are the city events a Recorder writes to the event log by
// default: every kind that is not a measurement (docs/events.md). A
// status, a check (a robot's observation, an anomaly when it found one),
// a picture's reference, an uplink's radio metadata, a position.
var EventKinds = []event.Kind{event.KindStatus, event.KindCheck, event.KindPicture, event.KindUplink, event.KindPosition}

// MaxPendingEvents bounds the events a Recorder holds for an event log that
// fails; beyond it the oldest are dropped (and counted).
const MaxPendingEvents = 1 << 18

// An EventAppender takes events in: a history.EventLog.
type EventAppender interface {
	Append(ctx context.Context, events []history.Event) error
}

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	// Model is the campus whose assets' events are kept (others are
	// counted as unknown), Bus where they are, Log where they go. All
	// required.
	Model *campus.Model
	Bus   bus.Bus
	Log   EventAppender
	// Kinds are the event kinds kept (default EventKinds).
	Kinds []event.Kind
	// FlushEvery is how often the events received are appended to Log
	// (default 1 s); Log's Append syncs to disk, so once per batch.
	FlushEvery time.Duration
	// Logger receives the recorder's logs (default slog.Default()).
	Logger *slog.Logger
}

// A Recorder writes the non-numeric city events from a bus to an event log:
// each with its asset, the asset's kind, site and tenant (from the campus
// model), its kind as Type, its time, its topic as Source and the event
// itself as Data. The history's retention per asset kind applies to them
// as to the samples (history.Options.KindRetention). Create it with
// NewRecorder and run it with Run.
type Recorder struct {
	o       RecorderOptions
	filters []string
	ready   chan struct{}
	started atomic.Bool

	mu      sync.Mutex
	pending []history.Event

	received, invalid, unknown, written, errs, dropped atomic.Uint64
}

// RecorderStats are what a Recorder did so far.
type RecorderStats struct {
	// Received counts the events received, Invalid those that were not
	// valid city events, Unknown those of assets the model does not have.
	Received, Invalid, Unknown uint64
	// Written counts the events the log took, Errors its failed Appends,
	// Dropped the events dropped because it failed too long.
	Written, Errors, Dropped uint64
}

// NewRecorder checks o and returns a recorder.
func NewRecorder(o RecorderOptions) (*Recorder, error) {
	if o.Model == nil || o.Bus == nil || o.Log == nil {
		return nil, errors.New("twin: recorder: a campus model, a bus and an event log are required")
	}
	if o.Kinds == nil {
		o.Kinds = EventKinds
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Recorder{o: o, ready: make(chan struct{})}
	for _, k := range o.Kinds {
		if k == event.KindMeasurement {
			return nil, errors.New("twin: recorder: measurements are numbers: they go to the history's samples")
		}
		if !slices.Contains(event.Kinds(), k) {
			return nil, fmt.Errorf("twin: recorder: unknown event kind %q", k)
		}
		// A kind's topic event name is the kind's name (docs/events.md).
		r.filters = append(r.filters, event.Filter("", "", "", "", string(k)))
	}
	return r, nil
}

// Ready is closed once the recorder is subscribed.
func (r *Recorder) Ready() <-chan struct{} { return r.ready }

// Stats returns what the recorder did so far.
func (r *Recorder) Stats() RecorderStats {
	return RecorderStats{Received: r.received.Load(), Invalid: r.invalid.Load(), Unknown: r.unknown.Load(),
		Written: r.written.Load(), Errors: r.errs.Load(), Dropped: r.dropped.Load()}
}

// Run subscribes to the events and appends them to the log every
// FlushEvery until ctx ends; then it unsubscribes, appends what is left
// (within 5 s) and returns nil. It runs in its caller's goroutine and
// starts none. Run may be called once.
func (r *Recorder) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("twin: recorder: Run called twice")
	}
	var subscribed []string
	unsubscribe := func() {
		for _, f := range subscribed {
			r.o.Bus.Unsubscribe(context.WithoutCancel(ctx), f)
		}
		subscribed = nil
	}
	defer unsubscribe()
	for _, f := range r.filters {
		if err := r.o.Bus.Subscribe(ctx, f, event.QoS, r.handle); err != nil {
			return fmt.Errorf("twin: recorder: subscribe %s: %w", f, err)
		}
		subscribed = append(subscribed, f)
	}
	close(r.ready)
	t := time.NewTicker(r.o.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			unsubscribe()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			r.Flush(fctx)
			cancel()
			return nil
		case <-t.C:
			r.Flush(ctx)
		}
	}
}

// handle keeps one event for the next flush.
func (r *Recorder) handle(_ context.Context, m bus.Message) {
	r.received.Add(1)
	t, e, err := event.ReadMessage(m)
	if err != nil {
		r.invalid.Add(1)
		return
	}
	h := e.Head()
	a, ok := r.o.Model.Asset(h.Asset)
	if !ok || h.Asset != t.Asset {
		r.unknown.Add(1)
		return
	}
	k, _ := t.EventKind()
	data, err := event.Encode(e)
	if err != nil {
		r.invalid.Add(1)
		return
	}
	ev := history.Event{Asset: a.ID, AssetKind: string(a.Kind), Site: a.Site, Tenant: a.Tenant,
		Type: string(k), Time: h.Time, Source: m.Topic, Data: data}
	r.mu.Lock()
	r.pending = append(r.pending, ev)
	if over := len(r.pending) - MaxPendingEvents; over > 0 {
		r.pending = append(r.pending[:0], r.pending[over:]...)
		r.dropped.Add(uint64(over))
	}
	r.mu.Unlock()
}

// Flush appends the events received so far to the log; on failure they
// stay for the next flush.
func (r *Recorder) Flush(ctx context.Context) {
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := r.o.Log.Append(ctx, batch); err != nil {
		r.errs.Add(1)
		if ctx.Err() == nil {
			r.o.Logger.Warn("twin: recorder: event log", "events", len(batch), "err", err)
		}
		r.mu.Lock()
		r.pending = append(batch, r.pending...)
		r.mu.Unlock()
		return
	}
	r.written.Add(uint64(len(batch)))
}
