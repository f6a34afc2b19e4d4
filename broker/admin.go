package broker

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/topic"
)

// ClientInfo describes a client connected to the broker, for operators.
type ClientInfo struct {
	// ID is the client identifier.
	ID string
	// User and Tenant are who the client logged in as ("" for an
	// anonymous client, or without a tenant).
	User, Tenant string
	// Remote is the client's network address.
	Remote string
	// Listener is the name of the listener the client connected to.
	Listener string
	// Version is the protocol version: 4 (3.1.1) or 5.
	Version byte
	// Since is when the client connected.
	Since time.Time
	// Subscriptions is the number of the session's subscriptions.
	Subscriptions int
}

// sessionList returns the broker's sessions at this moment, read under
// its lock, to be looked at without it.
func (b *Broker) sessionList() []*session {
	b.mu.Lock()
	defer b.mu.Unlock()
	sessions := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		sessions = append(sessions, s)
	}
	return sessions
}

// Clients returns the clients connected over the network (not the mesh's
// links, nor in-process Local sessions), by client identifier.
func (b *Broker) Clients() []ClientInfo {
	sessions := b.sessionList()
	out := make([]ClientInfo, 0, len(sessions))
	for _, s := range sessions {
		if ci, ok := s.clientInfo(); ok {
			out = append(out, ci)
		}
	}
	slices.SortFunc(out, func(a, b ClientInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Client returns the connected client id.
func (b *Broker) Client(id string) (ClientInfo, bool) {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	if s == nil {
		return ClientInfo{}, false
	}
	return s.clientInfo()
}

// clientInfo describes the session's connected network client.
func (s *session) clientInfo() (ClientInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.out.(*conn)
	if !ok || c.kind != KindClient || c.closeAfter || c.dead {
		return ClientInfo{}, false
	}
	ci := ClientInfo{ID: s.id, Remote: c.remote, Listener: c.listener, Version: c.version, Since: c.since, Subscriptions: len(s.subs)}
	if c.ident != nil {
		ci.User, ci.Tenant = c.ident.User, c.ident.Tenant
	}
	return ci, true
}

// Disconnect ends the connection of client id on the server's initiative:
// an MQTT 5 client gets DISCONNECT with reason code 0x98 (Administrative
// action) and reason; a 3.1.1 client's connection is closed. Its session
// stays as its expiry interval says, and its will is published as for
// any connection that ends without the client's DISCONNECT. It reports
// whether the client was connected.
func (b *Broker) Disconnect(id, reason string) bool {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.out.(*conn)
	if !ok || c.kind != KindClient || c.closeAfter || c.dead {
		return false
	}
	c.endLocked(mqtt.AdministrativeAction, reason, true)
	b.log.Info("client disconnected by an operator", "client", id, "reason", reason)
	return true
}

// Retained returns the retained messages whose topics match filter, at
// most limit of them (0: all), ordered by topic. Callers must not modify
// the messages.
func (b *Broker) Retained(filter string, limit int) ([]*Message, error) {
	if err := topic.ValidFilter(filter); err != nil {
		return nil, fmt.Errorf("broker: retained messages of %q: %w", filter, err)
	}
	var out []*Message
	b.ret.match(filter, func(m *Message) { out = append(out, m) })
	slices.SortFunc(out, func(a, b *Message) int { return strings.Compare(a.Topic, b.Topic) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ClearRetained removes the retained message of topic name, in memory and
// in the store, without telling subscribers; it reports whether there was
// one.
func (b *Broker) ClearRetained(name string) (bool, error) {
	if err := topic.ValidName(name); err != nil {
		return false, fmt.Errorf("broker: clear retained message %q: %w", name, err)
	}
	found := false
	b.ret.match(name, func(*Message) { found = true })
	if !found {
		return false, nil
	}
	m := &Message{Topic: name, Retain: true}
	b.ret.set(m)
	b.persistRetained(m)
	return true, nil
}

// SessionInfo describes a session of a network client, connected or not,
// for operators.
type SessionInfo struct {
	// ID is the client identifier.
	ID string
	// Connected says whether a client is attached; Client describes it
	// then.
	Connected bool
	Client    ClientInfo
	// Expiry is the Session Expiry Interval in seconds, and Offline when
	// the client left (zero while connected).
	Expiry  uint32
	Offline time.Time
	// Queued is how many messages wait for the client, Inflight how many
	// were sent and are not yet acknowledged.
	Queued, Inflight int
	// Subscriptions are the session's subscriptions, by filter; only
	// Session fills them in.
	Subscriptions []SubscriptionInfo
	// SubscriptionCount is the number of the session's subscriptions.
	SubscriptionCount int
}

// SubscriptionInfo is one subscription of a session.
type SubscriptionInfo struct {
	// Filter is the topic filter as the broker keeps it (a shared
	// subscription's $share/{group}/ prefix included).
	Filter string
	// QoS is the maximum QoS granted.
	QoS byte
	// NoLocal, RetainAsPublished and RetainHandling are the MQTT 5
	// subscription options.
	NoLocal, RetainAsPublished bool
	RetainHandling             byte
	// Identifier is the subscription identifier, 0 for none.
	Identifier uint32
}

// Sessions returns the sessions of network clients, connected or waiting
// for their clients to come back (not the mesh's links, nor in-process
// Local sessions), by client identifier, without their subscriptions.
func (b *Broker) Sessions() []SessionInfo {
	sessions := b.sessionList()
	out := make([]SessionInfo, 0, len(sessions))
	for _, s := range sessions {
		if si, ok := s.sessionInfo(false); ok {
			out = append(out, si)
		}
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Session returns session id of a network client, with its
// subscriptions.
func (b *Broker) Session(id string) (SessionInfo, bool) {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	if s == nil {
		return SessionInfo{}, false
	}
	return s.sessionInfo(true)
}

// sessionInfo describes s, unless it is a mesh link's or an in-process
// client's.
func (s *session) sessionInfo(subs bool) (SessionInfo, bool) {
	if s.link.Load() != nil {
		return SessionInfo{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.linkKind != KindClient {
		return SessionInfo{}, false
	}
	si := SessionInfo{ID: s.id, Expiry: s.expiry, Offline: s.offline, Queued: s.queue.Len(), Inflight: len(s.inflight),
		SubscriptionCount: len(s.subs)}
	switch c := s.out.(type) {
	case nil:
	case *conn:
		if c.kind != KindClient {
			return SessionInfo{}, false
		}
		if !c.closeAfter && !c.dead {
			si.Connected, si.Offline = true, time.Time{}
			si.Client = ClientInfo{ID: s.id, Remote: c.remote, Listener: c.listener, Version: c.version, Since: c.since, Subscriptions: len(s.subs)}
			if c.ident != nil {
				si.Client.User, si.Client.Tenant = c.ident.User, c.ident.Tenant
			}
		}
	default:
		return SessionInfo{}, false // an in-process client
	}
	if subs {
		si.Subscriptions = make([]SubscriptionInfo, 0, len(s.subs))
		for f, o := range s.subs {
			x := SubscriptionInfo{Filter: f, QoS: o.qos, NoLocal: o.noLocal, RetainAsPublished: o.retainAsPublished, RetainHandling: o.retainHandling}
			if len(o.subIDs) > 0 {
				x.Identifier = o.subIDs[0]
			}
			si.Subscriptions = append(si.Subscriptions, x)
		}
		slices.SortFunc(si.Subscriptions, func(a, b SubscriptionInfo) int { return strings.Compare(a.Filter, b.Filter) })
	}
	return si, true
}
