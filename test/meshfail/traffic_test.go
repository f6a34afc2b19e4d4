package meshfail_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// quiet discards the clients' debug logs.
var quiet = slog.New(slog.DiscardHandler)

// sessionExpiry is the Session Expiry Interval of the persistent
// subscribers: a day, far longer than any test.
const sessionExpiry = 24 * 60 * 60

// publisher publishes numbered QoS 1 messages at a steady rate over one
// MQTT 5 connection: payload "ID:SEQ" on one topic, SEQ from 1. It records
// which were acknowledged (PUBACK with a success code). It never reconnects:
// the tests keep their publishers' nodes up, so a lost connection fails the
// test.
type publisher struct {
	id    string
	topic string
	rate  int
	c     *client.Client

	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	sent    int    // messages handed to the client: 1..sent
	acked   []bool // by sequence number
	nAcked  int
	nFailed int
	errs    map[string]int // failed outcomes by error
	lost    error          // why the connection ended while publishing
}

// startPublisher connects publisher id to addr and starts publishing to
// topic at rate messages per second, until stopPublishing.
func startPublisher(ctx context.Context, t *testing.T, id, addr, topic string, rate int) *publisher {
	t.Helper()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, client.Options{Addr: addr, ClientID: id, Version: mqtt.V5, CleanStart: true, Logger: quiet})
	if err != nil {
		t.Fatalf("publisher %s: %v", id, err)
	}
	p := &publisher{id: id, topic: topic, rate: rate, c: c, stop: make(chan struct{}), done: make(chan struct{}),
		acked: []bool{false}, errs: make(map[string]int)}
	t.Cleanup(func() {
		p.halt()
		c.Close()
	})
	go p.run(ctx)
	return p
}

// run publishes until stopped, the connection ends or ctx ends. Message seq
// is due at start + seq/rate; a publisher that fell behind (its window was
// full) catches up at once.
func (p *publisher) run(ctx context.Context) {
	defer close(p.done)
	interval := time.Second / time.Duration(p.rate)
	start := time.Now()
	for seq := 1; ; seq++ {
		if wait := time.Until(start.Add(time.Duration(seq) * interval)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-p.c.Done():
			}
		}
		select {
		case <-p.stop:
			return
		case <-ctx.Done():
			return
		case <-p.c.Done():
			p.mu.Lock()
			p.lost = p.c.Err()
			p.mu.Unlock()
			return
		default:
		}
		p.mu.Lock()
		p.sent = seq
		p.acked = append(p.acked, false)
		p.mu.Unlock()
		p.c.PublishAsync(&mqtt.Publish{Topic: p.topic, QoS: 1, Payload: []byte(p.id + ":" + strconv.Itoa(seq))}, func(err error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				p.nFailed++
				p.errs[err.Error()]++
				return
			}
			p.acked[seq] = true
			p.nAcked++
		})
	}
}

// halt stops publishing and waits for the publishing goroutine.
func (p *publisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// pending returns how many published messages have no outcome yet.
func (p *publisher) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent - p.nAcked - p.nFailed
}

// stopAndSettle stops publishing and waits until every message published
// has its acknowledgement; it fails the test if the connection was lost or
// a message was refused.
func (p *publisher) stopAndSettle(ctx context.Context, t *testing.T) {
	t.Helper()
	p.halt()
	waitFor(ctx, t, 30*time.Second, "publisher "+p.id+"'s acknowledgements", func() (bool, string) {
		n := p.pending()
		return n == 0, fmt.Sprintf("%d unacknowledged", n)
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost != nil {
		t.Errorf("PUBLISHER %s: connection lost while publishing: %v", p.id, p.lost)
	}
	if p.nFailed > 0 {
		t.Errorf("PUBLISHER %s: %d of %d messages not acknowledged: %v", p.id, p.nFailed, p.sent, p.errs)
	}
}

// ackedSnapshot returns, by sequence number, which messages were
// acknowledged, and how many were published.
func (p *publisher) ackedSnapshot() (acked []bool, sent int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked), p.sent
}

// ackedCount returns how many messages were acknowledged.
func (p *publisher) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nAcked
}

// arrival is one message as a subscriber received it.
type arrival struct {
	seq int
	at  time.Time
	dup bool // the PUBLISH had DUP set
}

// subscriber is an MQTT 5 client with a persistent session and one QoS 1
// subscription, made on its first connection only. It records every message
// of the tests' publishers, by publisher, in the order of arrival (before
// acknowledging it), and reconnects, resuming its session, whenever its
// connection ends.
type subscriber struct {
	id, addr, filter string

	ready chan struct{} // closed once subscribed
	done  chan struct{}

	mu          sync.Mutex
	got         map[string][]arrival
	foreign     []string // payloads that are not "ID:SEQ"
	conns       int
	sessionLost int // reconnects whose CONNACK had Session Present 0
	lastErr     error
}

// startSubscriber starts subscriber id at addr and waits until it is
// subscribed to filter. It runs until the test ends.
func startSubscriber(ctx context.Context, t *testing.T, id, addr, filter string) *subscriber {
	t.Helper()
	s := &subscriber{id: id, addr: addr, filter: filter, ready: make(chan struct{}), done: make(chan struct{}),
		got: make(map[string][]arrival)}
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	go s.run(sctx)
	select {
	case <-s.ready:
	case <-time.After(10 * time.Second):
		s.mu.Lock()
		err := s.lastErr
		s.mu.Unlock()
		t.Fatalf("subscriber %s: not subscribed to %s at %s within 10 s: %v", id, filter, addr, err)
	}
	return s
}

// run keeps the subscriber connected until ctx ends.
func (s *subscriber) run(ctx context.Context) {
	defer close(s.done)
	for ctx.Err() == nil {
		s.mu.Lock()
		first := s.conns == 0
		s.mu.Unlock()
		c, err := client.Dial(ctx, client.Options{Addr: s.addr, ClientID: s.id, Version: mqtt.V5, CleanStart: first,
			SessionExpiry: sessionExpiry, ConnectTimeout: 2 * time.Second, Logger: quiet, OnMessage: s.received})
		if err != nil {
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		s.conns++
		if !first && !c.Server().SessionPresent {
			s.sessionLost++
		}
		s.mu.Unlock()
		if first {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.Subscribe(sctx, mqtt.Properties{}, mqtt.Subscription{Filter: s.filter, QoS: 1})
			cancel()
			if err != nil {
				s.mu.Lock()
				s.lastErr = fmt.Errorf("subscribe: %w", err)
				s.conns = 0 // start over with a clean session
				s.mu.Unlock()
				c.Close()
				continue
			}
			close(s.ready)
		}
		select {
		case <-ctx.Done():
			c.Close()
			return
		case <-c.Done():
			s.mu.Lock()
			s.lastErr = c.Err()
			s.mu.Unlock()
		}
	}
}

// received records a message; it runs before the message is acknowledged.
func (s *subscriber) received(p *mqtt.Publish) {
	now := time.Now()
	id, seqText, ok := strings.Cut(string(p.Payload), ":")
	seq, err := strconv.Atoi(seqText)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || err != nil {
		s.foreign = append(s.foreign, p.Topic+" "+string(p.Payload))
		return
	}
	s.got[id] = append(s.got[id], arrival{seq: seq, at: now, dup: p.Dup})
}

// arrivals returns a copy of what arrived from publisher id.
func (s *subscriber) arrivals(id string) []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got[id])
}

// received counts the distinct messages that arrived from publisher id.
func (s *subscriber) distinct(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[int]bool, len(s.got[id]))
	for _, a := range s.got[id] {
		seen[a.seq] = true
	}
	return len(seen)
}

// missing returns how many messages the publishers saw acknowledged that
// the subscriber has not received.
func (s *subscriber) missing(pubs ...*publisher) int {
	n := 0
	for _, p := range pubs {
		acked, _ := p.ackedSnapshot()
		s.mu.Lock()
		seen := make(map[int]bool, len(s.got[p.id]))
		for _, a := range s.got[p.id] {
			seen[a.seq] = true
		}
		s.mu.Unlock()
		for seq, ok := range acked {
			if ok && !seen[seq] {
				n++
			}
		}
	}
	return n
}

// waitDelivered waits until every subscriber has every message each of its
// publishers saw acknowledged, and returns how long that took.
func waitDelivered(ctx context.Context, t *testing.T, timeout time.Duration, want map[*subscriber][]*publisher) time.Duration {
	t.Helper()
	return waitFor(ctx, t, timeout, "every acknowledged message at every subscriber", func() (bool, string) {
		var parts []string
		for s, pubs := range want {
			if n := s.missing(pubs...); n > 0 {
				parts = append(parts, fmt.Sprintf("%s misses %d", s.id, n))
			}
		}
		slices.Sort(parts)
		return len(parts) == 0, strings.Join(parts, ", ")
	})
}

// allowance decides whether a second copy of a message is one the
// system's guarantees allow: it gets the arrival of the earlier copy and of
// the later one.
type allowance func(earlier, later arrival) bool

// noDuplicates allows none.
func noDuplicates(earlier, later arrival) bool { return false }

// delivery is the outcome of checking one subscriber against one publisher.
type delivery struct {
	acked, published        int
	distinct, arrivals      int
	lost, dups, allowedDups int
	disorder, phantoms      int
	unackedArrived          int
}

// maxExamples is how many sequence numbers each failure names.
const maxExamples = 8

// verify checks what subscriber s received from publisher p: every
// acknowledged message arrived (LOSS), none arrived twice unless allow
// accepts the second copy (DUPLICATE), first arrivals are in publishing
// order (ORDER), and nothing arrived that was never published (PHANTOM). It
// reports failures on t and returns the figures.
func verify(t *testing.T, s *subscriber, p *publisher, allow allowance) delivery {
	t.Helper()
	acked, sent := p.ackedSnapshot()
	got := s.arrivals(p.id)
	var d delivery
	d.published, d.arrivals = sent, len(got)
	first := make(map[int]arrival, len(got))
	var lost, disorder, phantoms []int
	var dups []string
	last := 0
	for _, a := range got {
		if a.seq < 1 || a.seq > sent {
			d.phantoms++
			phantoms = appendExample(phantoms, a.seq)
			continue
		}
		if e, ok := first[a.seq]; ok {
			if allow(e, a) {
				d.allowedDups++
			} else {
				d.dups++
				if len(dups) < maxExamples {
					dups = append(dups, fmt.Sprintf("%d at %s (DUP %v) and %s (DUP %v)", a.seq, clock(e.at), e.dup, clock(a.at), a.dup))
				}
			}
			first[a.seq] = a // a third copy is judged against the second
			continue
		}
		first[a.seq] = a
		if a.seq < last {
			d.disorder++
			disorder = appendExample(disorder, a.seq)
		}
		last = max(last, a.seq)
	}
	d.distinct = len(first)
	for seq := 1; seq <= sent; seq++ {
		_, ok := first[seq]
		switch {
		case acked[seq]:
			d.acked++
			if !ok {
				d.lost++
				lost = appendExample(lost, seq)
			}
		case ok:
			d.unackedArrived++
		}
	}
	pair := fmt.Sprintf("subscriber %s, publisher %s", s.id, p.id)
	if d.lost > 0 {
		t.Errorf("LOSS: %s: %d of %d acknowledged messages never arrived, e.g. %v", pair, d.lost, d.acked, lost)
	}
	if d.dups > 0 {
		t.Errorf("DUPLICATE: %s: %d messages arrived more than once, e.g.\n\t%s", pair, d.dups, strings.Join(dups, "\n\t"))
	}
	if d.disorder > 0 {
		t.Errorf("ORDER: %s: %d messages arrived after a later one, e.g. %v", pair, d.disorder, disorder)
	}
	if d.phantoms > 0 {
		t.Errorf("PHANTOM: %s: %d messages that were never published, e.g. %v", pair, d.phantoms, phantoms)
	}
	t.Logf("%s: %d published, %d acknowledged, %d distinct received (%d arrivals; %d allowed redeliveries, %d unacknowledged ones arrived)",
		pair, d.published, d.acked, d.distinct, d.arrivals, d.allowedDups, d.unackedArrived)
	return d
}

// clock formats t as the nodes' logs do, to the millisecond.
func clock(t time.Time) string { return t.Format("15:04:05.000") }

// appendExample appends seq to examples unless there are enough.
func appendExample(examples []int, seq int) []int {
	if len(examples) < maxExamples {
		examples = append(examples, seq)
	}
	return examples
}

// checkSubscriber fails the test if the subscriber lost its session on a
// reconnect or received something other than the publishers' messages, and,
// when steady, if it had to reconnect at all: its node stayed up, so a
// reconnect (and the QoS 1 redeliveries that come with it) would be a fault
// of its own.
func checkSubscriber(t *testing.T, s *subscriber, steady bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if steady && s.conns != 1 {
		t.Errorf("RECONNECT: subscriber %s connected %d times to a node that stayed up; last error: %v", s.id, s.conns, s.lastErr)
	}
	if s.sessionLost > 0 {
		t.Errorf("SESSION LOST: subscriber %s: %d of %d reconnects found no session", s.id, s.sessionLost, s.conns-1)
	}
	if len(s.foreign) > 0 {
		t.Errorf("FOREIGN: subscriber %s received %d messages not from the tests' publishers, e.g. %q", s.id, len(s.foreign), s.foreign[0])
	}
}
