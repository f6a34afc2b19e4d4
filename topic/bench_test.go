package topic

import (
	"fmt"
	"testing"
)

// buildCity fills an index with n exact subscriptions city/b{i}/energy/m{j}
// plus a few hundred wildcard ones.
func buildCity(n int) *Index[int, struct{}] {
	ix := NewIndex[int, struct{}]()
	for k := range n {
		ix.Subscribe(fmt.Sprintf("city/b%d/energy/m%d", k/1000, k%1000), k, struct{}{})
	}
	for k := range 100 {
		ix.Subscribe("city/+/energy/#", n+k, struct{}{})
		ix.Subscribe(fmt.Sprintf("city/b%d/#", k), n+100+k, struct{}{})
		ix.Subscribe(fmt.Sprintf("city/+/energy/m%d", k), n+200+k, struct{}{})
	}
	return ix
}

// BenchmarkIndexMatch matches topic names against 10,000 and 1,000,000
// subscriptions, most exact and some with wildcards.
func BenchmarkIndexMatch(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		ix := buildCity(n)
		names := make([]string, 1024)
		for i := range names {
			names[i] = fmt.Sprintf("city/b%d/energy/m%d", (i*7919)%(n/1000), (i*104729)%1000)
		}
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			dst := make([]Entry[int, struct{}], 0, 256)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = ix.Match(names[i&1023], dst[:0])
				i++
			}
			b.ReportMetric(float64(len(dst)), "matches")
		})
	}
}

// BenchmarkIndexChurn subscribes and unsubscribes one filter while 1,000,000
// others are present.
func BenchmarkIndexChurn(b *testing.B) {
	ix := buildCity(1_000_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := fmt.Sprintf("churn/%d/+/x", i&4095)
		ix.Subscribe(f, -1, struct{}{})
		ix.Unsubscribe(f, -1)
		i++
	}
}

func BenchmarkValidFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if ValidFilter("city/+/energy/meter/#") != nil {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if ValidName("city/b1/energy/meter/m0042") != nil {
			b.Fatal("invalid")
		}
	}
}
