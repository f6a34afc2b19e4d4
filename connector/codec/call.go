package codec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/dop251/goja"
)

// UplinkInput is what a decoder gets: the uplink's FRMPayload, FPort and
// reception time.
type UplinkInput struct {
	Bytes    []byte
	FPort    uint8
	RecvTime time.Time
}

// UplinkOutput is what a decoder made of an uplink.
type UplinkOutput struct {
	// Data is the decoded payload: a JSON object of float64, string, bool,
	// nil, []any and map[string]any values.
	Data map[string]any
	// Warnings are the decoder's warnings.
	Warnings []string
	// Normalized are the measurements normalizeUplink returned, if the
	// codec defines it.
	Normalized []map[string]any
	// NormalizedWarnings are normalizeUplink's warnings.
	NormalizedWarnings []string
	// Log is what the call wrote with console.log and its kin.
	Log []string
}

// DownlinkInput is what an encoder gets.
type DownlinkInput struct {
	// Data is the downlink as an object.
	Data map[string]any
	// FPort is the requested FPort, 0 when the encoder chooses.
	FPort uint8
}

// DownlinkOutput is what an encoder made of a downlink.
type DownlinkOutput struct {
	Bytes []byte
	// FPort is the encoder's FPort, else the requested one, else 1 (as The
	// Things Stack does).
	FPort    uint8
	Warnings []string
	Log      []string
}

// DownlinkBytes is what a downlink decoder gets.
type DownlinkBytes struct {
	Bytes []byte
	FPort uint8
}

// DecodedDownlink is what a downlink decoder made of a downlink.
type DecodedDownlink struct {
	Data     map[string]any
	Warnings []string
	Log      []string
}

// DecodeUplink runs the codec's decodeUplink (or the older Decoder) on an
// uplink, then its normalizeUplink if it defines one and decoding raised
// no errors. A failure is an *Error.
func (c *Codec) DecodeUplink(ctx context.Context, in UplinkInput) (*UplinkOutput, error) {
	const op = "decodeUplink"
	if !c.hasDecodeUplink {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonMissing, Detail: "the script defines neither decodeUplink nor Decoder"}
	}
	if len(in.Bytes) > c.lim.MaxInputBytes {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonInput, Detail: fmt.Sprintf("%d bytes, at most %d", len(in.Bytes), c.lim.MaxInputBytes)}
	}
	// The call works on a copy: a call abandoned in a native operation
	// (see guard) may go on after DecodeUplink returns.
	in.Bytes = slices.Clone(in.Bytes)
	return do(c, ctx, op, func(v *jsvm) (*UplinkOutput, error) {
		r := v.r
		bytes := byteArray(r, in.Bytes)
		var res goja.Value
		var err error
		if v.decodeUplink != nil {
			input := r.NewObject()
			define(input, "bytes", bytes)
			define(input, "fPort", r.ToValue(int64(in.FPort)))
			recv := in.RecvTime
			if recv.IsZero() {
				recv = time.Now()
			}
			date, derr := r.New(v.date, r.ToValue(recv.UnixMilli()))
			if derr != nil {
				return nil, c.classify(op, derr)
			}
			define(input, "recvTime", date)
			res, err = v.decodeUplink(goja.Undefined(), input)
		} else {
			var data goja.Value
			data, err = v.legacyDecoder(goja.Undefined(), bytes, r.ToValue(int64(in.FPort)))
			if err == nil {
				obj := r.NewObject()
				define(obj, "data", data)
				res = obj
			}
		}
		if err != nil {
			return nil, c.classify(op, err)
		}
		conv := c.converter()
		result, err := conv.result(c, op, res)
		if err != nil {
			return nil, err
		}
		out := &UplinkOutput{}
		if out.Data, err = conv.dataObject(c, op, result.data); err != nil {
			return nil, err
		}
		out.Warnings = result.warnings
		out.Log = v.log
		if v.normalizeUplink == nil {
			return out, nil
		}
		const nop = "normalizeUplink"
		arg := r.NewObject()
		define(arg, "data", result.data)
		res, err = v.normalizeUplink(goja.Undefined(), arg)
		if err != nil {
			return nil, c.classify(nop, err)
		}
		nres, err := conv.result(c, nop, res)
		if err != nil {
			return nil, err
		}
		out.NormalizedWarnings = nres.warnings
		out.Log = v.log
		if err := conv.normalized(c, nop, nres.data, out); err != nil {
			return nil, err
		}
		return out, nil
	})
}

// EncodeDownlink runs the codec's encodeDownlink (or the older Encoder).
func (c *Codec) EncodeDownlink(ctx context.Context, in DownlinkInput) (*DownlinkOutput, error) {
	const op = "encodeDownlink"
	if !c.hasEncodeDownlink {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonMissing, Detail: "the script defines neither encodeDownlink nor Encoder"}
	}
	// The call works on a copy: a call abandoned in a native operation
	// (see guard) may go on after EncodeDownlink returns, and the caller
	// may then change its map.
	own, err := copyData(in.Data, 0)
	if err != nil {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonInput, Detail: err.Error()}
	}
	return do(c, ctx, op, func(v *jsvm) (*DownlinkOutput, error) {
		r := v.r
		data, err := toJS(r, own, 0)
		if err != nil {
			return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonInput, Detail: err.Error()}
		}
		var res goja.Value
		if v.encodeDownlink != nil {
			input := r.NewObject()
			define(input, "data", data)
			define(input, "fPort", r.ToValue(int64(in.FPort)))
			res, err = v.encodeDownlink(goja.Undefined(), input)
		} else {
			var b goja.Value
			b, err = v.legacyEncoder(goja.Undefined(), data, r.ToValue(int64(in.FPort)))
			if err == nil {
				obj := r.NewObject()
				define(obj, "bytes", b)
				res = obj
			}
		}
		if err != nil {
			return nil, c.classify(op, err)
		}
		conv := c.converter()
		result, err := conv.result(c, op, res)
		if err != nil {
			return nil, err
		}
		out := &DownlinkOutput{Warnings: result.warnings, FPort: in.FPort, Log: v.log}
		if out.Bytes, err = conv.bytes(c, op, result.bytes); err != nil {
			return nil, err
		}
		if result.fPort != nil && !goja.IsUndefined(result.fPort) && !goja.IsNull(result.fPort) {
			p := result.fPort.ToFloat()
			if p != math.Trunc(p) || p < 1 || p > 255 {
				return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "fPort is not an integer from 1 to 255"}
			}
			out.FPort = uint8(p)
		}
		if out.FPort == 0 {
			out.FPort = 1
		}
		return out, nil
	})
}

// DecodeDownlink runs the codec's decodeDownlink.
func (c *Codec) DecodeDownlink(ctx context.Context, in DownlinkBytes) (*DecodedDownlink, error) {
	const op = "decodeDownlink"
	if !c.hasDecodeDownlink {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonMissing, Detail: "the script defines no decodeDownlink"}
	}
	if len(in.Bytes) > c.lim.MaxInputBytes {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonInput, Detail: fmt.Sprintf("%d bytes, at most %d", len(in.Bytes), c.lim.MaxInputBytes)}
	}
	in.Bytes = slices.Clone(in.Bytes) // as in DecodeUplink
	return do(c, ctx, op, func(v *jsvm) (*DecodedDownlink, error) {
		r := v.r
		input := r.NewObject()
		define(input, "bytes", byteArray(r, in.Bytes))
		define(input, "fPort", r.ToValue(int64(in.FPort)))
		res, err := v.decodeDownlink(goja.Undefined(), input)
		if err != nil {
			return nil, c.classify(op, err)
		}
		conv := c.converter()
		result, err := conv.result(c, op, res)
		if err != nil {
			return nil, err
		}
		out := &DecodedDownlink{Warnings: result.warnings, Log: v.log}
		if out.Data, err = conv.dataObject(c, op, result.data); err != nil {
			return nil, err
		}
		return out, nil
	})
}

// do runs one call on a runtime of the pool, under guard, and returns
// the call's result. A call that met the time or memory limit runs once
// more on a fresh runtime: both limits are measured on the whole process
// (wall time, the heap), so a moment in which the machine or the rest of
// the process was busy can make a good codec fail once; a codec that
// really loops or allocates without end fails twice, and costs twice its
// limit. The calls are pure (a codec has no I/O), so running one again
// changes nothing else.
//
// The call returns its result rather than setting a variable of its
// caller: a run that guard abandoned may still end, and succeed, on its
// runtime's goroutine while the second run is under way or after do has
// returned; nothing it makes reaches do's caller.
func do[T any](c *Codec, ctx context.Context, op string, call func(v *jsvm) (T, error)) (T, error) {
	out, err := doOnce(c, ctx, op, call)
	if retryable(ctx, err) {
		c.retried.Add(1)
		out, err = doOnce(c, ctx, op, call)
	}
	return out, err
}

// retryable reports whether err is a time or memory limit met while ctx
// was still live: a failure a busy moment of the machine can cause.
func retryable(ctx context.Context, err error) bool {
	var ce *Error
	return err != nil && ctx.Err() == nil && errors.As(err, &ce) && (ce.Reason == ReasonTimeout || ce.Reason == ReasonMemory)
}

// doOnce runs one call on a runtime of the pool, under guard, and returns
// the runtime to the pool only if the call did not fail. The result comes
// back through a channel that only a call guard waited for has written.
func doOnce[T any](c *Codec, ctx context.Context, op string, call func(v *jsvm) (T, error)) (T, error) {
	var zero T
	v, err := c.get(ctx)
	if err != nil {
		return zero, err
	}
	res := make(chan T, 1)
	err = c.guard(ctx, v, op, c.lim.Timeout, func() error {
		out, err := call(v)
		if err == nil {
			res <- out
		}
		return err
	})
	if err != nil {
		c.drop(v)
		return zero, err
	}
	c.put(v)
	return <-res, nil
}

// define sets an own data property without running setters an object's
// prototype may have been given.
func define(o *goja.Object, name string, v goja.Value) {
	_ = o.DefineDataProperty(name, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
}

// byteArray makes a JavaScript array of the bytes' values.
func byteArray(r *goja.Runtime, b []byte) *goja.Object {
	items := make([]any, len(b))
	for i, x := range b {
		items[i] = int64(x)
	}
	return r.NewArray(items...)
}

// toJS copies a Go value of a JSON shape into plain JavaScript values (so
// that the script cannot write into the caller's maps).
func toJS(r *goja.Runtime, v any, depth int) (goja.Value, error) {
	if depth > 32 {
		return nil, fmt.Errorf("data nested deeper than 32")
	}
	switch v := v.(type) {
	case nil:
		return goja.Null(), nil
	case map[string]any:
		o := r.NewObject()
		for k, e := range v {
			js, err := toJS(r, e, depth+1)
			if err != nil {
				return nil, err
			}
			define(o, k, js)
		}
		return o, nil
	case []any:
		items := make([]any, len(v))
		for i, e := range v {
			js, err := toJS(r, e, depth+1)
			if err != nil {
				return nil, err
			}
			items[i] = js
		}
		return r.NewArray(items...), nil
	case string, bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return r.ToValue(v), nil
	}
	return nil, fmt.Errorf("data holds a %T, not a JSON value", v)
}

// copyData copies a Go value of a JSON shape (the types toJS takes), so
// that a call does not read the caller's maps after it returned.
func copyData(v any, depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("data nested deeper than 32")
	}
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return map[string]any(nil), nil
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := copyData(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		if v == nil {
			return []any(nil), nil
		}
		out := make([]any, len(v))
		for i, e := range v {
			c, err := copyData(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case nil, string, bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return v, nil
	}
	return nil, fmt.Errorf("data holds a %T, not a JSON value", v)
}

// converter turns a script's result into Go values, within the size and
// depth limits, refusing cycles.
type converter struct {
	budget   int
	maxDepth int
	path     []*goja.Object
}

func (c *Codec) converter() *converter {
	return &converter{budget: c.lim.MaxOutputBytes, maxDepth: c.lim.MaxOutputDepth}
}

// result is the members of a formatter's result object.
type result struct {
	data, bytes, fPort goja.Value
	warnings           []string
}

// result reads {data, bytes, fPort, warnings, errors}; a non-empty errors
// is a failure.
func (cv *converter) result(c *Codec, op string, res goja.Value) (result, error) {
	obj, ok := res.(*goja.Object)
	if !ok || isFunction(obj) {
		return result{}, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "did not return an object"}
	}
	errs, err := cv.strings(c, op, obj.Get("errors"), "errors")
	if err != nil {
		return result{}, err
	}
	if len(errs) > 0 {
		return result{}, &Error{CodecID: c.id, Op: op, Reason: ReasonErrors, Errors: errs}
	}
	warnings, err := cv.strings(c, op, obj.Get("warnings"), "warnings")
	if err != nil {
		return result{}, err
	}
	return result{data: obj.Get("data"), bytes: obj.Get("bytes"), fPort: obj.Get("fPort"), warnings: warnings}, nil
}

// strings reads an optional array of strings (warnings, errors).
func (cv *converter) strings(c *Codec, op string, v goja.Value, what string) ([]string, error) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, nil
	}
	x, err := cv.value(v, 1)
	if err != nil {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: what + ": " + err.Error()}
	}
	arr, ok := x.([]any)
	if !ok {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: what + " is not an array"}
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: fmt.Sprintf("%s[%d] is not a string", what, i)}
		}
		out[i] = s
	}
	return out, nil
}

// dataObject converts data, which must be an object (not an array).
func (cv *converter) dataObject(c *Codec, op string, v goja.Value) (map[string]any, error) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "no data"}
	}
	x, err := cv.value(v, 0)
	if err != nil {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "data: " + err.Error()}
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "data is not an object"}
	}
	return m, nil
}

// normalized converts normalizeUplink's data: one measurement object or an
// array of them.
func (cv *converter) normalized(c *Codec, op string, v goja.Value, out *UplinkOutput) error {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	x, err := cv.value(v, 0)
	if err != nil {
		return &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "data: " + err.Error()}
	}
	switch x := x.(type) {
	case map[string]any:
		out.Normalized = []map[string]any{x}
	case []any:
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: fmt.Sprintf("data[%d] is not an object", i)}
			}
			out.Normalized = append(out.Normalized, m)
		}
	default:
		return &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "data is neither an object nor an array"}
	}
	return nil
}

// bytes converts an encoder's bytes: an array of integers from 0 to 255.
func (cv *converter) bytes(c *Codec, op string, v goja.Value) ([]byte, error) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "no bytes"}
	}
	x, err := cv.value(v, 1)
	if err != nil {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "bytes: " + err.Error()}
	}
	var arr []any
	switch x := x.(type) {
	case []any:
		arr = x
	case map[string]any: // a typed array reads as an object of indices
		arr = make([]any, len(x))
		for i := range arr {
			arr[i] = x[strconv.Itoa(i)]
		}
	default:
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: "bytes is not an array"}
	}
	if len(arr) > 255 {
		return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: fmt.Sprintf("%d bytes, at most 255", len(arr))}
	}
	out := make([]byte, len(arr))
	for i, e := range arr {
		f, ok := e.(float64)
		if !ok || f != math.Trunc(f) || f < 0 || f > 255 {
			return nil, &Error{CodecID: c.id, Op: op, Reason: ReasonOutput, Detail: fmt.Sprintf("bytes[%d] is not an integer from 0 to 255", i)}
		}
		out[i] = byte(f)
	}
	return out, nil
}

// isFunction reports whether o is callable.
func isFunction(o *goja.Object) bool {
	_, ok := goja.AssertFunction(o)
	return ok
}

// spend takes n bytes of the output budget.
func (cv *converter) spend(n int) error {
	cv.budget -= n
	if cv.budget < 0 {
		return fmt.Errorf("larger than the output limit")
	}
	return nil
}

// value converts a JavaScript value as JSON.stringify would see it:
// functions and undefined members are left out, a Date becomes its RFC 3339
// text, NaN and Infinity are refused (JSON has none), and so are cycles,
// nesting past the depth limit, and a result past the size limit.
func (cv *converter) value(v goja.Value, depth int) (any, error) {
	if depth > cv.maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", cv.maxDepth)
	}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, cv.spend(4)
	}
	if _, ok := v.(*goja.Symbol); ok {
		return nil, fmt.Errorf("a symbol is not a JSON value")
	}
	obj, ok := v.(*goja.Object)
	if !ok {
		switch e := v.Export().(type) {
		case bool:
			return e, cv.spend(5)
		case string:
			return e, cv.spend(len(e) + 2)
		case int64:
			return float64(e), cv.spend(8)
		case float64:
			if math.IsNaN(e) || math.IsInf(e, 0) {
				return nil, fmt.Errorf("%v is not a JSON number", e)
			}
			return e, cv.spend(8)
		}
		return nil, fmt.Errorf("a %s is not a JSON value", v.ExportType())
	}
	if obj.ClassName() == "Date" {
		if t, ok := obj.Export().(time.Time); ok {
			return t.UTC().Format(time.RFC3339Nano), cv.spend(32)
		}
		return nil, cv.spend(4) // an invalid date, as JSON.stringify writes it
	}
	if isFunction(obj) {
		return nil, nil
	}
	for _, p := range cv.path {
		if p == obj {
			return nil, fmt.Errorf("cyclic")
		}
	}
	cv.path = append(cv.path, obj)
	defer func() { cv.path = cv.path[:len(cv.path)-1] }()
	if obj.ClassName() == "Array" {
		var n int64
		if l := obj.Get("length"); l != nil {
			n = l.ToInteger()
		}
		if n < 0 || int64(cv.budget) < n {
			return nil, fmt.Errorf("an array of %d elements is larger than the output limit", n)
		}
		out := make([]any, 0, n)
		for i := int64(0); i < n; i++ {
			e, err := cv.value(obj.Get(strconv.FormatInt(i, 10)), depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, e)
			if err := cv.spend(1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	keys := obj.Keys()
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		if err := cv.spend(len(k) + 4); err != nil {
			return nil, err
		}
		ev := obj.Get(k)
		if ev == nil || goja.IsUndefined(ev) {
			continue
		}
		if o, ok := ev.(*goja.Object); ok && isFunction(o) {
			continue
		}
		e, err := cv.value(ev, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = e
	}
	return out, nil
}
