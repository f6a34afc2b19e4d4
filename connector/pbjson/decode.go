package pbjson

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/citymesh/citymesh/connector"
)

// The Read functions below read one value of the protocol buffers JSON
// mapping from a jsontext.Decoder, as the network servers' parsers do on
// their hot path: a hand-written reader over JSON tokens allocates only the
// values it keeps and is about three times as fast as reflection
// (connector/tts BenchmarkParse). They accept what a conforming protobuf
// JSON parser accepts: null for any field (the default value), integers as
// numbers or strings, floats as numbers, strings or "NaN"/"Infinity", and
// base64 in either alphabet.

// ErrValue is a JSON value of the wrong type or out of range for its field.
// Errors of the Read functions wrap it (or are a *jsontext.SyntacticError
// for malformed JSON).
var ErrValue = errors.New("invalid value")

// kindName names a JSON kind for error messages.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "nothing"
}

func wrongType(want string, have jsontext.Kind) error {
	return fmt.Errorf("%w: want %s, have %s", ErrValue, want, kindName(have))
}

// ReadObject reads an object, calling field for each member with the
// member's name (valid only until field reads from d); field must read or
// skip the member's value. null is an absent object: present is false.
// An error from field is returned prefixed with the member's name, so that
// errors name the path to the bad value.
func ReadObject(d *jsontext.Decoder, field func(d *jsontext.Decoder, name []byte) error) (present bool, err error) {
	tok, err := d.ReadToken()
	if err != nil {
		return false, err
	}
	switch tok.Kind() {
	case 'n':
		return false, nil
	case '{':
	default:
		return false, wrongType("an object", tok.Kind())
	}
	var buf [64]byte
	for {
		switch d.PeekKind() {
		case '}':
			_, err := d.ReadToken()
			return true, err
		case 0:
			_, err := d.ReadToken()
			return true, err
		}
		raw, err := d.ReadValue()
		if err != nil {
			return true, err
		}
		name := []byte(raw[1 : len(raw)-1])
		if bytes.IndexByte(name, '\\') >= 0 {
			if name, err = jsontext.AppendUnquote(buf[:0], raw); err != nil {
				return true, err
			}
		}
		if err := field(d, name); err != nil {
			return true, fmt.Errorf("%s: %w", name, err)
		}
	}
}

// ReadArray reads an array, calling elem for each element; elem must read
// or skip it. null is an empty array.
func ReadArray(d *jsontext.Decoder, elem func(d *jsontext.Decoder, i int) error) error {
	tok, err := d.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case 'n':
		return nil
	case '[':
	default:
		return wrongType("an array", tok.Kind())
	}
	for i := 0; ; i++ {
		switch d.PeekKind() {
		case ']', 0:
			_, err := d.ReadToken()
			return err
		}
		if err := elem(d, i); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
}

// readScalar reads a value that is not an object or array; it returns the
// raw value (valid until the next read) and its kind.
func readScalar(d *jsontext.Decoder) (jsontext.Value, jsontext.Kind, error) {
	k := d.PeekKind()
	if k == '{' || k == '[' {
		if err := d.SkipValue(); err != nil {
			return nil, 0, err
		}
		return nil, k, nil
	}
	v, err := d.ReadValue()
	if err != nil {
		return nil, 0, err
	}
	return v, v.Kind(), nil
}

// stringBytes returns the contents of a raw JSON string, unquoting it into
// buf only when it has escapes.
func stringBytes(raw jsontext.Value, buf []byte) ([]byte, error) {
	s := []byte(raw[1 : len(raw)-1])
	if bytes.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	return jsontext.AppendUnquote(buf[:0], raw)
}

// ReadString reads a string; null is "".
func ReadString(d *jsontext.Decoder) (string, error) {
	v, k, err := readScalar(d)
	switch {
	case err != nil:
		return "", err
	case k == 'n':
		return "", nil
	case k != '"':
		return "", wrongType("a string", k)
	}
	var buf [64]byte
	s, err := stringBytes(v, buf[:0])
	if err != nil {
		return "", err
	}
	return string(s), nil
}

// ReadStrings reads an array of strings; null is nil.
func ReadStrings(d *jsontext.Decoder) ([]string, error) {
	var out []string
	err := ReadArray(d, func(d *jsontext.Decoder, _ int) error {
		s, err := ReadString(d)
		out = append(out, s)
		return err
	})
	return out, err
}

// ReadStringMap reads an object of strings (a map<string, string>).
func ReadStringMap(d *jsontext.Decoder) (map[string]string, error) {
	var out map[string]string
	_, err := ReadObject(d, func(d *jsontext.Decoder, name []byte) error {
		s, err := ReadString(d)
		if err != nil {
			return err
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[string(name)] = s
		return nil
	})
	return out, err
}

// ReadBool reads a boolean; null is false.
func ReadBool(d *jsontext.Decoder) (bool, error) {
	tok, err := d.ReadToken()
	if err != nil {
		return false, err
	}
	switch tok.Kind() {
	case 't':
		return true, nil
	case 'f', 'n':
		return false, nil
	case '{', '[':
		if err := d.SkipValue(); err != nil {
			return false, err
		}
	}
	return false, wrongType("a boolean", tok.Kind())
}

// numberBytes returns the text of an integer or float field's value,
// quoted or not; ok is false for null.
func numberBytes(d *jsontext.Decoder, want string) (b []byte, ok bool, err error) {
	v, k, err := readScalar(d)
	switch {
	case err != nil:
		return nil, false, err
	case k == 'n':
		return nil, false, nil
	case k == '0':
		return v, true, nil
	case k == '"':
		s := v[1 : len(v)-1]
		if len(s) == 0 || bytes.IndexByte(s, '\\') >= 0 {
			return nil, false, fmt.Errorf("%w: want %s, have %s", ErrValue, want, v)
		}
		return s, true, nil
	}
	return nil, false, wrongType(want, k)
}

// readInteger parses an integer field's value within [min, max].
func readInteger(d *jsontext.Decoder, min, max float64, want string) (int64, uint64, error) {
	b, ok, err := numberBytes(d, want)
	if err != nil || !ok {
		return 0, 0, err
	}
	if b[0] != '-' {
		if u, err := strconv.ParseUint(string(b), 10, 64); err == nil {
			if float64(u) > max {
				return 0, 0, fmt.Errorf("%w: %s out of range for %s", ErrValue, b, want)
			}
			return int64(u), u, nil
		}
	} else if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		if float64(i) < min {
			return 0, 0, fmt.Errorf("%w: %s out of range for %s", ErrValue, b, want)
		}
		return i, uint64(i), nil
	}
	f, err := exactInteger(string(b))
	if err != nil || f < min || f > max {
		return 0, 0, fmt.Errorf("%w: want %s, have %s", ErrValue, want, b)
	}
	if f < 0 {
		return int64(f), 0, nil
	}
	return int64(f), uint64(f), nil
}

// ReadUint32 reads a uint32 field.
func ReadUint32(d *jsontext.Decoder) (uint32, error) {
	_, u, err := readInteger(d, 0, math.MaxUint32, "an unsigned 32-bit integer")
	return uint32(u), err
}

// ReadInt32 reads an int32 field.
func ReadInt32(d *jsontext.Decoder) (int32, error) {
	i, _, err := readInteger(d, math.MinInt32, math.MaxInt32, "a 32-bit integer")
	return int32(i), err
}

// ReadUint64 reads a uint64 field.
func ReadUint64(d *jsontext.Decoder) (uint64, error) {
	_, u, err := readInteger(d, 0, math.MaxUint64, "an unsigned 64-bit integer")
	return u, err
}

// ReadInt64 reads an int64 field.
func ReadInt64(d *jsontext.Decoder) (int64, error) {
	i, _, err := readInteger(d, math.MinInt64, math.MaxInt64, "a 64-bit integer")
	return i, err
}

// ReadFloat64 reads a double field: a number, a quoted number, or "NaN",
// "Infinity", "-Infinity".
func ReadFloat64(d *jsontext.Decoder) (float64, error) {
	b, ok, err := numberBytes(d, "a number")
	if err != nil || !ok {
		return 0, err
	}
	switch string(b) {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: want a number, have %s", ErrValue, b)
	}
	return f, nil
}

// ReadFloat32 reads a float field.
func ReadFloat32(d *jsontext.Decoder) (float32, error) {
	f, err := ReadFloat64(d)
	if err != nil {
		return 0, err
	}
	if !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
		return 0, fmt.Errorf("%w: %g out of range for a float", ErrValue, f)
	}
	return float32(f), nil
}

// ReadTime reads a google.protobuf.Timestamp (RFC 3339); null is the zero
// time.
func ReadTime(d *jsontext.Decoder) (time.Time, error) {
	v, k, err := readScalar(d)
	switch {
	case err != nil:
		return time.Time{}, err
	case k == 'n':
		return time.Time{}, nil
	case k != '"':
		return time.Time{}, wrongType("an RFC 3339 timestamp", k)
	}
	t, err := time.Parse(time.RFC3339Nano, string(v[1:len(v)-1]))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: want an RFC 3339 timestamp, have %s", ErrValue, v)
	}
	return t, nil
}

// ReadDuration reads a google.protobuf.Duration ("1.5s").
func ReadDuration(d *jsontext.Decoder) (time.Duration, error) {
	v, k, err := readScalar(d)
	switch {
	case err != nil:
		return 0, err
	case k == 'n':
		return 0, nil
	case k != '"':
		return 0, wrongType("a duration such as \"1.5s\"", k)
	}
	t, err := ParseDuration(string(v[1 : len(v)-1]))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrValue, err)
	}
	return t, nil
}

// ReadBytes reads a bytes field (base64); null and "" are nil.
func ReadBytes(d *jsontext.Decoder) ([]byte, error) {
	v, k, err := readScalar(d)
	switch {
	case err != nil:
		return nil, err
	case k == 'n':
		return nil, nil
	case k != '"':
		return nil, wrongType("a base64 string", k)
	}
	b, err := DecodeBase64(v[1 : len(v)-1])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrValue, err)
	}
	return b, nil
}

// ReadEnum reads an enum field: its name, or its number.
func ReadEnum(d *jsontext.Decoder) (Enum, error) {
	v, k, err := readScalar(d)
	switch {
	case err != nil:
		return "", err
	case k == 'n':
		return "", nil
	case k == '"':
		var buf [32]byte
		s, err := stringBytes(v, buf[:0])
		return Enum(s), err
	case k == '0':
		if _, err := strconv.ParseInt(string(v), 10, 32); err != nil {
			return "", fmt.Errorf("%w: want an enum name or number, have %s", ErrValue, v)
		}
		return Enum(v), nil
	}
	return "", wrongType("an enum name or number", k)
}

// hexText reads a string field of hexadecimal digits into dst via
// unmarshal; null and "" leave it zero.
func hexText(d *jsontext.Decoder, unmarshal func([]byte) error) error {
	v, k, err := readScalar(d)
	switch {
	case err != nil:
		return err
	case k == 'n':
		return nil
	case k != '"':
		return wrongType("a hexadecimal string", k)
	}
	if err := unmarshal(v[1 : len(v)-1]); err != nil {
		return fmt.Errorf("%w: %v", ErrValue, err)
	}
	return nil
}

// ReadEUI64 reads an EUI written as 16 hexadecimal digits.
func ReadEUI64(d *jsontext.Decoder) (connector.EUI64, error) {
	var e connector.EUI64
	err := hexText(d, e.UnmarshalText)
	return e, err
}

// ReadDevAddr reads a DevAddr written as 8 hexadecimal digits.
func ReadDevAddr(d *jsontext.Decoder) (connector.DevAddr, error) {
	var a connector.DevAddr
	err := hexText(d, a.UnmarshalText)
	return a, err
}

// ReadStruct reads a google.protobuf.Struct: a JSON object, as
// map[string]any with float64 numbers. null is nil.
func ReadStruct(d *jsontext.Decoder) (map[string]any, error) {
	if d.PeekKind() == 'n' {
		_, err := d.ReadToken()
		return nil, err
	}
	if k := d.PeekKind(); k != '{' {
		if k == 0 {
			_, err := d.ReadToken()
			return nil, err
		}
		_ = d.SkipValue()
		return nil, wrongType("an object", k)
	}
	v, err := ReadAny(d)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// ReadAny reads any JSON value as encoding/json would into an any:
// map[string]any, []any, string, float64, bool or nil.
func ReadAny(d *jsontext.Decoder) (any, error) {
	switch d.PeekKind() {
	case '{':
		m := make(map[string]any)
		_, err := ReadObject(d, func(d *jsontext.Decoder, name []byte) error {
			v, err := ReadAny(d)
			m[string(name)] = v
			return err
		})
		return m, err
	case '[':
		a := []any{}
		err := ReadArray(d, func(d *jsontext.Decoder, _ int) error {
			v, err := ReadAny(d)
			a = append(a, v)
			return err
		})
		return a, err
	}
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		return tok.String(), nil
	case '0':
		f, err := tok.Float()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: number out of range", ErrValue)
		}
		return f, nil
	}
	return nil, fmt.Errorf("%w: unexpected %s", ErrValue, tok.Kind())
}
