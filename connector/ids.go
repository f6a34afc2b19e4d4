package connector

import (
	"encoding/hex"
	"fmt"
)

// EUI64 is a 64-bit extended unique identifier: a DevEUI, JoinEUI or gateway
// EUI. Its zero value is the all-zero EUI, which LoRaWAN does not assign, so
// it also stands for "absent". Its text form is 16 hexadecimal digits, upper
// case as The Things Stack writes them; parsing accepts either case.
type EUI64 [8]byte

// ParseEUI64 parses 16 hexadecimal digits (either case) into an EUI64.
func ParseEUI64(s string) (EUI64, error) {
	var e EUI64
	if err := decodeHex(e[:], s, "EUI64"); err != nil {
		return EUI64{}, err
	}
	return e, nil
}

// IsZero reports whether e is the all-zero EUI.
func (e EUI64) IsZero() bool { return e == EUI64{} }

// String returns e as 16 upper-case hexadecimal digits.
func (e EUI64) String() string { return upperHex(e[:]) }

// Lower returns e as 16 lower-case hexadecimal digits, as ChirpStack writes
// them.
func (e EUI64) Lower() string { return hex.EncodeToString(e[:]) }

// MarshalText writes e as 16 upper-case hexadecimal digits.
func (e EUI64) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText reads 16 hexadecimal digits; an empty text is the zero EUI,
// as protobuf JSON writes an empty byte string.
func (e *EUI64) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*e = EUI64{}
		return nil
	}
	return decodeHex(e[:], string(b), "EUI64")
}

// DevAddr is a 32-bit LoRaWAN device address, assigned per session. Its text
// form is 8 hexadecimal digits, upper case; parsing accepts either case.
type DevAddr [4]byte

// ParseDevAddr parses 8 hexadecimal digits (either case) into a DevAddr.
func ParseDevAddr(s string) (DevAddr, error) {
	var a DevAddr
	if err := decodeHex(a[:], s, "DevAddr"); err != nil {
		return DevAddr{}, err
	}
	return a, nil
}

// IsZero reports whether a is 00000000.
func (a DevAddr) IsZero() bool { return a == DevAddr{} }

// String returns a as 8 upper-case hexadecimal digits.
func (a DevAddr) String() string { return upperHex(a[:]) }

// Lower returns a as 8 lower-case hexadecimal digits, as ChirpStack writes
// them.
func (a DevAddr) Lower() string { return hex.EncodeToString(a[:]) }

// MarshalText writes a as 8 upper-case hexadecimal digits.
func (a DevAddr) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads 8 hexadecimal digits; an empty text is the zero
// address.
func (a *DevAddr) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*a = DevAddr{}
		return nil
	}
	return decodeHex(a[:], string(b), "DevAddr")
}

// decodeHex decodes exactly 2*len(dst) hexadecimal digits into dst.
func decodeHex(dst []byte, s, what string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%s %q: want %d hexadecimal digits, have %d", what, s, 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%s %q: not hexadecimal", what, s)
	}
	return nil
}

const upperDigits = "0123456789ABCDEF"

// upperHex returns b as upper-case hexadecimal digits.
func upperHex(b []byte) string {
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i] = upperDigits[c>>4]
		out[2*i+1] = upperDigits[c&0x0f]
	}
	return string(out)
}
