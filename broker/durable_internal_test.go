package broker

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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

// hookEngine holds commits back while the test holds applying, and runs
// afterScan (once) when a scan has read what the store held.
type hookEngine struct {
	store.Engine
	applying  sync.Mutex
	afterScan atomic.Pointer[func()]
}

func (e *hookEngine) Apply(b *store.Batch, durable bool) error {
	e.applying.Lock()
	defer e.applying.Unlock()
	return e.Engine.Apply(b, durable)
}

func (e *hookEngine) Scan(lower, upper []byte, fn func(key, value []byte) error) error {
	err := e.Engine.Scan(lower, upper, fn)
	if f := e.afterScan.Swap(nil); f != nil {
		(*f)()
	}
	return err
}

// TestPageInSeesCommitDuringRead checks that an online session whose newest
// entries are committed while it reads its queue from the store, after the
// read missed them, reads them later: pageIn asks to be called again, or the
// journal wakes the session. It used to do neither: the entries stayed in
// the store while the client was connected, until another message came.
func TestPageInSeesCommitDuringRead(t *testing.T) {
	e := &hookEngine{Engine: store.NewMemoryEngine()}
	st, err := store.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Store: st, SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	s := newSession(b, "reader")
	s.expiry, s.persist = 3600, true
	b.mu.Lock()
	b.sessions[s.id] = s
	b.mu.Unlock()
	b.index.Subscribe("m/#", s, subOptions{qos: 1})
	out := &stubOutlet{}
	s.mu.Lock()
	s.attachLocked(out)
	s.mu.Unlock()

	// Fill the session's page in memory, then one more, which spills.
	publish := func(i int) {
		if r := b.publish(&Message{Topic: "m/1", QoS: 1, Payload: fmt.Appendf(nil, "%06d", i)}); r.queued != 1 {
			t.Fatalf("message %d not queued: %+v", i, r)
		}
	}
	for i := range pageMessages {
		publish(i)
	}
	waitDurable := func() {
		deadline := time.Now().Add(5 * time.Second)
		s.mu.Lock()
		last := s.lastTicket
		s.mu.Unlock()
		for !b.journal.isDurable(last) {
			if time.Now().After(deadline) {
				t.Fatal("the journal did not commit")
			}
			b.journal.poke()
			time.Sleep(time.Millisecond)
		}
	}
	waitDurable()
	e.applying.Lock() // the next entry is written but not committed
	publish(pageMessages)
	s.mu.Lock()
	spilled := s.spilled
	s.take(nil, 1<<20, 1<<16-1, 0, mqtt.V5, time.Now()) // the client takes the page
	wakes := out.wakes
	s.mu.Unlock()
	if !spilled {
		t.Fatal("the session did not spill")
	}
	// The read misses the entry; the commit lands before pageIn looks at
	// the journal.
	release := func() {
		e.applying.Unlock()
		waitDurable()
	}
	e.afterScan.Store(&release)
	again := s.pageIn()

	deadline := time.Now().Add(5 * time.Second)
	for !again {
		s.mu.Lock()
		woken := out.wakes > wakes
		s.mu.Unlock()
		if woken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pageIn neither asked to read again nor was the session woken: the entry stays in the store")
		}
		time.Sleep(time.Millisecond)
	}
	if !s.pageIn() {
		t.Fatal("the next pageIn read nothing")
	}
	s.mu.Lock()
	n := s.queue.n
	s.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d deliveries in memory after the read, want 1", n)
	}
}

// TestJournalCancelsAcknowledgedEntries checks the cancellation of queue
// entries acknowledged while their batch is still open: the entry never
// reaches the store and no deletion is written for it; a generation whose
// writes were all cancelled still commits and wakes its waiters (the
// publisher's PUBACK); an entry whose batch was sealed is deleted as
// before; a QoS 2 entry is never cancelled.
func TestJournalCancelsAcknowledgedEntries(t *testing.T) {
	e := &hookEngine{Engine: store.NewMemoryEngine()}
	st, err := store.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Store: st, SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	s := newSession(b, "$mesh/core")
	s.expiry, s.persist = NeverExpire, true
	b.mu.Lock()
	b.sessions[s.id] = s
	b.mu.Unlock()
	b.index.Subscribe("m/#", s, subOptions{qos: 2})
	s.mu.Lock()
	s.attachLocked(&stubOutlet{})
	s.mu.Unlock()
	j := b.journal
	stored := func() []uint64 {
		t.Helper()
		es, _, err := st.Queue(nil, s.id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, e := range es {
			seqs = append(seqs, e.Seq)
		}
		return seqs
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
	// settle waits until everything written so far is committed: a write
	// of its own, after them, in their order.
	settle := func() {
		t.Helper()
		gen, _ := j.write(func(bt *store.Batch) error { bt.DeleteWill("nobody"); return nil })
		waitGen(gen)
	}
	publish := func(qos byte) uint64 {
		t.Helper()
		r := b.publish(&Message{Topic: "m/1", QoS: qos, Payload: []byte("x")})
		if r.queued != 1 || r.ticket == 0 {
			t.Fatalf("not queued durably: %+v", r)
		}
		return r.ticket
	}
	sendAndAck := func() {
		t.Helper()
		s.mu.Lock()
		out := s.take(nil, 100, 100, 0, mqtt.V5, time.Now())
		s.mu.Unlock()
		for _, d := range out {
			kind := mqtt.PUBACK
			if d.qos == 2 {
				kind = mqtt.PUBREC
			}
			if known, _, _ := s.acknowledge(kind, d.packetID, mqtt.Success, nil); !known {
				t.Fatalf("delivery %d unknown", d.packetID)
			}
			if d.qos == 2 {
				s.acknowledge(mqtt.PUBCOMP, d.packetID, mqtt.Success, nil)
			}
		}
	}

	// The committer is busy with an earlier batch: the entry's batch stays
	// open while its acknowledgement comes.
	waitGen(publish(1)) // sent and never acknowledged: stays
	s.mu.Lock()
	if out := s.take(nil, 100, 100, 0, mqtt.V5, time.Now()); len(out) != 1 {
		t.Fatalf("took %d deliveries, want 1", len(out))
	}
	s.mu.Unlock()
	e.applying.Lock()
	j.write(func(bt *store.Batch) error { bt.DeleteWill("nobody"); return nil })
	j.poke()
	time.Sleep(10 * time.Millisecond) // (not a condition: the committer may take the batch now or later; either is right)
	gen := publish(1)
	before := b.stats.storeCancelled.Load()
	sendAndAck()
	cancelled := b.stats.storeCancelled.Load() - before
	writesBefore := b.stats.storeWrites.Load()
	e.applying.Unlock()
	waitGen(gen) // the publisher's acknowledgement is released
	if cancelled != 1 {
		t.Fatalf("%d entries cancelled, want 1 (the acknowledged one, its batch open)", cancelled)
	}
	if got := stored(); len(got) != 1 {
		t.Fatalf("store queue holds %d entries, want 1 (the first, unacknowledged)", len(got))
	}
	if w := b.stats.storeWrites.Load() - writesBefore; w > 1 {
		t.Fatalf("%d writes committed after the cancel, want at most 1 (the will's deletion): the entry or its deletion was written", w)
	}

	// Acknowledged after its batch was sealed and committed: deleted.
	gen = publish(1)
	waitGen(gen)
	before = b.stats.storeCancelled.Load()
	sendAndAck()
	settle()
	if n := b.stats.storeCancelled.Load() - before; n != 0 {
		t.Fatalf("%d cancelled after the batch was committed", n)
	}
	if got := stored(); len(got) != 1 {
		t.Fatalf("store queue holds %d entries, want 1: the committed entry was not deleted", len(got))
	}

	// QoS 2: written, released and deleted, never cancelled.
	before = b.stats.storeCancelled.Load()
	gen = publish(2)
	waitGen(gen)
	sendAndAck()
	settle()
	if n := b.stats.storeCancelled.Load() - before; n != 0 {
		t.Fatalf("a QoS 2 entry was cancelled")
	}
	if got := stored(); len(got) != 1 {
		t.Fatalf("store queue holds %d entries, want 1", len(got))
	}
}

// TestJournalCancelOnlyInOpenBatch checks journal.cancel at the journal
// level: it withdraws a write of the open generation, and refuses one of a
// sealed generation, or a position cancelled already.
func TestJournalCancelOnlyInOpenBatch(t *testing.T) {
	e := &hookEngine{Engine: store.NewMemoryEngine()}
	st, err := store.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	stats := &Stats{}
	j := newJournal(st, SyncBatch, slog.New(slog.DiscardHandler), stats)
	defer j.close()
	put := func(seq uint64) (uint64, int) {
		gen, pos, err := j.writeAwaited(func(bt *store.Batch) error {
			return bt.PutEntry("c", &store.Entry{Seq: seq, Message: store.Message{Topic: "t", QoS: 1}})
		})
		if err != nil {
			t.Fatal(err)
		}
		return gen, pos
	}
	e.applying.Lock()
	j.write(func(bt *store.Batch) error { bt.DeleteWill("nobody"); return nil })
	j.poke()
	deadline := time.Now().Add(5 * time.Second)
	for { // the committer has sealed that batch and waits in Apply
		j.mu.Lock()
		open := j.cur.Len()
		j.mu.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the committer did not take the first batch")
		}
		time.Sleep(time.Millisecond)
	}
	gen1, pos1 := put(1)
	gen2, pos2 := put(2)
	if gen1 != gen2 {
		t.Fatalf("two writes with the committer busy went to generations %d and %d", gen1, gen2)
	}
	if !j.cancel(gen1, pos1) {
		t.Fatal("cancel of a write in the open batch refused")
	}
	if j.cancel(gen1, pos1) {
		t.Fatal("a write cancelled twice")
	}
	if j.cancel(gen1-1, pos2) {
		t.Fatal("cancel of a sealed generation's write accepted")
	}
	e.applying.Unlock()
	for !j.isDurable(gen2) {
		if time.Now().After(deadline) {
			t.Fatal("not committed")
		}
		j.poke()
		time.Sleep(time.Millisecond)
	}
	if j.cancel(gen2, pos2) {
		t.Fatal("cancel of a committed write accepted")
	}
	es, _, err := st.Queue(nil, "c", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Seq != 2 {
		t.Fatalf("stored %+v, want only entry 2", es)
	}
	if n := stats.storeCancelled.Load(); n != 1 {
		t.Fatalf("storeCancelled %d, want 1", n)
	}
}
