package broker

import (
	"strings"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// load restores persistent sessions and retained messages from the store.
// Restored sessions are offline. A session's expiry interval counts from
// when its client left; a session whose client was still connected when the
// broker stopped counts from now. Sessions that expired meanwhile are
// removed.
func (b *Broker) load() {
	st := b.opts.Store
	sessions, err := st.Sessions()
	if err != nil {
		b.storeErr("load sessions", err)
	}
	now := time.Now()
	n := 0
	for _, rec := range sessions {
		left := time.Duration(rec.Expiry) * time.Second
		if !rec.DisconnectedAt.IsZero() && rec.Expiry != NeverExpire {
			left -= now.Sub(rec.DisconnectedAt)
		}
		if left <= 0 {
			b.storeErr("delete expired session", st.DeleteSession(rec.ClientID))
			continue
		}
		n++
		s := newSession(b, rec.ClientID)
		s.expiry = rec.Expiry
		s.stored = true
		s.offline = rec.DisconnectedAt
		if s.offline.IsZero() {
			s.offline = now
		}
		for _, sub := range rec.Subscriptions {
			o := subOptions{qos: min(sub.QoS, 2), noLocal: sub.NoLocal, retainAsPublished: sub.RetainAsPublished, retainHandling: sub.RetainHandling}
			if sub.ID != 0 {
				o.subIDs = []uint32{sub.ID}
			}
			b.index.Subscribe(sub.Filter, s, o)
			s.addSubLocked(sub.Filter, o)
		}
		if rec.Expiry != NeverExpire {
			s.timer = time.AfterFunc(left, func() { b.expireSession(s) })
		}
		b.sessions[rec.ClientID] = s
	}
	retained, err := st.Retained()
	if err != nil {
		b.storeErr("load retained messages", err)
	}
	for _, m := range retained {
		b.ret.set(&Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: true, Props: m.Props, Expires: m.Expires})
	}
	if n+len(retained) > 0 {
		b.log.Info("restored from the store", "sessions", n, "retained", len(retained))
	}
}

// persistSession writes the durable part of a persistent session to the
// store, or removes it once the session is no longer persistent. It must be
// called without locks held.
func (b *Broker) persistSession(s *session) {
	st := b.opts.Store
	if st == nil {
		return
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	if s.expiry == 0 {
		was := s.stored
		s.stored = false
		s.mu.Unlock()
		if was {
			b.storeErr("delete session", st.DeleteSession(s.id))
		}
		return
	}
	rec := store.Session{ClientID: s.id, Expiry: s.expiry, DisconnectedAt: s.offline}
	for f, o := range s.subs {
		sub := store.Subscription{Subscription: mqtt.Subscription{Filter: f, QoS: o.qos, NoLocal: o.noLocal,
			RetainAsPublished: o.retainAsPublished, RetainHandling: o.retainHandling}}
		if len(o.subIDs) > 0 {
			sub.ID = o.subIDs[0]
		}
		rec.Subscriptions = append(rec.Subscriptions, sub)
	}
	s.stored = true
	s.mu.Unlock()
	b.storeErr("store session", st.PutSession(rec))
}

// persistRetained records a retained message, or its removal, in the store.
// The broker's own $SYS messages are not kept.
func (b *Broker) persistRetained(m *Message) {
	st := b.opts.Store
	if st == nil || strings.HasPrefix(m.Topic, "$SYS/") {
		return
	}
	if len(m.Payload) == 0 {
		b.storeErr("delete retained message", st.DeleteRetained(m.Topic))
		return
	}
	b.storeErr("store retained message", st.PutRetained(store.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Props: m.Props, Expires: m.Expires}))
}

// storeErr logs and counts a failed store operation.
func (b *Broker) storeErr(what string, err error) {
	if err != nil {
		b.stats.storeErrors.Add(1)
		b.log.Error("store: "+what+" failed", "err", err)
	}
}
