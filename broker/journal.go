package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/citymesh/citymesh/store"
)

// SyncMode says when a write to the store counts as done, and so when
// acknowledgements that promise it (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK,
// UNSUBACK) may leave.
type SyncMode int

const (
	// SyncBatch commits the writes of every connection together and sends
	// the acknowledgements once the group is fsynced (group commit). This is
	// the default: acknowledged means on stable storage.
	SyncBatch SyncMode = iota
	// SyncAlways fsyncs each write on its own, one after another. It is
	// slower than SyncBatch and no safer; it exists to measure the
	// difference.
	SyncAlways
	// SyncNone hands writes to the engine without waiting for stable
	// storage. It is unsafe: a crash of the broker or the machine may lose
	// messages that were acknowledged.
	SyncNone
)

// ParseSyncMode parses "batch", "always" or "none".
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "batch", "":
		return SyncBatch, nil
	case "always":
		return SyncAlways, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("sync mode %q: want batch, always or none", s)
}

// String returns the mode's name.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncNone:
		return "none"
	}
	return "batch"
}

// waiter is told when the journal has made a generation durable. Its
// waitReg is guarded by the journal's mutex.
type waiter interface {
	reg() *waitReg
	durable()
}

// waitReg records the generation a waiter is registered for, so that it is
// registered at most once per generation.
type waitReg struct{ gen uint64 }

// journal collects the store writes of every connection into one open batch
// and commits it from a single goroutine: while one group is being synced the
// next one fills, so one fsync covers many connections' messages (group
// commit). Every write belongs to a generation; a generation is durable once
// its batch is committed. Acknowledgements and deliveries that depend on a
// write wait for its generation.
//
// Lock order: session.mu before journal.mu; the committer holds no lock while
// it applies a batch or notifies waiters. hold is taken with no lock held.
type journal struct {
	st    *store.Store
	mode  SyncMode
	log   *slog.Logger
	stats *Stats

	// maxPending bounds the bytes in the open batch: publishers wait for
	// room before they route (waitRoom), so a disk slower than the network
	// slows them down instead of filling memory.
	maxPending int

	mu      sync.Mutex
	room    *sync.Cond // publishers waiting for room in the open batch
	turn    *sync.Cond // holds and the committer waiting for each other
	holds   int        // atomic groups being written (hold/release)
	sealing bool       // the committer waits for the holds to end: no new ones start
	cur     *store.Batch
	gen     uint64 // generation of cur
	waiters []waiter
	sealed  []sealedBatch // SyncAlways: batches waiting their turn
	closing bool
	spare   *store.Batch
	// linkSeqs holds the newest sequence number each mesh link session has
	// taken in during the open generation; sealLocked writes each once.
	linkSeqs map[string]uint64

	durableGen atomic.Uint64 // highest generation committed
	broken     atomic.Pointer[error]
	kick       chan struct{}
	done       chan struct{}
}

type sealedBatch struct {
	b       *store.Batch
	gen     uint64
	waiters []waiter
}

func newJournal(st *store.Store, mode SyncMode, log *slog.Logger, stats *Stats) *journal {
	j := &journal{st: st, mode: mode, log: log, stats: stats, maxPending: 32 << 20,
		cur: new(store.Batch), spare: new(store.Batch), gen: 1,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	j.room = sync.NewCond(&j.mu)
	j.turn = sync.NewCond(&j.mu)
	go j.commitLoop()
	return j
}

// durable returns the highest committed generation.
func (j *journal) durable() uint64 { return j.durableGen.Load() }

// isDurable reports whether generation gen is committed; 0 is the generation
// of "nothing written".
func (j *journal) isDurable(gen uint64) bool { return gen <= j.durableGen.Load() }

// written returns the generation that makes every write made so far
// durable: the open one.
func (j *journal) written() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.gen
}

// err returns the error that broke the store, if any.
func (j *journal) err() error {
	if p := j.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// write adds the writes of fn to the open batch and returns their
// generation. When fn fails its writes are not added (Batch methods leave
// the batch as it was) and its error is returned. It never blocks for long:
// callers may hold a session's mutex.
func (j *journal) write(fn func(b *store.Batch) error) (uint64, error) {
	j.mu.Lock()
	err := fn(j.cur)
	gen := j.gen
	if j.mode == SyncAlways && j.cur.Len() > 0 && j.holds == 0 {
		j.sealLocked()
	}
	j.mu.Unlock()
	j.poke()
	return gen, err
}

// writeAwaited is write for a queue entry whose receiver is attached and
// will be sent the delivery at once, so that its acknowledgement may come
// while the entry is still in the open batch and cancel it (journal.cancel).
// It returns the entry's position in the batch as well (store.Batch.Mark);
// fn must add exactly that one write. The batch stays open while the one
// before it is committed, the store's sync interval included
// (node.Config.SyncInterval), which is the window in which an
// acknowledgement cancels the write; the committer never waits for more.
func (j *journal) writeAwaited(fn func(b *store.Batch) error) (gen uint64, pos int, err error) {
	j.mu.Lock()
	pos = j.cur.Mark()
	err = fn(j.cur)
	gen = j.gen
	if j.mode == SyncAlways && j.cur.Len() > 0 && j.holds == 0 {
		j.sealLocked()
	}
	j.mu.Unlock()
	j.poke()
	return gen, pos, err
}

// hold starts an atomic group: the writes made until release, from any
// goroutine, are committed together, so a crash keeps all or none of them.
// Routing a QoS 2 message is one: its entries in every session and the
// publisher's inbound record must not survive apart, or the publisher's
// resend after a restart would reach some subscribers twice. It must be
// called without locks held, and groups must be short: the committer waits
// for them to end.
func (j *journal) hold() {
	j.mu.Lock()
	for j.sealing {
		j.turn.Wait()
	}
	j.holds++
	j.mu.Unlock()
}

// release ends an atomic group.
func (j *journal) release() {
	j.mu.Lock()
	j.holds--
	if j.holds == 0 {
		if j.mode == SyncAlways && j.cur.Len() > 0 {
			j.sealLocked()
		}
		j.turn.Broadcast()
	}
	j.mu.Unlock()
	j.poke()
}

// putLinkSeq records seq as the last sequence number that the mesh link
// session id has taken in. A busy link takes in thousands of messages per
// commit and only the last number matters, so the record is written once,
// when the batch is sealed, with the newest number. Called inside the
// message's hold, after its other writes, so the number commits with them
// and never without them: after a crash a resend is dropped only if what
// the message left in the store survived.
//
// A message that left nothing in the store (every subscriber it reached
// keeps no state across a restart) needs its number remembered only while
// this process runs: a resend after a crash finds none of its effects and
// is taken in again, as QoS 1 allows. Then urgent is false, nothing waits
// and putLinkSeq returns 0: the number goes out with the next commit that
// something else causes, or at close. Otherwise it returns the generation
// that makes the number durable.
func (j *journal) putLinkSeq(id string, seq uint64, urgent bool) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.linkSeqs == nil {
		j.linkSeqs = make(map[string]uint64)
	}
	j.linkSeqs[id] = max(j.linkSeqs[id], seq)
	if !urgent {
		return 0
	}
	return j.gen
}

// cancel withdraws the write at position pos of generation gen's batch (see
// store.Batch.Mark), if that batch is still open: the write never reaches
// the store. It reports whether it did; false means the batch was sealed
// (it is being committed, or is durable) and the caller must undo the write
// with another one. It never blocks for long: callers hold a session's
// mutex.
//
// A durable session cancels the store entry of a delivery that its
// receiver acknowledged while the entry was still in the open batch (see
// session.forgetLocked): the entry and its deletion would otherwise both be
// written. Whatever waits for gen (the publisher's acknowledgement) still
// waits for its commit, which may now have nothing of this write in it.
func (j *journal) cancel(gen uint64, pos int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if gen != j.gen || !j.cur.Cancel(pos) {
		return false
	}
	j.stats.storeCancelled.Add(1)
	return true
}

// deleteSession deletes the stored session id with everything it owns, and
// forgets its pending link sequence number, which would otherwise outlive
// it. It returns the generation of the deletion.
func (j *journal) deleteSession(id string) uint64 {
	gen, _ := j.write(func(b *store.Batch) error {
		b.DeleteSession(id)
		delete(j.linkSeqs, id) // write calls this with j.mu held
		return nil
	})
	return gen
}

// sealLocked closes the open batch and opens the next generation.
func (j *journal) sealLocked() {
	for id, seq := range j.linkSeqs {
		j.cur.PutLinkSeq(id, seq)
	}
	clear(j.linkSeqs)
	j.sealed = append(j.sealed, sealedBatch{b: j.cur, gen: j.gen, waiters: j.waiters})
	j.cur, j.spare = j.spare, nil
	if j.cur == nil {
		j.cur = new(store.Batch)
	}
	j.waiters = nil
	j.gen++
}

// await asks for w.durable to be called once generation gen is committed. It
// reports false, and registers nothing, when gen is durable already.
func (j *journal) await(w waiter, gen uint64) bool {
	if j.isDurable(gen) {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.isDurable(gen) {
		return false
	}
	// Waiters of the open generation are told after it commits, which is
	// after gen (gen is open or being committed).
	r := w.reg()
	if r.gen != j.gen {
		r.gen = j.gen
		j.waiters = append(j.waiters, w)
	}
	j.poke()
	return true
}

// waitRoom blocks while the open batch is over its size bound; before it
// blocks it calls before, if not nil. It must be called without locks held.
func (j *journal) waitRoom(before func()) {
	j.mu.Lock()
	for j.cur.Size() > j.maxPending && !j.closing {
		if before != nil {
			j.mu.Unlock()
			before()
			before = nil
			j.mu.Lock()
			continue
		}
		j.poke()
		j.room.Wait()
	}
	j.mu.Unlock()
}

func (j *journal) poke() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// commitLoop commits batches until the journal is closed and empty.
func (j *journal) commitLoop() {
	defer close(j.done)
	for {
		<-j.kick
		for {
			j.mu.Lock()
			// (A batch whose writes were all cancelled is sealed too: its
			// bytes count against maxPending until it is.)
			if len(j.sealed) == 0 && (j.cur.Len() > 0 || j.cur.Cancelled() > 0 || len(j.waiters) > 0 || j.closing && len(j.linkSeqs) > 0) {
				// Never seal in the middle of an atomic group: wait for the
				// groups being written, and let no new one start meanwhile.
				for j.holds > 0 {
					j.sealing = true
					j.turn.Wait()
				}
				j.sealing = false
				j.turn.Broadcast()
				j.sealLocked()
			}
			if len(j.sealed) == 0 {
				closing := j.closing
				j.mu.Unlock()
				if closing {
					return
				}
				break
			}
			next := j.sealed[0]
			j.sealed = j.sealed[1:]
			if len(j.sealed) == 0 {
				j.sealed = nil
			}
			j.room.Broadcast()
			j.mu.Unlock()
			j.commit(next)
		}
	}
}

func (j *journal) commit(sb sealedBatch) {
	if sb.b.Len() > 0 && j.err() == nil {
		if err := j.st.Apply(sb.b, j.mode != SyncNone); err != nil {
			// A store that cannot write cannot keep the broker's promises:
			// every later write fails too, and acknowledgements say so.
			err = fmt.Errorf("broker: store failed; durable writes are refused from now on: %w", err)
			j.broken.CompareAndSwap(nil, &err)
			j.stats.storeErrors.Add(1)
			j.log.Error("store write failed", "err", err)
		} else {
			j.stats.storeCommits.Add(1)
			j.stats.storeWrites.Add(uint64(sb.b.Len()))
		}
	}
	j.durableGen.Store(sb.gen)
	for _, w := range sb.waiters {
		w.durable()
	}
	sb.b.Reset()
	j.mu.Lock()
	if j.spare == nil && sb.b.Size() == 0 {
		j.spare = sb.b
	}
	j.mu.Unlock()
}

// close commits what is pending and stops the committer.
func (j *journal) close() {
	j.mu.Lock()
	j.closing = true
	j.room.Broadcast()
	j.mu.Unlock()
	j.poke()
	<-j.done
}

// errStoreBroken is returned for durable writes after the store failed.
var errStoreBroken = errors.New("broker: store failed")
