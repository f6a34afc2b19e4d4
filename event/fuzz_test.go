package event

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds documents of every kind to Decode. Whatever Go accepts
// must encode to JSON its kind's schema accepts, and decode again to the
// same JSON: what a component publishes from a valid Go value is always
// valid on the bus.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for i, k := range Kinds() {
			if bytes.HasPrefix([]byte(filepath.Base(name)), []byte(k)) {
				f.Add(uint8(i), data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		ks := Kinds()
		k := ks[int(kind)%len(ks)]
		e, err := Decode(k, data)
		_ = ValidateJSON(k, data) // must not panic
		if err != nil {
			return
		}
		out, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		if err := ValidateJSON(k, out); err != nil {
			t.Fatalf("Go accepted an event whose JSON the schema refuses: %v\n%s", err, out)
		}
		back, err := Decode(k, out)
		if err != nil {
			t.Fatalf("encoded event does not decode: %v\n%s", err, out)
		}
		again, err := Encode(back)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("round trip changed the event: %v\n%s\n%s", err, out, again)
		}
	})
}
