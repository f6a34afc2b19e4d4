// Package bus is the one interface citymesh services use to exchange events:
// Publish and Subscribe over topics. The in-process implementation talks to a
// broker in the same process; the remote one talks MQTT to any broker, so a
// service runs in-process or at an edge node without a line changed.
package bus

import (
	"context"
	"time"
)

// Message is one event on the bus.
type Message struct {
	// Topic is the topic name the event is published to.
	Topic string
	// Payload is the event body, usually JSON.
	Payload []byte
	// QoS is the MQTT quality of service: 0, 1 or 2.
	QoS byte
	// Retain asks the broker to keep the message for late subscribers; on
	// received messages it says the message was retained.
	Retain bool
	// ContentType describes the payload, e.g. "application/json".
	ContentType string
	// ResponseTopic and CorrelationData carry request/response exchanges.
	ResponseTopic   string
	CorrelationData []byte
	// Expiry, when positive, is how long the message stays deliverable.
	Expiry time.Duration
	// Properties are application key/value pairs (MQTT 5 user properties),
	// for example CloudEvents attributes. Order is kept; keys may repeat.
	Properties []Property
}

// Property is one application key/value pair of a message.
type Property struct {
	Key, Value string
}

// Handler receives the messages of one subscription, one at a time and in
// order. It must not keep m.Payload beyond the call if it changes it.
type Handler func(ctx context.Context, m Message)

// Bus publishes and subscribes.
type Bus interface {
	// Publish publishes m. For QoS 1 and 2 it returns once the broker has
	// accepted the message.
	Publish(ctx context.Context, m Message) error
	// Subscribe calls h for every message whose topic matches filter, which
	// may hold the MQTT wildcards + and # and may be a shared subscription
	// ($share/group/filter). The subscription lasts until Unsubscribe or
	// Close. A client holds one subscription per filter: subscribing to a
	// filter again replaces its handler, and whether a message matching
	// two overlapping filters reaches both handlers differs between
	// implementations (MQTT lets a broker deliver it once), so two
	// consumers whose filters overlap each take a client of their own.
	// Publish may be called from several goroutines at once.
	Subscribe(ctx context.Context, filter string, qos byte, h Handler) error
	// Unsubscribe ends the subscription to filter.
	Unsubscribe(ctx context.Context, filter string) error
	// Close ends every subscription and releases the bus.
	Close() error
}
