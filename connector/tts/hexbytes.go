package tts

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// HexBytes are bytes the stack writes as upper-case hexadecimal rather than
// base64: a NetID ("000013").
type HexBytes []byte

// MarshalText writes b as upper-case hexadecimal.
func (b HexBytes) MarshalText() ([]byte, error) {
	return []byte(strings.ToUpper(hex.EncodeToString(b))), nil
}

// UnmarshalText reads hexadecimal in either case.
func (b *HexBytes) UnmarshalText(text []byte) error {
	out := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(out, text); err != nil {
		return fmt.Errorf("hexadecimal %q: %w", text, err)
	}
	if len(out) == 0 {
		out = nil
	}
	*b = out
	return nil
}
