package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
)

// Local is a Bus inside the broker's process.
type Local struct {
	c   *broker.Local
	ctx context.Context
	end context.CancelFunc
}

// NewLocal connects an in-process bus client with identifier id ("" assigns
// one) to b.
func NewLocal(b *broker.Broker, id string) (*Local, error) {
	c, err := b.NewLocal(id)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	ctx, end := context.WithCancel(context.Background())
	return &Local{c: c, ctx: ctx, end: end}, nil
}

// Publish implements Bus.
func (l *Local) Publish(ctx context.Context, m Message) error {
	msg := &broker.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain}
	if m.ContentType != "" || m.ResponseTopic != "" || m.CorrelationData != nil || m.Expiry > 0 || len(m.Properties) > 0 {
		msg.Props = new(mqtt.Properties)
		toProps(msg.Props, &m)
	}
	// For QoS 1 and 2, returns once the message is stored, as a PUBACK would.
	if _, err := l.c.PublishContext(ctx, msg); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// Subscribe implements Bus.
func (l *Local) Subscribe(ctx context.Context, filter string, qos byte, h Handler) error {
	err := l.c.Subscribe(filter, mqtt.Subscription{QoS: qos}, func(bm *broker.Message, retained bool) {
		m := Message{Topic: bm.Topic, Payload: bm.Payload, QoS: min(bm.QoS, qos), Retain: retained}
		if bm.Props != nil {
			fromProps(&m, bm.Props)
		}
		if !bm.Expires.IsZero() {
			m.Expiry = time.Until(bm.Expires)
		}
		h(l.ctx, m)
	})
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// Unsubscribe implements Bus.
func (l *Local) Unsubscribe(ctx context.Context, filter string) error {
	if err := l.c.Unsubscribe(filter); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// Close implements Bus.
func (l *Local) Close() error {
	l.end()
	return l.c.Close()
}

// toProps sets the MQTT properties that carry m's metadata.
func toProps(p *mqtt.Properties, m *Message) {
	p.ContentType = m.ContentType
	p.ResponseTopic = m.ResponseTopic
	p.CorrelationData = m.CorrelationData
	if m.Expiry > 0 {
		p.MessageExpiry = uint32((m.Expiry + time.Second - 1) / time.Second)
	}
	for _, kv := range m.Properties {
		p.User = append(p.User, mqtt.UserProperty{Key: kv.Key, Value: kv.Value})
	}
}

// fromProps copies the metadata in MQTT properties p to m.
func fromProps(m *Message, p *mqtt.Properties) {
	m.ContentType = p.ContentType
	m.ResponseTopic = p.ResponseTopic
	m.CorrelationData = p.CorrelationData
	if p.MessageExpiry > 0 {
		m.Expiry = time.Duration(p.MessageExpiry) * time.Second
	}
	for _, u := range p.User {
		m.Properties = append(m.Properties, Property{Key: u.Key, Value: u.Value})
	}
}
