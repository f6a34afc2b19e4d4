package twin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin/history"
)

// Defaults of Options.
const (
	DefaultPublishEvery   = time.Second
	DefaultRecoverTimeout = 30 * time.Second
	// MaxPendingSamples bounds the samples held for a history sink that
	// fails; beyond it the oldest are dropped (and counted).
	MaxPendingSamples = 1 << 20
	// flushSamples is how many pending samples trigger a flush before the
	// next tick.
	flushSamples = 16384
)

// Options configure a Service.
type Options struct {
	// Model is the campus the twin keeps; Bus where its events are.
	// Both required.
	Model *campus.Model
	Bus   bus.Bus
	// Sink receives the numeric values as history samples; nil: none.
	Sink history.Sink
	// Prefix is the first level of the twin's topics (default "twin").
	Prefix string
	// PublishEvery is how often the assets that changed are published
	// retained under Prefix and the samples handed to Sink (default 1 s).
	PublishEvery time.Duration
	// RecoverTimeout bounds the wait for the retained twin messages at the
	// start (default 30 s).
	RecoverTimeout time.Duration
	// Now is the clock of received times and liveness (default
	// time.Now); a simulation gives its own.
	Now func() time.Time
	// Logger receives the service's logs (default slog.Default()).
	Logger *slog.Logger
	// TenantTopics also publishes the snapshot of each asset that has a
	// tenant in that tenant's namespace, $tenant/{tenant}/{Prefix}/...,
	// where the tenant's own MQTT clients read it as {Prefix}/...
	// (tenants.go).
	TenantTopics bool
}

// Service keeps a State from the city events on a bus: it recovers the
// state from the retained twin messages, subscribes to the city events,
// applies them, publishes each changed asset's Snapshot retained, and
// hands the numeric values to the history sink. Create it with NewService
// and run it with Run.
type Service struct {
	o     Options
	state *State
	log   *slog.Logger

	smu     sync.Mutex
	pending []history.Sample
	kick    chan struct{} // a flush is due before the tick

	// pubMu keeps a tenant's erasure apart from publishing.
	pubMu sync.Mutex

	ready    chan struct{}
	recovery atomic.Pointer[Recovery]
	started  atomic.Bool

	received, invalid, published, publishErrors, sunk, sinkErrors, dropped atomic.Uint64
}

// Recovery says what the service recovered at its start.
type Recovery struct {
	// Assets is how many retained twin messages were restored, Points
	// how many points then had a value, Duration how long it took
	// (subscribing to the end marker), Complete whether the end marker
	// arrived before RecoverTimeout.
	Assets, Points int
	Duration       time.Duration
	Complete       bool
}

// Stats are what the service did so far.
type Stats struct {
	Counts
	// Received counts city events received, Invalid those that were not
	// valid events.
	Received, Invalid uint64
	// Published counts retained twin messages published, PublishErrors
	// those that failed.
	Published, PublishErrors uint64
	// Sunk counts samples the sink took, SinkErrors its failed Appends,
	// Dropped samples dropped because the sink lagged too far.
	Sunk, SinkErrors, Dropped uint64
}

// NewService checks o and returns a service with an empty state.
func NewService(o Options) (*Service, error) {
	if o.Model == nil || o.Bus == nil {
		return nil, errors.New("twin: a campus model and a bus are required")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if err := event.ValidID(o.Prefix); err != nil {
		return nil, fmt.Errorf("twin: prefix: %w", err)
	}
	if o.PublishEvery <= 0 {
		o.PublishEvery = DefaultPublishEvery
	}
	if o.RecoverTimeout <= 0 {
		o.RecoverTimeout = DefaultRecoverTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{o: o, state: NewState(o.Model), log: o.Logger, kick: make(chan struct{}, 1), ready: make(chan struct{})}, nil
}

// State returns the service's state.
func (s *Service) State() *State { return s.state }

// Now returns the service's clock's time.
func (s *Service) Now() time.Time { return s.o.Now() }

// Ready is closed once the state is recovered and the service subscribed
// to the city events.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Recovered returns what the start recovered, nil before Ready.
func (s *Service) Recovered() *Recovery { return s.recovery.Load() }

// Stats returns what the service did so far.
func (s *Service) Stats() Stats {
	return Stats{Counts: s.state.Counts(), Received: s.received.Load(), Invalid: s.invalid.Load(),
		Published: s.published.Load(), PublishErrors: s.publishErrors.Load(),
		Sunk: s.sunk.Load(), SinkErrors: s.sinkErrors.Load(), Dropped: s.dropped.Load()}
}

// cityFilters are the city events the twin applies.
var cityFilters = []string{
	event.Filter("", "", "", "", event.EventMeasurement),
	event.Filter("", "", "", "", event.EventReading),
	event.Filter("", "", "", "", event.EventStatus),
	event.Filter("", "", "", "", event.EventPosition),
	event.Filter("", "", "", "", event.EventCheck),
	event.Filter("", "", "", "", event.EventUplink),
	event.Filter("", "", "", "", event.EventPicture),
}

// Run recovers the state, subscribes to the city events and keeps the
// state, publishing and handing samples on, until ctx ends; then it
// unsubscribes, publishes and hands on what is left, and returns nil. It
// runs in its caller's goroutine and starts none. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("twin: Run called twice")
	}
	if err := s.recover(ctx); err != nil {
		return err
	}
	var subscribed []string
	defer func() {
		for _, f := range subscribed {
			s.o.Bus.Unsubscribe(context.WithoutCancel(ctx), f)
		}
	}()
	for _, f := range cityFilters {
		if err := s.o.Bus.Subscribe(ctx, f, event.QoS, s.handle); err != nil {
			return fmt.Errorf("twin: subscribe %s: %w", f, err)
		}
		subscribed = append(subscribed, f)
	}
	close(s.ready)
	t := time.NewTicker(s.o.PublishEvery)
	defer t.Stop()
	var dirty []int32
	for {
		select {
		case <-ctx.Done():
			for _, f := range subscribed {
				s.o.Bus.Unsubscribe(context.WithoutCancel(ctx), f)
			}
			subscribed = nil
			// What arrived last is published and handed on, within a
			// bound.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.publish(fctx, dirty[:0])
			s.flush(fctx)
			cancel()
			return nil
		case <-t.C:
			dirty = s.publish(ctx, dirty[:0])
			s.flush(ctx)
		case <-s.kick:
			s.flush(ctx)
		}
	}
}

// recover restores the state from the retained twin messages: it
// subscribes to them, publishes an end marker (not retained) on a topic
// the same subscription matches, and waits until the marker arrives after
// the retained messages, or RecoverTimeout.
func (s *Service) recover(ctx context.Context) error {
	start := time.Now()
	var nonce [8]byte
	rand.Read(nonce[:])
	marker := s.o.Prefix + "/_recovery/_/" + hex.EncodeToString(nonce[:])
	filter := s.o.Prefix + "/+/+/+"
	done := make(chan struct{})
	var once sync.Once
	var assets, failed int
	var mu sync.Mutex
	err := s.o.Bus.Subscribe(ctx, filter, event.QoS, func(_ context.Context, m bus.Message) {
		if m.Topic == marker {
			once.Do(func() { close(done) })
			return
		}
		if !m.Retain || strings.Contains(m.Topic, "/_") {
			return
		}
		err := s.state.Restore(m.Payload)
		mu.Lock()
		if err != nil && !errors.Is(err, ErrUnknownPoint) {
			failed++
		} else {
			assets++
		}
		mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("twin: recover: subscribe %s: %w", filter, err)
	}
	complete := false
	if err := s.o.Bus.Publish(ctx, bus.Message{Topic: marker, QoS: event.QoS}); err != nil {
		s.log.Warn("twin: recover: end marker not published; waiting for the timeout", "err", err)
	}
	t := time.NewTimer(s.o.RecoverTimeout)
	select {
	case <-done:
		complete = true
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	if err := s.o.Bus.Unsubscribe(context.WithoutCancel(ctx), filter); err != nil {
		s.log.Warn("twin: recover: unsubscribe", "err", err)
	}
	mu.Lock()
	rec := &Recovery{Assets: assets, Duration: time.Since(start), Complete: complete}
	mu.Unlock()
	for i := range s.state.points {
		s.state.mu.RLock()
		if s.state.points[i].set {
			rec.Points++
		}
		s.state.mu.RUnlock()
	}
	s.recovery.Store(rec)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.log.Info("twin: state recovered", "assets", rec.Assets, "points", rec.Points, "failed", failed,
		"duration", rec.Duration.Round(time.Millisecond), "complete", complete)
	return nil
}

// handle applies one city event.
func (s *Service) handle(_ context.Context, m bus.Message) {
	s.received.Add(1)
	t, e, err := event.ReadMessage(m)
	if err != nil {
		s.invalid.Add(1)
		s.log.Debug("twin: not a valid city event", "topic", m.Topic, "err", err)
		return
	}
	if s.o.Sink == nil {
		_, err = s.state.Apply(t, e, s.o.Now(), nil)
	} else {
		s.smu.Lock()
		s.pending, err = s.state.Apply(t, e, s.o.Now(), s.pending)
		if over := len(s.pending) - MaxPendingSamples; over > 0 {
			s.pending = append(s.pending[:0], s.pending[over:]...)
			s.dropped.Add(uint64(over))
		}
		due := len(s.pending) >= flushSamples
		s.smu.Unlock()
		if due {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
	if err != nil {
		s.log.Debug("twin: event refused in part", "topic", m.Topic, "err", err)
	}
}

// publishInFlight bounds the snapshots published at once. Each waits for
// the broker's acknowledgement, which with a disk store waits for its sync:
// one after the other that is one sync per snapshot (about 250 a second),
// while those in flight together share one.
const publishInFlight = 64

// publish publishes the retained snapshots of the assets that changed, up to
// publishInFlight at once, using dirty as scratch, and returns it. When ctx
// ends first, the assets not published are marked changed again, for the
// last publication as Run stops.
func (s *Service) publish(ctx context.Context, dirty []int32) []int32 {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	dirty = s.state.takeDirty(dirty)
	now := s.o.Now()
	srcs := make(map[*event.Source][]byte)
	sem := make(chan struct{}, publishInFlight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var again []int32 // not published because ctx ended
	for k, i := range dirty {
		topic, payload, err := s.state.snapshotJSON(s.o.Prefix, i, now, srcs)
		if err != nil {
			s.publishErrors.Add(1)
			s.log.Warn("twin: snapshot", "topic", topic, "err", err)
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			mu.Lock()
			again = append(again, dirty[k:]...)
			mu.Unlock()
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			err := s.o.Bus.Publish(ctx, bus.Message{Topic: topic, Payload: payload, QoS: event.QoS, Retain: true, ContentType: event.ContentType})
			if err != nil {
				if ctx.Err() != nil {
					mu.Lock()
					again = append(again, i)
					mu.Unlock()
					return
				}
				s.publishErrors.Add(1)
				s.log.Warn("twin: publish", "topic", topic, "err", err)
				return
			}
			s.published.Add(1)
			if s.o.TenantTopics {
				s.publishTenantCopy(ctx, i, topic, payload)
			}
		})
	}
	wg.Wait()
	s.state.markDirty(again)
	return dirty
}

// flush hands the pending samples to the sink; on failure they stay
// pending for the next flush.
func (s *Service) flush(ctx context.Context) {
	if s.o.Sink == nil {
		return
	}
	s.smu.Lock()
	batch := s.pending
	s.pending = nil
	s.smu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := s.o.Sink.Append(ctx, batch); err != nil {
		if ctx.Err() == nil {
			// (When ctx ended, Run hands them on once more as it stops.)
			s.sinkErrors.Add(1)
			s.log.Warn("twin: history sink", "samples", len(batch), "err", err)
		}
		s.smu.Lock()
		s.pending = append(batch, s.pending...)
		s.smu.Unlock()
		return
	}
	s.sunk.Add(uint64(len(batch)))
}
