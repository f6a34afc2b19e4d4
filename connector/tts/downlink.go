package tts

import (
	"encoding/json"
	"fmt"

	"github.com/citymesh/citymesh/connector/pbjson"
)

// The downlink priorities (TxSchedulePriority), lowest first.
const (
	PriorityLowest      pbjson.Enum = "LOWEST"
	PriorityLow         pbjson.Enum = "LOW"
	PriorityBelowNormal pbjson.Enum = "BELOW_NORMAL"
	PriorityNormal      pbjson.Enum = "NORMAL"
	PriorityAboveNormal pbjson.Enum = "ABOVE_NORMAL"
	PriorityHigh        pbjson.Enum = "HIGH"
	PriorityHighest     pbjson.Enum = "HIGHEST"
)

// priorities maps the accepted priority texts (names, and numbers as
// protobuf JSON allows) to their names.
var priorities = map[pbjson.Enum]pbjson.Enum{
	"": "", "LOWEST": "LOWEST", "LOW": "LOW", "BELOW_NORMAL": "BELOW_NORMAL", "NORMAL": "NORMAL",
	"ABOVE_NORMAL": "ABOVE_NORMAL", "HIGH": "HIGH", "HIGHEST": "HIGHEST",
	"0": "LOWEST", "1": "LOW", "2": "BELOW_NORMAL", "3": "NORMAL", "4": "ABOVE_NORMAL", "5": "HIGH", "6": "HIGHEST",
}

// MaxDownlinks is the most downlinks one queue request may carry
// (DownlinkQueueRequest.downlinks, max_items 100000).
const MaxDownlinks = 100000

// DownlinkQueue is the body of a down/push or down/replace request: the
// downlinks to append to the device's queue, or to replace it with.
type DownlinkQueue struct {
	Downlinks []Downlink `json:"downlinks"`
}

// NewDownlink returns a downlink of payload on fPort at NORMAL priority,
// unconfirmed.
func NewDownlink(fPort uint8, payload []byte) Downlink {
	return Downlink{FPort: uint32(fPort), FRMPayload: payload, Priority: PriorityNormal}
}

// MarshalDownlinks writes the body of a down/push or down/replace request:
//
//	{"downlinks":[{"f_port":10,"frm_payload":"AQI=","priority":"NORMAL"}]}
//
// It checks each downlink first (Validate). A false confirmed is left out,
// as the stack itself writes it.
func MarshalDownlinks(downlinks ...Downlink) ([]byte, error) {
	if len(downlinks) == 0 || len(downlinks) > MaxDownlinks {
		return nil, fmt.Errorf("%w: %d downlinks, want 1 to %d", ErrInvalid, len(downlinks), MaxDownlinks)
	}
	for i := range downlinks {
		if err := downlinks[i].Validate(); err != nil {
			return nil, fmt.Errorf("downlink %d: %w", i, err)
		}
	}
	return json.Marshal(DownlinkQueue{Downlinks: downlinks})
}

// ParseDownlinks parses the body of a down/push or down/replace request,
// as the application server would.
func ParseDownlinks(payload []byte) ([]Downlink, error) {
	var q DownlinkQueue
	if err := json.Unmarshal(payload, &q); err != nil {
		return nil, jsonError(err)
	}
	if len(q.Downlinks) > MaxDownlinks {
		return nil, fmt.Errorf("%w: %d downlinks, want at most %d", ErrInvalid, len(q.Downlinks), MaxDownlinks)
	}
	for i := range q.Downlinks {
		if err := q.Downlinks[i].Validate(); err != nil {
			return nil, fmt.Errorf("downlink %d: %w", i, err)
		}
		q.Downlinks[i].Priority = priorities[q.Downlinks[i].Priority]
	}
	return q.Downlinks, nil
}

// Validate checks a downlink a client queues: a payload as bytes or as a
// decoded object (for the device's encoder), not both; an FPort of 1 to 255
// except 224 with bytes (an encoder may choose the port of an object); at
// most 255 bytes; a known priority.
func (d *Downlink) Validate() error {
	if d.FRMPayload != nil && d.DecodedPayload != nil {
		return fmt.Errorf("%w: both frm_payload and decoded_payload", ErrInvalid)
	}
	if d.DecodedPayload == nil && d.FPort == 0 {
		return fmt.Errorf("%w: f_port 0 is for MAC commands; want 1 to 255", ErrInvalid)
	}
	if err := validFPort(d.FPort, "downlink"); err != nil {
		return err
	}
	if len(d.FRMPayload) > 255 {
		return fmt.Errorf("%w: frm_payload of %d bytes, want at most 255", ErrInvalid, len(d.FRMPayload))
	}
	if _, ok := priorities[d.Priority]; !ok {
		return fmt.Errorf("%w: unknown priority %q", ErrInvalid, d.Priority)
	}
	return nil
}

// DownlinkTopic returns the topic to publish a downlink queue request to:
// down/push appends to the device's queue, down/replace replaces it.
func DownlinkTopic(applicationID, tenantID, deviceID string, replace bool) (string, error) {
	t := Topic{ApplicationID: applicationID, TenantID: tenantID, DeviceID: deviceID, Event: EventDownPush}
	if replace {
		t.Event = EventDownReplace
	}
	if err := t.Validate(); err != nil {
		return "", err
	}
	return t.String(), nil
}
