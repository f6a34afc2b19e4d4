package campus

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds of mistake a campus file can hold. Every *Error wraps one, so
// errors.Is(err, campus.ErrDuplicateID) tells what went wrong.
var (
	ErrSyntax            = errors.New("not valid YAML or not the expected type")
	ErrUnknownField      = errors.New("unknown field")
	ErrMissing           = errors.New("required field missing")
	ErrBadID             = errors.New("bad id")
	ErrDuplicateID       = errors.New("duplicate id")
	ErrUnknownReference  = errors.New("unknown reference")
	ErrBadGeometry       = errors.New("bad geometry")
	ErrOutOfRange        = errors.New("out of range")
	ErrUnknownQuantity   = errors.New("unknown quantity")
	ErrUnitMismatch      = errors.New("unit does not fit the quantity")
	ErrBadDevEUI         = errors.New("bad DevEUI")
	ErrBadInterval       = errors.New("bad interval")
	ErrUnknownOBIS       = errors.New("unknown OBIS code")
	ErrUnknownDeviceType = errors.New("unknown device type")
	ErrBadRoute          = errors.New("bad robot route")
	ErrFile              = errors.New("referenced file")
	ErrInvalid           = errors.New("invalid value")
)

// Error is one mistake in a campus file: where (file, line, column, and
// the field's path such as devices[3].dev_eui) and what.
type Error struct {
	File   string
	Line   int // 0 when unknown
	Column int
	// Field is the path of the value at fault: "buildings[2].footprint".
	Field string
	// Err is one of the Err… kinds above.
	Err error
	// Msg says what is wrong, in a person's words.
	Msg string
}

// Error formats the mistake as file:line:column: field: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the kind of mistake.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every mistake found in a campus file, in file order. Load
// reports up to MaxErrors of them.
type Errors []*Error

// MaxErrors is the most mistakes Load collects before it stops.
const MaxErrors = 50

// Error lists the mistakes, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the mistakes, so errors.Is and errors.As see each.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
