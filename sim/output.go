package sim

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/citymesh/citymesh/bus"
)

// Message is one MQTT message the player publishes: a TTS or ChirpStack
// uplink, a building gateway's reading, a robot's position.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// ContentType and Properties travel as MQTT 5 properties where the
	// output speaks MQTT 5 (the CloudEvents attributes of city events).
	ContentType string
	Properties  []bus.Property
}

// Publisher is who publishes a message, as one MQTT client would: a
// building gateway, the robot, a network server. An output that keeps a
// connection per publisher connects with its ID as client id and its Will,
// which the broker publishes when the connection breaks.
type Publisher struct {
	// ID names the publisher; MQTT outputs use it as the client id.
	ID string
	// Will, when set, is the message the broker publishes for the
	// publisher when its connection ends without a DISCONNECT. The player
	// sets it before the publisher's first message and after every
	// reconnection (its time is when the publisher connected).
	Will *Message
}

// Output carries the player's messages somewhere: an MQTT broker, the
// in-process bus, memory. Outputs are used by one goroutine at a time (the
// player's), but their Stats may be read from any.
type Output interface {
	// Publish sends m on behalf of from. An error is counted and the
	// player goes on: a lost message is what a real source would lose.
	Publish(ctx context.Context, from *Publisher, m Message) error
	// Drop ends from's connection as a crash or a network failure would,
	// so that its will is published (by the broker, or by the output
	// itself where there is no broker). The next Publish connects again.
	Drop(ctx context.Context, from *Publisher) error
	// Close ends every connection cleanly (no wills) and waits for the
	// output's goroutines.
	Close() error
}

// OutputStats counts what an output carried.
type OutputStats struct {
	Messages int64 // published
	Bytes    int64 // payload bytes published
	Errors   int64 // publishes that failed
	Drops    int64 // connections dropped (faults)
}

// statsCounter keeps an output's counts; embedded by the outputs.
type statsCounter struct {
	messages, bytes, errors, drops atomic.Int64
}

func (c *statsCounter) count(m *Message, err error) {
	if err != nil {
		c.errors.Add(1)
		return
	}
	c.messages.Add(1)
	c.bytes.Add(int64(len(m.Payload)))
}

// Stats returns the counts so far; safe from any goroutine.
func (c *statsCounter) Stats() OutputStats {
	return OutputStats{Messages: c.messages.Load(), Bytes: c.bytes.Load(), Errors: c.errors.Load(), Drops: c.drops.Load()}
}

// Recorded is a message a MemoryOutput received, with who published it.
type Recorded struct {
	Publisher string
	Message
	// Will marks a will that the output published for a dropped
	// publisher, as a broker would have.
	Will bool
}

// MemoryOutput keeps every message, for tests. The zero value is ready to
// use; it is safe for concurrent use.
type MemoryOutput struct {
	statsCounter
	mu   sync.Mutex
	msgs []Recorded
	// Fail, when set, is returned by Publish (after counting the message
	// as an error) to test how the player copes with a broken output.
	Fail error
}

// Publish records m.
func (o *MemoryOutput) Publish(_ context.Context, from *Publisher, m Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Fail != nil {
		o.count(&m, o.Fail)
		return o.Fail
	}
	m.Payload = slices.Clone(m.Payload)
	o.msgs = append(o.msgs, Recorded{Publisher: from.ID, Message: m})
	o.count(&m, nil)
	return nil
}

// Drop records from's will, if it has one, as the broker would publish it.
func (o *MemoryOutput) Drop(_ context.Context, from *Publisher) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drops.Add(1)
	if from.Will != nil {
		o.msgs = append(o.msgs, Recorded{Publisher: from.ID, Message: *from.Will, Will: true})
	}
	return nil
}

// Close does nothing.
func (o *MemoryOutput) Close() error { return nil }

// Messages returns a copy of what was published so far, in order.
func (o *MemoryOutput) Messages() []Recorded {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.msgs)
}

// DiscardOutput counts messages and throws them away: to measure the
// simulator alone. The zero value is ready to use.
type DiscardOutput struct{ statsCounter }

// Publish counts m.
func (o *DiscardOutput) Publish(_ context.Context, _ *Publisher, m Message) error {
	o.count(&m, nil)
	return nil
}

// Drop counts the drop.
func (o *DiscardOutput) Drop(context.Context, *Publisher) error { o.drops.Add(1); return nil }

// Close does nothing.
func (o *DiscardOutput) Close() error { return nil }

// BusOutput publishes on a bus.Bus: the in-process bus of a node (citymesh
// demo) or a remote one. All publishers share the bus's one client, so a
// dropped publisher's will is published by the output itself.
type BusOutput struct {
	statsCounter
	Bus bus.Bus
}

// NewBusOutput returns an output that publishes on b. It does not close b.
func NewBusOutput(b bus.Bus) *BusOutput { return &BusOutput{Bus: b} }

// Publish publishes m on the bus.
func (o *BusOutput) Publish(ctx context.Context, _ *Publisher, m Message) error {
	err := o.Bus.Publish(ctx, bus.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain,
		ContentType: m.ContentType, Properties: m.Properties})
	o.count(&m, err)
	return err
}

// Drop publishes from's will, as a broker would when its connection broke.
func (o *BusOutput) Drop(ctx context.Context, from *Publisher) error {
	o.drops.Add(1)
	if from.Will == nil {
		return nil
	}
	return o.Publish(ctx, from, *from.Will)
}

// Close does nothing: the bus belongs to the caller.
func (o *BusOutput) Close() error { return nil }

// statser is an output that counts.
type statser interface{ Stats() OutputStats }

// StatsOf returns an output's counts, if it keeps them.
func StatsOf(o Output) (OutputStats, bool) {
	if s, ok := o.(statser); ok {
		return s.Stats(), true
	}
	return OutputStats{}, false
}
