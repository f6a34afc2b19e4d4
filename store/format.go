package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// The record format. Keys begin with one byte naming the kind of record:
//
//	's' clientID                  → session: JSON of Session
//	'q' clientID 0x00 seq(8, BE)  → queue entry
//	'i' clientID 0x00 pid(2, BE)  → inbound QoS 2 packet identifier awaiting PUBREL (empty body)
//	'l' clientID                  → a mesh link's last received sequence number (body: 8 bytes, BE)
//	'w' clientID                  → will
//	'r' topic                     → retained message
//	0x00 "format"                 → the format marker, formatMarker
//
// MQTT client identifiers and topic names never contain U+0000
// [MQTT-1.5.4-2], so 0x00 ends a client identifier inside a key and the
// entries of one client sort together, by seq.
//
// Every value is a body followed by the CRC-32C (Castagnoli) of the body,
// little endian, so that a damaged record is detected when it is read, beyond
// the engine's own block checksums. Message bodies are:
//
//	flags     byte: 1 released (entries), 2 retain
//	expires   uvarint, Unix nanoseconds, 0 for never
//	share     uvarint length + bytes (entries; empty otherwise)
//	delay     uvarint (wills; 0 otherwise)
//	at        uvarint, Unix nanoseconds (wills: when due; queue
//	          entries: when the entry was queued, 0 if written before that was kept)
//	publish   the message as an MQTT 5 PUBLISH packet (topic, QoS, properties,
//	          payload), absent for released entries
//
// so the message itself is encoded by package mqtt's codec, which is fuzzed.
const (
	kindSession  = 's'
	kindQueue    = 'q'
	kindInbound  = 'i'
	kindLinkSeq  = 'l'
	kindWill     = 'w'
	kindRetained = 'r'
	kindMeta     = 0x00
)

// formatMarker identifies the record format; a store written in another
// format is refused rather than misread.
const formatMarker = "citymesh-store/1"

var formatKey = []byte("\x00format")

const (
	flagReleased = 1 << iota
	flagRetain
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// sealValue appends the checksum of dst[start:] to dst.
func sealValue(dst []byte, start int) []byte {
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// openValue verifies a value's checksum and returns its body.
func openValue(v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("%d bytes, shorter than its checksum", len(v))
	}
	body, sum := v[:len(v)-4], binary.LittleEndian.Uint32(v[len(v)-4:])
	if got := crc32.Checksum(body, crcTable); got != sum {
		return nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", sum, got)
	}
	return body, nil
}

func appendSessionKey(dst []byte, clientID string) []byte {
	return append(append(dst, kindSession), clientID...)
}

func appendQueueKey(dst []byte, clientID string, seq uint64) []byte {
	dst = append(append(append(dst, kindQueue), clientID...), 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func appendInboundKey(dst []byte, clientID string, pid uint16) []byte {
	dst = append(append(append(dst, kindInbound), clientID...), 0)
	return binary.BigEndian.AppendUint16(dst, pid)
}

func appendLinkSeqKey(dst []byte, clientID string) []byte {
	return append(append(dst, kindLinkSeq), clientID...)
}

func appendWillKey(dst []byte, clientID string) []byte {
	return append(append(dst, kindWill), clientID...)
}

func appendRetainedKey(dst []byte, topic string) []byte {
	return append(append(dst, kindRetained), topic...)
}

// clientRange returns the bounds of every key of kind for clientID.
func clientRange(kind byte, clientID string) (lower, upper []byte) {
	lower = append(append([]byte{kind}, clientID...), 0)
	upper = append(append([]byte{kind}, clientID...), 1)
	return lower, upper
}

// kindRange returns the bounds of every key of kind.
func kindRange(kind byte) (lower, upper []byte) { return []byte{kind}, []byte{kind + 1} }

// splitClientKey splits a queue or inbound key into client identifier and the
// suffix after the 0x00; n is the suffix length.
func splitClientKey(key []byte, n int) (clientID string, suffix []byte, err error) {
	if len(key) < 2+n || key[len(key)-n-1] != 0 {
		return "", nil, errors.New("malformed key")
	}
	return string(key[1 : len(key)-n-1]), key[len(key)-n:], nil
}

// describeKey names a key for people: its kind and its parts.
func describeKey(key []byte) string {
	if len(key) == 0 {
		return "(empty key)"
	}
	switch key[0] {
	case kindSession:
		return "session " + strconv.Quote(string(key[1:]))
	case kindWill:
		return "will of " + strconv.Quote(string(key[1:]))
	case kindLinkSeq:
		return "link sequence of " + strconv.Quote(string(key[1:]))
	case kindRetained:
		return "retained message " + strconv.Quote(string(key[1:]))
	case kindQueue:
		if id, suf, err := splitClientKey(key, 8); err == nil {
			return fmt.Sprintf("queue entry %d of %q", binary.BigEndian.Uint64(suf), id)
		}
	case kindInbound:
		if id, suf, err := splitClientKey(key, 2); err == nil {
			return fmt.Sprintf("inbound QoS 2 packet %d of %q", binary.BigEndian.Uint16(suf), id)
		}
	}
	return strconv.Quote(string(key))
}

// record is the decoded body of a message-bearing value.
type record struct {
	flags   byte
	expires time.Time
	share   string
	delay   uint32
	at      time.Time
	pub     *mqtt.Publish // nil for released entries
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendUvarint(dst, 0)
	}
	return binary.AppendUvarint(dst, uint64(t.UnixNano()))
}

// appendRecord appends the sealed encoding of r.
func appendRecord(dst []byte, r *record) ([]byte, error) {
	start := len(dst)
	dst = append(dst, r.flags)
	dst = appendTime(dst, r.expires)
	dst = binary.AppendUvarint(dst, uint64(len(r.share)))
	dst = append(dst, r.share...)
	dst = binary.AppendUvarint(dst, uint64(r.delay))
	dst = appendTime(dst, r.at)
	if r.pub != nil {
		var err error
		if dst, err = r.pub.AppendTo(dst, mqtt.V5); err != nil {
			return dst[:start], fmt.Errorf("store: encode message on %q: %w", r.pub.Topic, err)
		}
	}
	return sealValue(dst, start), nil
}

// publishOf builds the PUBLISH that carries m in a record. A stored QoS 1 or
// 2 PUBLISH carries packet identifier 1: the broker derives the real one from
// the entry's Seq.
func publishOf(m *Message, retain bool, subIDs []uint32) *mqtt.Publish {
	p := &mqtt.Publish{QoS: m.QoS, Retain: retain, Topic: m.Topic, Payload: m.Payload}
	if m.QoS > 0 {
		p.PacketID = 1
	}
	if m.Props != nil {
		p.Props = *m.Props
	}
	p.Props.SubscriptionIDs = subIDs
	return p
}

type decodeBuf struct{ b []byte }

func (d *decodeBuf) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, errors.New("truncated or overlong varint")
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decodeBuf) time() (time.Time, error) {
	v, err := d.uvarint()
	if err != nil || v == 0 {
		return time.Time{}, err
	}
	if v > 1<<63-1 {
		return time.Time{}, errors.New("time out of range")
	}
	return time.Unix(0, int64(v)), nil
}

// decodeRecord decodes a sealed message-bearing value. The returned record
// owns its memory; v may be reused.
func decodeRecord(v []byte) (*record, error) {
	body, err := openValue(v)
	if err != nil {
		return nil, err
	}
	if len(body) < 1 {
		return nil, errors.New("empty body")
	}
	r := &record{flags: body[0]}
	d := decodeBuf{body[1:]}
	if r.expires, err = d.time(); err != nil {
		return nil, fmt.Errorf("expiry: %w", err)
	}
	n, err := d.uvarint()
	if err != nil || n > uint64(len(d.b)) {
		return nil, errors.New("share: bad length")
	}
	r.share, d.b = string(d.b[:n]), d.b[n:]
	delay, err := d.uvarint()
	if err != nil || delay > 1<<32-1 {
		return nil, errors.New("will delay: bad value")
	}
	r.delay = uint32(delay)
	if r.at, err = d.time(); err != nil {
		return nil, fmt.Errorf("will time: %w", err)
	}
	if len(d.b) == 0 {
		if r.flags&flagReleased == 0 {
			return nil, errors.New("no message")
		}
		return r, nil
	}
	pkt, used, err := mqtt.Decode(d.b, mqtt.V5)
	if err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	if used != len(d.b) {
		return nil, fmt.Errorf("%d bytes after the message", len(d.b)-used)
	}
	p, ok := pkt.(*mqtt.Publish)
	if !ok {
		return nil, fmt.Errorf("message is a %s, not a PUBLISH", pkt.Type())
	}
	p.Payload = cloneBytes(p.Payload)
	p.Props.CorrelationData = cloneBytes(p.Props.CorrelationData)
	r.pub = p
	return r, nil
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// messageOf returns the Message a decoded PUBLISH carries.
func messageOf(p *mqtt.Publish, expires time.Time) Message {
	m := Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Expires: expires}
	props := p.Props
	props.SubscriptionIDs = nil
	props.Present &^= 1 << mqtt.PropSubscriptionID
	if props.Mask() != 0 {
		m.Props = &props
	}
	return m
}

func encodeEntry(dst []byte, e *Entry) ([]byte, error) {
	r := record{expires: e.Message.Expires, share: e.Share, at: e.Queued}
	if e.Retain {
		r.flags |= flagRetain
	}
	if e.Released {
		r.flags |= flagReleased
	} else {
		r.pub = publishOf(&e.Message, e.Retain, e.SubIDs)
	}
	return appendRecord(dst, &r)
}

func decodeEntry(seq uint64, v []byte) (Entry, error) {
	r, err := decodeRecord(v)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Seq: seq, Retain: r.flags&flagRetain != 0, Released: r.flags&flagReleased != 0, Share: r.share, Queued: r.at}
	if r.pub != nil && !e.Released {
		e.Message = messageOf(r.pub, r.expires)
		e.SubIDs = r.pub.Props.SubscriptionIDs
	}
	return e, nil
}

func encodeRetained(dst []byte, m *Message) ([]byte, error) {
	return appendRecord(dst, &record{flags: flagRetain, expires: m.Expires, pub: publishOf(m, true, nil)})
}

func decodeRetained(v []byte) (Message, error) {
	r, err := decodeRecord(v)
	if err != nil {
		return Message{}, err
	}
	if r.pub == nil {
		return Message{}, errors.New("no message")
	}
	return messageOf(r.pub, r.expires), nil
}

func encodeWill(dst []byte, w *Will) ([]byte, error) {
	r := record{expires: w.Message.Expires, delay: w.Delay, at: w.At, pub: publishOf(&w.Message, w.Retain, nil)}
	if w.Retain {
		r.flags |= flagRetain
	}
	return appendRecord(dst, &r)
}

func decodeWill(clientID string, v []byte) (Will, error) {
	r, err := decodeRecord(v)
	if err != nil {
		return Will{}, err
	}
	if r.pub == nil {
		return Will{}, errors.New("no message")
	}
	return Will{ClientID: clientID, Message: messageOf(r.pub, r.expires), Retain: r.flags&flagRetain != 0, Delay: r.delay, At: r.at}, nil
}

func encodeSession(dst []byte, s *Session) ([]byte, error) {
	start := len(dst)
	b, err := json.Marshal(s)
	if err != nil {
		return dst, fmt.Errorf("store: encode session %q: %w", s.ClientID, err)
	}
	return sealValue(append(dst, b...), start), nil
}

func decodeSession(v []byte) (Session, error) {
	body, err := openValue(v)
	if err != nil {
		return Session{}, err
	}
	var s Session
	if err := json.Unmarshal(body, &s); err != nil {
		return Session{}, err
	}
	return s, nil
}
