// Package alarm is the one alarm lifecycle of citymesh's services. A service
// raises an alarm when a condition begins (a meter's consumption spikes, a
// plot's downy mildew risk passes its threshold, the robot finds a blocked
// escape route) and clears it when the condition ends; people acknowledge
// and clear alarms. The model is the one ThingsBoard's users know — active
// or cleared, acknowledged or not, a severity — with one rule it does not
// keep: at most one alarm is open per (source, type), whatever the timing
// of the events that raise it, so two events a millisecond apart, a QoS 1
// redelivery or a replayed backlog update the open alarm instead of opening
// a second one.
//
// A Manager keeps its service's alarms in the service's durable state and
// publishes each one retained on its own topic,
// alarm/{site}/{kind}/{asset}/{type}; it takes commands from people on
// alarm/{site}/{kind}/{asset}/{type}/ack and …/clear. The JSON members
// follow the Smart Data Models Alert model
// (https://github.com/smart-data-models/dataModel.Alert) where it has one:
// category, subCategory, severity, alertSource, dateIssued, validFrom,
// validTo, dateModified, description, data. docs/services.md describes the
// lifecycle, docs/events.md the schema.
package alarm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/citymesh/citymesh/event"
)

// Severity is how bad an alarm is, ThingsBoard's five levels.
type Severity string

// The severities, worst first.
const (
	Critical      Severity = "critical"
	Major         Severity = "major"
	Minor         Severity = "minor"
	Warning       Severity = "warning"
	Indeterminate Severity = "indeterminate"
)

// Valid reports whether s is one of the five severities.
func (s Severity) Valid() bool {
	switch s {
	case Critical, Major, Minor, Warning, Indeterminate:
		return true
	}
	return false
}

// Status says whether an alarm's condition holds.
type Status string

// The statuses.
const (
	// Active: the condition holds (as far as the raising service knows).
	Active Status = "active"
	// Cleared: the condition ended, or a person cleared the alarm.
	Cleared Status = "cleared"
)

// Key names the one alarm of a type about one source: the asset of the
// campus model the alarm is about (its site, kind and id) and the alarm's
// type. Each is an id (event.ValidID); the type names the condition
// ("consumption-spike", "downy-mildew-risk", "escape-route-blocked") and
// belongs to one service.
type Key struct {
	Site  string `json:"site"`
	Kind  string `json:"sourceKind"`
	Asset string `json:"alertSource"`
	Type  string `json:"alarmType"`
}

// Check checks that every part of k is an id, and that the type is not a
// topic event name of docs/events.md (reading, measurement, status, …): an
// alarm's topic must never match a subscription to city events such as
// +/+/+/+/measurement.
func (k Key) Check() error {
	for _, p := range []struct{ name, v string }{{"site", k.Site}, {"kind", k.Kind}, {"source", k.Asset}, {"type", k.Type}} {
		if err := event.ValidID(p.v); err != nil {
			return fmt.Errorf("alarm %s: %s: %w", p.name, k, err)
		}
	}
	if _, ok := event.KindOf(k.Type); ok {
		return fmt.Errorf("alarm type %q is a city event name; alarm topics must not match event subscriptions", k.Type)
	}
	return nil
}

// String returns site/kind/asset/type.
func (k Key) String() string { return k.Site + "/" + k.Kind + "/" + k.Asset + "/" + k.Type }

// Topic returns the alarm's topic under prefix (DefaultPrefix: "alarm").
func (k Key) Topic(prefix string) string { return prefix + "/" + k.String() }

// ParseKey parses site/kind/asset/type.
func ParseKey(s string) (Key, error) {
	p := strings.Split(s, "/")
	if len(p) != 4 {
		return Key{}, fmt.Errorf("alarm key %q: want site/kind/source/type", s)
	}
	k := Key{Site: p[0], Kind: p[1], Asset: p[2], Type: p[3]}
	return k, k.Check()
}

// Alarm is one alarm, as published retained on its topic and kept in the
// history. The members named as in the Smart Data Models Alert model mean
// what they mean there.
type Alarm struct {
	// ID is unique among all alarms: alarm:{site}:{kind}:{asset}:{type}:{n},
	// n counting the alarms of the key from 1.
	ID string `json:"id"`
	Key
	// Severity is the alarm's severity, as of the latest raise.
	Severity Severity `json:"severity"`
	// Category and SubCategory classify the alarm (Alert's category, such
	// as environment, agriculture or security, and subCategory, such as
	// fungus or highTemperature); optional.
	Category    string `json:"category,omitempty"`
	SubCategory string `json:"subCategory,omitempty"`
	// Status is active or cleared; Acknowledged whether a person
	// acknowledged it. An alarm both cleared and acknowledged is closed:
	// it leaves its topic and goes to the history.
	Status       Status `json:"status"`
	Acknowledged bool   `json:"acknowledged"`
	// Originator is the service that raised it.
	Originator string `json:"originator"`
	// Tenant is the tenant the alarm's asset belongs to, when the raising
	// service names it (Condition.Tenant): the HTTP API shows a tenant's
	// users their tenant's alarms only.
	Tenant string `json:"tenant,omitempty"`
	// Description says what is wrong, for people; Data are the details
	// of the latest raise (values, thresholds), a JSON object.
	Description string          `json:"description,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	// DateIssued is when the alarm was opened (the service's clock).
	DateIssued time.Time `json:"dateIssued"`
	// ValidFrom is when the condition began: the event time of the first
	// raise. ValidTo is when it ended: the event time of the clear, or
	// when a person cleared it; absent while active.
	ValidFrom time.Time `json:"validFrom"`
	ValidTo   time.Time `json:"validTo,omitzero"`
	// DateModified is when the alarm last changed.
	DateModified time.Time `json:"dateModified"`
	// LastRaised is the event time of the latest raise; Count how many
	// distinct raises (events) the alarm has had.
	LastRaised time.Time `json:"lastRaised"`
	Count      int       `json:"count"`
	// AcknowledgedBy and AcknowledgedAt say who acknowledged it and when;
	// ClearedBy and ClearedAt who cleared it (the service's name, or a
	// person) and when.
	AcknowledgedBy string    `json:"acknowledgedBy,omitempty"`
	AcknowledgedAt time.Time `json:"acknowledgedAt,omitzero"`
	ClearedBy      string    `json:"clearedBy,omitempty"`
	ClearedAt      time.Time `json:"clearedAt,omitzero"`
	// DateClosed is when the alarm left its topic for the history:
	// cleared and acknowledged, or cleared and replaced by a new alarm of
	// the same key. Zero while open.
	DateClosed time.Time `json:"dateClosed,omitzero"`
	// Audit is the alarm's lifecycle: who did what when.
	Audit []AuditEntry `json:"audit"`
}

// Closed reports whether the alarm is cleared and acknowledged, or was
// replaced.
func (a *Alarm) Closed() bool { return !a.DateClosed.IsZero() }

// Action is one kind of entry in an alarm's audit trail.
type Action string

// The actions of the audit trail.
const (
	ActionRaised       Action = "raised"       // opened by its service
	ActionSeverity     Action = "severity"     // a raise changed the severity
	ActionAcknowledged Action = "acknowledged" // by a person
	ActionCleared      Action = "cleared"      // by its service or a person
	ActionClosed       Action = "closed"       // cleared and acknowledged
	ActionReplaced     Action = "replaced"     // cleared, and a new alarm of its key opened
)

// AuditEntry is one step of an alarm's lifecycle.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Action Action    `json:"action"`
	// By is the service or the person.
	By      string `json:"by"`
	Comment string `json:"comment,omitempty"`
}

// Result says what a Manager call did.
type Result string

// The results.
const (
	Opened       Result = "opened"       // a new alarm
	Updated      Result = "updated"      // the open alarm took the raise
	Duplicate    Result = "duplicate"    // the same event was applied before
	Stale        Result = "stale"        // older than what the alarm already knows
	Acknowledged Result = "acknowledged" // acknowledged now
	ClearedNow   Result = "cleared"      // cleared now
	Unchanged    Result = "unchanged"    // nothing to do: already so
)

// ErrNotFound is returned for a key that has no open alarm.
var ErrNotFound = errors.New("no open alarm")

// ErrInvalid is matched by errors.Is for a call with bad arguments.
var ErrInvalid = errors.New("invalid alarm request")
