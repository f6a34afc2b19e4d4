package crash_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// subFilter is the topic filter every subscriber subscribes to, at QoS 2, so
// that each message arrives at the QoS it was published with.
const subFilter = "crash/#"

// msgKey names one message of the test: publisher index and sequence number.
type msgKey struct{ pub, seq int }

// String formats the key as in the reports, such as "p2/1234".
func (k msgKey) String() string { return fmt.Sprintf("p%d/%d", k.pub, k.seq) }

// subStats counts what one subscriber saw.
type subStats struct {
	publishes     int // PUBLISH packets received
	deliveries    int // PUBLISH packets recorded as deliveries
	firsts        int // distinct messages received
	qos1Dups      int // QoS 1 messages received again
	qos2Filtered  int // QoS 2 PUBLISH resent within an unreleased exchange: acknowledged, not delivered again
	pidReuse      int // PUBLISH with a packet identifier still held by an unreleased QoS 2 exchange of another message
	pubrelUnknown int // PUBREL for a packet identifier not held (answered PUBCOMP 0x92)
	connects      int
	dialErrors    int
	stalls        int // pauses of a stalling subscriber
	leaves        int // connections an intermittent subscriber ended itself
}

// subMode is how a subscriber consumes: each mode leaves the broker with
// different state to lose when it is killed.
type subMode int

// The subscriber modes. A steady subscriber reads everything at once (the
// broker holds little beyond its inflight window); a stalling one stops
// reading now and then, so messages queue up in the broker while it is
// connected; an intermittent one leaves now and then, alternately with
// DISCONNECT and by dropping the connection, so messages queue up for its
// offline session.
const (
	steady subMode = iota
	stalling
	intermittent
)

// String names the mode.
func (m subMode) String() string {
	return [...]string{"steady", "stalling", "intermittent"}[m]
}

// Timing of the stalling and intermittent subscribers while the workload
// publishes.
const (
	stallEvery = time.Second            // a stalling subscriber stops reading this often
	stallFor   = 250 * time.Millisecond // for this long
	onlineFor  = 700 * time.Millisecond // an intermittent subscriber stays connected this long
	offlineFor = 300 * time.Millisecond // and then away this long
)

// subscriber is an MQTT 5 client with a persistent session, subscribed once
// to crash/# at QoS 2, that records every message it receives. For QoS 2 it
// is the receiver of MQTT 5.0 section 4.3.3 Method B: it keeps the packet
// identifiers received and not yet released across reconnects, and does not
// deliver a PUBLISH with one of them again.
type subscriber struct {
	idx  int
	mode subMode
	id   string
	addr string
	qos  []byte // the QoS each publisher publishes at
	h    *harness

	mu         sync.Mutex
	session    bool // a CONNACK has been received: the broker holds our session
	subscribed bool
	ready      chan struct{} // closed at the SUBACK
	pending    map[uint16]msgKey
	dropped    map[msgKey]bool // messages not delivered because their packet id was held by another message
	counts     [][]uint16      // [publisher][seq] deliveries recorded
	firsts     [][]int         // [publisher] sequence numbers in order of first arrival
	stats      subStats
}

// newSubscriber returns subscriber idx in mode for publishers publishing at
// qos.
func newSubscriber(h *harness, idx int, mode subMode, addr string, qos []byte) *subscriber {
	return &subscriber{
		idx: idx, mode: mode, addr: addr, qos: qos, h: h,
		id:      fmt.Sprintf("crash-sub-%d", idx),
		ready:   make(chan struct{}),
		pending: make(map[uint16]msgKey),
		dropped: make(map[msgKey]bool),
		counts:  make([][]uint16, len(qos)),
		firsts:  make([][]int, len(qos)),
	}
}

// name is the subscriber's short name in reports.
func (s *subscriber) name() string { return fmt.Sprintf("s%d (%v)", s.idx, s.mode) }

// run connects, receives and reconnects until ctx ends or the broker loses
// the session.
func (s *subscriber) run(ctx context.Context) {
	for ctx.Err() == nil {
		c, ack, err := dial(ctx, s.addr, s.id)
		if err != nil {
			if isRefused(err) {
				s.h.report("connack-refused", false, "subscriber %s: %v", s.name(), err)
			}
			s.mu.Lock()
			s.stats.dialErrors++
			s.mu.Unlock()
			backoff(ctx)
			continue
		}
		s.mu.Lock()
		if s.session && !ack.SessionPresent {
			n := len(s.pending)
			s.mu.Unlock()
			s.h.abort("SESSION LOST: subscriber %s got CONNACK Session Present 0 on reconnect: the broker lost its persistent session and subscription (%d QoS 2 exchanges were unreleased)", s.name(), n)
			c.close()
			return
		}
		s.session = true
		s.stats.connects++
		subscribe := !s.subscribed
		graceful := s.stats.connects%2 == 0 // alternate DISCONNECT and a dropped connection
		s.mu.Unlock()
		if subscribe {
			err = c.send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: subFilter, QoS: 2}}})
		}
		var left atomic.Bool
		var leave *time.Timer
		if s.mode == intermittent && !s.h.stopped.Load() {
			leave = time.AfterFunc(onlineFor, func() {
				s.mu.Lock()
				subscribed := s.subscribed
				s.mu.Unlock()
				if !subscribed || s.h.stopped.Load() {
					return // not before the SUBACK, and not while the test drains
				}
				left.Store(true)
				if graceful {
					c.send(&mqtt.Disconnect{})
				}
				c.close()
			})
		}
		if err == nil {
			s.readLoop(ctx, c)
		}
		if leave != nil {
			leave.Stop()
		}
		c.close()
		if left.Load() {
			s.mu.Lock()
			s.stats.leaves++
			s.mu.Unlock()
			sleepCtx(ctx, offlineFor)
			continue
		}
		backoff(ctx)
	}
}

// readLoop handles the broker's packets until the connection ends. A
// stalling subscriber stops reading for stallFor every stallEvery while the
// workload publishes.
func (s *subscriber) readLoop(ctx context.Context, c *mqttConn) {
	nextStall := time.Now().Add(stallEvery)
	for {
		if s.mode == stalling && time.Now().After(nextStall) && !s.h.stopped.Load() {
			sleepCtx(ctx, stallFor)
			nextStall = time.Now().Add(stallEvery)
			s.mu.Lock()
			s.stats.stalls++
			s.mu.Unlock()
		}
		pkt, err := c.read()
		if err != nil {
			return
		}
		var reply mqtt.Packet
		switch p := pkt.(type) {
		case *mqtt.Publish:
			reply = s.handlePublish(p)
		case *mqtt.Ack:
			reply = s.handleAck(p)
		case *mqtt.Suback:
			s.handleSuback(p)
		case *mqtt.Disconnect:
			s.h.report("disconnect from broker", false, "subscriber %s: DISCONNECT %s", s.name(), ackName(p.ReasonCode))
			return
		default:
			s.h.report("unexpected packet", true, "subscriber %s: unexpected %s from the broker", s.name(), pkt.Type())
		}
		if reply != nil {
			if err := c.send(reply); err != nil {
				return
			}
		}
	}
}

// handleSuback checks that the subscription was granted at QoS 2.
func (s *subscriber) handleSuback(p *mqtt.Suback) {
	if len(p.ReasonCodes) != 1 || p.ReasonCodes[0] != mqtt.GrantedQoS2 {
		s.h.abort("SETUP: subscriber %s: SUBACK %v for %s at QoS 2", s.name(), p.ReasonCodes, subFilter)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.subscribed {
		s.subscribed = true
		close(s.ready)
	}
}

// handlePublish records a message and returns its acknowledgement: PUBACK
// for QoS 1 after recording, PUBREC for QoS 2 (Method B: recorded on first
// receipt, a PUBLISH with a packet identifier still held is a duplicate).
func (s *subscriber) handlePublish(p *mqtt.Publish) mqtt.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.publishes++
	key, valid := s.identify(p)
	prev, held := s.pending[p.PacketID]
	switch p.QoS {
	case 2:
		if held {
			if prev == key {
				s.stats.qos2Filtered++
			} else {
				s.stats.pidReuse++
				if valid {
					s.dropped[key] = true
				}
				s.h.report("packet identifier reused", true, "subscriber %s: PUBLISH of %s (QoS 2, DUP %v) with packet id %d, still held by the unreleased QoS 2 exchange of %s (no PUBREL yet): a correct receiver takes it for a duplicate, so %s is lost",
					s.name(), key, p.Dup, p.PacketID, prev, key)
			}
			return &mqtt.Ack{Kind: mqtt.PUBREC, PacketID: p.PacketID}
		}
		s.pending[p.PacketID] = key
		s.recordLocked(p, key, valid)
		return &mqtt.Ack{Kind: mqtt.PUBREC, PacketID: p.PacketID}
	case 1:
		if held {
			s.stats.pidReuse++
			s.h.report("packet identifier reused", true, "subscriber %s: PUBLISH of %s (QoS 1) with packet id %d, still held by the unreleased QoS 2 exchange of %s (no PUBREL yet)",
				s.name(), key, p.PacketID, prev)
		}
		s.recordLocked(p, key, valid)
		return &mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p.PacketID}
	default:
		s.recordLocked(p, key, valid)
		return nil
	}
}

// identify reads the publisher and sequence number of a message and reports
// whether topic and payload are those of a message of this test.
func (s *subscriber) identify(p *mqtt.Publish) (msgKey, bool) {
	idx, seq, ok := parsePayload(p.Payload)
	if !ok || idx >= len(s.qos) || p.Topic != fmt.Sprintf("crash/p%d", idx) {
		return msgKey{}, false
	}
	return msgKey{idx, seq}, true
}

// recordLocked records one delivery. Called with s.mu held.
func (s *subscriber) recordLocked(p *mqtt.Publish, key msgKey, valid bool) {
	s.stats.deliveries++
	s.h.progress.Add(1)
	if !valid {
		s.h.report("phantom message", true, "subscriber %s: message on %q with payload %q (QoS %d), which no publisher of this test sends", s.name(), p.Topic, p.Payload, p.QoS)
		return
	}
	if want := s.qos[key.pub]; p.QoS != want {
		s.h.report("wrong QoS", true, "subscriber %s: %s arrived at QoS %d, published at QoS %d and subscribed at QoS 2", s.name(), key, p.QoS, want)
	}
	counts := s.counts[key.pub]
	for len(counts) <= key.seq {
		counts = append(counts, 0)
	}
	s.counts[key.pub] = counts
	n := counts[key.seq]
	if n < 0xffff {
		counts[key.seq]++
	}
	switch {
	case n == 0:
		s.firsts[key.pub] = append(s.firsts[key.pub], key.seq)
		s.stats.firsts++
	case p.QoS == 1:
		s.stats.qos1Dups++
	}
}

// handleAck answers PUBREL with PUBCOMP, releasing the packet identifier.
func (s *subscriber) handleAck(a *mqtt.Ack) mqtt.Packet {
	if a.Kind != mqtt.PUBREL {
		s.h.report("unexpected acknowledgement", true, "subscriber %s: unexpected %s %s for packet id %d", s.name(), a.Kind, ackName(a.ReasonCode), a.PacketID)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.progress.Add(1)
	if _, ok := s.pending[a.PacketID]; !ok {
		// Normal during recovery (the broker resends PUBREL when our PUBCOMP
		// was lost), otherwise a session state mismatch (MQTT 5.0 §3.7.2.1).
		s.stats.pubrelUnknown++
		return &mqtt.Ack{Kind: mqtt.PUBCOMP, PacketID: a.PacketID, ReasonCode: mqtt.PacketIdentifierNotFound}
	}
	delete(s.pending, a.PacketID)
	return &mqtt.Ack{Kind: mqtt.PUBCOMP, PacketID: a.PacketID}
}

// subSnapshot is a copy of what a subscriber recorded.
type subSnapshot struct {
	name    string
	counts  [][]uint16
	firsts  [][]int
	pending map[uint16]msgKey
	dropped map[msgKey]bool
	stats   subStats
}

// snapshot returns a copy of the subscriber's records.
func (s *subscriber) snapshot() subSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := subSnapshot{name: s.name(), pending: maps.Clone(s.pending), dropped: maps.Clone(s.dropped), stats: s.stats}
	for i := range s.counts {
		snap.counts = append(snap.counts, slices.Clone(s.counts[i]))
		snap.firsts = append(snap.firsts, slices.Clone(s.firsts[i]))
	}
	return snap
}

// missing returns how many messages whose state in status is msgAcked the
// subscriber has not received, and how many QoS 2 exchanges it still holds.
func (s *subscriber) missing(status [][]byte) (lost, unreleased int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pub, st := range status {
		counts := s.counts[pub]
		for seq, state := range st {
			if state == msgAcked && (seq >= len(counts) || counts[seq] == 0) {
				lost++
			}
		}
	}
	return lost, len(s.pending)
}
