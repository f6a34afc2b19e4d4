// Package client is a small, fast MQTT 3.1.1 and 5.0 client built on package
// mqtt. The citymesh command line tools (pub, sub and bench, its backlog
// mode included) use it. The remote implementation of the service bus
// (bus.Remote) does not: it uses Eclipse Paho's autopaho, which reconnects
// and resubscribes on its own.
//
// A Client pipelines QoS 1 and 2 publishes up to the server's Receive
// Maximum and batches its writes: packets are encoded straight into a
// buffered writer under a mutex, and a flusher goroutine sends whatever has
// accumulated each time it wakes, so packets written close together leave in
// one system call. (A single writer goroutine fed by a channel was measured
// too; it was 2.3 times slower per packet and allocated a copy of each; see
// BenchmarkWriteScheme.)
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/citymesh/citymesh/mqtt"
)

// Options configures a connection. The zero value connects to localhost:1883
// with MQTT 3.1.1, a persistent session under a generated client identifier,
// and a 60 second keep alive.
type Options struct {
	// Addr names the server: host:port, mqtt://host:port or tcp://host:port
	// for plain TCP, mqtts://host:port or tls://host:port for TLS, and
	// ws://host:port/path or wss://host:port/path for MQTT over WebSocket
	// (path /mqtt when none is given).
	Addr string
	// TLSConfig is used for mqtts, tls and wss addresses; nil means the
	// system's roots and the address's host name.
	TLSConfig *tls.Config
	// ClientID identifies the client. When it is empty an MQTT 5 server
	// assigns one (see ServerInfo.AssignedClientID) and for 3.1.1 a random
	// one is generated.
	ClientID string
	// Version is the protocol level: mqtt.V311 (the default), mqtt.V5 or
	// mqtt.V31.
	Version byte
	// CleanStart starts a new session (Clean Session in 3.1.1).
	CleanStart bool
	// KeepAlive is the keep alive interval; 0 means 60 s and a negative
	// value disables keep alive. A server's Server Keep Alive overrides it.
	KeepAlive time.Duration
	// Username and Password authenticate the client when set; HasPassword
	// sends an empty password.
	Username    string
	Password    []byte
	HasPassword bool
	// Will is published by the server if the connection ends without a
	// normal DISCONNECT.
	Will *mqtt.Will
	// SessionExpiry is the MQTT 5 Session Expiry Interval in seconds
	// (0xFFFFFFFF: the session never expires).
	SessionExpiry uint32
	// ReceiveMaximum is how many QoS 1 and 2 messages the server may have
	// unacknowledged towards this client (MQTT 5; 0 means 65535).
	ReceiveMaximum uint16
	// MaximumPacketSize is the largest packet the client accepts, in bytes;
	// 0 means no limit. The client refuses larger packets by closing the
	// connection.
	MaximumPacketSize uint32
	// TopicAliasMaximum is how many topic aliases the server may use towards
	// this client (MQTT 5); incoming aliases are resolved before OnMessage.
	TopicAliasMaximum uint16
	// MaxInflight caps how many QoS 1 and 2 publishes the client has
	// unacknowledged, below the server's Receive Maximum; 0 means the Receive
	// Maximum alone. MQTT 3.1.1 servers state no limit (so it is 65535) but
	// have one: Mosquitto, for one, drops the connection of a 3.1.1 client
	// with more than 20 QoS 2 messages inflight.
	MaxInflight int
	// UserProperties are sent in the MQTT 5 CONNECT.
	UserProperties []mqtt.UserProperty
	// Props holds further MQTT 5 CONNECT properties (an Authentication
	// Method, Request Response Information, ...). The fields above take
	// precedence over the same properties here.
	Props mqtt.Properties
	// OnMessage is called for every PUBLISH received, in order, on the
	// client's read goroutine, before the message is acknowledged. The packet
	// is a copy that the handler may keep, unless ReuseMessages is set. A
	// handler that blocks stalls the connection, and one that waits for the
	// server deadlocks it: calling Publish, Subscribe or Unsubscribe from the
	// handler, or PublishAsync with QoS 1 or 2 while the inflight window may
	// be full, must be handed to another goroutine.
	OnMessage func(p *mqtt.Publish)
	// ReuseMessages passes OnMessage the decoder's own packet instead of a
	// copy: it and its slices are then valid only during the call. Load
	// generators set it to avoid an allocation per message.
	ReuseMessages bool
	// OnClose is called once, from its own goroutine, when the connection
	// ends, with the reason (ErrClosed after Close or Disconnect).
	OnClose func(err error)
	// Logger receives debug records about the connection; nil means
	// slog.Default().
	Logger *slog.Logger
	// ReadBufferSize and WriteBufferSize size the connection's buffers;
	// defaults 16 KiB and 32 KiB. Small buffers suit many idle connections.
	ReadBufferSize, WriteBufferSize int
	// ConnectTimeout bounds dialing and the CONNECT/CONNACK exchange when the
	// context given to Dial has no deadline. Default 10 s.
	ConnectTimeout time.Duration
}

// ServerInfo is what the server's CONNACK told the client, with the MQTT 5
// defaults filled in for absent properties (and for MQTT 3.1.1 servers).
type ServerInfo struct {
	// SessionPresent reports that the server resumed an existing session.
	SessionPresent bool
	// ReceiveMaximum is how many QoS 1 and 2 publishes the client may have
	// unacknowledged; PublishAsync blocks beyond it.
	ReceiveMaximum uint16
	// MaximumPacketSize is the largest packet the server accepts; 0 means
	// no limit. Larger publishes fail without being sent.
	MaximumPacketSize uint32
	// TopicAliasMaximum is the highest topic alias the client may send; 0
	// means none.
	TopicAliasMaximum uint16
	// AssignedClientID is the identifier the server assigned, if any.
	AssignedClientID string
	// KeepAlive is the keep alive interval in effect, after the server's
	// Server Keep Alive; 0 means none.
	KeepAlive time.Duration
	// MaximumQoS is the highest QoS the server accepts in PUBLISH.
	MaximumQoS byte
	// RetainAvailable, WildcardSubAvailable, SubIDAvailable and
	// SharedSubAvailable report the server's optional features.
	RetainAvailable, WildcardSubAvailable, SubIDAvailable, SharedSubAvailable bool
	// Props are all the CONNACK properties as received.
	Props mqtt.Properties
}

// ServerError is a refusal or an error reason code from the server: a
// CONNACK that refuses the connection, an acknowledgement with an error
// reason code, or a DISCONNECT from the server.
type ServerError struct {
	// Packet is the packet that carried the code.
	Packet mqtt.PacketType
	// Code is the MQTT 5 reason code; 3.1.1 CONNACK return codes are mapped
	// to the MQTT 5 code of the same meaning.
	Code mqtt.ReasonCode
	// Reason is the server's Reason String, if it sent one.
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

// ErrClosed is returned by operations on a client whose connection has ended;
// errors for operations cut short by a lost connection wrap it.
var ErrClosed = errors.New("client: connection closed")

// ErrNoConnack is wrapped by Dial's error when the server closed the
// connection after CONNECT without answering it. A server that speaks TLS
// on the port does this to a client that does not (Go's crypto/tls closes
// on a first record that is not a TLS handshake), and so do servers that
// refuse a client before CONNACK.
var ErrNoConnack = errors.New("the server closed the connection before CONNACK")

// Client is one MQTT connection. Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	version byte
	nc      net.Conn
	r       *mqtt.Reader
	log     *slog.Logger
	server  ServerInfo

	wmu   sync.Mutex // guards bw and wrote
	bw    *bufio.Writer
	wrote bool // something was written since the keep alive timer last looked
	kick  chan struct{}

	mu       sync.Mutex
	pending  map[uint16]func(mqtt.Packet, error) // packet identifier → completion
	nextID   uint16
	inQoS2   map[uint16]struct{} // incoming QoS 2 awaiting PUBREL
	aliases  map[uint16]string   // server → client topic aliases
	pingSent time.Time           // zero when no PINGREQ is outstanding
	pings    uint64              // PINGREQs written
	pongs    uint64              // PINGRESPs read
	pingWait []pingWaiter        // Ping calls waiting for their PINGRESP
	closed   bool
	err      error

	window chan struct{} // one token per QoS 1/2 publish inflight
	done   chan struct{}

	wg sync.WaitGroup // the read and flush goroutines and OnClose
	// readerG, flusherG and closerG identify the goroutines that run the
	// caller's callbacks (see wait).
	readerG, flusherG, closerG atomic.Uint64
}

// Dial connects to opts.Addr and completes the CONNECT/CONNACK exchange. A
// refused connection returns a *ServerError with the reason code.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if opts.Version == 0 {
		opts.Version = mqtt.V311
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.ReadBufferSize <= 0 {
		opts.ReadBufferSize = 16 << 10
	}
	if opts.WriteBufferSize <= 0 {
		opts.WriteBufferSize = 32 << 10
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 60 * time.Second
	} else if opts.KeepAlive < 0 {
		opts.KeepAlive = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.ConnectTimeout)
		defer cancel()
	}
	nc, err := dial(ctx, opts.Addr, opts.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", opts.Addr, err)
	}
	c := &Client{
		opts:    opts,
		version: opts.Version,
		nc:      nc,
		r:       mqtt.NewReader(nc, opts.ReadBufferSize),
		log:     opts.Logger.With("server", opts.Addr),
		bw:      bufio.NewWriterSize(nc, opts.WriteBufferSize),
		kick:    make(chan struct{}, 1),
		pending: make(map[uint16]func(mqtt.Packet, error)),
		done:    make(chan struct{}),
	}
	c.r.MaxPacketSize = opts.MaximumPacketSize
	if err := c.connect(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	c.log.Debug("mqtt connected", "client_id", c.ClientID(), "version", c.version,
		"session_present", c.server.SessionPresent, "receive_maximum", c.server.ReceiveMaximum,
		"keep_alive", c.server.KeepAlive)
	c.wg.Go(func() { c.readerG.Store(goroutineID()); c.readLoop() })
	c.wg.Go(func() { c.flusherG.Store(goroutineID()); c.flushLoop() })
	return c, nil
}

// dial opens the transport that addr names.
func dial(ctx context.Context, addr string, tc *tls.Config) (net.Conn, error) {
	if addr == "" {
		addr = "localhost:1883"
	}
	scheme, hostport := "tcp", addr
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return nil, err
		}
		scheme, hostport = u.Scheme, u.Host
		if scheme == "ws" || scheme == "wss" {
			if u.Path == "" {
				u.Path = "/mqtt"
			}
			return dialWebSocket(ctx, u.String(), tc)
		}
	}
	var d net.Dialer
	switch scheme {
	case "tcp", "mqtt":
		return d.DialContext(ctx, "tcp", hostport)
	case "mqtts", "tls", "ssl":
		td := tls.Dialer{NetDialer: &d, Config: tc}
		return td.DialContext(ctx, "tcp", hostport)
	}
	return nil, fmt.Errorf("unsupported scheme %q (use mqtt, mqtts, ws or wss)", scheme)
}

// dialWebSocket opens MQTT over WebSocket: subprotocol "mqtt", each write
// one binary message, reads across message boundaries.
func dialWebSocket(ctx context.Context, u string, tc *tls.Config) (net.Conn, error) {
	o := &websocket.DialOptions{Subprotocols: []string{"mqtt"}}
	if tc != nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	ws, resp, err := websocket.Dial(ctx, u, o)
	if err != nil {
		return nil, err
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if ws.Subprotocol() != "mqtt" {
		ws.Close(websocket.StatusProtocolError, "subprotocol mqtt required")
		return nil, fmt.Errorf("server did not accept the WebSocket subprotocol mqtt")
	}
	ws.SetReadLimit(-1) // the MQTT reader enforces its own limit
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}

// connect sends CONNECT and reads the CONNACK.
func (c *Client) connect(ctx context.Context) error {
	o := &c.opts
	id := o.ClientID
	if id == "" && c.version < mqtt.V5 {
		id = fmt.Sprintf("citymesh-%x", time.Now().UnixNano())
	}
	p := &mqtt.Connect{Version: c.version, CleanStart: o.CleanStart, KeepAlive: uint16(min(o.KeepAlive/time.Second, 65535)),
		ClientID: id, Will: o.Will, Username: o.Username, HasUsername: o.Username != "",
		Password: o.Password, HasPassword: o.HasPassword || len(o.Password) > 0}
	if c.version >= mqtt.V5 {
		p.Props = o.Props
		if o.SessionExpiry != 0 {
			p.Props.SessionExpiry = o.SessionExpiry
		}
		if o.ReceiveMaximum != 0 {
			p.Props.ReceiveMaximum = o.ReceiveMaximum
		}
		if o.MaximumPacketSize != 0 {
			p.Props.MaximumPacketSize = o.MaximumPacketSize
		}
		if o.TopicAliasMaximum != 0 {
			p.Props.TopicAliasMaximum = o.TopicAliasMaximum
		}
		if len(o.UserProperties) > 0 {
			p.Props.User = append(p.Props.User[:len(p.Props.User):len(p.Props.User)], o.UserProperties...)
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
		defer c.nc.SetDeadline(time.Time{})
	}
	// A WebSocket connection ignores deadlines while it waits; close it when
	// the context ends.
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	buf, err := p.AppendTo(nil, c.version)
	if err != nil {
		return fmt.Errorf("client: encode CONNECT: %w", err)
	}
	if _, err := c.nc.Write(buf); err != nil {
		return fmt.Errorf("client: send CONNECT: %w", ctxErr(ctx, err))
	}
	c.r.Version = c.version
	pkt, err := c.r.ReadPacket()
	if err != nil {
		if ctx.Err() == nil && closedByPeer(err) {
			return fmt.Errorf("client: %w (%w)", ErrNoConnack, err)
		}
		return fmt.Errorf("client: waiting for CONNACK: %w", ctxErr(ctx, err))
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
	c.server = serverInfo(ack, c.version, o.KeepAlive)
	window := int(c.server.ReceiveMaximum)
	if o.MaxInflight > 0 {
		window = min(window, o.MaxInflight)
	}
	c.window = make(chan struct{}, window)
	return nil
}

// closedByPeer reports whether a read error means the peer closed the
// connection: an end of file, or a reset.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// ctxErr reports a network error caused by the end of ctx (its deadline set
// on the connection, or the connection closed when it was cancelled) as the
// context's error.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// serverInfo reads the CONNACK's properties, with the defaults the
// specification gives for absent ones.
func serverInfo(ack *mqtt.Connack, version byte, keepAlive time.Duration) ServerInfo {
	pr := &ack.Props
	s := ServerInfo{SessionPresent: ack.SessionPresent, ReceiveMaximum: 65535, KeepAlive: keepAlive, MaximumQoS: 2,
		RetainAvailable: true, WildcardSubAvailable: true, SubIDAvailable: true, SharedSubAvailable: true}
	if version < mqtt.V5 {
		return s
	}
	s.Props = cloneProps(*pr)
	if pr.ReceiveMaximum != 0 {
		s.ReceiveMaximum = pr.ReceiveMaximum // [MQTT-3.2.2.3.3]
	}
	s.MaximumPacketSize = pr.MaximumPacketSize
	s.TopicAliasMaximum = pr.TopicAliasMaximum
	s.AssignedClientID = pr.AssignedClientID
	if pr.Has(mqtt.PropServerKeepAlive) {
		s.KeepAlive = time.Duration(pr.ServerKeepAlive) * time.Second // [MQTT-3.2.2-21]
	}
	if pr.Has(mqtt.PropMaximumQoS) {
		s.MaximumQoS = pr.MaximumQoS
	}
	flag := func(id mqtt.PropID, v byte) bool { return !pr.Has(id) || v != 0 }
	s.RetainAvailable = flag(mqtt.PropRetainAvailable, pr.RetainAvailable)
	s.WildcardSubAvailable = flag(mqtt.PropWildcardSubAvailable, pr.WildcardSubAvailable)
	s.SubIDAvailable = flag(mqtt.PropSubIDAvailable, pr.SubIDAvailable)
	s.SharedSubAvailable = flag(mqtt.PropSharedSubAvailable, pr.SharedSubAvailable)
	return s
}

// cloneProps copies the slices of p, which may alias a reader's buffers.
func cloneProps(p mqtt.Properties) mqtt.Properties {
	if p.CorrelationData != nil {
		p.CorrelationData = append([]byte(nil), p.CorrelationData...)
	}
	if p.AuthData != nil {
		p.AuthData = append([]byte(nil), p.AuthData...)
	}
	if p.User != nil {
		p.User = append([]mqtt.UserProperty(nil), p.User...)
	}
	if p.SubscriptionIDs != nil {
		p.SubscriptionIDs = append([]uint32(nil), p.SubscriptionIDs...)
	}
	return p
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

// V3ReturnCode maps the reason code of a refused CONNACK back to the MQTT
// 3.1.1 Connect Return Code (1 to 5), as MQTT 3.1.1 tools report it.
func V3ReturnCode(code mqtt.ReasonCode) byte { return byte(code.V3ConnackCode()) }

// ClientID returns the client identifier in use, including one the server
// assigned.
func (c *Client) ClientID() string {
	if c.server.AssignedClientID != "" {
		return c.server.AssignedClientID
	}
	return c.opts.ClientID
}

// Version returns the connection's protocol level.
func (c *Client) Version() byte { return c.version }

// Server returns what the server's CONNACK said.
func (c *Client) Server() ServerInfo { return c.server }

// Done returns a channel that is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, once Done is closed, and nil before.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// send encodes p into the write buffer and wakes the flusher. An encoding
// error, or a packet larger than the server accepts, is returned without
// harm to the connection; a write error ends it.
func (c *Client) send(p mqtt.Packet) error {
	c.wmu.Lock()
	buf, err := p.AppendTo(c.bw.AvailableBuffer(), c.version)
	if err != nil {
		c.wmu.Unlock()
		return fmt.Errorf("client: encode %s: %w", p.Type(), err)
	}
	if m := c.server.MaximumPacketSize; m > 0 && uint32(len(buf)) > m { // [MQTT-3.1.2-24]
		c.wmu.Unlock()
		return &ServerError{Packet: p.Type(), Code: mqtt.PacketTooLarge,
			Reason: fmt.Sprintf("%d bytes exceed the server's Maximum Packet Size of %d (not sent)", len(buf), m)}
	}
	_, err = c.bw.Write(buf)
	c.wrote = true
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("client: write: %w", err))
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

// flushLoop flushes the write buffer whenever writers have added to it, so
// that packets written close together leave in one system call, and keeps
// the connection alive.
func (c *Client) flushLoop() {
	var tick <-chan time.Time
	ka := c.server.KeepAlive
	if ka > 0 {
		t := time.NewTicker(max(ka/4, 250*time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	idle := 0
	for {
		select {
		case <-c.done:
			return
		case <-tick:
			c.mu.Lock()
			sent := c.pingSent
			c.mu.Unlock()
			if !sent.IsZero() && time.Since(sent) > ka {
				c.fail(fmt.Errorf("client: no PINGRESP within the keep alive of %s", ka))
				return
			}
			c.wmu.Lock()
			wrote := c.wrote
			c.wrote = false
			c.wmu.Unlock()
			if wrote {
				idle = 0
				continue
			}
			// Nothing sent for two quarters of the keep alive: ping, so the
			// server hears from the client within the interval
			// [MQTT-3.1.2-20].
			if idle++; idle >= 2 && sent.IsZero() {
				c.mu.Lock()
				c.pingSent = time.Now()
				c.mu.Unlock()
				c.sendPing(nil)
				idle = 0
			}
		case <-c.kick:
			c.wmu.Lock()
			err := c.bw.Flush()
			c.wmu.Unlock()
			if err != nil {
				c.fail(fmt.Errorf("client: write: %w", err))
				return
			}
		}
	}
}

// fail ends the connection with err and fails every operation waiting for
// an answer.
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
	if !errors.Is(err, ErrClosed) {
		c.log.Debug("mqtt connection lost", "client_id", c.ClientID(), "err", err)
	}
	werr := err
	if !errors.Is(err, ErrClosed) {
		werr = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	for _, f := range pending {
		c.callback(func() { f(nil, werr) })
	}
	if c.opts.OnClose != nil {
		c.wg.Go(func() { c.closerG.Store(goroutineID()); c.callback(func() { c.opts.OnClose(err) }) })
	}
}

// allocID reserves a packet identifier for the completion function f.
func (c *Client) allocID(f func(mqtt.Packet, error)) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, c.closedErr()
	}
	for range 65535 {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, used := c.pending[c.nextID]; !used {
			c.pending[c.nextID] = f
			return c.nextID, nil
		}
	}
	return 0, errors.New("client: all 65535 packet identifiers are in use")
}

// closedErr returns the error for an operation on the ended connection; c.mu
// is held.
func (c *Client) closedErr() error {
	if c.err == nil || errors.Is(c.err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, c.err)
}

// complete removes the packet identifier id and calls its completion.
func (c *Client) complete(id uint16, p mqtt.Packet, err error) {
	c.mu.Lock()
	f := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if f != nil {
		c.callback(func() { f(p, err) })
	}
}

// callback runs f, a function of the caller's (OnMessage, OnClose, a
// completion).
func (c *Client) callback(f func()) { f() }

// wait waits for the client's goroutines to end, unless it is called on one
// of them (from a callback), which cannot wait for itself. Which goroutine
// calls is told by its id, not by whether some callback is running: a
// callback running on another goroutine (OnClose, started by the close
// itself) must be waited for.
func (c *Client) wait() {
	switch goroutineID() {
	case c.readerG.Load(), c.flusherG.Load(), c.closerG.Load():
		return
	}
	c.wg.Wait()
}

// goroutineID returns the id of the calling goroutine, read from the first
// line of its stack trace ("goroutine 18 [running]:"). Go gives goroutines
// no other identity; it is read only when a client's goroutine starts and
// when it is closed, never per message.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _ = bytes.CutPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

// check refuses a publish that the server said it does not accept.
func (c *Client) check(p *mqtt.Publish) error {
	s := &c.server
	switch {
	case p.QoS > 2:
		return fmt.Errorf("client: QoS %d does not exist", p.QoS)
	case p.QoS > s.MaximumQoS: // [MQTT-3.2.2-11]
		return &ServerError{Packet: mqtt.PUBLISH, Code: mqtt.QoSNotSupported,
			Reason: fmt.Sprintf("the server accepts QoS %d at most (not sent)", s.MaximumQoS)}
	case p.Retain && !s.RetainAvailable: // [MQTT-3.2.2-14]
		return &ServerError{Packet: mqtt.PUBLISH, Code: mqtt.RetainNotSupported, Reason: "the server has no retained messages (not sent)"}
	case p.Props.TopicAlias > s.TopicAliasMaximum: // [MQTT-3.3.2-9]
		return &ServerError{Packet: mqtt.PUBLISH, Code: mqtt.TopicAliasInvalid,
			Reason: fmt.Sprintf("topic alias %d exceeds the server's maximum of %d (not sent)", p.Props.TopicAlias, s.TopicAliasMaximum)}
	}
	return nil
}

// PublishAsync sends p and calls done, if not nil, exactly once with the
// outcome: after the packet is buffered for QoS 0, on PUBACK for QoS 1 and on
// PUBCOMP for QoS 2. An acknowledgement with an error reason code gives a
// *ServerError; a connection that ends first gives an error wrapping
// ErrClosed. done runs on the client's read goroutine (or the caller's) and
// must not block.
//
// PublishAsync blocks while the server's Receive Maximum of QoS 1 and 2
// publishes are unacknowledged, so a caller can pipeline publishes as fast as
// the server takes them. It sets p.PacketID; p and its payload may be reused
// as soon as it returns.
func (c *Client) PublishAsync(p *mqtt.Publish, done func(error)) {
	if err := c.check(p); err != nil {
		notify(done, err)
		return
	}
	if p.QoS == 0 {
		p.PacketID = 0
		notify(done, c.send(p))
		return
	}
	select {
	case c.window <- struct{}{}:
	case <-c.done:
		c.mu.Lock()
		err := c.closedErr()
		c.mu.Unlock()
		notify(done, err)
		return
	}
	id, err := c.allocID(func(ack mqtt.Packet, err error) {
		<-c.window
		if a, ok := ack.(*mqtt.Ack); ok && err == nil && a.ReasonCode.IsError() {
			err = &ServerError{Packet: a.Kind, Code: a.ReasonCode, Reason: a.Props.ReasonString}
		}
		notify(done, err)
	})
	if err != nil {
		<-c.window
		notify(done, err)
		return
	}
	p.PacketID = id
	if err := c.send(p); err != nil {
		c.complete(id, nil, err)
	}
}

// notify calls done, if there is one, with err.
func notify(done func(error), err error) {
	if done != nil {
		done(err)
	}
}

// Publish sends p and, for QoS 1 and 2, waits for its acknowledgement. An
// acknowledgement with an error reason code returns a *ServerError. When ctx
// ends first the message may still be delivered.
func (c *Client) Publish(ctx context.Context, p *mqtt.Publish) error {
	res := make(chan error, 1)
	c.PublishAsync(p, func(err error) { res <- err })
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return fmt.Errorf("client: publish to %s: %w", p.Topic, ctx.Err())
	}
}

// request sends a packet that carries a packet identifier, made by mk, and
// waits for the answer with the same identifier.
func (c *Client) request(ctx context.Context, mk func(id uint16) mqtt.Packet) (mqtt.Packet, error) {
	type answer struct {
		p   mqtt.Packet
		err error
	}
	res := make(chan answer, 1)
	id, err := c.allocID(func(p mqtt.Packet, err error) { res <- answer{p, err} })
	if err != nil {
		return nil, err
	}
	if err := c.send(mk(id)); err != nil {
		c.complete(id, nil, nil)
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

// Subscribe subscribes to subs and returns the SUBACK, whose reason codes
// give the QoS granted to each subscription or a refusal. props are the MQTT 5
// SUBSCRIBE properties, such as a Subscription Identifier
// (mqtt.Properties{SubscriptionIDs: []uint32{7}}) and user properties; pass
// the zero value for none. A SUBACK that refuses every subscription also
// returns a *ServerError with the first refusal.
func (c *Client) Subscribe(ctx context.Context, props mqtt.Properties, subs ...mqtt.Subscription) (*mqtt.Suback, error) {
	if len(subs) == 0 {
		return nil, errors.New("client: subscribe: no subscriptions")
	}
	if c.version < mqtt.V5 {
		props = mqtt.Properties{}
	}
	p, err := c.request(ctx, func(id uint16) mqtt.Packet {
		return &mqtt.Subscribe{PacketID: id, Props: props, Subscriptions: subs}
	})
	if err != nil {
		return nil, fmt.Errorf("client: subscribe: %w", err)
	}
	ack, ok := p.(*mqtt.Suback)
	if !ok {
		return nil, fmt.Errorf("client: expected SUBACK, got %s", p.Type())
	}
	for _, code := range ack.ReasonCodes {
		if !code.IsError() {
			return ack, nil
		}
	}
	code := mqtt.UnspecifiedError
	if len(ack.ReasonCodes) > 0 {
		code = ack.ReasonCodes[0]
	}
	return ack, &ServerError{Packet: mqtt.SUBACK, Code: code, Reason: ack.Props.ReasonString}
}

// Unsubscribe removes the subscriptions of filters and returns the UNSUBACK
// (whose reason codes are empty for MQTT 3.1.1).
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) (*mqtt.Unsuback, error) {
	if len(filters) == 0 {
		return nil, errors.New("client: unsubscribe: no topic filters")
	}
	p, err := c.request(ctx, func(id uint16) mqtt.Packet {
		return &mqtt.Unsubscribe{PacketID: id, Filters: filters}
	})
	if err != nil {
		return nil, fmt.Errorf("client: unsubscribe: %w", err)
	}
	ack, ok := p.(*mqtt.Unsuback)
	if !ok {
		return nil, fmt.Errorf("client: expected UNSUBACK, got %s", p.Type())
	}
	return ack, nil
}

// pingWaiter is a Ping call waiting for the PINGRESP of the n-th PINGREQ.
type pingWaiter struct {
	n    uint64
	done chan struct{}
}

// sendPing writes a PINGREQ. When done is not nil it is closed once the
// PINGRESP that answers this PINGREQ has been read: the server answers
// PINGREQs in order, so that is the n-th PINGRESP for the n-th PINGREQ.
func (c *Client) sendPing(done chan struct{}) error {
	c.wmu.Lock()
	buf, _ := (&mqtt.Pingreq{}).AppendTo(c.bw.AvailableBuffer(), c.version)
	_, err := c.bw.Write(buf)
	c.wrote = true
	c.mu.Lock()
	c.pings++
	if done != nil {
		c.pingWait = append(c.pingWait, pingWaiter{n: c.pings, done: done})
	}
	c.mu.Unlock()
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("client: write: %w", err))
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

// Ping sends PINGREQ and waits for its PINGRESP. The server handles a
// connection's packets in order, so a nil error means it has read
// everything sent before, QoS 0 publishes included, and was still
// connected after them. When the server ends the connection first, the
// error wraps ErrClosed and the reason (an MQTT 5 server's DISCONNECT is a
// *ServerError).
func (c *Client) Ping(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		err := c.closedErr()
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	done := make(chan struct{})
	if err := c.sendPing(done); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-c.done:
		select {
		case <-done: // answered, then closed
			return nil
		default:
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closedErr()
	case <-ctx.Done():
		return fmt.Errorf("client: ping: %w", ctx.Err())
	}
}

// Disconnect sends DISCONNECT and closes the connection. For MQTT 5, code is
// the reason code: mqtt.NormalDisconnection discards the will and
// mqtt.DisconnectWithWill asks the server to publish it; MQTT 3.1.1 ignores
// code and always discards the will. Unacknowledged publishes fail with
// ErrClosed. ctx bounds the time spent writing. It returns once the
// client's goroutines have ended (OnClose included), unless it is called
// from one of the client's callbacks.
func (c *Client) Disconnect(ctx context.Context, code mqtt.ReasonCode) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.wait()
		return nil
	}
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	c.wmu.Lock()
	buf, err := (&mqtt.Disconnect{ReasonCode: code}).AppendTo(c.bw.AvailableBuffer(), c.version)
	if err == nil {
		if dl, ok := ctx.Deadline(); ok {
			c.nc.SetWriteDeadline(dl)
		}
		if _, err = c.bw.Write(buf); err == nil {
			err = c.bw.Flush()
		}
	}
	c.wmu.Unlock()
	c.fail(ErrClosed)
	c.wait()
	if err != nil {
		return fmt.Errorf("client: disconnect: %w", err)
	}
	return nil
}

// Close closes the connection without DISCONNECT, so the server publishes
// the will, if any. Unacknowledged publishes fail with ErrClosed. It returns
// once the client's goroutines have ended (OnClose included), unless it is
// called from one of the client's callbacks.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.wait()
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
			err = fmt.Errorf("client: read: %w", err)
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
				if p.ReasonCode.IsError() { // the exchange ends here [MQTT-4.3.3]
					c.complete(p.PacketID, p, nil)
				} else {
					c.send(&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: p.PacketID})
				}
			case mqtt.PUBREL:
				c.mu.Lock()
				delete(c.inQoS2, p.PacketID)
				c.mu.Unlock()
				c.send(&mqtt.Ack{Kind: mqtt.PUBCOMP, PacketID: p.PacketID})
			}
		case *mqtt.Suback:
			// The handler runs after ReadPacket is called again: keep the codes.
			p.ReasonCodes = append([]mqtt.ReasonCode(nil), p.ReasonCodes...)
			p.Props = cloneProps(p.Props)
			c.complete(p.PacketID, p, nil)
		case *mqtt.Unsuback:
			p.ReasonCodes = append([]mqtt.ReasonCode(nil), p.ReasonCodes...)
			p.Props = cloneProps(p.Props)
			c.complete(p.PacketID, p, nil)
		case *mqtt.Pingresp:
			c.mu.Lock()
			c.pingSent = time.Time{}
			c.pongs++
			waiting := c.pingWait[:0]
			for _, w := range c.pingWait {
				if w.n <= c.pongs {
					close(w.done)
				} else {
					waiting = append(waiting, w)
				}
			}
			c.pingWait = waiting
			c.mu.Unlock()
		case *mqtt.Disconnect:
			err = &ServerError{Packet: mqtt.DISCONNECT, Code: p.ReasonCode, Reason: p.Props.ReasonString}
			return
		default:
			err = fmt.Errorf("client: unexpected %s from the server", pkt.Type())
			return
		}
	}
}

// received handles an incoming PUBLISH: topic aliases, the handler, and the
// acknowledgement, with exactly-once delivery of QoS 2.
func (c *Client) received(p *mqtt.Publish) error {
	if a := p.Props.TopicAlias; a != 0 {
		if c.version < mqtt.V5 || a > c.opts.TopicAliasMaximum { // [MQTT-3.3.2-10]
			return fmt.Errorf("client: topic alias %d above the maximum of %d", a, c.opts.TopicAliasMaximum)
		}
		if p.Topic != "" {
			if c.aliases == nil {
				c.aliases = make(map[uint16]string)
			}
			c.aliases[a] = p.Topic
		} else if t, ok := c.aliases[a]; ok {
			p.Topic = t
		} else {
			return fmt.Errorf("client: unknown topic alias %d", a)
		}
	}
	deliver := true
	if p.QoS == 2 {
		c.mu.Lock()
		if c.inQoS2 == nil {
			c.inQoS2 = make(map[uint16]struct{})
		}
		_, dup := c.inQoS2[p.PacketID]
		c.inQoS2[p.PacketID] = struct{}{}
		c.mu.Unlock()
		deliver = !dup // [MQTT-4.3.3-9]
	}
	qos, id := p.QoS, p.PacketID
	if deliver && c.opts.OnMessage != nil {
		if !c.opts.ReuseMessages {
			p = copyPublish(p)
		}
		c.callback(func() { c.opts.OnMessage(p) })
	}
	switch qos {
	case 1:
		c.send(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: id})
	case 2:
		c.send(&mqtt.Ack{Kind: mqtt.PUBREC, PacketID: id})
	}
	return nil
}

// copyPublish returns a copy of p that shares no memory with the reader.
func copyPublish(p *mqtt.Publish) *mqtt.Publish {
	q := *p
	q.Props = cloneProps(p.Props)
	if p.Payload != nil {
		q.Payload = append(make([]byte, 0, len(p.Payload)), p.Payload...)
	}
	return &q
}
