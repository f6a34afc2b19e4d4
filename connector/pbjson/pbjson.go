// Package pbjson has the scalar types of the protocol buffers JSON mapping
// (https://protobuf.dev/programming-guides/json/) that encoding/json does not
// read or write the same way, for the network servers' messages: 64-bit
// integers written as JSON strings, bytes as base64, durations as
// "1.5s", and enum values as their names (or numbers).
//
// Each type reads every form a conforming parser must accept and writes the
// form The Things Stack and ChirpStack write.
package pbjson

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Uint64 is a protobuf uint64 or fixed64. JSON writes it as a decimal
// string ("867500000"); a number is accepted too.
type Uint64 uint64

// MarshalJSON writes u as a quoted decimal.
func (u Uint64) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 22)
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(u), 10)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a quoted or bare decimal (an exponent form such as
// 1e3 is accepted when it is an exact integer). null leaves u as it is.
func (u *Uint64) UnmarshalJSON(b []byte) error {
	s, ok, err := numberText(b)
	if err != nil || !ok {
		return err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		f, ferr := exactInteger(s)
		if ferr != nil || f < 0 || f >= 1<<64 {
			return fmt.Errorf("uint64 %s: %w", b, errNotInteger)
		}
		v = uint64(f)
	}
	*u = Uint64(v)
	return nil
}

// Int64 is a protobuf int64, sint64 or sfixed64. JSON writes it as a
// decimal string ("-2414"); a number is accepted too.
type Int64 int64

// MarshalJSON writes i as a quoted decimal.
func (i Int64) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 22)
	b = append(b, '"')
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a quoted or bare decimal. null leaves i as it is.
func (i *Int64) UnmarshalJSON(b []byte) error {
	s, ok, err := numberText(b)
	if err != nil || !ok {
		return err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := exactInteger(s)
		if ferr != nil || f < -(1<<63) || f >= 1<<63 {
			return fmt.Errorf("int64 %s: %w", b, errNotInteger)
		}
		v = int64(f)
	}
	*i = Int64(v)
	return nil
}

var errNotInteger = errors.New("not an integer in range")

// numberText returns the text of a JSON number, quoted or not; ok is false
// for null.
func numberText(b []byte) (s string, ok bool, err error) {
	if string(b) == "null" {
		return "", false, nil
	}
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	if len(b) == 0 {
		return "", false, errors.New("empty number")
	}
	return string(b), true, nil
}

// exactInteger parses a number that has a fraction or exponent and is an
// exact integer (1e3, 5.0).
func exactInteger(s string) (float64, error) {
	if !strings.ContainsAny(s, ".eE") {
		return 0, errNotInteger // an integer that ParseInt or ParseUint refused
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) {
		return 0, errNotInteger
	}
	return f, nil
}

// Bytes is a protobuf bytes field. JSON writes it as standard base64 with
// padding; standard and URL-safe alphabets, with or without padding, are
// accepted. Empty and null are both an empty (nil) Bytes.
type Bytes []byte

// MarshalJSON writes b as quoted standard base64.
func (b Bytes) MarshalJSON() ([]byte, error) {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(b))+2)
	out[0] = '"'
	base64.StdEncoding.Encode(out[1:], b)
	out[len(out)-1] = '"'
	return out, nil
}

// UnmarshalJSON reads base64 in any of the accepted forms.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return fmt.Errorf("bytes: want a base64 string, have %.20s", data)
	}
	out, err := DecodeBase64(data[1 : len(data)-1])
	if err != nil {
		return err
	}
	*b = out
	return nil
}

// DecodeBase64 decodes base64 in any form protobuf JSON accepts: the
// standard or URL-safe alphabet, with or without padding. Empty input is a
// nil slice.
func DecodeBase64(s []byte) ([]byte, error) {
	if len(s) == 0 {
		return nil, nil
	}
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, errors.New("bytes: escapes in base64 are not accepted")
	}
	enc := base64.StdEncoding
	if bytes.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	out := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(out, s)
	if err != nil {
		return nil, fmt.Errorf("bytes: invalid base64: %w", err)
	}
	return out[:n], nil
}

// Duration is a google.protobuf.Duration. JSON writes it as seconds with an
// "s" suffix and 0, 3, 6 or 9 fractional digits ("0.205824s").
type Duration time.Duration

// MarshalJSON writes d in the protobuf form.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + FormatDuration(time.Duration(d)) + `"`), nil
}

// UnmarshalJSON reads the protobuf form: an optional minus, seconds, an
// optional fraction of up to 9 digits, and "s". null leaves d as it is.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("duration: want a string such as \"1.5s\", have %.20s", b)
	}
	v, err := ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses the protobuf JSON form of a duration ("-1.5s").
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if !strings.HasSuffix(s, "s") {
		return 0, fmt.Errorf("duration %q: no s suffix", orig)
	}
	s = s[:len(s)-1]
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(frac) > 9 || (hasFrac && frac == "") || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("duration %q: want seconds such as 1.5s", orig)
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	// time.Duration holds about 292 years; protobuf allows 10000.
	if err != nil || sec > 9223372036 {
		return 0, fmt.Errorf("duration %q: out of range", orig)
	}
	var nanos int64
	if frac != "" {
		nanos, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	v := time.Duration(sec)*time.Second + time.Duration(nanos)
	if v < 0 {
		return 0, fmt.Errorf("duration %q: out of range", orig)
	}
	if neg {
		v = -v
	}
	return v, nil
}

// FormatDuration writes d in the protobuf JSON form, with 0, 3, 6 or 9
// fractional digits as protobuf's own encoders do.
func FormatDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	sec, nanos := int64(d/time.Second), int64(d%time.Second)
	switch {
	case nanos == 0:
		return fmt.Sprintf("%s%ds", sign, sec)
	case nanos%1e6 == 0:
		return fmt.Sprintf("%s%d.%03ds", sign, sec, nanos/1e6)
	case nanos%1e3 == 0:
		return fmt.Sprintf("%s%d.%06ds", sign, sec, nanos/1e3)
	default:
		return fmt.Sprintf("%s%d.%09ds", sign, sec, nanos)
	}
}

// digits reports whether s is only ASCII digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Enum is a protobuf enum value, kept as its name ("SOURCE_GPS"). JSON
// writes the name; a number is accepted too and kept as its decimal text,
// since the receiver may not know a newer enum's names.
type Enum string

// UnmarshalJSON reads a name or a number.
func (e *Enum) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := jsonString(b, &s); err != nil {
			return err
		}
		*e = Enum(s)
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 32); err != nil {
		return fmt.Errorf("enum: want a name or an integer, have %.20s", b)
	}
	*e = Enum(b)
	return nil
}
