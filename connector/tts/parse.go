package tts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/citymesh/citymesh/connector"
)

// Errors of the parsers. Each error returned wraps one of them.
var (
	// ErrSyntax is a payload that is not JSON, or not a JSON object.
	ErrSyntax = errors.New("tts: malformed JSON")
	// ErrInvalid is JSON that is not a valid message: a field of the
	// wrong type, a missing identifier, no message kind or more than one.
	ErrInvalid = errors.New("tts: invalid message")
	// ErrTopic is a topic that is not one of the MQTT API.
	ErrTopic = errors.New("tts: invalid topic")
	// ErrMismatch is a message whose device, application or kind is not
	// the one its topic names.
	ErrMismatch = errors.New("tts: message does not match its topic")
)

// Parse parses an upstream message. It checks that the device and
// application IDs are present and valid and that exactly one message kind
// is set, and it copies an older release's settings.coding_rate into
// settings.data_rate.lora.coding_rate.
func Parse(payload []byte) (*Message, error) {
	m := new(Message)
	if err := jsonv2.Unmarshal(payload, m); err != nil {
		return nil, jsonError(err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.normalize()
	return m, nil
}

// Decode parses an upstream message received on topic, and checks that
// the topic is an upstream topic of the MQTT API and that the message is
// of the kind, device and application the topic names.
func Decode(topic string, payload []byte) (Topic, *Message, error) {
	t, err := ParseTopic(topic)
	if err != nil {
		return Topic{}, nil, err
	}
	if !t.Event.Upstream() {
		return t, nil, fmt.Errorf("%w: %s is published by clients, not by the application server", ErrTopic, t.Event)
	}
	m, err := Parse(payload)
	if err != nil {
		return t, nil, err
	}
	switch {
	case m.Event() != t.Event:
		return t, nil, fmt.Errorf("%w: topic %s carries %s", ErrMismatch, t.Event, m.Event())
	case m.EndDeviceIDs.DeviceID != t.DeviceID:
		return t, nil, fmt.Errorf("%w: topic device %q, message device %q", ErrMismatch, t.DeviceID, m.EndDeviceIDs.DeviceID)
	case m.EndDeviceIDs.ApplicationIDs.ApplicationID != t.ApplicationID:
		return t, nil, fmt.Errorf("%w: topic application %q, message application %q", ErrMismatch, t.ApplicationID, m.EndDeviceIDs.ApplicationIDs.ApplicationID)
	}
	return t, m, nil
}

// Marshal writes m as The Things Stack writes it: snake_case names, empty
// fields left out, 64-bit integers as strings, identifiers as upper-case
// hexadecimal. One difference that no reader sees: a timestamp's fraction
// is written without trailing zeros (".53077218Z"), where the stack writes
// 3, 6 or 9 digits (".530772180Z"); both are the same instant.
func Marshal(m *Message) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// Event returns the event of the message's kind, or "" when no kind is
// set.
func (m *Message) Event() Event {
	switch {
	case m.Uplink != nil:
		return EventUp
	case m.UplinkNormalized != nil:
		return EventUpNormalized
	case m.JoinAccept != nil:
		return EventJoin
	case m.DownlinkAck != nil:
		return EventDownAck
	case m.DownlinkNack != nil:
		return EventDownNack
	case m.DownlinkSent != nil:
		return EventDownSent
	case m.DownlinkFailed != nil:
		return EventDownFailed
	case m.DownlinkQueued != nil:
		return EventDownQueued
	case m.DownlinkQueueInvalidated != nil:
		return EventDownInvalidated
	case m.LocationSolved != nil:
		return EventLocationSolved
	case m.ServiceData != nil:
		return EventServiceData
	}
	return ""
}

// kinds counts the message kinds that are set.
func (m *Message) kinds() int {
	n := 0
	for _, set := range []bool{
		m.Uplink != nil, m.UplinkNormalized != nil, m.JoinAccept != nil,
		m.DownlinkAck != nil, m.DownlinkNack != nil, m.DownlinkSent != nil,
		m.DownlinkFailed != nil, m.DownlinkQueued != nil,
		m.DownlinkQueueInvalidated != nil, m.LocationSolved != nil, m.ServiceData != nil,
	} {
		if set {
			n++
		}
	}
	return n
}

// Topic returns the topic m is published on, for a tenant (empty on an
// open-source deployment).
func (m *Message) Topic(tenantID string) Topic {
	return Topic{
		ApplicationID: m.EndDeviceIDs.ApplicationIDs.ApplicationID,
		TenantID:      tenantID,
		DeviceID:      m.EndDeviceIDs.DeviceID,
		Event:         m.Event(),
	}
}

// DedupeKey returns the key under which the uplink is deduplicated, and
// false when m is not an uplink or its device has no DevEUI.
func (m *Message) DedupeKey() (connector.UplinkKey, bool) {
	if m.Uplink == nil || m.EndDeviceIDs.DevEUI.IsZero() {
		return connector.UplinkKey{}, false
	}
	return connector.UplinkKey{
		DevEUI:  m.EndDeviceIDs.DevEUI,
		DevAddr: m.EndDeviceIDs.DevAddr,
		Session: connector.SessionID(m.Uplink.SessionKeyID),
		FCnt:    m.Uplink.FCnt,
	}, true
}

func (m *Message) validate() error {
	if err := ValidateID(m.EndDeviceIDs.DeviceID); err != nil {
		return fmt.Errorf("%w: end_device_ids.device_id: %v", ErrInvalid, err)
	}
	if err := ValidateID(m.EndDeviceIDs.ApplicationIDs.ApplicationID); err != nil {
		return fmt.Errorf("%w: end_device_ids.application_ids.application_id: %v", ErrInvalid, err)
	}
	switch n := m.kinds(); n {
	case 0:
		return fmt.Errorf("%w: no message kind (uplink_message, join_accept, ...)", ErrInvalid)
	case 1:
	default:
		return fmt.Errorf("%w: %d message kinds, want one", ErrInvalid, n)
	}
	if up := m.Uplink; up != nil {
		if err := validFPort(up.FPort, "uplink_message"); err != nil {
			return err
		}
	}
	if up := m.UplinkNormalized; up != nil {
		if err := validFPort(up.FPort, "uplink_normalized"); err != nil {
			return err
		}
	}
	return nil
}

// validFPort checks an FPort as the stack's validation does: at most 255,
// not 224 (the LoRaWAN test port).
func validFPort(p uint32, where string) error {
	if p > 255 || p == 224 {
		return fmt.Errorf("%w: %s.f_port %d: want 0 to 255 except 224", ErrInvalid, where, p)
	}
	return nil
}

// normalize copies an older release's settings.coding_rate into
// data_rate.lora, so that readers find it in one place.
func (m *Message) normalize() {
	var s *TxSettings
	switch {
	case m.Uplink != nil:
		s = &m.Uplink.Settings
	case m.UplinkNormalized != nil:
		s = &m.UplinkNormalized.Settings
	default:
		return
	}
	if s.CodingRate != "" && s.DataRate.LoRa != nil && s.DataRate.LoRa.CodingRate == "" {
		s.DataRate.LoRa.CodingRate = s.CodingRate
	}
}

// jsonError wraps an error of encoding/json or jsonv2 in ErrSyntax or
// ErrInvalid.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var syn2 *jsontext.SyntacticError
	switch {
	case errors.Is(err, ErrSyntax), errors.Is(err, ErrInvalid):
		return err
	case errors.As(err, &syn), errors.As(err, &syn2), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Errorf("%w: want a JSON object, have %s", ErrSyntax, typ.Value)
		}
		return fmt.Errorf("%w: %s: want %s, have %s", ErrInvalid, typ.Field, typ.Type, typ.Value)
	case err.Error() == "unexpected end of JSON input":
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}
