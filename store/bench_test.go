package store

import (
	"testing"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// BenchmarkBatchPutEntry encodes queue entries into a reused batch, as the
// journal does for every message queued for a durable session.
func BenchmarkBatchPutEntry(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(byteSize(size), func(b *testing.B) {
			props := &mqtt.Properties{ContentType: "application/json"}
			e := &Entry{Message: Message{Topic: "energy/campus-b1/meter/el-0042/reading", Payload: make([]byte, size), QoS: 1,
				Props: props, Expires: time.Now().Add(time.Hour)}, Queued: time.Now()}
			var bt Batch
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				if i%1024 == 0 {
					bt.Reset()
				}
				e.Seq = uint64(i)
				if err := bt.PutEntry("gateway-7", e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeEntry decodes queue entries, as a page is read back.
func BenchmarkDecodeEntry(b *testing.B) {
	var bt Batch
	bt.PutEntry("gateway-7", &Entry{Seq: 1, Message: Message{Topic: "energy/campus-b1/meter/el-0042/reading", Payload: make([]byte, 64), QoS: 1},
		Queued: time.Now()})
	var v []byte
	bt.Each(func(_ Op, _, value []byte) error { v = value; return nil })
	for b.Loop() {
		if _, err := decodeEntry(1, v); err != nil {
			b.Fatal(err)
		}
	}
}

func byteSize(n int) string {
	if n >= 1024 {
		return "1KiB"
	}
	return "64B"
}
