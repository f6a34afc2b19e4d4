package service

import (
	"fmt"
	"testing"
	"time"
)

// stores returns the kinds of Store the guards are tested on: memory, and
// Pebble in a directory, each with a reopen function that gives the state
// as a restarted process finds it.
func stores(t *testing.T) map[string]func() (State, func() State) {
	return map[string]func() (State, func() State){
		"memory": func() (State, func() State) {
			s := NewMemoryStore()
			return s.State("svc"), func() State { return s.State("svc") }
		},
		"pebble": func() (State, func() State) {
			dir := t.TempDir()
			s, err := OpenStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			cur := s
			t.Cleanup(func() { cur.Close() })
			return s.State("svc"), func() State {
				if err := cur.Close(); err != nil {
					t.Fatal(err)
				}
				s2, err := OpenStore(dir)
				if err != nil {
					t.Fatal(err)
				}
				cur = s2
				return s2.State("svc")
			}
		},
	}
}

var t0 = time.Date(2026, 5, 12, 7, 0, 0, 0, time.UTC)

// ev is one delivery of an event to a guard.
type ev struct {
	key string
	min int // event time: t0 + min minutes
	// restart reopens the state and a new guard before this delivery.
	restart bool
	want    Verdict
}

func TestDedup(t *testing.T) {
	cases := []struct {
		name   string
		window time.Duration
		evs    []ev
	}{
		{"in order", time.Hour, []ev{{key: "a", min: 0, want: New}, {key: "a", min: 1, want: New}, {key: "a", min: 2, want: New}}},
		{"QoS 1 duplicate", time.Hour, []ev{{key: "a", min: 0, want: New}, {key: "a", min: 0, want: Duplicate}, {key: "a", min: 1, want: New}, {key: "a", min: 0, want: Duplicate}}},
		{"reordered within the window", time.Hour, []ev{{key: "a", min: 10, want: New}, {key: "a", min: 5, want: New}, {key: "a", min: 7, want: New}, {key: "a", min: 5, want: Duplicate}, {key: "a", min: 10, want: Duplicate}}},
		{"keys are separate", time.Hour, []ev{{key: "a", min: 0, want: New}, {key: "b", min: 0, want: New}, {key: "b", min: 0, want: Duplicate}}},
		{"older than the window", 30 * time.Minute, []ev{{key: "a", min: 60, want: New}, {key: "a", min: 20, want: Stale}, {key: "a", min: 30, want: New}}},
		{"window is per key: another key's backlog is new", 30 * time.Minute, []ev{{key: "live", min: 120, want: New}, {key: "edge", min: 0, want: New}, {key: "edge", min: 1, want: New}, {key: "edge", min: 0, want: Duplicate}}},
		{"restart keeps what was applied", time.Hour, []ev{{key: "a", min: 0, want: New}, {key: "a", min: 1, want: New}, {key: "a", min: 1, restart: true, want: Duplicate}, {key: "a", min: 0, want: Duplicate}, {key: "a", min: 2, want: New}}},
		{"restart after pruning", 10 * time.Minute, []ev{{key: "a", min: 0, want: New}, {key: "a", min: 30, want: New}, {key: "a", min: 0, restart: true, want: Stale}, {key: "a", min: 30, want: Duplicate}}},
	}
	for name, open := range stores(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				st, reopen := open()
				d, err := NewDedup(st.Sub("dedup"), c.window)
				if err != nil {
					t.Fatal(err)
				}
				applied := map[string]int{}
				for i, e := range c.evs {
					if e.restart {
						st = reopen()
						if d, err = NewDedup(st.Sub("dedup"), c.window); err != nil {
							t.Fatal(err)
						}
					}
					at := t0.Add(time.Duration(e.min) * time.Minute)
					if v := d.Check(e.key, at); v != e.want {
						t.Errorf("event %d (%s@%d): Check = %v, want %v", i, e.key, e.min, v, e.want)
					}
					v, err := d.Apply(e.key, at, func(b *Batch) error {
						b.Set(st, fmt.Sprintf("applied/%s/%d", e.key, e.min), []byte("1"))
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if v != e.want {
						t.Errorf("event %d (%s@%d): Apply = %v, want %v", i, e.key, e.min, v, e.want)
					}
					if v == New {
						applied[fmt.Sprintf("%s/%d", e.key, e.min)]++
					}
				}
				for k, n := range applied {
					if n != 1 {
						t.Errorf("%s applied %d times", k, n)
					}
					if _, ok, _ := st.Get("applied/" + k); !ok {
						t.Errorf("the service's write for %s is not in the state", k)
					}
				}
			})
		}
	}
}

// TestDedupApplyAll runs TestDedup's cases again, each stretch between
// restarts in one ApplyAll: one batch must say what one call per event
// says.
func TestDedupApplyAll(t *testing.T) {
	cases := []struct {
		name   string
		window time.Duration
		evs    []ev
	}{
		{"copies within the batch", time.Hour, []ev{{key: "a", min: 0, want: New}, {key: "a", min: 0, want: Duplicate}, {key: "b", min: 0, want: New}, {key: "a", min: 1, want: New}, {key: "a", min: 1, want: Duplicate}}},
		{"reordered", time.Hour, []ev{{key: "a", min: 10, want: New}, {key: "a", min: 5, want: New}, {key: "a", min: 5, want: Duplicate}}},
		{"window within the batch", 30 * time.Minute, []ev{{key: "a", min: 0, want: New}, {key: "a", min: 60, want: New}, {key: "a", min: 20, want: Stale}, {key: "a", min: 0, want: Stale}, {key: "a", min: 30, want: New}}},
		{"restart between batches", time.Hour, []ev{{key: "a", min: 0, want: New}, {key: "a", min: 1, want: New}, {key: "a", min: 1, restart: true, want: Duplicate}, {key: "a", min: 0, want: Duplicate}, {key: "a", min: 2, want: New}}},
		{"pruned in one batch, remembered after restart", 10 * time.Minute, []ev{{key: "a", min: 0, want: New}, {key: "a", min: 30, want: New}, {key: "a", min: 0, restart: true, want: Stale}, {key: "a", min: 30, want: Duplicate}, {key: "a", min: 25, want: New}}},
	}
	for name, open := range stores(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				st, reopen := open()
				d, err := NewDedup(st.Sub("dedup"), c.window)
				if err != nil {
					t.Fatal(err)
				}
				for start := 0; start < len(c.evs); {
					end := start + 1
					for end < len(c.evs) && !c.evs[end].restart {
						end++
					}
					if c.evs[start].restart {
						st = reopen()
						if d, err = NewDedup(st.Sub("dedup"), c.window); err != nil {
							t.Fatal(err)
						}
					}
					var batch []Event
					for _, e := range c.evs[start:end] {
						batch = append(batch, Event{Key: e.key, Time: t0.Add(time.Duration(e.min) * time.Minute)})
					}
					var called []int
					vs, err := d.ApplyAll(batch, func(i int, b *Batch) error { called = append(called, start+i); return nil })
					if err != nil {
						t.Fatal(err)
					}
					for i, v := range vs {
						if e := c.evs[start+i]; v != e.want {
							t.Errorf("event %d (%s@%d): %v, want %v", start+i, e.key, e.min, v, e.want)
						}
					}
					for _, i := range called {
						if c.evs[i].want != New {
							t.Errorf("fn called for event %d, which is %v", i, c.evs[i].want)
						}
					}
					start = end
				}
			})
		}
	}
}

func TestDedupFailedApplyIsNotRecorded(t *testing.T) {
	d, err := NewDedup(NewMemoryStore().State("svc"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	boom := fmt.Errorf("model refused")
	if _, err := d.Apply("a", t0, func(*Batch) error { return boom }); err != boom {
		t.Fatalf("Apply = %v, want the function's error", err)
	}
	if v := d.Check("a", t0); v != New {
		t.Fatalf("after a failed apply the redelivery is %v, want new", v)
	}
	if _, err := NewDedup(NewMemoryStore().State("x"), 0); err == nil {
		t.Fatal("a window of 0 was accepted")
	}
}

func TestLatest(t *testing.T) {
	cases := []struct {
		name string
		evs  []ev
	}{
		{"in order", []ev{{key: "a", min: 0, want: New}, {key: "a", min: 1, want: New}}},
		{"duplicate", []ev{{key: "a", min: 1, want: New}, {key: "a", min: 1, want: Duplicate}}},
		{"older loses", []ev{{key: "a", min: 5, want: New}, {key: "a", min: 3, want: Stale}, {key: "a", min: 6, want: New}}},
		{"keys are separate", []ev{{key: "a", min: 5, want: New}, {key: "b", min: 3, want: New}}},
		{"restart keeps the latest", []ev{{key: "a", min: 5, want: New}, {key: "a", min: 4, restart: true, want: Stale}, {key: "a", min: 5, want: Duplicate}, {key: "a", min: 9, want: New}}},
	}
	for name, open := range stores(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				st, reopen := open()
				l, err := NewLatest(st.Sub("latest"))
				if err != nil {
					t.Fatal(err)
				}
				for i, e := range c.evs {
					if e.restart {
						st = reopen()
						if l, err = NewLatest(st.Sub("latest")); err != nil {
							t.Fatal(err)
						}
					}
					at := t0.Add(time.Duration(e.min) * time.Minute)
					v, err := l.Apply(e.key, at, func(b *Batch) error {
						b.Set(st, "value/"+e.key, []byte(fmt.Sprint(e.min)))
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if v != e.want {
						t.Errorf("event %d (%s@%d): %v, want %v", i, e.key, e.min, v, e.want)
					}
				}
				// The value kept is the one of the newest event of each key.
				newest := map[string]int{}
				for _, e := range c.evs {
					newest[e.key] = max(newest[e.key], e.min)
				}
				for k, m := range newest {
					v, _, _ := st.Get("value/" + k)
					if string(v) != fmt.Sprint(m) {
						t.Errorf("value of %s = %s, want %d", k, v, m)
					}
					if got, _ := l.Get(k); !got.Equal(t0.Add(time.Duration(m) * time.Minute)) {
						t.Errorf("Get(%s) = %v", k, got)
					}
				}
			})
		}
	}
}

func TestStateNamespaces(t *testing.T) {
	s := NewMemoryStore()
	a, b := s.State("a"), s.State("ab")
	var bt Batch
	bt.Set(a, "k", []byte("1"))
	bt.Set(a.Sub("inner"), "k", []byte("2"))
	bt.Set(b, "k", []byte("3"))
	if err := a.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	var keys []string
	a.Scan("", func(k string, v []byte) error { keys = append(keys, k+"="+string(v)); return nil })
	if fmt.Sprint(keys) != "[inner\x00k=2 k=1]" {
		t.Errorf("a sees %q", keys)
	}
	if v, ok, _ := b.Get("k"); !ok || string(v) != "3" {
		t.Errorf("b's k = %q %v", v, ok)
	}
	if v, _, _ := a.Sub("inner").Get("k"); string(v) != "2" {
		t.Errorf("a/inner's k = %q", v)
	}
	bt = Batch{}
	bt.Delete(a, "k")
	a.Apply(&bt)
	if _, ok, _ := a.Get("k"); ok {
		t.Error("deleted key still there")
	}
}
