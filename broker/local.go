package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/topic"
)

// Handler receives the messages of one in-process subscription; retained is
// true for a retained message sent because of the subscription. Handlers of a
// Local client are called one at a time, in delivery order; a handler must
// not block for long, since the client's queue fills while it runs. m must not
// be changed.
type Handler func(m *Message, retained bool)

// Local is a client that lives in the broker's process: services on the same
// node publish and subscribe through it without a network connection. It has
// a clean session that ends when it is closed, and the same bounded queue as
// any other session.
type Local struct {
	b *Broker
	s *session

	hmu      sync.RWMutex
	handlers map[uint32]Handler // subscription identifier → handler
	filters  map[string]uint32  // filter → subscription identifier
	nextID   uint32

	running bool // guarded by s.mu
	closed  bool // guarded by s.mu
	batch   []delivery
}

// ErrClientIDInUse is returned by NewLocal when another client has the
// identifier.
var ErrClientIDInUse = errors.New("broker: client identifier in use")

// NewLocal connects an in-process client with identifier id ("" assigns one).
func (b *Broker) NewLocal(id string) (*Local, error) {
	if id == "" {
		id = newClientID()
	}
	l := &Local{b: b, handlers: make(map[uint32]Handler), filters: make(map[string]uint32)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("broker: closed")
	}
	if _, ok := b.sessions[id]; ok {
		return nil, fmt.Errorf("%w: %q", ErrClientIDInUse, id)
	}
	s := newSession(b, id)
	b.sessions[id] = s
	s.mu.Lock()
	s.attachLocked(l)
	s.mu.Unlock()
	l.s = s
	return l, nil
}

// ID returns the client identifier.
func (l *Local) ID() string { return l.s.id }

// ErrQuotaExceeded is returned when every session a message was meant for
// refused it because its queue is full.
var ErrQuotaExceeded = errors.New("broker: every matching session's queue is full")

// PublishContext publishes m as this client and, for QoS 1 and 2, returns
// once it is as safe as a PUBACK or PUBREC from the broker would say: once
// every durable session it was queued for has it in the store (fsynced as
// Options.Sync says). It reports how many sessions the message was queued
// for; when every matching session refused it for a full queue it returns
// ErrQuotaExceeded, and when the store failed, an error. ctx bounds the
// wait only: the message is published either way. m must not be changed
// afterwards.
func (l *Local) PublishContext(ctx context.Context, m *Message) (int, error) {
	if err := l.check(m); err != nil {
		return 0, err
	}
	r := l.publish(m)
	if m.QoS > 0 && r.matched > 0 && r.queued == 0 && r.full > 0 {
		return 0, ErrQuotaExceeded
	}
	if m.QoS == 0 || r.ticket == 0 || l.b.journal == nil {
		return r.queued, nil
	}
	if err := l.b.waitDurable(ctx, r.ticket); err != nil {
		return r.queued, fmt.Errorf("broker: publish %s: %w", m.Topic, err)
	}
	return r.queued, nil
}

// waitDurable waits until journal generation gen is committed, or ctx ends.
// It returns the store's error when the store failed.
func (b *Broker) waitDurable(ctx context.Context, gen uint64) error {
	w := &chanWaiter{done: make(chan struct{})}
	if b.journal.await(w, gen) {
		select {
		case <-w.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.done:
			return errors.New("broker closed before the message was stored")
		}
	}
	return b.journal.err()
}

// chanWaiter is a journal waiter for one blocking wait.
type chanWaiter struct {
	wreg waitReg
	once sync.Once
	done chan struct{}
}

func (w *chanWaiter) reg() *waitReg { return &w.wreg }
func (w *chanWaiter) durable()      { w.once.Do(func() { close(w.done) }) }

// check refuses a message that may not be published.
func (l *Local) check(m *Message) error {
	if err := topic.ValidName(m.Topic); err != nil {
		return fmt.Errorf("broker: publish: %w", err)
	}
	if m.QoS > 2 {
		return fmt.Errorf("broker: publish: QoS %d", m.QoS)
	}
	return nil
}

// publish routes m as this client's message.
func (l *Local) publish(m *Message) routed {
	m.Origin = l.s.id
	if m.Props != nil && m.Props.Has(mqtt.PropMessageExpiry) && m.Expires.IsZero() {
		m.Expires = time.Now().Add(time.Duration(m.Props.MessageExpiry) * time.Second)
	}
	l.b.stats.msgsIn.Add(1)
	l.b.stats.bytesIn.Add(uint64(len(m.Payload)))
	return l.b.publish(m)
}

// Publish publishes m as this client without waiting for the store (see
// PublishContext). It reports how many sessions the message was queued for.
// m must not be changed afterwards.
func (l *Local) Publish(m *Message) (int, error) {
	if err := l.check(m); err != nil {
		return 0, err
	}
	return l.publish(m).queued, nil
}

// Subscribe subscribes to filter with the options of sub (sub.Filter is
// ignored) and calls h for each message. Retained messages are delivered as
// the Retain Handling option says. Subscribing again to the same filter
// replaces the handler.
func (l *Local) Subscribe(filter string, sub mqtt.Subscription, h Handler) error {
	if err := topic.ValidFilter(filter); err != nil {
		return fmt.Errorf("broker: subscribe: %w", err)
	}
	l.hmu.Lock()
	id, ok := l.filters[filter]
	if !ok {
		l.nextID++
		id = l.nextID
		l.filters[filter] = id
	}
	l.handlers[id] = h
	l.hmu.Unlock()
	_, _, shared := topic.ParseShared(filter)
	opts := subOptions{qos: min(sub.QoS, 2), noLocal: sub.NoLocal, retainAsPublished: sub.RetainAsPublished,
		retainHandling: sub.RetainHandling, subIDs: []uint32{id}}
	existed := l.b.index.Subscribe(filter, l.s, opts)
	if !existed {
		l.b.noteInterest(l.s, filter, 1)
	}
	l.s.mu.Lock()
	l.s.addSubLocked(filter, opts)
	l.s.mu.Unlock()
	if !shared && (opts.retainHandling == 0 || (opts.retainHandling == 1 && !existed)) {
		now := time.Now()
		l.b.ret.match(filter, func(m *Message) {
			if !m.expired(now) {
				l.s.enqueue(delivery{msg: m, qos: min(m.QoS, opts.qos), retain: true, subIDs: opts.subIDs})
			}
		})
	}
	return nil
}

// Unsubscribe removes the subscription to filter.
func (l *Local) Unsubscribe(filter string) error {
	existed := l.b.index.Unsubscribe(filter, l.s)
	if existed {
		l.b.noteInterest(l.s, filter, -1)
	}
	l.s.mu.Lock()
	delete(l.s.subs, filter)
	l.s.mu.Unlock()
	l.hmu.Lock()
	if id, ok := l.filters[filter]; ok {
		delete(l.handlers, id)
		delete(l.filters, filter)
	}
	l.hmu.Unlock()
	if !existed {
		return fmt.Errorf("broker: unsubscribe %q: no such subscription", filter)
	}
	return nil
}

// Close ends the client's session.
func (l *Local) Close() error {
	b := l.b
	b.mu.Lock()
	l.s.mu.Lock()
	if l.closed {
		l.s.mu.Unlock()
		b.mu.Unlock()
		return nil
	}
	l.closed = true
	l.s.out = nil
	l.s.mu.Unlock()
	e := b.endSessionLocked(l.s)
	b.mu.Unlock()
	b.finishEnded(e)
	return nil
}

// wake implements outlet.
func (l *Local) wake() {
	if l.running || l.closed {
		return
	}
	l.running = true
	if !l.b.background(l.drain) {
		l.running = false // the broker has shut down
	}
}

// detach implements outlet; a Local client's identifier is never reused while
// it is open, so it is not taken over.
func (l *Local) detach(mqtt.ReasonCode) {}

func (l *Local) drain() {
	s := l.s
	for {
		s.mu.Lock()
		batch := s.take(l.batch[:0], 256, 1<<16-1, 0, mqtt.V5, time.Now())
		if len(batch) == 0 || l.closed {
			l.running = false
			s.mu.Unlock()
			return
		}
		// In-process delivery completes at once: nothing stays inflight.
		for i := range batch {
			if batch[i].qos > 0 {
				delete(s.inflight, batch[i].packetID)
			}
		}
		s.mu.Unlock()
		l.hmu.RLock()
		for i := range batch {
			d := &batch[i]
			for _, id := range d.subIDs {
				if h := l.handlers[id]; h != nil {
					l.hmu.RUnlock()
					h(d.msg, d.retain)
					l.hmu.RLock()
				}
			}
		}
		l.hmu.RUnlock()
		l.b.stats.msgsOut.Add(uint64(len(batch)))
		clear(batch)
		l.batch = batch[:0]
	}
}
