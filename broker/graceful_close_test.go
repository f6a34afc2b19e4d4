package broker_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/citymesh/citymesh/broker"
)

// When the server ends a connection on purpose, the packet that says why
// (DISCONNECT with a reason code, or a refusing CONNACK) must reach the
// client even when the client has sent more that the server will never read.
// Closing a socket with unread input makes the kernel send RST, which
// destroys what the client has not read yet; the server half-closes, drains
// and then closes instead. Packets are built and parsed with Paho's codec
// (paho.golang/packets), independent of citymesh's.
func TestServerEndsConnectionGracefully(t *testing.T) {
	connect := func(id string, props *packets.Properties) *packets.ControlPacket {
		cp := packets.NewControlPacket(packets.CONNECT)
		c := cp.Content.(*packets.Connect)
		c.ProtocolName, c.ProtocolVersion, c.ClientID, c.CleanStart, c.KeepAlive = "MQTT", 5, id, true, 30
		if props != nil {
			c.Properties = props
		}
		return cp
	}
	publish := func(qos byte, id uint16, payload []byte) *packets.ControlPacket {
		cp := packets.NewControlPacket(packets.PUBLISH)
		p := cp.Content.(*packets.Publish)
		p.Topic, p.QoS, p.PacketID, p.Payload = "graceful/t", qos, id, payload
		p.Properties = &packets.Properties{}
		return cp
	}
	// junk is what the client sends after the packet that ends the
	// connection, and the server never reads: 2 MiB of QoS 0 publishes.
	junk := func() []*packets.ControlPacket {
		var ps []*packets.ControlPacket
		for range 32 {
			ps = append(ps, publish(0, 0, bytes.Repeat([]byte("x"), 64<<10)))
		}
		return ps
	}
	cases := []struct {
		name   string
		opts   broker.Options
		send   []*packets.ControlPacket
		final  byte // DISCONNECT or CONNACK
		reason byte
	}{
		{
			name: "receive maximum exceeded",
			opts: broker.Options{ReceiveMaximum: 2},
			send: append([]*packets.ControlPacket{connect("rm", nil),
				publish(2, 1, []byte("a")), publish(2, 2, []byte("b")), publish(2, 3, []byte("c"))}, junk()...),
			final: packets.DISCONNECT, reason: 0x93, // [MQTT-3.3.4-9]
		},
		{
			name:  "second CONNECT",
			send:  append([]*packets.ControlPacket{connect("twice", nil), connect("twice", nil)}, junk()...),
			final: packets.DISCONNECT, reason: 0x82, // [MQTT-3.1.0-2]
		},
		{
			name:  "refused CONNACK",
			send:  append([]*packets.ControlPacket{connect("auth", &packets.Properties{AuthMethod: "SCRAM-SHA-1"})}, junk()...),
			final: packets.CONNACK, reason: 0x8C, // [MQTT-4.12.0-1]
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for run := range 5 {
				b, addr := startBroker(t, tc.opts)
				before := b.Stats().Disconnects
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				// Write from another goroutine: the server stops reading
				// partway, and the rest stays in the kernel's buffers. The
				// packets are encoded here, as WriteTo changes the packet
				// and the runs share them.
				var wire [][]byte
				for _, p := range tc.send {
					var buf bytes.Buffer
					if _, err := p.WriteTo(&buf); err != nil {
						t.Fatal(err)
					}
					wire = append(wire, buf.Bytes())
				}
				written := make(chan struct{})
				go func() {
					defer close(written)
					for _, b := range wire {
						if _, err := nc.Write(b); err != nil {
							return
						}
					}
				}()
				// The server ends the connection before the client reads
				// anything.
				waitFor(t, "the server to end the connection", func() bool { return b.Stats().Disconnects > before })
				nc.SetReadDeadline(time.Now().Add(wait))
				var got []*packets.ControlPacket
				for {
					p, err := packets.ReadPacket(nc)
					if err != nil {
						if errors.Is(err, syscall.ECONNRESET) {
							t.Fatalf("run %d: connection reset after %d packets instead of the final %s and end of file", run, len(got), packets.NewControlPacket(tc.final).PacketType())
						}
						if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
							t.Fatalf("run %d: read: %v", run, err)
						}
						break
					}
					got = append(got, p)
				}
				if len(got) == 0 {
					t.Fatalf("run %d: nothing received", run)
				}
				last := got[len(got)-1]
				if last.Type != tc.final {
					t.Fatalf("run %d: last packet %s, want %s", run, last.PacketType(), packets.NewControlPacket(tc.final).PacketType())
				}
				var code byte
				switch p := last.Content.(type) {
				case *packets.Disconnect:
					code = p.ReasonCode
				case *packets.Connack:
					code = p.ReasonCode
				}
				if code != tc.reason {
					t.Fatalf("run %d: reason code %#x, want %#x", run, code, tc.reason)
				}
				nc.Close()
				<-written
			}
		})
	}
}
