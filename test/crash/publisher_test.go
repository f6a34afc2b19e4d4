package crash_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// window is how many QoS 1 or 2 messages a publisher keeps unacknowledged
// at most; dropEvery is how long a dropping publisher keeps a connection.
const (
	window    = 50
	dropEvery = 800 * time.Millisecond
)

// The state of one message in a publisher's record, indexed by sequence
// number.
const (
	msgUnsent  byte = iota // never published
	msgUnacked             // published, never acknowledged
	msgAcked               // acknowledged: PUBACK 0x00 (QoS 1) or PUBREC 0x00 (QoS 2)
	msgRefused             // answered with an error reason code (0x80 or above)
	msgNoMatch             // answered with 0x10 No matching subscribers
)

// outMsg is one unacknowledged or unreleased QoS 1 or 2 message of a
// publisher's session.
type outMsg struct {
	seq int
	pid uint16
	rec bool // QoS 2: PUBREC arrived, the broker owns the message, PUBREL/PUBCOMP pending
}

// pubStats counts what one publisher saw.
type pubStats struct {
	published     int // distinct messages sent at least once
	acked         int
	refused       map[mqtt.ReasonCode]int
	noMatch       int
	resentPublish int // PUBLISH sent again with DUP=1 after a reconnect
	resentPubrel  int // PUBREL sent again after a reconnect
	connects      int
	dialErrors    int
	drops         int // connections a dropping publisher closed itself
}

// publisher is an MQTT 5 client with a persistent session that publishes
// numbered messages to its own topic at one QoS, pipelined up to window
// unacknowledged ones. Its session state (the inflight messages in their
// original order) is kept across connections, and resent after each
// reconnect as MQTT 5.0 section 4.4 asks.
type publisher struct {
	idx   int
	qos   byte
	id    string
	topic string
	addr  string
	rate  int // messages per second
	h     *harness

	mu        sync.Mutex
	inflight  []*outMsg // in original send order
	byPID     map[uint16]*outMsg
	lastPID   uint16
	status    []byte   // by sequence number; index 0 unused
	ackRun    []uint16 // by sequence number: the broker run that acknowledged it
	stats     pubStats
	session   bool // a CONNACK has been received: the broker holds our session
	stopping  bool // publish nothing new
	space     chan struct{}
	connected chan struct{} // closed at the first CONNACK
	dropping  bool          // drops its connection now and then while publishing
}

// newPublisher returns publisher idx publishing at qos to addr, rate
// messages per second; a dropping one drops its connection every
// dropEvery while publishing.
func newPublisher(h *harness, idx int, qos byte, dropping bool, addr string, rate int) *publisher {
	return &publisher{
		idx: idx, qos: qos, dropping: dropping, addr: addr, rate: rate, h: h,
		id:        fmt.Sprintf("crash-pub-%d", idx),
		topic:     fmt.Sprintf("crash/p%d", idx),
		byPID:     make(map[uint16]*outMsg),
		status:    []byte{msgUnsent},
		ackRun:    []uint16{0},
		stats:     pubStats{refused: make(map[mqtt.ReasonCode]int)},
		space:     make(chan struct{}, 1),
		connected: make(chan struct{}),
	}
}

// name is the publisher's short name in reports, such as "p2 (QoS 2)".
func (p *publisher) name() string {
	if p.dropping {
		return fmt.Sprintf("p%d (QoS %d, dropping)", p.idx, p.qos)
	}
	return fmt.Sprintf("p%d (QoS %d)", p.idx, p.qos)
}

// payload is the body of message seq of publisher idx.
func payload(idx, seq int) []byte {
	return fmt.Appendf(nil, "p%d:%d", idx, seq)
}

// parsePayload reads back a payload made by payload.
func parsePayload(b []byte) (idx, seq int, ok bool) {
	s := string(b)
	if len(s) < 4 || s[0] != 'p' {
		return 0, 0, false
	}
	for i := 1; i < len(s); i++ {
		if s[i] == ':' {
			a, err1 := strconv.Atoi(s[1:i])
			b, err2 := strconv.Atoi(s[i+1:])
			return a, b, err1 == nil && err2 == nil && a >= 0 && b > 0
		}
	}
	return 0, 0, false
}

// run connects, publishes and reconnects until ctx ends or the broker loses
// the session.
func (p *publisher) run(ctx context.Context) {
	for ctx.Err() == nil {
		run := p.h.run.Load()
		c, ack, err := dial(ctx, p.addr, p.id)
		if err != nil {
			if isRefused(err) {
				p.h.report("connack-refused", false, "publisher %s: %v", p.name(), err)
			}
			p.mu.Lock()
			p.stats.dialErrors++
			p.mu.Unlock()
			backoff(ctx)
			continue
		}
		c.run = uint16(run)
		if !p.resume(c, ack) {
			c.close()
			return
		}
		p.serve(ctx, c)
		c.close()
		backoff(ctx)
	}
}

// resume checks the CONNACK and resends, in their original order, every
// unacknowledged PUBLISH (DUP=1, same packet identifier) and the PUBREL of
// every QoS 2 message whose PUBREC had arrived. It reports false when the
// broker lost the session.
func (p *publisher) resume(c *mqttConn, ack *mqtt.Connack) bool {
	p.mu.Lock()
	if p.session && !ack.SessionPresent {
		n := len(p.inflight)
		p.mu.Unlock()
		p.h.abort("SESSION LOST: publisher %s got CONNACK Session Present 0 on reconnect: the broker lost its persistent session (%d messages were unacknowledged)", p.name(), n)
		return false
	}
	first := !p.session
	p.session = true
	p.stats.connects++
	pkts := make([]mqtt.Packet, 0, len(p.inflight))
	for _, m := range p.inflight {
		if m.rec {
			pkts = append(pkts, &mqtt.Ack{Kind: mqtt.PUBREL, PacketID: m.pid})
			p.stats.resentPubrel++
		} else {
			pkts = append(pkts, p.publishPacket(m, true))
			p.stats.resentPublish++
		}
	}
	p.mu.Unlock()
	if first {
		close(p.connected)
	}
	if len(pkts) == 0 {
		return true
	}
	c.send(pkts...) // a failure shows in the reader, and the next reconnect resends again
	return true
}

// publishPacket returns the PUBLISH of m.
func (p *publisher) publishPacket(m *outMsg, dup bool) *mqtt.Publish {
	return &mqtt.Publish{Dup: dup, QoS: p.qos, Topic: p.topic, PacketID: m.pid, Payload: payload(p.idx, m.seq)}
}

// serve runs one connection: a reader goroutine handles acknowledgements
// while this goroutine publishes new messages. It returns when the
// connection ends. A dropping publisher closes the connection itself after
// dropEvery, with messages inflight, unless publishing has stopped.
func (p *publisher) serve(ctx context.Context, c *mqttConn) {
	if p.dropping {
		drop := time.AfterFunc(dropEvery, func() {
			p.mu.Lock()
			stopping := p.stopping
			if !stopping {
				p.stats.drops++
			}
			p.mu.Unlock()
			if !stopping {
				c.close()
			}
		})
		defer drop.Stop()
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer c.close()
		p.readLoop(c)
	}()
	p.writeLoop(ctx, c, readerDone)
	c.close()
	<-readerDone
}

// writeLoop publishes new messages at the publisher's rate while the window
// has room, until the connection or ctx ends.
func (p *publisher) writeLoop(ctx context.Context, c *mqttConn, readerDone <-chan struct{}) {
	const tick = 10 * time.Millisecond
	perTick := max(1, p.rate*int(tick)/int(time.Second))
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	tokens := 0
	for {
		if tokens == 0 {
			select {
			case <-ticker.C:
				tokens = perTick
			case <-readerDone:
				return
			case <-ctx.Done():
				return
			}
		}
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			tokens = 0
			continue
		}
		if len(p.inflight) >= window {
			p.mu.Unlock()
			select {
			case <-p.space:
			case <-readerDone:
				return
			case <-ctx.Done():
				return
			}
			continue
		}
		m := p.newMessageLocked()
		pkt := p.publishPacket(m, false)
		p.mu.Unlock()
		if err := c.send(pkt); err != nil {
			return // still inflight: resent after the reconnect
		}
		tokens--
	}
}

// newMessageLocked allocates the next sequence number and a free packet
// identifier, and records the message as inflight. Called with p.mu held.
func (p *publisher) newMessageLocked() *outMsg {
	for {
		p.lastPID++
		if p.lastPID == 0 {
			p.lastPID = 1
		}
		if _, used := p.byPID[p.lastPID]; !used {
			break
		}
	}
	seq := len(p.status)
	p.status = append(p.status, msgUnacked)
	p.ackRun = append(p.ackRun, 0)
	p.stats.published++
	m := &outMsg{seq: seq, pid: p.lastPID}
	p.inflight = append(p.inflight, m)
	p.byPID[m.pid] = m
	return m
}

// finishLocked ends the exchange of m and frees its packet identifier.
// Called with p.mu held.
func (p *publisher) finishLocked(m *outMsg) {
	delete(p.byPID, m.pid)
	if i := slices.Index(p.inflight, m); i >= 0 {
		p.inflight = slices.Delete(p.inflight, i, i+1)
	}
	select {
	case p.space <- struct{}{}:
	default:
	}
}

// settleLocked records the broker's answer (PUBACK or PUBREC) to message m.
// Called with p.mu held.
func (p *publisher) settleLocked(c *mqttConn, m *outMsg, code mqtt.ReasonCode) {
	p.ackRun[m.seq] = c.run
	switch {
	case code == mqtt.Success:
		p.status[m.seq] = msgAcked
		p.stats.acked++
	case code == mqtt.NoMatchingSubscribers:
		p.status[m.seq] = msgNoMatch
		p.stats.noMatch++
		p.h.report("setup: no matching subscribers", true, "publisher %s: %s for seq %d: the broker lost the subscriptions (or the setup is broken)", p.name(), ackName(code), m.seq)
	case code.IsError():
		p.status[m.seq] = msgRefused
		p.stats.refused[code]++
		p.h.report("publish refused", false, "publisher %s: seq %d refused with %s", p.name(), m.seq, ackName(code))
	default:
		p.status[m.seq] = msgAcked
		p.stats.acked++
		p.h.report("unexpected reason code", false, "publisher %s: seq %d acknowledged with %s", p.name(), m.seq, ackName(code))
	}
}

// readLoop handles the broker's packets until the connection ends.
func (p *publisher) readLoop(c *mqttConn) {
	for {
		pkt, err := c.read()
		if err != nil {
			return
		}
		switch a := pkt.(type) {
		case *mqtt.Ack:
			if err := p.handleAck(c, a); err != nil {
				return
			}
		case *mqtt.Disconnect:
			p.h.report("disconnect from broker", false, "publisher %s: DISCONNECT %s", p.name(), ackName(a.ReasonCode))
			return
		default:
			p.h.report("unexpected packet", true, "publisher %s: unexpected %s from the broker", p.name(), pkt.Type())
		}
	}
}

// handleAck handles PUBACK, PUBREC and PUBCOMP.
func (p *publisher) handleAck(c *mqttConn, a *mqtt.Ack) error {
	p.mu.Lock()
	m := p.byPID[a.PacketID]
	var reply mqtt.Packet
	switch {
	case a.Kind == mqtt.PUBACK && m != nil && p.qos == 1:
		p.settleLocked(c, m, a.ReasonCode)
		p.finishLocked(m)
	case a.Kind == mqtt.PUBREC && m != nil && p.qos == 2:
		switch {
		case a.ReasonCode.IsError():
			if m.rec {
				p.h.report("unexpected packet", true, "publisher %s: %s for seq %d after its PUBREC 0x00", p.name(), ackName(a.ReasonCode), m.seq)
			} else {
				p.settleLocked(c, m, a.ReasonCode)
			}
			p.finishLocked(m) // no PUBREL after an error PUBREC [MQTT-4.3.3-4]
		case m.rec:
			reply = &mqtt.Ack{Kind: mqtt.PUBREL, PacketID: m.pid} // PUBREC repeated: release again
		default:
			m.rec = true
			p.settleLocked(c, m, a.ReasonCode)
			reply = &mqtt.Ack{Kind: mqtt.PUBREL, PacketID: m.pid}
		}
	case a.Kind == mqtt.PUBCOMP && m != nil && m.rec:
		if a.ReasonCode == mqtt.PacketIdentifierNotFound {
			p.h.report("PUBCOMP 0x92 after PUBREL", false, "publisher %s: PUBCOMP %s for seq %d: the broker forgot the QoS 2 exchange it had acknowledged with PUBREC", p.name(), ackName(a.ReasonCode), m.seq)
		}
		p.finishLocked(m)
	default:
		state := "unknown packet identifier"
		if m != nil {
			state = fmt.Sprintf("seq %d, PUBREC received %v", m.seq, m.rec)
		}
		p.h.report("unexpected acknowledgement", true, "publisher %s: %s %s for packet id %d (%s)", p.name(), a.Kind, ackName(a.ReasonCode), a.PacketID, state)
		if a.Kind == mqtt.PUBREC && m == nil {
			reply = &mqtt.Ack{Kind: mqtt.PUBREL, PacketID: a.PacketID, ReasonCode: mqtt.PacketIdentifierNotFound}
		}
	}
	p.mu.Unlock()
	p.h.progress.Add(1)
	if reply != nil {
		return c.send(reply)
	}
	return nil
}

// stop makes the publisher publish nothing new; inflight messages still
// complete.
func (p *publisher) stop() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
}

// pending returns how many messages of the publisher are not yet
// acknowledged or released.
func (p *publisher) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight)
}

// statusCopy returns a copy of the per-sequence message states.
func (p *publisher) statusCopy() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.status)
}

// pubSnapshot is a copy of a publisher's records.
type pubSnapshot struct {
	name   string
	qos    byte
	status []byte
	ackRun []uint16
	stats  pubStats
}

// snapshot returns a copy of the publisher's records.
func (p *publisher) snapshot() pubSnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats
	st.refused = maps.Clone(p.stats.refused)
	return pubSnapshot{name: p.name(), qos: p.qos, status: slices.Clone(p.status), ackRun: slices.Clone(p.ackRun), stats: st}
}

// ackName formats a reason code as its name and hexadecimal value.
func ackName(code mqtt.ReasonCode) string {
	return fmt.Sprintf("%v (0x%02x)", code, byte(code))
}
