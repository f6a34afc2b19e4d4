package service

import (
	"fmt"
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
// within the window behind the newest.
type seenKey struct {
	newest int64
	times  map[int64]struct{}
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
	if _, ok := s.times[t]; ok {
		return Duplicate
	}
	if t < s.newest-int64(d.window) {
		return Stale
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
	ns := t.UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	if v := d.check(key, ns); v != New {
		return v, nil
	}
	var b Batch
	if fn != nil {
		if err := fn(&b); err != nil {
			return New, err
		}
	}
	b.Set(d.st, dedupKey(key, ns), nil)
	var dropped []int64
	if s := d.keys[key]; s != nil && ns > s.newest {
		for old := range s.times {
			if old < ns-int64(d.window) {
				b.Delete(d.st, dedupKey(key, old))
				dropped = append(dropped, old)
			}
		}
	}
	if err := d.st.Apply(&b); err != nil {
		return New, fmt.Errorf("service: dedup %s: %w", key, err)
	}
	for _, old := range dropped {
		delete(d.keys[key].times, old)
	}
	d.remember(key, ns)
	return New, nil
}

func (d *Dedup) remember(key string, t int64) {
	s := d.keys[key]
	if s == nil {
		s = &seenKey{newest: t, times: make(map[int64]struct{})}
		d.keys[key] = s
	}
	s.times[t] = struct{}{}
	s.newest = max(s.newest, t)
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
