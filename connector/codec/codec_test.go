package codec_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/connector/codec"
)

const simple = `
function decodeUplink(input) {
  var warnings = [];
  if (input.bytes.length < 2) return { errors: ["too short"] };
  if (input.fPort !== 2) warnings.push("unexpected port " + input.fPort);
  console.log("decoding", input.bytes.length, "bytes");
  return {
    data: { value: (input.bytes[0] << 8 | input.bytes[1]) / 10, port: input.fPort,
            year: input.recvTime.getUTCFullYear(), list: [1, "a", true, null], nested: { ok: true },
            skipped: undefined, fn: function() {} },
    warnings: warnings
  };
}
function normalizeUplink(input) {
  return { data: { air: { temperature: input.data.value } } };
}
function encodeDownlink(input) {
  return { bytes: [input.data.interval >> 8, input.data.interval & 0xff], fPort: 3 };
}
function decodeDownlink(input) {
  return { data: { interval: input.bytes[0] << 8 | input.bytes[1] } };
}
`

func compile(t testing.TB, src string, lim codec.Limits) *codec.Codec {
	t.Helper()
	c, err := codec.Compile("test", src, lim)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContract(t *testing.T) {
	t.Parallel()
	c := compile(t, simple, codec.Limits{})
	ctx := context.Background()
	out, err := c.DecodeUplink(ctx, codec.UplinkInput{Bytes: []byte{0x01, 0x02}, FPort: 2, RecvTime: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"value": 25.8, "port": 2.0, "year": 2026.0, "list": []any{1.0, "a", true, nil}, "nested": map[string]any{"ok": true}}
	if !reflect.DeepEqual(out.Data, want) || len(out.Warnings) != 0 {
		t.Errorf("Data = %v, warnings %v", out.Data, out.Warnings)
	}
	if !reflect.DeepEqual(out.Normalized, []map[string]any{{"air": map[string]any{"temperature": 25.8}}}) {
		t.Errorf("Normalized = %v", out.Normalized)
	}
	if !reflect.DeepEqual(out.Log, []string{"decoding 2 bytes"}) {
		t.Errorf("Log = %q", out.Log)
	}
	out, err = c.DecodeUplink(ctx, codec.UplinkInput{Bytes: []byte{0, 10}, FPort: 5})
	if err != nil || !reflect.DeepEqual(out.Warnings, []string{"unexpected port 5"}) {
		t.Errorf("warnings = %v, %v", out, err)
	}
	_, err = c.DecodeUplink(ctx, codec.UplinkInput{Bytes: []byte{1}, FPort: 2})
	var ce *codec.Error
	if !errors.As(err, &ce) || ce.Reason != codec.ReasonErrors || !reflect.DeepEqual(ce.Errors, []string{"too short"}) || ce.CodecID != "test" {
		t.Errorf("errors[] = %v", err)
	}
	if !errors.Is(err, &codec.Error{Reason: codec.ReasonErrors}) || errors.Is(err, &codec.Error{Reason: codec.ReasonTimeout}) {
		t.Errorf("errors.Is on %v", err)
	}
	dl, err := c.EncodeDownlink(ctx, codec.DownlinkInput{Data: map[string]any{"interval": 600.0}})
	if err != nil || !reflect.DeepEqual(dl.Bytes, []byte{2, 88}) || dl.FPort != 3 {
		t.Errorf("EncodeDownlink = %+v, %v", dl, err)
	}
	dd, err := c.DecodeDownlink(ctx, codec.DownlinkBytes{Bytes: []byte{2, 88}, FPort: 3})
	if err != nil || dd.Data["interval"] != 600.0 {
		t.Errorf("DecodeDownlink = %+v, %v", dd, err)
	}
	if _, err := c.DecodeUplink(ctx, codec.UplinkInput{Bytes: make([]byte, 256)}); !errors.Is(err, &codec.Error{Reason: codec.ReasonInput}) {
		t.Errorf("a 256-byte payload: %v", err)
	}
}

// TestLegacyFunctions: the older Decoder(bytes, fPort) and Encoder(data,
// fPort) of The Things Network v2 are called when the newer ones are
// missing, as The Things Stack does.
func TestLegacyFunctions(t *testing.T) {
	t.Parallel()
	c := compile(t, `function Decoder(bytes, port) { return { first: bytes[0], port: port }; }
	function Encoder(object, port) { return [object.x, port]; }`, codec.Limits{})
	out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: []byte{7}, FPort: 9})
	if err != nil || out.Data["first"] != 7.0 || out.Data["port"] != 9.0 {
		t.Errorf("Decoder: %+v, %v", out, err)
	}
	dl, err := c.EncodeDownlink(context.Background(), codec.DownlinkInput{Data: map[string]any{"x": 5}, FPort: 4})
	if err != nil || !reflect.DeepEqual(dl.Bytes, []byte{5, 4}) || dl.FPort != 4 {
		t.Errorf("Encoder: %+v, %v", dl, err)
	}
	if _, err := c.DecodeDownlink(context.Background(), codec.DownlinkBytes{}); !errors.Is(err, &codec.Error{Reason: codec.ReasonMissing}) {
		t.Errorf("DecodeDownlink without the function: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{
		"syntax":          "function decodeUplink(input) {",
		"no function":     "var x = 1;",
		"top-level throw": "throw new Error('boom'); function decodeUplink() {}",
		"top-level loop":  "while (true) {} function decodeUplink() {}",
		"too large":       "function decodeUplink(){}" + strings.Repeat(" ", 300<<10),
	} {
		_, err := codec.Compile("bad", src, codec.Limits{Timeout: 50 * time.Millisecond, CompileTimeout: 50 * time.Millisecond})
		var ce *codec.Error
		if !errors.As(err, &ce) || ce.CodecID != "bad" || ce.Op != "compile" {
			t.Errorf("%s: Compile = %v", name, err)
		}
	}
}

// TestHostileCodecs runs scripts that try to hang, exhaust memory or the
// stack, throw odd values, return odd results or tamper with built-ins:
// each must fail as a reported *codec.Error within bounded time, and the
// process must go on.
func TestHostileCodecs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string // the body of decodeUplink(input)
		reason codec.Reason
	}{
		{"endless loop", `while (true) {}`, codec.ReasonTimeout},
		{"endless loop with try", `for (;;) { try { while (true) {} } catch (e) {} }`, codec.ReasonTimeout},
		{"deep recursion", `function f(n) { return f(n + 1) + 1; } return f(0);`, codec.ReasonStackOverflow},
		{"deep recursion caught", `function f(n) { try { return f(n + 1); } catch (e) { return f(n + 1); } } return f(0);`, ""},
		{"throw number", `throw 42;`, codec.ReasonException},
		{"throw null", `throw null;`, codec.ReasonException},
		{"throw undefined", `throw undefined;`, codec.ReasonException},
		{"throw object with looping toString", `throw { toString: function() { while (true) {} } };`, codec.ReasonException},
		{"throw error with looping message getter", `var e = new Error("x"); Object.defineProperty(e, "message", { get: function() { while (true) {} } }); throw e;`, ""},
		{"throw error with throwing name", `var e = new Error("x"); Object.defineProperty(e, "name", { get: function() { throw 1; } }); throw e;`, codec.ReasonException},
		{"return cyclic object", `var o = { a: 1 }; o.self = o; return { data: o };`, codec.ReasonOutput},
		{"return cyclic array", `var a = [1]; a.push(a); return { data: { a: a } };`, codec.ReasonOutput},
		{"return deep nesting", `var o = {}; for (var i = 0; i < 100; i++) o = { o: o }; return { data: o };`, codec.ReasonOutput},
		{"return huge output", `var a = []; for (var i = 0; i < 100000; i++) a.push("xxxxxxxx"); return { data: { a: a } };`, codec.ReasonOutput},
		{"return sparse huge array", `var a = []; a[1e9] = 1; return { data: { a: a } };`, codec.ReasonOutput},
		{"return NaN", `return { data: { x: NaN } };`, codec.ReasonOutput},
		{"return Infinity", `return { data: { x: 1 / 0 } };`, codec.ReasonOutput},
		{"return nothing", `return;`, codec.ReasonOutput},
		{"return a number", `return 42;`, codec.ReasonOutput},
		{"return data array", `return { data: [1, 2] };`, codec.ReasonOutput},
		{"return data string", `return { data: "x" };`, codec.ReasonOutput},
		{"warnings not strings", `return { data: {}, warnings: [1] };`, codec.ReasonOutput},
		{"errors not an array", `return { data: {}, errors: "bad" };`, codec.ReasonOutput},
		{"getter loops", `var d = {}; Object.defineProperty(d, "x", { enumerable: true, get: function() { while (true) {} } }); return { data: d };`, codec.ReasonTimeout},
		{"getter throws", `var d = {}; Object.defineProperty(d, "x", { enumerable: true, get: function() { throw new Error("no"); } }); return { data: d };`, ""},
		{"proxy traps loop", `return { data: new Proxy({}, { ownKeys: function() { while (true) {} } }) };`, codec.ReasonTimeout},
		{"proxy traps throw", `return { data: new Proxy({}, { ownKeys: function() { throw 1; } }) };`, ""},
		{"result getter throws", `var r = {}; Object.defineProperty(r, "data", { get: function() { throw 1; } }); return r;`, ""},
		{"prototype setter on input", `Object.defineProperty(Object.prototype, "bytes", { set: function() { while (true) {} }, configurable: true }); return { data: {} };`, ""},
		{"prototype tampering", `Object.prototype.toJSON = function() { while (true) {} }; Array.prototype.push = function() { throw 1; }; Object.keys = null; JSON.stringify = null; return { data: { a: [1] } };`, ""},
		{"symbol", `return { data: { s: Symbol("x") } };`, codec.ReasonOutput},
		{"bigint", `return { data: { b: BigInt(1) } };`, codec.ReasonOutput},
		{"JSON.stringify deep", `var a = []; for (var i = 0; i < 1e5; i++) a = [a]; JSON.stringify(a); return { data: {} };`, codec.ReasonException},
		{"JSON.stringify wide", `var a = []; for (var i = 0; i < 20; i++) a = [a, a]; JSON.stringify(a); return { data: {} };`, ""},
		{"regexp backtracking", `/^(a+)+\1$/.test("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"); return { data: {} };`, ""},
		{"console flood", `for (var i = 0; i < 1e6; i++) console.log("x".repeat(1000)); return { data: {} };`, ""},
		{"no require", `require("fs"); return { data: {} };`, codec.ReasonException},
		{"no setTimeout", `setTimeout(function() {}, 1); return { data: {} };`, codec.ReasonException},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A heap limit the memory tests running beside cannot reach.
			c := compile(t, "function decodeUplink(input) {\n"+tt.body+"\n}", codec.Limits{Timeout: 200 * time.Millisecond, MaxHeapGrowth: 4 << 30})
			start := time.Now()
			out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: []byte{1, 2, 3}, FPort: 2})
			took := time.Since(start)
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			if took > 2*time.Second {
				t.Logf("stats %+v", c.Stats())
			}
			if tt.name == "prototype tampering" || tt.name == "prototype setter on input" || tt.name == "console flood" || tt.name == "JSON.stringify wide" || tt.name == "regexp backtracking" || tt.name == "deep recursion caught" {
				// These may succeed or fail; they must only come back.
				t.Logf("%v, %v in %v", out, err, took)
				return
			}
			var ce *codec.Error
			if !errors.As(err, &ce) {
				t.Fatalf("DecodeUplink = %+v, %v; want a *codec.Error", out, err)
			}
			// Under the race detector the slow cases may run out of time
			// before they reach what they test.
			if tt.reason != "" && ce.Reason != tt.reason && ce.Reason != codec.ReasonTimeout {
				t.Errorf("reason %s (%v), want %s", ce.Reason, err, tt.reason)
			}
			t.Logf("%v in %v", err, took)
			// The codec still works afterwards (on a fresh runtime).
			if _, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: []byte{1}}); err != nil && !errors.As(err, &ce) {
				t.Errorf("second call: %v", err)
			}
		})
	}
	runtime.GC()
}

// TestHostileMemory runs scripts that allocate without end, one at a time
// (the watchdog watches the process heap, which parallel tests share): the
// watchdog or the time limit must stop each, and the process must go on.
func TestHostileMemory(t *testing.T) {
	for name, body := range map[string]string{
		"huge array filled": `var a = new Array(1e9); a.fill(0); return { data: {} };`,
		"huge array pushed": `var a = []; for (;;) a.push([1, 2, 3, 4, 5, 6, 7, 8]);`,
		"string doubling":   `var s = "x"; for (;;) s = s + s;`,
		"object growth":     `var o = {}; for (var i = 0; ; i++) o["k" + i] = { i: i };`,
		"sparse then sort":  `var a = [3, 1]; a.length = 4294967295; a.sort(); return { data: {} };`,
		"repeat":            `var s = "x".repeat(1 << 30); return { data: {} };`,
		"typed array":       `var b = new Uint8Array(1 << 30); return { data: {} };`,
		"array from length": `var a = Array.from({ length: 1e9 }); return { data: {} };`,
		"join":              `var a = []; a.length = 1e9; var s = a.join("x"); return { data: {} };`,
	} {
		t.Run(name, func(t *testing.T) {
			c := compile(t, "function decodeUplink(input) {\n"+body+"\n}", codec.Limits{Timeout: 500 * time.Millisecond, MaxHeapGrowth: 64 << 20})
			start := time.Now()
			_, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: []byte{1}})
			var ce *codec.Error
			if !errors.As(err, &ce) || (ce.Reason != codec.ReasonMemory && ce.Reason != codec.ReasonTimeout && ce.Reason != codec.ReasonException) {
				t.Fatalf("DecodeUplink = %v", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %v", took)
			}
			t.Logf("%v in %v", err, time.Since(start))
			c.Close()
			runtime.GC()
		})
	}
}

// TestGoroutinesEnd: after Close, no goroutine of the codec is left, not
// even one of a call it abandoned in a native operation.
func TestGoroutinesEnd(t *testing.T) {
	// regexp2 keeps a clock goroutine of its own while match timeouts are
	// pending; it ends by itself.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock"))
	c := compile(t, simple, codec.Limits{})
	for range 10 {
		if _, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: []byte{1, 2}, FPort: 2}); err != nil {
			t.Fatal(err)
		}
	}
	slow := compile(t, `function decodeUplink(input) { /^(a+)+\1$/.test("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"); return { data: {} }; }`,
		codec.Limits{Timeout: 20 * time.Millisecond})
	_, err := slow.DecodeUplink(context.Background(), codec.UplinkInput{})
	if !errors.Is(err, &codec.Error{Reason: codec.ReasonTimeout}) {
		t.Errorf("backtracking: %v", err)
	}
	c.Close()
	slow.Close()
}

// TestIsolation: one codec's globals and tampering are not seen by another.
func TestIsolation(t *testing.T) {
	t.Parallel()
	a := compile(t, `var secret = "a"; function decodeUplink(input) { Array.prototype.hacked = true; globalThis.leak = secret; return { data: {} }; }`, codec.Limits{})
	b := compile(t, `function decodeUplink(input) { return { data: { leak: typeof leak, hacked: [].hacked === true, secret: typeof secret } }; }`, codec.Limits{})
	if _, err := a.DecodeUplink(context.Background(), codec.UplinkInput{}); err != nil {
		t.Fatal(err)
	}
	out, err := b.DecodeUplink(context.Background(), codec.UplinkInput{})
	if err != nil || out.Data["leak"] != "undefined" || out.Data["hacked"] != false || out.Data["secret"] != "undefined" {
		t.Errorf("b sees a: %+v, %v", out, err)
	}
}

func TestContextCancel(t *testing.T) {
	t.Parallel()
	c := compile(t, `function decodeUplink(input) { while (true) {} }`, codec.Limits{Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.DecodeUplink(ctx, codec.UplinkInput{})
	if !errors.Is(err, &codec.Error{Reason: codec.ReasonTimeout}) || time.Since(start) > 5*time.Second {
		t.Errorf("DecodeUplink = %v after %v", err, time.Since(start))
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	c := compile(t, simple, codec.Limits{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				b := []byte{byte(g), byte(i)}
				out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: b, FPort: 2})
				if err != nil {
					t.Error(err)
					return
				}
				if want := float64(int(g)<<8|i) / 10; out.Data["value"] != want {
					t.Errorf("value %v, want %v", out.Data["value"], want)
					return
				}
			}
		})
	}
	wg.Wait()
	// One runtime per goroutine at most, and the one Compile made: the pool
	// keeps at least 16. On a busy machine a call may meet the time limit:
	// its runtime is dropped and the call runs again on a new one; no other
	// runtime is dropped.
	if st := c.Stats(); st.Created-st.Dropped > 9 || st.Dropped != st.Retried {
		t.Errorf("%d runtimes made, %d dropped and %d calls retried for 8 goroutines", st.Created, st.Dropped, st.Retried)
	}
}

// TestLimitMetOnceIsRetried: a call that meets the time limit once, as on a
// machine busy for a moment, runs again on a fresh runtime and succeeds; a
// codec that always runs past the limit fails after its second run.
func TestLimitMetOnceIsRetried(t *testing.T) {
	tests := []struct {
		name    string
		body    string // %d is a wall-clock time in ms the script waits for
		wantErr bool
	}{
		// The first run is interrupted at 200 ms; the second, on a fresh
		// runtime, waits only for the rest of the 300 ms.
		{"busy once", `while (Date.now() < %d) {} return { data: { ok: 1 } };`, false},
		{"always too slow", `while (true) {} return { data: {} };`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			until := time.Now().Add(300 * time.Millisecond).UnixMilli()
			body := tt.body
			if strings.Contains(body, "%d") {
				body = fmt.Sprintf(body, until)
			}
			c := compile(t, "function decodeUplink(input) {\n"+body+"\n}", codec.Limits{Timeout: 200 * time.Millisecond, MaxHeapGrowth: 4 << 30})
			out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: []byte{1}, FPort: 1})
			if got := c.Stats().Retried; got != 1 {
				t.Errorf("Retried = %d, want 1", got)
			}
			if tt.wantErr {
				var ce *codec.Error
				if !errors.As(err, &ce) || ce.Reason != codec.ReasonTimeout {
					t.Fatalf("DecodeUplink = %+v, %v; want a timeout", out, err)
				}
				return
			}
			if err != nil || out.Data["ok"] != float64(1) {
				t.Fatalf("DecodeUplink = %+v, %v; want data ok 1 from the second run", out, err)
			}
		})
	}
}

// TestConcurrentAbandonedRuns: many goroutines decode with one codec just
// compiled (so that most calls make their runtime first) while the machine
// is made busy enough that calls meet the time limit, are abandoned by
// guard after their grace period, and run again. A run abandoned after its
// script returned still ends, on its runtime's goroutine, while its second
// run is under way or after DecodeUplink returned: under -race, nothing it
// makes may reach the caller. Some calls are cancelled too. The results
// that come back are whole.
func TestConcurrentAbandonedRuns(t *testing.T) {
	// One processor for 24 goroutines: a goroutine waits for its turn
	// longer than the grace period, as on a machine at a load of 13. The
	// test is not parallel, so no other test runs meanwhile.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	// Little script and a large result: the conversion of the result, which
	// no interrupt stops, is where a run is most often abandoned.
	const src = `function decodeUplink(input) {
  var d = { n: input.bytes[0] };
  for (var k = 0; k < 1500; k++) d["k" + k] = [k, "v" + k];
  return { data: d };
}`
	c := compile(t, src, codec.Limits{Timeout: 20 * time.Millisecond})
	defer c.Close()
	until := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Go(func() {
			for i := 0; time.Now().Before(until); i++ {
				ctx, cancel := context.WithCancel(context.Background())
				if i%5 == 4 {
					time.AfterFunc(time.Duration(i%40)*time.Millisecond, cancel)
				}
				b := []byte{byte(g*31 + i)}
				out, err := c.DecodeUplink(ctx, codec.UplinkInput{Bytes: b, FPort: 2})
				cancel()
				b[0]++ // the caller owns its buffer again
				if err != nil {
					if !errors.Is(err, &codec.Error{Reason: codec.ReasonTimeout}) {
						t.Errorf("DecodeUplink: %v", err)
						return
					}
					continue
				}
				if out.Data["n"] != float64(byte(g*31+i)) || len(out.Data) != 1501 || !reflect.DeepEqual(out.Data["k7"], []any{7.0, "v7"}) {
					t.Errorf("DecodeUplink = n %v, %d members, k7 %v", out.Data["n"], len(out.Data), out.Data["k7"])
					return
				}
			}
		})
	}
	wg.Wait()
	st := c.Stats()
	t.Logf("%+v", st)
	if st.Abandoned == 0 || st.Retried == 0 {
		t.Log("no run was abandoned and run again: the path this test is for was not taken this time")
	}
}

// TestCompileBudget: the prelude and a script's top-level code run under
// the compile budget (CompileTimeout, 1 s by default), not a call's
// 100 ms: top-level code that a busy machine makes take 300 ms on the wall
// clock compiles under the default limits, and a compile that met its
// budget once runs again, as a call does. A top-level loop without end
// still fails, within twice its budget and the grace periods; so does top-level
// code slower than the budget each time.
func TestCompileBudget(t *testing.T) {
	t.Parallel()
	const decoder = "\nfunction decodeUplink(input) { return { data: { ok: 1 } }; }"
	tests := []struct {
		name    string
		top     string // top-level code; %d is a wall-clock time in ms
		lim     codec.Limits
		retried uint64
		wantErr bool
	}{
		{"slow top level, default limits", `var t0 = Date.now(); while (Date.now() < t0 + 300) {}`, codec.Limits{}, 0, false},
		// The first run is interrupted at 1 s (the default budget), the
		// second waits for the rest of the 1.5 s; the half second between
		// leaves the watchdog time for its turn on a busy machine.
		{"slow once", `while (Date.now() < %d) {}`, codec.Limits{}, 1, false},
		{"slower than the budget", `var t0 = Date.now(); while (Date.now() < t0 + 300) {}`, codec.Limits{CompileTimeout: 100 * time.Millisecond}, 1, true},
		{"endless loop", `while (true) {}`, codec.Limits{CompileTimeout: 100 * time.Millisecond}, 1, true},
		{"endless loop, default limits", `for (;;) { try { while (true) {} } catch (e) {} }`, codec.Limits{}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			top := tt.top
			if strings.Contains(top, "%d") {
				top = fmt.Sprintf(top, time.Now().Add(1500*time.Millisecond).UnixMilli())
			}
			start := time.Now()
			c, err := codec.Compile("top", top+decoder, tt.lim)
			took := time.Since(start)
			if tt.wantErr {
				var ce *codec.Error
				if !errors.As(err, &ce) || ce.Op != "compile" || ce.Reason != codec.ReasonTimeout {
					t.Fatalf("Compile = %v; want a compile timeout", err)
				}
				budget := tt.lim.CompileTimeout
				if budget == 0 {
					budget = time.Second
				}
				// Two runs, each its budget and at most its grace period,
				// and a margin for a busy machine.
				if limit := 4*budget + 5*time.Second; took > limit {
					t.Errorf("Compile failed after %v, more than %v", took, limit)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile after %v: %v", took, err)
			}
			defer c.Close()
			if got := c.Stats().Retried; got != tt.retried {
				t.Errorf("Retried = %d, want %d", got, tt.retried)
			}
			out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: []byte{1}, FPort: 1})
			if err != nil || out.Data["ok"] != float64(1) {
				t.Errorf("DecodeUplink = %+v, %v", out, err)
			}
		})
	}
}
