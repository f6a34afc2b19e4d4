package broker

import (
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// endedSession is what is left to do, outside the locks, after a session ended.
type endedSession struct {
	s       *session
	stored  bool // its record must leave the store
	filters []string
	moved   []delivery // shared-subscription deliveries to hand to other members
	will    *Message
	// For a durable session with entries in the store only: where they
	// start, and the highest sequence number that may have been sent.
	spilledFrom uint64
	sentUpTo    uint64
}

// attach binds connection c to the session of client id after a CONNECT,
// taking the session over from another connection [MQTT-3.1.4-3], discarding
// it on Clean Start [MQTT-3.1.2-4], or creating it, and queues ack as the
// first packet the client gets.
func (b *Broker) attach(c *conn, id string, clean bool, expiry uint32, ack *mqtt.Connack) {
	c.since = time.Now()
	var wills []*Message
	var ended *endedSession
	b.mu.Lock()
	s := b.sessions[id]
	if s != nil {
		s.mu.Lock()
		if old := s.out; old != nil {
			old.detach(mqtt.SessionTakenOver)
			if oc, ok := old.(*conn); ok && oc.will != nil {
				// The old connection ends without DISCONNECT: its will is
				// published now unless it is delayed and the session goes on,
				// in which case this new connection cancels it [MQTT-3.1.3-9].
				if oc.willDelay == 0 || clean {
					wills = append(wills, oc.will)
				}
				oc.will = nil
			}
			s.out = nil
			b.log.Info("session taken over", "client", id)
		}
		if pw := s.will; pw != nil {
			pw.timer.Stop()
			s.will = nil
			if clean {
				wills = append(wills, pw.msg) // the session ends before the delay
			}
		}
		s.mu.Unlock()
		if clean {
			ended = b.endSessionLocked(s)
			s = nil
		}
	}
	present := s != nil
	if s == nil {
		s = newSession(b, id)
		b.sessions[id] = s
	}
	s.mu.Lock()
	s.expiry = expiry
	if b.journal != nil && expiry > 0 {
		s.persist = true // from now on its QoS 1 and 2 deliveries are stored
	}
	c.s = s
	if c.version >= mqtt.V5 || !clean {
		ack.SessionPresent = present // [MQTT-3.2.2-2][MQTT-3.2.2-3]
	}
	c.ctrlq = append(c.ctrlq, ctrl{pkt: ack})
	s.attachLocked(c)
	c.wakeVia(c.inlineList()) // the reader writes the CONNACK before it reads on
	s.mu.Unlock()
	b.mu.Unlock()
	b.finishEnded(ended)
	b.persistSession(s)
	for _, w := range wills {
		b.publishWill(w)
	}
	// The new connection's will replaces whatever the store held for the
	// client (a will is published after the old one was handled above).
	s.mu.Lock()
	w, delay := c.will, c.willDelay
	s.mu.Unlock()
	if w != nil {
		b.keepWill(id, w, delay, time.Time{})
	} else if len(wills) > 0 || present {
		b.forgetWill(id)
	}
	b.clientEvent(c, true, false)
}

// detach unbinds connection c from its session when the connection ends:
// the will is published or scheduled [MQTT-3.1.3-9], shared-subscription
// messages move to other members, and the session ends now (expiry 0) or when
// its expiry interval has passed [MQTT-3.1.2-11 ff.].
func (b *Broker) detach(c *conn) {
	s := c.s
	var ended *endedSession
	var moved []delivery
	var will *Message
	takenOver := false
	defer func() { b.clientEvent(c, false, takenOver) }()
	b.mu.Lock()
	s.mu.Lock()
	if c.detached {
		s.mu.Unlock()
		b.mu.Unlock()
		takenOver = true
		return // taken over: the session belongs to another connection now
	}
	c.detached = true
	s.out = nil
	s.offline = time.Now()
	if c.kind.IsLink() {
		defer c.link.setUp(false)
	}
	w, delay := c.will, c.willDelay
	c.will = nil
	expiry := s.expiry
	var willDue time.Time
	if expiry != 0 {
		moved = s.takeShared()
		s.dropCachedLocked()
		if w != nil {
			if delay == 0 {
				will = w
			} else {
				wait := time.Duration(min(delay, expiry)) * time.Second
				pw := &pendingWill{msg: w}
				pw.timer = time.AfterFunc(wait, b.tracked(func() { b.fireWill(s, pw) }))
				s.will = pw
				willDue = s.offline.Add(wait)
			}
		}
		if expiry != NeverExpire {
			s.timer = time.AfterFunc(time.Duration(expiry)*time.Second, b.tracked(func() { b.expireSession(s) }))
		}
		s.mu.Unlock()
	} else {
		will = w // the session ends now, so the will cannot wait [MQTT-3.1.3-9]
		s.mu.Unlock()
		ended = b.endSessionLocked(s)
	}
	b.mu.Unlock()
	for _, d := range moved {
		if !b.reroute(d, s) {
			b.stats.dropNoShareMember.Add(1)
		}
	}
	b.finishEnded(ended)
	if ended == nil {
		b.persistSession(s) // records when the client left
	}
	switch {
	case will != nil:
		b.publishWill(will)
		b.forgetWill(s.id)
	case !willDue.IsZero():
		b.keepWill(s.id, w, delay, willDue)
	}
}

// endSessionLocked ends session s and removes it from the broker. It is called
// with b.mu held; finishEnded must be called with its result after b.mu is
// released.
func (b *Broker) endSessionLocked(s *session) *endedSession {
	if b.sessions[s.id] == s {
		delete(b.sessions, s.id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	s.ended = true
	e := &endedSession{s: s, stored: s.stored}
	s.stored = false
	for f := range s.subs {
		e.filters = append(e.filters, f)
	}
	s.subs = nil
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.will != nil {
		s.will.timer.Stop()
		e.will = s.will.msg
		s.will = nil
	}
	// Shared QoS 2 deliveries already sent stay undelivered rather than go to
	// another member [MQTT-4.8.2-5]; QoS 1 and unsent ones move on.
	e.moved = s.takeShared()
	if s.persist && s.spilled {
		e.spilledFrom = max(s.diskNext, 1)
		e.sentUpTo = max(s.sentUpTo, s.restoredUpTo)
	}
	s.queue = queue{}
	s.inflight = nil
	s.inQoS2 = nil
	s.resend = nil
	return e
}

// finishEnded removes an ended session's subscriptions and hands on what it
// held.
func (b *Broker) finishEnded(e *endedSession) {
	if e == nil {
		return
	}
	for _, f := range e.filters {
		if b.index.Unsubscribe(f, e.s) {
			b.noteInterest(e.s, f, -1)
		}
	}
	if e.spilledFrom > 0 && b.journal != nil {
		// Read before the session's entries are deleted below.
		e.moved = append(e.moved, b.storedShared(e)...)
	}
	if e.stored && b.journal != nil {
		b.journal.deleteSession(e.s.id)
	}
	for _, d := range e.moved {
		if !b.reroute(d, e.s) {
			b.stats.dropNoShareMember.Add(1)
		}
	}
	if e.will != nil {
		b.publishWill(e.will)
		b.forgetWill(e.s.id)
	}
	b.log.Debug("session ended", "client", e.s.id)
}

// storedShared returns the shared-subscription deliveries of an ended
// session that were in the store only, to go to another member of their
// group (MQTT 5.0 §4.8.2: when a session ends, its shared messages SHOULD go to
// another client). QoS 2 deliveries that may have been sent stay undelivered
// [MQTT-4.8.2-5], as in memory.
func (b *Broker) storedShared(e *endedSession) []delivery {
	var out []delivery
	var buf []store.Entry
	for from := e.spilledFrom; ; {
		page, next, err := b.opts.Store.Queue(buf[:0], e.s.id, from, 256)
		if err != nil {
			b.stats.storeErrors.Add(1)
			b.log.Error("store: reading an ended session's queue", "client", e.s.id, "err", err)
		}
		for i := range page {
			en := &page[i]
			if en.Share == "" || en.Released || (en.Message.QoS == 2 && en.Seq <= e.sentUpTo) {
				continue
			}
			d := deliveryOf(en)
			d.size = 0 // its entry goes with the session's
			out = append(out, d)
		}
		if len(page) == 0 || next <= from {
			return out
		}
		from, buf = next, page
	}
}

// expireSession ends s when its expiry interval has passed while offline.
func (b *Broker) expireSession(s *session) {
	b.mu.Lock()
	s.mu.Lock()
	offline := s.out == nil && !s.ended
	s.mu.Unlock()
	var e *endedSession
	if offline && b.sessions[s.id] == s {
		e = b.endSessionLocked(s)
	}
	b.mu.Unlock()
	if e != nil {
		b.stats.sessionsExpired.Add(1)
	}
	b.finishEnded(e)
}

// fireWill publishes a delayed will when its delay has passed.
func (b *Broker) fireWill(s *session, pw *pendingWill) {
	s.mu.Lock()
	if s.will != pw {
		s.mu.Unlock()
		return
	}
	s.will = nil
	s.mu.Unlock()
	b.publishWill(pw.msg)
	b.forgetWill(s.id)
}

// publishWill publishes a will message; its expiry interval counts from now.
func (b *Broker) publishWill(w *Message) {
	m := &Message{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain, Props: w.Props, Origin: w.Origin}
	if m.Props != nil && m.Props.Has(mqtt.PropMessageExpiry) {
		m.Expires = time.Now().Add(time.Duration(m.Props.MessageExpiry) * time.Second)
	}
	b.stats.willsPublished.Add(1)
	b.publish(m)
}
