package live

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/citymesh/citymesh/energy"
)

// The service's durable state (Env.State) holds the readings themselves,
// compactly: one value per register and UTC day, the day's readings as
// 16-byte records (Unix nanoseconds, IEEE 754 value bits), sorted by time
// and value, each (time, value) once. A redelivered reading finds itself
// there and changes nothing; a conflicting value at the same time is kept
// beside the other, so that energy.Consume reports the conflict as the
// batch model does. Keys:
//
//	r/{meter}/{obis}/{YYYY-MM-DD}         readings of the register's UTC day
//	x/{meter}/{obis}/{unix nanoseconds}   an exchange record (JSON-free: 16 bytes)
//	final/{site}/{YYYY-MM}/{tenant}        a closed month's final invoice (JSON)
//	esg/{site}/{YYYY-MM}                   a closed month's ESG figures (JSON)
//	closed/{site}/{YYYY-MM}                a closed month
const recordSize = 16

// point is one reading of a register.
type point struct {
	t int64 // Unix nanoseconds
	v float64
}

func (p point) cmp(q point) int {
	switch {
	case p.t < q.t:
		return -1
	case p.t > q.t:
		return 1
	case p.v < q.v:
		return -1
	case p.v > q.v:
		return 1
	}
	return 0
}

// dayKey returns the state key of register k's UTC day d (YYYY-MM-DD).
func dayKey(k energy.RegisterKey, d string) string {
	return "r/" + k.Meter + "/" + k.OBIS.String() + "/" + d
}

func dayOf(t int64) string { return time.Unix(0, t).UTC().Format(time.DateOnly) }

func encodeDay(ps []point) []byte {
	b := make([]byte, len(ps)*recordSize)
	for i, p := range ps {
		binary.BigEndian.PutUint64(b[i*recordSize:], uint64(p.t))
		binary.BigEndian.PutUint64(b[i*recordSize+8:], math.Float64bits(p.v))
	}
	return b
}

func decodeDay(b []byte) ([]point, error) {
	if len(b)%recordSize != 0 {
		return nil, fmt.Errorf("readings record of %d bytes is not a multiple of %d", len(b), recordSize)
	}
	ps := make([]point, len(b)/recordSize)
	for i := range ps {
		ps[i] = point{t: int64(binary.BigEndian.Uint64(b[i*recordSize:])), v: math.Float64frombits(binary.BigEndian.Uint64(b[i*recordSize+8:]))}
	}
	return ps, nil
}

// insert adds p to the sorted ps unless it is there; it reports whether it
// was added.
func insert(ps []point, p point) ([]point, bool) {
	i, found := slices.BinarySearchFunc(ps, p, point.cmp)
	if found {
		return ps, false
	}
	return slices.Insert(ps, i, p), true
}

// parseRegisterKey parses "{meter}/{obis}/{rest}" after a prefix.
func parseRegisterKey(s string) (energy.RegisterKey, string, error) {
	meter, rest, ok := strings.Cut(s, "/")
	if !ok {
		return energy.RegisterKey{}, "", fmt.Errorf("state key %q: no register", s)
	}
	obis, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return energy.RegisterKey{}, "", fmt.Errorf("state key %q: no register", s)
	}
	o, err := energy.ParseOBIS(obis)
	if err != nil {
		return energy.RegisterKey{}, "", fmt.Errorf("state key %q: %w", s, err)
	}
	return energy.RegisterKey{Meter: meter, OBIS: o}, rest, nil
}

func encodeExchange(e energy.Exchange) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, math.Float64bits(e.OldFinal))
	binary.BigEndian.PutUint64(b[8:], math.Float64bits(e.NewStart))
	return b
}

func decodeExchange(t int64, b []byte) (energy.Exchange, error) {
	if len(b) != 16 {
		return energy.Exchange{}, fmt.Errorf("exchange record of %d bytes, want 16", len(b))
	}
	return energy.Exchange{Time: time.Unix(0, t).UTC(), OldFinal: math.Float64frombits(binary.BigEndian.Uint64(b)),
		NewStart: math.Float64frombits(binary.BigEndian.Uint64(b[8:]))}, nil
}
