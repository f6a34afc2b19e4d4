package codec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2"
	"github.com/dop251/goja"
)

// regexpTimeout stops a backtracking regular expression (goja runs those
// with github.com/dlclark/regexp2, which an interrupt does not reach). It
// is regexp2's package default, so it applies to every regexp2 expression
// of the process compiled from now on.
const regexpTimeout = time.Second

func init() {
	if regexp2.DefaultMatchTimeout > regexpTimeout {
		regexp2.DefaultMatchTimeout = regexpTimeout
	}
}

// prelude runs in every runtime before the codec's script. goja's native
// functions do not notice an interrupt until they return, and some run for
// seconds or allocate gigabytes in one go on a large or deeply nested
// value. The prelude wraps those with checks in JavaScript: array methods
// refuse arrays of more than a million elements (an array's length can be
// set to 2^32-1 at no cost, and fill or sort would then walk it all), string
// repeat and pad refuse results of more than a million characters, typed
// arrays and ArrayBuffers more than a million elements, and
// JSON.stringify values nested deeper than 64 levels (its recursion is
// quadratic in the depth). A payload codec needs a few hundred of each.
const prelude = `(function () {
  "use strict";
  var LIMIT = 1048576;
  var stringify = JSON.stringify, keys = Object.keys, isArray = Array.isArray;
  var defineProperty = Object.defineProperty, apply = Function.prototype.apply;
  function tooLong(what) { return new RangeError(what + ": more than " + LIMIT + " elements in a payload codec"); }
  function wrap(obj, name, check) {
    var orig = obj[name];
    if (typeof orig !== "function") return;
    var w = function () {
      check(this, arguments);
      return apply.call(orig, this, arguments);
    };
    defineProperty(obj, name, { value: w, writable: true, configurable: true, enumerable: false });
  }
  var arrayMethods = ["concat", "copyWithin", "entries", "every", "fill", "filter", "find", "findIndex", "findLast",
    "findLastIndex", "flat", "flatMap", "forEach", "includes", "indexOf", "join", "keys", "lastIndexOf", "map",
    "reduce", "reduceRight", "reverse", "slice", "some", "sort", "splice", "toLocaleString", "toReversed",
    "toSorted", "toSpliced", "toString", "values", "with"];
  arrayMethods.forEach(function (name) {
    wrap(Array.prototype, name, function (self) {
      if (self != null && self.length > LIMIT) throw tooLong("Array.prototype." + name);
    });
  });
  wrap(Array, "from", function (self, args) {
    var src = args[0];
    if (src != null && src.length > LIMIT) throw tooLong("Array.from");
  });
  ["repeat", "padStart", "padEnd"].forEach(function (name) {
    wrap(String.prototype, name, function (self, args) {
      var n = name === "repeat" ? String(self).length * Number(args[0]) : Number(args[0]);
      if (n > LIMIT) throw tooLong("String.prototype." + name);
    });
  });
  var g = (0, eval)("this");
  ["ArrayBuffer", "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"].forEach(function (name) {
    var Orig = g[name];
    if (typeof Orig !== "function") return;
    var W = function (a, b, c) {
      if (!new.target) return Orig(a, b, c);
      if (typeof a === "number" && a > LIMIT) throw tooLong(name);
      if (a != null && typeof a === "object" && a.length > LIMIT) throw tooLong(name);
      return arguments.length > 2 ? new Orig(a, b, c) : arguments.length > 1 ? new Orig(a, b) : arguments.length ? new Orig(a) : new Orig();
    };
    W.prototype = Orig.prototype;
    Object.getOwnPropertyNames(Orig).forEach(function (k) {
      if (k !== "prototype" && k !== "length" && k !== "name") {
        try { defineProperty(W, k, Object.getOwnPropertyDescriptor(Orig, k)); } catch (e) {}
      }
    });
    defineProperty(g, name, { value: W, writable: true, configurable: true, enumerable: false });
  });
  function tooDeep(v, depth) {
    if (v === null || typeof v !== "object") return false;
    if (depth > 64) return true;
    var k = isArray(v) ? null : keys(v), n = k ? k.length : v.length;
    if (n > LIMIT) return true;
    for (var i = 0; i < n; i++) {
      if (tooDeep(k ? v[k[i]] : v[i], depth + 1)) return true;
    }
    return false;
  }
  JSON.stringify = function (value, replacer, space) {
    if (tooDeep(value, 0)) throw new RangeError("JSON.stringify: value nested deeper than 64 levels or too long");
    return apply.call(stringify, JSON, arguments);
  };
})();`

var preludeProgram = goja.MustCompile("prelude.js", prelude, true)

// Limits bound every call of a codec. The zero value takes the default
// written beside each field.
type Limits struct {
	// Timeout is the time one call may take; default 100 ms (The Things
	// Stack's default for payload formatters).
	Timeout time.Duration `yaml:"timeout"`
	// CompileTimeout is the time the prelude and the script's top-level
	// code may take in a new runtime: in Compile, and whenever a call
	// finds no runtime in the pool. Default 1 s, or Timeout if that is
	// longer. It is larger than Timeout because it is wall-clock time
	// spent once per runtime, often while the process starts and the
	// machine is busiest; a top-level loop without end still stops.
	CompileTimeout time.Duration `yaml:"compile_timeout"`
	// MaxStackDepth is the deepest JavaScript call nesting; default 64.
	MaxStackDepth int `yaml:"max_stack_depth"`
	// MaxInputBytes is the largest payload given to a decoder; default 255
	// (no LoRaWAN FRMPayload is longer).
	MaxInputBytes int `yaml:"max_input_bytes"`
	// MaxOutputBytes bounds the result's size, counted as its JSON would
	// be; default 64 KiB.
	MaxOutputBytes int `yaml:"max_output_bytes"`
	// MaxOutputDepth bounds the nesting of the result; default 32.
	MaxOutputDepth int `yaml:"max_output_depth"`
	// MaxHeapGrowth is how much the process heap may grow while a call
	// runs before the watchdog interrupts it; default 256 MiB.
	MaxHeapGrowth int64 `yaml:"max_heap_growth"`
	// MaxScriptBytes is the largest script Compile accepts; default 256
	// KiB.
	MaxScriptBytes int `yaml:"max_script_bytes"`
	// MaxLogBytes bounds what console.log and its kin capture per call;
	// default 4 KiB.
	MaxLogBytes int `yaml:"max_log_bytes"`
}

func (l Limits) withDefaults() Limits {
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.Timeout <= 0 {
		l.Timeout = 100 * time.Millisecond
	}
	if l.CompileTimeout <= 0 {
		l.CompileTimeout = max(time.Second, l.Timeout)
	}
	set(&l.MaxStackDepth, 64)
	set(&l.MaxInputBytes, 255)
	set(&l.MaxOutputBytes, 64<<10)
	set(&l.MaxOutputDepth, 32)
	set(&l.MaxScriptBytes, 256<<10)
	set(&l.MaxLogBytes, 4<<10)
	if l.MaxHeapGrowth <= 0 {
		l.MaxHeapGrowth = 256 << 20
	}
	return l
}

// heapCheckEvery is how often the watchdog samples the heap while a call
// runs.
const heapCheckEvery = time.Millisecond

// Codec is a compiled payload codec. It is safe for concurrent use: each
// call takes a runtime of the codec's own pool.
type Codec struct {
	id   string
	prog *goja.Program
	lim  Limits
	pool chan *jsvm

	// Which functions the script defines, from its first runtime.
	hasDecodeUplink, hasDecodeDownlink, hasEncodeDownlink bool

	created, dropped, abandoned, retried atomic.Uint64
	calls                                sync.WaitGroup // the runtimes' goroutines, abandoned ones included
}

// jsvm is one runtime of a codec, with the codec's functions looked up.
type jsvm struct {
	r                                             *goja.Runtime
	decodeUplink, normalizeUplink, legacyDecoder  goja.Callable
	encodeDownlink, legacyEncoder, decodeDownlink goja.Callable
	date                                          goja.Value  // the Date constructor, taken before the script ran
	work                                          chan func() // calls for the runtime's own goroutine
	log                                           []string
	logBytes, logLimit                            int
	logTruncated                                  bool
}

// Compile compiles a codec's JavaScript source and runs its top-level code
// once, under the limits, to check that it defines at least one of
// decodeUplink, Decoder, encodeDownlink, Encoder or decodeDownlink.
func Compile(id, source string, lim Limits) (*Codec, error) {
	lim = lim.withDefaults()
	fail := func(format string, args ...any) error {
		return &Error{CodecID: id, Op: "compile", Reason: ReasonCompile, Detail: truncate(fmt.Sprintf(format, args...), 512)}
	}
	if len(source) > lim.MaxScriptBytes {
		return nil, fail("script of %d bytes, at most %d", len(source), lim.MaxScriptBytes)
	}
	prog, err := goja.Compile(id+".js", source, false)
	if err != nil {
		return nil, fail("%v", err)
	}
	c := &Codec{id: id, prog: prog, lim: lim, pool: make(chan *jsvm, max(16, 4*runtime.GOMAXPROCS(0)))}
	ctx := context.Background()
	v, err := c.newVM(ctx)
	if retryable(ctx, err) {
		// As a call's (see do): the limit is wall-clock time.
		c.retried.Add(1)
		v, err = c.newVM(ctx)
	}
	if err != nil {
		return nil, err
	}
	c.hasDecodeUplink = v.decodeUplink != nil || v.legacyDecoder != nil
	c.hasEncodeDownlink = v.encodeDownlink != nil || v.legacyEncoder != nil
	c.hasDecodeDownlink = v.decodeDownlink != nil
	if !c.hasDecodeUplink && !c.hasEncodeDownlink && !c.hasDecodeDownlink {
		return nil, fail("defines none of decodeUplink, Decoder, encodeDownlink, Encoder, decodeDownlink")
	}
	c.put(v)
	return c, nil
}

// ID returns the codec's ID.
func (c *Codec) ID() string { return c.id }

// Stats counts a codec's runtimes.
type Stats struct {
	// Created is how many runtimes were made, Dropped how many were
	// dropped after a failure (or because the pool was full), Abandoned
	// how many were left to a call that did not stop when interrupted.
	Created, Dropped, Abandoned uint64
	// Retried is how many calls (or compiles) ran a second time after
	// their first run met the time or memory limit (see Codec.do).
	Retried uint64
}

// Stats returns the codec's counters.
func (c *Codec) Stats() Stats {
	return Stats{Created: c.created.Load(), Dropped: c.dropped.Load(), Abandoned: c.abandoned.Load(), Retried: c.retried.Load()}
}

// newVM makes a runtime and runs the codec's top-level code in it.
func (c *Codec) newVM(ctx context.Context) (*jsvm, error) {
	c.created.Add(1)
	v := &jsvm{r: goja.New(), logLimit: c.lim.MaxLogBytes, work: make(chan func())}
	// The runtime's calls run on a goroutine of its own, whose stack stays
	// grown between calls; it ends when the runtime is dropped.
	c.calls.Add(1)
	go func() {
		defer c.calls.Done()
		for f := range v.work {
			f()
		}
	}()
	v.r.SetMaxCallStackSize(c.lim.MaxStackDepth)
	err := c.guard(ctx, v, "compile", c.lim.CompileTimeout, func() error {
		v.installConsole()
		v.date = v.r.GlobalObject().Get("Date")
		if _, err := v.r.RunProgram(preludeProgram); err != nil {
			return c.classify("compile", err)
		}
		if _, err := v.r.RunProgram(c.prog); err != nil {
			e := c.classify("compile", err)
			if e.Reason == ReasonException {
				e.Reason = ReasonCompile
			}
			return e
		}
		fn := func(name string) goja.Callable {
			f, _ := goja.AssertFunction(v.r.GlobalObject().Get(name))
			return f
		}
		v.decodeUplink, v.normalizeUplink, v.legacyDecoder = fn("decodeUplink"), fn("normalizeUplink"), fn("Decoder")
		v.encodeDownlink, v.legacyEncoder, v.decodeDownlink = fn("encodeDownlink"), fn("Encoder"), fn("decodeDownlink")
		return nil
	})
	if err != nil {
		c.drop(v)
		return nil, err
	}
	return v, nil
}

// drop ends a runtime's goroutine (once its current call, if any, ends).
func (c *Codec) drop(v *jsvm) {
	c.dropped.Add(1)
	close(v.work)
}

// get takes a runtime from the pool, or makes one.
func (c *Codec) get(ctx context.Context) (*jsvm, error) {
	select {
	case v := <-c.pool:
		return v, nil
	default:
		return c.newVM(ctx)
	}
}

// put returns a runtime that served a call without failing.
func (c *Codec) put(v *jsvm) {
	v.log, v.logBytes, v.logTruncated = nil, 0, false
	select {
	case c.pool <- v:
	default:
		c.drop(v)
	}
}

// interrupt is the value a runtime is interrupted with.
type interrupt struct {
	reason Reason
	detail string
}

// guard runs body, which calls into the runtime, under the codec's limits
// and the time limit given. body runs on the runtime's goroutine while
// guard watches it: when the time limit passes, ctx ends or the heap grows
// past the limit, guard
// interrupts the runtime. A script is interrupted between two of its
// instructions; a long native operation (a JSON.stringify of a deeply
// nested value, say) only notices when it ends. If body has not returned
// within a grace period after the interrupt, guard gives up on the runtime,
// which is never used again, and returns; the abandoned goroutine ends
// when the native operation does, and Close waits for it. A panic in body
// is recovered.
func (c *Codec) guard(ctx context.Context, v *jsvm, op string, limit time.Duration, body func() error) error {
	done := make(chan error, 1)
	base := heapBytes()
	v.work <- func() { done <- c.protect(op, body) }
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(heapCheckEvery)
	defer tick.Stop()
	var fired *interrupt
	var grace <-chan time.Time
	stop := func(in interrupt) {
		if fired != nil {
			return
		}
		fired = &in
		v.r.Interrupt(in)
		grace = time.After(graceAfter(limit))
	}
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-done:
			if fired != nil && err != nil {
				// Whatever the interrupted call reported, the interrupt
				// is why it failed.
				err = &Error{CodecID: c.id, Op: op, Reason: fired.reason, Detail: fired.detail}
			}
			v.r.ClearInterrupt()
			return err
		case <-ctxDone:
			ctxDone = nil
			stop(interrupt{ReasonTimeout, "context: " + ctx.Err().Error()})
		case <-deadline.C:
			stop(interrupt{ReasonTimeout, fmt.Sprintf("ran longer than %v", limit)})
		case <-tick.C:
			if grown := int64(heapBytes()) - int64(base); grown > c.lim.MaxHeapGrowth {
				stop(interrupt{ReasonMemory, fmt.Sprintf("heap grew by %d MiB during the call, limit %d MiB", grown>>20, c.lim.MaxHeapGrowth>>20)})
			}
		case <-grace:
			c.abandoned.Add(1)
			return &Error{CodecID: c.id, Op: op, Reason: fired.reason,
				Detail: fmt.Sprintf("%s; still in a native operation %v after the interrupt, the runtime was abandoned", fired.detail, graceAfter(limit))}
		}
	}
}

// graceAfter is how long guard waits for an interrupted call to stop,
// given the call's time limit.
func graceAfter(limit time.Duration) time.Duration { return max(limit, 100*time.Millisecond) }

// protect runs body and turns a panic into an Error.
func (c *Codec) protect(op string, body func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = c.recovered(op, p)
		}
	}()
	return body()
}

// Close ends the goroutines of the codec's pooled runtimes and waits for
// them, and for the calls the codec abandoned (see guard) to end. The codec
// must not be used after Close, nor during it.
func (c *Codec) Close() {
	for {
		select {
		case v := <-c.pool:
			close(v.work)
			continue
		default:
		}
		break
	}
	c.calls.Wait()
}

// heapMetric is the runtime metric the watchdog reads: memory occupied by
// heap objects, live or not yet swept, which grows as a call allocates.
const heapMetric = "/memory/classes/heap/objects:bytes"

// heapBytes reads the heap's size.
func heapBytes() uint64 {
	sample := [1]metrics.Sample{{Name: heapMetric}}
	metrics.Read(sample[:])
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// recovered turns a panic during a call into an Error.
func (c *Codec) recovered(op string, p any) *Error {
	if err, ok := p.(error); ok {
		var ie *goja.InterruptedError
		var so *goja.StackOverflowError
		var ex *goja.Exception
		if errors.As(err, &ie) || errors.As(err, &so) || errors.As(err, &ex) {
			e := c.classify(op, err)
			if e.Reason == ReasonException {
				e.Detail = "a value whose conversion threw"
			}
			return e
		}
	}
	return &Error{CodecID: c.id, Op: op, Reason: ReasonInternal, Detail: truncate(fmt.Sprint(p), 512)}
}

// classify turns an error of the engine into an Error. For a thrown value
// it reads the value's name and message, which may run JavaScript: it must
// run within guard.
func (c *Codec) classify(op string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ie *goja.InterruptedError
	var so *goja.StackOverflowError
	var ex *goja.Exception
	switch {
	case errors.As(err, &ie):
		if in, ok := ie.Value().(interrupt); ok {
			return &Error{CodecID: c.id, Op: op, Reason: in.reason, Detail: in.detail}
		}
		return &Error{CodecID: c.id, Op: op, Reason: ReasonTimeout, Detail: "interrupted"}
	case errors.As(err, &so):
		return &Error{CodecID: c.id, Op: op, Reason: ReasonStackOverflow, Detail: fmt.Sprintf("calls nested deeper than %d", c.lim.MaxStackDepth)}
	case errors.As(err, &ex):
		return &Error{CodecID: c.id, Op: op, Reason: ReasonException, Detail: truncate(describeThrown(ex.Value()), 512)}
	}
	return &Error{CodecID: c.id, Op: op, Reason: ReasonInternal, Detail: truncate(err.Error(), 512)}
}

// describeThrown describes a thrown value without trusting it: the name
// and message of an Error, the text of a primitive, the class of another
// object.
func describeThrown(v goja.Value) (s string) {
	defer func() {
		if recover() != nil {
			s = "a thrown value that cannot be described"
		}
	}()
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	if goja.IsNull(v) {
		return "null"
	}
	o, ok := v.(*goja.Object)
	if !ok {
		return "thrown " + v.String()
	}
	if msg := o.Get("message"); msg != nil && !goja.IsUndefined(msg) {
		if _, isObj := msg.(*goja.Object); !isObj {
			name := "Error"
			if n := o.Get("name"); n != nil {
				if _, isObj := n.(*goja.Object); !isObj && !goja.IsUndefined(n) {
					name = n.String()
				}
			}
			return name + ": " + msg.String()
		}
	}
	return "thrown " + o.ClassName() + " object"
}

// installConsole gives the runtime a console whose methods write to the
// call's captured log.
func (v *jsvm) installConsole() {
	console := v.r.NewObject()
	for _, level := range []string{"log", "info", "warn", "error", "debug"} {
		prefix := ""
		if level != "log" {
			prefix = level + ": "
		}
		_ = console.Set(level, func(call goja.FunctionCall) goja.Value {
			if v.logTruncated {
				return goja.Undefined()
			}
			parts := make([]string, 0, len(call.Arguments))
			n := len(prefix)
			for _, a := range call.Arguments {
				s := a.String()
				if n+len(s) > v.logLimit {
					s = truncate(s, max(0, v.logLimit-n))
				}
				parts = append(parts, s)
				n += len(s) + 1
				if n >= v.logLimit {
					break
				}
			}
			line := prefix + strings.Join(parts, " ")
			if v.logBytes+len(line) > v.logLimit {
				v.log = append(v.log, "(log truncated)")
				v.logTruncated = true
				return goja.Undefined()
			}
			v.logBytes += len(line)
			v.log = append(v.log, line)
			return goja.Undefined()
		})
	}
	_ = v.r.GlobalObject().DefineDataProperty("console", console, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// Registry holds the codecs of a directory by ID.
type Registry struct {
	mu     sync.RWMutex
	codecs map[string]*Codec
}

// LoadDir compiles every *.js file of dir; a codec's ID is its file name
// without ".js" ("dragino-lse01.js" is "dragino-lse01").
func LoadDir(dir string, lim Limits) (*Registry, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.js"))
	if err != nil {
		return nil, err
	}
	r := &Registry{codecs: make(map[string]*Codec)}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		id := strings.TrimSuffix(filepath.Base(name), ".js")
		c, err := Compile(id, string(src), lim)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		r.codecs[id] = c
	}
	return r, nil
}

// Get returns the codec with the ID.
func (r *Registry) Get(id string) (*Codec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.codecs[id]
	return c, ok
}

// Add adds or replaces a codec.
func (r *Registry) Add(c *Codec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.codecs == nil {
		r.codecs = make(map[string]*Codec)
	}
	r.codecs[c.id] = c
}

// Close closes every codec (Codec.Close); the registry must not be used
// after Close.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.codecs {
		c.Close()
	}
}

// IDs returns the codecs' IDs, sorted.
func (r *Registry) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.codecs))
	for id := range r.codecs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
