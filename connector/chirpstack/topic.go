package chirpstack

import (
	"fmt"
	"strings"

	"github.com/citymesh/citymesh/connector"
)

// EventType is the last level of an event topic.
type EventType string

// The event types of the integration.
const (
	EventUp          EventType = "up"
	EventStatus      EventType = "status"
	EventJoin        EventType = "join"
	EventAck         EventType = "ack"
	EventTxAck       EventType = "txack"
	EventLog         EventType = "log"
	EventLocation    EventType = "location"
	EventIntegration EventType = "integration"
)

var eventTypes = map[EventType]bool{
	EventUp: true, EventStatus: true, EventJoin: true, EventAck: true,
	EventTxAck: true, EventLog: true, EventLocation: true, EventIntegration: true,
}

// CommandDown is the command that enqueues a downlink.
const CommandDown = "down"

// Topic is a topic of the integration with ChirpStack's default templates:
//
//	application/{application id}/device/{DevEUI}/event/{event}
//	application/{application id}/device/{DevEUI}/command/down
type Topic struct {
	// ApplicationID is the application's UUID (not the JoinEUI).
	ApplicationID string
	// DevEUI is the device's EUI.
	DevEUI connector.EUI64
	// Event is the event type; empty for a command topic.
	Event EventType
	// Command is "down" for a command topic; empty for an event topic.
	Command string
}

// ParseTopic parses an event or command topic.
func ParseTopic(s string) (Topic, error) {
	p := strings.Split(s, "/")
	if len(p) != 6 || p[0] != "application" || p[2] != "device" || (p[4] != "event" && p[4] != "command") {
		return Topic{}, fmt.Errorf("%w %q: want application/{application id}/device/{DevEUI}/event/{event} or .../command/down", ErrTopic, s)
	}
	t := Topic{ApplicationID: p[1]}
	if p[4] == "event" {
		t.Event = EventType(p[5])
	} else {
		t.Command = p[5]
	}
	var err error
	if t.DevEUI, err = connector.ParseEUI64(p[3]); err != nil {
		return Topic{}, fmt.Errorf("%w %q: %v", ErrTopic, s, err)
	}
	if err := t.validate(); err != nil {
		return Topic{}, fmt.Errorf("%w %q: %v", ErrTopic, s, err)
	}
	return t, nil
}

// String returns the topic's text, with the DevEUI in lower case as
// ChirpStack writes it.
func (t Topic) String() string {
	kind, last := "event", string(t.Event)
	if t.Command != "" {
		kind, last = "command", t.Command
	}
	return "application/" + t.ApplicationID + "/device/" + t.DevEUI.Lower() + "/" + kind + "/" + last
}

// Validate checks that the topic is an event or a down command of an
// application with a UUID.
func (t Topic) Validate() error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrTopic, err)
	}
	return nil
}

func (t Topic) validate() error {
	if err := ValidateUUID(t.ApplicationID); err != nil {
		return fmt.Errorf("application ID: %w", err)
	}
	switch {
	case t.Event != "" && t.Command != "":
		return fmt.Errorf("both an event and a command")
	case t.Command != "" && t.Command != CommandDown:
		return fmt.Errorf("unknown command %q", t.Command)
	case t.Command == "" && !eventTypes[t.Event]:
		return fmt.Errorf("unknown event %q", t.Event)
	}
	return nil
}

// EventFilter returns the filter that subscribes to an application's
// events of one type, or of every type when event is empty; an empty
// application ID subscribes to every application's.
func EventFilter(applicationID string, event EventType) string {
	if applicationID == "" {
		applicationID = "+"
	}
	if event == "" {
		return "application/" + applicationID + "/device/+/event/+"
	}
	return "application/" + applicationID + "/device/+/event/" + string(event)
}

// CommandTopic returns the topic to publish a device's downlink command to.
func CommandTopic(applicationID string, devEUI connector.EUI64) (string, error) {
	t := Topic{ApplicationID: applicationID, DevEUI: devEUI, Command: CommandDown}
	if err := t.Validate(); err != nil {
		return "", err
	}
	return t.String(), nil
}

// ValidateUUID checks the canonical text of a UUID (8-4-4-4-12
// hexadecimal digits), the form of ChirpStack's application and tenant IDs.
func ValidateUUID(s string) error {
	if len(s) != 36 {
		return fmt.Errorf("%q is not a UUID", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("%q is not a UUID", s)
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return fmt.Errorf("%q is not a UUID", s)
			}
		}
	}
	return nil
}
