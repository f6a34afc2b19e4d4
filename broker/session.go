package broker

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// NeverExpire is the Session Expiry Interval that means the session does not
// expire (MQTT 5.0 section 3.1.2.11.2).
const NeverExpire = math.MaxUint32

// outlet is where a session's messages go while it is attached: a network
// connection or an in-process client. Its methods are called with the
// session's mutex held.
type outlet interface {
	// wake asks the outlet to send whatever the session has for it.
	wake()
	// detach tells the outlet it no longer owns the session, with the reason
	// to give its peer (MQTT 5), and returns its will to publish now, if any.
	detach(reason mqtt.ReasonCode)
}

// session is the state the broker keeps for one client identifier
// [MQTT-4.1]: subscriptions, messages waiting to be sent or acknowledged, and
// inbound QoS 2 exchanges. It outlives its connections when it is persistent.
type session struct {
	b  *Broker
	id string

	mu       sync.Mutex
	out      outlet                // nil while no client is attached
	subs     map[string]subOptions // filter (as subscribed) → options
	expiry   uint32                // Session Expiry Interval, seconds
	queue    queue                 // deliveries not yet sent
	inflight map[uint16]delivery   // sent QoS 1 and 2 deliveries awaiting acknowledgement
	resend   []uint16              // inflight packet ids to send again after a reconnect, in order
	seq      uint64                // send order counter
	nextID   uint16                // last packet identifier used
	inQoS2   map[uint16]struct{}   // inbound QoS 2 packet ids received but not yet released
	timer    *time.Timer           // session expiry timer while offline
	will     *pendingWill          // a will waiting for its delay while offline
	ended    bool
	stored   bool      // a record of the session is in the broker's store
	offline  time.Time // when the client left; zero while one is attached
}

// pendingWill is a will message whose Will Delay Interval is running.
type pendingWill struct {
	msg   *Message
	timer *time.Timer
}

func newSession(b *Broker, id string) *session {
	return &session{b: b, id: id}
}

// addSubLocked records a subscription of the session, unless it has ended.
// Called with s.mu held.
func (s *session) addSubLocked(filter string, o subOptions) {
	if s.ended {
		return
	}
	if s.subs == nil {
		s.subs = make(map[string]subOptions)
	}
	s.subs[filter] = o
}

// online reports whether a client is attached.
func (s *session) online() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out != nil
}

// enqueue queues d for sending and wakes the outlet. It reports whether the
// message was accepted; a full queue drops the new message (the documented
// policy) and counts it.
func (s *session) enqueue(d delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	if s.out == nil && d.qos == 0 && !s.b.opts.QueueQoS0Offline {
		s.b.stats.dropOffline.Add(1)
		return false
	}
	if s.queue.n >= s.b.opts.MaxQueuedMessages || s.queue.bytes+len(d.msg.Payload) > s.b.opts.MaxQueuedBytes {
		s.b.stats.dropQueueFull.Add(1)
		return false
	}
	s.queue.push(d, s.b.clock.Load())
	if s.out != nil {
		s.out.wake()
	}
	return true
}

// allocID returns an unused packet identifier [MQTT-2.2.1-4]. It must be
// called with s.mu held and fewer than 65535 deliveries inflight.
func (s *session) allocID() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1 // packet identifier 0 is not allowed [MQTT-2.2.1-3]
		}
		if _, used := s.inflight[s.nextID]; !used {
			return s.nextID
		}
	}
}

// take moves up to n deliveries that may be sent now from the queue into out:
// first the inflight deliveries to resend after a reconnect, then new ones
// while the inflight window has room. Expired messages are dropped
// [MQTT-3.3.2-5]; messages larger than the client's Maximum Packet Size are
// discarded as if delivered [MQTT-3.1.2-25]. Called with s.mu held.
func (s *session) take(out []delivery, n, window int, maxSize uint32, version byte, now time.Time) []delivery {
	for len(s.resend) > 0 && len(out) < n {
		id := s.resend[0]
		s.resend = s.resend[1:]
		if d, ok := s.inflight[id]; ok {
			out = append(out, d)
		}
	}
	if len(s.resend) == 0 {
		s.resend = nil
	}
	for s.queue.n > 0 && len(out) < n {
		d := s.queue.front()
		if d.qos > 0 && len(s.inflight) >= window {
			break // [MQTT-3.3.4-7] the client's Receive Maximum
		}
		dd := s.queue.pop()
		if dd.msg.expired(now) {
			s.b.stats.dropExpired.Add(1)
			continue
		}
		if maxSize > 0 && uint32(publishSizeEstimate(&dd, version)) > maxSize {
			s.b.stats.dropTooLarge.Add(1)
			continue
		}
		if dd.qos > 0 {
			if s.inflight == nil {
				s.inflight = make(map[uint16]delivery)
			}
			dd.packetID = s.allocID()
			s.seq++
			dd.seq = s.seq
			s.inflight[dd.packetID] = dd
		}
		out = append(out, dd)
	}
	if s.queue.n == 0 {
		s.queue.trim(now.UnixNano())
	}
	return out
}

// publishSizeEstimate is the size of d's PUBLISH without a topic alias.
func publishSizeEstimate(d *delivery, version byte) int {
	p := mqtt.Publish{QoS: d.qos, Topic: d.msg.Topic, PacketID: 1, Payload: d.msg.Payload}
	if version >= mqtt.V5 {
		if d.msg.Props != nil {
			p.Props = *d.msg.Props
		}
		p.Props.SubscriptionIDs = d.subIDs
	}
	return mqtt.PublishSize(&p, version)
}

// markSent records that the inflight delivery id has been written once, so a
// later resend carries DUP.
func (s *session) markSent(id uint16) {
	if d, ok := s.inflight[id]; ok && !d.sent {
		d.sent = true
		s.inflight[id] = d
	}
}

// acknowledge handles PUBACK, PUBREC and PUBCOMP for an outbound delivery. It
// reports whether the packet identifier was known and, for PUBREC, whether a
// PUBREL must be sent.
func (s *session) acknowledge(kind mqtt.PacketType, id uint16, code mqtt.ReasonCode) (known, sendRel bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.inflight[id]
	if !ok {
		return false, false
	}
	switch kind {
	case mqtt.PUBACK:
		if d.qos != 1 {
			return false, false
		}
		delete(s.inflight, id)
	case mqtt.PUBREC:
		if d.qos != 2 {
			return false, false
		}
		if code.IsError() {
			delete(s.inflight, id) // no PUBREL after an error PUBREC [MQTT-4.3.3-4]
		} else {
			d.released = true // the PUBLISH is never sent again [MQTT-4.3.3-6]
			s.inflight[id] = d
			sendRel = true
		}
	case mqtt.PUBCOMP:
		if !d.released {
			return false, false
		}
		delete(s.inflight, id)
	}
	if s.out != nil && s.queue.n > 0 {
		s.out.wake() // the window has room again
	}
	return true, sendRel
}

// attachLocked makes out the session's outlet and prepares the resend of every
// unacknowledged PUBLISH and PUBREL in their original order [MQTT-4.4.0-1].
// Called with s.mu held.
func (s *session) attachLocked(out outlet) {
	s.out = out
	s.offline = time.Time{}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.resend = s.resend[:0]
	if len(s.inflight) > 0 {
		ds := make([]delivery, 0, len(s.inflight))
		for _, d := range s.inflight {
			ds = append(ds, d)
		}
		slices.SortFunc(ds, func(a, b delivery) int { return cmp.Compare(a.seq, b.seq) })
		for _, d := range ds {
			s.resend = append(s.resend, d.packetID)
		}
	}
}

// takeShared removes the deliveries that came through shared subscriptions
// and may go to another member now that this session's client left: the
// queued ones, and inflight QoS 1 ones (section 4.8.2 allows sending them to
// another member as soon as the connection is lost). QoS 2 deliveries stay
// with the session [MQTT-4.8.2-4]. Called with s.mu held.
func (s *session) takeShared() []delivery {
	var moved []delivery
	for id, d := range s.inflight {
		if d.share != "" && d.qos == 1 {
			moved = append(moved, d)
			delete(s.inflight, id)
		}
	}
	slices.SortFunc(moved, func(a, b delivery) int { return cmp.Compare(a.seq, b.seq) })
	if s.queue.n > 0 {
		var keep queue
		s.queue.drain(func(d delivery) {
			if d.share != "" {
				moved = append(moved, d)
			} else {
				keep.push(d, 0)
			}
		})
		s.queue = keep
	}
	return moved
}
