package broker

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// TestDurableQueueMemoryIsBounded checks that a durable session's queue
// lives in the store, not in memory: offline it holds nothing in memory, and
// online at most a page beyond its inflight window, however long its queue.
func TestDurableQueueMemoryIsBounded(t *testing.T) {
	st, err := store.Open(store.NewMemoryEngine())
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Store: st, SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	s := newSession(b, "offline")
	s.expiry, s.persist, s.offline = 3600, true, time.Now()
	b.mu.Lock()
	b.sessions[s.id] = s
	b.mu.Unlock()
	b.index.Subscribe("m/#", s, subOptions{qos: 1})
	const n = 5000
	for i := range n {
		m := &Message{Topic: "m/1", QoS: 1, Payload: fmt.Appendf(nil, "%06d", i)}
		if r := b.publish(m); r.queued != 1 {
			t.Fatalf("message %d not queued: %+v", i, r)
		}
	}
	s.mu.Lock()
	inMemory, stored, spilled := s.queue.n+len(s.inflight), s.storedN, s.spilled
	s.mu.Unlock()
	if inMemory != 0 || stored != n || !spilled {
		t.Fatalf("offline session: %d in memory, %d stored, spilled %v; want 0, %d, true", inMemory, stored, spilled, n)
	}

	// Attach a client that reads nothing: the session pages in at most
	// one page beyond the window.
	out := &stubOutlet{}
	s.mu.Lock()
	s.attachLocked(out)
	s.mu.Unlock()
	for s.pageIn() {
		s.mu.Lock()
		s.take(nil, 1<<20, 100, 0, mqtt.V5, time.Now())
		s.mu.Unlock()
	}
	s.mu.Lock()
	inMemory = s.queue.n + len(s.inflight)
	s.mu.Unlock()
	if inMemory > pageMessages+100 {
		t.Fatalf("online session holds %d deliveries in memory, more than a page (%d) beyond its window (100)", inMemory, pageMessages)
	}
}

// stubOutlet is an outlet that only counts wake-ups.
type stubOutlet struct{ wakes int }

func (o *stubOutlet) wake()                       { o.wakes++ }
func (o *stubOutlet) detach(code mqtt.ReasonCode) {}
