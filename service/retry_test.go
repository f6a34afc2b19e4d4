package service

import (
	"testing"
	"time"
)

// TestRetry: failures double the back-off from Min up to Max, a success
// resets it, and C fires once per failure after the back-off.
func TestRetry(t *testing.T) {
	r := &Retry{Min: 10 * time.Millisecond, Max: 40 * time.Millisecond}
	defer r.Stop()
	if r.C() != nil {
		t.Fatal("C before any failure is not nil")
	}
	var waits []time.Duration
	for _, ok := range []bool{false, false, false, false, true, false} {
		r.Done(ok)
		if ok {
			continue
		}
		start := time.Now()
		select {
		case <-r.C():
		case <-time.After(5 * time.Second):
			t.Fatal("C did not fire")
		}
		waits = append(waits, time.Since(start))
	}
	want := []time.Duration{10, 20, 40, 40, 10}
	for i, w := range want {
		if waits[i] < w*time.Millisecond {
			t.Errorf("retry %d after %v, want at least %v", i+1, waits[i], w*time.Millisecond)
		}
	}
	var zero Retry // the defaults
	zero.Done(false)
	defer zero.Stop()
	if zero.next != 100*time.Millisecond {
		t.Errorf("the zero Retry's next back-off after a failure: %v, want 100ms", zero.next)
	}
}
