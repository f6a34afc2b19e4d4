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

// TestJournalLinkSeq checks how a mesh link's last received sequence number
// reaches the store: written once per commit with the newest number; an
// urgent one makes the open generation durable and returns it, a lazy one
// returns 0 and waits for the next commit or for close; a deleted session
// takes its pending number with it.
func TestJournalLinkSeq(t *testing.T) {
	stored := func(st *store.Store) map[string]uint64 {
		t.Helper()
		snap, err := st.Load()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, s := range snap.Sessions {
			got[s.ClientID] = s.LinkSeq
		}
		return got
	}
	st, err := store.Open(store.NewMemoryEngine())
	if err != nil {
		t.Fatal(err)
	}
	stats := &Stats{}
	j := newJournal(st, SyncBatch, slog.New(slog.DiscardHandler), stats)
	for _, id := range []string{"link-a", "link-b", "gone"} {
		j.write(func(b *store.Batch) error {
			return b.PutSession(&store.Session{ClientID: id, Expiry: NeverExpire, Link: "edge"})
		})
	}
	waitGen := func(gen uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !j.isDurable(gen) {
			if time.Now().After(deadline) {
				t.Fatalf("generation %d not durable after 5 s", gen)
			}
			j.poke()
			time.Sleep(time.Millisecond)
		}
	}
	for seq := uint64(1); seq <= 100; seq++ {
		if gen := j.putLinkSeq("link-a", seq, false); gen != 0 {
			t.Fatalf("lazy putLinkSeq returned generation %d, want 0", gen)
		}
	}
	j.putLinkSeq("link-a", 50, false) // an older number never replaces a newer one
	gen := j.putLinkSeq("link-b", 7, true)
	if gen == 0 {
		t.Fatal("urgent putLinkSeq returned generation 0")
	}
	j.putLinkSeq("gone", 9, true)
	j.deleteSession("gone")
	waitGen(gen)
	commits := stats.storeCommits.Load()
	if got := stored(st); got["link-a"] != 100 || got["link-b"] != 7 {
		t.Fatalf("after the urgent commit: stored %v, want link-a 100 (it went with the commit), link-b 7", got)
	} else if _, ok := got["gone"]; ok {
		t.Fatalf("a deleted session's pending number brought it back: %v", got)
	}

	// A lazy number alone makes no commit; close writes it.
	j.putLinkSeq("link-a", 101, false)
	j.mu.Lock()
	work := j.cur.Len() > 0 || len(j.waiters) > 0 // what makes commitLoop seal
	j.mu.Unlock()
	if work || stats.storeCommits.Load() != commits {
		t.Fatalf("a lazy link sequence number alone asks for a commit (open batch %v, commits %d more)", work, stats.storeCommits.Load()-commits)
	}
	j.close()
	if got := stored(st); got["link-a"] != 101 {
		t.Fatalf("after close: link-a stored %d, want 101", got["link-a"])
	}
}
