package broker

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
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
//
// A durable session (persist set: the broker has a store and the session an
// expiry interval) writes every QoS 1 and 2 delivery to the store as a queue
// entry before the delivery may be sent, and keeps in memory only a window of
// its queue: while its client is offline, or when the window is full, new
// entries go to the store only (the session is spilled) and are read back a
// page at a time as the client takes them. Broker memory therefore does not
// grow with the number of queued messages.
type session struct {
	b  *Broker
	id string

	mu       sync.Mutex
	out      outlet                // nil while no client is attached
	subs     map[string]subOptions // filter (as subscribed) → options
	expiry   uint32                // Session Expiry Interval, seconds
	queue    queue                 // deliveries not yet sent
	inflight map[uint16]delivery   // sent QoS 1 and 2 deliveries awaiting acknowledgement, by packet id
	resend   []uint16              // inflight packet ids to send again after a takeover, in order
	seq      uint64                // sequence number of the newest QoS 1 or 2 delivery
	inQoS2   map[uint16]struct{}   // inbound QoS 2 packet ids received but not yet released
	linkSeq  uint64                // a mesh link's session: the peer's sequence number of the last QoS 1 message taken in
	timer    *time.Timer           // session expiry timer while offline
	will     *pendingWill          // a will waiting for its delay while offline
	ended    bool
	stored   bool      // a record of the session is in the broker's store
	offline  time.Time // when the client left; zero while one is attached

	// Durable sessions only.
	persist      bool
	storedN      int    // queue entries in the store
	storedBytes  int    // their encoded size
	spilled      bool   // entries from diskNext on are in the store only
	diskNext     uint64 // the lowest sequence number not read from the store
	paging       bool   // a page is being read
	lastTicket   uint64 // journal generation of the newest entry written
	sentUpTo     uint64 // highest sequence number sent since the broker started
	dupBudget    int    // after a restart: entries read back that may have been sent before it
	restoredUpTo uint64 // after a restart: the highest sequence number restored, any of which may have been sent
	wreg         waitReg

	// Mesh links only: the link whose session this is (set once, before
	// the session is routed to, and read without the mutex) and its role.
	link     atomic.Pointer[Link]
	linkKind Kind
}

// Durable sessions keep at most pageMessages queued deliveries (or
// pageBytes of payload) in memory beyond their inflight window; the rest
// waits in the store. A page is small so that many sessions returning at
// once (a mesh link or a fleet of gateways back after an outage) do not load
// their whole backlogs together; reading a page costs one seek.
//
// A mesh link's session carries all the traffic that crosses the link, so
// its page is larger (linkPageMessages, linkPageBytes): with a page of 128 a
// busy link spills as soon as its peer falls a little behind and then reads
// every message back from the store. There are few links, so their pages
// together stay small.
const (
	pageMessages     = 128
	pageBytes        = 256 << 10
	linkPageMessages = 8192
	linkPageBytes    = 8 << 20
)

// page returns how many queued deliveries, and how many bytes of them, s
// keeps in memory beyond its inflight window.
func (s *session) page() (n, bytes int) {
	if s.link.Load() != nil {
		return linkPageMessages, linkPageBytes
	}
	return pageMessages, pageBytes
}

// pidOf derives the packet identifier of the delivery with sequence number
// seq: 1 to 65535 in turn [MQTT-2.2.1-3]. Deriving it keeps an entry's packet
// identifier across a restart [MQTT-4.4.0-1]; take holds a delivery back while
// its identifier is still in use by an older one.
func pidOf(seq uint64) uint16 { return uint16((seq-1)%65535 + 1) }

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

// Reasons a session drops a message, counted broker-wide and, for a mesh
// link's session, on the link.
const (
	dropFull = iota
	dropExpired
	dropTooLarge
)

// countDrop counts a message the session dropped.
func (s *session) countDrop(reason int) {
	st := &s.b.stats
	l := s.link.Load()
	switch reason {
	case dropFull:
		st.dropQueueFull.Add(1)
		if l != nil {
			l.dropped.full.Add(1)
		}
	case dropExpired:
		st.dropExpired.Add(1)
		if l != nil {
			l.dropped.expired.Add(1)
		}
	case dropTooLarge:
		st.dropTooLarge.Add(1)
		if l != nil {
			l.dropped.tooLarge.Add(1)
		}
	}
}

// enqueueResult says what became of a delivery offered to a session.
type enqueueResult int

const (
	enqueued     enqueueResult = iota
	refusedFull                // the session's queue is at its limit
	refusedOther               // the session ended, is offline for QoS 0, or the store refused it
)

// enqueue queues d for sending and wakes the outlet. For a durable session a
// QoS 1 or 2 delivery is written to the store first; ticket is the journal
// generation that makes it durable (0 when nothing was written). A full
// queue refuses the new message (the documented policy) and counts it.
func (s *session) enqueue(d delivery) (ticket uint64, res enqueueResult) { return s.enqueueVia(d, nil) }

// wakeOutLocked wakes the session's outlet: through pending, the list of the
// calling reader goroutine, when it is not nil (see conn.wakeVia). Called
// with s.mu held and an outlet attached.
func (s *session) wakeOutLocked(pending *[]*conn) {
	if c, ok := s.out.(*conn); ok && pending != nil {
		c.wakeVia(pending)
		return
	}
	s.out.wake()
}

// enqueueVia is enqueue called by a reader goroutine with its list of
// pending writers (nil for other callers).
func (s *session) enqueueVia(d delivery, pending *[]*conn) (ticket uint64, res enqueueResult) {
	b := s.b
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return 0, refusedOther
	}
	if s.out == nil && d.qos == 0 && !b.opts.QueueQoS0Offline {
		b.stats.dropOffline.Add(1)
		return 0, refusedOther
	}
	if s.persist && d.qos > 0 {
		return s.enqueueDurableLocked(d, pending)
	}
	if s.queue.n >= b.opts.MaxQueuedMessages || s.queue.bytes+len(d.msg.Payload) > b.opts.MaxQueuedBytes {
		s.countDrop(dropFull)
		return 0, refusedFull
	}
	if d.qos > 0 {
		s.seq++
		d.seq = s.seq
	}
	s.queue.push(d, b.clock.Load())
	if s.out != nil {
		s.wakeOutLocked(pending)
	}
	return 0, enqueued
}

// enqueueDurableLocked writes a QoS 1 or 2 delivery to the store and keeps it
// in memory too while the session's window has room. The delivery is sent
// only once its write is durable: the journal wakes the session then.
func (s *session) enqueueDurableLocked(d delivery, pending *[]*conn) (uint64, enqueueResult) {
	b := s.b
	maxN, maxBytes := b.opts.MaxStoredMessages, b.opts.MaxStoredBytes
	if s.link.Load() != nil {
		maxN, maxBytes = b.opts.MaxLinkStoredMessages, b.opts.MaxLinkStoredBytes
	}
	if s.storedN >= maxN || s.storedBytes+len(d.msg.Payload) > maxBytes {
		s.countDrop(dropFull)
		return 0, refusedFull
	}
	seq := s.seq + 1
	if d.enqueued == 0 {
		d.enqueued = b.clock.Load() // stored with it: a link's lag survives paging and restarts
	}
	var size int
	put := func(bt *store.Batch) error {
		e := entryOf(&d, seq)
		before := bt.Size()
		err := bt.PutEntry(s.id, &e)
		size = bt.Size() - before
		return err
	}
	pn, pb := s.page()
	inMemory := s.out != nil && !s.spilled && s.queue.n < pn && s.queue.bytes < pb
	var gen uint64
	var pos int
	var err error
	if inMemory && d.qos == 1 {
		// It goes out at once: its acknowledgement may come before the
		// entry's batch is sealed, and then cancels it (forgetLocked).
		gen, pos, err = b.journal.writeAwaited(put)
		pos++
	} else {
		gen, err = b.journal.write(put)
	}
	if err != nil {
		b.stats.storeErrors.Add(1)
		b.log.Error("store: queue entry refused", "client", s.id, "topic", d.msg.Topic, "err", err)
		return 0, refusedOther
	}
	s.seq = seq
	d.seq, d.ticket, d.size = seq, gen, size
	if pos <= math.MaxInt32 {
		d.op = int32(pos)
	}
	s.storedN++
	s.storedBytes += size
	s.lastTicket = gen
	if inMemory {
		s.queue.push(d, b.clock.Load())
	} else if !s.spilled {
		s.spilled = true
		s.diskNext = seq
	}
	if s.out != nil && (d.qos == 1 || !b.journal.await(s, gen)) {
		s.wakeOutLocked(pending) // QoS 1 goes at once; QoS 2 once durable (see take)
	}
	return gen, enqueued
}

// entryOf returns the store entry of delivery d with sequence number seq.
func entryOf(d *delivery, seq uint64) store.Entry {
	m := d.msg
	return store.Entry{Seq: seq, Retain: d.retain, SubIDs: d.subIDs, Share: d.share, Released: d.released,
		Message: store.Message{Topic: m.Topic, Payload: m.Payload, QoS: d.qos, Props: m.Props, Expires: m.Expires},
		Queued:  unixTime(d.enqueued)}
}

// unixTime returns the time of Unix nanoseconds ns, the zero time for 0.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// unixNano returns t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// deliveryOf returns the delivery of an entry read from the store.
func deliveryOf(e *store.Entry) delivery {
	if e.Released {
		// Only the PUBREL of a QoS 2 exchange is left.
		return delivery{msg: releasedMessage, qos: 2, share: e.Share, seq: e.Seq, size: e.Size, released: true, sent: true,
			enqueued: unixNano(e.Queued)}
	}
	m := &Message{Topic: e.Message.Topic, Payload: e.Message.Payload, QoS: e.Message.QoS, Props: e.Message.Props, Expires: e.Message.Expires}
	return delivery{msg: m, qos: e.Message.QoS, retain: e.Retain, subIDs: e.SubIDs, share: e.Share,
		seq: e.Seq, size: e.Size, enqueued: unixNano(e.Queued)}
}

// forgetLocked removes a delivery's entry from the store, if it has one,
// once the delivery is complete or dropped. Deletions need not be synced: one
// lost in a crash means a redelivery, which QoS 1 allows and QoS 2 handles
// by its packet identifier.
//
// When the entry's own write is still in the journal's open batch (a QoS 1
// delivery acknowledged within a group commit of being queued, as a busy
// mesh link's are), the write is cancelled instead and neither it nor a
// deletion reaches the store. That keeps every promise the entry made:
//
//   - The entry stood for the receiver's acknowledgement not yet received;
//     it has been received, so nothing is left for the entry to keep. For a
//     mesh link the receiver is the peer node, which acknowledges a QoS 1
//     message only once it has taken responsibility for it: it has written
//     it to the queues of its durable sessions and links and their commit is
//     durable (conn.handlePublish waits for it before PUBACK), or it reached
//     only sessions that a crash of the peer ends anyway, as QoS 1 allows.
//   - The publisher's PUBACK still waits for the commit of the entry's
//     generation (d.ticket; conn.sendAck), now possibly without the entry in
//     it. When it leaves, the message is safe on this node's disk or, if the
//     entry was cancelled, at the receiver, which acknowledged it before
//     that commit. A crash of this node before the commit loses the entry
//     and the PUBACK both: the publisher sends again, and the receiver may
//     get the message twice, as QoS 1 allows (it would without the cancel).
//
// A QoS 2 entry is never cancelled: it is durable before it is sent (take),
// and its released form replaces it in the store (releaseLocked).
func (s *session) forgetLocked(d *delivery) {
	if d.size == 0 || s.b.journal == nil {
		return
	}
	if d.op == 0 || !s.b.journal.cancel(d.ticket, int(d.op-1)) {
		s.b.journal.write(func(bt *store.Batch) error { bt.DeleteEntry(s.id, d.seq); return nil })
	}
	s.storedN--
	s.storedBytes -= d.size
	d.size, d.op = 0, 0
}

// durable implements waiter: writes the session waited for are committed,
// so its deliveries may go out.
func (s *session) durable() {
	s.mu.Lock()
	if s.out != nil {
		s.out.wake()
	}
	s.mu.Unlock()
}

// reg implements waiter.
func (s *session) reg() *waitReg { return &s.wreg }

// take moves up to n deliveries that may be sent now from the queue into out:
// first the inflight deliveries to resend after a takeover, then queued ones
// while the inflight window has room. A QoS 2 delivery whose store write is
// not yet durable holds back those behind it. Expired messages are dropped
// [MQTT-3.3.2-5]; messages larger than the client's Maximum Packet Size are
// discarded as if delivered [MQTT-3.1.2-25]. Called with s.mu held.
func (s *session) take(out []delivery, n, window int, maxSize uint32, version byte, now time.Time) []delivery {
	durable := s.b.durableGen()
	for len(s.resend) > 0 && len(out) < n {
		id := s.resend[0]
		d, ok := s.inflight[id]
		if ok && d.ticket > durable && s.b.journal.await(s, d.ticket) {
			return out // the journal wakes the session when it is durable
		}
		s.resend = s.resend[1:]
		if ok {
			out = append(out, d)
		}
	}
	if len(s.resend) > 0 {
		return out
	}
	s.resend = nil
	for s.queue.n > 0 && len(out) < n {
		d := s.queue.front()
		if d.ticket > durable && d.qos == 2 && s.b.journal.await(s, d.ticket) {
			// A QoS 2 message goes out only once it is in the store: a
			// receiver holding one the broker could still forget would get
			// it again after a crash. A QoS 1 message may go at once: if a
			// crash loses it, its publisher, still without PUBACK, sends it
			// again, and QoS 1 allows the duplicate. The journal wakes the
			// session when it is durable.
			break
		}
		if d.qos > 0 {
			if len(s.inflight) >= window {
				break // [MQTT-3.3.4-7] the client's Receive Maximum
			}
			if _, used := s.inflight[pidOf(d.seq)]; used {
				break // 65535 deliveries later, an older one still holds the identifier
			}
		}
		dd := s.queue.pop()
		if !dd.released {
			if dd.msg.expired(now) {
				s.countDrop(dropExpired)
				s.forgetLocked(&dd)
				continue
			}
			if maxSize > 0 && uint32(publishSizeEstimate(&dd, version)) > maxSize {
				s.countDrop(dropTooLarge)
				s.forgetLocked(&dd)
				continue
			}
		}
		if dd.qos > 0 {
			if s.inflight == nil {
				s.inflight = make(map[uint16]delivery)
			}
			dd.packetID = pidOf(dd.seq)
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
		if d.seq > s.sentUpTo {
			s.sentUpTo = d.seq
		}
	}
}

// acknowledge handles PUBACK, PUBREC and PUBCOMP for an outbound delivery. It
// reports whether the packet identifier was known and, for PUBREC, whether a
// PUBREL must be sent; for a durable session the PUBREL must wait for
// journal generation ticket, which records that the PUBLISH is never to be
// sent again. pending is the calling reader's list of pending writers, or
// nil.
func (s *session) acknowledge(kind mqtt.PacketType, id uint16, code mqtt.ReasonCode, pending *[]*conn) (known, sendRel bool, ticket uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.inflight[id]
	if !ok {
		return false, false, 0
	}
	switch kind {
	case mqtt.PUBACK:
		if d.qos != 1 {
			return false, false, 0
		}
		delete(s.inflight, id)
		s.forgetLocked(&d)
	case mqtt.PUBREC:
		if d.qos != 2 {
			return false, false, 0
		}
		if d.released {
			// PUBREC again (the client got the PUBLISH twice, across a
			// reconnect): PUBREL again, once the release is durable.
			return true, true, d.ticket
		}
		if code.IsError() {
			delete(s.inflight, id) // no PUBREL after an error PUBREC [MQTT-4.3.3-4]
			s.forgetLocked(&d)
			break
		}
		d.released = true // the PUBLISH is never sent again [MQTT-4.3.3-6]
		if d.size > 0 {
			ticket = s.releaseLocked(&d)
		}
		d.msg = releasedMessage
		s.inflight[id] = d
		sendRel = true
	case mqtt.PUBCOMP:
		if !d.released {
			return false, false, 0
		}
		delete(s.inflight, id)
		s.forgetLocked(&d)
	}
	if s.out != nil && s.queue.n > 0 {
		s.wakeOutLocked(pending) // the window has room again
	}
	return true, sendRel, ticket
}

// releasedMessage stands in for the message of a QoS 2 delivery whose PUBREC
// arrived: only its PUBREL is left to send, so the payload can go.
var releasedMessage = &Message{}

// releaseLocked replaces a stored QoS 2 entry by its released form and
// returns the journal generation of the write.
func (s *session) releaseLocked(d *delivery) uint64 {
	size := 0
	gen, err := s.b.journal.write(func(bt *store.Batch) error {
		before := bt.Size()
		err := bt.PutEntry(s.id, &store.Entry{Seq: d.seq, Released: true, Share: d.share, Queued: unixTime(d.enqueued)})
		size = bt.Size() - before
		return err
	})
	if err != nil {
		s.b.log.Error("store: release refused", "client", s.id, "err", err)
		return gen
	}
	s.storedBytes += size - d.size
	d.size = size
	d.ticket, d.op = gen, 0
	return gen
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
			s.forgetLocked(&d)
			moved = append(moved, d)
			delete(s.inflight, id)
		}
	}
	slices.SortFunc(moved, func(a, b delivery) int { return cmp.Compare(a.seq, b.seq) })
	if s.queue.n > 0 {
		var keep queue
		s.queue.drain(func(d delivery) {
			if d.share != "" && !d.released {
				s.forgetLocked(&d)
				moved = append(moved, d)
			} else {
				keep.push(d, 0)
			}
		})
		s.queue = keep
	}
	return moved
}

// dropCachedLocked frees the memory a durable session holds for entries that
// are in the store as well, once its client has gone: the queue and the
// inflight window are read back from the store when a client attaches again.
// Deliveries that are not stored (QoS 0, kept only when QueueQoS0Offline is
// set) stay in memory. Called with s.mu held.
func (s *session) dropCachedLocked() {
	if !s.persist {
		return
	}
	floor := s.seq + 1
	if s.spilled {
		floor = s.diskNext
	}
	for _, d := range s.inflight {
		if d.size > 0 {
			floor = min(floor, d.seq)
		}
	}
	var keep queue
	s.queue.drain(func(d delivery) {
		if d.size > 0 {
			floor = min(floor, d.seq)
		} else if d.qos > 0 || s.b.opts.QueueQoS0Offline {
			keep.push(d, 0)
		}
	})
	s.queue = keep
	for id, d := range s.inflight {
		if d.size > 0 {
			delete(s.inflight, id)
		}
	}
	s.resend = nil
	s.spilled = s.storedN > 0
	s.diskNext = floor
}

// pageWanted reports whether the session should read more of its queue from
// the store. Called with s.mu held.
func (s *session) pageWanted() bool {
	pn, _ := s.page()
	return s.spilled && !s.paging && !s.ended && s.out != nil && s.queue.n < pn/2
}

// pageIn reads the next page of a spilled session's queue from the store
// into memory. It reports whether the caller should take from the queue and
// page again: it added something, or entries were committed while it read.
// Entries not yet committed are read on a later call: the journal wakes the
// session when they are. It must be called without s.mu held.
func (s *session) pageIn() bool {
	b := s.b
	s.mu.Lock()
	if !s.pageWanted() {
		s.mu.Unlock()
		return false
	}
	s.paging = true
	pn, _ := s.page()
	from, want, last := s.diskNext, pn-s.queue.n, s.lastTicket
	s.mu.Unlock()
	// Whether every entry written so far was committed before the read:
	// if so, the read sees all of them.
	committed := b.journal.isDurable(last)

	entries, next, err := b.opts.Store.Queue(nil, s.id, from, want)
	if err != nil {
		b.stats.storeErrors.Add(1)
		b.log.Error("store: reading queue", "client", s.id, "err", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.paging = false
	if s.ended || s.out == nil || s.diskNext != from {
		return false // the client left meanwhile; it reads again when it returns
	}
	now := b.clock.Load()
	for i := range entries {
		d := deliveryOf(&entries[i])
		// It may have been sent before [MQTT-3.3.1-1]: in this run, or, if
		// it was restored at start, before the restart. An entry made since
		// the start was never sent before it and must not say so: a link's
		// peer drops a DUP message whose sequence number it has taken in
		// already, and after a restart a link's numbers go on from the
		// clock, which may have gone back (a gateway without a real-time
		// clock that boots offline).
		d.sent = d.seq <= s.sentUpTo || (s.dupBudget > 0 && d.seq <= s.restoredUpTo)
		if s.dupBudget > 0 {
			s.dupBudget--
		}
		s.queue.push(d, now)
	}
	s.diskNext = max(next, from)
	switch {
	case s.diskNext > s.seq:
		s.spilled = false // caught up: new entries stay in memory again
	case len(entries) > 0:
	case committed && s.lastTicket == last:
		// Everything written was committed before the read and nothing
		// is left from diskNext on: the entries there were removed.
		s.spilled = false
		s.diskNext = s.seq + 1
	case !committed && b.journal.await(s, last):
		// The rest is still being committed; the journal wakes the
		// session when it is.
	default:
		// Committed (or written anew) while the read ran: read again. No
		// wake-up would come for it.
		return true
	}
	return len(entries) > 0
}
