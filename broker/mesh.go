package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/topic"
)

// The broker side of the event mesh. A link joins this node to a peer node
// (or to a foreign MQTT broker, a bridge) over one MQTT 5 connection. Each
// link has a durable session on this node, named LinkSessionPrefix+peer,
// whose subscriptions are what the peer wants from this node (its interest)
// and whose queue is the link's store-and-forward queue: messages wait there,
// in the store, while the link is down, and leave in order when it is up. The
// package mesh decides topology, interest and reconnects; the broker moves
// the messages and keeps the forwarding rules that make loops impossible.

// LinkSessionPrefix begins the client identifier of a mesh link's session
// (and of the CONNECT a peer sends to open a link).
const LinkSessionPrefix = "$mesh/"

// ControlPrefix begins the topics of the mesh's own control messages
// (interest, hello), exchanged between the two ends of a link and never
// routed to clients.
const ControlPrefix = "$mesh/"

// ControlAlive is the control message (empty, QoS 0) the accepting end of a
// link sends while a long packet from the dialing end is still arriving:
// the dialing end's PINGREQ waits behind that packet, so without it the
// dialing end would hear nothing and take the link for dead. Nodes ignore
// it as any packet: it only says the peer is there.
const ControlAlive = ControlPrefix + "alive"

// User properties that travel with a message across links: the node that
// first forwarded it, and how many links it has crossed.
const (
	PropOrigin = "citymesh-origin"
	PropHops   = "citymesh-hops"
	// PropShare names a shared subscription the receiving node is to
	// serve the message to (one property per subscription).
	PropShare = "citymesh-share"
	// PropSeq numbers the QoS 1 and 2 messages a node sends over a link,
	// in the order it sends them (the link session's sequence).
	PropSeq = "citymesh-seq"
)

// isMeshProp reports whether a user property key is one of the mesh's.
func isMeshProp(k string) bool {
	return k == PropOrigin || k == PropHops || k == PropShare || k == PropSeq
}

// meshSeq returns a message's link sequence number, 0 if it has none.
func meshSeq(p *mqtt.Properties) uint64 {
	for i := len(p.User) - 1; i >= 0; i-- {
		if p.User[i].Key == PropSeq {
			n, _ := strconv.ParseUint(p.User[i].Value, 10, 64)
			return n
		}
	}
	return 0
}

// Kind says what is at the other end of a connection or a session, as this
// node sees it: a client (an MQTT client or an in-process one: the zero
// value), or the peer of a mesh link. Every rule of the mesh switches on it,
// and the forwarding rule has one home: Forwards.
type Kind uint8

// Kinds of peers.
const (
	KindClient   Kind = iota // not a link: a client of this node
	KindCore                 // the peer is a core node, and so is this one
	KindEdge                 // the peer is an edge node attached to this core
	KindUpstream             // the peer is the core node this edge attaches to
	KindBridge               // the peer is a foreign MQTT broker
)

// String names the kind as configuration files name a link's role.
func (k Kind) String() string {
	switch k {
	case KindClient:
		return "client"
	case KindCore:
		return "core"
	case KindEdge:
		return "edge"
	case KindUpstream:
		return "upstream"
	case KindBridge:
		return "bridge"
	}
	return "unknown"
}

// ParseKind reads the name of a link's kind (its role in configuration
// files): core, edge, upstream or bridge.
func ParseKind(s string) (Kind, error) {
	for k := KindCore; k <= KindBridge; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("link role %q: want core, edge, upstream or bridge", s)
}

// IsLink reports whether the peer is at the other end of a mesh link or a
// bridge.
func (k Kind) IsLink() bool { return k != KindClient }

// IsNode reports whether the peer is a citymesh node (a core, an edge or
// the upstream core): one that speaks the mesh's own protocol (control
// messages, sequence numbers, shared groups) over the link.
func (k Kind) IsNode() bool { return k == KindCore || k == KindEdge || k == KindUpstream }

// Forwards is the mesh's forwarding rule: whether a message that came in
// from a peer of kind from (KindClient: published by a client of this node)
// may go out to a peer of kind to (KindClient: a client of this node). Local
// clients and bridges, the ways out of the mesh, may take anything; what a
// client, an edge or a bridge brought in may go anywhere; what came from a
// core peer goes on only to this core's edges; what came from this edge's
// core goes to local clients (and bridges) only. So a message crosses at
// most one core-to-core hop and a loop cannot form. Routing applies it to
// every delivery to a link (Broker.canForward), and the mesh to decide what
// interest to advertise to each peer (what a peer's messages could reach
// here).
func Forwards(from, to Kind) bool {
	if from == KindClient || to == KindClient || to == KindBridge {
		return true
	}
	switch from {
	case KindCore:
		return to == KindEdge // one core-to-core hop, then only down to edges
	case KindUpstream:
		return false // an edge's core sends what its clients want
	default: // an edge or a bridge
		return true
	}
}

// MeshHandler is the mesh's side of the broker: it decides which
// connections may be links and receives the control messages of links.
type MeshHandler interface {
	// AcceptLink decides whether a connection that asks to be a link from
	// node peer (client identifier LinkSessionPrefix+peer) may be one,
	// given its identity and the user properties of its CONNECT; it returns
	// the link's role, or an error that refuses the connection (0x87).
	AcceptLink(id *auth.Identity, peer string, props []mqtt.UserProperty) (Kind, error)
	// Control receives a control message (topic under ControlPrefix) that
	// the peer of link l sent.
	Control(l *Link, topic string, payload []byte)
	// LinkUp and LinkDown report a link's connection coming and going.
	LinkUp(l *Link)
	LinkDown(l *Link)
	// LinkKeepAlive is the longest keep alive this node allows the links
	// it accepts (0: what the dialing end asks for). A link's connection
	// silent for one and a half times its keep alive is closed at either
	// end [MQTT-3.1.2-24].
	LinkKeepAlive() time.Duration
}

// Link is one mesh link as the broker sees it. Create it with Broker.Link.
type Link struct {
	b    *Broker
	Peer string
	Kind Kind // the peer's kind; never KindClient
	s    *session

	// OutTopic and InTopic map topics for a bridge: the topic a message
	// has at the foreign broker, and the local topic of one that came from
	// it (false: not taken in). Nil keeps topics as they are.
	OutTopic func(local string) string
	InTopic  func(remote string) (string, bool)

	grants    atomic.Pointer[Grants]
	up        atomic.Bool
	forwarded atomic.Uint64 // messages sent to the peer
	received  atomic.Uint64 // messages taken in from the peer
	dropped   linkDrops
	since     atomic.Int64 // when the link last came up or went down, Unix nanoseconds
}

// Grants limit what may cross a link: a message goes out only if its topic
// matches one of Export, and is taken in only if it matches one of Import;
// an empty list means no limit.
type Grants struct {
	Export, Import []string
}

// SetGrants replaces the link's grants; messages routed from then on obey
// them (messages already queued for the peer stay queued).
func (l *Link) SetGrants(g Grants) { l.grants.Store(&g) }

// Grants returns the link's grants.
func (l *Link) Grants() Grants {
	if g := l.grants.Load(); g != nil {
		return *g
	}
	return Grants{}
}

// linkDrops counts what a link refused, by reason.
type linkDrops struct {
	loop, hops, imported    atomic.Uint64
	full, expired, tooLarge atomic.Uint64
	duplicate               atomic.Uint64
}

// LinkStats is a snapshot of a link's state and counters.
type LinkStats struct {
	Peer      string        `json:"peer"`
	Role      string        `json:"role"`
	Up        bool          `json:"up"`
	Since     time.Time     `json:"since"`
	Queued    int           `json:"queued"`   // messages waiting for the peer (in the store for a durable link)
	Inflight  int           `json:"inflight"` // sent, not yet acknowledged
	Lag       time.Duration `json:"lag_ns"`   // age of the oldest message the peer has not acknowledged (queued or in flight); 0 when none waits
	Forwarded uint64        `json:"forwarded"`
	Received  uint64        `json:"received"`
	Interest  int           `json:"interest"` // filters the peer asked for
	// Dropped counts what the link refused or lost, by reason: loop (came
	// back to its origin), hops (over the hop limit), import (outside the
	// import grants), queue_full (the link's queue at its limit), expired
	// (its Message Expiry passed while queued), too_large (over the peer's
	// Maximum Packet Size), duplicate (a resend of a message taken in
	// already).
	Dropped map[string]uint64 `json:"dropped"`
}

// Stats returns the link's state and counters.
func (l *Link) Stats() LinkStats {
	st := LinkStats{Peer: l.Peer, Role: l.Kind.String(), Up: l.up.Load(), Since: time.Unix(0, l.since.Load()),
		Forwarded: l.forwarded.Load(), Received: l.received.Load(),
		Dropped: map[string]uint64{"loop": l.dropped.loop.Load(), "hops": l.dropped.hops.Load(), "import": l.dropped.imported.Load(),
			"queue_full": l.dropped.full.Load(), "expired": l.dropped.expired.Load(), "too_large": l.dropped.tooLarge.Load(),
			"duplicate": l.dropped.duplicate.Load()}}
	s := l.s
	s.mu.Lock()
	st.Inflight = len(s.inflight)
	st.Queued = s.queue.n
	stored := 0
	if s.persist && s.spilled {
		stored = max(0, s.storedN-s.queue.n-len(s.inflight))
		st.Queued += stored
	}
	st.Interest = len(s.subs)
	// The oldest message waiting is in memory (in flight, or at the front
	// of the queue) if any is there: entries only in the store come after
	// those in memory, and were queued later.
	var oldest int64
	for _, d := range s.inflight {
		if d.enqueued > 0 && (oldest == 0 || d.enqueued < oldest) {
			oldest = d.enqueued
		}
	}
	if s.queue.n > 0 {
		if at := s.queue.front().enqueued; at > 0 && (oldest == 0 || at < oldest) {
			oldest = at
		}
	}
	storeOnly, from := stored > 0 && len(s.inflight) == 0 && s.queue.n == 0, s.diskNext
	s.mu.Unlock()
	if storeOnly && l.b.opts.Store != nil {
		// Only the store holds the queue (the link is down, or was
		// restored at start): its first entry says when it was queued.
		l.b.whileOpen(func() {
			if es, _, err := l.b.opts.Store.Queue(nil, s.id, from, 1); err == nil && len(es) > 0 && !es[0].Queued.IsZero() {
				oldest = es[0].Queued.UnixNano()
			}
		})
	}
	if oldest > 0 {
		st.Lag = max(0, time.Duration(l.b.clock.Load()-oldest))
	}
	return st
}

// Up reports whether the link's connection is up.
func (l *Link) Up() bool { return l.up.Load() }

// setUp records the link's connection state.
func (l *Link) setUp(up bool) {
	if l.up.Swap(up) != up {
		l.since.Store(time.Now().UnixNano())
		if h := l.b.opts.Mesh; h != nil {
			if up {
				h.LinkUp(l)
			} else {
				h.LinkDown(l)
			}
		}
	}
}

// whileOpen runs fn unless the broker is closed, and makes Close wait for
// it: fn may read the store, which its owner closes after the broker.
func (b *Broker) whileOpen(fn func()) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()
	fn()
}

// linkSeqBase returns where a link session's sequence numbers go on from
// when it is created or restored: after seq, and after the present time in
// nanoseconds. The peer recognises a resend by its sequence number (PropSeq),
// so the numbers must never go back, also after a restart that found the
// queue empty (the highest number sent is stored nowhere then); a link does
// not send more than one message a nanosecond, so the clock is a floor that
// only grows.
func linkSeqBase(seq uint64) uint64 { return max(seq, uint64(time.Now().UnixNano())) }

// linkTable keeps the broker's links by peer.
type linkTable struct {
	mu    sync.Mutex
	links map[string]*Link
}

// Link returns the link to peer with role, creating it (and its durable
// session) on first use. A link's session keeps its queue and interest
// across restarts; its role is stored with it.
func (b *Broker) Link(peer string, role Kind) (*Link, error) {
	if peer == "" || strings.ContainsAny(peer, "/+#\x00") {
		return nil, fmt.Errorf("broker: link peer %q: not a valid node name", peer)
	}
	b.links.mu.Lock()
	defer b.links.mu.Unlock()
	if l := b.links.links[peer]; l != nil {
		if l.Kind != role {
			return nil, fmt.Errorf("broker: link to %s is a %s link, not %s", peer, l.Kind, role)
		}
		return l, nil
	}
	id := LinkSessionPrefix + peer
	b.mu.Lock()
	s := b.sessions[id]
	if s == nil {
		s = newSession(b, id)
		s.expiry = NeverExpire
		s.offline = time.Now()
		s.persist = b.journal != nil
		b.sessions[id] = s
	}
	b.mu.Unlock()
	l := &Link{b: b, Peer: peer, Kind: role, s: s}
	l.since.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.link.Store(l)
	s.linkKind = role
	s.seq = linkSeqBase(s.seq)
	s.mu.Unlock()
	if b.links.links == nil {
		b.links.links = make(map[string]*Link)
	}
	b.links.links[peer] = l
	b.persistSession(s)
	return l, nil
}

// Links returns every link the broker knows.
func (b *Broker) Links() []*Link {
	b.links.mu.Lock()
	defer b.links.mu.Unlock()
	out := make([]*Link, 0, len(b.links.links))
	for _, l := range b.links.links {
		out = append(out, l)
	}
	return out
}

// Forget removes a link and its session, queue included.
func (b *Broker) Forget(l *Link) {
	b.links.mu.Lock()
	delete(b.links.links, l.Peer)
	b.links.mu.Unlock()
	b.mu.Lock()
	e := b.endSessionLocked(l.s)
	b.mu.Unlock()
	b.finishEnded(e)
}

// Interest is one filter a peer wants, with the QoS it asks for.
type Interest struct {
	Filter string
	QoS    byte
}

// SetInterest makes the link's subscriptions exactly interest: what the peer
// wants from this node. New filters get the retained messages they match, as
// a new subscription would, so a late subscriber on the peer's side finds
// them; filters no longer wanted are removed. It returns how many were added
// and removed.
func (l *Link) SetInterest(interest []Interest) (added, removed int) {
	want := make(map[string]byte, len(interest))
	for _, in := range interest {
		if topic.ValidFilter(in.Filter) == nil {
			want[in.Filter] = max(want[in.Filter], min(in.QoS, 2))
		}
	}
	s := l.s
	s.mu.Lock()
	var drop []string
	for f := range s.subs {
		if _, ok := want[f]; !ok {
			drop = append(drop, f)
		}
	}
	var add []Interest
	for f, q := range want {
		if o, ok := s.subs[f]; !ok || o.qos != q {
			add = append(add, Interest{f, q})
		}
	}
	s.mu.Unlock()
	l.change(add, drop)
	return len(add), len(drop)
}

// ChangeInterest adds and removes filters of the link's interest.
func (l *Link) ChangeInterest(add []Interest, remove []string) { l.change(add, remove) }

func (l *Link) change(add []Interest, remove []string) {
	b, s := l.b, l.s
	for _, f := range remove {
		b.index.Unsubscribe(f, s)
		s.mu.Lock()
		delete(s.subs, f)
		s.mu.Unlock()
	}
	var fresh []string
	for _, in := range add {
		if topic.ValidFilter(in.Filter) != nil {
			continue
		}
		o := subOptions{qos: min(in.QoS, 2), retainAsPublished: true}
		existed := b.index.Subscribe(in.Filter, s, o)
		s.mu.Lock()
		s.addSubLocked(in.Filter, o)
		s.mu.Unlock()
		if _, _, shared := topic.ParseShared(in.Filter); !shared && !existed {
			fresh = append(fresh, in.Filter)
		}
	}
	if len(add)+len(remove) > 0 {
		b.persistSession(s)
	}
	now := time.Now()
	for _, f := range fresh {
		o := subOptions{qos: 2}
		s.mu.Lock()
		if so, ok := s.subs[f]; ok {
			o = so
		}
		s.mu.Unlock()
		b.ret.match(f, func(m *Message) {
			if !m.expired(now) && b.canForward(m, l) {
				s.enqueue(delivery{msg: m, qos: min(m.QoS, o.qos), retain: true})
			}
		})
	}
}

// Interest returns the link's current subscriptions.
func (l *Link) Interest() []Interest {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Interest, 0, len(s.subs))
	for f, o := range s.subs {
		out = append(out, Interest{f, o.qos})
	}
	return out
}

// SendControl sends a control message to the peer: topic must begin with
// ControlPrefix. Control messages are not stored and go ahead of queued
// messages (so that interest is current before a backlog drains); while the
// link is down they are refused.
func (l *Link) SendControl(t string, payload []byte) error {
	if !strings.HasPrefix(t, ControlPrefix) {
		return fmt.Errorf("broker: control topic %q outside %s", t, ControlPrefix)
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.out.(*conn)
	if !ok || c.dead {
		return errors.New("broker: link is down")
	}
	c.ctrlq = append(c.ctrlq, ctrl{pkt: &mqtt.Publish{Topic: t, Payload: payload}})
	c.wakeLocked()
	return nil
}

// canForward applies the mesh's forwarding rules: may msg go out on link
// to? It is called while routing, for sessions that are links.
func (b *Broker) canForward(msg *Message, to *Link) bool {
	via := msg.Via
	switch {
	case via == to:
		return false // never back where it came from
	case msg.Hops >= b.opts.MaxHops:
		to.dropped.hops.Add(1)
		return false
	case !to.exports(msg.Topic):
		return false
	case hasPrefix(msg.Topic, ControlPrefix):
		return false
	}
	from := KindClient
	if via != nil {
		from = via.Kind
	}
	return Forwards(from, to.Kind)
}

// exports reports whether the link's grants let a message on topic t go
// out.
func (l *Link) exports(t string) bool {
	g := l.grants.Load()
	return g == nil || len(g.Export) == 0 || matchesAny(g.Export, t)
}

// imports reports whether the link's grants let a message on topic t in.
func (l *Link) imports(t string) bool {
	g := l.grants.Load()
	return g == nil || len(g.Import) == 0 || matchesAny(g.Import, t)
}

func matchesAny(filters []string, t string) bool {
	for _, f := range filters {
		if topic.Match(f, t) {
			return true
		}
	}
	return false
}

// meshTags reads the mesh user properties of a message received over a
// link: the origin node and the hops so far.
func meshTags(p *mqtt.Properties) (origin string, hops int) {
	for _, u := range p.User {
		switch u.Key {
		case PropOrigin:
			origin = u.Value
		case PropHops:
			hops, _ = strconv.Atoi(u.Value)
		}
	}
	return origin, hops
}

// hasMeshTags reports whether properties carry mesh user properties.
func hasMeshTags(p *mqtt.Properties) bool {
	for _, u := range p.User {
		if isMeshProp(u.Key) {
			return true
		}
	}
	return false
}

// shareSep joins the shared subscriptions of one delivery over a link in
// delivery.share (no MQTT string holds U+0000 [MQTT-1.5.4-2]).
const shareSep = "\x00"

// linkProps sets dst to the properties of delivery d as it goes out on a
// link: the message's own, with the origin (this node, if it has none yet)
// and the hop count (one more than it had); for links between citymesh nodes
// also the shared subscriptions the peer is to serve it to (d.share, joined
// by shareSep) and the delivery's sequence number. The user properties are
// built in scratch, which it returns for the next message: dst is encoded
// before the writer builds the next one, so one slice serves them all.
func (b *Broker) linkProps(m *Message, dst *mqtt.Properties, d *delivery, bridge bool, scratch []mqtt.UserProperty) []mqtt.UserProperty {
	origin, hops := b.opts.NodeName, 0
	if m.Props != nil {
		*dst = *m.Props
		if o, h := meshTags(m.Props); o != "" {
			origin, hops = o, h
		}
	}
	user := scratch[:0]
	for _, u := range dst.User {
		if !isMeshProp(u.Key) {
			user = append(user, u)
		}
	}
	user = append(user, mqtt.UserProperty{Key: PropOrigin, Value: origin}, mqtt.UserProperty{Key: PropHops, Value: strconv.Itoa(hops + 1)})
	if !bridge {
		for f := range strings.SplitSeq(d.share, shareSep) {
			if f != "" {
				user = append(user, mqtt.UserProperty{Key: PropShare, Value: f})
			}
		}
		if d.seq > 0 {
			user = append(user, mqtt.UserProperty{Key: PropSeq, Value: strconv.FormatUint(d.seq, 10)})
		}
	}
	dst.User = user
	return user
}

// clientProps returns the properties of m as a client receives it: without
// the mesh's user properties. The stripped copy is made once per message.
func (m *Message) clientProps() *mqtt.Properties {
	if m.Props == nil || m.Via == nil && !hasMeshTags(m.Props) {
		return m.Props
	}
	if p := m.plain.Load(); p != nil {
		return p
	}
	p := *m.Props
	p.User = nil
	for _, u := range m.Props.User {
		if !isMeshProp(u.Key) {
			p.User = append(p.User, u)
		}
	}
	m.plain.Store(&p)
	return &p
}

// takeIn prepares a message received over link l: it reads the mesh tags,
// refuses loops (a message that started here) and messages outside the
// link's import grants, and marks where it came from. It reports whether the
// message may be routed.
func (b *Broker) takeIn(l *Link, m *Message) bool {
	var origin string
	var hops int
	if m.Props != nil {
		origin, hops = meshTags(m.Props)
	}
	switch {
	case origin == b.opts.NodeName && b.opts.NodeName != "":
		l.dropped.loop.Add(1)
		b.log.Warn("mesh: a message came back to the node it started from; dropped (a loop in the links)", "link", l.Peer, "topic", m.Topic)
		return false
	case !l.imports(m.Topic):
		l.dropped.imported.Add(1)
		return false
	}
	m.Via = l
	m.Hops = hops
	if l.Kind.IsNode() && m.Props != nil {
		for _, u := range m.Props.User {
			if u.Key == PropShare {
				m.Shares = append(m.Shares, u.Value)
			}
		}
	}
	l.received.Add(1)
	return true
}

// takeTagged checks a message that a client (not a link) published for mesh
// tags: a message a bridge brought back from a foreign broker carries the
// tags it left with. One that started at this node is a loop through
// bridges and is dropped; the hops it made count towards the limit. It
// reports whether the message may be routed.
func (b *Broker) takeTagged(m *Message) bool {
	if m.Props == nil || len(m.Props.User) == 0 || b.opts.NodeName == "" || !hasMeshTags(m.Props) {
		return true
	}
	origin, hops := meshTags(m.Props)
	if origin == b.opts.NodeName {
		if n := b.stats.meshLoops.Add(1); n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th…
			b.log.Warn("mesh: a message came back through a bridge to the node it started from; dropped (a loop through a foreign broker)",
				"topic", m.Topic, "loops", n)
		}
		return false
	}
	m.Hops = hops
	return true
}

// storedLinkKind reads the link role kept in a stored session record.
func storedLinkKind(rec *store.Session) Kind {
	r, _ := ParseKind(rec.Link)
	return r
}

// interestTable counts, by filter, the subscriptions of this node's own
// sessions (clients and in-process, not links): the node's local interest,
// which the mesh advertises to its peers.
type interestTable struct {
	mu     sync.Mutex
	counts map[string]int
	watch  func(filter string, present bool)
}

// note records that a subscription to filter was added (delta 1) or removed
// (-1) for session s, and tells the watcher when the filter appears or goes.
func (b *Broker) noteInterest(s *session, filter string, delta int) {
	if s.link.Load() != nil {
		return
	}
	t := &b.interest
	t.mu.Lock()
	if t.counts == nil {
		t.counts = make(map[string]int)
	}
	n := t.counts[filter] + delta
	if n <= 0 {
		delete(t.counts, filter)
	} else {
		t.counts[filter] = n
	}
	watch := t.watch
	changed := (n == 1 && delta > 0) || (n <= 0 && delta < 0)
	t.mu.Unlock()
	if changed && watch != nil {
		watch(filter, delta > 0)
	}
}

// WatchInterest returns the filters this node's own sessions subscribe to
// (clients and in-process ones, not mesh links), and calls fn whenever a
// filter appears among them or leaves them. fn must not block; it is called
// without the broker's locks. There is one watcher; a new call replaces it.
func (b *Broker) WatchInterest(fn func(filter string, present bool)) []string {
	t := &b.interest
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watch = fn
	out := make([]string, 0, len(t.counts))
	for f := range t.counts {
		out = append(out, f)
	}
	return out
}

// Disconnect closes the link's current connection, if any (MQTT 5:
// DISCONNECT with code); the link's queue and interest stay.
func (l *Link) Disconnect(code mqtt.ReasonCode) {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.out.(*conn); ok {
		c.endLocked(code, "", true)
	}
}
