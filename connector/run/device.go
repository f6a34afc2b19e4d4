package run

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/event"
)

// device is the runtime's state of one device of the campus model that a
// configured connector serves. The set of devices is fixed when the
// runtime is created, so per-device metrics have a bounded number of
// series.
type device struct {
	dev    *campus.Device
	up     *upstream // the connector of the device's application
	eui    connector.EUI64
	codec  *codec.Codec // nil when the codec directory has none for its type
	worker int          // the worker that handles all of its messages, in order

	offlineAfter time.Duration
	// The topics of its events, and their text.
	measurementTopic, uplinkTopic, statusTopic event.Topic
	measurement, uplink, status                string

	stats deviceStats

	live liveEntry // guarded by liveness.mu

	mu struct {
		sync.Mutex
		since  time.Time // the last uplink, or when the runtime started
		heard  bool      // since is an uplink's time
		state  event.State
		reason string // of the last status published
		// battery is the battery point's last value, for statuses.
		battery *event.Value
		// statusBattery is the battery level (%) of the last
		// device_status status, nil if it had none.
		statusBattery *float64
	}
}

// deviceStats are the counters of one device.
type deviceStats struct {
	received  atomic.Uint64
	duplicate atomic.Uint64
	decoded   [numVias]atomic.Uint64
	failed    [numReasons]atomic.Uint64
}

// How an uplink's values were obtained.
const (
	viaServer     = iota // the network server's decoded payload (decoded_payload, object)
	viaCodec             // the device type's codec, run by the connector on the raw payload
	viaNormalized        // The Things Stack's normalized payload
	numVias
)

var viaNames = [numVias]string{"server", "codec", "normalized"}

// Why a message failed.
const (
	reasonParse         = iota // not a message of the network server's format
	reasonUnknownDevice        // a device the campus model does not have in the application
	reasonCodec                // no values: the codec failed, or nothing could decode the payload
	reasonPublish              // an event could not be published on the bus
	numReasons
)

var reasonNames = [numReasons]string{"parse", "unknown_device", "codec", "publish"}

// deadline returns when d is due to be declared offline, and false when
// it is offline already.
func (d *device) deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.state == event.Offline {
		return time.Time{}, false
	}
	return d.mu.since.Add(d.offlineAfter), true
}
