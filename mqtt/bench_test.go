package mqtt

import (
	"bytes"
	"testing"
)

// BenchmarkEncode encodes one packet of each type into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, v := range []byte{V311, V5} {
		for _, p := range samplePackets(v) {
			b.Run(p.Type().String()+"/v"+string('0'+v), func(b *testing.B) {
				buf := make([]byte, 0, 1024)
				b.ReportAllocs()
				for b.Loop() {
					buf, _ = p.AppendTo(buf[:0], v)
				}
			})
		}
	}
	b.Run("PUBLISH-header/v5", func(b *testing.B) {
		p := &Publish{QoS: 1, Topic: "city/b1/energy/m1", PacketID: 7, Payload: make([]byte, 64)}
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = p.AppendHeader(buf[:0], V5)
		}
	})
}

// BenchmarkDecode decodes one packet of each type with Decode, and a stream
// of 64-byte PUBLISH packets with a Reader as the broker does.
func BenchmarkDecode(b *testing.B) {
	for _, v := range []byte{V311, V5} {
		for _, p := range samplePackets(v) {
			buf, _ := p.AppendTo(nil, v)
			b.Run(p.Type().String()+"/v"+string('0'+v), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(buf)))
				for b.Loop() {
					if _, _, err := Decode(buf, v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	for _, tc := range []struct {
		name string
		p    Packet
	}{
		{"Reader-PUBLISH/v5", &Publish{QoS: 1, Topic: "city/b1/energy/m1", PacketID: 7, Payload: make([]byte, 64)}},
		{"Reader-PUBACK/v5", &Ack{Kind: PUBACK, PacketID: 7}}, // with ReuseAcks, as the broker reads
	} {
		b.Run(tc.name, func(b *testing.B) {
			one, _ := tc.p.AppendTo(nil, V5)
			stream := bytes.Repeat(one, 4096)
			src := bytes.NewReader(stream)
			r := NewReader(src, 64<<10)
			r.Version = V5
			r.ReuseAcks = true
			b.ReportAllocs()
			b.SetBytes(int64(len(one)))
			for i := 0; b.Loop(); i++ {
				if i%4096 == 0 {
					src.Reset(stream)
				}
				if _, err := r.ReadPacket(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
