package event

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/citymesh/citymesh/bus"
)

// QoS is the MQTT quality of service every citymesh event is published
// with: at least once. Consumers are idempotent on the event's id (the
// CloudEvents id) where a duplicate matters.
const QoS byte = 1

// ContentType is the MQTT 5 Content Type of every event's payload.
const ContentType = "application/json"

// Retained reports whether events of kind k are published retained:
// those whose latest value is what a new subscriber needs. Measurements,
// statuses and positions are; uplinks, checks and pictures are a history of
// happenings and are not.
func Retained(k Kind) bool {
	switch k {
	case KindMeasurement, KindStatus, KindPosition:
		return true
	}
	return false
}

// CloudEventsSpecVersion is the CloudEvents version of the attributes
// NewMessage attaches.
const CloudEventsSpecVersion = "1.0"

// CloudEventsType returns the CloudEvents type of kind k's events:
// "citymesh.{kind}.v1".
func CloudEventsType(k Kind) string { return "citymesh." + string(k) + ".v1" }

// NewMessage validates e, checks that it belongs on topic t (a valid topic
// whose event name is of e's kind and whose asset is e's asset) and
// returns the bus message to publish: the JSON payload, QoS 1, retained
// as Retained says, Content Type application/json, and the CloudEvents
// context attributes as MQTT 5 user properties in binary content mode
// (CloudEvents MQTT protocol binding, section 3.1): specversion, id, source,
// type, time, dataschema, and subject when the event concerns one
// information point. MQTT 3.1.1 subscribers get the same payload without
// them.
func NewMessage(t Topic, e Event) (bus.Message, error) {
	if err := t.Validate(); err != nil {
		return bus.Message{}, err
	}
	k, ok := t.EventKind()
	if !ok {
		return bus.Message{}, fmt.Errorf("topic %s: %q is not an event name citymesh defines", t, t.Event)
	}
	if k != e.Kind() {
		return bus.Message{}, fmt.Errorf("topic %s carries %s events, not %s", t, k, e.Kind())
	}
	h := e.Head()
	if h.Asset != t.Asset {
		return bus.Message{}, fmt.Errorf("topic %s is about asset %q, the event about %q", t, t.Asset, h.Asset)
	}
	payload, err := Encode(e)
	if err != nil {
		return bus.Message{}, err
	}
	name := t.String()
	id := h.ID
	if id == "" {
		// The same event on the same topic gets the same id, so a
		// republished duplicate is recognised as one.
		sum := sha256.Sum256(append([]byte(name+"\x00"), payload...))
		id = hex.EncodeToString(sum[:16])
	}
	props := []bus.Property{
		{Key: "specversion", Value: CloudEventsSpecVersion},
		{Key: "id", Value: id},
		{Key: "source", Value: "/" + string(t.Domain) + "/" + t.Site + "/" + string(t.Kind) + "/" + t.Asset},
		{Key: "type", Value: CloudEventsType(k)},
		{Key: "time", Value: h.Time.UTC().Format(time.RFC3339Nano)},
		{Key: "dataschema", Value: SchemaURL(k)},
	}
	if s := subject(e); s != "" {
		props = append(props, bus.Property{Key: "subject", Value: s})
	}
	return bus.Message{
		Topic:       name,
		Payload:     payload,
		QoS:         QoS,
		Retain:      Retained(k),
		ContentType: ContentType,
		Properties:  props,
	}, nil
}

// subject is the information point an event concerns, if exactly one.
func subject(e Event) string {
	switch e := e.(type) {
	case *Measurement:
		if len(e.Values) == 1 {
			return e.Values[0].Point
		}
	case *Position:
		return e.Point
	case *Check:
		return e.Point
	}
	return ""
}

// ReadMessage parses a message received from the bus: its topic, and its
// payload as the event kind the topic names, validated. It does not need
// the CloudEvents properties (MQTT 3.1.1 publishers have none), and it
// checks that the event's asset is the topic's.
func ReadMessage(m bus.Message) (Topic, Event, error) {
	t, err := ParseTopic(m.Topic)
	if err != nil {
		return Topic{}, nil, err
	}
	k, ok := t.EventKind()
	if !ok {
		return t, nil, fmt.Errorf("topic %s: %q is not an event name citymesh defines", t, t.Event)
	}
	e, err := Decode(k, m.Payload)
	if err != nil {
		return t, nil, fmt.Errorf("topic %s: %w", t, err)
	}
	if a := e.Head().Asset; a != t.Asset {
		return t, nil, fmt.Errorf("%w: topic %s is about asset %q, the event about %q", ErrInvalid, t, t.Asset, a)
	}
	return t, e, nil
}
