package mqtt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// samplePackets returns one packet of every type, with properties where the
// version has them.
func samplePackets(v byte) []Packet {
	var props, msgProps Properties
	if v >= V5 {
		props = Properties{ReasonString: "why", User: []UserProperty{{"k", "v"}, {"k", "w"}}}
		msgProps = Properties{PayloadFormat: 1, MessageExpiry: 60, ContentType: "application/json",
			ResponseTopic: "reply/to", CorrelationData: []byte{1, 2}, User: []UserProperty{{"a", "b"}},
			TopicAlias: 3, SubscriptionIDs: []uint32{1, 268435455}}
	}
	connect := &Connect{Version: v, CleanStart: true, KeepAlive: 30, ClientID: "client-1",
		Will:     &Will{QoS: 1, Retain: true, Topic: "will/topic", Payload: []byte("bye")},
		Username: "user", HasUsername: true, Password: []byte("secret"), HasPassword: true}
	connack := &Connack{SessionPresent: true}
	if v >= V5 {
		connect.Props = Properties{SessionExpiry: 3600, ReceiveMaximum: 100, MaximumPacketSize: 1 << 20,
			TopicAliasMaximum: 10, RequestResponseInfo: 1, User: []UserProperty{{"x", "y"}}}
		connect.Props.Set(PropRequestProblemInfo)
		connect.Will.Props = Properties{WillDelay: 5, ContentType: "text/plain"}
		connack.Props = Properties{AssignedClientID: "id", ServerKeepAlive: 10, ReceiveMaximum: 20, TopicAliasMaximum: 5}
		connack.Props.Set(PropMaximumQoS)
		connack.Props.Set(PropRetainAvailable)
	}
	ack := func(k PacketType) *Ack {
		a := &Ack{Kind: k, PacketID: 7}
		if v >= V5 {
			a.ReasonCode = NoMatchingSubscribers
			a.Props = props
		}
		return a
	}
	sub := &Subscribe{PacketID: 9, Subscriptions: []Subscription{{Filter: "a/+/c", QoS: 1}, {Filter: "d/#", QoS: 2}}}
	unsuback := &Unsuback{PacketID: 11}
	disconnect := &Disconnect{}
	if v >= V5 {
		sub.Props = Properties{SubscriptionIDs: []uint32{42}}
		sub.Subscriptions[1].NoLocal = true
		sub.Subscriptions[1].RetainAsPublished = true
		sub.Subscriptions[1].RetainHandling = 2
		unsuback.ReasonCodes = []ReasonCode{Success, NoSubscriptionExisted}
		unsuback.Props = props
		disconnect = &Disconnect{ReasonCode: SessionTakenOver, Props: props}
	}
	pkts := []Packet{
		connect, connack,
		&Publish{QoS: 0, Topic: "a/b", Payload: []byte("zero"), Props: msgProps},
		&Publish{QoS: 1, Dup: true, Retain: true, Topic: "a/b", PacketID: 1, Payload: []byte("one"), Props: msgProps},
		&Publish{QoS: 2, Topic: "a/b", PacketID: 65535, Payload: nil},
		ack(PUBACK), ack(PUBREC), ack(PUBREL), ack(PUBCOMP),
		sub,
		&Suback{PacketID: 9, ReasonCodes: []ReasonCode{GrantedQoS1, 0x80}, Props: props},
		&Unsubscribe{PacketID: 11, Filters: []string{"a/+/c", "d/#"}, Props: Properties{User: props.User}},
		unsuback,
		&Pingreq{}, &Pingresp{}, disconnect,
	}
	if v >= V5 {
		pkts = append(pkts, &Auth{ReasonCode: ContinueAuthentication, Props: Properties{AuthMethod: "SCRAM", AuthData: []byte{9}}})
	}
	return pkts
}

// normalize clears what a decoder fills in that an encoder leaves implicit,
// so that packets can be compared.
func normalize(p Packet) Packet {
	clean := func(pr *Properties) {
		pr.Present = 0
		if len(pr.User) == 0 {
			pr.User = nil
		}
		if len(pr.SubscriptionIDs) == 0 {
			pr.SubscriptionIDs = nil
		}
		if len(pr.CorrelationData) == 0 {
			pr.CorrelationData = nil
		}
		if len(pr.AuthData) == 0 {
			pr.AuthData = nil
		}
	}
	switch x := p.(type) {
	case *Connect:
		c := *x
		clean(&c.Props)
		if c.ProtocolName == "" {
			c.ProtocolName = "MQTT"
		}
		if c.Will != nil {
			w := *c.Will
			clean(&w.Props)
			c.Will = &w
		}
		return &c
	case *Connack:
		c := *x
		clean(&c.Props)
		return &c
	case *Publish:
		c := *x
		clean(&c.Props)
		if len(c.Payload) == 0 {
			c.Payload = nil
		}
		return &c
	case *Ack:
		c := *x
		clean(&c.Props)
		return &c
	case *Subscribe:
		c := *x
		clean(&c.Props)
		return &c
	case *Suback:
		c := *x
		clean(&c.Props)
		return &c
	case *Unsubscribe:
		c := *x
		clean(&c.Props)
		return &c
	case *Unsuback:
		c := *x
		clean(&c.Props)
		return &c
	case *Disconnect:
		c := *x
		clean(&c.Props)
		return &c
	case *Auth:
		c := *x
		clean(&c.Props)
		return &c
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	for _, v := range []byte{V311, V5} {
		for _, p := range samplePackets(v) {
			t.Run(p.Type().String()+"/v"+string('0'+v), func(t *testing.T) {
				buf, err := p.AppendTo(nil, v)
				if err != nil {
					t.Fatal(err)
				}
				got, n, err := Decode(buf, v)
				if err != nil {
					t.Fatalf("decode %x: %v", buf, err)
				}
				if n != len(buf) {
					t.Fatalf("used %d of %d bytes", n, len(buf))
				}
				want := normalize(p)
				if c, ok := want.(*Connect); ok && v == V5 {
					c.Version = V5
				}
				if !reflect.DeepEqual(normalize(got), want) {
					t.Fatalf("round trip\n got %#v\nwant %#v", normalize(got), want)
				}
			})
		}
	}
}

// TestGoldenEncodings checks exact bytes built by hand from the
// specification's field layouts.
func TestGoldenEncodings(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		v    byte
		hex  string
	}{
		{"connect 3.1.1 minimal", &Connect{Version: V311, CleanStart: true, KeepAlive: 60, ClientID: "c"}, V311,
			"100d00044d5154540402003c000163"},
		{"connect 5 minimal", &Connect{Version: V5, CleanStart: true, KeepAlive: 60, ClientID: "c"}, V5,
			"100e00044d5154540502003c00000163"},
		{"connack 3.1.1 accepted", &Connack{}, V311, "20020000"},
		{"connack 5 with receive maximum", &Connack{Props: Properties{ReceiveMaximum: 10}}, V5, "2006000003" + "21000a"},
		{"publish qos0 3.1.1", &Publish{Topic: "a/b", Payload: []byte("hi")}, V311, "3007" + "0003612f62" + "6869"},
		{"publish qos1 retain dup 5", &Publish{QoS: 1, Dup: true, Retain: true, Topic: "a", PacketID: 10, Payload: []byte{0xFF}}, V5,
			"3b07" + "000161" + "000a" + "00" + "ff"},
		{"puback short form 5", &Ack{Kind: PUBACK, PacketID: 1}, V5, "40020001"},
		{"puback with reason 5", &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: NoMatchingSubscribers}, V5, "4003000110"},
		{"pubrel flags", &Ack{Kind: PUBREL, PacketID: 2}, V311, "62020002"},
		{"subscribe 3.1.1", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/#", QoS: 1}}}, V311, "8208" + "0001" + "0003612f23" + "01"},
		{"subscribe 5 options", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}, V5,
			"8207" + "0001" + "00" + "000161" + "2e"},
		{"unsuback 3.1.1", &Unsuback{PacketID: 5}, V311, "b0020005"},
		{"pingreq", &Pingreq{}, V311, "c000"},
		{"disconnect 5 normal", &Disconnect{}, V5, "e000"},
		{"disconnect 5 reason", &Disconnect{ReasonCode: KeepAliveTimeout}, V5, "e0028d00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.p.AppendTo(nil, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tc.hex {
				t.Fatalf("got %x, want %s", got, tc.hex)
			}
		})
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeBadInput checks that each violation gets the reason code the
// specification asks for.
func TestDecodeBadInput(t *testing.T) {
	tests := []struct {
		name string
		v    byte
		hex  string
		code ReasonCode
	}{
		{"remaining length of five bytes", V5, "30 ff ff ff ff 01", MalformedPacket},
		{"reserved packet type 0", V5, "00 00", MalformedPacket},
		{"reserved flags on PUBACK", V5, "41 02 00 01", MalformedPacket},
		{"PUBREL without its flags", V5, "60 02 00 01", MalformedPacket},
		{"SUBSCRIBE with flags 0", V5, "80 07 0001 00 000161 00", MalformedPacket},
		{"PUBLISH QoS 3", V5, "36 05 000161 0001", MalformedPacket},
		{"PUBLISH DUP on QoS 0", V311, "38 03 000161", MalformedPacket},
		{"invalid UTF-8 in topic", V311, "30 04 0002 c328", MalformedPacket},
		{"U+0000 in topic", V311, "30 05 0003 610062", MalformedPacket},
		{"wildcard in PUBLISH topic", V311, "30 05 0003 612f23", TopicNameInvalid},
		{"plus in PUBLISH topic", V5, "30 06 0003 612f2b 00", TopicNameInvalid},
		{"empty topic without alias", V5, "30 03 0000 00", ProtocolError},
		{"empty topic 3.1.1", V311, "30 02 0000", ProtocolError},
		{"packet id 0 on QoS 1", V311, "32 05 000161 0000", ProtocolError},
		{"packet id 0 on PUBACK", V311, "40 02 0000", ProtocolError},
		{"packet id 0 on SUBSCRIBE", V311, "82 06 0000 000161 00", ProtocolError},
		{"unknown property", V5, "30 06 000161 02 7f00", MalformedPacket},
		{"duplicated property", V5, "30 08 000161 04 0101 0101", ProtocolError},
		{"property not allowed in PUBLISH", V5, "30 09 000161 05 1100000001", ProtocolError},
		{"payload format 2", V5, "30 06 000161 02 0102", ProtocolError},
		{"topic alias 0", V5, "30 07 000161 03 230000", TopicAliasInvalid},
		{"subscription id 0", V5, "30 06 000161 02 0b00", ProtocolError},
		{"property length past the end", V5, "30 05 000161 09 01", MalformedPacket},
		{"string past the end", V311, "30 03 0009 61", MalformedPacket},
		{"SUBSCRIBE without filters", V311, "82 02 0001", ProtocolError},
		{"SUBSCRIBE QoS 3", V311, "82 06 0001 000161 03", MalformedPacket},
		{"SUBSCRIBE reserved option bits 5", V5, "82 07 0001 00 000161 c0", MalformedPacket},
		{"SUBSCRIBE retain handling 3", V5, "82 07 0001 00 000161 30", ProtocolError},
		{"UNSUBSCRIBE without filters", V311, "a2 02 0001", ProtocolError},
		{"packet before CONNECT", 0, "c0 00", ProtocolError},
		{"trailing bytes after PINGREQ", V311, "c0 01 00", MalformedPacket},
		{"AUTH in 3.1.1", V311, "f0 00", MalformedPacket},
		{"CONNECT reserved flag", 0, "10 0d 00044d515454 04 03 003c 000163", MalformedPacket},
		{"CONNECT will QoS without will flag", 0, "10 0d 00044d515454 04 0a 003c 000163", MalformedPacket},
		{"CONNECT will QoS 3", 0, "10 0d 00044d515454 04 1e 003c 000163", MalformedPacket},
		{"CONNECT password without user 3.1.1", 0, "10 0d 00044d515454 04 42 003c 000163", MalformedPacket},
		{"CONNECT unknown level", 0, "10 0d 00044d515454 07 02 003c 000163", UnsupportedProtocolVersion},
		{"CONNECT unknown protocol name", 0, "10 0d 00044d515458 04 02 003c 000163", UnsupportedProtocolVersion},
		{"CONNECT will topic with wildcard", 0, "10 15 00044d515454 04 06 003c 000163 0003612f23 0001 78", TopicNameInvalid},
		{"CONNECT receive maximum 0", 0, "10 11 00044d515454 05 02 003c 03 210000 000163", ProtocolError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode(mustHex(t, tc.hex), tc.v)
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("got %v, want *Error with %s", err, tc.code)
			}
			if me.Code != tc.code {
				t.Fatalf("got %s (%v), want %s", me.Code, me, tc.code)
			}
			// The Reader reports the same.
			r := NewReader(bytes.NewReader(mustHex(t, tc.hex)), 64)
			r.Version = tc.v
			_, err = r.ReadPacket()
			if !errors.As(err, &me) || me.Code != tc.code {
				t.Fatalf("Reader: got %v, want %s", err, tc.code)
			}
		})
	}
}

func TestReaderStream(t *testing.T) {
	var stream []byte
	pkts := samplePackets(V5)[1:] // all but CONNECT
	for _, p := range pkts {
		var err error
		if stream, err = p.AppendTo(stream, V5); err != nil {
			t.Fatal(err)
		}
	}
	big := &Publish{Topic: "big", Payload: bytes.Repeat([]byte("x"), 100000)}
	stream, _ = big.AppendTo(stream, V5)
	pkts = append(pkts, big)
	for _, name := range []string{"whole", "one byte at a time", "whole, reusing acks"} {
		t.Run(name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(stream)
			if name == "one byte at a time" {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, 64)
			r.Version = V5
			r.ReuseAcks = strings.HasSuffix(name, "reusing acks")
			for i, want := range pkts {
				got, err := r.ReadPacket()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !reflect.DeepEqual(normalize(got), normalize(want)) {
					t.Fatalf("packet %d\n got %#v\nwant %#v", i, normalize(got), normalize(want))
				}
			}
			if _, err := r.ReadPacket(); err != io.EOF {
				t.Fatalf("after the last packet: %v, want io.EOF", err)
			}
		})
	}
}

// countingReader returns at most chunk bytes per Read and counts the calls.
type countingReader struct {
	src   []byte
	chunk int
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.src)
	c.src = c.src[n:]
	return n, nil
}

// PacketBuffered is true exactly when the next ReadPacket needs no read:
// checked after every packet of a stream that arrives in chunks of several
// sizes, so that whole, partial and split headers are all buffered at some
// point.
func TestReaderPacketBuffered(t *testing.T) {
	var stream []byte
	var ends []int // where each packet ends in the stream
	pkts := append(samplePackets(V5)[1:], &Publish{Topic: "big", Payload: bytes.Repeat([]byte("x"), 300)})
	for _, p := range pkts {
		var err error
		if stream, err = p.AppendTo(stream, V5); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, len(stream))
	}
	for _, chunk := range []int{1, 2, 3, 7, 64, 1000, len(stream)} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			src := &countingReader{src: stream, chunk: chunk}
			r := NewReader(src, 1024)
			r.Version = V5
			for i := range pkts {
				before := src.reads
				want := r.PacketBuffered()
				if _, err := r.ReadPacket(); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if want && src.reads != before {
					t.Fatalf("packet %d: PacketBuffered, yet ReadPacket read", i)
				}
				read := ends[i] + r.Buffered()
				if next := i + 1; next < len(ends) && r.PacketBuffered() != (read >= ends[next]) {
					t.Fatalf("after packet %d: PacketBuffered %v with %d of %d bytes of the next packet", i, r.PacketBuffered(), read-ends[i], ends[next]-ends[i])
				}
			}
			if r.PacketBuffered() {
				t.Fatal("PacketBuffered at the end of the stream")
			}
		})
	}
	// A remaining length longer than four bytes is an error ReadPacket
	// reports without reading more.
	r := NewReader(&countingReader{src: []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, chunk: 6}, 1024)
	r.Version = V311
	r.fill(6)
	if !r.PacketBuffered() {
		t.Fatal("malformed remaining length: PacketBuffered false")
	}
}

func TestReaderTruncated(t *testing.T) {
	buf, _ := (&Publish{Topic: "a", Payload: []byte("hello")}).AppendTo(nil, V311)
	r := NewReader(bytes.NewReader(buf[:len(buf)-2]), 64)
	r.Version = V311
	if _, err := r.ReadPacket(); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReaderMaxPacketSize(t *testing.T) {
	buf, _ := (&Publish{Topic: "a", Payload: make([]byte, 1000)}).AppendTo(nil, V311)
	r := NewReader(bytes.NewReader(buf), 64)
	r.Version = V311
	r.MaxPacketSize = 1000
	_, err := r.ReadPacket()
	var me *Error
	if !errors.As(err, &me) || me.Code != PacketTooLarge {
		t.Fatalf("got %v, want PacketTooLarge", err)
	}
}

func TestPublishSize(t *testing.T) {
	for _, p := range samplePackets(V5) {
		if pub, ok := p.(*Publish); ok {
			for _, v := range []byte{V311, V5} {
				buf, _ := pub.AppendTo(nil, v)
				if got := PublishSize(pub, v); got != len(buf) {
					t.Errorf("PublishSize v%d = %d, encoded %d", v, got, len(buf))
				}
			}
		}
	}
}

func TestPublishZeroAllocs(t *testing.T) {
	p := &Publish{QoS: 1, Topic: "city/b1/energy/m1", PacketID: 7, Payload: make([]byte, 64)}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf, _ = p.AppendHeader(buf[:0], V5) }); n != 0 {
		t.Errorf("AppendHeader: %v allocs, want 0", n)
	}
	one, _ := p.AppendTo(nil, V5)
	stream := bytes.Repeat(one, 200)
	src := bytes.NewReader(stream)
	r := NewReader(src, 4096)
	r.Version = V5
	r.ReadPacket() // interns the topic
	if n := testing.AllocsPerRun(100, func() {
		if _, err := r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ReadPacket of PUBLISH: %v allocs, want 0", n)
	}
}

func TestStringTooLong(t *testing.T) {
	p := &Publish{Topic: strings.Repeat("a", 70000)}
	if _, err := p.AppendTo(nil, V311); err == nil {
		t.Fatal("encoded a topic longer than 65535 bytes")
	}
}
