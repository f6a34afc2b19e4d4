package alarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/service"
)

// memBus is a bus that keeps the retained messages, for the Manager's unit
// tests (the tests over a broker are in broker_test.go).
type memBus struct {
	mu       sync.Mutex
	retained map[string][]byte
	pubs     int
	last     bus.Message
	fail     bool
}

func newMemBus() *memBus { return &memBus{retained: map[string][]byte{}} }

func (b *memBus) Publish(_ context.Context, m bus.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail {
		return errors.New("broker away")
	}
	b.pubs++
	b.last = m
	if m.Retain {
		if len(m.Payload) == 0 {
			delete(b.retained, m.Topic)
		} else {
			b.retained[m.Topic] = m.Payload
		}
	}
	return nil
}
func (b *memBus) Subscribe(context.Context, string, byte, bus.Handler) error { return nil }
func (b *memBus) Unsubscribe(context.Context, string) error                  { return nil }
func (b *memBus) Close() error                                               { return nil }

func (b *memBus) get(topic string) (Alarm, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.retained[topic]
	var a Alarm
	if ok {
		json.Unmarshal(p, &a)
	}
	return a, ok
}

var (
	t0  = time.Date(2026, 5, 12, 7, 0, 0, 0, time.UTC)
	key = Key{Site: "campus", Kind: "meter", Asset: "el-b01-main", Type: "consumption-spike"}
)

func newManager(t *testing.T, st service.State, b bus.Bus) *Manager {
	t.Helper()
	m, err := NewManager(Options{Bus: b, State: st, Originator: "energy", Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// step is one call in a lifecycle test.
type step struct {
	op       string // raise, clear, ack, clearby, restart
	min      int    // event time of raise and clear: t0 + min minutes
	severity Severity
	by       string
	want     Result
	// wantStatus and wantAck describe the open alarm after the step;
	// wantStatus "" means none is open.
	wantStatus Status
	wantAck    bool
	wantCount  int
	wantSeq    int // the open alarm's number (its id's last part)
}

func TestLifecycle(t *testing.T) {
	cases := []struct {
		name      string
		steps     []step
		wantHist  int
		wantAudit []Action // of the last open alarm, or the last closed one
	}{
		{"raise, update, clear by the service, acknowledge closes", []step{
			{op: "raise", min: 0, severity: Major, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 1},
			{op: "raise", min: 1, severity: Critical, want: Updated, wantStatus: Active, wantCount: 2, wantSeq: 1},
			{op: "clear", min: 2, want: ClearedNow, wantStatus: Cleared, wantCount: 2, wantSeq: 1},
			{op: "ack", by: "anna", want: Acknowledged},
		}, 1, []Action{ActionRaised, ActionSeverity, ActionCleared, ActionAcknowledged, ActionClosed}},
		{"acknowledge first, then clear closes", []step{
			{op: "raise", min: 0, severity: Minor, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 1},
			{op: "ack", by: "anna", want: Acknowledged, wantStatus: Active, wantAck: true, wantCount: 1, wantSeq: 1},
			{op: "ack", by: "ben", want: Unchanged, wantStatus: Active, wantAck: true, wantCount: 1, wantSeq: 1},
			{op: "clear", min: 3, want: ClearedNow},
		}, 1, []Action{ActionRaised, ActionAcknowledged, ActionCleared, ActionClosed}},
		{"QoS 1 duplicate raise counts once", []step{
			{op: "raise", min: 0, severity: Major, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 1},
			{op: "raise", min: 0, severity: Major, want: Duplicate, wantStatus: Active, wantCount: 1, wantSeq: 1},
			{op: "raise", min: 1, severity: Major, want: Updated, wantStatus: Active, wantCount: 2, wantSeq: 1},
		}, 0, []Action{ActionRaised}},
		{"reordered: a clear before its raise", []step{
			{op: "clear", min: 5, want: Unchanged},
			{op: "raise", min: 4, severity: Major, want: Stale},
			{op: "raise", min: 6, severity: Major, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 1},
		}, 0, []Action{ActionRaised}},
		{"reordered: a clear older than a raise", []step{
			{op: "raise", min: 0, severity: Major, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 1},
			{op: "raise", min: 10, severity: Major, want: Updated, wantStatus: Active, wantCount: 2, wantSeq: 1},
			{op: "clear", min: 5, want: Stale, wantStatus: Active, wantCount: 2, wantSeq: 1},
			{op: "raise", min: 3, severity: Minor, want: Updated, wantStatus: Active, wantCount: 3, wantSeq: 1},
		}, 0, []Action{ActionRaised}},
		{"raise after a clear not acknowledged replaces it", []step{
			{op: "raise", min: 0, severity: Major, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 1},
			{op: "clear", min: 1, want: ClearedNow, wantStatus: Cleared, wantCount: 1, wantSeq: 1},
			{op: "clear", min: 1, want: Duplicate, wantStatus: Cleared, wantCount: 1, wantSeq: 1},
			{op: "raise", min: 2, severity: Major, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 2},
		}, 1, []Action{ActionRaised}},
		{"a person clears; older raises are stale, newer open a new alarm", []step{
			{op: "raise", min: 0, severity: Warning, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 1},
			{op: "clearby", by: "anna", want: ClearedNow, wantStatus: Cleared, wantCount: 1, wantSeq: 1},
			{op: "clearby", by: "anna", want: Unchanged, wantStatus: Cleared, wantCount: 1, wantSeq: 1},
			{op: "raise", min: 30, severity: Warning, want: Stale, wantStatus: Cleared, wantCount: 1, wantSeq: 1},
			{op: "ack", by: "anna", want: Acknowledged},
			{op: "raise", min: 61, severity: Warning, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 2},
		}, 1, []Action{ActionRaised}},
		{"restart keeps the alarm and what was applied", []step{
			{op: "raise", min: 0, severity: Major, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 1},
			{op: "ack", by: "anna", want: Acknowledged, wantStatus: Active, wantAck: true, wantCount: 1, wantSeq: 1},
			{op: "restart"},
			{op: "raise", min: 0, severity: Major, want: Duplicate, wantStatus: Active, wantAck: true, wantCount: 1, wantSeq: 1},
			{op: "raise", min: 1, severity: Major, want: Updated, wantStatus: Active, wantAck: true, wantCount: 2, wantSeq: 1},
			{op: "clear", min: 2, want: ClearedNow},
			{op: "restart"},
			{op: "raise", min: 1, severity: Major, want: Stale},
			{op: "raise", min: 3, severity: Major, want: Opened, wantStatus: Active, wantCount: 1, wantSeq: 2},
		}, 1, []Action{ActionRaised}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			store := service.NewMemoryStore()
			b := newMemBus()
			m := newManager(t, store.State("energy").Sub("alarm"), b)
			var last Alarm
			for i, s := range c.steps {
				var res Result
				var err error
				at := t0.Add(time.Duration(s.min) * time.Minute)
				switch s.op {
				case "raise":
					last, res, err = m.Raise(ctx, Condition{Key: key, Severity: s.severity, Time: at, Description: "spike", Data: map[string]float64{"kW": 412}})
				case "clear":
					last, res, err = m.Clear(ctx, key, at, "")
				case "ack":
					last, res, err = m.Acknowledge(ctx, key, s.by, "seen")
				case "clearby":
					last, res, err = m.ClearBy(ctx, key, s.by, "fixed")
				case "restart":
					m = newManager(t, store.State("energy").Sub("alarm"), b)
					continue
				}
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.op, err)
				}
				if res != s.want {
					t.Errorf("step %d (%s@%d): %s, want %s", i, s.op, s.min, res, s.want)
				}
				a, ok := m.Get(key)
				if ok != (s.wantStatus != "") {
					t.Fatalf("step %d: open alarm %v, want status %q", i, ok, s.wantStatus)
				}
				if ok && (a.Status != s.wantStatus || a.Acknowledged != s.wantAck || a.Count != s.wantCount || a.ID != fmt.Sprintf("alarm:campus:meter:el-b01-main:consumption-spike:%d", s.wantSeq)) {
					t.Errorf("step %d: alarm %s status %s ack %v count %d; want %s %v %d seq %d", i, a.ID, a.Status, a.Acknowledged, a.Count, s.wantStatus, s.wantAck, s.wantCount, s.wantSeq)
				}
			}
			hist, err := m.History(time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != c.wantHist {
				t.Errorf("history has %d alarms, want %d", len(hist), c.wantHist)
			}
			if a, ok := m.Get(key); ok {
				last = a
			}
			var actions []Action
			for _, e := range last.Audit {
				actions = append(actions, e.Action)
			}
			if fmt.Sprint(actions) != fmt.Sprint(c.wantAudit) {
				t.Errorf("audit %v, want %v", actions, c.wantAudit)
			}
			if len(m.Open()) > 1 {
				t.Errorf("%d open alarms for one key", len(m.Open()))
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, service.NewMemoryStore().State("x"), newMemBus())
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"bad severity", func() error { _, _, err := m.Raise(ctx, Condition{Key: key, Severity: "high"}); return err }, ErrInvalid},
		{"type is an event name", func() error {
			k := key
			k.Type = "measurement"
			_, _, err := m.Raise(ctx, Condition{Key: k, Severity: Major})
			return err
		}, ErrInvalid},
		{"wildcard in the source", func() error {
			k := key
			k.Asset = "+"
			_, _, err := m.Raise(ctx, Condition{Key: k, Severity: Major})
			return err
		}, ErrInvalid},
		{"data not an object", func() error { _, _, err := m.Raise(ctx, Condition{Key: key, Severity: Major, Data: 3}); return err }, ErrInvalid},
		{"ack without who", func() error { _, _, err := m.Acknowledge(ctx, key, "", ""); return err }, ErrInvalid},
		{"ack of nothing", func() error { _, _, err := m.Acknowledge(ctx, key, "anna", ""); return err }, ErrNotFound},
		{"clear of nothing", func() error { _, _, err := m.ClearBy(ctx, key, "anna", ""); return err }, ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := NewManager(Options{}); err == nil {
		t.Error("a manager without options was made")
	}
}

// TestConcurrentRaisesMakeOneAlarm is ThingsBoard's most reported alarm
// bug: events a millisecond apart, each raising the same alarm at once.
func TestConcurrentRaisesMakeOneAlarm(t *testing.T) {
	for _, backend := range []string{"memory", "pebble"} {
		t.Run(backend, func(t *testing.T) {
			store := service.NewMemoryStore()
			if backend == "pebble" {
				var err error
				if store, err = service.OpenStore(t.TempDir()); err != nil {
					t.Fatal(err)
				}
				defer store.Close()
			}
			m := newManager(t, store.State("energy").Sub("alarm"), newMemBus())
			const events, copies = 50, 3 // each event delivered three times
			var wg sync.WaitGroup
			start := make(chan struct{})
			results := make(chan Result, events*copies)
			for i := range events * copies {
				wg.Go(func() {
					<-start
					at := t0.Add(time.Duration(i%events) * time.Millisecond)
					_, res, err := m.Raise(context.Background(), Condition{Key: key, Severity: Major, Time: at})
					if err != nil {
						t.Error(err)
					}
					results <- res
				})
			}
			close(start)
			wg.Wait()
			close(results)
			n := map[Result]int{}
			for r := range results {
				n[r]++
			}
			if n[Opened] != 1 || n[Updated] != events-1 || n[Duplicate] != events*(copies-1) {
				t.Errorf("results %v; want 1 opened, %d updated, %d duplicates", n, events-1, events*(copies-1))
			}
			open := m.Open()
			if len(open) != 1 || open[0].Count != events || open[0].ID != "alarm:campus:meter:el-b01-main:consumption-spike:1" {
				t.Fatalf("open alarms %+v", open)
			}
			if !open[0].ValidFrom.Equal(t0) || !open[0].LastRaised.Equal(t0.Add((events-1)*time.Millisecond)) {
				t.Errorf("validFrom %v lastRaised %v", open[0].ValidFrom, open[0].LastRaised)
			}
		})
	}
}

func TestRetainedFollowsStateAndPrune(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := service.NewMemoryStore()
	b := newMemBus()
	now := t0.Add(time.Hour)
	m, err := NewManager(Options{Bus: b, State: store.State("e"), Originator: "energy", Logger: slog.New(slog.DiscardHandler),
		Retention: 24 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	b.mu.Lock()
	b.fail = true // the broker is away: the publish is retried
	b.mu.Unlock()
	go func() { done <- m.Run(ctx) }()
	topic := key.Topic("alarm")
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 5 s: %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	m.Raise(ctx, Condition{Key: key, Severity: Major, Time: t0})
	b.mu.Lock()
	b.fail = false
	b.mu.Unlock()
	wait("retained alarm", func() bool { a, ok := b.get(topic); return ok && a.Status == Active })
	m.Clear(ctx, key, t0.Add(time.Minute), "")
	wait("retained cleared", func() bool { a, _ := b.get(topic); return a.Status == Cleared })
	m.Acknowledge(ctx, key, "anna", "")
	wait("retained removed", func() bool { _, ok := b.get(topic); return !ok })
	if _, ok, _ := store.State("e").Get(keyGone + key.String()); ok {
		t.Error("pending removal still in the state after the removal was published")
	}
	if h, _ := m.History(time.Time{}); len(h) != 1 || !h[0].Closed() {
		t.Fatalf("history %+v", h)
	}
	now = now.Add(25 * time.Hour)
	if n, err := m.Prune(); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if h, _ := m.History(time.Time{}); len(h) != 0 {
		t.Fatalf("history after prune %+v", h)
	}
	cancel()
	<-done
}

func TestCommands(t *testing.T) {
	ctx := context.Background()
	b := newMemBus()
	m := newManager(t, service.NewMemoryStore().State("x"), b)
	m.Raise(ctx, Condition{Key: key, Severity: Major, Time: t0})
	topic := key.Topic("alarm")
	cases := []struct {
		name    string
		msg     bus.Message
		wantAck bool
		wantErr string // in the reply; "" for a reply that is OK
	}{
		{"retained command is ignored", bus.Message{Topic: topic + "/ack", Retain: true, Payload: []byte(`{"by":"anna"}`), ResponseTopic: "r"}, false, "-"},
		{"unknown verb", bus.Message{Topic: topic + "/delete", Payload: []byte(`{"by":"anna"}`), ResponseTopic: "r"}, false, "unknown command"},
		{"bad key", bus.Message{Topic: "alarm/campus/meter/x/measurement/ack", Payload: []byte(`{"by":"anna"}`), ResponseTopic: "r"}, false, "city event name"},
		{"bad body", bus.Message{Topic: topic + "/ack", Payload: []byte(`{"by":`), ResponseTopic: "r"}, false, "command body"},
		{"unknown field", bus.Message{Topic: topic + "/ack", Payload: []byte(`{"who":"anna"}`), ResponseTopic: "r"}, false, "unknown field"},
		{"no one", bus.Message{Topic: topic + "/ack", Payload: []byte(`{}`), ResponseTopic: "r"}, false, "required"},
		{"no such alarm", bus.Message{Topic: "alarm/campus/meter/el-2/consumption-spike/ack", Payload: []byte(`{"by":"anna"}`), ResponseTopic: "r"}, false, "no open alarm"},
		{"ack", bus.Message{Topic: topic + "/ack", Payload: []byte(`{"by":"anna"}`), ResponseTopic: "r"}, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b.mu.Lock()
			before := b.pubs
			b.mu.Unlock()
			m.command(ctx, c.msg)
			if a, _ := m.Get(key); a.Acknowledged != c.wantAck {
				t.Errorf("acknowledged %v, want %v", a.Acknowledged, c.wantAck)
			}
			b.mu.Lock()
			replied := b.pubs > before
			b.mu.Unlock()
			if c.wantErr == "-" {
				if replied {
					t.Error("a reply to an ignored command")
				}
				return
			}
			if !replied {
				t.Fatal("no reply")
			}
			b.mu.Lock()
			var r Reply
			json.Unmarshal(b.last.Payload, &r)
			b.mu.Unlock()
			if r.OK != (c.wantErr == "") || !strings.Contains(r.Error, c.wantErr) {
				t.Errorf("reply %+v, want error %q", r, c.wantErr)
			}
		})
	}
}
