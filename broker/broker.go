// Package broker is the citymesh MQTT 3.1.1 and 5.0 broker: listeners,
// connections, sessions, QoS flows, retained messages, wills, shared
// subscriptions and the subscription index. It knows nothing of cities; it
// moves messages.
//
// Lock order, outermost first: linkTable.mu (Broker.links, the mesh link
// table), then Broker.mu, then session.mu, then journal.mu. Broker.Link holds
// linkTable.mu while it takes Broker.mu and session.mu and while it stores
// the link's session; nothing takes linkTable.mu while holding another of
// these locks (Links and Forget take it alone, and the mesh's LinkUp and
// LinkDown hooks run with no broker lock held). The subscription index, the
// retained store and the shared-group counters have their own locks and are
// never held while another lock is taken.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/topic"
)

// Version is the broker's version, reported in $SYS/broker/version.
const Version = "0.1.0"

// Options configures a Broker. The zero value is usable: every zero field
// takes the default documented on it.
//
// The yaml tags are the keys of the limits section of a node's configuration
// file (package node), so that each setting is defined, defaulted and
// documented here once. Fields tagged "-" are set by the program; a node sets
// them from other parts of its configuration.
type Options struct {
	// MaxPacketSize is the largest packet accepted from clients, in bytes,
	// announced in CONNACK [MQTT-3.2.2-15]. Default 1 MiB.
	MaxPacketSize uint32 `yaml:"max_packet_size"`
	// ReceiveMaximum is how many QoS 1 and 2 publishes a client may have
	// unacknowledged towards the broker [MQTT-3.3.4-9]. Default 1024.
	ReceiveMaximum uint16 `yaml:"receive_maximum"`
	// MaxInflight caps the broker's own outbound window per session, below
	// the client's Receive Maximum [MQTT-3.3.4-7]. Default 1024.
	MaxInflight uint16 `yaml:"max_inflight"`
	// TopicAliasMaximum is how many topic aliases a client may set towards the
	// broker [MQTT-3.2.2-17]. Default 1024; the broker also assigns aliases
	// towards clients that allow them.
	TopicAliasMaximum uint16 `yaml:"topic_alias_maximum"`
	// MaxQueuedMessages bounds each session's queue of messages kept in
	// memory, waiting to be sent (beyond the inflight window): every message
	// of a session without a store, and QoS 0 messages of a durable one.
	// Default 10,000.
	MaxQueuedMessages int `yaml:"max_queued_messages"`
	// MaxQueuedBytes bounds the payload bytes of that queue. Default 64 MiB.
	MaxQueuedBytes int `yaml:"max_queued_bytes"`
	// MaxStoredMessages bounds the QoS 1 and 2 messages a durable session
	// (one with a Session Expiry Interval, on a broker with a Store) holds in
	// the store: queued and inflight. Default 100,000.
	MaxStoredMessages int `yaml:"max_stored_messages"`
	// MaxStoredBytes bounds the encoded bytes of those messages. Default
	// 256 MiB.
	MaxStoredBytes int `yaml:"max_stored_bytes"`
	// MaxLinkStoredMessages and MaxLinkStoredBytes bound the same for the
	// durable session of a mesh link, which carries the traffic of many
	// clients across an outage. Defaults 10,000,000 and 4 GiB.
	MaxLinkStoredMessages int `yaml:"-"`
	MaxLinkStoredBytes    int `yaml:"-"`
	// QueueQoS0Offline, when set, queues QoS 0 messages for disconnected
	// persistent sessions as well (the specification allows either, MQTT 5.0 §4.1).
	// Default off, as in Mosquitto.
	QueueQoS0Offline bool `yaml:"queue_qos0_offline"`
	// MaxSessionExpiry caps the Session Expiry Interval clients ask for, in
	// seconds. MQTT 3.1.1 persistent sessions get this value too. Default
	// 0 means no cap (and no expiry for 3.1.1 persistent sessions).
	MaxSessionExpiry uint32 `yaml:"max_session_expiry_seconds"`
	// MaxKeepAlive caps the client's keep alive, in seconds; a larger or zero
	// keep alive is answered with Server Keep Alive [MQTT-3.2.2-21] (MQTT 5
	// only). Default 0 means no cap.
	MaxKeepAlive uint16 `yaml:"max_keep_alive_seconds"`
	// ConnectTimeout is how long a new connection may take to send CONNECT.
	// Default 10 s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// WriteTimeout is how long a write to a client may wait for the
	// client to take the bytes (its socket full: a client that reads
	// nothing, a dead link) before the connection is closed. Default 30 s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// SysInterval is the period of $SYS/ statistics. Default 10 s; negative
	// disables them.
	SysInterval time.Duration `yaml:"-"`
	// Logger receives the broker's logs. Default slog.Default().
	Logger *slog.Logger `yaml:"-"`
	// Store keeps persistent sessions with their subscriptions, queued and
	// inflight messages and inbound QoS 2 state, retained messages and wills
	// across restarts; New loads them from it. Nil keeps everything in memory
	// only. The broker writes to the store but does not close it.
	Store *store.Store `yaml:"-"`
	// Sync says when a write to the store counts as done (see SyncMode);
	// the zero value is SyncBatch.
	Sync SyncMode `yaml:"-"`
	// Authenticator checks every connecting client's credentials; nil lets
	// every client in, anonymous. Clients then have an identity, may be
	// refused, and belong to their tenant's namespace (see docs/security.md).
	Authenticator auth.Authenticator `yaml:"-"`
	// Authorizer decides what each client may publish, subscribe to and
	// receive; nil allows everything. With an Authenticator set, $SYS/ is
	// for administrators only.
	Authorizer auth.Authorizer `yaml:"-"`
	// Limits protect the broker from clients that take too much.
	Limits Limits `yaml:",inline"`
	// Audit receives a record of every authentication and authorization
	// decision that refuses something, and of every accepted login; nil
	// discards them.
	Audit *slog.Logger `yaml:"-"`
	// NodeName names this node in the event mesh: it tags the messages it
	// forwards over links, so that one coming back is recognised as a loop.
	NodeName string `yaml:"-"`
	// Mesh is the mesh's handler of links; nil refuses link connections.
	Mesh MeshHandler `yaml:"-"`
	// MaxHops is how many links a message may cross; it is not forwarded
	// further. The mesh's rules allow three (edge, core, core, edge); the
	// limit is a second defence against loops. Default 8.
	MaxHops int `yaml:"-"`
	// OnClient, if set, is told of every client connection that is
	// accepted and of its end (see ClientEvent). It is called on the
	// connection's goroutine, outside the broker's locks, and must return
	// quickly.
	OnClient func(ClientEvent) `yaml:"-"`
}

func (o *Options) setDefaults() {
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = 1 << 20
	}
	if o.ReceiveMaximum == 0 {
		o.ReceiveMaximum = 1024
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = 1024
	}
	if o.TopicAliasMaximum == 0 {
		o.TopicAliasMaximum = 1024
	}
	if o.MaxQueuedMessages == 0 {
		o.MaxQueuedMessages = 10000
	}
	if o.MaxQueuedBytes == 0 {
		o.MaxQueuedBytes = 64 << 20
	}
	if o.MaxStoredMessages == 0 {
		o.MaxStoredMessages = 100_000
	}
	if o.MaxStoredBytes == 0 {
		o.MaxStoredBytes = 256 << 20
	}
	if o.MaxLinkStoredMessages == 0 {
		o.MaxLinkStoredMessages = 10_000_000
	}
	if o.MaxLinkStoredBytes == 0 {
		o.MaxLinkStoredBytes = 4 << 30
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.SysInterval == 0 {
		o.SysInterval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Audit == nil {
		o.Audit = slog.New(slog.DiscardHandler)
	}
	if o.MaxHops == 0 {
		o.MaxHops = 8
	}
	o.Limits.setDefaults()
}

// subOptions is what the index keeps per subscription.
type subOptions struct {
	qos               byte
	noLocal           bool
	retainAsPublished bool
	retainHandling    byte
	subIDs            []uint32 // zero or one identifier, shared by every delivery
}

type subIndex = topic.Index[*session, subOptions]
type subEntry = topic.Entry[*session, subOptions]

// Broker is an MQTT broker. Create it with New, feed it connections with Serve
// or ServeConn, and stop it with Close.
type Broker struct {
	opts  Options
	log   *slog.Logger
	index *subIndex
	ret   retainedStore
	stats Stats
	start time.Time

	mu        sync.Mutex
	sessions  map[string]*session
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool

	shareMu sync.Mutex
	shareRR map[string]*atomic.Uint32 // shared subscription filter → round-robin counter

	journal   *journal       // group commit to the store; nil without a store
	guard     *guard         // per-address connection limits
	links     linkTable      // mesh links by peer
	interest  interestTable  // local subscriptions by filter, for the mesh
	poller    *poller        // parks idle connections; nil where unsupported
	matchPool sync.Pool      // *[]subEntry scratch for routing
	wg        sync.WaitGroup // readers, the poller, the clock and $SYS loops
	done      chan struct{}

	// Work that may start while the broker shuts down (writers sending a
	// final DISCONNECT, in-process deliveries, timers' work) runs through
	// background; Close waits for it after the readers, and from then on
	// none starts.
	bgMu   sync.Mutex
	bgDone bool
	bg     sync.WaitGroup

	// clock is the time in Unix nanoseconds, refreshed every clockTick. The
	// message path reads it instead of calling time.Now, which is a system
	// call on some virtual machines; deadlines and expiry need no finer
	// resolution.
	clock   atomic.Int64
	clockFn func() time.Time
}

const clockTick = 5 * time.Millisecond

// now returns the broker's coarse clock.
func (b *Broker) now() time.Time { return time.Unix(0, b.clock.Load()) }

func (b *Broker) clockLoop() {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-b.done:
			return
		case now := <-t.C:
			b.clock.Store(now.UnixNano())
			if now.Sub(lastSweep) > time.Minute {
				lastSweep = now
				b.guard.sweep(now)
			}
		}
	}
}

// New returns a broker configured by opts.
func New(opts Options) *Broker {
	opts.setDefaults()
	b := &Broker{
		opts:      opts,
		log:       opts.Logger,
		index:     topic.NewIndex[*session, subOptions](),
		sessions:  make(map[string]*session),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		shareRR:   make(map[string]*atomic.Uint32),
		start:     time.Now(),
		done:      make(chan struct{}),
	}
	b.ret.init()
	b.guard = newGuard(&b.opts.Limits, &b.stats)
	b.clock.Store(time.Now().UnixNano())
	b.clockFn = b.now
	b.wg.Go(b.clockLoop)
	b.poller = newPoller(b)
	b.matchPool.New = func() any { s := make([]subEntry, 0, 64); return &s }
	if opts.Store != nil {
		b.journal = newJournal(opts.Store, opts.Sync, b.log, &b.stats)
		b.load()
	}
	if opts.SysInterval > 0 {
		b.wg.Go(b.sysLoop)
	}
	return b
}

// Serve accepts connections on ln until ctx ends, ln fails or the broker is
// closed, and serves each on its own goroutine.
func (b *Broker) Serve(ctx context.Context, ln net.Listener) error {
	return b.ServeListener(ctx, ln, ConnInfo{})
}

// ServeListener is Serve for a named listener (see ConnInfo); a TLS
// listener's connections are *tls.Conn, whose client certificates the
// Authenticator sees.
func (b *Broker) ServeListener(ctx context.Context, ln net.Listener, info ConnInfo) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("broker: closed")
	}
	b.listeners[ln] = struct{}{}
	b.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer func() {
		b.mu.Lock()
		delete(b.listeners, ln)
		b.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || b.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if acceptRetryable(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				b.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-b.done:
				case <-ctx.Done():
				}
				continue
			}
			return fmt.Errorf("broker: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		b.serveConn(nc, info)
	}
}

// acceptRetryable reports whether an Accept error is a passing condition
// that a later Accept may not meet: out of file descriptors or memory (the
// broker must go on once connections have closed), a connection reset
// before it was accepted, a timeout.
func acceptRetryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ServeConn serves one established network connection (TCP, TLS or a
// WebSocket adapted to net.Conn) on a new goroutine and returns at once.
func (b *Broker) ServeConn(nc net.Conn) { b.serveConn(nc, ConnInfo{}) }

func (b *Broker) serveConn(nc net.Conn, info ConnInfo) {
	c := newConn(b, nc, info)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		nc.Close()
		return
	}
	b.conns[c] = struct{}{}
	b.mu.Unlock()
	b.wg.Go(c.serve)
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// background runs f on a new goroutine that Close waits for, and reports
// whether it did: once Close has waited for the readers, nothing new starts.
func (b *Broker) background(f func()) bool {
	b.bgMu.Lock()
	defer b.bgMu.Unlock()
	if b.bgDone {
		return false
	}
	b.bg.Go(f)
	return true
}

// tracked returns f wrapped for a timer: it runs as background work that
// Close waits for, or not at all once Close has waited for the readers.
func (b *Broker) tracked(f func()) func() {
	return func() {
		b.bgMu.Lock()
		if b.bgDone {
			b.bgMu.Unlock()
			return
		}
		b.bg.Add(1)
		b.bgMu.Unlock()
		defer b.bg.Done()
		f()
	}
}

// Close stops the listeners, disconnects every client with Server shutting
// down [MQTT-4.13], and waits for every goroutine it started to end: the
// connections' readers and writers, in-process deliveries, timers' work.
// After Close the broker writes nothing more to its store.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	for ln := range b.listeners {
		ln.Close()
	}
	type pair struct {
		c *conn
		s *session
	}
	conns := make([]pair, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, pair{c, c.s})
	}
	b.mu.Unlock()
	b.poller.close() // parked connections get their reader goroutines back
	for _, p := range conns {
		p.c.shutdown(p.s, mqtt.ServerShuttingDown)
	}
	b.wg.Wait()
	// The readers are gone; a writer may still be blocked on a client that
	// does not read.
	b.mu.Lock()
	open := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		open = append(open, c)
	}
	b.mu.Unlock()
	for _, c := range open {
		c.closeSocket()
	}
	b.bgMu.Lock()
	b.bgDone = true
	b.bgMu.Unlock()
	b.bg.Wait()
	if b.journal != nil {
		b.journal.close() // commits what the connections wrote last
	}
	return nil
}

// durableGen returns the journal's highest committed generation, or the
// highest possible one when there is no store (nothing waits).
func (b *Broker) durableGen() uint64 {
	if b.journal == nil {
		return math.MaxUint64
	}
	return b.journal.durable()
}

// Stats returns a snapshot of the broker's counters.
func (b *Broker) Stats() StatsSnapshot { return b.stats.snapshot(b) }

// newClientID returns a server-assigned client identifier [MQTT-3.1.3-6].
func newClientID() string {
	var buf [12]byte
	rand.Read(buf[:])
	return "citymesh-" + hex.EncodeToString(buf[:])
}

// shareCounter returns the round-robin counter of a shared subscription.
func (b *Broker) shareCounter(filter string) *atomic.Uint32 {
	b.shareMu.Lock()
	defer b.shareMu.Unlock()
	c := b.shareRR[filter]
	if c == nil {
		c = new(atomic.Uint32)
		b.shareRR[filter] = c
	}
	return c
}

// routed is the outcome of publishing a message.
type routed struct {
	matched int    // sessions the message was offered to
	queued  int    // sessions that took it
	full    int    // sessions that refused it because their queue is full
	ticket  uint64 // journal generation that makes every store write durable; 0 for none

	pending *[]*conn // the publishing reader's pending writers (see conn.wakeVia), or nil
}

// add records one session's answer.
func (r *routed) add(ticket uint64, res enqueueResult) {
	r.matched++
	switch res {
	case enqueued:
		r.queued++
	case refusedFull:
		r.full++
	}
	r.ticket = max(r.ticket, ticket)
}

// publish routes msg to every matching subscription and updates the retained
// store. It is safe to call from any goroutine.
func (b *Broker) publish(msg *Message) routed { return b.publishVia(msg, nil) }

// publishVia is publish called by a reader goroutine with its list of
// pending writers: the subscribers' writers are run by that reader.
func (b *Broker) publishVia(msg *Message, pending *[]*conn) routed {
	r := routed{pending: pending}
	if msg.Retain {
		b.ret.set(msg) // an empty payload deletes [MQTT-3.3.1-6][MQTT-3.3.1-7]
		r.ticket = b.persistRetained(msg)
	}
	sp := b.matchPool.Get().(*[]subEntry)
	matches := b.index.Match(msg.Topic, (*sp)[:0])
	b.route(msg, matches, &r)
	clear(matches)
	*sp = matches[:0]
	b.matchPool.Put(sp)
	return r
}

// route delivers msg to the sessions in matches: one delivery per session for
// its non-shared subscriptions, with the highest granted QoS and every
// subscription identifier [MQTT-3.3.4-2][MQTT-3.3.4-3], and one delivery per
// shared subscription group to one of its members (MQTT 5.0 §4.8.2).
//
// In a mesh, a group's members may be on several nodes: a link whose peer
// has members is a member too. The node a message enters the mesh at picks
// the member; when it picks a link, the message crosses it (once, together
// with whatever else the peer wants of it) naming the groups the peer is to
// serve, and a message that came over a link goes to those groups only.
func (b *Broker) route(msg *Message, matches []subEntry, r *routed) {
	var pend *linkDeliveries // deliveries to links, when groups are involved
	for i := range matches {
		if matches[i].Group != "" {
			pend = new(linkDeliveries)
			break
		}
	}
	restricted := msg.Via != nil && msg.Via.Kind.IsNode()
	for i := range matches {
		e := &matches[i]
		if e.Sub == nil {
			continue // already merged into an earlier entry, or a handled group
		}
		if e.Group != "" {
			if restricted && !slices.Contains(msg.Shares, e.Filter) {
				clearGroup(matches, i) // the sending node chose a member elsewhere
				continue
			}
			b.routeShared(msg, matches, i, r, pend)
			continue
		}
		if e.Value.noLocal && msg.Origin != "" && e.Sub.id == msg.Origin {
			continue // [MQTT-3.8.3-3]
		}
		l := e.Sub.link.Load()
		if l != nil && !b.canForward(msg, l) {
			continue // the mesh's forwarding rules
		}
		d := delivery{msg: msg, qos: min(msg.QoS, e.Value.qos), subIDs: e.Value.subIDs}
		d.retain = msg.Retain && e.Value.retainAsPublished // [MQTT-3.3.1-12][MQTT-3.3.1-13]
		// Merge later entries of the same session (overlapping subscriptions).
		for j := i + 1; j < len(matches); j++ {
			f := &matches[j]
			if f.Sub != e.Sub || f.Group != "" {
				continue
			}
			if !(f.Value.noLocal && msg.Origin != "" && f.Sub.id == msg.Origin) {
				d.qos = max(d.qos, min(msg.QoS, f.Value.qos))
				d.retain = d.retain || (msg.Retain && f.Value.retainAsPublished)
				if len(f.Value.subIDs) > 0 {
					d.subIDs = append(append([]uint32(nil), d.subIDs...), f.Value.subIDs...)
				}
			}
			f.Sub = nil
		}
		if l != nil && pend != nil {
			pend.add(e.Sub, d, "") // one delivery per link, with its groups
			continue
		}
		r.add(e.Sub.enqueueVia(d, r.pending))
	}
	if pend != nil {
		pend.flush(r)
	}
}

// linkDeliveries collects the deliveries of one message to links while it is
// routed, so that a link gets it once, naming the shared groups it is to
// serve.
type linkDeliveries struct {
	list []linkDelivery
}

type linkDelivery struct {
	s      *session
	d      delivery
	shares []string
}

// add merges delivery d to link session s, and the shared subscription
// share it was picked for (if not "").
func (p *linkDeliveries) add(s *session, d delivery, share string) {
	for i := range p.list {
		if x := &p.list[i]; x.s == s {
			x.d.qos = max(x.d.qos, d.qos)
			x.d.retain = x.d.retain || d.retain
			if share != "" {
				x.shares = append(x.shares, share)
			}
			return
		}
	}
	x := linkDelivery{s: s, d: d}
	x.d.share = ""
	if share != "" {
		x.shares = []string{share}
	}
	p.list = append(p.list, x)
}

// flush enqueues the collected deliveries.
func (p *linkDeliveries) flush(r *routed) {
	for _, x := range p.list {
		x.d.share = strings.Join(x.shares, shareSep)
		r.add(x.s.enqueue(x.d))
	}
}

// clearGroup clears the entries of the shared group of matches[i].
func clearGroup(matches []subEntry, i int) {
	filter := matches[i].Filter
	for j := i; j < len(matches); j++ {
		if matches[j].Filter == filter {
			matches[j].Sub = nil
		}
	}
}

// routeShared picks one member of the shared group of matches[i], in round
// robin order preferring connected members (section 4.8.2 leaves the choice to
// the server), and delivers to it; a member that is a link goes to pend. It
// clears the group's entries so route does not visit them again.
func (b *Broker) routeShared(msg *Message, matches []subEntry, i int, r *routed, pend *linkDeliveries) {
	filter := matches[i].Filter
	var buf [16]int
	idx := buf[:0]
	for j := i; j < len(matches); j++ {
		if matches[j].Sub != nil && matches[j].Filter == filter {
			if l := matches[j].Sub.link.Load(); l != nil && !b.canForward(msg, l) {
				matches[j].Sub = nil // a link the message may not take
				continue
			}
			idx = append(idx, j)
		}
	}
	if len(idx) == 0 {
		r.add(0, refusedOther)
		return
	}
	e := matches[b.pickShared(matches, idx, filter)]
	for _, j := range idx {
		matches[j].Sub = nil
	}
	d := sharedDelivery(msg, e.Value, filter)
	if e.Sub.link.Load() != nil {
		pend.add(e.Sub, d, filter)
		return
	}
	r.add(e.Sub.enqueueVia(d, r.pending))
}

// pickShared returns the index into matches of the member of shared
// subscription filter to deliver to, among the entries at idx: the next in
// round robin order whose client is connected, or the next if none is.
func (b *Broker) pickShared(matches []subEntry, idx []int, filter string) int {
	start := int(b.shareCounter(filter).Add(1) % uint32(len(idx)))
	// Connected members on this node first, then the group's members
	// beyond a mesh link (one message, one member mesh-wide), then anyone.
	for _, wantLink := range []bool{false, true} {
		for k := range idx {
			if j := idx[(start+k)%len(idx)]; (matches[j].Sub.link.Load() != nil) == wantLink && matches[j].Sub.online() {
				return j
			}
		}
	}
	return idx[start]
}

// sharedDelivery builds the delivery of msg through shared subscription
// filter with options o.
func sharedDelivery(msg *Message, o subOptions, filter string) delivery {
	d := delivery{msg: msg, qos: min(msg.QoS, o.qos), subIDs: o.subIDs, share: filter}
	d.retain = msg.Retain && o.retainAsPublished
	return d
}

// reroute hands a delivery that was bound for a departing member of a shared
// group to another member of that group, preferring connected ones. It
// reports whether one took it.
func (b *Broker) reroute(d delivery, leaving *session) bool {
	sp := b.matchPool.Get().(*[]subEntry)
	matches := b.index.Match(d.msg.Topic, (*sp)[:0])
	defer func() {
		clear(matches)
		*sp = matches[:0]
		b.matchPool.Put(sp)
	}()
	var members []int
	for i := range matches {
		if matches[i].Filter == d.share && matches[i].Sub != leaving {
			if l := matches[i].Sub.link.Load(); l != nil && !b.canForward(d.msg, l) {
				continue
			}
			members = append(members, i)
		}
	}
	if len(members) == 0 {
		return false
	}
	e := matches[b.pickShared(matches, members, d.share)]
	_, res := e.Sub.enqueue(sharedDelivery(d.msg, e.Value, d.share))
	return res == enqueued
}
