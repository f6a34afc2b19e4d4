package broker

import (
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// Message is one application message inside the broker. It is created once
// when a PUBLISH arrives and shared by reference among every subscriber it is
// delivered to, so it must not be changed after it has been published.
type Message struct {
	// Topic is the topic name the message was published to.
	Topic string
	// Payload is the application payload.
	Payload []byte
	// QoS is the quality of service the publisher used.
	QoS byte
	// Retain is the RETAIN flag the publisher set.
	Retain bool
	// Props holds the properties that travel with the message to its
	// receivers (MQTT 5.0 §3.3.2.3): payload format indicator, message
	// expiry, content type, response topic, correlation data and user
	// properties; nil when there are none. Topic Alias and Subscription
	// Identifier are per connection and are never stored here.
	Props *mqtt.Properties
	// Origin is the client identifier of the publisher, or "" for messages
	// the broker makes itself. It drives the No Local option [MQTT-3.8.3-3].
	Origin string
	// Expires is when the message expires, or the zero time if it does not
	// [MQTT-3.3.2-5].
	Expires time.Time
	// Via is the mesh link the message arrived over, nil for a message of
	// this node; Hops is how many links it has crossed. They drive the
	// mesh's forwarding rules.
	Via  *Link
	Hops int
	// Shares are the shared subscriptions (their $share/ filters) the
	// node that sent it over Via chose this node to serve: a message that
	// came over a link between citymesh nodes goes to those groups only,
	// so that each message reaches one member of a group mesh-wide.
	Shares []string

	plain atomic.Pointer[mqtt.Properties] // Props without the mesh's user properties, made on first use
}

// newMessage copies the parts of a decoded PUBLISH that outlive the read
// buffer into a Message. Payload and property bytes are copied into one
// allocation.
func newMessage(p *mqtt.Publish, topic, origin string, now func() time.Time) *Message {
	m := &Message{Topic: topic, QoS: p.QoS, Retain: p.Retain, Origin: origin}
	if len(p.Payload) > 0 {
		m.Payload = append(make([]byte, 0, len(p.Payload)), p.Payload...)
	}
	if p.Props.Mask()&messageProps != 0 {
		m.Props = new(mqtt.Properties)
		copyMessageProps(m.Props, &p.Props)
		if len(p.Props.CorrelationData) > 0 {
			m.Props.CorrelationData = append([]byte(nil), p.Props.CorrelationData...)
		}
		if m.Props.Has(mqtt.PropMessageExpiry) {
			m.Expires = now().Add(time.Duration(m.Props.MessageExpiry) * time.Second)
		}
	}
	return m
}

// messageProps are the properties that travel with an application message.
const messageProps = 1<<mqtt.PropPayloadFormat | 1<<mqtt.PropMessageExpiry | 1<<mqtt.PropContentType |
	1<<mqtt.PropResponseTopic | 1<<mqtt.PropCorrelationData | 1<<mqtt.PropUser

// copyMessageProps copies the properties that are forwarded with an
// application message [MQTT-3.3.2-4][MQTT-3.3.2-15][MQTT-3.3.2-16][MQTT-3.3.2-17][MQTT-3.3.2-20].
// CorrelationData is left to the caller.
func copyMessageProps(dst, src *mqtt.Properties) {
	dst.PayloadFormat = src.PayloadFormat
	dst.MessageExpiry = src.MessageExpiry
	dst.ContentType = src.ContentType
	dst.ResponseTopic = src.ResponseTopic
	if len(src.User) > 0 {
		dst.User = append([]mqtt.UserProperty(nil), src.User...)
	}
	dst.Present = src.Present & messageProps
}

// expired reports whether the message's expiry interval has elapsed at now.
func (m *Message) expired(now time.Time) bool {
	return !m.Expires.IsZero() && !now.Before(m.Expires)
}

// remainingExpiry returns the Message Expiry Interval to send to a receiver:
// the original interval less the time the message waited [MQTT-3.3.2-6].
func (m *Message) remainingExpiry(now time.Time) uint32 {
	d := m.Expires.Sub(now)
	if d <= 0 {
		return 0
	}
	return uint32((d + time.Second - 1) / time.Second)
}

// delivery is one message on its way to one session: the shared message plus
// the few things that differ per receiver.
type delivery struct {
	msg    *Message
	qos    byte     // granted QoS for this receiver: min(publish QoS, subscription QoS)
	retain bool     // RETAIN flag to send [MQTT-3.3.1-8][MQTT-3.3.1-12][MQTT-3.3.1-13]
	subIDs []uint32 // subscription identifiers of the matching subscriptions [MQTT-3.3.4-3]
	share  string   // the shared subscription filter it was routed through, if any

	seq      uint64 // QoS 1 and 2: the session's sequence number, in queue order
	enqueued int64  // when it was first queued, Unix nanoseconds (the coarse clock); kept in its store entry
	ticket   uint64 // journal generation that makes its store entry durable; 0 for none
	size     int    // encoded size of its store entry; 0 when it has none
	// op is 1 + the position of its store entry's write in the batch of
	// generation ticket (store.Batch.Mark), so that an acknowledgement that
	// comes before that batch is sealed can cancel the write
	// (journal.cancel); 0 when there is none to cancel.
	op int32

	// Outbound state, valid while the delivery is inflight.
	packetID uint16 // derived from seq (pidOf)
	sent     bool   // sent at least once: redeliveries carry DUP [MQTT-3.3.1-1]
	refused  bool   // the writer found the receiver may not have it (access control)
	released bool   // QoS 2: PUBREC received and PUBREL sent [MQTT-4.3.3-4]
}
