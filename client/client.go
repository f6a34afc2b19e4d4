// Package client is a small, fast MQTT 3.1.1 and 5.0 client built on package
// mqtt. The citymesh command line tools (pub, sub, bench) use it; it
// pipelines QoS 1 and 2 publishes up to the server's Receive Maximum and
// batches writes, so a load generator is not limited by its client.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/citymesh/citymesh/mqtt"
)

// Options configures a connection. The zero value connects to
// localhost:1883 with MQTT 3.1.1, a clean session and a server-assigned
// client identifier (MQTT 5) or a generated one (3.1.1).
type Options struct {
	// Addr is host:port, mqtt://host:port, tcp://host:port or
	// ws://host:port/path for MQTT over WebSocket.
	Addr string
	// ClientID identifies the client; "" lets the server assign one (MQTT 5)
	// or, for 3.1.1, a random one is generated.
	ClientID string
	// Version is mqtt.V311 (default) or mqtt.V5.
	Version byte
	// CleanStart starts a new session (Clean Session in 3.1.1).
	CleanStart bool
	// KeepAlive is the keep alive interval; 0 means 60 s, negative disables.
	KeepAlive time.Duration
	// Username and Password authenticate the client when set.
	Username    string
	Password    []byte
	HasPassword bool
	// Will is published by the server if the connection ends abnormally.
	Will *mqtt.Will
	// Props are the MQTT 5 CONNECT properties (Session Expiry Interval,
	// Receive Maximum, Maximum Packet Size, Topic Alias Maximum, user
	// properties, ...).
	Props mqtt.Properties
	// OnMessage is called for every PUBLISH received, in order, on the
	// client's reader goroutine. The packet and its slices are valid only
	// during the call.
	OnMessage func(p *mqtt.Publish)
	// OnClose is called once when the connection ends, with the reason.
	OnClose func(err error)
	// ReadBufferSize and WriteBufferSize size the connection's buffers;
	// defaults 16 KiB and 32 KiB. Small buffers suit many idle connections.
	ReadBufferSize, WriteBufferSize int
	// ConnectTimeout bounds dialing and the CONNECT/CONNACK exchange when ctx
	// has no deadline. Default 10 s.
	ConnectTimeout time.Duration
}

// ServerError is a refusal by the server, with its reason code.
type ServerError struct {
	Packet mqtt.PacketType
	Code   mqtt.ReasonCode
	Reason string
}

// Error describes the refusal.
func (e *ServerError) Error() string {
	s := fmt.Sprintf("%s: %s (0x%02X)", e.Packet, e.Code, byte(e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// ErrClosed is returned by operations on a closed client.
var ErrClosed = errors.New("client: connection closed")

// Client is one MQTT connection. Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	version byte
	nc      net.Conn
	r       *mqtt.Reader

	// Connack is the server's CONNACK.
	Connack *mqtt.Connack

	wmu     sync.Mutex
	bw      *bufio.Writer
	scratch []byte
	kick    chan struct{}

	mu      sync.Mutex
	pending map[uint16]func(mqtt.Packet, error) // packet id → completion
	nextID  uint16
	window  chan struct{} // one token per QoS 1/2 publish inflight
	inQoS2  map[uint16]struct{}
	aliases map[uint16]string // server → client topic aliases
	closed  bool
	err     error

	done chan struct{}
}

// Dial connects and completes the CONNECT/CONNACK exchange. A refused
// connection returns a *ServerError.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if opts.Version == 0 {
		opts.Version = mqtt.V311
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.ConnectTimeout)
		defer cancel()
	}
	nc, err := dial(ctx, opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", opts.Addr, err)
	}
	if opts.ReadBufferSize == 0 {
		opts.ReadBufferSize = 16 << 10
	}
	if opts.WriteBufferSize == 0 {
		opts.WriteBufferSize = 32 << 10
	}
	c := &Client{opts: opts, version: opts.Version, nc: nc, r: mqtt.NewReader(nc, opts.ReadBufferSize),
		bw: bufio.NewWriterSize(nc, opts.WriteBufferSize), kick: make(chan struct{}, 1),
		pending: make(map[uint16]func(mqtt.Packet, error)), done: make(chan struct{})}
	if err := c.connect(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	go c.readLoop()
	go c.flushLoop()
	return c, nil
}

// dial opens the transport named by addr.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	if addr == "" {
		addr = "localhost:1883"
	}
	if strings.HasPrefix(addr, "ws://") || strings.HasPrefix(addr, "wss://") {
		ws, _, err := websocket.Dial(ctx, addr, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
		if err != nil {
			return nil, err
		}
		ws.SetReadLimit(-1)
		return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
	}
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return nil, err
		}
		if u.Scheme != "mqtt" && u.Scheme != "tcp" {
			return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
		}
		addr = u.Host
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func (c *Client) connect(ctx context.Context) error {
	o := &c.opts
	ka := o.KeepAlive
	if ka == 0 {
		ka = 60 * time.Second
	}
	if ka < 0 {
		ka = 0
	}
	o.KeepAlive = ka
	id := o.ClientID
	if id == "" && c.version < mqtt.V5 {
		id = fmt.Sprintf("citymesh-%d", time.Now().UnixNano())
	}
	p := &mqtt.Connect{Version: c.version, CleanStart: o.CleanStart, KeepAlive: uint16(ka / time.Second),
		ClientID: id, Will: o.Will, Username: o.Username, HasUsername: o.Username != "",
		Password: o.Password, HasPassword: o.HasPassword || len(o.Password) > 0}
	if c.version >= mqtt.V5 {
		p.Props = o.Props
	}
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
		defer c.nc.SetDeadline(time.Time{})
	}
	buf, err := p.AppendTo(nil, c.version)
	if err != nil {
		return fmt.Errorf("client: CONNECT: %w", err)
	}
	if _, err := c.nc.Write(buf); err != nil {
		return fmt.Errorf("client: CONNECT: %w", err)
	}
	c.r.Version = c.version
	pkt, err := c.r.ReadPacket()
	if err != nil {
		return fmt.Errorf("client: waiting for CONNACK: %w", err)
	}
	ack, ok := pkt.(*mqtt.Connack)
	if !ok {
		return fmt.Errorf("client: expected CONNACK, got %s", pkt.Type())
	}
	if ack.ReasonCode != 0 {
		code := ack.ReasonCode
		if c.version < mqtt.V5 {
			code = v3Reason(byte(code))
		}
		return &ServerError{Packet: mqtt.CONNACK, Code: code, Reason: ack.Props.ReasonString}
	}
	c.Connack = ack
	window := 65535
	if c.version >= mqtt.V5 && ack.Props.ReceiveMaximum > 0 {
		window = int(ack.Props.ReceiveMaximum)
	}
	c.window = make(chan struct{}, window)
	if c.version >= mqtt.V5 && ack.Props.ServerKeepAlive != 0 {
		c.opts.KeepAlive = time.Duration(ack.Props.ServerKeepAlive) * time.Second
	}
	return nil
}

// v3Reason maps an MQTT 3.1.1 CONNACK return code to the MQTT 5 reason code
// of the same meaning.
func v3Reason(rc byte) mqtt.ReasonCode {
	switch rc {
	case mqtt.V3UnacceptableProtocolVersion:
		return mqtt.UnsupportedProtocolVersion
	case mqtt.V3IdentifierRejected:
		return mqtt.ClientIdentifierNotValid
	case mqtt.V3ServerUnavailable:
		return mqtt.ServerUnavailable
	case mqtt.V3BadUserNameOrPassword:
		return mqtt.BadUserNameOrPassword
	case mqtt.V3NotAuthorized:
		return mqtt.NotAuthorized
	}
	return mqtt.UnspecifiedError
}

// ClientID returns the identifier in use, including one the server assigned.
func (c *Client) ClientID() string {
	if c.Connack != nil && c.Connack.Props.AssignedClientID != "" {
		return c.Connack.Props.AssignedClientID
	}
	return c.opts.ClientID
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, once Done is closed.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// write encodes p into the write buffer and asks the flusher to send it.
func (c *Client) write(p mqtt.Packet) error {
	c.wmu.Lock()
	var err error
	c.scratch, err = p.AppendTo(c.scratch[:0], c.version)
	if err == nil {
		_, err = c.bw.Write(c.scratch)
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return err
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

// flushLoop flushes the write buffer whenever writers have added to it, so
// that writes made close together leave in one system call.
func (c *Client) flushLoop() {
	var ping <-chan time.Time
	if c.opts.KeepAlive > 0 {
		t := time.NewTicker(c.opts.KeepAlive * 3 / 4)
		defer t.Stop()
		ping = t.C
	}
	for {
		select {
		case <-c.done:
			return
		case <-ping:
			c.write(&mqtt.Pingreq{})
		case <-c.kick:
			c.wmu.Lock()
			err := c.bw.Flush()
			c.wmu.Unlock()
			if err != nil {
				c.fail(err)
				return
			}
		}
	}
}

// fail ends the connection with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	c.nc.Close()
	close(c.done)
	for _, f := range pending {
		f(nil, fmt.Errorf("%w: %v", ErrClosed, err))
	}
	if c.opts.OnClose != nil {
		c.opts.OnClose(err)
	}
}

// allocID reserves a packet identifier for a completion function.
func (c *Client) allocID(f func(mqtt.Packet, error)) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	for range 65536 {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, used := c.pending[c.nextID]; !used {
			c.pending[c.nextID] = f
			return c.nextID, nil
		}
	}
	return 0, errors.New("client: no free packet identifier")
}

func (c *Client) complete(id uint16, p mqtt.Packet, err error) {
	c.mu.Lock()
	f := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if f != nil {
		f(p, err)
	}
}

// PublishAsync sends p and calls done (if not nil) when it is acknowledged:
// at once for QoS 0, on PUBACK for QoS 1, on PUBCOMP for QoS 2. It blocks
// while the server's Receive Maximum worth of QoS 1 and 2 messages is
// inflight. p.PacketID is assigned; p may be reused after the call returns.
func (c *Client) PublishAsync(p *mqtt.Publish, done func(error)) error {
	if p.QoS == 0 {
		err := c.write(p)
		if done != nil {
			done(err)
		}
		return err
	}
	select {
	case c.window <- struct{}{}:
	case <-c.done:
		return ErrClosed
	}
	id, err := c.allocID(func(ack mqtt.Packet, err error) {
		<-c.window
		if err == nil {
			if a, ok := ack.(*mqtt.Ack); ok && a.ReasonCode.IsError() {
				err = &ServerError{Packet: a.Kind, Code: a.ReasonCode, Reason: a.Props.ReasonString}
			}
		}
		if done != nil {
			done(err)
		}
	})
	if err != nil {
		<-c.window
		return err
	}
	p.PacketID = id
	return c.write(p)
}

// Publish sends p and, for QoS 1 and 2, waits for its acknowledgement. An
// acknowledgement with an error reason code returns a *ServerError.
func (c *Client) Publish(ctx context.Context, p *mqtt.Publish) error {
	res := make(chan error, 1)
	if err := c.PublishAsync(p, func(err error) { res <- err }); err != nil {
		return err
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// request sends a packet that carries a packet identifier and waits for its
// answer.
func (c *Client) request(ctx context.Context, set func(id uint16) mqtt.Packet) (mqtt.Packet, error) {
	type answer struct {
		p   mqtt.Packet
		err error
	}
	res := make(chan answer, 1)
	id, err := c.allocID(func(p mqtt.Packet, err error) { res <- answer{p, err} })
	if err != nil {
		return nil, err
	}
	if err := c.write(set(id)); err != nil {
		return nil, err
	}
	select {
	case a := <-res:
		return a.p, a.err
	case <-ctx.Done():
		c.complete(id, nil, ctx.Err())
		return nil, ctx.Err()
	}
}

// Subscribe subscribes to subs with MQTT 5 SUBSCRIBE properties props (for
// example a Subscription Identifier) and returns the SUBACK.
func (c *Client) Subscribe(ctx context.Context, props mqtt.Properties, subs ...mqtt.Subscription) (*mqtt.Suback, error) {
	p, err := c.request(ctx, func(id uint16) mqtt.Packet {
		return &mqtt.Subscribe{PacketID: id, Props: props, Subscriptions: subs}
	})
	if err != nil {
		return nil, err
	}
	ack, ok := p.(*mqtt.Suback)
	if !ok {
		return nil, fmt.Errorf("client: expected SUBACK, got %s", p.Type())
	}
	return ack, nil
}

// Unsubscribe removes subscriptions and returns the UNSUBACK.
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) (*mqtt.Unsuback, error) {
	p, err := c.request(ctx, func(id uint16) mqtt.Packet {
		return &mqtt.Unsubscribe{PacketID: id, Filters: filters}
	})
	if err != nil {
		return nil, err
	}
	ack, ok := p.(*mqtt.Unsuback)
	if !ok {
		return nil, fmt.Errorf("client: expected UNSUBACK, got %s", p.Type())
	}
	return ack, nil
}

// Disconnect sends DISCONNECT with reason code (MQTT 5; 0 is a normal
// disconnection, which discards the will) and closes the connection.
func (c *Client) Disconnect(ctx context.Context, code mqtt.ReasonCode) error {
	c.wmu.Lock()
	var err error
	c.scratch, err = (&mqtt.Disconnect{ReasonCode: code}).AppendTo(c.scratch[:0], c.version)
	if err == nil {
		if dl, ok := ctx.Deadline(); ok {
			c.nc.SetWriteDeadline(dl)
		}
		if _, err = c.bw.Write(c.scratch); err == nil {
			err = c.bw.Flush()
		}
	}
	c.wmu.Unlock()
	c.fail(ErrClosed)
	return err
}

// Close closes the connection without DISCONNECT, so the server publishes
// the will, if any.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	return nil
}

// readLoop reads and handles packets until the connection ends.
func (c *Client) readLoop() {
	var err error
	defer func() { c.fail(err) }()
	for {
		var pkt mqtt.Packet
		pkt, err = c.r.ReadPacket()
		if err != nil {
			return
		}
		switch p := pkt.(type) {
		case *mqtt.Publish:
			if err = c.received(p); err != nil {
				return
			}
		case *mqtt.Ack:
			switch p.Kind {
			case mqtt.PUBACK, mqtt.PUBCOMP:
				c.complete(p.PacketID, p, nil)
			case mqtt.PUBREC:
				if p.ReasonCode.IsError() {
					c.complete(p.PacketID, p, nil)
				} else {
					c.write(&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: p.PacketID})
				}
			case mqtt.PUBREL:
				c.mu.Lock()
				delete(c.inQoS2, p.PacketID)
				c.mu.Unlock()
				c.write(&mqtt.Ack{Kind: mqtt.PUBCOMP, PacketID: p.PacketID})
			}
		case *mqtt.Suback:
			c.complete(p.PacketID, p, nil)
		case *mqtt.Unsuback:
			c.complete(p.PacketID, p, nil)
		case *mqtt.Disconnect:
			err = &ServerError{Packet: mqtt.DISCONNECT, Code: p.ReasonCode, Reason: p.Props.ReasonString}
			return
		case *mqtt.Pingresp:
		default:
			err = fmt.Errorf("client: unexpected %s from the server", pkt.Type())
			return
		}
	}
}

// received handles an incoming PUBLISH: topic aliases, acknowledgement, and
// exactly-once delivery of QoS 2.
func (c *Client) received(p *mqtt.Publish) error {
	if a := p.Props.TopicAlias; a != 0 {
		c.mu.Lock()
		if p.Topic != "" {
			if c.aliases == nil {
				c.aliases = make(map[uint16]string)
			}
			c.aliases[a] = p.Topic
		} else if t, ok := c.aliases[a]; ok {
			p.Topic = t
		} else {
			c.mu.Unlock()
			return fmt.Errorf("client: unknown topic alias %d", a)
		}
		c.mu.Unlock()
	}
	deliver := true
	switch p.QoS {
	case 1:
		defer c.write(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p.PacketID})
	case 2:
		c.mu.Lock()
		if c.inQoS2 == nil {
			c.inQoS2 = make(map[uint16]struct{})
		}
		_, dup := c.inQoS2[p.PacketID]
		c.inQoS2[p.PacketID] = struct{}{}
		c.mu.Unlock()
		deliver = !dup
		defer c.write(&mqtt.Ack{Kind: mqtt.PUBREC, PacketID: p.PacketID})
	}
	if deliver && c.opts.OnMessage != nil {
		c.opts.OnMessage(p)
	}
	return nil
}
