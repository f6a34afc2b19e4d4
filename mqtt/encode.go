package mqtt

import (
	"errors"
	"fmt"
)

// MaxRemainingLength is the largest Remaining Length the four-byte Variable
// Byte Integer can express [MQTT-1.5.5].
const MaxRemainingLength = 268435455

var errStringTooLong = errors.New("mqtt: string or binary data longer than 65535 bytes")

// AppendVarInt appends v as a Variable Byte Integer (MQTT 5.0 §1.5.5).
func AppendVarInt(dst []byte, v uint32) []byte {
	for {
		b := byte(v & 0x7F)
		v >>= 7
		if v == 0 {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}

// varIntLen is the encoded length of v.
func varIntLen(v int) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	default:
		return 4
	}
}

func appendUint16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendString appends a UTF-8 Encoded String or Binary Data: a two-byte
// length then the bytes (MQTT 5.0 §1.5.4, §1.5.6).
func appendString[T string | []byte](dst []byte, s T) ([]byte, error) {
	if len(s) > 0xFFFF {
		return dst, errStringTooLong
	}
	dst = appendUint16(dst, uint16(len(s)))
	return append(dst, s...), nil
}

// insertVarInt inserts v as a Variable Byte Integer at position pos of dst,
// moving what follows.
func insertVarInt(dst []byte, pos int, v int) []byte {
	n := varIntLen(v)
	for range n {
		dst = append(dst, 0)
	}
	copy(dst[pos+n:], dst[pos:len(dst)-n])
	var tmp [4]byte
	enc := AppendVarInt(tmp[:0], uint32(v))
	copy(dst[pos:], enc)
	return dst
}

// appendProps appends the property length and the properties present in p
// (MQTT 5.0 §2.2.2), in identifier order.
func appendProps(dst []byte, p *Properties) ([]byte, error) {
	start := len(dst)
	m := p.mask()
	if m == 0 {
		return append(dst, 0), nil
	}
	var err error
	if m&(1<<PropPayloadFormat) != 0 {
		dst = append(dst, byte(PropPayloadFormat), p.PayloadFormat)
	}
	if m&(1<<PropMessageExpiry) != 0 {
		dst = appendUint32(append(dst, byte(PropMessageExpiry)), p.MessageExpiry)
	}
	if m&(1<<PropContentType) != 0 {
		if dst, err = appendString(append(dst, byte(PropContentType)), p.ContentType); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropResponseTopic) != 0 {
		if dst, err = appendString(append(dst, byte(PropResponseTopic)), p.ResponseTopic); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropCorrelationData) != 0 {
		if dst, err = appendString(append(dst, byte(PropCorrelationData)), p.CorrelationData); err != nil {
			return dst, err
		}
	}
	for _, id := range p.SubscriptionIDs {
		dst = AppendVarInt(append(dst, byte(PropSubscriptionID)), id)
	}
	if m&(1<<PropSessionExpiry) != 0 {
		dst = appendUint32(append(dst, byte(PropSessionExpiry)), p.SessionExpiry)
	}
	if m&(1<<PropAssignedClientID) != 0 {
		if dst, err = appendString(append(dst, byte(PropAssignedClientID)), p.AssignedClientID); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropServerKeepAlive) != 0 {
		dst = appendUint16(append(dst, byte(PropServerKeepAlive)), p.ServerKeepAlive)
	}
	if m&(1<<PropAuthMethod) != 0 {
		if dst, err = appendString(append(dst, byte(PropAuthMethod)), p.AuthMethod); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropAuthData) != 0 {
		if dst, err = appendString(append(dst, byte(PropAuthData)), p.AuthData); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropRequestProblemInfo) != 0 {
		dst = append(dst, byte(PropRequestProblemInfo), p.RequestProblemInfo)
	}
	if m&(1<<PropWillDelay) != 0 {
		dst = appendUint32(append(dst, byte(PropWillDelay)), p.WillDelay)
	}
	if m&(1<<PropRequestResponseInfo) != 0 {
		dst = append(dst, byte(PropRequestResponseInfo), p.RequestResponseInfo)
	}
	if m&(1<<PropResponseInfo) != 0 {
		if dst, err = appendString(append(dst, byte(PropResponseInfo)), p.ResponseInfo); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropServerReference) != 0 {
		if dst, err = appendString(append(dst, byte(PropServerReference)), p.ServerReference); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropReasonString) != 0 {
		if dst, err = appendString(append(dst, byte(PropReasonString)), p.ReasonString); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropReceiveMaximum) != 0 {
		dst = appendUint16(append(dst, byte(PropReceiveMaximum)), p.ReceiveMaximum)
	}
	if m&(1<<PropTopicAliasMaximum) != 0 {
		dst = appendUint16(append(dst, byte(PropTopicAliasMaximum)), p.TopicAliasMaximum)
	}
	if m&(1<<PropTopicAlias) != 0 {
		dst = appendUint16(append(dst, byte(PropTopicAlias)), p.TopicAlias)
	}
	if m&(1<<PropMaximumQoS) != 0 {
		dst = append(dst, byte(PropMaximumQoS), p.MaximumQoS)
	}
	if m&(1<<PropRetainAvailable) != 0 {
		dst = append(dst, byte(PropRetainAvailable), p.RetainAvailable)
	}
	for _, u := range p.User {
		dst = append(dst, byte(PropUser))
		if dst, err = appendString(dst, u.Key); err != nil {
			return dst, err
		}
		if dst, err = appendString(dst, u.Value); err != nil {
			return dst, err
		}
	}
	if m&(1<<PropMaximumPacketSize) != 0 {
		dst = appendUint32(append(dst, byte(PropMaximumPacketSize)), p.MaximumPacketSize)
	}
	if m&(1<<PropWildcardSubAvailable) != 0 {
		dst = append(dst, byte(PropWildcardSubAvailable), p.WildcardSubAvailable)
	}
	if m&(1<<PropSubIDAvailable) != 0 {
		dst = append(dst, byte(PropSubIDAvailable), p.SubIDAvailable)
	}
	if m&(1<<PropSharedSubAvailable) != 0 {
		dst = append(dst, byte(PropSharedSubAvailable), p.SharedSubAvailable)
	}
	return insertVarInt(dst, start, len(dst)-start), nil
}

// propsEmpty reports whether no property is present, so the short forms of
// acknowledgements and DISCONNECT apply.
func propsEmpty(p *Properties) bool { return propsLen(p) == 0 }

// finish turns the body appended to dst after position start into a complete
// packet by inserting the fixed header's Remaining Length, plus extra bytes
// that the caller appends afterwards (a PUBLISH payload).
func finish(dst []byte, start, extra int) ([]byte, error) {
	rl := len(dst) - start - 1 + extra
	if rl > MaxRemainingLength {
		return dst[:start], fmt.Errorf("mqtt: packet of %d bytes exceeds the maximum remaining length", rl)
	}
	return insertVarInt(dst, start+1, rl), nil
}

// AppendTo implements Packet.
func (p *Connect) AppendTo(dst []byte, version byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, byte(CONNECT)<<4)
	name := "MQTT"
	if version == V31 {
		name = "MQIsdp"
	}
	dst, _ = appendString(dst, name)
	dst = append(dst, version)
	var flags byte
	if p.CleanStart {
		flags |= 0x02
	}
	if w := p.Will; w != nil {
		flags |= 0x04 | (w.QoS&3)<<3
		if w.Retain {
			flags |= 0x20
		}
	}
	if p.HasPassword {
		flags |= 0x40
	}
	if p.HasUsername {
		flags |= 0x80
	}
	dst = appendUint16(append(dst, flags), p.KeepAlive)
	var err error
	if version >= V5 {
		if dst, err = appendProps(dst, &p.Props); err != nil {
			return dst[:start], err
		}
	}
	if dst, err = appendString(dst, p.ClientID); err != nil {
		return dst[:start], err
	}
	if w := p.Will; w != nil {
		if version >= V5 {
			if dst, err = appendProps(dst, &w.Props); err != nil {
				return dst[:start], err
			}
		}
		if dst, err = appendString(dst, w.Topic); err != nil {
			return dst[:start], err
		}
		if dst, err = appendString(dst, w.Payload); err != nil {
			return dst[:start], err
		}
	}
	if p.HasUsername {
		if dst, err = appendString(dst, p.Username); err != nil {
			return dst[:start], err
		}
	}
	if p.HasPassword {
		if dst, err = appendString(dst, p.Password); err != nil {
			return dst[:start], err
		}
	}
	return finish(dst, start, 0)
}

// AppendTo implements Packet.
func (p *Connack) AppendTo(dst []byte, version byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, byte(CONNACK)<<4)
	var sp byte
	if p.SessionPresent {
		sp = 1
	}
	dst = append(dst, sp, byte(p.ReasonCode))
	if version >= V5 {
		var err error
		if dst, err = appendProps(dst, &p.Props); err != nil {
			return dst[:start], err
		}
	}
	return finish(dst, start, 0)
}

// AppendHeader appends everything of the PUBLISH packet except its payload;
// the Remaining Length counts len(p.Payload), which the caller writes next.
// It does not allocate when dst has room.
func (p *Publish) AppendHeader(dst []byte, version byte) ([]byte, error) {
	start := len(dst)
	h := byte(PUBLISH)<<4 | (p.QoS&3)<<1
	if p.Dup {
		h |= 0x08
	}
	if p.Retain {
		h |= 0x01
	}
	dst = append(dst, h)
	var err error
	if dst, err = appendString(dst, p.Topic); err != nil {
		return dst[:start], err
	}
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if version >= V5 {
		if dst, err = appendProps(dst, &p.Props); err != nil {
			return dst[:start], err
		}
	}
	return finish(dst, start, len(p.Payload))
}

// AppendTo implements Packet.
func (p *Publish) AppendTo(dst []byte, version byte) ([]byte, error) {
	dst, err := p.AppendHeader(dst, version)
	if err != nil {
		return dst, err
	}
	return append(dst, p.Payload...), nil
}

// PublishSize returns the encoded size of p in bytes, fixed header included,
// for checks against a Maximum Packet Size.
func PublishSize(p *Publish, version byte) int {
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if version >= V5 {
		pl := propsLen(&p.Props)
		n += varIntLen(pl) + pl
	}
	return 1 + varIntLen(n) + n
}

// propsLen is the encoded length of the properties of p, without the
// property length itself.
func propsLen(p *Properties) int {
	m := p.mask()
	if m == 0 {
		return 0
	}
	n := 0
	if m&(1<<PropPayloadFormat) != 0 {
		n += 2
	}
	if m&(1<<PropMessageExpiry) != 0 {
		n += 5
	}
	if m&(1<<PropContentType) != 0 {
		n += 3 + len(p.ContentType)
	}
	if m&(1<<PropResponseTopic) != 0 {
		n += 3 + len(p.ResponseTopic)
	}
	if m&(1<<PropCorrelationData) != 0 {
		n += 3 + len(p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		n += 1 + varIntLen(int(id))
	}
	if m&(1<<PropTopicAlias) != 0 {
		n += 3
	}
	for _, u := range p.User {
		n += 5 + len(u.Key) + len(u.Value)
	}
	// The remaining properties never appear in PUBLISH; count them anyway so
	// that the result is right for any packet.
	if m&(1<<PropSessionExpiry) != 0 {
		n += 5
	}
	if m&(1<<PropAssignedClientID) != 0 {
		n += 3 + len(p.AssignedClientID)
	}
	if m&(1<<PropServerKeepAlive) != 0 {
		n += 3
	}
	if m&(1<<PropAuthMethod) != 0 {
		n += 3 + len(p.AuthMethod)
	}
	if m&(1<<PropAuthData) != 0 {
		n += 3 + len(p.AuthData)
	}
	if m&(1<<PropRequestProblemInfo) != 0 {
		n += 2
	}
	if m&(1<<PropWillDelay) != 0 {
		n += 5
	}
	if m&(1<<PropRequestResponseInfo) != 0 {
		n += 2
	}
	if m&(1<<PropResponseInfo) != 0 {
		n += 3 + len(p.ResponseInfo)
	}
	if m&(1<<PropServerReference) != 0 {
		n += 3 + len(p.ServerReference)
	}
	if m&(1<<PropReasonString) != 0 {
		n += 3 + len(p.ReasonString)
	}
	if m&(1<<PropReceiveMaximum) != 0 {
		n += 3
	}
	if m&(1<<PropTopicAliasMaximum) != 0 {
		n += 3
	}
	if m&(1<<PropMaximumQoS) != 0 {
		n += 2
	}
	if m&(1<<PropRetainAvailable) != 0 {
		n += 2
	}
	if m&(1<<PropMaximumPacketSize) != 0 {
		n += 5
	}
	if m&(1<<PropWildcardSubAvailable) != 0 {
		n += 2
	}
	if m&(1<<PropSubIDAvailable) != 0 {
		n += 2
	}
	if m&(1<<PropSharedSubAvailable) != 0 {
		n += 2
	}
	return n
}

// AppendTo implements Packet. With reason code Success and no properties an
// MQTT 5 acknowledgement takes its short form, the packet identifier alone
// (MQTT 5.0 §3.4.2.1).
func (p *Ack) AppendTo(dst []byte, version byte) ([]byte, error) {
	start := len(dst)
	h := byte(p.Kind) << 4
	if p.Kind == PUBREL {
		h |= 0x02 // [MQTT-3.6.1-1]
	}
	dst = appendUint16(append(dst, h), p.PacketID)
	if version >= V5 && (p.ReasonCode != Success || !propsEmpty(&p.Props)) {
		dst = append(dst, byte(p.ReasonCode))
		if !propsEmpty(&p.Props) {
			var err error
			if dst, err = appendProps(dst, &p.Props); err != nil {
				return dst[:start], err
			}
		}
	}
	return finish(dst, start, 0)
}

// AppendTo implements Packet.
func (p *Subscribe) AppendTo(dst []byte, version byte) ([]byte, error) {
	start := len(dst)
	dst = appendUint16(append(dst, byte(SUBSCRIBE)<<4|0x02), p.PacketID) // [MQTT-3.8.1-1]
	var err error
	if version >= V5 {
		if dst, err = appendProps(dst, &p.Props); err != nil {
			return dst[:start], err
		}
	}
	for _, s := range p.Subscriptions {
		if dst, err = appendString(dst, s.Filter); err != nil {
			return dst[:start], err
		}
		opts := s.QoS & 3
		if version >= V5 {
			if s.NoLocal {
				opts |= 0x04
			}
			if s.RetainAsPublished {
				opts |= 0x08
			}
			opts |= (s.RetainHandling & 3) << 4
		}
		dst = append(dst, opts)
	}
	return finish(dst, start, 0)
}

// AppendTo implements Packet.
func (p *Suback) AppendTo(dst []byte, version byte) ([]byte, error) {
	start := len(dst)
	dst = appendUint16(append(dst, byte(SUBACK)<<4), p.PacketID)
	if version >= V5 {
		var err error
		if dst, err = appendProps(dst, &p.Props); err != nil {
			return dst[:start], err
		}
	}
	for _, c := range p.ReasonCodes {
		dst = append(dst, byte(c))
	}
	return finish(dst, start, 0)
}

// AppendTo implements Packet.
func (p *Unsubscribe) AppendTo(dst []byte, version byte) ([]byte, error) {
	start := len(dst)
	dst = appendUint16(append(dst, byte(UNSUBSCRIBE)<<4|0x02), p.PacketID) // [MQTT-3.10.1-1]
	var err error
	if version >= V5 {
		if dst, err = appendProps(dst, &p.Props); err != nil {
			return dst[:start], err
		}
	}
	for _, f := range p.Filters {
		if dst, err = appendString(dst, f); err != nil {
			return dst[:start], err
		}
	}
	return finish(dst, start, 0)
}

// AppendTo implements Packet. MQTT 3.1.1 UNSUBACK has no payload.
func (p *Unsuback) AppendTo(dst []byte, version byte) ([]byte, error) {
	start := len(dst)
	dst = appendUint16(append(dst, byte(UNSUBACK)<<4), p.PacketID)
	if version >= V5 {
		var err error
		if dst, err = appendProps(dst, &p.Props); err != nil {
			return dst[:start], err
		}
		for _, c := range p.ReasonCodes {
			dst = append(dst, byte(c))
		}
	}
	return finish(dst, start, 0)
}

// AppendTo implements Packet.
func (*Pingreq) AppendTo(dst []byte, _ byte) ([]byte, error) {
	return append(dst, byte(PINGREQ)<<4, 0), nil
}

// AppendTo implements Packet.
func (*Pingresp) AppendTo(dst []byte, _ byte) ([]byte, error) {
	return append(dst, byte(PINGRESP)<<4, 0), nil
}

// AppendTo implements Packet. MQTT 3.1.1 DISCONNECT, and MQTT 5 DISCONNECT
// with reason Normal disconnection and no properties, have no body
// (MQTT 5.0 §3.14.2.1).
func (p *Disconnect) AppendTo(dst []byte, version byte) ([]byte, error) {
	if version < V5 || (p.ReasonCode == NormalDisconnection && propsEmpty(&p.Props)) {
		return append(dst, byte(DISCONNECT)<<4, 0), nil
	}
	start := len(dst)
	dst = append(dst, byte(DISCONNECT)<<4, byte(p.ReasonCode))
	var err error
	if dst, err = appendProps(dst, &p.Props); err != nil {
		return dst[:start], err
	}
	return finish(dst, start, 0)
}

// AppendTo implements Packet. AUTH exists only in MQTT 5.
func (p *Auth) AppendTo(dst []byte, version byte) ([]byte, error) {
	if version < V5 {
		return dst, errors.New("mqtt: AUTH needs MQTT 5")
	}
	if p.ReasonCode == Success && propsEmpty(&p.Props) {
		return append(dst, byte(AUTH)<<4, 0), nil
	}
	start := len(dst)
	dst = append(dst, byte(AUTH)<<4, byte(p.ReasonCode))
	var err error
	if dst, err = appendProps(dst, &p.Props); err != nil {
		return dst[:start], err
	}
	return finish(dst, start, 0)
}
