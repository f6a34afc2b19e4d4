package alarm

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
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

// BenchmarkBoardList is the cost of GET /api/v1/alarms over a board of
// 10,000 open alarms of 100 tenants: the whole list for an administrator,
// and one tenant's 100 alarms.
func BenchmarkBoardList(b *testing.B) {
	board, err := NewBoard(BoardOptions{Bus: nopBus{}})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 10000 {
		k := Key{Site: "campus", Kind: "room", Asset: fmt.Sprintf("r%05d", i), Type: "co2-high"}
		board.put(&Alarm{ID: fmt.Sprintf("alarm:campus:room:r%05d:co2-high:1", i), Key: k, Severity: Major, Status: Active,
			Tenant: fmt.Sprintf("t%02d", i%100), DateModified: now.Add(time.Duration(i) * time.Second),
			Audit: []AuditEntry{{Time: now, Action: ActionRaised, By: "air"}}})
	}
	for _, tc := range []struct {
		name   string
		access service.Access
		want   int
	}{
		{"all", service.AllAccess, 10000},
		{"tenant", service.Access{Tenant: func(*http.Request) (string, bool) { return "t07", false }, User: service.AllAccess.User}, 100},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := board.Handler(tc.access)
			req := httptest.NewRequest("GET", APIPrefix, nil)
			size := 0
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "B/response")
		})
	}
}

// nopBus is a bus.Bus that does nothing.
type nopBus struct{}

func (nopBus) Publish(context.Context, bus.Message) error                 { return nil }
func (nopBus) Subscribe(context.Context, string, byte, bus.Handler) error { return nil }
func (nopBus) Unsubscribe(context.Context, string) error                  { return nil }
func (nopBus) Close() error                                               { return nil }
