package energy

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Register describes one cumulative register: where it wraps and when its
// meter was exchanged. The zero value (apart from the key) is a register that
// never wraps, has no power limit and was never exchanged.
type Register struct {
	Meter string
	OBIS  OBIS
	// Max is the value at which the register wraps to zero (10^digits, e.g.
	// 1e6 for a six-digit kWh register). Zero means it never wraps; a
	// decrease is then a reset.
	Max float64
	// MaxRate is the highest physically possible consumption per hour
	// (e.g. the main fuse's power in kW for a kWh register). A larger rate
	// between two readings is reported as a spike. Zero disables the check.
	MaxRate float64
	// Exchanges lists meter exchanges: at Time the old meter's register
	// stood at OldFinal and the new one's at NewStart.
	Exchanges []Exchange
}

// Exchange records a meter exchange: the old meter's final reading and the
// new meter's start reading at the time of the exchange. Readings at or after
// Time are from the new meter.
type Exchange struct {
	Time     time.Time `json:"time" yaml:"time"`
	OldFinal float64   `json:"old_final" yaml:"old_final"`
	NewStart float64   `json:"new_start" yaml:"new_start"`
}

// Options controls Consume. The zero value means 15-minute intervals, gaps
// longer than one interval left unfilled.
type Options struct {
	// Interval is the length of an interval; intervals start on multiples
	// of it since Go's zero time (time.Time.Truncate), which for any length
	// that divides a day are the UTC quarter hours, hours, ... (for 15
	// minutes and UTC offsets of whole quarter hours these are the local
	// quarter hours too). Zero means 15 minutes.
	Interval time.Duration
	// MaxGap is the longest span between two readings that is treated as
	// continuous data. Zero means one Interval. A longer span is a gap.
	MaxGap time.Duration
	// FillGaps apportions a gap's consumption to the intervals it spans by
	// linear interpolation between the readings; those intervals are marked
	// Estimated. Without it a gap's consumption stays in the Gap record only.
	FillGaps bool
}

func (o Options) interval() time.Duration {
	if o.Interval == 0 {
		return 15 * time.Minute
	}
	return o.Interval
}

func (o Options) maxGap() time.Duration {
	if o.MaxGap == 0 {
		return o.interval()
	}
	return o.MaxGap
}

// Interval is the consumption of one register in [Start, Start+Interval).
type Interval struct {
	Start time.Time `json:"start"`
	Value float64   `json:"value"`
	// Estimated is set when some of Value was apportioned by linear
	// interpolation between readings that lie in different intervals.
	Estimated bool `json:"estimated,omitempty"`
	// Complete is set when reading pairs used cover the whole interval;
	// an interval at the edge of the data or next to an unfilled gap is not
	// complete.
	Complete bool `json:"complete"`
}

// Gap is a span between two consecutive readings longer than Options.MaxGap.
type Gap struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Delta float64   `json:"delta"`
	// Filled is set when Delta was apportioned to intervals (estimated).
	Filled bool `json:"filled"`
}

// Event kinds reported by Consume.
const (
	EventConflict = "conflicting-duplicate"
	EventRollover = "rollover"
	EventReset    = "reset"
	EventExchange = "exchange"
	EventSpike    = "spike"
)

// Event is something Consume noticed and handled in a stated way.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

// Series is the interval consumption of one register.
type Series struct {
	Meter     string        `json:"meter"`
	OBIS      string        `json:"obis"`
	Unit      string        `json:"unit,omitempty"`
	Interval  time.Duration `json:"-"`
	Intervals []Interval    `json:"intervals"`
	Gaps      []Gap         `json:"gaps,omitempty"`
	Events    []Event       `json:"events,omitempty"`
	// Total is the register's whole consumption between its first and last
	// usable reading, including unfilled gaps.
	Total float64 `json:"total"`
	// Readings counts readings used; Duplicates counts identical duplicates
	// dropped; Conflicts counts timestamps dropped for conflicting values.
	Readings   int `json:"readings"`
	Duplicates int `json:"duplicates"`
	Conflicts  int `json:"conflicts"`
}

// maxIntervals bounds the intervals one series may hold (measured or
// filled), so a stray timestamp cannot make Consume allocate without limit;
// maxSpan bounds the time from the first to the last reading, well inside
// time.Duration's ±292 years.
const (
	maxIntervals = 4_000_000
	maxSpan      = 200 * 366 * 24 * time.Hour
)

// Consume computes the interval consumption of register reg from readings
// (readings of other registers are ignored). The result does not depend on
// the order of readings: they are sorted by time; identical duplicates are
// dropped and counted; a timestamp with conflicting values is dropped and
// reported. A decrease is a rollover when reg.Max is set, the previous value
// is in the top tenth of the range, the new one in the bottom tenth and, if
// reg.MaxRate is set, the wrapped consumption is physically possible in the
// time between; otherwise it is a reset and the new value is taken as
// consumed since zero.
// A meter exchange between two readings counts the old meter up to its final
// reading and the new one from its start reading.
func Consume(readings []Reading, reg Register, opt Options) (Series, error) {
	key := RegisterKey{reg.Meter, reg.OBIS}
	var rs []Reading
	for _, r := range readings {
		if r.Key() == key {
			rs = append(rs, r)
		}
	}
	return consumeOwned(rs, reg, opt)
}

// ConsumeAll computes the series of every register in readings, in order of
// meter and OBIS code. regs gives register descriptions by key; a register
// without one gets the zero description.
func ConsumeAll(readings []Reading, regs map[RegisterKey]Register, opt Options) ([]Series, error) {
	groups := map[RegisterKey][]Reading{}
	for _, r := range readings {
		groups[r.Key()] = append(groups[r.Key()], r)
	}
	keys := make([]RegisterKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	out := make([]Series, 0, len(keys))
	for _, k := range keys {
		reg, ok := regs[k]
		if !ok {
			reg = Register{Meter: k.Meter, OBIS: k.OBIS}
		}
		s, err := consumeOwned(groups[k], reg, opt)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// consumeOwned is Consume on readings of one register that it may reorder.
func consumeOwned(rs []Reading, reg Register, opt Options) (Series, error) {
	step := opt.interval()
	s := Series{Meter: reg.Meter, OBIS: reg.OBIS.String(), Unit: reg.OBIS.Unit(), Interval: step}
	name := RegisterKey{reg.Meter, reg.OBIS}.String()
	if step <= 0 || opt.maxGap() < 0 {
		return s, fmt.Errorf("consumption %s: interval %v and max gap %v must be positive", name, step, opt.maxGap())
	}
	if reg.Max < 0 || reg.MaxRate < 0 || math.IsNaN(reg.Max) || math.IsNaN(reg.MaxRate) {
		return s, fmt.Errorf("consumption %s: register max %v and max rate %v must not be negative", name, reg.Max, reg.MaxRate)
	}
	for _, r := range rs {
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.Value < 0 {
			return s, fmt.Errorf("consumption %s: reading at %s: value %v is not a finite non-negative number", name, r.Time.Format(time.RFC3339), r.Value)
		}
		if reg.Max > 0 && r.Value >= reg.Max {
			return s, fmt.Errorf("consumption %s: reading at %s: value %v is not below the register maximum %v", name, r.Time.Format(time.RFC3339), r.Value, reg.Max)
		}
	}
	slices.SortFunc(rs, func(a, b Reading) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	// Drop duplicates: identical ones silently (counted), conflicting ones
	// entirely (reported), so no value is picked arbitrarily.
	clean := rs[:0]
	for i := 0; i < len(rs); {
		j := i + 1
		same := true
		for j < len(rs) && rs[j].Time.Equal(rs[i].Time) {
			if rs[j].Value != rs[i].Value {
				same = false
			}
			j++
		}
		switch {
		case same:
			s.Duplicates += j - i - 1
			clean = append(clean, rs[i])
		default:
			s.Conflicts++
			vals := ""
			for k := i; k < j; k++ {
				if k > i {
					vals += ", "
				}
				vals += strconv.FormatFloat(rs[k].Value, 'g', -1, 64)
			}
			s.Events = append(s.Events, Event{Time: rs[i].Time.UTC(), Kind: EventConflict,
				Detail: "readings with different values at the same time (" + vals + "); all dropped"})
		}
		i = j
	}
	rs = clean
	s.Readings = len(rs)
	if len(rs) < 2 {
		s.Intervals = []Interval{}
		return s, nil
	}
	exch := append([]Exchange(nil), reg.Exchanges...)
	sort.Slice(exch, func(i, j int) bool { return exch[i].Time.Before(exch[j].Time) })

	first, last := rs[0].Time, rs[len(rs)-1].Time
	base := first.Truncate(step)
	if last.Sub(base) >= maxSpan {
		return s, fmt.Errorf("consumption %s: readings from %s to %s span more than %v", name, first.Format(time.RFC3339), last.Format(time.RFC3339), maxSpan)
	}
	// Consecutive reading pairs touch non-decreasing interval indices, so
	// the intervals are built in order, one cell per touched interval:
	// an unfilled gap costs nothing however long it is.
	type cell struct {
		i     int64
		v     float64
		cover time.Duration
		est   bool
	}
	// Without filled gaps a series touches at most about one interval per
	// reading (two where a pair straddles a boundary).
	cells := make([]cell, 0, min(int64(last.Sub(base)/step)+1, int64(2*len(rs))))
	touch := func(i int64) *cell {
		if len(cells) == 0 || cells[len(cells)-1].i != i {
			cells = append(cells, cell{i: i})
		}
		return &cells[len(cells)-1]
	}
	maxGap := opt.maxGap()
	ei := 0
	for k := 1; k < len(rs); k++ {
		a, b := rs[k-1], rs[k]
		var d float64
		// Exchanges in (a.Time, b.Time].
		for ei < len(exch) && !exch[ei].Time.After(a.Time) {
			ei++
		}
		if ei < len(exch) && !exch[ei].Time.After(b.Time) {
			from := a.Value
			for ei < len(exch) && !exch[ei].Time.After(b.Time) {
				e := exch[ei]
				d += s.segment(e.Time, from, e.OldFinal, "old meter's final reading %g is below the previous reading %g; counted from zero")
				s.Events = append(s.Events, Event{Time: e.Time.UTC(), Kind: EventExchange,
					Detail: fmt.Sprintf("meter exchanged: old final %g, new start %g", e.OldFinal, e.NewStart)})
				from = e.NewStart
				ei++
			}
			d += s.segment(b.Time, from, b.Value, "reading %g is below the new meter's start %g; counted from zero")
		} else {
			d = b.Value - a.Value
			if d < 0 {
				wrapped := d + reg.Max
				plausible := reg.MaxRate == 0 || wrapped <= reg.MaxRate*b.Time.Sub(a.Time).Hours()
				if reg.Max > 0 && a.Value >= 0.9*reg.Max && b.Value < 0.1*reg.Max && plausible {
					d += reg.Max
					s.Events = append(s.Events, Event{Time: b.Time.UTC(), Kind: EventRollover,
						Detail: fmt.Sprintf("register wrapped at %g: %g -> %g", reg.Max, a.Value, b.Value)})
				} else {
					d = b.Value
					s.Events = append(s.Events, Event{Time: b.Time.UTC(), Kind: EventReset,
						Detail: fmt.Sprintf("register decreased %g -> %g; taken as a reset, counted from zero", a.Value, b.Value)})
				}
			}
		}
		span := b.Time.Sub(a.Time)
		if reg.MaxRate > 0 && d > reg.MaxRate*span.Hours() {
			s.Events = append(s.Events, Event{Time: b.Time.UTC(), Kind: EventSpike,
				Detail: fmt.Sprintf("%g in %v exceeds the maximum rate %g per hour; kept, check the reading", d, span, reg.MaxRate)})
		}
		s.Total += d
		if span > maxGap {
			s.Gaps = append(s.Gaps, Gap{From: a.Time.UTC(), To: b.Time.UTC(), Delta: d, Filled: opt.FillGaps})
			if !opt.FillGaps {
				continue
			}
		}
		i0 := int64(a.Time.Sub(base) / step)
		i1 := int64((b.Time.Sub(base) - 1) / step)
		if i1-i0+1+int64(len(cells)) > maxIntervals {
			return s, fmt.Errorf("consumption %s: readings from %s to %s span more than %d intervals of %v", name, first.Format(time.RFC3339), last.Format(time.RFC3339), maxIntervals, step)
		}
		if i0 == i1 {
			c := touch(i0)
			c.v += d
			c.cover += span
			continue
		}
		for i := i0; i <= i1; i++ {
			lo := base.Add(time.Duration(i) * step)
			hi := lo.Add(step)
			if lo.Before(a.Time) {
				lo = a.Time
			}
			if hi.After(b.Time) {
				hi = b.Time
			}
			ov := hi.Sub(lo)
			c := touch(i)
			c.v += d * (float64(ov) / float64(span))
			c.cover += ov
			c.est = true
		}
	}
	s.Intervals = make([]Interval, len(cells))
	for k, c := range cells {
		s.Intervals[k] = Interval{
			Start:     base.Add(time.Duration(c.i) * step).UTC(),
			Value:     c.v,
			Estimated: c.est,
			Complete:  c.cover == step,
		}
	}
	return s, nil
}

// segment returns the consumption from reading from to reading to of one
// meter; a decrease is taken as a reset (counted from zero) and reported
// with detail, a format of from and to.
func (s *Series) segment(at time.Time, from, to float64, detail string) float64 {
	if to >= from {
		return to - from
	}
	s.Events = append(s.Events, Event{Time: at.UTC(), Kind: EventReset, Detail: fmt.Sprintf(detail, to, from)})
	return to
}

// Between returns the sum of interval values with Start in [from, to) and
// whether every such interval was complete and measured.
func (s Series) Between(from, to time.Time) (sum float64, exact bool) {
	exact = true
	for _, iv := range s.Intervals {
		if iv.Start.Before(from) || !iv.Start.Before(to) {
			continue
		}
		sum += iv.Value
		if iv.Estimated || !iv.Complete {
			exact = false
		}
	}
	return sum, exact
}
