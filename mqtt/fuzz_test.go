package mqtt

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder for both protocol
// versions. Nothing may panic, and whatever decodes must encode again and
// decode to the same packet. The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, v := range []byte{V311, V5} {
		for _, p := range samplePackets(v) {
			buf, err := p.AppendTo(nil, v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(buf, v == V5)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, v5 bool) {
		v := V311
		if v5 {
			v = V5
		}
		pkt, n, err := Decode(data, v)
		if err != nil {
			var me *Error
			if !errors.As(err, &me) && err != io.ErrUnexpectedEOF {
				t.Fatalf("error of unexpected type %T: %v", err, err)
			}
			return
		}
		if n > len(data) {
			t.Fatalf("used %d of %d bytes", n, len(data))
		}
		enc := v
		if c, ok := pkt.(*Connect); ok {
			enc = c.Version
		}
		again, err := pkt.AppendTo(nil, enc)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", pkt, err)
		}
		pkt2, _, err := Decode(again, v)
		if err != nil {
			t.Fatalf("decode of re-encoded %x: %v", again, err)
		}
		if !reflect.DeepEqual(normalize(pkt), normalize(pkt2)) {
			t.Fatalf("re-encoded packet differs\n first %#v\nsecond %#v", normalize(pkt), normalize(pkt2))
		}
	})
}

// FuzzReader feeds an arbitrary stream to a Reader: it must return packets or
// errors, never panic or loop.
func FuzzReader(f *testing.F) {
	var stream []byte
	for _, p := range samplePackets(V5)[1:] {
		stream, _ = p.AppendTo(stream, V5)
	}
	f.Add(stream, uint32(0))
	f.Add(stream[:len(stream)/2], uint32(100))
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint32) {
		r := NewReader(bytes.NewReader(data), 64)
		r.Version = V5
		r.MaxPacketSize = maxSize
		for i := 0; i <= len(data); i++ {
			if _, err := r.ReadPacket(); err != nil {
				return
			}
		}
		t.Fatalf("more packets than bytes")
	})
}
