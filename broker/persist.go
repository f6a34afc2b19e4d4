package broker

import (
	"errors"
	"strings"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// load restores persistent sessions, their queues and inbound QoS 2 state,
// retained messages and wills from the store. Restored sessions are offline
// and spilled: their queues stay in the store until a client takes them. A
// session's expiry interval counts from when its client left; a session
// whose client was still connected when the broker stopped counts from now.
// Sessions that expired meanwhile are removed. Records that cannot be read
// are reported, counted and left in the store for `citymesh store check`.
func (b *Broker) load() {
	start := time.Now()
	snap, err := b.opts.Store.Load()
	if err != nil {
		n := 0
		for _, e := range flatten(err) {
			var ce *store.CorruptError
			if errors.As(e, &ce) {
				n++
			}
			b.log.Error("store: unreadable record", "err", e)
		}
		b.stats.storeCorrupt.Add(uint64(n))
		b.stats.storeErrors.Add(1)
	}
	now := time.Now()
	sessions, queued := 0, 0
	for i := range snap.Sessions {
		rec := &snap.Sessions[i]
		left := time.Duration(rec.Expiry) * time.Second
		if !rec.DisconnectedAt.IsZero() && rec.Expiry != NeverExpire {
			left -= now.Sub(rec.DisconnectedAt)
		}
		if left <= 0 {
			b.journal.deleteSession(rec.ClientID)
			continue
		}
		sessions++
		queued += rec.Queue.Count
		s := newSession(b, rec.ClientID)
		s.expiry = rec.Expiry
		s.stored = true
		s.persist = true
		s.offline = rec.DisconnectedAt
		if s.offline.IsZero() {
			s.offline = now
		}
		s.storedN, s.storedBytes = rec.Queue.Count, rec.Queue.Bytes
		s.seq = rec.Queue.Last
		s.restoredUpTo = rec.Queue.Last
		s.spilled = rec.Queue.Count > 0
		s.diskNext = rec.Queue.First
		// The first entries read back may have been sent before the
		// restart; they go out with DUP set.
		s.dupBudget = int(b.opts.MaxInflight)
		s.linkSeq = rec.LinkSeq
		for _, pid := range rec.Inbound {
			if s.inQoS2 == nil {
				s.inQoS2 = make(map[uint16]struct{})
			}
			s.inQoS2[pid] = struct{}{}
		}
		for _, sub := range rec.Subscriptions {
			o := subOptions{qos: min(sub.QoS, 2), noLocal: sub.NoLocal, retainAsPublished: sub.RetainAsPublished, retainHandling: sub.RetainHandling}
			if sub.ID != 0 {
				o.subIDs = []uint32{sub.ID}
			}
			b.index.Subscribe(sub.Filter, s, o)
			s.addSubLocked(sub.Filter, o)
		}
		if !strings.HasPrefix(rec.ClientID, LinkSessionPrefix) {
			for _, sub := range rec.Subscriptions {
				b.noteInterest(s, sub.Filter, 1)
			}
		}
		if rec.Expiry != NeverExpire {
			s.timer = time.AfterFunc(left, b.tracked(func() { b.expireSession(s) }))
		}
		if role := storedLinkKind(&rec.Session); role != 0 && strings.HasPrefix(rec.ClientID, LinkSessionPrefix) {
			// A mesh link's session: its link comes back with it, so that
			// routing keeps the forwarding rules before the peer returns.
			peer := rec.ClientID[len(LinkSessionPrefix):]
			l := &Link{b: b, Peer: peer, Kind: role, s: s}
			l.since.Store(now.UnixNano())
			s.link.Store(l)
			s.linkKind = role
			s.seq = linkSeqBase(s.seq)
			if b.links.links == nil {
				b.links.links = make(map[string]*Link)
			}
			b.links.links[peer] = l
		}
		b.sessions[rec.ClientID] = s
	}
	for _, m := range snap.Retained {
		b.ret.set(&Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: true, Props: m.Props, Expires: m.Expires})
	}
	if snap.Orphans > 0 {
		b.log.Warn("store: queue entries without a session", "count", snap.Orphans)
	}
	if sessions+len(snap.Retained)+len(snap.Wills) > 0 {
		b.log.Info("restored from the store", "sessions", sessions, "queued", queued, "retained", len(snap.Retained),
			"wills", len(snap.Wills), "took", time.Since(start).Round(time.Millisecond))
	}
	b.restoreWills(snap.Wills, now)
}

// restoreWills publishes or schedules the wills found in the store. A will
// whose client was connected when the broker stopped is treated as if the
// connection had been lost then [MQTT-3.1.2-8]: it is published after its
// delay, unless the client resumes its session first [MQTT-3.1.3-9].
func (b *Broker) restoreWills(wills []store.Will, now time.Time) {
	for i := range wills {
		w := &wills[i]
		msg := &Message{Topic: w.Message.Topic, Payload: w.Message.Payload, QoS: w.Message.QoS, Retain: w.Retain,
			Props: w.Message.Props, Origin: w.ClientID}
		due := w.At
		if due.IsZero() {
			due = now.Add(time.Duration(w.Delay) * time.Second)
		}
		s := b.sessions[w.ClientID]
		if s == nil || !due.After(now) {
			b.publishWill(msg)
			b.forgetWill(w.ClientID)
			continue
		}
		pw := &pendingWill{msg: msg}
		s.will = pw
		pw.timer = time.AfterFunc(due.Sub(now), b.tracked(func() { b.fireWill(s, pw) }))
		if w.At.IsZero() {
			b.keepWill(w.ClientID, msg, w.Delay, due)
		}
	}
}

// flatten returns the errors joined in err.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// persistSession writes the durable part of a persistent session to the
// store, or removes it once the session is no longer persistent, and returns
// the journal generation of the write (0 for none). It must be called
// without the session's mutex held.
func (b *Broker) persistSession(s *session) uint64 {
	if b.journal == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return 0
	}
	// A durable session resumed with expiry 0 keeps its stored queue until
	// its client has taken it: the new interval applies only when this
	// connection ends (MQTT 5.0 §3.1.2.11.2). Its record says expiry 0, so a
	// restart drops it as the end of the connection would.
	if s.expiry == 0 && !s.persist {
		if !s.stored {
			return 0
		}
		s.stored = false
		return b.journal.deleteSession(s.id)
	}
	rec := store.Session{ClientID: s.id, Expiry: s.expiry, DisconnectedAt: s.offline}
	if s.linkKind != 0 {
		rec.Link = s.linkKind.String()
	}
	for f, o := range s.subs {
		sub := store.Subscription{Subscription: mqtt.Subscription{Filter: f, QoS: o.qos, NoLocal: o.noLocal,
			RetainAsPublished: o.retainAsPublished, RetainHandling: o.retainHandling}}
		if len(o.subIDs) > 0 {
			sub.ID = o.subIDs[0]
		}
		rec.Subscriptions = append(rec.Subscriptions, sub)
	}
	// Written under the session's mutex, so that the store sees the
	// session's records in the order they changed.
	gen, err := b.journal.write(func(bt *store.Batch) error { return bt.PutSession(&rec) })
	if err != nil {
		b.storeErr("store session", err)
		return 0
	}
	s.stored = true
	return gen
}

// persistRetained records a retained message, or its removal, in the store
// and returns the journal generation of the write. The broker's own $SYS
// messages are not kept.
func (b *Broker) persistRetained(m *Message) uint64 {
	if b.journal == nil || strings.HasPrefix(m.Topic, "$SYS/") {
		return 0
	}
	gen, err := b.journal.write(func(bt *store.Batch) error {
		if len(m.Payload) == 0 {
			bt.DeleteRetained(m.Topic)
			return nil
		}
		return bt.PutRetained(&store.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Props: m.Props, Expires: m.Expires})
	})
	if err != nil {
		b.storeErr("store retained message", err)
		return 0
	}
	return gen
}

// keepWill records the will of clientID: at is when it is due, zero while
// its client is connected.
func (b *Broker) keepWill(clientID string, w *Message, delay uint32, at time.Time) {
	if b.journal == nil {
		return
	}
	_, err := b.journal.write(func(bt *store.Batch) error {
		return bt.PutWill(&store.Will{ClientID: clientID, Retain: w.Retain, Delay: delay, At: at,
			Message: store.Message{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Props: w.Props}})
	})
	b.storeErr("store will", err)
}

// forgetWill removes the will of clientID from the store.
func (b *Broker) forgetWill(clientID string) {
	if b.journal == nil {
		return
	}
	b.journal.write(func(bt *store.Batch) error { bt.DeleteWill(clientID); return nil })
}

// storeErr logs and counts a failed store operation.
func (b *Broker) storeErr(what string, err error) {
	if err != nil {
		b.stats.storeErrors.Add(1)
		b.log.Error("store: "+what+" failed", "err", err)
	}
}
