package service

import (
	"context"
	"sync"
	"time"
)

// ShutdownFlushTimeout bounds the final flush of a Debouncer whose Run's
// context ended.
const ShutdownFlushTimeout = 5 * time.Second

// Debouncer coalesces a service's derived results per key before they are
// published: Put replaces the key's pending value, and the value is flushed
// at most d after the first Put since the key's last flush — a meter that
// reads every second, or a mesh link draining an hour of backlog, costs
// one publish per key and period, with the latest value. Run flushes
// whatever is pending when its context ends. A Debouncer holds nothing
// durable: a value lost in a crash must be computable again from the
// service's State (it is derived, after all).
type Debouncer[V any] struct {
	d     time.Duration
	flush func(ctx context.Context, key string, v V)
	wake  chan struct{}

	mu      sync.Mutex
	pending map[string]*pendingValue[V]
}

type pendingValue[V any] struct {
	v   V
	due time.Time
}

// NewDebouncer returns a Debouncer that calls flush for each key at most d
// after its first pending Put. flush is called from Run's goroutine only,
// one key at a time; the ctx it gets outlives Run's by up to
// ShutdownFlushTimeout in the final flush.
func NewDebouncer[V any](d time.Duration, flush func(ctx context.Context, key string, v V)) *Debouncer[V] {
	return &Debouncer[V]{d: d, flush: flush, wake: make(chan struct{}, 1), pending: make(map[string]*pendingValue[V])}
}

// Put makes v the value of key to flush.
func (d *Debouncer[V]) Put(key string, v V) {
	d.mu.Lock()
	p := d.pending[key]
	first := p == nil
	if first {
		d.pending[key] = &pendingValue[V]{v: v, due: time.Now().Add(d.d)}
	} else {
		p.v = v
	}
	d.mu.Unlock()
	if first {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// Pending reports how many keys await a flush.
func (d *Debouncer[V]) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Run flushes the keys as they fall due until ctx ends, then flushes every
// key still pending and returns.
func (d *Debouncer[V]) Run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := d.flushDue(ctx, time.Now(), false)
		if next.IsZero() {
			t.Reset(time.Hour)
		} else {
			t.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownFlushTimeout)
			d.flushDue(fctx, time.Time{}, true)
			cancel()
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// flushDue flushes the keys due at now (every key with all set) and returns
// when the next one falls due, zero for none.
func (d *Debouncer[V]) flushDue(ctx context.Context, now time.Time, all bool) time.Time {
	type item struct {
		key string
		v   V
	}
	var due []item
	var next time.Time
	d.mu.Lock()
	for k, p := range d.pending {
		if all || !p.due.After(now) {
			due = append(due, item{k, p.v})
			delete(d.pending, k)
		} else if next.IsZero() || p.due.Before(next) {
			next = p.due
		}
	}
	d.mu.Unlock()
	for _, it := range due {
		d.flush(ctx, it.key, it.v)
	}
	return next
}
