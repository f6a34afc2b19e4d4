package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/topic"
)

// ctrl is a packet other than an application message waiting to be written.
// Acknowledgements are kept as values so that acknowledging a publish does not
// allocate.
type ctrl struct {
	kind mqtt.PacketType // PUBACK, PUBREC, PUBREL, PUBCOMP, or 0 for pkt
	id   uint16
	code mqtt.ReasonCode
	pkt  mqtt.Packet
}

// conn is one client network connection. Its reader goroutine (serve) decodes
// and handles packets; its writer runs only while there is something to
// write, so an idle connection costs one goroutine (none while parked). The
// writer is usually run by the reader goroutine that gave it work, before
// that reader next waits for input (see wakeVia): a message then reaches its
// subscriber, and a PUBACK its publisher, without a goroutine of their own.
// When that would block or take long, a writer goroutine (writeLoop) takes
// over.
type conn struct {
	b      *Broker
	nc     net.Conn
	r      *mqtt.Reader
	remote string

	// Set while handling CONNECT, read-only afterwards.
	s         *session
	clientID  string
	version   byte
	keepAlive time.Duration
	maxOut    uint32   // the client's Maximum Packet Size, 0 for none
	recvMax   int      // the client's Receive Maximum, capped by Options.MaxInflight
	aliasMax  uint16   // the client's Topic Alias Maximum
	will      *Message // guarded by s.mu once attached
	willDelay uint32
	connected bool
	since     time.Time // when the client's CONNECT was accepted

	// Security, set while handling CONNECT (see security.go).
	listener   string
	tlsState   *tls.ConnectionState
	preIdent   *auth.Identity // authenticated before CONNECT (ConnInfo.Identity)
	addrKey    string
	admitted   bool // counted by the broker's guard
	ident      *auth.Identity
	controlled bool        // access control is on: $SYS/ needs an administrator
	inAccess   auth.Access // the reader's checker: publish, subscribe
	outAccess  auth.Access // the writer's checker: receive
	mount      string      // the tenant's namespace prefix, "" for none
	pubLimit   *publishLimiter
	auditIn    auditRate // reader only
	auditOut   auditRate // writer only

	// Mesh: what is at the other end (KindClient, or the peer of the link
	// this connection carries, with the link), and whether this end dialed
	// it (and is the MQTT client of the connection). Set before the
	// connection carries messages, read-only afterwards.
	kind       Kind
	link       *Link
	clientMode bool
	endErr     error // why the reader stopped, for Link.Serve
	// writeErr is the write error that made the writer close the socket,
	// when the peer had not closed it: the reason of the connection's end
	// (the reader only sees its socket closed).
	writeErr atomic.Pointer[error]

	// Reader goroutine only.
	inAliases  map[uint16]string // client → broker topic aliases [MQTT-3.3.2-10]
	lastTicket uint64            // journal generation the last PUBLISH's acknowledgement waited for
	lastRead   time.Time         // when the read deadline was last moved
	lastPacket time.Time         // when the last packet arrived
	partial    int               // a link: bytes read ahead at the last packet or progress check (linkProgress)
	parkable   bool              // idle periods may be spent parked in the poller
	parkFd     int32             // the socket while parked
	parkTimer  *time.Timer       // ends a parked connection's keep alive; guarded by the poller
	pending    []*conn           // writers this reader runs before it next waits (see wakeVia)

	// Guarded by s.mu (the session's mutex).
	writing    bool
	rewake     bool // woken while writing: look at the session again before going idle
	dead       bool // a write failed or the connection was closed
	detached   bool // no longer the session's outlet
	closeAfter bool // the server ends the connection: write ctrl, then half-close (see endLocked)
	ctrlq      []ctrl
	acks       []pendingAck // acknowledgements waiting for the store, in order
	wreg       waitReg      // guarded by the journal's mutex

	// Writer only: the writer goroutine or a reader running the writer (one
	// at a time, handed over through writing under s.mu).
	ctrlSpare  []ctrl
	outAliases map[string]uint16
	lastWrite  time.Time // when the write deadline was last moved
	stash      []byte    // what a writer run on a reader left unwritten; the writer goroutine writes it first

	// raw is the socket of a plain TCP connection, for writes that must
	// not block; nil for TLS and WebSocket connections, whose writers always
	// run on goroutines of their own. Set by newConn.
	raw  syscall.RawConn
	sock *sockIO // reads and writes raw's socket; nil without raw

	// ending is set with closeAfter: what the client sends from then on is
	// read and discarded, never handled.
	ending atomic.Bool
	said   bool // writer only: the final DISCONNECT is written; nothing may follow it [MQTT-3.14.4-1]

	closeOnce sync.Once
}

// pendingAck is an acknowledgement that may leave once journal generation
// ticket is durable: it promises what the store now holds.
type pendingAck struct {
	k      ctrl
	ticket uint64
}

// writer is the state of a running writer. It is pooled, so an idle
// connection holds no write buffer.
type writer struct {
	bw      *bufio.Writer
	scratch []byte
	batch   []delivery
	pub     mqtt.Publish
	user    []mqtt.UserProperty // a link's user properties of pub (linkProps), reused
	sink    inlineSink          // bw's destination when the writer runs on a reader
}

var writerPool = sync.Pool{New: func() any {
	w := &writer{bw: bufio.NewWriterSize(nil, 32<<10), scratch: make([]byte, 0, 256), batch: make([]delivery, 0, 64)}
	w.sink.send = w.sink.sendNow
	return w
}}

// inlineSink is where a writer run by a reader goroutine writes: the socket,
// without ever blocking. What the socket does not take at once is appended
// to the connection's stash, in order, and the writer goroutine takes over.
type inlineSink struct {
	c    *conn
	p    []byte // being written by sendNow
	n    int    // written of p
	err  error
	send func(fd uintptr) bool // sendNow, bound once
}

func (k *inlineSink) Write(p []byte) (int, error) {
	c := k.c
	total := len(p)
	if len(c.stash) == 0 {
		k.p, k.n, k.err = p, 0, nil
		err := c.raw.Write(k.send)
		n := k.n
		if err == nil {
			err = k.err
		}
		k.p, k.err = nil, nil
		if err != nil {
			return n, err
		}
		p = p[n:]
	}
	if len(p) > 0 {
		c.stash = append(c.stash, p...)
	}
	return total, nil
}

// maxInline is how many connections' writers one reader runs itself for what
// it read in one go (a publish to many subscribers); the others get writer
// goroutines, which the two can run in parallel.
const maxInline = 8

// inlineBatches is how many batches a writer run by a reader writes before
// the writer goroutine takes over the rest: the reader has its own client
// to serve.
const inlineBatches = 2

func newConn(b *Broker, nc net.Conn, info ConnInfo) *conn {
	c := &conn{b: b, nc: nc, remote: nc.RemoteAddr().String(), listener: info.Listener, tlsState: info.TLS, preIdent: info.Identity}
	if c.listener == "" {
		c.listener = "mqtt"
	}
	c.raw = rawSocket(nc)
	var src io.Reader = nc
	if c.sock = newSockIO(c.raw); c.sock != nil {
		src = c.sock
	}
	c.r = mqtt.NewReader(src, 16<<10)
	c.r.MaxPacketSize = b.opts.MaxPacketSize
	c.r.ReuseAcks = true
	return c
}

func (c *conn) logger() *slog.Logger {
	return c.b.log.With("client", c.clientID, "remote", c.remote)
}

// debug logs at debug level, building the connection's logger only when the
// level is enabled.
func (c *conn) debug(msg string, args ...any) {
	if c.b.log.Enabled(context.Background(), slog.LevelDebug) {
		c.logger().Debug(msg, args...)
	}
}

// closeSocket closes the network connection once; a parked connection is
// resumed so that its reader sees the close and cleans up. It is resumed
// before the socket closes: once closed, the descriptor's number may go to a
// new connection that parks under it.
func (c *conn) closeSocket() {
	c.closeOnce.Do(func() {
		c.b.poller.unpark(c)
		c.nc.Close()
		b := c.b
		b.mu.Lock()
		delete(b.conns, c) // the broker holds it until the socket is closed
		b.mu.Unlock()
	})
}

// lingerTime bounds how long a connection that the server ends on purpose
// stays open after its final packet: long enough for the client to read it
// and close, short enough that a client that does not costs little.
const lingerTime = time.Second

// halfClose shuts down the write side of the connection: the client reads
// everything written so far, then end of file. Closing the socket outright
// while the client's unread bytes are still in its receive buffer makes the
// kernel answer with RST, which destroys the final packet in flight (the
// client sees a connection reset instead of DISCONNECT or CONNACK).
func halfClose(nc net.Conn) {
	switch x := nc.(type) {
	case *tls.Conn:
		x.CloseWrite() // close_notify
		halfClose(x.NetConn())
	case interface{ CloseWrite() error }:
		x.CloseWrite()
	}
}

// drain reads and discards what the client still sends, until it closes the
// connection or lingerTime has passed.
func (c *conn) drain() {
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, c.nc)
}

// endLocked ends the connection on the server's initiative: DISCONNECT with
// code and reason (MQTT 5 only, and only when send is set) is the last
// packet written, after what is queued already; the writer then half-closes
// the connection, and what the client sends from now on is discarded. The
// socket is closed once the client has closed its side, or after
// 2 × lingerTime at the latest. Called with s.mu held.
func (c *conn) endLocked(code mqtt.ReasonCode, reason string, send bool) {
	if c.closeAfter {
		return // ending already: one DISCONNECT at most
	}
	if send && c.version >= mqtt.V5 && !c.dead {
		d := &mqtt.Disconnect{ReasonCode: code}
		if reason != "" && len(reason) < 256 {
			d.Props.ReasonString = reason
		}
		c.ctrlq = append(c.ctrlq, ctrl{pkt: d})
	}
	c.closeAfter = true
	c.ending.Store(true)
	c.wakeLocked()
	time.AfterFunc(2*lingerTime, c.b.tracked(c.closeSocket))
}

// idleAfter is how long a connection may be silent before it is parked.
const idleAfter = 5 * time.Second

// serve is the connection's first reader goroutine: it handles CONNECT and
// then reads packets until the connection ends or parks.
func (c *conn) serve() {
	c.b.stats.connects.Add(1)
	if c.connect() {
		c.readLoop(true)
		return
	}
	c.cleanup()
}

// resume continues reading after the connection was parked.
func (c *conn) resume() {
	c.lastRead = time.Time{} // move the read deadline before reading
	c.readLoop(false)
}

// connect reads and handles CONNECT, and reports whether the client is
// connected.
func (c *conn) connect() bool {
	c.nc.SetReadDeadline(time.Now().Add(c.b.opts.ConnectTimeout))
	pkt, err := c.r.ReadPacket()
	if err != nil {
		var me *mqtt.Error
		if errors.As(err, &me) {
			c.b.stats.protocolErrors.Add(1)
			c.logger().Warn("bad CONNECT; closing", "err", err)
			if cp, ok := pkt.(*mqtt.Connect); ok && me.Code == mqtt.UnsupportedProtocolVersion {
				c.refuse(cp.Version, mqtt.UnsupportedProtocolVersion) // [MQTT-3.1.2-2]
			} else if ok && cp.Version == mqtt.V5 {
				c.refuse(mqtt.V5, me.Code)
			}
		} else if !isClosedErr(err) {
			c.b.log.Debug("connection ended before CONNECT", "remote", c.remote, "err", err)
		}
		return false
	}
	cp, ok := pkt.(*mqtt.Connect)
	if !ok {
		// The first packet must be CONNECT [MQTT-3.1.0-1].
		c.b.stats.protocolErrors.Add(1)
		c.b.log.Warn("first packet is not CONNECT; closing", "remote", c.remote, "type", pkt.Type())
		return false
	}
	c.lastPacket = c.b.now()
	if _, ok := c.nc.(syscall.Conn); ok && c.b.poller != nil {
		c.parkable = true
	}
	return c.handleConnect(cp)
}

// readLoop reads and handles packets until the connection ends, or until it
// parks while idle (right after CONNECT if nothing follows, or after
// idleAfter of silence); then the goroutine ends and the poller starts a new
// one when there is something to read.
func (c *conn) readLoop(first bool) {
	if first && c.r.Buffered() == 0 && c.tryPark() {
		return
	}
	for {
		if c.r.Buffered() == 0 && c.keepAliveExpired() {
			c.readFailed(os.ErrDeadlineExceeded)
			break
		}
		if len(c.pending) > 0 && !c.r.PacketBuffered() {
			c.flushPending() // before the reader waits for input
		}
		c.refreshDeadline()
		pkt, err := c.r.ReadPacket()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && (c.linkProgress() || !c.keepAliveExpired()) {
				if c.r.Buffered() == 0 && c.tryPark() {
					return
				}
				c.lastRead = time.Time{}
				continue
			}
			c.readFailed(err)
			break
		}
		c.lastPacket = c.b.now()
		c.partial = c.r.Buffered()
		if c.ending.Load() {
			continue // the server has ended the connection: discarded
		}
		if err := c.handle(pkt); err != nil {
			c.protocolFailure(err)
			break
		}
		if _, ok := pkt.(*mqtt.Disconnect); ok {
			break
		}
	}
	c.cleanup()
}

// keepAliveExpired reports whether one and a half keep alive periods have
// passed since the last packet [MQTT-3.1.2-24].
func (c *conn) keepAliveExpired() bool {
	return c.keepAlive > 0 && c.b.now().Sub(c.lastPacket) >= c.keepAlive*3/2
}

// tryPark parks the connection in the poller, if it can be, and reports
// whether it did.
func (c *conn) tryPark() bool {
	c.flushPending()
	if !c.parkable {
		return false
	}
	var until time.Time
	if c.keepAlive > 0 {
		until = c.lastPacket.Add(c.keepAlive * 3 / 2)
		if !until.After(c.b.now()) {
			return false
		}
	}
	return c.b.poller.park(c, until)
}

// refreshDeadline moves the read deadline to one and a half keep alive
// periods after the last packet [MQTT-3.1.2-24], or sooner (to park an idle
// connection, or to see a mesh link's long packet progress: linkProgress),
// at most a few times per period. A deadline that passes before the keep
// alive has (packets came since it was set) is moved again by readLoop, so
// that a connection gone silent is closed one and a half periods after its
// last packet, not up to a period later.
func (c *conn) refreshDeadline() {
	ka := c.keepAlive * 3 / 2
	period := ka
	switch {
	case c.kind.IsLink() && ka > 0:
		period = c.keepAlive / 2
	case c.parkable && (period == 0 || period > idleAfter):
		period = idleAfter // wake up to park when idle
	}
	if period == 0 {
		return
	}
	now := c.b.now()
	if now.Sub(c.lastRead) < period/4 {
		return
	}
	c.lastRead = now
	deadline := now.Add(period)
	// Two ticks of margin let the broker's coarse clock pass it too.
	if expiry := c.lastPacket.Add(ka + 2*clockTick); ka > 0 && expiry.Before(deadline) {
		deadline = expiry
	}
	c.nc.SetReadDeadline(deadline)
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

// readFailed handles an error from ReadPacket after CONNECT.
func (c *conn) readFailed(err error) {
	c.endErr = err
	var me *mqtt.Error
	switch {
	case c.ending.Load():
		// The server ended the connection; the client closed, or lingered.
	case errors.As(err, &me):
		c.protocolFailure(me)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.logger().Info("keep alive timeout; closing")
		c.sendDisconnect(mqtt.KeepAliveTimeout, "")
	case c.writeErr.Load() != nil:
		// The writer closed the socket and logged why.
	case isClosedErr(err):
		c.debug("connection closed by peer")
	default:
		c.debug("read failed", "err", err)
	}
}

// protocolFailure logs a protocol violation and answers it as the
// specification asks: DISCONNECT with the reason code for MQTT 5, closing the
// connection for MQTT 3.1.1 [MQTT-4.13.1-1].
func (c *conn) protocolFailure(err error) {
	c.endErr = err
	c.b.stats.protocolErrors.Add(1)
	code := mqtt.UnspecifiedError
	var me *mqtt.Error
	if errors.As(err, &me) {
		code = me.Code
	}
	c.logger().Warn("protocol violation; disconnecting", "err", err, "reason", code)
	c.sendDisconnect(code, err.Error())
}

// sendDisconnect ends the connection with a DISCONNECT (MQTT 5 only; see
// endLocked).
func (c *conn) sendDisconnect(code mqtt.ReasonCode, reason string) {
	s := c.s
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.endLocked(code, reason, true)
}

// refuse writes a CONNACK that refuses the connection, synchronously, before
// any session exists [MQTT-3.2.2-7].
func (c *conn) refuse(version byte, code mqtt.ReasonCode) { c.refuseWith(version, code, "") }

// refuseWith refuses as refuse does, saying why in an MQTT 5 Reason String.
func (c *conn) refuseWith(version byte, code mqtt.ReasonCode, why string) {
	ack := &mqtt.Connack{ReasonCode: code}
	if why != "" {
		ack.Props.ReasonString = why
	}
	if version != mqtt.V5 {
		// MQTT 3.1 and 3.1.1 CONNACK, also for unknown protocol levels.
		ack.ReasonCode = code.V3ConnackCode()
		version = mqtt.V311
	}
	buf, err := ack.AppendTo(nil, version)
	if err != nil {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.nc.Write(buf); err != nil {
		return
	}
	// The client reads the CONNACK before the connection closes.
	halfClose(c.nc)
	c.drain()
}

// cleanup runs when the reader goroutine ends.
func (c *conn) cleanup() {
	c.flushPending()
	b := c.b
	b.stats.disconnects.Add(1)
	if c.admitted {
		b.guard.release(c.addrKey)
	}
	if c.s == nil {
		c.closeSocket()
		return
	}
	b.detach(c)
	s := c.s
	s.mu.Lock()
	pending := c.writing
	ending := c.closeAfter
	if !pending {
		c.dead = true
	}
	s.mu.Unlock()
	switch {
	case ending:
		// The server ended the connection: the writer sends the final
		// packet and half-closes, the client reads it and closes.
		c.drain()
		c.closeSocket()
	case pending:
		// Let the writer finish what it has, but never wait long.
		time.AfterFunc(time.Second, b.tracked(c.closeSocket))
	default:
		c.closeSocket()
	}
}

// handleConnect handles the CONNECT packet. It reports whether the connection
// was accepted.
func (c *conn) handleConnect(p *mqtt.Connect) bool {
	b := c.b
	c.version = p.Version
	c.r.Version = p.Version
	v5 := p.Version >= mqtt.V5
	id := p.ClientID
	c.clientID = id
	if v5 && p.Props.AuthMethod != "" {
		// Enhanced authentication is not offered [MQTT-4.12.0-1].
		c.logger().Warn("refusing enhanced authentication", "method", p.Props.AuthMethod)
		c.refuse(p.Version, mqtt.BadAuthenticationMethod)
		return false
	}
	assigned := false
	if id == "" {
		if !v5 && !p.CleanStart {
			// [MQTT-3.1.3-8] (3.1.1): a zero-byte ClientId needs CleanSession=1.
			c.refuse(p.Version, mqtt.ClientIdentifierNotValid)
			return false
		}
		id = newClientID() // [MQTT-3.1.3-6]
		c.clientID = id
		assigned = v5
	}
	if code := c.admit(p, id); code != mqtt.Success {
		c.refuse(p.Version, code)
		return false
	}
	if hasPrefix(id, LinkSessionPrefix) {
		if code, why := c.acceptLink(p, id); code != mqtt.Success {
			c.refuseWith(p.Version, code, why)
			return false
		}
	}
	if p.Will != nil {
		if err := topic.ValidName(p.Will.Topic); err != nil || b.opts.Limits.topicTooLong(p.Will.Topic) {
			c.logger().Warn("invalid will topic; refusing", "err", err)
			c.refuse(p.Version, mqtt.TopicNameInvalid)
			return false
		}
		if !c.mayPublish(p.Will.Topic) {
			// A will is a publish like any other [MQTT-3.1.2-8]: refused at
			// once, rather than dropped when the connection is lost.
			c.refuse(p.Version, mqtt.NotAuthorized)
			return false
		}
		if v5 && p.Will.Props.PayloadFormat == 1 && !utf8.Valid(p.Will.Payload) {
			c.refuse(p.Version, mqtt.PayloadFormatInvalid) // MQTT 5.0 §3.1.3.2.3 Payload Format Indicator
			return false
		}
		wp := &mqtt.Publish{QoS: p.Will.QoS, Retain: p.Will.Retain, Payload: p.Will.Payload, Props: p.Will.Props}
		c.will = newMessage(wp, c.mount+p.Will.Topic, c.mount+id, time.Now)
		c.will.Expires = time.Time{} // the interval counts from when the will is published
		c.willDelay = p.Will.Props.WillDelay
	}

	ack := &mqtt.Connack{}
	ka := p.KeepAlive
	if v5 && b.opts.MaxKeepAlive > 0 && (ka == 0 || ka > b.opts.MaxKeepAlive) {
		ka = b.opts.MaxKeepAlive
		ack.Props.ServerKeepAlive = ka // [MQTT-3.2.2-21]
		ack.Props.Set(mqtt.PropServerKeepAlive)
	}
	if c.kind.IsLink() {
		ka = c.linkKeepAlive(ka, ack)
	}
	c.keepAlive = time.Duration(ka) * time.Second
	if ka == 0 {
		c.nc.SetReadDeadline(time.Time{}) // keep alive off [MQTT-3.1.2-22 ff.]
	}
	var expiry uint32
	switch {
	case c.kind.IsLink():
		expiry = NeverExpire // a link's queue waits for its peer
	case v5:
		expiry = p.Props.SessionExpiry // [MQTT-3.1.2-11 ff.]
	case !p.CleanStart:
		expiry = NeverExpire
	}
	if b.opts.MaxSessionExpiry > 0 && expiry > b.opts.MaxSessionExpiry && !c.kind.IsLink() {
		expiry = b.opts.MaxSessionExpiry
		if v5 {
			ack.Props.SessionExpiry = expiry
		}
	}
	c.recvMax = int(b.opts.MaxInflight)
	if v5 {
		if rm := p.Props.ReceiveMaximum; rm > 0 && int(rm) < c.recvMax {
			c.recvMax = int(rm) // [MQTT-3.3.4-7]
		}
		c.maxOut = p.Props.MaximumPacketSize
		c.aliasMax = p.Props.TopicAliasMaximum
		// Reason strings go only on CONNACK and DISCONNECT, which Request
		// Problem Information 0 still allows [MQTT-3.1.2-29].
		ack.Props.ReceiveMaximum = b.opts.ReceiveMaximum
		ack.Props.MaximumPacketSize = b.opts.MaxPacketSize
		ack.Props.TopicAliasMaximum = b.opts.TopicAliasMaximum
		if assigned {
			ack.Props.AssignedClientID = id // [MQTT-3.2.2-16]
		}
	}
	c.connected = true
	// A tenant's client identifiers are its own: the session is kept under
	// the namespace, so another tenant's client with the same identifier is
	// another session.
	b.attach(c, c.mount+id, p.CleanStart, expiry, ack)
	if c.kind.IsLink() {
		c.link.setUp(true)
	}
	c.debug("client connected", "version", p.Version, "clean", p.CleanStart, "keepalive", ka, "expiry", expiry)
	return true
}

// handle dispatches one packet received after CONNECT.
func (c *conn) handle(pkt mqtt.Packet) error {
	switch p := pkt.(type) {
	case *mqtt.Publish:
		return c.handlePublish(p)
	case *mqtt.Ack:
		return c.handleAck(p)
	case *mqtt.Subscribe:
		return c.handleSubscribe(p)
	case *mqtt.Unsubscribe:
		return c.handleUnsubscribe(p)
	case *mqtt.Pingreq:
		c.sendCtrl(ctrl{pkt: &mqtt.Pingresp{}}) // [MQTT-3.12.4-1]
		return nil
	case *mqtt.Suback:
		if c.clientMode { // a bridge's subscriptions at the foreign broker
			for i, code := range p.ReasonCodes {
				if code.IsError() {
					c.logger().Warn("bridge: subscription refused by the foreign broker", "index", i, "reason", code)
				}
			}
			return nil
		}
		return mqtt.Errorf(mqtt.ProtocolError, "SUBACK from a client")
	case *mqtt.Pingresp:
		if c.clientMode {
			return nil // the answer to this end's keep alive
		}
		return mqtt.Errorf(mqtt.ProtocolError, "PINGRESP from a client")
	case *mqtt.Disconnect:
		return c.handleDisconnect(p)
	case *mqtt.Connect:
		return mqtt.Errorf(mqtt.ProtocolError, "second CONNECT") // [MQTT-3.1.0-2]
	case *mqtt.Auth:
		return mqtt.Errorf(mqtt.ProtocolError, "AUTH without enhanced authentication") // MQTT 5.0 §4.12
	default:
		return mqtt.Errorf(mqtt.ProtocolError, "unexpected %s from a client", pkt.Type())
	}
}

// sendCtrl queues a control packet and wakes the writer.
func (c *conn) sendCtrl(k ctrl) {
	s := c.s
	s.mu.Lock()
	c.ctrlq = append(c.ctrlq, k)
	c.wakeLocked()
	s.mu.Unlock()
}

// sendAck queues an acknowledgement that may leave only once journal
// generation ticket is durable (0: at once). Acknowledgements leave in the
// order they were queued, as PUBACK and PUBREC must [MQTT-4.6.0-2]
// [MQTT-4.6.0-3]. Only the reader goroutine calls it.
func (c *conn) sendAck(k ctrl, ticket uint64) {
	s := c.s
	j := c.b.journal
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(c.acks) == 0 && (ticket == 0 || j.isDurable(ticket)) {
		c.ctrlq = append(c.ctrlq, c.checkedAck(k, ticket))
		c.wakeVia(c.inlineList())
		return
	}
	c.acks = append(c.acks, pendingAck{k, ticket})
	if len(c.acks) == 1 && !j.await(c, ticket) {
		c.releaseAcksLocked()
	}
}

// checkedAck turns an acknowledgement into an error one when the store
// failed to make its write durable (MQTT 5; an MQTT 3.1.1 client has no such
// code and the connection is closed instead, so that it sends again later).
func (c *conn) checkedAck(k ctrl, ticket uint64) ctrl {
	if ticket == 0 || c.b.journal.err() == nil || k.kind == 0 || k.code.IsError() {
		return k
	}
	if c.version >= mqtt.V5 {
		k.code = mqtt.UnspecifiedError
		return k
	}
	c.endLocked(0, "", false)
	return ctrl{} // nothing is written; the connection closes
}

// releaseAcksLocked moves the acknowledgements whose writes are durable to
// the writer, in order, and waits for the next one. Called with s.mu held.
func (c *conn) releaseAcksLocked() {
	j := c.b.journal
	for {
		n := 0
		for n < len(c.acks) && j.isDurable(c.acks[n].ticket) {
			c.ctrlq = append(c.ctrlq, c.checkedAck(c.acks[n].k, c.acks[n].ticket))
			n++
		}
		if n > 0 {
			clear(c.acks[:n])
			c.acks = c.acks[n:]
			if len(c.acks) == 0 {
				c.acks = nil
			}
			c.wakeLocked()
		}
		if len(c.acks) == 0 || j.await(c, c.acks[0].ticket) {
			return
		}
	}
}

// durable implements waiter.
func (c *conn) durable() {
	s := c.s
	s.mu.Lock()
	c.releaseAcksLocked()
	s.mu.Unlock()
}

// reg implements waiter.
func (c *conn) reg() *waitReg { return &c.wreg }

func (c *conn) handlePublish(p *mqtt.Publish) error {
	b := c.b
	v5 := c.version >= mqtt.V5
	name := p.Topic
	if v5 && p.Props.TopicAlias != 0 {
		alias := p.Props.TopicAlias
		if alias > b.opts.TopicAliasMaximum {
			return mqtt.Errorf(mqtt.TopicAliasInvalid, "topic alias %d above maximum %d", alias, b.opts.TopicAliasMaximum) // [MQTT-3.3.2-9]
		}
		if name != "" {
			if c.inAliases == nil {
				c.inAliases = make(map[uint16]string)
			}
			c.inAliases[alias] = name
		} else {
			var ok bool
			if name, ok = c.inAliases[alias]; !ok {
				return mqtt.Errorf(mqtt.ProtocolError, "unknown topic alias %d", alias) // MQTT 5.0 §3.3.2.3.4
			}
		}
	}
	if name == "" {
		return mqtt.Errorf(mqtt.ProtocolError, "empty topic name without topic alias") // [MQTT-3.3.2-1]
	}
	if c.link != nil && c.link.InTopic != nil {
		local, ok := c.link.InTopic(name)
		if !ok {
			c.link.dropped.imported.Add(1)
			return c.ackPublish(p, mqtt.Success, 0)
		}
		name = local
	}
	if c.kind.IsNode() && hasPrefix(name, ControlPrefix) {
		// The mesh's own messages between the ends of a link.
		if h := b.opts.Mesh; h != nil {
			h.Control(c.link, name, append([]byte(nil), p.Payload...))
		}
		return c.ackPublish(p, mqtt.Success, 0)
	}
	if b.opts.Limits.topicTooLong(name) {
		return c.ackPublish(p, mqtt.TopicNameInvalid, 0)
	}
	if !c.mayPublish(name) {
		return c.ackPublish(p, mqtt.NotAuthorized, 0)
	}
	if v5 && p.Props.PayloadFormat == 1 && !utf8.Valid(p.Payload) {
		return c.ackPublish(p, mqtt.PayloadFormatInvalid, 0) // MQTT 5.0 §3.3.2.3.2
	}
	s := c.s
	if p.QoS == 2 {
		s.mu.Lock()
		_, dup := s.inQoS2[p.PacketID]
		if !dup && len(s.inQoS2) >= int(b.opts.ReceiveMaximum) {
			s.mu.Unlock()
			return mqtt.Errorf(mqtt.ReceiveMaximumExceeded, "more than %d unacknowledged QoS 2 publishes", b.opts.ReceiveMaximum) // [MQTT-3.3.4-9]
		}
		s.mu.Unlock()
		if dup {
			// A resent PUBLISH of an exchange in progress is acknowledged
			// again but not delivered twice [MQTT-4.3.3-10]. The PUBREC
			// waits for whatever the first one waits for.
			c.sendAck(ctrl{kind: mqtt.PUBREC, id: p.PacketID}, c.lastTicket)
			return nil
		}
	}
	var linkSeq uint64
	if c.kind.IsNode() && p.QoS == 1 {
		// A QoS 1 message that the peer sends again after a reconnect or a
		// restart, and that was taken in already, is acknowledged and not
		// routed again: the peer numbers what it sends in order.
		if linkSeq = meshSeq(&p.Props); linkSeq > 0 {
			s := c.s
			s.mu.Lock()
			dup := p.Dup && linkSeq <= s.linkSeq
			if !dup {
				s.linkSeq = linkSeq // (a lower number without DUP: the peer's queue began again)
			}
			s.mu.Unlock()
			if dup {
				// Its first copy may still be on its way to the store
				// (taken in on the connection that broke): the peer drops
				// its own copy on this PUBACK, so it waits for every write
				// made so far, the first copy's among them.
				c.link.dropped.duplicate.Add(1)
				var ticket uint64
				if b.journal != nil {
					ticket = b.journal.written()
				}
				return c.ackPublish(p, mqtt.Success, ticket)
			}
		}
	}
	c.throttle(len(p.Payload))
	if b.journal != nil && p.QoS > 0 {
		b.journal.waitRoom(c.flushPending) // the store sets the pace when it is the slower
		if p.QoS == 2 || linkSeq > 0 {
			// (A link's QoS 1 message and its sequence number, likewise.)
			// Every write of this message, in every session and the
			// inbound record, in one commit (see journal.hold).
			b.journal.hold()
			defer b.journal.release()
		}
	}
	msg := newMessage(p, c.mount+name, s.id, c.b.clockFn)
	if c.kind.IsLink() && !b.takeIn(c.link, msg) || !c.kind.IsLink() && !b.takeTagged(msg) {
		return c.ackPublish(p, mqtt.Success, 0) // taken, and dropped: a loop or outside the link's grants
	}
	b.stats.msgsIn.Add(1)
	b.stats.bytesIn.Add(uint64(len(msg.Payload)))
	r := b.publishVia(msg, c.inlineList())
	if linkSeq > 0 && c.s.persist {
		// r.ticket > 0: the message was written to some session's queue.
		r.ticket = max(r.ticket, b.journal.putLinkSeq(c.s.id, linkSeq, r.ticket > 0))
	}
	code := mqtt.Success
	switch {
	case r.matched > 0 && r.queued == 0 && r.full > 0:
		code = mqtt.QuotaExceeded // every subscriber's queue is full
	case r.matched == 0 && v5 && c.kind == KindClient:
		code = mqtt.NoMatchingSubscribers
	}
	if p.QoS == 2 && !code.IsError() {
		// Remember the packet identifier until PUBREL [MQTT-4.3.3-9]; a
		// durable session remembers it in the store, in the same commit
		// as the message's entries, before PUBREC leaves.
		s.mu.Lock()
		if s.inQoS2 == nil {
			s.inQoS2 = make(map[uint16]struct{})
		}
		s.inQoS2[p.PacketID] = struct{}{}
		if s.persist {
			gen, _ := b.journal.write(func(bt *store.Batch) error { bt.PutInbound(s.id, p.PacketID); return nil })
			r.ticket = max(r.ticket, gen)
		}
		s.mu.Unlock()
	}
	c.lastTicket = r.ticket
	return c.ackPublish(p, code, r.ticket)
}

func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

// ackPublish sends PUBACK for QoS 1 [MQTT-4.3.2-4] or PUBREC for QoS 2
// [MQTT-4.3.3-8] once journal generation ticket is durable: the message is
// then safe in every durable session it was queued for. MQTT 3.1.1 has no
// error acknowledgements: a refused QoS 1 or 2 message is acknowledged and
// dropped, a refused QoS 0 message dropped.
func (c *conn) ackPublish(p *mqtt.Publish, code mqtt.ReasonCode, ticket uint64) error {
	if c.version < mqtt.V5 && code.IsError() {
		code = mqtt.Success
	}
	switch p.QoS {
	case 1:
		c.sendAck(ctrl{kind: mqtt.PUBACK, id: p.PacketID, code: code}, ticket)
	case 2:
		c.sendAck(ctrl{kind: mqtt.PUBREC, id: p.PacketID, code: code}, ticket)
	}
	return nil
}

func (c *conn) handleAck(a *mqtt.Ack) error {
	s := c.s
	switch a.Kind {
	case mqtt.PUBREL:
		s.mu.Lock()
		_, ok := s.inQoS2[a.PacketID]
		delete(s.inQoS2, a.PacketID)
		var ticket uint64
		if ok && s.persist {
			// The identifier may be used again once PUBCOMP is sent: its
			// record must be gone from the store first, or a restart would
			// take the next message with it for a duplicate.
			ticket, _ = c.b.journal.write(func(bt *store.Batch) error { bt.DeleteInbound(s.id, a.PacketID); return nil })
		}
		s.mu.Unlock()
		code := mqtt.Success
		if !ok && c.version >= mqtt.V5 {
			code = mqtt.PacketIdentifierNotFound
		}
		c.sendAck(ctrl{kind: mqtt.PUBCOMP, id: a.PacketID, code: code}, ticket) // [MQTT-4.3.3-11]
		return nil
	case mqtt.PUBACK, mqtt.PUBREC, mqtt.PUBCOMP:
		known, rel, ticket := s.acknowledge(a.Kind, a.PacketID, a.ReasonCode, c.inlineList())
		if !known {
			if a.Kind == mqtt.PUBREC && c.version >= mqtt.V5 {
				c.sendCtrl(ctrl{kind: mqtt.PUBREL, id: a.PacketID, code: mqtt.PacketIdentifierNotFound})
			}
			c.debug("acknowledgement for unknown packet identifier", "type", a.Kind, "id", a.PacketID)
			return nil
		}
		if rel {
			c.sendAck(ctrl{kind: mqtt.PUBREL, id: a.PacketID}, ticket) // [MQTT-4.3.3-4]
		}
		return nil
	}
	return mqtt.Errorf(mqtt.ProtocolError, "unexpected %s", a.Kind)
}

func (c *conn) handleSubscribe(p *mqtt.Subscribe) error {
	b := c.b
	s := c.s
	v5 := c.version >= mqtt.V5
	ack := &mqtt.Suback{PacketID: p.PacketID, ReasonCodes: make([]mqtt.ReasonCode, len(p.Subscriptions))}
	var subIDs []uint32
	if len(p.Props.SubscriptionIDs) > 0 {
		subIDs = []uint32{p.Props.SubscriptionIDs[0]}
	}
	type retainedReq struct {
		filter string
		opts   subOptions
	}
	var wantRetained []retainedReq
	refuse := func(i int, code mqtt.ReasonCode) {
		ack.ReasonCodes[i] = code // MQTT 5.0 §3.9.3
		if !v5 {
			ack.ReasonCodes[i] = 0x80 // 3.1.1 failure return code
		}
	}
	for i, sub := range p.Subscriptions {
		if err := topic.ValidFilter(sub.Filter); err != nil || b.opts.Limits.topicTooLong(sub.Filter) {
			c.logger().Info("refusing subscription", "filter", sub.Filter, "err", err)
			refuse(i, mqtt.TopicFilterInvalid)
			continue
		}
		_, inner, shared := topic.ParseShared(sub.Filter)
		if shared && sub.NoLocal {
			return mqtt.Errorf(mqtt.ProtocolError, "No Local on shared subscription %q", sub.Filter) // [MQTT-3.8.3-4]
		}
		if !shared {
			inner = sub.Filter
		}
		if !c.maySubscribe(inner) {
			refuse(i, mqtt.NotAuthorized)
			continue
		}
		filter := c.mountFilter(sub.Filter)
		if max := b.opts.Limits.MaxSubscriptions; max > 0 {
			s.mu.Lock()
			_, has := s.subs[filter]
			full := !has && len(s.subs) >= max
			s.mu.Unlock()
			if full {
				refuse(i, mqtt.QuotaExceeded)
				continue
			}
		}
		opts := subOptions{qos: min(sub.QoS, 2), noLocal: sub.NoLocal, retainAsPublished: sub.RetainAsPublished,
			retainHandling: sub.RetainHandling, subIDs: subIDs}
		existed := b.index.Subscribe(filter, s, opts) // replaces an existing one [MQTT-3.8.4-3]
		if !existed {
			b.noteInterest(s, filter, 1)
		}
		s.mu.Lock()
		s.addSubLocked(filter, opts)
		s.mu.Unlock()
		ack.ReasonCodes[i] = mqtt.ReasonCode(opts.qos) // [MQTT-3.8.4-6]
		// Retained messages are not sent for shared subscriptions
		// (MQTT 5.0 §4.8.2); Retain Handling decides for others
		// [MQTT-3.3.1-9][MQTT-3.3.1-10][MQTT-3.3.1-11].
		if !shared && (opts.retainHandling == 0 || (opts.retainHandling == 1 && !existed)) {
			wantRetained = append(wantRetained, retainedReq{filter, opts})
		}
	}
	c.sendAck(ctrl{pkt: ack}, b.persistSession(s)) // [MQTT-3.8.4-1], once the subscriptions are stored
	now := time.Now()
	for _, r := range wantRetained {
		b.ret.match(r.filter, func(m *Message) {
			if m.expired(now) {
				return
			}
			// Sent with RETAIN set [MQTT-3.3.1-8].
			s.enqueue(delivery{msg: m, qos: min(m.QoS, r.opts.qos), retain: true, subIDs: r.opts.subIDs})
		})
	}
	return nil
}

func (c *conn) handleUnsubscribe(p *mqtt.Unsubscribe) error {
	s := c.s
	ack := &mqtt.Unsuback{PacketID: p.PacketID}
	if c.version >= mqtt.V5 {
		ack.ReasonCodes = make([]mqtt.ReasonCode, len(p.Filters))
	}
	for i, f := range p.Filters {
		f = c.mountFilter(f)
		existed := c.b.index.Unsubscribe(f, s) // [MQTT-3.10.4-1]
		if existed {
			c.b.noteInterest(s, f, -1)
		}
		s.mu.Lock()
		delete(s.subs, f)
		s.mu.Unlock()
		if ack.ReasonCodes != nil && !existed {
			ack.ReasonCodes[i] = mqtt.NoSubscriptionExisted
		}
	}
	c.sendAck(ctrl{pkt: ack}, c.b.persistSession(s)) // [MQTT-3.10.4-4]
	return nil
}

func (c *conn) handleDisconnect(p *mqtt.Disconnect) error {
	if c.clientMode {
		c.endErr = fmt.Errorf("the peer disconnected: %s %s", p.ReasonCode, p.Props.ReasonString)
		return nil
	}
	s := c.s
	if c.version >= mqtt.V5 && p.Props.Has(mqtt.PropSessionExpiry) {
		s.mu.Lock()
		was := s.expiry
		if was == 0 && p.Props.SessionExpiry != 0 {
			s.mu.Unlock()
			return mqtt.Errorf(mqtt.ProtocolError, "session expiry set on DISCONNECT after 0 on CONNECT") // [MQTT-3.14.2-2]
		}
		s.expiry = p.Props.SessionExpiry
		if max := c.b.opts.MaxSessionExpiry; max > 0 && s.expiry > max {
			s.expiry = max
		}
		s.mu.Unlock()
		c.b.persistSession(s)
	}
	if p.ReasonCode != mqtt.DisconnectWithWill {
		s.mu.Lock()
		had := c.will != nil
		c.will = nil // a normal DISCONNECT discards the will [MQTT-3.14.4-3]
		s.mu.Unlock()
		if had {
			c.b.forgetWill(c.clientID)
		}
	}
	c.debug("client disconnected", "reason", p.ReasonCode)
	return nil
}

// wake starts the writer goroutine if it is not running. It implements
// outlet; the session's mutex is held.
func (c *conn) wake() { c.wakeLocked() }

// wakeVia is wake for a caller that is a reader goroutine with its list of
// pending writers: instead of starting a writer goroutine, it adds c to the
// list, and the reader runs c's writer itself before it next waits
// (flushPending). A message then goes out without the delay of scheduling a
// goroutine, and a reader that handles many packets from one read still
// writes each connection's share in one system call. Connections whose
// sockets cannot be written without blocking (TLS, WebSocket), and those
// beyond maxInline, get a writer goroutine. Called with c's session mutex
// held.
func (c *conn) wakeVia(pending *[]*conn) {
	if c.raw == nil || pending == nil || len(*pending) >= maxInline || c.dead || c.writing {
		c.wakeLocked()
		return
	}
	c.writing = true
	*pending = append(*pending, c)
}

// inlineList returns the reader's list of pending writers for wakeVia when
// the packet being handled is the last one read: the reader is about to
// wait for input, so the writers run at once. With more packets read and
// waiting (a client sending faster than the broker handles), it returns
// nil and writers get goroutines of their own, as a writer claimed now
// would wait for the reader to handle all of them first. Only the reader
// goroutine calls it.
func (c *conn) inlineList() *[]*conn {
	if c.r.PacketBuffered() {
		return nil
	}
	return &c.pending
}

// flushPending runs the writers this reader took on (see wakeVia). Only the
// reader goroutine calls it; it must before it waits for anything that may
// take long.
func (c *conn) flushPending() {
	for i := 0; i < len(c.pending); i++ {
		x := c.pending[i]
		c.pending[i] = nil
		x.writeInline()
	}
	c.pending = c.pending[:0]
}

func (c *conn) wakeLocked() {
	if c.dead {
		return
	}
	if c.writing {
		// The writer may have looked already (paging from the store, say,
		// with the mutex released): it must look again before it stops.
		c.rewake = true
		return
	}
	c.writing = true
	if !c.b.background(c.writeLoop) {
		c.writing = false // the broker has shut down
	}
}

// detach implements outlet: the session has been taken over by another
// connection [MQTT-3.1.4-3].
func (c *conn) detach(reason mqtt.ReasonCode) {
	c.detached = true
	c.endLocked(reason, "", true)
}

// writeLoop is the writer goroutine: it writes queued control packets and
// deliveries until there is nothing left, flushing whenever it runs dry.
func (c *conn) writeLoop() {
	w := writerPool.Get().(*writer)
	if c.sock != nil {
		w.bw.Reset(c.sock)
	} else {
		w.bw.Reset(c.nc)
	}
	if len(c.stash) > 0 {
		// What a writer run on a reader could not write: first, in order.
		now := c.b.now()
		c.lastWrite = now
		c.nc.SetWriteDeadline(now.Add(c.b.opts.WriteTimeout))
		_, err := w.bw.Write(c.stash)
		if cap(c.stash) > 64<<10 {
			c.stash = nil
		} else {
			c.stash = c.stash[:0]
		}
		if err != nil {
			c.writeFailed(err)
		}
	}
	c.writeRun(w, false)
}

// writeInline runs c's writer on the calling reader goroutine, which has
// claimed it (see wakeVia), writing only what the socket takes without
// blocking; the writer goroutine takes over what is left.
func (c *conn) writeInline() {
	w := writerPool.Get().(*writer)
	w.sink.c = c
	w.bw.Reset(&w.sink)
	c.writeRun(w, true)
}

// handOff passes the writer, claimed by a reader running it inline, to a
// writer goroutine: the socket is full, the session's queue must be read
// from the store, or the reader has written its share.
func (c *conn) handOff(w *writer) {
	if err := w.bw.Flush(); err != nil { // into the socket or the stash
		c.writeFailed(err)
	}
	c.putWriter(w)
	s := c.s
	s.mu.Lock()
	if !c.b.background(c.writeLoop) {
		c.writing = false // the broker has shut down
	}
	s.mu.Unlock()
}

// putWriter returns w to the pool.
func (c *conn) putWriter(w *writer) {
	w.bw.Reset(nil)
	w.pub = mqtt.Publish{}
	w.sink.c = nil
	writerPool.Put(w)
}

// writeRun writes queued control packets and deliveries until there is
// nothing left, flushing whenever it runs dry, and then ends the writer's
// turn. Run inline by a reader, it hands the rest to a writer goroutine
// rather than block or read from the store.
func (c *conn) writeRun(w *writer, inline bool) {
	s := c.s
	pagedEmpty := false // the last page read found nothing new
	batches := 0
	for {
		s.mu.Lock()
		if c.rewake {
			c.rewake = false
			pagedEmpty = false // what woke it may be in the store only
		}
		ctrls := c.ctrlq
		c.ctrlq = c.ctrlSpare[:0]
		c.ctrlSpare = nil
		batch := w.batch[:0]
		if !c.detached && !c.closeAfter && s.out == outlet(c) {
			batch = s.take(batch, cap(w.batch), c.recvMax, c.maxOut, c.version, c.b.now())
		}
		if len(ctrls) == 0 && len(batch) == 0 && !pagedEmpty && s.pageWanted() {
			c.ctrlSpare = ctrls
			s.mu.Unlock()
			if inline {
				c.handOff(w) // reading from the store may take long
				return
			}
			// Read the next page of a spilled queue before going idle,
			// then take again (whatever arrived meanwhile too).
			pagedEmpty = !s.pageIn()
			continue
		}
		if len(ctrls) == 0 && len(batch) == 0 {
			c.ctrlSpare = ctrls
			if w.bw.Buffered() > 0 && !c.dead {
				s.mu.Unlock()
				if err := w.bw.Flush(); err != nil {
					c.writeFailed(err)
				}
				if inline && len(c.stash) > 0 {
					c.handOff(w)
					return
				}
				continue
			}
			c.writing = false
			if cap(c.ctrlSpare) > 16 {
				c.ctrlSpare = nil // an idle connection keeps no large buffers
			}
			if cap(c.ctrlq) > 16 && len(c.ctrlq) == 0 {
				c.ctrlq = nil
			}
			closeNow := c.closeAfter
			if closeNow {
				c.dead = true
			}
			s.mu.Unlock()
			c.putWriter(w)
			if closeNow {
				halfClose(c.nc) // the reader closes the socket when the client has
			}
			return
		}
		pagedEmpty = false
		dead := c.dead
		s.mu.Unlock()
		if !dead {
			// The write deadline bounds a write that waits; it is moved
			// at most once a second (half the timeout, if shorter).
			// Inline writes never wait, but the socket's deadline applies
			// to them too: one set long ago by a writer goroutine would
			// fail the first write after an idle spell ("i/o timeout"),
			// so they move it as well.
			if now := c.b.now(); now.Sub(c.lastWrite) > min(time.Second, c.b.opts.WriteTimeout/2) {
				c.lastWrite = now
				c.nc.SetWriteDeadline(now.Add(c.b.opts.WriteTimeout))
			}
			if err := c.writeBatch(w, ctrls, batch); err != nil {
				c.writeFailed(err)
			}
		}
		clear(batch)
		w.batch = batch[:0]
		clear(ctrls)
		s.mu.Lock()
		if c.ctrlSpare == nil {
			c.ctrlSpare = ctrls[:0]
		}
		s.mu.Unlock()
		if batches++; inline && (len(c.stash) > 0 || batches >= inlineBatches) {
			c.handOff(w)
			return
		}
	}
}

// writeFailed marks the connection dead after a failed write and closes it;
// the reader goroutine then cleans up.
func (c *conn) writeFailed(err error) {
	s := c.s
	s.mu.Lock()
	c.dead = true
	s.mu.Unlock()
	if peerClosed(err) {
		c.debug("write failed; closing", "err", err)
	} else {
		c.writeErr.CompareAndSwap(nil, &err)
		c.logger().Info("write failed; closing", "err", err)
	}
	c.closeSocket()
}

// peerClosed reports whether a write error says the peer closed or reset
// the connection.
func peerClosed(err error) bool {
	return isClosedErr(err) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

func (c *conn) writeBatch(w *writer, ctrls []ctrl, batch []delivery) error {
	var err error
	if c.said {
		return nil // the final DISCONNECT is written
	}
	for i := range ctrls {
		k := &ctrls[i]
		if k.pkt == nil && k.kind == 0 {
			continue // a withheld acknowledgement
		}
		if k.pkt != nil {
			w.scratch, err = k.pkt.AppendTo(w.scratch[:0], c.version)
		} else {
			a := mqtt.Ack{Kind: k.kind, PacketID: k.id, ReasonCode: k.code}
			w.scratch, err = a.AppendTo(w.scratch[:0], c.version)
		}
		if err != nil {
			c.logger().Error("encoding failed", "type", k.kind, "err", err)
			continue
		}
		if _, err := w.bw.Write(w.scratch); err != nil {
			return err
		}
		if _, ok := k.pkt.(*mqtt.Disconnect); ok {
			c.said = true // nothing may follow it [MQTT-3.14.4-1]
			return nil
		}
	}
	if len(batch) == 0 {
		return nil
	}
	now := c.b.now()
	s := c.s
	sent, refused := 0, 0
	for i := range batch {
		d := &batch[i]
		if d.released {
			a := mqtt.Ack{Kind: mqtt.PUBREL, PacketID: d.packetID}
			w.scratch, _ = a.AppendTo(w.scratch[:0], c.version)
			if _, err := w.bw.Write(w.scratch); err != nil {
				return err
			}
			continue
		}
		name, ok := c.mayReceive(d.msg.Topic)
		if !ok {
			d.refused = true
			refused++
			continue
		}
		if err := c.writePublish(w, d, name, now); err != nil {
			return err
		}
		sent++
	}
	c.b.stats.msgsOut.Add(uint64(sent))
	s.mu.Lock()
	for i := range batch {
		d := &batch[i]
		switch {
		case d.refused:
			// Not for this client: done with, as if delivered.
			c.b.stats.dropNotAuthorized.Add(1)
			if d.qos > 0 {
				if held, ok := s.inflight[d.packetID]; ok {
					delete(s.inflight, d.packetID)
					s.forgetLocked(&held)
				}
			}
		case d.qos > 0 && !d.sent:
			s.markSent(d.packetID)
		}
	}
	if refused > 0 && s.out != nil && s.queue.n > 0 {
		s.out.wake() // the window has room again
	}
	s.mu.Unlock()
	return nil
}

// writePublish encodes one delivery: a small per-receiver header (packet
// identifier, topic alias, subscription identifiers, remaining expiry) written
// before the shared payload.
func (c *conn) writePublish(w *writer, d *delivery, name string, now time.Time) error {
	m := d.msg
	p := &w.pub
	*p = mqtt.Publish{Dup: d.sent, QoS: d.qos, Retain: d.retain, Topic: name, PacketID: d.packetID, Payload: m.Payload}
	if c.version >= mqtt.V5 {
		if c.kind.IsLink() {
			// Origin and hop count travel with it, also to foreign brokers,
			// which pass user properties on unchanged [MQTT-3.3.2-18]: so a
			// message that comes back through one is recognised (takeTagged).
			w.user = c.b.linkProps(m, &p.Props, d, c.kind == KindBridge, w.user)
			c.link.forwarded.Add(1)
			if c.link.OutTopic != nil { // a bridge: the foreign broker's topics
				p.Topic = c.link.OutTopic(name)
			}
		} else if props := m.clientProps(); props != nil {
			p.Props = *props
		}
		p.Props.SubscriptionIDs = d.subIDs
		if !m.Expires.IsZero() {
			p.Props.MessageExpiry = m.remainingExpiry(now) // [MQTT-3.3.2-6]
			p.Props.Set(mqtt.PropMessageExpiry)
		}
		if c.aliasMax > 0 {
			if a, ok := c.outAliases[name]; ok {
				p.Topic = "" // MQTT 5.0 §3.3.2.3.4: the alias alone
				p.Props.TopicAlias = a
			} else if len(c.outAliases) < int(c.aliasMax) {
				if c.outAliases == nil {
					c.outAliases = make(map[string]uint16)
				}
				a = uint16(len(c.outAliases) + 1) // [MQTT-3.3.2-8] not above the client's maximum
				c.outAliases[name] = a
				p.Props.TopicAlias = a
			}
		}
	}
	var err error
	w.scratch, err = p.AppendHeader(w.scratch[:0], c.version)
	if err != nil {
		c.logger().Error("encoding PUBLISH failed", "topic", name, "err", err)
		return nil
	}
	if _, err := w.bw.Write(w.scratch); err != nil {
		return err
	}
	if _, err := w.bw.Write(m.Payload); err != nil {
		return err
	}
	c.b.stats.bytesOut.Add(uint64(len(m.Payload)))
	return nil
}

// shutdown disconnects the client because the broker stops. s is the
// connection's session as read under the broker's mutex, or nil.
func (c *conn) shutdown(s *session, code mqtt.ReasonCode) {
	if s == nil {
		c.closeSocket()
		return
	}
	s.mu.Lock()
	c.endLocked(code, "", !c.detached)
	s.mu.Unlock()
}
