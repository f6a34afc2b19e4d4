package chirpstack_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/citymesh/citymesh/connector/chirpstack"
)

// BenchmarkParseUplink parses a complete "up" event with a decoded object
// and two gateways, compact as ChirpStack publishes it.
func BenchmarkParseUplink(b *testing.B) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, readFile(b, "up-full.json")); err != nil {
		b.Fatal(err)
	}
	in := buf.Bytes()
	topic := "application/0b3f4d2a-91c6-4e0a-8f57-3c2d1e0a9b88/device/a84041000181c61f/event/up"
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chirpstack.Decode(topic, in); err != nil {
			b.Fatal(err)
		}
	}
}
