package service

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkDedupApply is the cost of applying one new event with its
// record, on each kind of store (Pebble syncs each batch).
func BenchmarkDedupApply(b *testing.B) {
	for _, kind := range []string{"memory", "pebble"} {
		b.Run(kind, func(b *testing.B) {
			s := NewMemoryStore()
			if kind == "pebble" {
				var err error
				if s, err = OpenStore(b.TempDir()); err != nil {
					b.Fatal(err)
				}
				defer s.Close()
			}
			st := s.State("svc")
			d, err := NewDedup(st.Sub("dedup"), time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			val := []byte("12345.6")
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				key := "el-" + strconv.Itoa(i%1000)
				if _, err := d.Apply(key, t0.Add(time.Duration(i)*time.Second), func(bt *Batch) error {
					bt.Set(st, key, val)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDedupApplyAll is the cost per event of applying events 1,000
// at a time (a backlog being drained), on each kind of store.
func BenchmarkDedupApplyAll(b *testing.B) {
	for _, kind := range []string{"memory", "pebble"} {
		b.Run(kind, func(b *testing.B) {
			s := NewMemoryStore()
			if kind == "pebble" {
				var err error
				if s, err = OpenStore(b.TempDir()); err != nil {
					b.Fatal(err)
				}
				defer s.Close()
			}
			st := s.State("svc")
			d, err := NewDedup(st.Sub("dedup"), time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			val := []byte("12345.6")
			const n = 1000
			evs := make([]Event, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for j := range evs {
					evs[j] = Event{Key: "el-" + strconv.Itoa(j), Time: t0.Add(time.Duration(i) * time.Second)}
				}
				i++
				if _, err := d.ApplyAll(evs, func(j int, bt *Batch) error {
					bt.Set(st, evs[j].Key, val)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}
