package tts

import (
	"fmt"
	"strings"
)

// Event is the part of a topic after the device ID, naming the message
// kind.
type Event string

// The events of the MQTT API (pkg/applicationserver/io/mqtt/topics/v3.go).
const (
	// Upstream, published by the application server.
	EventUp              Event = "up"
	EventUpNormalized    Event = "up/normalized"
	EventJoin            Event = "join"
	EventDownQueued      Event = "down/queued"
	EventDownSent        Event = "down/sent"
	EventDownAck         Event = "down/ack"
	EventDownNack        Event = "down/nack"
	EventDownFailed      Event = "down/failed"
	EventDownInvalidated Event = "down/invalidated"
	EventLocationSolved  Event = "location/solved"
	EventServiceData     Event = "service/data"
	// Downstream, published by a client.
	EventDownPush    Event = "down/push"
	EventDownReplace Event = "down/replace"
)

// events are the known events, for parsing.
var events = map[Event]bool{
	EventUp: true, EventUpNormalized: true, EventJoin: true, EventDownQueued: true,
	EventDownSent: true, EventDownAck: true, EventDownNack: true, EventDownFailed: true,
	EventDownInvalidated: true, EventLocationSolved: true, EventServiceData: true,
	EventDownPush: true, EventDownReplace: true,
}

// Upstream reports whether the application server publishes e (as opposed
// to a client publishing it).
func (e Event) Upstream() bool { return events[e] && e != EventDownPush && e != EventDownReplace }

// Topic is a topic of the MQTT API:
//
//	v3/{application id}@{tenant id}/devices/{device id}/{event}
//
// The Things Network is the tenant "ttn" ("v3/vineyard-north@ttn/..."); an
// open-source deployment has no tenant and no "@" ("v3/vineyard-north/...").
type Topic struct {
	// ApplicationID is the application's ID.
	ApplicationID string
	// TenantID is the tenant's ID, empty on an open-source deployment.
	TenantID string
	// DeviceID is the device's ID (not its DevEUI).
	DeviceID string
	// Event is the message kind.
	Event Event
}

// ParseTopic parses a topic of the MQTT API.
func ParseTopic(s string) (Topic, error) {
	parts := strings.SplitN(s, "/", 5)
	if len(parts) != 5 || parts[0] != "v3" || parts[2] != "devices" {
		return Topic{}, fmt.Errorf("%w %q: want v3/{application}[@{tenant}]/devices/{device}/{event}", ErrTopic, s)
	}
	var t Topic
	var hasTenant bool
	t.ApplicationID, t.TenantID, hasTenant = strings.Cut(parts[1], "@")
	if hasTenant && t.TenantID == "" {
		return Topic{}, fmt.Errorf("%w %q: empty tenant ID after @", ErrTopic, s)
	}
	t.DeviceID = parts[3]
	t.Event = Event(parts[4])
	if err := t.validate(); err != nil {
		return Topic{}, fmt.Errorf("%w %q: %v", ErrTopic, s, err)
	}
	return t, nil
}

// String returns the topic's text. It does not check the topic; Validate
// does.
func (t Topic) String() string {
	return "v3/" + t.uid() + "/devices/" + t.DeviceID + "/" + string(t.Event)
}

// uid is the application's unique ID: {application id}@{tenant id}, or the
// application ID alone without a tenant.
func (t Topic) uid() string {
	if t.TenantID == "" {
		return t.ApplicationID
	}
	return t.ApplicationID + "@" + t.TenantID
}

// Validate checks the topic's IDs and event, so that String gives a topic
// ParseTopic accepts (and no wildcard or extra level slips in).
func (t Topic) Validate() error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrTopic, err)
	}
	return nil
}

func (t Topic) validate() error {
	if err := ValidateID(t.ApplicationID); err != nil {
		return fmt.Errorf("application ID: %w", err)
	}
	if t.TenantID != "" {
		if err := ValidateID(t.TenantID); err != nil {
			return fmt.Errorf("tenant ID: %w", err)
		}
	}
	if err := ValidateID(t.DeviceID); err != nil {
		return fmt.Errorf("device ID: %w", err)
	}
	if !events[t.Event] {
		return fmt.Errorf("unknown event %q", t.Event)
	}
	return nil
}

// Filter returns the topic filter that subscribes to an application's
// events of one kind, or of every kind when event is empty:
//
//	Filter("vineyard-north", "ttn", EventUp) == "v3/vineyard-north@ttn/devices/+/up"
//	Filter("vineyard-north", "", "")          == "v3/vineyard-north/devices/#"
func Filter(applicationID, tenantID string, event Event) string {
	t := Topic{ApplicationID: applicationID, TenantID: tenantID}
	if event == "" {
		return "v3/" + t.uid() + "/devices/#"
	}
	return "v3/" + t.uid() + "/devices/+/" + string(event)
}

// ValidateID checks an application, device, gateway or tenant ID against
// the stack's rule: 3 to 36 lower-case letters, digits and single dashes,
// starting and ending with a letter or digit
// (^[a-z0-9](?:[-]?[a-z0-9]){2,}$, max_len 36, in identifiers.proto).
func ValidateID(id string) error {
	if len(id) < 3 || len(id) > 36 {
		return fmt.Errorf("%q: want 3 to 36 characters", id)
	}
	prevDash := true // no dash first
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			prevDash = false
		case c == '-' && !prevDash:
			prevDash = true
		default:
			return fmt.Errorf("%q: want lower-case letters, digits and single dashes", id)
		}
	}
	if prevDash {
		return fmt.Errorf("%q: ends with a dash", id)
	}
	return nil
}
