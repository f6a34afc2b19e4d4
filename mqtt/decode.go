package mqtt

import (
	"io"
	"unicode/utf8"
)

// propAllowed lists, per packet type, the properties it may carry (MQTT 5.0
// §2.2.2.2). Index 0 is used for will properties.
var propAllowed = func() [16]uint64 {
	var a [16]uint64
	set := func(id PropID, where ...PacketType) {
		for _, t := range where {
			a[t] |= 1 << id
		}
	}
	const will = PacketType(0)
	set(PropPayloadFormat, PUBLISH, will)
	set(PropMessageExpiry, PUBLISH, will)
	set(PropContentType, PUBLISH, will)
	set(PropResponseTopic, PUBLISH, will)
	set(PropCorrelationData, PUBLISH, will)
	set(PropSubscriptionID, PUBLISH, SUBSCRIBE)
	set(PropSessionExpiry, CONNECT, CONNACK, DISCONNECT)
	set(PropAssignedClientID, CONNACK)
	set(PropServerKeepAlive, CONNACK)
	set(PropAuthMethod, CONNECT, CONNACK, AUTH)
	set(PropAuthData, CONNECT, CONNACK, AUTH)
	set(PropRequestProblemInfo, CONNECT)
	set(PropWillDelay, will)
	set(PropRequestResponseInfo, CONNECT)
	set(PropResponseInfo, CONNACK)
	set(PropServerReference, CONNACK, DISCONNECT)
	set(PropReasonString, CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH)
	set(PropReceiveMaximum, CONNECT, CONNACK)
	set(PropTopicAliasMaximum, CONNECT, CONNACK)
	set(PropTopicAlias, PUBLISH)
	set(PropMaximumQoS, CONNACK)
	set(PropRetainAvailable, CONNACK)
	set(PropUser, will, CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH)
	set(PropMaximumPacketSize, CONNECT, CONNACK)
	set(PropWildcardSubAvailable, CONNACK)
	set(PropSubIDAvailable, CONNACK)
	set(PropSharedSubAvailable, CONNACK)
	return a
}()

// knownProps has a bit for every property identifier MQTT 5 defines.
var knownProps = func() uint64 {
	var m uint64
	for _, a := range propAllowed {
		m |= a
	}
	return m
}()

// decoder reads the fields of one packet body. The first error sticks; every
// read after it returns zero values.
type decoder struct {
	b   []byte
	off int
	err *Error
	// r, when set, interns topic strings so that topics seen before are not
	// allocated again.
	r *Reader
}

func (d *decoder) fail(code ReasonCode, format string, args ...any) {
	if d.err == nil {
		d.err = Errorf(code, format, args...)
	}
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) u8() byte {
	if d.err != nil {
		return 0
	}
	if d.left() < 1 {
		d.fail(MalformedPacket, "packet ends inside a field")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16() uint16 {
	if d.err != nil {
		return 0
	}
	if d.left() < 2 {
		d.fail(MalformedPacket, "packet ends inside a two-byte integer")
		return 0
	}
	v := uint16(d.b[d.off])<<8 | uint16(d.b[d.off+1])
	d.off += 2
	return v
}

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if d.left() < 4 {
		d.fail(MalformedPacket, "packet ends inside a four-byte integer")
		return 0
	}
	b := d.b[d.off:]
	d.off += 4
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// varInt reads a Variable Byte Integer of at most four bytes [MQTT-1.5.5-1].
func (d *decoder) varInt() uint32 {
	var v uint32
	for i := 0; i < 4; i++ {
		b := d.u8()
		if d.err != nil {
			return 0
		}
		v |= uint32(b&0x7F) << (7 * i)
		if b&0x80 == 0 {
			return v
		}
	}
	d.fail(MalformedPacket, "variable byte integer longer than four bytes")
	return 0
}

// bin reads Binary Data: a two-byte length and the bytes, aliasing the buffer.
func (d *decoder) bin() []byte {
	n := int(d.u16())
	if d.err != nil {
		return nil
	}
	if d.left() < n {
		d.fail(MalformedPacket, "string or binary data runs past the end of the packet")
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

// strBytes reads a UTF-8 Encoded String and validates it: well-formed UTF-8
// without U+0000 [MQTT-1.5.4-1][MQTT-1.5.4-2].
func (d *decoder) strBytes() []byte {
	b := d.bin()
	if d.err != nil {
		return nil
	}
	if !validUTF8(b) {
		d.fail(MalformedPacket, "invalid UTF-8 string")
		return nil
	}
	return b
}

func (d *decoder) str() string { return string(d.strBytes()) }

// validUTF8 reports whether b is well-formed UTF-8 without U+0000.
func validUTF8(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.Valid(b[i:]) && noNull(b[i:])
		}
	}
	return true
}

func noNull(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return false
		}
	}
	return true
}

// props reads a property block into p, accepting only the properties allowed
// for packet type t (0 for will properties).
func (d *decoder) props(p *Properties, t PacketType) {
	n := int(d.varInt())
	if d.err != nil {
		return
	}
	if d.left() < n {
		d.fail(MalformedPacket, "property length %d runs past the end of the packet", n)
		return
	}
	end := d.off + n
	outer := d.b
	d.b = d.b[:end]
	defer func() { d.b = outer }()
	for d.off < end && d.err == nil {
		id := PropID(d.varInt())
		if d.err != nil {
			return
		}
		if id >= 64 || knownProps&(1<<id) == 0 {
			d.fail(MalformedPacket, "unknown property identifier 0x%02X", byte(id))
			return
		}
		if propAllowed[t]&(1<<id) == 0 {
			d.fail(ProtocolError, "property 0x%02X not allowed in %s", byte(id), packetContext(t))
			return
		}
		repeatable := id == PropUser || (id == PropSubscriptionID && t == PUBLISH)
		if p.Present&(1<<id) != 0 && !repeatable {
			d.fail(ProtocolError, "property 0x%02X appears twice", byte(id)) // MQTT 5.0 §2.2.2.2
			return
		}
		p.Present |= 1 << id
		switch id {
		case PropPayloadFormat:
			p.PayloadFormat = d.flag(id)
		case PropMessageExpiry:
			p.MessageExpiry = d.u32()
		case PropContentType:
			p.ContentType = d.str()
		case PropResponseTopic:
			rt := d.strBytes()
			if d.err == nil && (len(rt) == 0 || hasWildcard(rt)) {
				d.fail(ProtocolError, "response topic is not a valid topic name") // [MQTT-3.3.2-14]
			}
			p.ResponseTopic = string(rt)
		case PropCorrelationData:
			p.CorrelationData = d.bin()
		case PropSubscriptionID:
			v := d.varInt()
			if d.err == nil && v == 0 {
				d.fail(ProtocolError, "subscription identifier 0") // MQTT 5.0 §3.8.2.1.2
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, v)
		case PropSessionExpiry:
			p.SessionExpiry = d.u32()
		case PropAssignedClientID:
			p.AssignedClientID = d.str()
		case PropServerKeepAlive:
			p.ServerKeepAlive = d.u16()
		case PropAuthMethod:
			p.AuthMethod = d.str()
		case PropAuthData:
			p.AuthData = d.bin()
		case PropRequestProblemInfo:
			p.RequestProblemInfo = d.flag(id)
		case PropWillDelay:
			p.WillDelay = d.u32()
		case PropRequestResponseInfo:
			p.RequestResponseInfo = d.flag(id)
		case PropResponseInfo:
			p.ResponseInfo = d.str()
		case PropServerReference:
			p.ServerReference = d.str()
		case PropReasonString:
			p.ReasonString = d.str()
		case PropReceiveMaximum:
			p.ReceiveMaximum = d.u16()
			if d.err == nil && p.ReceiveMaximum == 0 {
				d.fail(ProtocolError, "receive maximum 0") // MQTT 5.0 §3.1.2.11.3
			}
		case PropTopicAliasMaximum:
			p.TopicAliasMaximum = d.u16()
		case PropTopicAlias:
			p.TopicAlias = d.u16()
			if d.err == nil && p.TopicAlias == 0 {
				d.fail(TopicAliasInvalid, "topic alias 0") // [MQTT-3.3.2-8]
			}
		case PropMaximumQoS:
			p.MaximumQoS = d.flag(id)
		case PropRetainAvailable:
			p.RetainAvailable = d.flag(id)
		case PropUser:
			k := d.str()
			v := d.str()
			p.User = append(p.User, UserProperty{Key: k, Value: v})
		case PropMaximumPacketSize:
			p.MaximumPacketSize = d.u32()
			if d.err == nil && p.MaximumPacketSize == 0 {
				d.fail(ProtocolError, "maximum packet size 0") // MQTT 5.0 §3.1.2.11.4
			}
		case PropWildcardSubAvailable:
			p.WildcardSubAvailable = d.flag(id)
		case PropSubIDAvailable:
			p.SubIDAvailable = d.flag(id)
		case PropSharedSubAvailable:
			p.SharedSubAvailable = d.flag(id)
		}
	}
	if d.err == nil && d.off != end {
		d.fail(MalformedPacket, "property runs past the property length")
	}
}

// flag reads a one-byte property that may only be 0 or 1.
func (d *decoder) flag(id PropID) byte {
	v := d.u8()
	if d.err == nil && v > 1 {
		d.fail(ProtocolError, "property 0x%02X has value %d, not 0 or 1", byte(id), v)
	}
	return v
}

func packetContext(t PacketType) string {
	if t == 0 {
		return "will properties"
	}
	return t.String()
}

func hasWildcard(b []byte) bool {
	for _, c := range b {
		if c == '+' || c == '#' {
			return true
		}
	}
	return false
}

// done checks that the whole body was consumed.
func (d *decoder) done(t PacketType) {
	if d.err == nil && d.off != len(d.b) {
		d.fail(MalformedPacket, "%d unexpected bytes at the end of %s", len(d.b)-d.off, t)
	}
}

// packetID reads a non-zero packet identifier [MQTT-2.2.1-3].
func (d *decoder) packetID(t PacketType) uint16 {
	id := d.u16()
	if d.err == nil && id == 0 {
		d.fail(ProtocolError, "packet identifier 0 in %s", t)
	}
	return id
}

// checkFlags validates the fixed header flags of every type but PUBLISH
// [MQTT-2.1.3-1].
func checkFlags(t PacketType, flags byte) *Error {
	want := byte(0)
	if t == PUBREL || t == SUBSCRIBE || t == UNSUBSCRIBE {
		want = 0x02 // [MQTT-3.6.1-1][MQTT-3.8.1-1][MQTT-3.10.1-1]
	}
	if t != PUBLISH && flags != want {
		return Errorf(MalformedPacket, "reserved flags 0x%X in %s", flags, t)
	}
	return nil
}

// decodeBody decodes the body of one packet whose fixed header byte is h. The
// result may alias body. With a Reader, its Publish (and, with ReuseAcks, its
// Ack) is reused.
func decodeBody(h byte, body []byte, version byte, r *Reader) (Packet, error) {
	t := PacketType(h >> 4)
	flags := h & 0x0F
	if t == 0 {
		return nil, Errorf(MalformedPacket, "reserved packet type 0")
	}
	if err := checkFlags(t, flags); err != nil {
		return nil, err
	}
	if t != CONNECT && version == 0 {
		return nil, Errorf(ProtocolError, "%s before CONNECT", t) // [MQTT-3.1.0-1]
	}
	if t == AUTH && version < V5 {
		return nil, Errorf(MalformedPacket, "AUTH in MQTT 3.1.1")
	}
	d := &decoder{b: body, r: r}
	v5 := version >= V5
	var pkt Packet
	switch t {
	case CONNECT:
		return decodeConnect(d)
	case PUBLISH:
		var p *Publish
		if r != nil {
			if r.pub == nil {
				r.pub = new(Publish)
			}
			p = r.pub
		} else {
			p = new(Publish)
		}
		user, ids := p.Props.User[:0], p.Props.SubscriptionIDs[:0]
		*p = Publish{Dup: flags&0x08 != 0, QoS: (flags >> 1) & 3, Retain: flags&0x01 != 0}
		p.Props.User, p.Props.SubscriptionIDs = user, ids
		if p.QoS == 3 {
			return nil, Errorf(MalformedPacket, "PUBLISH with QoS 3") // [MQTT-3.3.1-4]
		}
		if p.QoS == 0 && p.Dup {
			return nil, Errorf(MalformedPacket, "DUP set on a QoS 0 PUBLISH") // [MQTT-3.3.1-2]
		}
		tb := d.strBytes()
		if d.err == nil && hasWildcard(tb) {
			return nil, Errorf(TopicNameInvalid, "wildcard in PUBLISH topic %q", tb) // [MQTT-3.3.2-2]
		}
		if d.r != nil {
			p.Topic = d.r.intern(tb)
		} else {
			p.Topic = string(tb)
		}
		if p.QoS > 0 {
			p.PacketID = d.packetID(t)
		}
		if v5 {
			d.props(&p.Props, PUBLISH)
		}
		if d.err == nil && p.Topic == "" && (!v5 || p.Props.TopicAlias == 0) {
			d.fail(ProtocolError, "empty topic name without topic alias") // [MQTT-3.3.2-1]
		}
		if len(p.Props.User) == 0 {
			p.Props.User = user[:0]
		}
		if d.err == nil {
			p.Payload = d.b[d.off:len(d.b):len(d.b)]
			d.off = len(d.b)
		}
		pkt = p
	case CONNACK:
		p := &Connack{}
		ackFlags := d.u8()
		if d.err == nil && ackFlags&0xFE != 0 {
			d.fail(MalformedPacket, "reserved CONNACK flags") // [MQTT-3.2.2-1]
		}
		p.SessionPresent = ackFlags&1 == 1
		p.ReasonCode = ReasonCode(d.u8())
		if v5 {
			d.props(&p.Props, CONNACK)
		}
		pkt = p
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		var p *Ack
		if r != nil && r.ReuseAcks {
			if r.ack == nil {
				r.ack = new(Ack)
			}
			p = r.ack
			*p = Ack{Kind: t, PacketID: d.packetID(t)}
		} else {
			p = &Ack{Kind: t, PacketID: d.packetID(t)}
		}
		if v5 && d.left() > 0 {
			p.ReasonCode = ReasonCode(d.u8())
			if d.left() > 0 {
				d.props(&p.Props, t)
			}
		}
		pkt = p
	case SUBSCRIBE:
		p := &Subscribe{PacketID: d.packetID(t)}
		if v5 {
			d.props(&p.Props, SUBSCRIBE)
			if len(p.Props.SubscriptionIDs) > 1 {
				d.fail(ProtocolError, "more than one subscription identifier in SUBSCRIBE")
			}
		}
		for d.err == nil && d.left() > 0 {
			f := d.str()
			o := d.u8()
			if d.err != nil {
				break
			}
			s := Subscription{Filter: f, QoS: o & 3}
			if s.QoS == 3 {
				d.fail(MalformedPacket, "subscription QoS 3") // [MQTT-3.8.3-4]
				break
			}
			if v5 {
				s.NoLocal = o&0x04 != 0
				s.RetainAsPublished = o&0x08 != 0
				s.RetainHandling = (o >> 4) & 3
				if o&0xC0 != 0 {
					d.fail(MalformedPacket, "reserved subscription option bits") // [MQTT-3.8.3-5]
					break
				}
				if s.RetainHandling == 3 {
					d.fail(ProtocolError, "retain handling 3") // MQTT 5.0 §3.8.3.1
					break
				}
			} else if o&0xFC != 0 {
				d.fail(MalformedPacket, "reserved subscription option bits") // 3.1.1 [MQTT-3-8.3-4]
				break
			}
			p.Subscriptions = append(p.Subscriptions, s)
		}
		if d.err == nil && len(p.Subscriptions) == 0 {
			d.fail(ProtocolError, "SUBSCRIBE without topic filters") // [MQTT-3.8.3-2]
		}
		pkt = p
	case SUBACK:
		p := &Suback{PacketID: d.packetID(t)}
		if v5 {
			d.props(&p.Props, SUBACK)
		}
		for d.err == nil && d.left() > 0 {
			p.ReasonCodes = append(p.ReasonCodes, ReasonCode(d.u8()))
		}
		pkt = p
	case UNSUBSCRIBE:
		p := &Unsubscribe{PacketID: d.packetID(t)}
		if v5 {
			d.props(&p.Props, UNSUBSCRIBE)
		}
		for d.err == nil && d.left() > 0 {
			p.Filters = append(p.Filters, d.str())
		}
		if d.err == nil && len(p.Filters) == 0 {
			d.fail(ProtocolError, "UNSUBSCRIBE without topic filters") // [MQTT-3.10.3-2]
		}
		pkt = p
	case UNSUBACK:
		p := &Unsuback{PacketID: d.packetID(t)}
		if v5 {
			d.props(&p.Props, UNSUBACK)
			for d.err == nil && d.left() > 0 {
				p.ReasonCodes = append(p.ReasonCodes, ReasonCode(d.u8()))
			}
		}
		pkt = p
	case PINGREQ:
		pkt = &Pingreq{}
	case PINGRESP:
		pkt = &Pingresp{}
	case DISCONNECT:
		p := &Disconnect{}
		if v5 && d.left() > 0 {
			p.ReasonCode = ReasonCode(d.u8())
			if d.left() > 0 {
				d.props(&p.Props, DISCONNECT)
			}
		}
		pkt = p
	case AUTH:
		p := &Auth{}
		if d.left() > 0 {
			p.ReasonCode = ReasonCode(d.u8())
			if d.left() > 0 {
				d.props(&p.Props, AUTH)
			}
		}
		pkt = p
	}
	d.done(t)
	if d.err != nil {
		return nil, d.err
	}
	return pkt, nil
}

// decodeConnect decodes a CONNECT body (MQTT 5.0 §3.1, 3.1.1 §3.1). On an
// unsupported protocol level it returns the partly decoded packet together
// with the error, so the caller can answer in the right version.
func decodeConnect(d *decoder) (Packet, error) {
	p := &Connect{}
	p.ProtocolName = d.str()
	p.Version = d.u8()
	if d.err != nil {
		return nil, d.err
	}
	switch {
	case p.ProtocolName == "MQTT" && (p.Version == V311 || p.Version == V5):
	case p.ProtocolName == "MQIsdp" && p.Version == V31:
	case p.ProtocolName == "MQTT" || p.ProtocolName == "MQIsdp":
		return p, Errorf(UnsupportedProtocolVersion, "protocol level %d", p.Version) // [MQTT-3.1.2-2]
	default:
		return p, Errorf(UnsupportedProtocolVersion, "protocol name %q", p.ProtocolName) // [MQTT-3.1.2-1]
	}
	flags := d.u8()
	if d.err == nil && flags&0x01 != 0 {
		return p, Errorf(MalformedPacket, "reserved CONNECT flag set") // [MQTT-3.1.2-3]
	}
	p.CleanStart = flags&0x02 != 0
	willFlag := flags&0x04 != 0
	willQoS := (flags >> 3) & 3
	willRetain := flags&0x20 != 0
	p.HasPassword = flags&0x40 != 0
	p.HasUsername = flags&0x80 != 0
	if !willFlag && (willQoS != 0 || willRetain) {
		return p, Errorf(MalformedPacket, "will QoS or retain without will flag") // [MQTT-3.1.2-11][MQTT-3.1.2-13]
	}
	if willQoS == 3 {
		return p, Errorf(MalformedPacket, "will QoS 3") // [MQTT-3.1.2-12]
	}
	if p.Version < V5 && p.HasPassword && !p.HasUsername {
		return p, Errorf(MalformedPacket, "password without user name") // 3.1.1 [MQTT-3.1.2-22]
	}
	p.KeepAlive = d.u16()
	v5 := p.Version >= V5
	if v5 {
		d.props(&p.Props, CONNECT)
	}
	p.ClientID = d.str()
	if willFlag {
		w := &Will{QoS: willQoS, Retain: willRetain}
		if v5 {
			d.props(&w.Props, 0)
		}
		tb := d.strBytes()
		if d.err == nil && (len(tb) == 0 || hasWildcard(tb)) {
			d.fail(TopicNameInvalid, "will topic %q is not a valid topic name", tb)
		}
		w.Topic = string(tb)
		w.Payload = d.bin()
		p.Will = w
	}
	if p.HasUsername {
		p.Username = d.str()
	}
	if p.HasPassword {
		p.Password = d.bin()
	}
	d.done(CONNECT)
	if d.err != nil {
		return p, d.err
	}
	return p, nil
}

// Decode decodes the one packet at the front of b, fixed header included,
// for protocol level version (0 before CONNECT), and reports how many bytes
// it used. The packet's byte slices alias b. If b holds less than a whole
// packet, the error is io.ErrUnexpectedEOF.
func Decode(b []byte, version byte) (Packet, int, error) {
	if len(b) < 2 {
		return nil, 0, io.ErrUnexpectedEOF
	}
	var rl, i int
	for i = 1; ; i++ {
		if i > 4 {
			return nil, 0, Errorf(MalformedPacket, "remaining length longer than four bytes") // [MQTT-1.5.5-1]
		}
		if i >= len(b) {
			return nil, 0, io.ErrUnexpectedEOF
		}
		rl |= int(b[i]&0x7F) << (7 * (i - 1))
		if b[i]&0x80 == 0 {
			break
		}
	}
	n := i + 1 + rl
	if len(b) < n {
		return nil, 0, io.ErrUnexpectedEOF
	}
	pkt, err := decodeBody(b[0], b[i+1:n], version, nil)
	return pkt, n, err
}
