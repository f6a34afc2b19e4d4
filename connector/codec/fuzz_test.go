package codec_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/citymesh/citymesh/connector/codec"
)

// FuzzRunner compiles and runs arbitrary script bodies, hostile ones among
// the seeds, on arbitrary bytes: nothing may crash or hang the process, and
// every failure must be a *codec.Error.
func FuzzRunner(f *testing.F) {
	seeds := []string{
		`return { data: { v: input.bytes[0] } };`,
		`while (true) {}`,
		`function f(n) { return f(n + 1); } return f(0);`,
		`var o = {}; o.o = o; return { data: o };`,
		`throw { toString: function () { while (true) {} } };`,
		`var s = "x"; for (;;) s += s;`,
		`var a = []; a.length = 4294967295; a.sort(); return { data: {} };`,
		`return { data: new Proxy({}, { ownKeys: function () { throw 1; } }) };`,
		`Object.defineProperty(Object.prototype, "data", { get: function () { throw 2; } }); return {};`,
		`return { data: { x: NaN }, warnings: [1], errors: "e" };`,
		`var b = input.bytes; return { data: { t: ((b[0] << 8 | b[1]) << 16 >> 16) / 10 } };`,
		`return { errors: ["bad payload " + input.bytes.length] };`,
	}
	for _, s := range seeds {
		f.Add(s, []byte{0x01, 0x02, 0x03})
	}
	f.Fuzz(func(t *testing.T, body string, payload []byte) {
		c, err := codec.Compile("fuzz", "function decodeUplink(input) {\n"+body+"\n}", codec.Limits{Timeout: 50 * time.Millisecond, MaxHeapGrowth: 64 << 20})
		if err != nil {
			var ce *codec.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Compile: not a *codec.Error: %v", err)
			}
			return
		}
		defer c.Close()
		start := time.Now()
		out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: payload, FPort: 1})
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("DecodeUplink took %v", took)
		}
		if err != nil {
			var ce *codec.Error
			if !errors.As(err, &ce) || ce.CodecID != "fuzz" {
				t.Fatalf("not a *codec.Error: %v", err)
			}
			return
		}
		if out.Data == nil {
			t.Fatal("no data and no error")
		}
	})
}
