package tts_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/citymesh/citymesh/connector/tts"
)

// BenchmarkParse parses the complete uplink of the reference (§1.4) with a
// decoded payload of 8 fields, a normalized payload and one gateway, as the
// stack publishes it (compact JSON, 1.9 KB), and the smallest uplink.
func BenchmarkParse(b *testing.B) {
	for _, file := range []string{"up-full.json", "up-minimal.json"} {
		b.Run(file, func(b *testing.B) {
			in := compact(b, readFile(b, file))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tts.Parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Decode/up-full.json", func(b *testing.B) {
		in := compact(b, readFile(b, "up-full.json"))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := tts.Decode("v3/vineyard-north@ttn/devices/soil-probe-07/up", in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMarshal(b *testing.B) {
	m, err := tts.Parse(readFile(b, "up-full.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tts.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

// compact removes the indentation of a testdata file: the stack publishes
// compact JSON.
func compact(b *testing.B, in []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, in); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}
