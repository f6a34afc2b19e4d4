package codec

import (
	"fmt"
	"strings"
)

// Reason names why a codec call failed. The values are stable: they appear
// in events and metrics.
type Reason string

// The reasons a codec call fails.
const (
	// ReasonCompile: the script does not compile, is too large, or its
	// top-level code failed.
	ReasonCompile Reason = "compile"
	// ReasonMissing: the script defines no function for the operation.
	ReasonMissing Reason = "missing_function"
	// ReasonInput: the input is too large or cannot be given to the
	// script.
	ReasonInput Reason = "input"
	// ReasonTimeout: the call ran past its time limit, or its context
	// ended.
	ReasonTimeout Reason = "timeout"
	// ReasonMemory: the process heap grew past the limit during the call.
	ReasonMemory Reason = "memory"
	// ReasonStackOverflow: the call nested deeper than the stack limit.
	ReasonStackOverflow Reason = "stack_overflow"
	// ReasonException: the script threw.
	ReasonException Reason = "exception"
	// ReasonErrors: the script returned a non-empty errors array.
	ReasonErrors Reason = "output_errors"
	// ReasonOutput: the result has the wrong shape (no data object, a
	// warning that is not a string, a byte out of range), is too large or
	// too deep, cyclic, or not representable in JSON (NaN, Infinity).
	ReasonOutput Reason = "output"
	// ReasonInternal: the engine failed (a recovered panic).
	ReasonInternal Reason = "internal"
)

// Error is a failed codec call.
type Error struct {
	// CodecID is the codec's ID.
	CodecID string
	// Op is the operation: "compile", "decodeUplink", "normalizeUplink",
	// "encodeDownlink" or "decodeDownlink".
	Op string
	// Reason is why it failed.
	Reason Reason
	// Detail says more, in words (at most 512 bytes).
	Detail string
	// Errors are the script's own errors, for ReasonErrors.
	Errors []string
}

// Error describes the failure.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "codec %s: %s: %s", e.CodecID, e.Op, e.Reason)
	if len(e.Errors) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(e.Errors, ", "))
	} else if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

// Is reports whether target is an *Error with the same Reason (or a zero
// Reason), so that errors.Is(err, &codec.Error{Reason: codec.ReasonTimeout})
// works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && (t.Reason == "" || t.Reason == e.Reason) && (t.CodecID == "" || t.CodecID == e.CodecID)
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
