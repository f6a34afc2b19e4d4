package robot

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// Every (from, to) pair of the lifecycle: allowed or refused.
func TestTransitionTableEveryPair(t *testing.T) {
	allowed := map[[2]State]bool{
		{StateNew, StateAcknowledged}:        true,
		{StateNew, StateInProgress}:          true,
		{StateNew, StateResolved}:            true,
		{StateNew, StateCancelled}:           true,
		{StateAcknowledged, StateInProgress}: true,
		{StateAcknowledged, StateResolved}:   true,
		{StateAcknowledged, StateCancelled}:  true,
		{StateInProgress, StateResolved}:     true,
		{StateInProgress, StateCancelled}:    true,
		{StateResolved, StateInProgress}:     true, // reopen
		{StateResolved, StateClosed}:         true,
	}
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	// path drives a fresh incident from new to the given state.
	path := map[State][]State{
		StateNew:          nil,
		StateAcknowledged: {StateAcknowledged},
		StateInProgress:   {StateInProgress},
		StateResolved:     {StateResolved},
		StateClosed:       {StateResolved, StateClosed},
		StateCancelled:    {StateCancelled},
	}
	n := 0
	for _, from := range States {
		for _, to := range States {
			n++
			want := allowed[[2]State{from, to}]
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			// The book enforces the same table.
			var b Book
			id, _, err := b.Record(Anomaly{Time: t0, Kind: AnomalyEscapeRouteBlocked, Severity: SeverityCritical, Asset: "door"})
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range path[from] {
				if err := b.Transition(id, s, t0.Add(time.Duration(i+1)*time.Minute), "alice", ""); err != nil {
					t.Fatalf("setting up %s: %v", from, err)
				}
			}
			err = b.Transition(id, to, t0.Add(time.Hour), "bob", "")
			if want && err != nil {
				t.Errorf("%s → %s refused: %v", from, to, err)
			}
			if !want {
				var te *TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != to {
					t.Errorf("%s → %s: error %v, want a TransitionError", from, to, err)
				} else if !strings.Contains(err.Error(), fmt.Sprintf("cannot go from %s to %s", from, to)) {
					t.Errorf("error message %q does not name the move", err)
				}
				inc, _ := b.Lookup(id)
				if inc.State != from || len(inc.Audit) != len(path[from])+1 {
					t.Errorf("refused move changed the incident: state %s, %d audit entries", inc.State, len(inc.Audit))
				}
			}
		}
	}
	if n != 36 {
		t.Errorf("checked %d pairs, want 36", n)
	}
}

func anomalyAt(t0 time.Time, min int, asset string, kind AnomalyKind, sev Severity, pic string) Anomaly {
	return Anomaly{Time: t0.Add(time.Duration(min) * time.Minute), Kind: kind, Severity: sev, Asset: asset, Waypoint: "wp06", Check: "c", Picture: pic, Reason: "r"}
}

func TestRecordIdempotentPerAssetAndKind(t *testing.T) {
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	b := NewBook(BookConfig{})
	var ids []string
	for i, pic := range []string{"p1", "p2", "p1", "", "p3"} {
		sev := SeverityMedium
		if i == 3 {
			sev = SeverityCritical
		}
		id, out, err := b.Record(anomalyAt(t0, i*10, "door-c", AnomalyEscapeRouteBlocked, sev, pic))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]Outcome{true: Opened, false: Updated}[i == 0]; out != want {
			t.Errorf("anomaly %d: %s, want %s", i, out, want)
		}
		ids = append(ids, id)
	}
	// Another kind on the same asset, and the same kind on another asset,
	// are separate incidents.
	id2 := record(t, b, anomalyAt(t0, 60, "door-c", AnomalyCheckFailed, SeverityLow, ""))
	id3 := record(t, b, anomalyAt(t0, 60, "door-d", AnomalyEscapeRouteBlocked, SeverityLow, ""))
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("repeated anomaly opened %s besides %s", id, ids[0])
		}
	}
	if id2 == ids[0] || id3 == ids[0] || id2 == id3 {
		t.Errorf("ids %s %s %s must differ", ids[0], id2, id3)
	}
	inc, _ := b.Lookup(ids[0])
	if inc.Count != 5 || !inc.LastSeenAt.Equal(t0.Add(40*time.Minute)) || !inc.OpenedAt.Equal(t0) {
		t.Errorf("count %d last seen %s opened %s", inc.Count, inc.LastSeenAt, inc.OpenedAt)
	}
	if strings.Join(inc.Pictures, ",") != "p1,p2,p3" {
		t.Errorf("pictures %v, want p1,p2,p3 (deduplicated)", inc.Pictures)
	}
	if inc.Severity != SeverityCritical {
		t.Errorf("severity %s, want raised to critical", inc.Severity)
	}
	if len(inc.Audit) != 5 || inc.Audit[0].Action != ActionOpen || inc.Audit[1].Action != ActionRepeat || !strings.Contains(inc.Audit[3].Note, "severity medium → critical") {
		t.Errorf("audit %+v", inc.Audit)
	}
	if len(b.Incidents()) != 3 {
		t.Errorf("%d incidents, want 3", len(b.Incidents()))
	}
}

func TestPicturesCapped(t *testing.T) {
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	b := NewBook(BookConfig{MaxPictures: 3})
	var id string
	for i := 0; i < 6; i++ {
		id = record(t, b, anomalyAt(t0, i, "x", AnomalyEscapeRouteBlocked, SeverityHigh, fmt.Sprintf("p%d", i)))
	}
	inc, _ := b.Lookup(id)
	if strings.Join(inc.Pictures, ",") != "p3,p4,p5" {
		t.Errorf("pictures %v, want the latest 3", inc.Pictures)
	}
}

func TestReopenWindow(t *testing.T) {
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	const window = 48 * time.Hour
	cases := []struct {
		name      string
		final     State // state before the recurrence
		after     time.Duration
		outcome   Outcome
		sameID    bool
		wantState State
	}{
		{"resolved, recurs inside the window", StateResolved, 47 * time.Hour, Reopened, true, StateInProgress},
		{"resolved, recurs at the window's end", StateResolved, window, Reopened, true, StateInProgress},
		{"resolved, recurs after the window", StateResolved, 49 * time.Hour, Opened, false, StateNew},
		{"closed, recurs inside the window", StateClosed, time.Hour, Opened, false, StateNew},
		{"cancelled, recurs", StateCancelled, time.Hour, Opened, false, StateNew},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBook(BookConfig{ReopenWindow: window})
			id := record(t, b, anomalyAt(t0, 0, "bollard", AnomalyBollardWrongState, SeverityHigh, ""))
			resolvedAt := t0.Add(time.Hour)
			if c.final == StateCancelled {
				must(t, b.Transition(id, StateCancelled, resolvedAt, "alice", "false alarm"))
			} else {
				must(t, b.Transition(id, StateResolved, resolvedAt, "alice", "fixed"))
				if c.final == StateClosed {
					must(t, b.Transition(id, StateClosed, resolvedAt, "alice", ""))
				}
			}
			a := anomalyAt(resolvedAt, 0, "bollard", AnomalyBollardWrongState, SeverityHigh, "")
			a.Time = resolvedAt.Add(c.after)
			id2, out, err := b.Record(a)
			if err != nil {
				t.Fatal(err)
			}
			if out != c.outcome || (id2 == id) != c.sameID {
				t.Errorf("outcome %s id %s (first %s), want %s same %v", out, id2, id, c.outcome, c.sameID)
			}
			inc, _ := b.Lookup(id2)
			if inc.State != c.wantState {
				t.Errorf("state %s, want %s", inc.State, c.wantState)
			}
			if c.sameID {
				last := inc.Audit[len(inc.Audit)-1]
				if inc.ReopenCount != 1 || !inc.ResolvedAt.IsZero() || last.Action != ActionReopen || last.From != StateResolved || last.Actor != "robot" {
					t.Errorf("reopen: count %d resolved %s last audit %+v", inc.ReopenCount, inc.ResolvedAt, last)
				}
			}
		})
	}
	// The zero window never reopens.
	var b Book
	id := record(t, &b, anomalyAt(t0, 0, "x", AnomalyBollardWrongState, SeverityHigh, ""))
	must(t, b.Transition(id, StateResolved, t0.Add(time.Minute), "alice", ""))
	if _, out, _ := b.Record(anomalyAt(t0, 2, "x", AnomalyBollardWrongState, SeverityHigh, "")); out != Opened {
		t.Errorf("zero window: %s, want opened", out)
	}
}

func TestAuditTrail(t *testing.T) {
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	b := NewBook(BookConfig{SystemActor: "loomi"})
	id := record(t, b, anomalyAt(t0, 0, "door", AnomalyEscapeRouteBlocked, SeverityCritical, "p1"))
	steps := []struct {
		min   int
		to    State
		actor string
		note  string
	}{
		{5, StateAcknowledged, "night-desk", "seen"},
		{20, StateInProgress, "caretaker", "on my way"},
		{45, StateResolved, "caretaker", "pallets moved"},
		{60, StateClosed, "night-desk", "checked on camera"},
	}
	for _, s := range steps {
		if err := b.Transition(id, s.to, t0.Add(time.Duration(s.min)*time.Minute), s.actor, s.note); err != nil {
			t.Fatal(err)
		}
	}
	inc, _ := b.Lookup(id)
	want := []AuditEntry{
		{Time: t0, Actor: "loomi", Action: ActionOpen, From: "", To: StateNew, Note: "r"},
		{Time: t0.Add(5 * time.Minute), Actor: "night-desk", Action: ActionAcknowledge, From: StateNew, To: StateAcknowledged, Note: "seen"},
		{Time: t0.Add(20 * time.Minute), Actor: "caretaker", Action: ActionStart, From: StateAcknowledged, To: StateInProgress, Note: "on my way"},
		{Time: t0.Add(45 * time.Minute), Actor: "caretaker", Action: ActionResolve, From: StateInProgress, To: StateResolved, Note: "pallets moved"},
		{Time: t0.Add(60 * time.Minute), Actor: "night-desk", Action: ActionClose, From: StateResolved, To: StateClosed, Note: "checked on camera"},
	}
	if len(inc.Audit) != len(want) {
		t.Fatalf("audit %+v", inc.Audit)
	}
	for i := range want {
		if g := inc.Audit[i]; !g.Time.Equal(want[i].Time) || g.Actor != want[i].Actor || g.Action != want[i].Action || g.From != want[i].From || g.To != want[i].To || g.Note != want[i].Note {
			t.Errorf("audit[%d] = %+v, want %+v", i, g, want[i])
		}
	}
	if !inc.AcknowledgedAt.Equal(t0.Add(5*time.Minute)) || !inc.ResolvedAt.Equal(t0.Add(45*time.Minute)) || !inc.ClosedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("timestamps ack %s resolved %s closed %s", inc.AcknowledgedAt, inc.ResolvedAt, inc.ClosedAt)
	}
	// Lookup returns a copy: changing it does not change the book.
	inc.Audit[0].Actor = "mallory"
	if again, _ := b.Lookup(id); again.Audit[0].Actor != "loomi" {
		t.Error("Lookup exposed the book's audit slice")
	}
}

func TestBookBadInput(t *testing.T) {
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	var b Book
	id := record(t, &b, anomalyAt(t0, 10, "door", AnomalyEscapeRouteBlocked, SeverityCritical, ""))
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"unknown id", b.Transition("INC-9999", StateAcknowledged, t0.Add(time.Hour), "a", ""), "no such incident"},
		{"no actor", b.Transition(id, StateAcknowledged, t0.Add(time.Hour), " ", ""), "needs an actor"},
		{"before last change", b.Transition(id, StateAcknowledged, t0, "a", ""), "earlier than its last change"},
		{"anomaly out of order", func() error {
			_, _, err := b.Record(anomalyAt(t0, 0, "door", AnomalyEscapeRouteBlocked, SeverityCritical, ""))
			return err
		}(), "earlier than incident"},
		{"anomaly without asset", func() error {
			_, _, err := b.Record(Anomaly{Kind: AnomalyCheckFailed, Severity: SeverityLow})
			return err
		}(), "no asset or kind"},
		{"anomaly bad severity", func() error {
			_, _, err := b.Record(Anomaly{Asset: "x", Kind: AnomalyCheckFailed, Severity: "huge"})
			return err
		}(), "severity \"huge\""},
		{"event unknown action", b.Apply(Event{Time: t0.Add(time.Hour), Incident: id, Action: "escalate", Actor: "a"}), "action \"escalate\""},
		{"event no incident for key", b.Apply(Event{Time: t0.Add(time.Hour), Asset: "nope", Kind: AnomalyCheckFailed, Action: "acknowledge", Actor: "a", Line: 4}), "line 4: no incident for asset \"nope\""},
		{"reopen open incident", b.Apply(Event{Time: t0.Add(time.Hour), Incident: id, Action: "reopen", Actor: "a"}), "reopen needs a resolved incident"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, c.err, c.want)
		}
	}
	if inc, _ := b.Lookup(id); inc.State != StateNew || len(inc.Audit) != 1 {
		t.Errorf("refused changes altered the incident: %s, %d audit entries", inc.State, len(inc.Audit))
	}
}

// Wikipedia, "Percentile", nearest-rank method, worked example: for the
// ordered list {15, 20, 35, 40, 50} the 5th, 30th, 40th, 50th and 100th
// percentiles are 15, 20, 20, 35 and 50 (rank n = ⌈P/100 · N⌉).
func TestPercentileNearestRank(t *testing.T) {
	xs := []float64{15, 20, 35, 40, 50}
	for p, want := range map[float64]float64{5: 15, 30: 20, 40: 20, 50: 35, 100: 50} {
		if got := Percentile(xs, p); got != want {
			t.Errorf("P%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

func TestResponseTimes(t *testing.T) {
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	b := NewBook(BookConfig{})
	// Five escape-route incidents acknowledged after 15, 20, 35, 40, 50
	// minutes and resolved 60 minutes after that; one lighting incident
	// never acknowledged; one cancelled straight from new.
	for i, ack := range []int{15, 20, 35, 40, 50} {
		id := record(t, b, anomalyAt(t0, 0, fmt.Sprintf("door-%d", i), AnomalyEscapeRouteBlocked, SeverityCritical, ""))
		must(t, b.Transition(id, StateAcknowledged, t0.Add(time.Duration(ack)*time.Minute), "desk", ""))
		must(t, b.Transition(id, StateResolved, t0.Add(time.Duration(ack+60)*time.Minute), "caretaker", ""))
	}
	_ = record(t, b, anomalyAt(t0, 0, "lamp", AnomalyLightingWrongState, SeverityLow, ""))
	id := record(t, b, anomalyAt(t0, 0, "lamp-2", AnomalyLightingWrongState, SeverityLow, ""))
	must(t, b.Transition(id, StateCancelled, t0.Add(time.Minute), "desk", "duplicate"))

	all, byKind := ResponseTimes(b.Incidents())
	if all.Incidents != 7 || all.Open != 1 || all.Unacknowledged != 1 {
		t.Errorf("all: %+v", all)
	}
	if len(byKind) != 2 || byKind[0].Kind != AnomalyEscapeRouteBlocked || byKind[1].Kind != AnomalyLightingWrongState {
		t.Fatalf("by kind: %+v", byKind)
	}
	tta := byKind[0].TimeToAcknowledge
	want := DurationStats{N: 5, MeanS: 32 * 60, P50S: 35 * 60, P90S: 50 * 60, P95S: 50 * 60, MaxS: 50 * 60}
	if tta != want {
		t.Errorf("time to acknowledge %+v, want %+v", tta, want)
	}
	ttr := byKind[0].TimeToResolve
	if ttr.N != 5 || math.Abs(ttr.MeanS-92*60) > 1e-9 || ttr.P50S != 95*60 || ttr.MaxS != 110*60 {
		t.Errorf("time to resolve %+v", ttr)
	}
	if l := byKind[1]; l.Incidents != 2 || l.TimeToAcknowledge.N != 0 || l.Unacknowledged != 1 {
		t.Errorf("lighting: %+v (the cancellation from new is no acknowledgement)", l)
	}
}

// Only the latest incident of an asset and kind can be reopened: an older
// resolved one would make a second open incident next to a newer one.
func TestReopenOnlyLatest(t *testing.T) {
	t0 := mustTime(t, "2026-03-02T22:00:00Z")
	b := NewBook(BookConfig{ReopenWindow: time.Hour})
	old := record(t, b, anomalyAt(t0, 0, "x", AnomalyBollardWrongState, SeverityHigh, ""))
	must(t, b.Transition(old, StateResolved, t0.Add(time.Minute), "alice", ""))
	newer, out, _ := b.Record(anomalyAt(t0, 120, "x", AnomalyBollardWrongState, SeverityHigh, ""))
	if out != Opened || newer == old {
		t.Fatalf("recurrence after the window: %s %s", out, newer)
	}
	err := b.Apply(Event{Time: t0.Add(3 * time.Hour), Incident: old, Action: ActionReopen, Actor: "bob"})
	if err == nil || !strings.Contains(err.Error(), "is the latest incident") {
		t.Errorf("reopening the older incident: %v", err)
	}
	must(t, b.Transition(newer, StateResolved, t0.Add(3*time.Hour), "alice", ""))
	if err := b.Apply(Event{Time: t0.Add(4 * time.Hour), Asset: "x", Kind: AnomalyBollardWrongState, Action: ActionReopen, Actor: "bob", Note: "still down"}); err != nil {
		t.Errorf("reopening the latest incident: %v", err)
	}
	if inc, _ := b.Lookup(newer); inc.State != StateInProgress || inc.ReopenCount != 1 || inc.Audit[len(inc.Audit)-1].Actor != "bob" {
		t.Errorf("after reopen: %+v", inc)
	}
}
