package chirpstack_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/citymesh/citymesh/connector/chirpstack"
)

// FuzzParseUplink feeds arbitrary bytes to ParseUplink: it must not panic,
// and an uplink it accepts must survive MarshalEvent and ParseUplink.
func FuzzParseUplink(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		up, err := chirpstack.ParseUplink(payload)
		if err != nil {
			return
		}
		out, err := chirpstack.MarshalEvent(&chirpstack.Event{Up: up})
		if err != nil {
			t.Fatalf("MarshalEvent: %v", err)
		}
		up2, err := chirpstack.ParseUplink(out)
		if err != nil {
			t.Fatalf("ParseUplink of MarshalEvent's output %s: %v", out, err)
		}
		out2, _ := chirpstack.MarshalEvent(&chirpstack.Event{Up: up2})
		if string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
		_ = up.DedupeKey()
	})
}
