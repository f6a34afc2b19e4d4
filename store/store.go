// Package store holds the broker state that must survive a restart, behind
// one small interface: persistent sessions with their subscriptions, and
// retained messages. Memory is the implementation for tests and for nodes
// that keep nothing across restarts; the embedded on-disk engine implements
// the same interface.
package store

import (
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// Subscription is one subscription of a stored session.
type Subscription struct {
	mqtt.Subscription
	// ID is the MQTT 5 subscription identifier, 0 for none.
	ID uint32
}

// Session is the durable part of a persistent session.
type Session struct {
	ClientID string
	// Expiry is the Session Expiry Interval in seconds; 0xFFFFFFFF means it
	// never expires.
	Expiry        uint32
	Subscriptions []Subscription
	// DisconnectedAt is when the client left, zero while it is connected;
	// the expiry interval counts from it, also across a restart.
	DisconnectedAt time.Time
}

// Message is a stored application message.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	// Props are the message's MQTT 5 properties, nil for none.
	Props *mqtt.Properties
	// Expires is when the message expires; zero for never.
	Expires time.Time
}

// Store keeps sessions and retained messages. Implementations are safe for
// concurrent use; a call returns once the change is as durable as the
// implementation makes it.
type Store interface {
	// PutSession stores s, replacing a session with the same client id.
	PutSession(s Session) error
	// DeleteSession removes the session of clientID, if any.
	DeleteSession(clientID string) error
	// Sessions returns every stored session.
	Sessions() ([]Session, error)
	// PutRetained stores m as the retained message of its topic.
	PutRetained(m Message) error
	// DeleteRetained removes the retained message of topic, if any.
	DeleteRetained(topic string) error
	// Retained returns every retained message.
	Retained() ([]Message, error)
}
