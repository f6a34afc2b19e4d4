package sim

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// SourceID identifies a source in a Scheduler: a point, a device, a meter,
// the robot. IDs are small integers chosen by the caller (an index into the
// caller's table of sources); the scheduler keeps 4 bytes per ID up to the
// largest one used.
type SourceID uint32

// Every says when a source emits: emission k is due at
//
//	epoch + Phase + k·Interval + jitter_k
//
// with jitter_k drawn uniformly from [0, Jitter) for each emission alone,
// so jitter never accumulates and a source never drifts. With Phase zero
// the slots fall on multiples of Interval since the Unix epoch (quarter
// hours for 15 minutes); Spread instead puts the phase at a fixed random
// point of the interval, different for each source, so that many sources
// with the same interval do not all fire at once.
type Every struct {
	Interval time.Duration
	Jitter   time.Duration
	Phase    time.Duration
	Spread   bool
}

// Due is one emission that is due.
type Due struct {
	Source SourceID
	// Seq numbers the source's emissions (k above); use it to make an
	// emission's random choices (and FaultSet.Delivery) deterministic.
	Seq uint64
	At  time.Time
}

// Scheduler hands out the emissions of many sources in time order. It
// keeps one entry per source in a 4-ary min-heap of next-due times, so
// memory is bounded by the number of sources and each emission costs
// O(log n). It runs no goroutine and reads no clock: AppendDue is given
// the time up to which to emit. A Scheduler is not safe for concurrent use.
type Scheduler struct {
	seed  uint64
	heap  []schedEntry
	gen   []uint32 // current generation of each source; 0 means absent
	live  int
	stale int
}

type schedEntry struct {
	due      int64 // ns since the epoch
	base     int64 // epoch + phase, ns
	interval int64
	jitter   int64
	k        uint64
	id       SourceID
	gen      uint32
}

// NewScheduler returns an empty scheduler; seed drives the jitter and the
// spread phases.
func NewScheduler(seed uint64) *Scheduler {
	return &Scheduler{seed: seed}
}

// Len returns the number of sources.
func (s *Scheduler) Len() int { return s.live }

// Add schedules source id from time from on: its first emission is the
// first slot at or after from. Adding an id that is present replaces its
// schedule.
func (s *Scheduler) Add(id SourceID, e Every, from time.Time) error {
	if e.Interval <= 0 {
		return fmt.Errorf("scheduler: source %d: interval %v must be positive", id, e.Interval)
	}
	if e.Jitter < 0 || e.Jitter > e.Interval {
		return fmt.Errorf("scheduler: source %d: jitter %v must lie between 0 and the interval %v", id, e.Jitter, e.Interval)
	}
	if e.Phase < 0 {
		return fmt.Errorf("scheduler: source %d: phase %v is negative", id, e.Phase)
	}
	if int(id) >= len(s.gen) {
		n := max(int(id)+1, 2*len(s.gen))
		g := make([]uint32, n)
		copy(g, s.gen)
		s.gen = g
	}
	if s.gen[id]%2 == 1 { // present: its old entry becomes stale
		s.live--
		s.stale++
	}
	s.gen[id]++
	if s.gen[id]%2 == 0 {
		s.gen[id]++
	}
	phase := int64(e.Phase)
	if e.Spread {
		phase = int64(unit(s.seed, stPhase, int64(id)) * float64(e.Interval))
	}
	en := schedEntry{base: phase, interval: int64(e.Interval), jitter: int64(e.Jitter), id: id, gen: s.gen[id]}
	f := from.UnixNano()
	if f > en.base {
		en.k = uint64((f - en.base + en.interval - 1) / en.interval)
	}
	en.due = en.slot(s.seed, en.k)
	s.live++
	s.push(en)
	return nil
}

// slot returns the due time of emission k.
func (en *schedEntry) slot(seed uint64, k uint64) int64 {
	t := en.base + int64(k)*en.interval
	if en.jitter > 0 {
		t += int64(unit(seed^uint64(en.id)*0x9e3779b97f4a7c15, stJitter, int64(k)) * float64(en.jitter))
	}
	return t
}

// Remove stops source id. Removing an absent id does nothing.
func (s *Scheduler) Remove(id SourceID) {
	if int(id) >= len(s.gen) || s.gen[id]%2 == 0 {
		return
	}
	s.gen[id]++ // even: absent
	s.live--
	s.stale++
	if s.stale > s.live+1024 {
		s.compact()
	}
}

// compact drops stale entries and rebuilds the heap.
func (s *Scheduler) compact() {
	h := s.heap[:0]
	for _, en := range s.heap {
		if s.gen[en.id] == en.gen {
			h = append(h, en)
		}
	}
	s.heap = h
	s.stale = 0
	for i := len(h)/4 + 1; i >= 0; i-- {
		s.down(i)
	}
}

// Next returns when the next emission is due; false when there are no
// sources.
func (s *Scheduler) Next() (time.Time, bool) {
	s.dropStale()
	if len(s.heap) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, s.heap[0].due), true
}

func (s *Scheduler) dropStale() {
	for len(s.heap) > 0 && s.gen[s.heap[0].id] != s.heap[0].gen {
		s.pop()
		s.stale--
	}
}

// AppendDue appends to dst, in time order (ties by source id), every
// emission due at or before until, at most max of them when max > 0, and
// schedules each source's next emission. Sources with the same due time
// come out in the order of their ids, so a run is reproducible.
func (s *Scheduler) AppendDue(dst []Due, until time.Time, max int) []Due {
	u := until.UnixNano()
	n := 0
	for len(s.heap) > 0 && (max <= 0 || n < max) {
		top := &s.heap[0]
		if s.gen[top.id] != top.gen {
			s.pop()
			s.stale--
			continue
		}
		if top.due > u {
			break
		}
		dst = append(dst, Due{Source: top.id, Seq: top.k, At: time.Unix(0, top.due)})
		n++
		top.k++
		top.due = top.slot(s.seed, top.k)
		s.down(0)
	}
	return dst
}

// less orders entries by due time, then source id.
func (s *Scheduler) less(i, j int) bool {
	a, b := &s.heap[i], &s.heap[j]
	if a.due != b.due {
		return a.due < b.due
	}
	return a.id < b.id
}

func (s *Scheduler) push(en schedEntry) {
	s.heap = append(s.heap, en)
	i := len(s.heap) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !s.less(i, p) {
			break
		}
		s.heap[i], s.heap[p] = s.heap[p], s.heap[i]
		i = p
	}
}

func (s *Scheduler) pop() {
	last := len(s.heap) - 1
	s.heap[0] = s.heap[last]
	s.heap = s.heap[:last]
	if last > 0 {
		s.down(0)
	}
}

func (s *Scheduler) down(i int) {
	n := len(s.heap)
	for {
		c := 4*i + 1
		if c >= n {
			return
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if s.less(j, m) {
				m = j
			}
		}
		if !s.less(m, i) {
			return
		}
		s.heap[i], s.heap[m] = s.heap[m], s.heap[i]
		i = m
	}
}

// AddEvenly schedules sources first … first+n−1 at the same interval with
// their phases spread evenly over it, so together they emit at a steady
// n/interval per second: the load mode (every point at a given rate).
func (s *Scheduler) AddEvenly(first SourceID, n int, interval time.Duration, from time.Time) error {
	if n < 0 || uint64(first)+uint64(n) > math.MaxUint32+1 {
		return errors.New("scheduler: source ids out of range")
	}
	for i := range n {
		ph := time.Duration(int64(interval) * int64(i) / int64(n))
		if err := s.Add(first+SourceID(i), Every{Interval: interval, Phase: ph}, from); err != nil {
			return err
		}
	}
	return nil
}

// SpreadInterval returns a fixed interval between lo and hi for the named
// source, so that devices configured "every 10 to 15 minutes" each keep
// their own interval (to the second).
func SpreadInterval(seed uint64, name string, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	d := lo + time.Duration(unit(SeedOf(seed, name), stPhase, 1)*float64(hi-lo))
	return d.Truncate(time.Second)
}

// OnChange decides when a value reported "on change" is sent: when it has
// moved by at least Threshold since the last report, or when MaxSilence has
// passed since it (a heartbeat). The first value is always reported. It
// keeps the last report only; the zero value reports every change.
type OnChange struct {
	// Threshold is the smallest change reported; 0 reports any change.
	Threshold float64
	// MaxSilence forces a report after this long; 0 never forces one.
	MaxSilence time.Duration

	last   float64
	lastAt int64
	has    bool
}

// Report says whether v at t is to be sent, and remembers it if so.
func (c *OnChange) Report(t time.Time, v float64) bool {
	now := t.UnixNano()
	switch {
	case !c.has,
		math.Abs(v-c.last) >= c.Threshold && v != c.last,
		c.MaxSilence > 0 && now-c.lastAt >= int64(c.MaxSilence):
		c.last, c.lastAt, c.has = v, now, true
		return true
	}
	return false
}
