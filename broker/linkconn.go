package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// A mesh link is one MQTT 5 connection. The node that dials it is its MQTT
// client, the other its server; after CONNECT both ends do the same: each
// publishes to the other what the other's interest (its link session's
// subscriptions) matches, acknowledges what it receives once it is stored,
// and keeps QoS 2 exchanges exactly once across reconnects and restarts, with
// the same durable session machinery as any persistent client. The accepting
// end is an ordinary connection (conn) marked with its link; the dialing end
// is a conn in client mode, made by Link.Serve.

// acceptLink decides, for a CONNECT with client identifier id (beginning
// with LinkSessionPrefix), whether the connection may be a mesh link, and
// makes it one. It returns the reason code to refuse with, or Success, and
// why (sent to the peer, so that the operator of a miswired node sees it).
func (c *conn) acceptLink(p *mqtt.Connect, id string) (mqtt.ReasonCode, string) {
	b := c.b
	peer := id[len(LinkSessionPrefix):]
	h := b.opts.Mesh
	if h == nil || p.Version < mqtt.V5 {
		b.opts.Audit.Info("link refused", "peer", peer, "remote", c.remote, "reason", "this node takes no mesh links over this protocol")
		b.log.Warn("mesh: link refused", "peer", peer, "remote", c.remote, "reason", "this node has no mesh configuration, or the link is not MQTT 5")
		return mqtt.NotAuthorized, "this node takes no mesh links (it has no mesh configuration, or the link is not MQTT 5)"
	}
	if b.opts.Authenticator != nil && c.ident != nil && c.ident.Anonymous() {
		// Where clients authenticate, so do nodes: anonymous clients may
		// be allowed, anonymous links are not.
		b.opts.Audit.Info("link refused", "peer", peer, "remote", c.remote, "reason", "anonymous")
		b.log.Warn("mesh: link refused", "peer", peer, "remote", c.remote, "reason", "anonymous: a mesh link must authenticate at this node")
		return mqtt.NotAuthorized, "a mesh link must authenticate at this node"
	}
	role, err := h.AcceptLink(c.ident, peer, p.Props.User)
	if err != nil {
		b.opts.Audit.Info("link refused", "peer", peer, "remote", c.remote, "err", err.Error())
		b.log.Warn("mesh: link refused", "peer", peer, "remote", c.remote, "reason", err)
		return mqtt.NotAuthorized, err.Error()
	}
	l, err := b.Link(peer, role)
	if err != nil {
		b.log.Warn("mesh: link refused", "peer", peer, "remote", c.remote, "reason", err)
		return mqtt.NotAuthorized, err.Error()
	}
	// A link carries the mesh's traffic, not a client's: no tenant
	// namespace and no ACL (its grants limit it instead).
	c.kind, c.link = l.Kind, l
	c.mount, c.inAccess, c.outAccess, c.controlled = "", nil, nil, false
	p.CleanStart = false // the link's queue outlives any one connection
	b.opts.Audit.Info("link", "peer", peer, "role", role.String(), "remote", c.remote, "listener", c.listener)
	return mqtt.Success, ""
}

// linkKeepAlive returns the keep alive of an accepted link's connection, ka
// being what its dialing end asked for: this node's own link keep alive
// (MeshHandler.LinkKeepAlive) when that is shorter, told to the dialing end as
// Server Keep Alive in the CONNACK [MQTT-3.2.2-21]. So of the two ends' link
// keep alives the shorter one applies, and each end finds a dead link within
// one and a half of its own. It also bounds how long data this end writes may
// stay unacknowledged by the peer's TCP (setUserTimeout) by the same one and
// a half periods.
func (c *conn) linkKeepAlive(ka uint16, ack *mqtt.Connack) uint16 {
	own := keepAliveSeconds(c.b.opts.Mesh.LinkKeepAlive())
	if own > 0 && (ka == 0 || ka > own) {
		ka = own
		ack.Props.ServerKeepAlive = ka
		ack.Props.Set(mqtt.PropServerKeepAlive)
	}
	if ka > 0 {
		setUserTimeout(c.nc, time.Duration(ka)*time.Second*3/2)
	}
	return ka
}

// keepAliveSeconds converts a keep alive to the whole seconds of MQTT's Keep
// Alive, rounding up, at most 65,535; 0 stays 0 (none).
func keepAliveSeconds(d time.Duration) uint16 {
	if d <= 0 {
		return 0
	}
	return uint16(min((d+time.Second-1)/time.Second, 65535))
}

// linkProgress reports, for a link's connection whose read deadline passed
// (every half keep alive period: refreshDeadline), whether bytes of a packet
// have arrived since the last packet or the last check, and if so counts
// them as a sign of life. A large message on a slow link may take longer
// than the keep alive to arrive, and the PINGREQ its sender sent after it
// waits behind it. The accepting end then also tells the dialing end that it
// is alive (ControlAlive): the dialing end, if it is the one sending the
// message, hears nothing else until the message is in, not even a PINGRESP.
// The reader goroutine calls it.
func (c *conn) linkProgress() bool {
	if !c.kind.IsLink() {
		return false
	}
	n := c.r.Buffered()
	if n <= c.partial {
		return false
	}
	c.partial = n
	c.lastPacket = c.b.now()
	if !c.clientMode && c.kind.IsNode() {
		c.sendCtrl(ctrl{pkt: &mqtt.Publish{Topic: ControlAlive}})
	}
	return true
}

// Serve runs the link over nc as its dialing end: it sends connect (whose
// client identifier must be LinkSessionPrefix+this node's name), waits for
// the CONNACK, and then carries messages both ways until the connection ends
// or the broker closes. subscribe, if given, is sent as a SUBSCRIBE first
// (a bridge's subscriptions at a foreign broker). It returns the CONNACK (nil
// if none came) and why the connection ended.
func (l *Link) Serve(nc net.Conn, connect *mqtt.Connect, subscribe ...mqtt.Subscription) (*mqtt.Connack, error) {
	b := l.b
	c := newConn(b, nc, ConnInfo{Listener: "link"})
	c.clientMode, c.kind, c.link, c.version = true, l.Kind, l, mqtt.V5
	c.clientID = connect.ClientID
	c.r.Version = mqtt.V5
	nc.SetDeadline(time.Now().Add(b.opts.ConnectTimeout))
	buf, err := connect.AppendTo(nil, mqtt.V5)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker: link CONNECT: %w", err)
	}
	if _, err := nc.Write(buf); err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker: link to %s: %w", l.Peer, err)
	}
	pkt, err := c.r.ReadPacket()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker: link to %s: waiting for CONNACK: %w", l.Peer, err)
	}
	ack, ok := pkt.(*mqtt.Connack)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("broker: link to %s: %s instead of CONNACK", l.Peer, pkt.Type())
	}
	if ack.ReasonCode.IsError() {
		nc.Close()
		reason := ack.ReasonCode.String()
		if ack.Props.ReasonString != "" {
			reason += ": " + ack.Props.ReasonString
		}
		return ack, fmt.Errorf("broker: link to %s refused: %s", l.Peer, reason)
	}
	nc.SetDeadline(time.Time{})
	ka := connect.KeepAlive
	if ack.Props.Has(mqtt.PropServerKeepAlive) {
		ka = ack.Props.ServerKeepAlive
	}
	c.keepAlive = time.Duration(ka) * time.Second
	if ka > 0 {
		// Written data the peer's TCP has not acknowledged within one and a
		// half keep alive periods ends the connection, also while the
		// writer is blocked on a full socket buffer.
		setUserTimeout(nc, c.keepAlive*3/2)
	}
	c.recvMax = int(b.opts.MaxInflight)
	if rm := ack.Props.ReceiveMaximum; rm > 0 && int(rm) < c.recvMax {
		c.recvMax = int(rm)
	}
	c.maxOut = ack.Props.MaximumPacketSize
	c.aliasMax = ack.Props.TopicAliasMaximum
	c.connected = true
	c.lastPacket = b.now()

	if len(subscribe) > 0 {
		// A bridge asks the foreign broker for what comes in (sent before
		// anything else: the session's writer starts below).
		c.ctrlq = append(c.ctrlq, ctrl{pkt: &mqtt.Subscribe{PacketID: 1, Subscriptions: subscribe}})
	}
	if !b.attachLink(c, l) {
		nc.Close()
		return ack, errors.New("broker: closed")
	}
	defer b.wg.Done()
	stop := make(chan struct{})
	var pinger sync.WaitGroup
	defer pinger.Wait()
	if c.keepAlive > 0 {
		// Keep alive from the client's side [MQTT-3.1.2-23]: a PINGREQ
		// every half period, so that the peer hears from this end at least
		// that often. Its PINGRESP (or any packet) must come within one and
		// a half periods of the last one, or the reader closes the link
		// (keepAliveExpired), as the server end does [MQTT-3.1.2-24].
		pinger.Go(func() {
			t := time.NewTicker(c.keepAlive / 2)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					c.sendCtrl(ctrl{pkt: &mqtt.Pingreq{}})
				}
			}
		})
	}
	c.readLoop(false)
	close(stop)
	if errors.Is(c.endErr, os.ErrDeadlineExceeded) {
		return ack, fmt.Errorf("broker: link to %s: keep alive: nothing from the peer for %v", l.Peer, c.keepAlive*3/2)
	}
	return ack, c.endErr
}

// attachLink binds a dialing connection to its link's session, taking it
// over from an older connection, and counts it among the broker's
// connections. It reports false when the broker is closed.
func (b *Broker) attachLink(c *conn, l *Link) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.conns[c] = struct{}{}
	b.wg.Add(1)
	s := l.s
	s.mu.Lock()
	if old := s.out; old != nil {
		old.detach(mqtt.SessionTakenOver)
		s.out = nil
	}
	if pw := s.will; pw != nil {
		pw.timer.Stop()
		s.will = nil
	}
	c.s = s
	s.expiry = NeverExpire
	s.persist = b.journal != nil
	s.attachLocked(c)
	c.wakeLocked()
	s.mu.Unlock()
	b.mu.Unlock()
	b.persistSession(s)
	l.setUp(true)
	return true
}
