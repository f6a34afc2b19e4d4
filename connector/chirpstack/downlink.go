package chirpstack

import (
	"encoding/json"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/pbjson"
)

// DownlinkCommand enqueues a downlink for a device (integration
// DownlinkCommand), published to .../command/down.
type DownlinkCommand struct {
	// ID is the queue item's UUID; empty lets ChirpStack choose one.
	ID string `json:"id,omitempty"`
	// DevEUI is the device's EUI.
	DevEUI EUI64 `json:"devEui"`
	// Confirmed asks the device to acknowledge the downlink.
	Confirmed bool `json:"confirmed"`
	// FPort is 1 to 255.
	FPort uint32 `json:"fPort"`
	// Data is the payload; or
	Data pbjson.Bytes `json:"data,omitempty"`
	// Object is the payload as an object for the device profile's codec.
	Object map[string]any `json:"object,omitempty"`
	// ExpiresAt is when an unsent downlink is dropped from the queue.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// NewDownlinkCommand returns an unconfirmed downlink of data on fPort.
func NewDownlinkCommand(devEUI connector.EUI64, fPort uint8, data []byte) DownlinkCommand {
	return DownlinkCommand{DevEUI: EUI64(devEUI), FPort: uint32(fPort), Data: data}
}

// Validate checks a command: a DevEUI, an FPort of 1 to 255, and the
// payload as bytes or as an object, not both.
func (c *DownlinkCommand) Validate() error {
	switch {
	case connector.EUI64(c.DevEUI).IsZero():
		return fmt.Errorf("%w: devEui missing", ErrInvalid)
	case c.FPort == 0 || c.FPort > 255:
		return fmt.Errorf("%w: fPort %d, want 1 to 255", ErrInvalid, c.FPort)
	case c.Data != nil && c.Object != nil:
		return fmt.Errorf("%w: both data and object", ErrInvalid)
	case len(c.Data) > 255:
		return fmt.Errorf("%w: data of %d bytes, want at most 255", ErrInvalid, len(c.Data))
	case c.ID != "":
		if err := ValidateUUID(c.ID); err != nil {
			return fmt.Errorf("%w: id: %v", ErrInvalid, err)
		}
	}
	return nil
}

// MarshalDownlink writes a downlink command:
//
//	{"devEui":"0101010101010101","confirmed":false,"fPort":10,"data":"AQI="}
func MarshalDownlink(c DownlinkCommand) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// ParseDownlink parses a downlink command, as ChirpStack would.
func ParseDownlink(payload []byte) (*DownlinkCommand, error) {
	c := new(DownlinkCommand)
	if err := jsonv2.Unmarshal(payload, c); err != nil {
		return nil, jsonError(err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
