package connector_test

import (
	"fmt"

	"github.com/citymesh/citymesh/connector"
)

func ExampleDeduplicator() {
	d := connector.NewDeduplicator(connector.DedupeConfig{})
	dev, _ := connector.ParseEUI64("A84041000181C61F")
	addr, _ := connector.ParseDevAddr("260B1A2C")
	key := connector.UplinkKey{DevEUI: dev, DevAddr: addr, Session: connector.SessionID([]byte{0x01, 0x92}), FCnt: 1842}
	fmt.Println(d.Seen(key)) // through the first gateway
	fmt.Println(d.Seen(key)) // the same uplink through a second gateway
	key.FCnt++
	fmt.Println(d.Seen(key)) // the next uplink
	// Output:
	// false
	// true
	// false
}
