package robot

import (
	"fmt"
	"strings"
	"time"
)

// State is an incident's lifecycle state.
type State string

// Incident states (after ServiceNow's incident state model, domain.md §4.2;
// "on hold" is not modelled).
const (
	StateNew          State = "new"
	StateAcknowledged State = "acknowledged"
	StateInProgress   State = "in_progress"
	StateResolved     State = "resolved"
	StateClosed       State = "closed"
	StateCancelled    State = "cancelled"
)

// States lists every state in lifecycle order.
var States = []State{StateNew, StateAcknowledged, StateInProgress, StateResolved, StateClosed, StateCancelled}

// transitions is the transition table: the states each state may move to.
// Cancelling is allowed while the incident is open (new, acknowledged, in
// progress); a resolved incident is closed or reopened, never cancelled;
// closed and cancelled are final.
var transitions = map[State][]State{
	StateNew:          {StateAcknowledged, StateInProgress, StateResolved, StateCancelled},
	StateAcknowledged: {StateInProgress, StateResolved, StateCancelled},
	StateInProgress:   {StateResolved, StateCancelled},
	StateResolved:     {StateInProgress, StateClosed},
	StateClosed:       nil,
	StateCancelled:    nil,
}

// CanTransition reports whether the table allows from → to.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Open reports whether the state is one in which the incident still needs
// work: new, acknowledged or in progress.
func (s State) Open() bool {
	return s == StateNew || s == StateAcknowledged || s == StateInProgress
}

// ParseState parses a state name.
func ParseState(s string) (State, error) {
	v := State(strings.ToLower(strings.TrimSpace(s)))
	if _, ok := transitions[v]; !ok {
		return "", fmt.Errorf("state %q: want new, acknowledged, in_progress, resolved, closed or cancelled", s)
	}
	return v, nil
}

// TransitionError is returned for a move the transition table refuses.
type TransitionError struct {
	Incident string
	From, To State
}

// Error names the incident, the refused move and the moves allowed from
// its state.
func (e *TransitionError) Error() string {
	allowed := make([]string, 0, 4)
	for _, s := range transitions[e.From] {
		allowed = append(allowed, string(s))
	}
	list := "none, it is final"
	if len(allowed) > 0 {
		list = strings.Join(allowed, ", ")
	}
	return fmt.Sprintf("incident %s: cannot go from %s to %s (from %s: %s)", e.Incident, e.From, e.To, e.From, list)
}

// Audit actions.
const (
	ActionOpen        = "open"
	ActionRepeat      = "repeat"
	ActionAcknowledge = "acknowledge"
	ActionStart       = "start"
	ActionResolve     = "resolve"
	ActionClose       = "close"
	ActionCancel      = "cancel"
	ActionReopen      = "reopen"
)

// actionFor names the move from → to.
func actionFor(from, to State) string {
	switch to {
	case StateAcknowledged:
		return ActionAcknowledge
	case StateInProgress:
		if from == StateResolved {
			return ActionReopen
		}
		return ActionStart
	case StateResolved:
		return ActionResolve
	case StateClosed:
		return ActionClose
	case StateCancelled:
		return ActionCancel
	}
	return string(to)
}

// AuditEntry records one change of an incident: who, when, from which
// state to which, and why. A repeat sighting is an entry with From == To.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	From   State     `json:"from,omitempty"`
	To     State     `json:"to"`
	Note   string    `json:"note,omitempty"`
}

// Incident is a problem with one asset, opened from an anomaly and worked
// on by people.
type Incident struct {
	ID       string      `json:"id"`
	Asset    string      `json:"asset"`
	Kind     AnomalyKind `json:"kind"`
	State    State       `json:"state"`
	Severity Severity    `json:"severity"`
	// Waypoint and Check are where the anomaly was last seen.
	Waypoint string `json:"waypoint"`
	Check    string `json:"check"`
	// Observed, Expected and Reason are from the latest anomaly.
	Observed string `json:"observed"`
	Expected string `json:"expected"`
	Reason   string `json:"reason"`
	// Count is the number of anomalies recorded on this incident.
	Count      int       `json:"count"`
	OpenedAt   time.Time `json:"opened_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// AcknowledgedAt is when the incident first left new.
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	// ResolvedAt is the latest resolution; it is cleared on reopen.
	ResolvedAt  time.Time `json:"resolved_at,omitzero"`
	ClosedAt    time.Time `json:"closed_at,omitzero"`
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
	ReopenCount int       `json:"reopen_count"`
	// Pictures are references (URI or hash) to the pictures taken, oldest
	// first, at most BookConfig.MaxPictures of the latest.
	Pictures []string     `json:"pictures,omitempty"`
	Audit    []AuditEntry `json:"audit"`
}

// BookConfig tunes an incident book. The zero value never reopens, keeps
// DefaultMaxPictures pictures per incident and records the robot's changes
// as actor "robot".
type BookConfig struct {
	// ReopenWindow: an anomaly on an asset whose latest incident of the
	// same kind was resolved at most this long ago reopens that incident
	// instead of opening a new one. Zero never reopens.
	ReopenWindow time.Duration
	// MaxPictures bounds the picture references kept per incident.
	MaxPictures int
	// SystemActor is the actor of changes made by anomalies.
	SystemActor string
	// IDPrefix prefixes incident numbers; "" means "INC-".
	IDPrefix string
}

// DefaultMaxPictures is the picture references kept per incident when
// BookConfig.MaxPictures is zero.
const DefaultMaxPictures = 20

type incidentKey struct {
	asset string
	kind  AnomalyKind
}

// Book holds incidents and enforces the lifecycle: one open incident per
// (asset, kind), reopening within the window, and an audit entry for
// every change. The zero value is ready to use. A Book is not safe for
// concurrent use.
type Book struct {
	Config    BookConfig
	incidents []*Incident
	byID      map[string]*Incident
	latest    map[incidentKey]*Incident
}

// NewBook returns an empty book with the configuration.
func NewBook(cfg BookConfig) *Book { return &Book{Config: cfg} }

// Outcome says what recording an anomaly did.
type Outcome string

// Outcomes of Book.Record.
const (
	Opened   Outcome = "opened"
	Updated  Outcome = "updated"
	Reopened Outcome = "reopened"
)

func (b *Book) init() {
	if b.byID == nil {
		b.byID = make(map[string]*Incident)
		b.latest = make(map[incidentKey]*Incident)
	}
}

func (b *Book) actor() string {
	if b.Config.SystemActor != "" {
		return b.Config.SystemActor
	}
	return "robot"
}

// Record files an anomaly. If the asset has an open incident of the same
// kind, that incident is updated (count, last seen, severity raised, picture
// added). Else if the latest incident of that kind was resolved no longer
// than ReopenWindow before the anomaly, it is reopened (resolved →
// in_progress). Otherwise a new incident is opened. It returns the
// incident's id.
func (b *Book) Record(a Anomaly) (string, Outcome, error) {
	if strings.TrimSpace(a.Asset) == "" || a.Kind == "" {
		return "", "", fmt.Errorf("incident book: anomaly at %s has no asset or kind", a.Time.Format(time.RFC3339))
	}
	if a.Severity.Rank() == 0 {
		return "", "", fmt.Errorf("incident book: anomaly %s on %s: severity %q is not low, medium, high or critical", a.Kind, a.Asset, a.Severity)
	}
	b.init()
	key := incidentKey{a.Asset, a.Kind}
	inc := b.latest[key]
	if inc != nil && a.Time.Before(inc.UpdatedAt) {
		return "", "", fmt.Errorf("incident book: anomaly %s on %s at %s is earlier than incident %s's last change at %s",
			a.Kind, a.Asset, a.Time.Format(time.RFC3339), inc.ID, inc.UpdatedAt.Format(time.RFC3339))
	}
	switch {
	case inc != nil && inc.State.Open():
		note := "seen again at " + a.Waypoint
		if a.Severity.Rank() > inc.Severity.Rank() {
			note += fmt.Sprintf("; severity %s → %s", inc.Severity, a.Severity)
		}
		b.observe(inc, a)
		inc.Audit = append(inc.Audit, AuditEntry{Time: a.Time, Actor: b.actor(), Action: ActionRepeat, From: inc.State, To: inc.State, Note: note})
		return inc.ID, Updated, nil
	case inc != nil && inc.State == StateResolved && b.Config.ReopenWindow > 0 && a.Time.Sub(inc.ResolvedAt) <= b.Config.ReopenWindow:
		note := fmt.Sprintf("recurred at %s %s after resolution (window %s)", a.Waypoint, a.Time.Sub(inc.ResolvedAt), b.Config.ReopenWindow)
		inc.Audit = append(inc.Audit, AuditEntry{Time: a.Time, Actor: b.actor(), Action: ActionReopen, From: StateResolved, To: StateInProgress, Note: note})
		inc.State = StateInProgress
		inc.ResolvedAt = time.Time{}
		inc.ReopenCount++
		b.observe(inc, a)
		return inc.ID, Reopened, nil
	}
	inc = &Incident{
		ID:       fmt.Sprintf("%s%04d", b.prefix(), len(b.incidents)+1),
		Asset:    a.Asset,
		Kind:     a.Kind,
		State:    StateNew,
		Severity: a.Severity,
		OpenedAt: a.Time,
	}
	b.observe(inc, a)
	inc.Audit = append(inc.Audit, AuditEntry{Time: a.Time, Actor: b.actor(), Action: ActionOpen, To: StateNew, Note: a.Reason})
	b.incidents = append(b.incidents, inc)
	b.byID[inc.ID] = inc
	b.latest[key] = inc
	return inc.ID, Opened, nil
}

func (b *Book) prefix() string {
	if b.Config.IDPrefix != "" {
		return b.Config.IDPrefix
	}
	return "INC-"
}

// observe adds an anomaly's details to the incident.
func (b *Book) observe(inc *Incident, a Anomaly) {
	inc.Count++
	inc.LastSeenAt, inc.UpdatedAt = a.Time, a.Time
	inc.Waypoint, inc.Check = a.Waypoint, a.Check
	inc.Observed, inc.Expected, inc.Reason = a.Observed, a.Expected, a.Reason
	if a.Severity.Rank() > inc.Severity.Rank() {
		inc.Severity = a.Severity
	}
	if a.Picture == "" {
		return
	}
	for _, p := range inc.Pictures {
		if p == a.Picture {
			return
		}
	}
	max := b.Config.MaxPictures
	if max <= 0 {
		max = DefaultMaxPictures
	}
	inc.Pictures = append(inc.Pictures, a.Picture)
	if len(inc.Pictures) > max {
		inc.Pictures = append(inc.Pictures[:0], inc.Pictures[len(inc.Pictures)-max:]...)
	}
}

// Transition moves incident id to state to at time at, by actor, with a
// note. The move must be in the transition table, the actor must be named,
// and at must not be before the incident's last change.
func (b *Book) Transition(id string, to State, at time.Time, actor, note string) error {
	b.init()
	inc, ok := b.byID[id]
	if !ok {
		return fmt.Errorf("incident %s: no such incident", id)
	}
	if strings.TrimSpace(actor) == "" {
		return fmt.Errorf("incident %s: %s needs an actor", id, actionFor(inc.State, to))
	}
	if !CanTransition(inc.State, to) {
		return &TransitionError{Incident: id, From: inc.State, To: to}
	}
	if from, key := inc.State, (incidentKey{inc.Asset, inc.Kind}); from == StateResolved && to == StateInProgress && b.latest[key] != inc {
		return fmt.Errorf("incident %s: cannot reopen, %s is the latest incident for %s %s", id, b.latest[key].ID, inc.Asset, inc.Kind)
	}
	if at.Before(inc.UpdatedAt) {
		return fmt.Errorf("incident %s: %s at %s is earlier than its last change at %s", id, actionFor(inc.State, to), at.Format(time.RFC3339), inc.UpdatedAt.Format(time.RFC3339))
	}
	from := inc.State
	inc.Audit = append(inc.Audit, AuditEntry{Time: at, Actor: actor, Action: actionFor(from, to), From: from, To: to, Note: note})
	inc.State, inc.UpdatedAt = to, at
	if from == StateNew && to != StateCancelled {
		inc.AcknowledgedAt = at
	}
	switch to {
	case StateResolved:
		inc.ResolvedAt = at
	case StateInProgress:
		if from == StateResolved {
			inc.ResolvedAt = time.Time{}
			inc.ReopenCount++
		}
	case StateClosed:
		inc.ClosedAt = at
	case StateCancelled:
		inc.CancelledAt = at
	}
	return nil
}

// Lookup returns a copy of the incident with the given id.
func (b *Book) Lookup(id string) (Incident, bool) {
	inc, ok := b.byID[id]
	if !ok {
		return Incident{}, false
	}
	return copyIncident(inc), true
}

// Latest returns a copy of the most recent incident for an asset and kind,
// open or not.
func (b *Book) Latest(asset string, kind AnomalyKind) (Incident, bool) {
	inc, ok := b.latest[incidentKey{asset, kind}]
	if !ok {
		return Incident{}, false
	}
	return copyIncident(inc), true
}

// Incidents returns copies of all incidents in the order they were opened.
func (b *Book) Incidents() []Incident {
	out := make([]Incident, len(b.incidents))
	for i, inc := range b.incidents {
		out[i] = copyIncident(inc)
	}
	return out
}

func copyIncident(inc *Incident) Incident {
	c := *inc
	c.Pictures = append([]string(nil), inc.Pictures...)
	c.Audit = append([]AuditEntry(nil), inc.Audit...)
	return c
}

// Event is a person's action on an incident, named by id or by asset and
// kind (the latest incident for them).
type Event struct {
	Time     time.Time   `json:"time"`
	Incident string      `json:"incident,omitempty"`
	Asset    string      `json:"asset,omitempty"`
	Kind     AnomalyKind `json:"kind,omitempty"`
	// Action is acknowledge, start, resolve, close, cancel or reopen.
	Action string `json:"action"`
	Actor  string `json:"actor"`
	Note   string `json:"note,omitempty"`
	Line   int    `json:"-"`
}

// actionTarget maps an event action to the state it moves to.
func actionTarget(action string) (State, bool) {
	switch action {
	case ActionAcknowledge:
		return StateAcknowledged, true
	case ActionStart, ActionReopen:
		return StateInProgress, true
	case ActionResolve:
		return StateResolved, true
	case ActionClose:
		return StateClosed, true
	case ActionCancel:
		return StateCancelled, true
	}
	return "", false
}

// Apply carries out a person's event.
func (b *Book) Apply(e Event) error {
	at := ""
	if e.Line > 0 {
		at = fmt.Sprintf("line %d: ", e.Line)
	}
	to, ok := actionTarget(e.Action)
	if !ok {
		return fmt.Errorf("%saction %q: want acknowledge, start, resolve, close, cancel or reopen", at, e.Action)
	}
	id := e.Incident
	if id == "" {
		inc, ok := b.latest[incidentKey{e.Asset, e.Kind}]
		if !ok {
			return fmt.Errorf("%sno incident for asset %q and kind %q", at, e.Asset, e.Kind)
		}
		id = inc.ID
	}
	if inc, ok := b.byID[id]; ok {
		if e.Action == ActionReopen && inc.State != StateResolved {
			return fmt.Errorf("%sincident %s: reopen needs a resolved incident, it is %s", at, id, inc.State)
		}
		if e.Action == ActionStart && inc.State == StateResolved {
			return fmt.Errorf("%sincident %s: it is resolved; use reopen to work on it again", at, id)
		}
	}
	if err := b.Transition(id, to, e.Time, e.Actor, e.Note); err != nil {
		if at != "" {
			return fmt.Errorf("%s%w", at, err)
		}
		return err
	}
	return nil
}
