package service

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Verdict is what an idempotence guard says of an event.
type Verdict int

// The verdicts.
const (
	// New: the event was not applied before; apply it.
	New Verdict = iota
	// Duplicate: the same event (same key, same time) was applied
	// already, a QoS 1 redelivery or a copy through a second path.
	Duplicate
	// Stale: the event is older than what the guard can tell apart
	// (Dedup: older than its window behind the key's newest event;
	// Latest: older than the key's latest applied event).
	Stale
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case New:
		return "new"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Dedup remembers which events were applied, per key (an asset, a point,
// "asset/point"), by event time, within a window behind the newest event
// time of that key: an event is applied once however often the bus delivers
// it, in whatever order the events of the window arrive. The window is in
// event time, not in the time of arrival, and per key: a mesh link that
// drains an hour of one site's backlog at once delivers events that are
// new for their keys, however old. An event older than its key's window is
// Stale: a service that must apply late events (a meter reading for a
// closed billing period) keeps a longer window or its own record.
//
// What Dedup remembers is kept in a State (in the same atomic batch as the
// service's own writes, see Apply), so a restarted service does not apply
// again what it applied before it stopped. A Dedup is safe for concurrent
// use; Apply calls run one at a time.
type Dedup struct {
	st     State
	window time.Duration

	mu   sync.Mutex
	keys map[string]*seenKey
}

// seenKey is what a Dedup remembers of one key: the event times applied
// within the window behind the newest, sorted (events arrive mostly in
// order, so an insertion is mostly an append and pruning cuts a prefix).
type seenKey struct {
	times []int64
}

func (s *seenKey) newest() int64 { return s.times[len(s.times)-1] }

func (s *seenKey) has(t int64) bool {
	_, ok := slices.BinarySearch(s.times, t)
	return ok
}

func (s *seenKey) insert(t int64) {
	if n := len(s.times); n == 0 || t > s.times[n-1] {
		s.times = append(s.times, t)
		return
	}
	if i, ok := slices.BinarySearch(s.times, t); !ok {
		s.times = slices.Insert(s.times, i, t)
	}
}

// below returns how many of the times are below limit: the prefix to prune.
func (s *seenKey) below(limit int64) int {
	i, _ := slices.BinarySearch(s.times, limit)
	return i
}

// NewDedup returns a Dedup with the given window that keeps its memory in
// st (give it a namespace of its own: env.State.Sub("dedup")), loading what
// st holds.
func NewDedup(st State, window time.Duration) (*Dedup, error) {
	if window <= 0 {
		return nil, fmt.Errorf("service: dedup window %v, want > 0", window)
	}
	d := &Dedup{st: st, window: window, keys: make(map[string]*seenKey)}
	err := st.Scan("", func(k string, _ []byte) error {
		i := strings.LastIndexByte(k, 0)
		if i < 0 {
			return nil
		}
		t, err := strconv.ParseUint(k[i+1:], 16, 64)
		if err != nil {
			return nil
		}
		d.remember(k[:i], int64(t))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("service: load dedup: %w", err)
	}
	return d, nil
}

// Check tells whether the event of key at t would be applied, without
// recording anything.
func (d *Dedup) Check(key string, t time.Time) Verdict {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.check(key, t.UnixNano())
}

func (d *Dedup) check(key string, t int64) Verdict {
	s := d.keys[key]
	if s == nil {
		return New
	}
	if t < s.newest()-int64(d.window) {
		return Stale
	}
	if s.has(t) {
		return Duplicate
	}
	return New
}

// Apply applies the event of key at t once: when it is New, it calls fn
// with a batch for fn's writes to the service's state, adds the record of
// the event (and the removal of records that fell out of the window) to the
// same batch, and applies the batch atomically. When fn or the write fails
// nothing is recorded, so a redelivery is applied again. It returns the
// event's verdict; fn is not called unless it is New.
func (d *Dedup) Apply(key string, t time.Time, fn func(b *Batch) error) (Verdict, error) {
	vs, err := d.ApplyAll([]Event{{Key: key, Time: t}}, func(_ int, b *Batch) error {
		if fn == nil {
			return nil
		}
		return fn(b)
	})
	if err != nil {
		return New, err
	}
	return vs[0], nil
}

// Event names one event for ApplyAll: its key and event time.
type Event struct {
	Key  string
	Time time.Time
}

// ApplyAll is Apply for several events at once, in one atomic batch and so
// one sync of the state: a service that drains what its subscription
// delivered (a mesh link's backlog arrives thousands at a time) pays one
// write for all of them instead of one each. fn is called, in order, for
// each event that is New — also against the events before it in evs, so a
// copy within evs is a Duplicate. If fn or the write fails, nothing of the
// whole batch is recorded.
func (d *Dedup) ApplyAll(evs []Event, fn func(i int, b *Batch) error) ([]Verdict, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	vs := make([]Verdict, len(evs))
	var b Batch
	// added holds, per key touched, the times this batch records; d is
	// changed only once the batch is written.
	type addition struct {
		times  seenKey
		newest int64
	}
	added := make(map[string]*addition)
	for i, e := range evs {
		ns := e.Time.UnixNano()
		a := added[e.Key]
		if a == nil {
			a = &addition{newest: math.MinInt64}
			if s := d.keys[e.Key]; s != nil {
				a.newest = s.newest()
			}
			added[e.Key] = a
		}
		old := d.keys[e.Key]
		switch {
		case a.newest != math.MinInt64 && ns < a.newest-int64(d.window):
			vs[i] = Stale
		case old != nil && old.has(ns), len(a.times.times) > 0 && a.times.has(ns):
			vs[i] = Duplicate
		}
		if vs[i] != New {
			continue
		}
		if fn != nil {
			if err := fn(i, &b); err != nil {
				return nil, err
			}
		}
		b.Set(d.st, dedupKey(e.Key, ns), nil)
		a.times.insert(ns)
		a.newest = max(a.newest, ns)
	}
	// Records that fell out of their key's window go in the same batch.
	cut := make(map[string]int, len(added))
	for key, a := range added {
		limit := a.newest - int64(d.window)
		if old := d.keys[key]; old != nil {
			n := old.below(limit)
			for _, t := range old.times[:n] {
				b.Delete(d.st, dedupKey(key, t))
			}
			cut[key] = n
		}
		for _, t := range a.times.times {
			if t < limit {
				b.Delete(d.st, dedupKey(key, t))
			}
		}
	}
	if err := d.st.Apply(&b); err != nil {
		return nil, fmt.Errorf("service: dedup: %w", err)
	}
	for key, a := range added {
		s := d.keys[key]
		if s == nil {
			s = &seenKey{}
			d.keys[key] = s
		}
		if n := cut[key]; n > 0 {
			s.times = s.times[n:]
			if cap(s.times) > 64 && cap(s.times) > 4*len(s.times) {
				s.times = slices.Clone(s.times) // let go of the pruned prefix
			}
		}
		limit := a.newest - int64(d.window)
		for _, t := range a.times.times {
			if t >= limit {
				s.insert(t)
			}
		}
		if len(s.times) == 0 {
			delete(d.keys, key)
		}
	}
	return vs, nil
}

func (d *Dedup) remember(key string, t int64) {
	s := d.keys[key]
	if s == nil {
		s = &seenKey{}
		d.keys[key] = s
	}
	s.insert(t)
}

// Len reports how many event records the Dedup holds, over all keys.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, s := range d.keys {
		n += len(s.times)
	}
	return n
}

// dedupKey is the state key of the record of key's event at t: the key, a
// NUL byte, and t in 16 hexadecimal digits.
func dedupKey(key string, t int64) string {
	return fmt.Sprintf("%s\x00%016x", key, uint64(t))
}

// Latest is the "latest wins by event time" guard: per key it remembers the
// event time of the last event applied, and applies only a newer one. An
// asset's state, a twin's value, a risk computed from the latest weather
// take it: a late or redelivered older event never overwrites a newer one.
// Its memory is kept in a State like Dedup's; one entry per key, kept until
// Forget.
type Latest struct {
	st State

	mu sync.Mutex
	m  map[string]int64
}

// NewLatest returns a Latest that keeps its memory in st, loading what st
// holds.
func NewLatest(st State) (*Latest, error) {
	l := &Latest{st: st, m: make(map[string]int64)}
	err := st.Scan("", func(k string, v []byte) error {
		t, err := strconv.ParseInt(string(v), 10, 64)
		if err == nil {
			l.m[k] = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("service: load latest: %w", err)
	}
	return l, nil
}

// Check tells whether an event of key at t is newer than the latest applied
// (New), the same time (Duplicate) or older (Stale).
func (l *Latest) Check(key string, t time.Time) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.check(key, t.UnixNano())
}

func (l *Latest) check(key string, t int64) Verdict {
	last, ok := l.m[key]
	switch {
	case !ok || t > last:
		return New
	case t == last:
		return Duplicate
	}
	return Stale
}

// Get returns the event time of key's latest applied event.
func (l *Latest) Get(key string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.m[key]
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, t).UTC(), true
}

// Apply applies the event of key at t if it is newer than key's latest:
// fn's writes and the new latest time go to the state in one atomic batch.
// It returns the verdict; fn is called only for New.
func (l *Latest) Apply(key string, t time.Time, fn func(b *Batch) error) (Verdict, error) {
	ns := t.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := l.check(key, ns); v != New {
		return v, nil
	}
	var b Batch
	if fn != nil {
		if err := fn(&b); err != nil {
			return New, err
		}
	}
	b.Set(l.st, key, strconv.AppendInt(nil, ns, 10))
	if err := l.st.Apply(&b); err != nil {
		return New, fmt.Errorf("service: latest %s: %w", key, err)
	}
	l.m[key] = ns
	return New, nil
}

// Forget drops key's memory (an asset that was removed).
func (l *Latest) Forget(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b Batch
	b.Delete(l.st, key)
	if err := l.st.Apply(&b); err != nil {
		return fmt.Errorf("service: latest %s: %w", key, err)
	}
	delete(l.m, key)
	return nil
}
