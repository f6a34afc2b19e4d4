package service

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	type flushed struct {
		key string
		v   int
	}
	cases := []struct {
		name string
		puts []flushed
		// stopEarly ends Run before d passes: the final flush must send
		// what is pending.
		stopEarly bool
		want      map[string]int
	}{
		{"coalesces a key", []flushed{{"a", 1}, {"a", 2}, {"a", 3}}, false, map[string]int{"a": 3}},
		{"keys apart", []flushed{{"a", 1}, {"b", 2}, {"a", 4}}, false, map[string]int{"a": 4, "b": 2}},
		{"flushes on shutdown", []flushed{{"a", 1}, {"b", 2}, {"a", 5}}, true, map[string]int{"a": 5, "b": 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := 50 * time.Millisecond
			if c.stopEarly {
				d = time.Hour
			}
			var mu sync.Mutex
			got := map[string][]int{}
			done := make(chan struct{}, 10)
			db := NewDebouncer(d, func(ctx context.Context, k string, v int) {
				mu.Lock()
				got[k] = append(got[k], v)
				mu.Unlock()
				done <- struct{}{}
			})
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { db.Run(ctx); close(ran) }()
			for _, p := range c.puts {
				db.Put(p.key, p.v)
			}
			if c.stopEarly {
				cancel()
				<-ran
			}
			deadline := time.After(5 * time.Second)
			for range c.want {
				select {
				case <-done:
				case <-deadline:
					t.Fatalf("flushed %v within 5 s, want %v", got, c.want)
				}
			}
			cancel()
			<-ran
			mu.Lock()
			defer mu.Unlock()
			for k, v := range c.want {
				if len(got[k]) != 1 || got[k][0] != v {
					t.Errorf("key %s flushed %v, want once %d", k, got[k], v)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("flushed %v, want %v", got, c.want)
			}
			if db.Pending() != 0 {
				t.Errorf("%d pending after Run", db.Pending())
			}
		})
	}
}

func TestDebouncerFlushesAgainAfterAFlush(t *testing.T) {
	flushes := make(chan int, 10)
	db := NewDebouncer(20*time.Millisecond, func(_ context.Context, _ string, v int) { flushes <- v })
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { db.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	for want := 1; want <= 3; want++ {
		db.Put("a", want)
		select {
		case v := <-flushes:
			if v != want {
				t.Fatalf("flushed %d, want %d", v, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("value %d not flushed within 5 s", want)
		}
	}
}
