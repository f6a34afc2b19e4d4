package broker_test

import (
	"testing"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
)

// TestHostileEveryPacketType sends a malformed packet of every control
// packet type after CONNECT: each ends only its own connection, with the
// reason code the specification gives (MQTT 5: 0x81 Malformed Packet or
// 0x82 Protocol Error in DISCONNECT [MQTT-4.13.1-1]; 3.1.1: the connection
// is closed), and another pair of clients keeps working.
func TestHostileEveryPacketType(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	check := healthyPair(t, addr)
	tests := []struct {
		name string
		v    byte
		hex  string
		want int // DISCONNECT reason code, -1 for a plain close
	}{
		{"PUBLISH: topic length past the end", mqtt.V5, "30 03 00ff61", 0x81},
		{"PUBLISH: property length past the end", mqtt.V5, "30 04 000161 7f", 0x81},
		{"PUBACK: reserved flags", mqtt.V5, "42 02 0001", 0x81},
		{"PUBACK: truncated", mqtt.V5, "40 01 00", 0x81},
		{"PUBREC: packet id 0", mqtt.V5, "50 02 0000", 0x82},
		{"PUBREL: wrong flags", mqtt.V5, "60 02 0001", 0x81},
		{"PUBREL: bad property length", mqtt.V5, "62 04 0001 00 09", 0x81},
		{"PUBCOMP: property length past the end", mqtt.V5, "70 04 0001 00 05", 0x81},
		{"SUBSCRIBE: wrong flags", mqtt.V5, "80 06 0001 00 0001 61", 0x81},
		{"SUBSCRIBE: QoS 3", mqtt.V5, "82 07 0001 00 0001 61 03", 0x81},
		{"SUBSCRIBE: reserved option bits", mqtt.V5, "82 07 0001 00 0001 61 c0", 0x81},
		{"SUBSCRIBE: retain handling 3", mqtt.V5, "82 07 0001 00 0001 61 30", 0x82}, // [MQTT-3.8.3-5]: a Protocol Error
		{"SUBSCRIBE: filter length past the end", mqtt.V5, "82 06 0001 00 0005 61", 0x81},
		{"UNSUBSCRIBE: no filters", mqtt.V5, "a2 03 0001 00", 0x82},
		{"UNSUBSCRIBE: wrong flags", mqtt.V5, "a0 06 0001 00 0001 61", 0x81},
		{"PINGREQ: with a body", mqtt.V5, "c0 01 00", 0x81},
		{"PINGRESP from a client", mqtt.V5, "d0 00", 0x82},
		{"DISCONNECT: reserved flags", mqtt.V5, "e1 00", 0x81},
		{"DISCONNECT: bad property", mqtt.V5, "e0 03 00 01 26", 0x81},
		{"SUBACK from a client", mqtt.V5, "90 04 0001 00 00", 0x82},
		{"UNSUBACK from a client", mqtt.V5, "b0 04 0001 00 00", 0x82},
		{"type 0 (reserved)", mqtt.V5, "00 00", 0x81},
		{"AUTH: truncated properties", mqtt.V5, "f0 02 18 05", 0x81},
		{"3.1.1: PUBREL with wrong flags", mqtt.V311, "60 02 0001", -1},
		{"3.1.1: SUBSCRIBE QoS 3", mqtt.V311, "82 06 0001 0001 61 03", -1},
		{"3.1.1: UNSUBSCRIBE without filters", mqtt.V311, "a2 02 0001", -1},
		{"3.1.1: PINGREQ with a body", mqtt.V311, "c0 01 00", -1},
		{"3.1.1: AUTH (no such packet)", mqtt.V311, "f0 00", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.connect(&mqtt.Connect{Version: tc.v, CleanStart: true, ClientID: "hostile"})
			c.write(unhex(t, tc.hex))
			if got := c.expectDisconnect(); got != tc.want {
				t.Fatalf("got %d (0x%02X), want 0x%02X", got, got, tc.want)
			}
			check()
		})
	}
}

// TestHostileConnect sends malformed CONNECT packets: each is refused
// (MQTT 5: CONNACK with the reason code where the version is known,
// [MQTT-3.2.2-7]; otherwise closed) and the broker goes on.
func TestHostileConnect(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	check := healthyPair(t, addr)
	tests := []struct {
		name string
		hex  string
	}{
		{"wrong protocol name", "10 0f 0004 4d515458 05 02 003c 00 0001 63 00"},
		{"reserved connect flag", "10 0d 0004 4d515454 05 03 003c 00 0001 63"},
		{"will QoS 3", "10 13 0004 4d515454 05 1e 003c 00 0001 63 00 0001 74 0000"},
		{"password without user name (3.1.1)", "10 0f 0004 4d515454 04 42 003c 0001 63 0001 70"},
		{"client id with invalid UTF-8", "10 0d 0004 4d515454 05 02 003c 00 0001 ff"},
		{"remaining length longer than the packet", "10 7f 0004 4d515454 05 02 003c 00"},
		{"protocol level 7", "10 0d 0004 4d515454 07 02 003c 00 0001 63"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.write(unhex(t, tc.hex))
			for {
				p, err := c.readErr(wait)
				if err != nil {
					break // closed
				}
				if a, ok := p.(*mqtt.Connack); ok && a.ReasonCode == 0 {
					t.Fatal("a malformed CONNECT was accepted")
				}
			}
			check()
		})
	}
}
