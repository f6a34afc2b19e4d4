package tts_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/citymesh/citymesh/connector/tts"
)

// FuzzParse feeds arbitrary bytes to Parse: it must not panic, and what it
// accepts must survive Marshal and Parse again unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := tts.Parse(payload)
		if err != nil {
			return
		}
		out, err := tts.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal of a parsed message: %v", err)
		}
		m2, err := tts.Parse(out)
		if err != nil {
			t.Fatalf("Parse of Marshal's output %s: %v", out, err)
		}
		out2, err := tts.Marshal(m2)
		if err != nil || string(out2) != string(out) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
		if k, ok := m.DedupeKey(); ok && k.DevEUI.IsZero() {
			t.Fatal("DedupeKey with a zero DevEUI")
		}
	})
}

// FuzzParseTopic: ParseTopic must not panic, and a topic it accepts is
// written back unchanged.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"v3/vineyard-north@ttn/devices/soil-probe-07/up", "v3/app1/devices/dev1/down/push", "v3/a@b/devices/c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := tts.ParseTopic(s)
		if err != nil {
			return
		}
		if tp.String() != s {
			t.Fatalf("ParseTopic(%q).String() = %q", s, tp.String())
		}
	})
}
