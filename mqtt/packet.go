// Package mqtt is the MQTT 3.1.1 and 5.0 wire codec: control packets, properties
// and reason codes, and their encoding and decoding. It knows nothing of brokers,
// sessions or clients; those live in other packages and use this one.
//
// Clause references in comments, such as [MQTT-3.3.2-2], name the normative
// statements of the OASIS MQTT Version 5.0 standard (and, where marked, of
// MQTT Version 3.1.1).
package mqtt

// Protocol levels carried in the CONNECT packet's variable header.
const (
	// V31 is MQTT 3.1 (protocol name "MQIsdp").
	V31 byte = 3
	// V311 is MQTT 3.1.1.
	V311 byte = 4
	// V5 is MQTT 5.0.
	V5 byte = 5
)

// PacketType is the MQTT control packet type held in the upper four bits of the
// fixed header's first byte.
type PacketType byte

// Control packet types, [MQTT-2.1.2].
const (
	CONNECT     PacketType = 1
	CONNACK     PacketType = 2
	PUBLISH     PacketType = 3
	PUBACK      PacketType = 4
	PUBREC      PacketType = 5
	PUBREL      PacketType = 6
	PUBCOMP     PacketType = 7
	SUBSCRIBE   PacketType = 8
	SUBACK      PacketType = 9
	UNSUBSCRIBE PacketType = 10
	UNSUBACK    PacketType = 11
	PINGREQ     PacketType = 12
	PINGRESP    PacketType = 13
	DISCONNECT  PacketType = 14
	AUTH        PacketType = 15
)

var packetTypeNames = [...]string{
	"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

// String returns the packet type's name as the specification spells it.
func (t PacketType) String() string {
	if int(t) < len(packetTypeNames) {
		return packetTypeNames[t]
	}
	return "INVALID"
}

// Packet is one decoded MQTT control packet.
type Packet interface {
	// Type reports the control packet type.
	Type() PacketType
	// AppendTo appends the packet's complete wire form for protocol level
	// version (V31, V311 or V5) to dst. Properties are written only for V5.
	AppendTo(dst []byte, version byte) ([]byte, error)
}

// UserProperty is one MQTT 5 User Property name and value pair.
type UserProperty struct {
	Key, Value string
}

// PropID is an MQTT 5 property identifier, [MQTT-2.2.2.2].
type PropID byte

// Property identifiers.
const (
	PropPayloadFormat        PropID = 0x01
	PropMessageExpiry        PropID = 0x02
	PropContentType          PropID = 0x03
	PropResponseTopic        PropID = 0x08
	PropCorrelationData      PropID = 0x09
	PropSubscriptionID       PropID = 0x0B
	PropSessionExpiry        PropID = 0x11
	PropAssignedClientID     PropID = 0x12
	PropServerKeepAlive      PropID = 0x13
	PropAuthMethod           PropID = 0x15
	PropAuthData             PropID = 0x16
	PropRequestProblemInfo   PropID = 0x17
	PropWillDelay            PropID = 0x18
	PropRequestResponseInfo  PropID = 0x19
	PropResponseInfo         PropID = 0x1A
	PropServerReference      PropID = 0x1C
	PropReasonString         PropID = 0x1F
	PropReceiveMaximum       PropID = 0x21
	PropTopicAliasMaximum    PropID = 0x22
	PropTopicAlias           PropID = 0x23
	PropMaximumQoS           PropID = 0x24
	PropRetainAvailable      PropID = 0x25
	PropUser                 PropID = 0x26
	PropMaximumPacketSize    PropID = 0x27
	PropWildcardSubAvailable PropID = 0x28
	PropSubIDAvailable       PropID = 0x29
	PropSharedSubAvailable   PropID = 0x2A
)

// Properties holds the MQTT 5 properties of a packet. Its zero value is an empty
// property set.
//
// A property is written by the encoder when its field holds a non-zero value or
// when its identifier is marked in Present; the decoder marks every property it
// reads in Present. So properties whose absence and zero value mean different
// things (Message Expiry Interval 0, Maximum QoS 0, Server Keep Alive 0,
// Request Problem Information 0, the "available" flags 0) are sent by calling
// Set with their identifier.
type Properties struct {
	PayloadFormat        byte           // 0x01 Payload Format Indicator
	MessageExpiry        uint32         // 0x02 Message Expiry Interval, seconds
	ContentType          string         // 0x03
	ResponseTopic        string         // 0x08
	CorrelationData      []byte         // 0x09
	SubscriptionIDs      []uint32       // 0x0B; a PUBLISH may carry several, a SUBSCRIBE one
	SessionExpiry        uint32         // 0x11 Session Expiry Interval, seconds
	AssignedClientID     string         // 0x12 Assigned Client Identifier
	ServerKeepAlive      uint16         // 0x13 seconds
	AuthMethod           string         // 0x15 Authentication Method
	AuthData             []byte         // 0x16 Authentication Data
	RequestProblemInfo   byte           // 0x17 Request Problem Information (absent means 1)
	WillDelay            uint32         // 0x18 Will Delay Interval, seconds
	RequestResponseInfo  byte           // 0x19 Request Response Information
	ResponseInfo         string         // 0x1A Response Information
	ServerReference      string         // 0x1C
	ReasonString         string         // 0x1F
	ReceiveMaximum       uint16         // 0x21 (absent means 65535; 0 is a protocol error)
	TopicAliasMaximum    uint16         // 0x22
	TopicAlias           uint16         // 0x23 (0 is a protocol error)
	MaximumQoS           byte           // 0x24 (absent means 2)
	RetainAvailable      byte           // 0x25 (absent means 1)
	User                 []UserProperty // 0x26 User Property, order kept
	MaximumPacketSize    uint32         // 0x27 (absent means no limit; 0 is a protocol error)
	WildcardSubAvailable byte           // 0x28 (absent means 1)
	SubIDAvailable       byte           // 0x29 (absent means 1)
	SharedSubAvailable   byte           // 0x2A (absent means 1)

	// Present has bit 1<<id set for every property identifier id that is
	// present, whether or not its value is zero.
	Present uint64
}

// Has reports whether property id is present: marked in Present, or holding a
// non-zero value.
func (p *Properties) Has(id PropID) bool { return p.mask()&(1<<id) != 0 }

// Mask returns a bit 1<<id for every property id that is present: marked in
// Present or holding a non-zero value.
func (p *Properties) Mask() uint64 { return p.mask() }

// mask returns Present together with a bit for every property that holds a
// non-zero value.
func (p *Properties) mask() uint64 {
	m := p.Present
	set := func(cond bool, id PropID) {
		if cond {
			m |= 1 << id
		}
	}
	set(p.PayloadFormat != 0, PropPayloadFormat)
	set(p.MessageExpiry != 0, PropMessageExpiry)
	set(p.ContentType != "", PropContentType)
	set(p.ResponseTopic != "", PropResponseTopic)
	set(len(p.CorrelationData) > 0, PropCorrelationData)
	set(len(p.SubscriptionIDs) > 0, PropSubscriptionID)
	set(p.SessionExpiry != 0, PropSessionExpiry)
	set(p.AssignedClientID != "", PropAssignedClientID)
	set(p.ServerKeepAlive != 0, PropServerKeepAlive)
	set(p.AuthMethod != "", PropAuthMethod)
	set(len(p.AuthData) > 0, PropAuthData)
	set(p.RequestProblemInfo != 0, PropRequestProblemInfo)
	set(p.WillDelay != 0, PropWillDelay)
	set(p.RequestResponseInfo != 0, PropRequestResponseInfo)
	set(p.ResponseInfo != "", PropResponseInfo)
	set(p.ServerReference != "", PropServerReference)
	set(p.ReasonString != "", PropReasonString)
	set(p.ReceiveMaximum != 0, PropReceiveMaximum)
	set(p.TopicAliasMaximum != 0, PropTopicAliasMaximum)
	set(p.TopicAlias != 0, PropTopicAlias)
	set(p.MaximumQoS != 0, PropMaximumQoS)
	set(p.RetainAvailable != 0, PropRetainAvailable)
	set(len(p.User) > 0, PropUser)
	set(p.MaximumPacketSize != 0, PropMaximumPacketSize)
	set(p.WildcardSubAvailable != 0, PropWildcardSubAvailable)
	set(p.SubIDAvailable != 0, PropSubIDAvailable)
	set(p.SharedSubAvailable != 0, PropSharedSubAvailable)
	return m
}

// Set marks property id as present, so that it is encoded even when its value
// is zero.
func (p *Properties) Set(id PropID) { p.Present |= 1 << id }

// Will is the will message carried in a CONNECT packet.
type Will struct {
	QoS     byte
	Retain  bool
	Topic   string
	Payload []byte
	Props   Properties // will properties (V5 only)
}

// Connect is the CONNECT packet, [MQTT-3.1].
type Connect struct {
	ProtocolName string // "MQTT", or "MQIsdp" for V31
	Version      byte   // protocol level: V31, V311 or V5
	CleanStart   bool   // Clean Start (V5) or Clean Session (V3)
	KeepAlive    uint16 // seconds
	Props        Properties
	ClientID     string
	Will         *Will // nil when the Will Flag is 0
	Username     string
	HasUsername  bool
	Password     []byte
	HasPassword  bool
}

// Connack is the CONNACK packet, [MQTT-3.2]. For V3 connections ReasonCode holds
// the 3.1.1 Connect Return Code (0 to 5); see ReasonCode.V3ConnackCode.
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Props          Properties
}

// Publish is the PUBLISH packet, [MQTT-3.3].
//
// Packets returned by Reader.ReadPacket alias the reader's buffer: Payload and
// CorrelationData are valid only until the next call.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    string
	PacketID uint16 // present only when QoS > 0
	Props    Properties
	Payload  []byte
}

// Ack is one of the four packets that acknowledge a PUBLISH: PUBACK, PUBREC,
// PUBREL and PUBCOMP ([MQTT-3.4] to [MQTT-3.7]). Kind says which.
type Ack struct {
	Kind       PacketType
	PacketID   uint16
	ReasonCode ReasonCode // V5 only; 0 is Success
	Props      Properties
}

// Subscription is one topic filter with its subscription options, [MQTT-3.8.3.1].
type Subscription struct {
	Filter            string
	QoS               byte // maximum QoS
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0 send at subscribe, 1 only if new, 2 never
}

// Subscribe is the SUBSCRIBE packet, [MQTT-3.8].
type Subscribe struct {
	PacketID      uint16
	Props         Properties
	Subscriptions []Subscription
}

// Suback is the SUBACK packet, [MQTT-3.9]. For V3 each code is 0x00 to 0x02 or 0x80.
type Suback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Unsubscribe is the UNSUBSCRIBE packet, [MQTT-3.10].
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Unsuback is the UNSUBACK packet, [MQTT-3.11]. V3 UNSUBACK carries no reason codes.
type Unsuback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Pingreq is the PINGREQ packet, [MQTT-3.12].
type Pingreq struct{}

// Pingresp is the PINGRESP packet, [MQTT-3.13].
type Pingresp struct{}

// Disconnect is the DISCONNECT packet, [MQTT-3.14]. V3 DISCONNECT has no body.
type Disconnect struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Auth is the MQTT 5 AUTH packet, [MQTT-3.15].
type Auth struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Type reports CONNECT.
func (*Connect) Type() PacketType { return CONNECT }

// Type reports CONNACK.
func (*Connack) Type() PacketType { return CONNACK }

// Type reports PUBLISH.
func (*Publish) Type() PacketType { return PUBLISH }

// Type reports the acknowledgement's Kind.
func (a *Ack) Type() PacketType { return a.Kind }

// Type reports SUBSCRIBE.
func (*Subscribe) Type() PacketType { return SUBSCRIBE }

// Type reports SUBACK.
func (*Suback) Type() PacketType { return SUBACK }

// Type reports UNSUBSCRIBE.
func (*Unsubscribe) Type() PacketType { return UNSUBSCRIBE }

// Type reports UNSUBACK.
func (*Unsuback) Type() PacketType { return UNSUBACK }

// Type reports PINGREQ.
func (*Pingreq) Type() PacketType { return PINGREQ }

// Type reports PINGRESP.
func (*Pingresp) Type() PacketType { return PINGRESP }

// Type reports DISCONNECT.
func (*Disconnect) Type() PacketType { return DISCONNECT }

// Type reports AUTH.
func (*Auth) Type() PacketType { return AUTH }
