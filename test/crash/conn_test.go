package crash_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// Connection parameters shared by every test client.
const (
	// sessionExpiry is the Session Expiry Interval every client asks for:
	// a day, far longer than the test.
	sessionExpiry = 24 * 60 * 60
	// dialTimeout bounds the TCP connect; connackTimeout bounds the wait
	// for CONNACK after CONNECT.
	dialTimeout    = time.Second
	connackTimeout = 3 * time.Second
)

// mqttConn is one MQTT 5 network connection of a test client: a TCP socket
// with a packet reader and a locked, buffered writer. The session state lives
// in the client that owns the connection, not here, so it survives
// reconnects.
type mqttConn struct {
	nc  net.Conn
	r   *mqtt.Reader
	run uint16 // the broker run this connection went to (set by the owner)

	mu  sync.Mutex // guards w and buf
	w   *bufio.Writer
	buf []byte

	closeOnce sync.Once
	closed    chan struct{}
}

// dial connects to addr, sends CONNECT for a persistent session of client id
// (Clean Start 0, long Session Expiry Interval, keep alive off) and waits for
// CONNACK. It returns the connection and the CONNACK, or an error when the
// broker is unreachable, silent or refuses. The connection is closed when ctx
// ends.
func dial(ctx context.Context, addr, id string) (*mqttConn, *mqtt.Connack, error) {
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	c := &mqttConn{
		nc:     nc,
		r:      mqtt.NewReader(nc, 64<<10),
		w:      bufio.NewWriterSize(nc, 32<<10),
		closed: make(chan struct{}),
	}
	c.r.Version = mqtt.V5
	go func() {
		select {
		case <-ctx.Done():
			c.close()
		case <-c.closed:
		}
	}()
	connect := &mqtt.Connect{
		ProtocolName: "MQTT",
		Version:      mqtt.V5,
		CleanStart:   false,
		KeepAlive:    0, // a SIGKILLed broker's sockets are closed by its kernel, so no pings are needed
		ClientID:     id,
		Props:        mqtt.Properties{SessionExpiry: sessionExpiry},
	}
	if err := c.send(connect); err != nil {
		c.close()
		return nil, nil, fmt.Errorf("send CONNECT: %w", err)
	}
	nc.SetReadDeadline(time.Now().Add(connackTimeout))
	pkt, err := c.r.ReadPacket()
	nc.SetReadDeadline(time.Time{})
	if err != nil {
		c.close()
		return nil, nil, fmt.Errorf("read CONNACK: %w", err)
	}
	ack, ok := pkt.(*mqtt.Connack)
	if !ok {
		c.close()
		return nil, nil, fmt.Errorf("expected CONNACK, got %s", pkt.Type())
	}
	if ack.ReasonCode != mqtt.Success {
		c.close()
		return nil, nil, &refusedError{code: ack.ReasonCode}
	}
	return c, ack, nil
}

// refusedError is a CONNACK with an error reason code.
type refusedError struct{ code mqtt.ReasonCode }

// Error describes the refusal.
func (e *refusedError) Error() string {
	return fmt.Sprintf("CONNACK refused: %v (0x%02x)", e.code, byte(e.code))
}

// isRefused reports whether err is a CONNACK refusal.
func isRefused(err error) bool {
	var r *refusedError
	return errors.As(err, &r)
}

// send writes the packets in order and flushes them to the socket.
func (c *mqttConn) send(pkts ...mqtt.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pkts {
		var err error
		c.buf, err = p.AppendTo(c.buf[:0], mqtt.V5)
		if err != nil {
			return fmt.Errorf("encode %s: %w", p.Type(), err)
		}
		if _, err := c.w.Write(c.buf); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

// read returns the next packet from the broker. It and the byte slices in it
// are valid only until the next call.
func (c *mqttConn) read() (mqtt.Packet, error) {
	return c.r.ReadPacket()
}

// close closes the socket; it may be called any number of times.
func (c *mqttConn) close() {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.nc.Close()
	})
}

// backoff waits between reconnection attempts: 50 to 100 ms, or until ctx
// ends. It reports whether ctx is still live.
func backoff(ctx context.Context) bool {
	d := 50*time.Millisecond + rand.N(50*time.Millisecond)
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
