package service

import "time"

// Retry paces the retries of work that may fail for a while, such as
// publishing a service's retained results while the broker is away: after
// a failure the next attempt comes after a back-off that doubles, from Min
// up to Max; a success resets it. A loop calls Done after each attempt and
// waits on C (beside its other channels) for the next.
type Retry struct {
	// Min and Max bound the back-off (defaults 50 ms and 30 s).
	Min, Max time.Duration

	t    *time.Timer
	next time.Duration
}

// Done records the outcome of an attempt: after a failure C fires once
// the back-off has passed.
func (r *Retry) Done(ok bool) {
	lo, hi := r.Min, r.Max
	if lo <= 0 {
		lo = 50 * time.Millisecond
	}
	if hi < lo {
		hi = max(lo, 30*time.Second)
	}
	if ok {
		r.next = lo
		return
	}
	r.next = min(max(r.next, lo), hi)
	if r.t == nil {
		r.t = time.NewTimer(r.next)
	} else {
		r.t.Reset(r.next)
	}
	r.next = min(2*r.next, hi)
}

// C fires when a failed attempt should be retried; nil (never ready)
// before the first failure.
func (r *Retry) C() <-chan time.Time {
	if r.t == nil {
		return nil
	}
	return r.t.C
}

// Stop releases the timer.
func (r *Retry) Stop() {
	if r.t != nil {
		r.t.Stop()
	}
}
