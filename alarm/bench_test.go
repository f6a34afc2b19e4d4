package alarm

import (
	"context"
	"testing"
	"time"

	"github.com/citymesh/citymesh/service"
)

// BenchmarkRaise is the cost of one raise that updates an open alarm (each
// with a new event time), written durably before Raise returns.
func BenchmarkRaise(b *testing.B) {
	for _, kind := range []string{"memory", "pebble"} {
		b.Run(kind, func(b *testing.B) {
			s := service.NewMemoryStore()
			if kind == "pebble" {
				var err error
				if s, err = service.OpenStore(b.TempDir()); err != nil {
					b.Fatal(err)
				}
				defer s.Close()
			}
			m, err := NewManager(Options{Bus: newMemBus(), State: s.State("x"), Originator: "energy"})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, _, err := m.Raise(ctx, Condition{Key: key, Severity: Major, Time: t0.Add(time.Duration(i) * time.Millisecond)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
