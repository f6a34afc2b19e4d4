package live

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/service"
)

// recordingBus is a bus.Bus that records the filters subscribed through it.
type recordingBus struct {
	bus.Bus
	mu      sync.Mutex
	filters []string
}

func (r *recordingBus) Subscribe(ctx context.Context, filter string, qos byte, h bus.Handler) error {
	r.mu.Lock()
	r.filters = append(r.filters, filter)
	r.mu.Unlock()
	return r.Bus.Subscribe(ctx, filter, qos, h)
}

// filtersMeet reports whether some topic name matches both MQTT filters a
// and b: level by level, + and equal levels meet, # meets the rest.
func filtersMeet(a, b string) bool {
	la, lb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; ; i++ {
		switch {
		case i < len(la) && la[i] == "#", i < len(lb) && lb[i] == "#":
			return true
		case i == len(la) || i == len(lb):
			return len(la) == len(lb)
		case la[i] != lb[i] && la[i] != "+" && lb[i] != "+":
			return false
		}
	}
}

// TestFiltersDoNotOverlap: on its one bus client the service subscribes
// to the measurements and its alarm manager to the commands of its three
// alarm types, and no two of these filters meet (bus.Bus: one
// subscription per filter, overlapping ones may deliver once).
func TestFiltersDoNotOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"a/+/c", "a/b/+", true}, {"a/#", "a/b/c", true}, {"#", "x", true}, {"a/b", "a/b/c", false},
		{"a/+", "b/+", false}, {"a/b/#", "a/b", true}, {"+/+", "x", false}, {"a/b", "a/b", true},
	} {
		if got := filtersMeet(c.a, c.b); got != c.want || filtersMeet(c.b, c.a) != c.want {
			t.Errorf("filtersMeet(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	m := loadCampus(t)
	b, _ := startBroker(t)
	lb, err := bus.NewLocal(b, "svc-filters")
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	rb := &recordingBus{Bus: lb}
	s, err := New("vineyard", testConfig(m, "wartberg-01"))
	if err != nil {
		t.Fatal(err)
	}
	env := service.NewTestEnv("vineyard", rb, service.NewMemoryStore().State("vineyard"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, env) }()
	waitFor(t, 10*time.Second, "service running", func() bool { return env.Health().Status == service.StatusRunning })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if len(rb.filters) != 4 {
		t.Fatalf("filters %v: want the measurements and three alarm types' commands", rb.filters)
	}
	for i, a := range rb.filters {
		for _, b := range rb.filters[i+1:] {
			if filtersMeet(a, b) {
				t.Errorf("filters %s and %s overlap", a, b)
			}
		}
	}
	t.Logf("filters: %v", rb.filters)
}
