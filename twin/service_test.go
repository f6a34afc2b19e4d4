package twin

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/sim"
	"github.com/citymesh/citymesh/twin/history"
)

// memorySink keeps the samples it takes.
type memorySink struct {
	mu      sync.Mutex
	samples []history.Sample
}

func (m *memorySink) Append(_ context.Context, s []history.Sample) error {
	m.mu.Lock()
	m.samples = append(m.samples, s...)
	m.mu.Unlock()
	return nil
}

func (m *memorySink) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.samples)
}

// runService runs a twin service on b until the returned stop is called.
func runService(t *testing.T, b *broker.Broker, sink history.Sink) (*Service, func()) {
	t.Helper()
	tb, err := bus.NewLocal(b, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewService(Options{Model: small(t), Bus: tb, Sink: sink, PublishEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("the twin was not ready within 10 s")
	}
	return s, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		tb.Close()
	}
}

// lastTruth returns, for each point the player published through the
// building and robot outputs, its last published record.
func lastTruth(truth *sim.MemoryTruth) map[string]sim.Truth {
	last := map[string]sim.Truth{}
	for _, r := range truth.Records() {
		if r.Published == 0 || (r.Output != "building" && r.Output != "robot") {
			continue
		}
		if prev, ok := last[r.Point]; ok && r.Time.Before(prev.Time) {
			continue
		}
		last[r.Point] = r
	}
	return last
}

// mismatches compares the state with the truth's last values.
func mismatches(s *State, last map[string]sim.Truth) []string {
	var out []string
	for id, r := range last {
		ps, ok := s.Point(id)
		switch {
		case !ok:
			out = append(out, id+": unknown")
		case r.Lat != nil:
			if ps.Position == nil || math.Abs(ps.Position[0]-*r.Lon) > 1e-9 || math.Abs(ps.Position[1]-*r.Lat) > 1e-9 {
				out = append(out, id+": position")
			}
		case r.Value != nil:
			if ps.Value == nil || math.Abs(*ps.Value-*r.Value) > max(r.Resolution/2, 1e-9) || !ps.Observed.Equal(r.Time) {
				out = append(out, id+": value")
			}
		case r.Observed != "":
			if ps.Text != r.Observed {
				out = append(out, id+": observed")
			}
		}
	}
	return out
}

// TestServiceSimulatedCampus feeds the twin the small campus simulated for
// three hours as fast as possible: its latest values are the simulator's
// last ones (the ground truth), the history sink got the numeric values,
// and a twin started again recovers the same state from the retained twin
// messages.
func TestServiceSimulatedCampus(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1})
	defer b.Close()
	sink := &memorySink{}
	svc, stop := runService(t, b, sink)

	sb, err := bus.NewLocal(b, "sim")
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	start := time.Date(2026, 5, 12, 6, 0, 0, 0, time.UTC)
	truth := &sim.MemoryTruth{}
	out := sim.NewBusOutput(sb)
	p, err := sim.NewPlayer(sim.PlayerConfig{Campus: small(t), Seed: 7, Start: start, Until: start.Add(3 * time.Hour),
		Clock: sim.NewVirtualClock(start), Outputs: sim.Outputs{Building: out, Robot: out}, Truth: truth})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := lastTruth(truth)
	if len(last) < 100 {
		t.Fatalf("the simulator published only %d points", len(last))
	}
	deadline := time.Now().Add(20 * time.Second)
	for bad := mismatches(svc.State(), last); len(bad) > 0; bad = mismatches(svc.State(), last) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d points differ from the simulator's last values, e.g. %v", len(bad), len(last), bad[:min(5, len(bad))])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := svc.Stats(); st.Invalid != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v: want no invalid or rejected events", st)
	}
	stop() // publishes the last snapshots and samples
	if sink.len() == 0 || svc.Stats().Sunk != uint64(sink.len()) {
		t.Errorf("sink has %d samples, stats say %d", sink.len(), svc.Stats().Sunk)
	}
	if svc.Stats().Published == 0 {
		t.Fatal("no twin message published")
	}

	// Restart: the state comes back from the retained twin messages.
	again, stop2 := runService(t, b, nil)
	defer stop2()
	rec := again.Recovered()
	if rec == nil || !rec.Complete || rec.Assets == 0 {
		t.Fatalf("recovery %+v", rec)
	}
	if bad := mismatches(again.State(), last); len(bad) > 0 {
		t.Fatalf("after a restart %d points differ, e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	for _, pt := range small(t).Points {
		a, _ := svc.State().Point(pt.ID)
		b, _ := again.State().Point(pt.ID)
		if (a.Value == nil) != (b.Value == nil) || (a.Value != nil && *a.Value != *b.Value) || !a.Observed.Equal(b.Observed) || a.Text != b.Text {
			t.Fatalf("point %s: before %+v, after the restart %+v", pt.ID, a, b)
		}
	}
}

var discard = slog.New(slog.DiscardHandler)
