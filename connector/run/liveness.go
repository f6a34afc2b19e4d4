package run

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// liveness finds devices that stopped sending. Every device that is not
// offline has one entry in a min-heap of deadlines, and one goroutine
// sleeps until the earliest: no timer or goroutine per device. An uplink
// only moves the device's last-seen time (under the device's own lock);
// the heap entry is corrected lazily when it comes due, so the hot path
// never touches the heap. A device found silent is handed to its own
// worker, which publishes the offline status in order with the device's
// uplinks (and checks again, in case an uplink came in between).
type liveness struct {
	clock  Clock
	expire func(ctx context.Context, d *device) // hands a silent device to its worker

	mu struct {
		sync.Mutex
		h deviceHeap
	}
	wake chan struct{} // an earlier deadline was added
}

func newLiveness(clock Clock, expire func(context.Context, *device)) *liveness {
	return &liveness{clock: clock, expire: expire, wake: make(chan struct{}, 1)}
}

// schedule adds d with deadline due unless it is in the heap already.
func (l *liveness) schedule(d *device, due time.Time) {
	l.mu.Lock()
	if d.live.index >= 0 {
		l.mu.Unlock()
		return
	}
	d.live.due = due
	heap.Push(&l.mu.h, d)
	first := l.mu.h[0] == d
	l.mu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// run fires the deadlines until ctx ends.
func (l *liveness) run(ctx context.Context) {
	var expired []*device
	for {
		expired = expired[:0]
		now := l.clock.Now()
		l.mu.Lock()
		for len(l.mu.h) > 0 && !l.mu.h[0].live.due.After(now) {
			d := heap.Pop(&l.mu.h).(*device)
			due, silent := d.deadline()
			switch {
			case silent && !due.After(now):
				expired = append(expired, d)
			case !silent:
				// Offline already: no entry until it is heard again.
			default:
				// Heard since the entry was made: its real deadline is later.
				d.live.due = due
				heap.Push(&l.mu.h, d)
			}
		}
		wait := time.Duration(-1)
		if len(l.mu.h) > 0 {
			wait = max(l.mu.h[0].live.due.Sub(now), 0)
		}
		l.mu.Unlock()
		for _, d := range expired {
			l.expire(ctx, d)
		}
		var fire <-chan time.Time
		var t Timer
		if wait >= 0 {
			t = l.clock.NewTimer(wait)
			fire = t.C()
		}
		select {
		case <-ctx.Done():
		case <-fire:
		case <-l.wake:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// len returns how many devices have a deadline.
func (l *liveness) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.h)
}

// liveEntry is a device's place in the liveness heap, guarded by
// liveness.mu.
type liveEntry struct {
	due   time.Time
	index int // -1 when not in the heap
}

// deviceHeap orders devices by deadline (container/heap).
type deviceHeap []*device

func (h deviceHeap) Len() int           { return len(h) }
func (h deviceHeap) Less(i, j int) bool { return h[i].live.due.Before(h[j].live.due) }
func (h deviceHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].live.index = i
	h[j].live.index = j
}

func (h *deviceHeap) Push(x any) {
	d := x.(*device)
	d.live.index = len(*h)
	*h = append(*h, d)
}

func (h *deviceHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	d.live.index = -1
	return d
}
