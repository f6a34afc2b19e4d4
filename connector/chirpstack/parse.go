package chirpstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/pbjson"
)

// Errors of the parsers. Each error returned wraps one of them.
var (
	// ErrSyntax is a payload that is not JSON, or not a JSON object.
	ErrSyntax = errors.New("chirpstack: malformed JSON")
	// ErrInvalid is JSON that is not a valid event or command.
	ErrInvalid = errors.New("chirpstack: invalid message")
	// ErrTopic is a topic that is not one of the integration.
	ErrTopic = errors.New("chirpstack: invalid topic")
	// ErrMismatch is an event whose device or application is not the one
	// its topic names.
	ErrMismatch = errors.New("chirpstack: event does not match its topic")
)

// Event is one event of the integration: its topic, and the one event
// its topic's type names.
type Event struct {
	Topic       Topic
	Up          *UplinkEvent
	Status      *StatusEvent
	Join        *JoinEvent
	Ack         *AckEvent
	TxAck       *TxAckEvent
	Log         *LogEvent
	Location    *LocationEvent
	Integration *IntegrationEvent
}

// Decode parses an event received on topic, and checks that its device
// and application are the ones the topic names.
func Decode(topic string, payload []byte) (*Event, error) {
	t, err := ParseTopic(topic)
	if err != nil {
		return nil, err
	}
	if t.Command != "" {
		return nil, fmt.Errorf("%w: %s is a command, published by the application", ErrTopic, topic)
	}
	e := &Event{Topic: t}
	var info *DeviceInfo
	switch t.Event {
	case EventUp:
		e.Up, err = ParseUplink(payload)
		if err == nil {
			info = &e.Up.DeviceInfo
		}
	case EventStatus:
		e.Status, err = parse[StatusEvent](payload)
		if err == nil {
			info = &e.Status.DeviceInfo
		}
	case EventJoin:
		e.Join, err = parse[JoinEvent](payload)
		if err == nil {
			info = &e.Join.DeviceInfo
		}
	case EventAck:
		e.Ack, err = parse[AckEvent](payload)
		if err == nil {
			info = &e.Ack.DeviceInfo
		}
	case EventTxAck:
		e.TxAck, err = parse[TxAckEvent](payload)
		if err == nil {
			info = &e.TxAck.DeviceInfo
		}
	case EventLog:
		e.Log, err = parse[LogEvent](payload)
		if err == nil {
			info = &e.Log.DeviceInfo
		}
	case EventLocation:
		e.Location, err = parse[LocationEvent](payload)
		if err == nil {
			info = &e.Location.DeviceInfo
		}
	case EventIntegration:
		e.Integration, err = parse[IntegrationEvent](payload)
		if err == nil {
			info = &e.Integration.DeviceInfo
		}
	}
	if err != nil {
		return nil, err
	}
	if err := info.validate(); err != nil {
		return nil, err
	}
	if connector.EUI64(info.DevEUI) != t.DevEUI {
		return nil, fmt.Errorf("%w: topic DevEUI %s, event DevEUI %s", ErrMismatch, t.DevEUI.Lower(), info.DevEUI)
	}
	if info.ApplicationID != t.ApplicationID {
		return nil, fmt.Errorf("%w: topic application %s, event application %s", ErrMismatch, t.ApplicationID, info.ApplicationID)
	}
	return e, nil
}

// DeviceInfo returns the device information of the event that is set.
func (e *Event) DeviceInfo() *DeviceInfo {
	switch {
	case e.Up != nil:
		return &e.Up.DeviceInfo
	case e.Status != nil:
		return &e.Status.DeviceInfo
	case e.Join != nil:
		return &e.Join.DeviceInfo
	case e.Ack != nil:
		return &e.Ack.DeviceInfo
	case e.TxAck != nil:
		return &e.TxAck.DeviceInfo
	case e.Log != nil:
		return &e.Log.DeviceInfo
	case e.Location != nil:
		return &e.Location.DeviceInfo
	case e.Integration != nil:
		return &e.Integration.DeviceInfo
	}
	return nil
}

// ParseUplink parses an "up" event. It checks that the device has a
// DevEUI and an application, and that the FPort is at most 255.
func ParseUplink(payload []byte) (*UplinkEvent, error) {
	up := new(UplinkEvent)
	if err := jsonv2.Unmarshal(payload, up); err != nil {
		return nil, jsonError(err)
	}
	if err := up.DeviceInfo.validate(); err != nil {
		return nil, err
	}
	if up.FPort > 255 {
		return nil, fmt.Errorf("%w: fPort %d, want at most 255", ErrInvalid, up.FPort)
	}
	return up, nil
}

// ParseStatus parses a "status" event.
func ParseStatus(payload []byte) (*StatusEvent, error) { return parseChecked[StatusEvent](payload) }

// ParseJoin parses a "join" event.
func ParseJoin(payload []byte) (*JoinEvent, error) { return parseChecked[JoinEvent](payload) }

// ParseAck parses an "ack" event.
func ParseAck(payload []byte) (*AckEvent, error) { return parseChecked[AckEvent](payload) }

// ParseTxAck parses a "txack" event.
func ParseTxAck(payload []byte) (*TxAckEvent, error) { return parseChecked[TxAckEvent](payload) }

// ParseLog parses a "log" event.
func ParseLog(payload []byte) (*LogEvent, error) { return parseChecked[LogEvent](payload) }

// ParseLocation parses a "location" event.
func ParseLocation(payload []byte) (*LocationEvent, error) {
	return parseChecked[LocationEvent](payload)
}

// ParseIntegration parses an "integration" event.
func ParseIntegration(payload []byte) (*IntegrationEvent, error) {
	return parseChecked[IntegrationEvent](payload)
}

// event is what every event type has.
type event interface {
	StatusEvent | JoinEvent | AckEvent | TxAckEvent | LogEvent | LocationEvent | IntegrationEvent
}

// parse reads an event of the rarer types through jsonv2's reflection.
func parse[T event](payload []byte) (*T, error) {
	v := new(T)
	if err := jsonv2.Unmarshal(payload, v, jsonv2.RejectUnknownMembers(false)); err != nil {
		return nil, jsonError(err)
	}
	return v, nil
}

func parseChecked[T event](payload []byte) (*T, error) {
	v, err := parse[T](payload)
	if err != nil {
		return nil, err
	}
	var info *DeviceInfo
	switch e := any(v).(type) {
	case *StatusEvent:
		info = &e.DeviceInfo
	case *JoinEvent:
		info = &e.DeviceInfo
	case *AckEvent:
		info = &e.DeviceInfo
	case *TxAckEvent:
		info = &e.DeviceInfo
	case *LogEvent:
		info = &e.DeviceInfo
	case *LocationEvent:
		info = &e.DeviceInfo
	case *IntegrationEvent:
		info = &e.DeviceInfo
	}
	if err := info.validate(); err != nil {
		return nil, err
	}
	return v, nil
}

func (info *DeviceInfo) validate() error {
	if connector.EUI64(info.DevEUI).IsZero() {
		return fmt.Errorf("%w: deviceInfo.devEui missing", ErrInvalid)
	}
	if info.ApplicationID == "" {
		return fmt.Errorf("%w: deviceInfo.applicationId missing", ErrInvalid)
	}
	return nil
}

// DedupeKey returns the key under which the uplink is deduplicated. The
// events carry no session key ID: the DevAddr stands for the session.
func (up *UplinkEvent) DedupeKey() connector.UplinkKey {
	return connector.UplinkKey{
		DevEUI:  connector.EUI64(up.DeviceInfo.DevEUI),
		DevAddr: connector.DevAddr(up.DevAddr),
		FCnt:    up.FCnt,
	}
}

// MarshalEvent writes the event that is set as ChirpStack writes it: every
// field of the event present, even when zero.
func MarshalEvent(e *Event) ([]byte, error) {
	switch {
	case e.Up != nil:
		up := *e.Up
		if up.RxInfo == nil {
			up.RxInfo = []UplinkRxInfo{}
		}
		return json.Marshal(&up)
	case e.Status != nil:
		return json.Marshal(e.Status)
	case e.Join != nil:
		return json.Marshal(e.Join)
	case e.Ack != nil:
		return json.Marshal(e.Ack)
	case e.TxAck != nil:
		return json.Marshal(e.TxAck)
	case e.Log != nil:
		return json.Marshal(e.Log)
	case e.Location != nil:
		return json.Marshal(e.Location)
	case e.Integration != nil:
		return json.Marshal(e.Integration)
	}
	return nil, fmt.Errorf("%w: no event set", ErrInvalid)
}

// jsonError wraps an error of jsonv2 in ErrSyntax or ErrInvalid.
func jsonError(err error) error {
	var syn *jsontext.SyntacticError
	switch {
	case errors.Is(err, ErrSyntax), errors.Is(err, ErrInvalid):
		return err
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	case errors.Is(err, pbjson.ErrValue):
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var sem *jsonv2.SemanticError
	if errors.As(err, &sem) && sem.JSONPointer == "" && sem.JSONKind != '{' && sem.JSONKind != 'n' && sem.JSONKind != 0 {
		return fmt.Errorf("%w: want a JSON object, have %s", ErrSyntax, sem.JSONKind)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}
