package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Engine is the ordered key-value engine under a Store: package disk's
// Pebble engine by default, NewMemoryEngine for tests. It knows nothing of
// the records; Store encodes and decodes them.
type Engine interface {
	// Apply writes every operation of b atomically (see Batch.Each). With
	// durable set it returns once the write is on stable storage.
	Apply(b *Batch, durable bool) error
	// Scan calls fn for every key in [lower, upper) in key order (a nil
	// upper bound means no bound); key and value are valid only during the
	// call. When fn returns ErrStop the scan ends without an error.
	Scan(lower, upper []byte, fn func(key, value []byte) error) error
	// Get returns a copy of the value of key, and whether it exists.
	Get(key []byte) (value []byte, ok bool, err error)
	// Close releases the engine.
	Close() error
}

// ErrStop ends an Engine's Scan early.
var ErrStop = errors.New("store: stop scan")

// Store keeps a broker's durable state in an Engine. It is safe for
// concurrent use.
type Store struct {
	e Engine
}

// Open returns the Store kept in e. An empty engine is given the format
// marker; an engine written in another format is refused.
func Open(e Engine) (*Store, error) {
	st := &Store{e: e}
	if err := st.checkFormat(); err != nil {
		return nil, err
	}
	return st, nil
}

// Apply writes b atomically. With durable set it returns once the write is
// on stable storage; otherwise once the engine has it, which survives a crash
// of the broker only if the engine flushed it in time.
func (st *Store) Apply(b *Batch, durable bool) error { return st.e.Apply(b, durable) }

// Close closes the engine.
func (st *Store) Close() error { return st.e.Close() }

// Engine returns the engine under the store.
func (st *Store) Engine() Engine { return st.e }

// checkFormat writes the format marker into an empty store and refuses a
// store written in another format.
func (st *Store) checkFormat() error {
	v, ok, err := st.e.Get(formatKey)
	if err != nil {
		return fmt.Errorf("store: read format marker: %w", err)
	}
	if ok {
		if string(v) != formatMarker {
			return fmt.Errorf("store: format %q, this version reads %q", v, formatMarker)
		}
		return nil
	}
	empty := true
	if err := st.e.Scan(nil, nil, func(_, _ []byte) error { empty = false; return ErrStop }); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if !empty {
		return fmt.Errorf("store: records without a format marker (written by an older version); this version reads %q", formatMarker)
	}
	var b Batch
	start := len(b.buf)
	b.buf = append(b.buf, formatKey...)
	k := len(b.buf)
	b.buf = append(b.buf, formatMarker...)
	b.commit(OpSet, start, k, nil)
	return st.e.Apply(&b, true)
}

// Load reads every session, retained message and will. Records that cannot
// be read are reported in the error (a *CorruptError each, joined) and left
// out; everything readable is still returned.
func (st *Store) Load() (*Snapshot, error) {
	snap := &Snapshot{}
	var errs []error
	corrupt := func(key []byte, err error) {
		errs = append(errs, &CorruptError{Key: append([]byte(nil), key...), Err: err})
	}
	index := map[string]int{} // client id → index in snap.Sessions
	lo, hi := kindRange(kindSession)
	err := st.e.Scan(lo, hi, func(k, v []byte) error {
		s, err := decodeSession(v)
		if err != nil {
			corrupt(k, err)
			return nil
		}
		if s.ClientID != string(k[1:]) {
			corrupt(k, fmt.Errorf("holds the session of %q", s.ClientID))
			return nil
		}
		index[s.ClientID] = len(snap.Sessions)
		snap.Sessions = append(snap.Sessions, StoredSession{Session: s})
		return nil
	})
	errs = append(errs, err)

	lo, hi = kindRange(kindInbound)
	err = st.e.Scan(lo, hi, func(k, v []byte) error {
		id, suf, err := splitClientKey(k, 2)
		if err == nil {
			_, err = openValue(v)
		}
		if err != nil {
			corrupt(k, err)
			return nil
		}
		i, ok := index[id]
		if !ok {
			snap.Orphans++
			return nil
		}
		snap.Sessions[i].Inbound = append(snap.Sessions[i].Inbound, binary.BigEndian.Uint16(suf))
		return nil
	})
	errs = append(errs, err)

	lo, hi = kindRange(kindLinkSeq)
	err = st.e.Scan(lo, hi, func(k, v []byte) error {
		body, err := openValue(v)
		if err == nil && len(body) != 8 {
			err = fmt.Errorf("%d bytes, want 8", len(body))
		}
		if err != nil {
			corrupt(k, err)
			return nil
		}
		i, ok := index[string(k[1:])]
		if !ok {
			snap.Orphans++
			return nil
		}
		snap.Sessions[i].LinkSeq = binary.BigEndian.Uint64(body)
		return nil
	})
	errs = append(errs, err)

	// Queues are summarised, not read: their entries are paged in later. The
	// checksum is verified here so that damage is reported at start.
	lo, hi = kindRange(kindQueue)
	err = st.e.Scan(lo, hi, func(k, v []byte) error {
		id, suf, err := splitClientKey(k, 8)
		if err == nil {
			_, err = openValue(v)
		}
		if err != nil {
			corrupt(k, err)
			return nil
		}
		i, ok := index[id]
		if !ok {
			snap.Orphans++
			return nil
		}
		q := &snap.Sessions[i].Queue
		seq := binary.BigEndian.Uint64(suf)
		if q.Count == 0 {
			q.First = seq
		}
		q.Last = seq
		q.Count++
		q.Bytes += len(k) + len(v)
		return nil
	})
	errs = append(errs, err)

	lo, hi = kindRange(kindRetained)
	err = st.e.Scan(lo, hi, func(k, v []byte) error {
		m, err := decodeRetained(v)
		if err == nil && m.Topic != string(k[1:]) {
			err = fmt.Errorf("holds the message of topic %q", m.Topic)
		}
		if err != nil {
			corrupt(k, err)
			return nil
		}
		snap.Retained = append(snap.Retained, m)
		return nil
	})
	errs = append(errs, err)

	lo, hi = kindRange(kindWill)
	err = st.e.Scan(lo, hi, func(k, v []byte) error {
		w, err := decodeWill(string(k[1:]), v)
		if err != nil {
			corrupt(k, err)
			return nil
		}
		snap.Wills = append(snap.Wills, w)
		return nil
	})
	errs = append(errs, err)
	return snap, errors.Join(errs...)
}

// Queue appends to dst, in Seq order, up to max entries of clientID's queue
// with Seq >= from. Entries that cannot be read are reported in the error
// and skipped; next is the Seq to continue from.
func (st *Store) Queue(dst []Entry, clientID string, from uint64, max int) ([]Entry, uint64, error) {
	lo := appendQueueKey(nil, clientID, from)
	_, hi := clientRange(kindQueue, clientID)
	next := from
	var errs []error
	err := st.e.Scan(lo, hi, func(k, v []byte) error {
		if max <= 0 {
			return ErrStop
		}
		_, suf, err := splitClientKey(k, 8)
		if err != nil {
			errs = append(errs, &CorruptError{Key: append([]byte(nil), k...), Err: err})
			return nil
		}
		seq := binary.BigEndian.Uint64(suf)
		next = seq + 1
		ent, err := decodeEntry(seq, v)
		if err != nil {
			errs = append(errs, &CorruptError{Key: append([]byte(nil), k...), Err: err})
			return nil
		}
		ent.Size = len(k) + len(v)
		dst = append(dst, ent)
		max--
		return nil
	})
	if err != nil && !errors.Is(err, ErrStop) {
		errs = append(errs, err)
	}
	return dst, next, errors.Join(errs...)
}

// NewMemory returns an empty Store in memory, for tests.
func NewMemory() *Store {
	st, err := Open(NewMemoryEngine())
	if err != nil {
		panic(err) // an empty engine always takes the format marker
	}
	return st
}

// MemoryEngine is an Engine in memory: a map, sorted on every scan. It is
// meant for tests, not for large states; a Store reopened on the same
// MemoryEngine finds what was stored before.
type MemoryEngine struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemoryEngine returns an empty MemoryEngine.
func NewMemoryEngine() *MemoryEngine { return &MemoryEngine{} }

// Apply implements Engine.
func (m *MemoryEngine) Apply(b *Batch, _ bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string][]byte)
	}
	return b.Each(func(kind Op, key, value []byte) error {
		switch kind {
		case OpSet:
			m.m[string(key)] = append([]byte(nil), value...)
		case OpDelete:
			delete(m.m, string(key))
		case OpDeleteRange:
			for k := range m.m {
				if k >= string(key) && k < string(value) {
					delete(m.m, k)
				}
			}
		}
		return nil
	})
}

// Scan implements Engine.
func (m *MemoryEngine) Scan(lower, upper []byte, fn func(key, value []byte) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.m))
	for k := range m.m {
		if k >= string(lower) && (upper == nil || k < string(upper)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), m.m[k]); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Get implements Engine.
func (m *MemoryEngine) Get(key []byte) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[string(key)]
	return append([]byte(nil), v...), ok, nil
}

// Close implements Engine.
func (m *MemoryEngine) Close() error { return nil }

// Clone returns a MemoryEngine with a copy of m's records: what a crash at
// this moment would leave behind, for tests that restart a broker while the
// first one still runs.
func (m *MemoryEngine) Clone() *MemoryEngine {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &MemoryEngine{m: make(map[string][]byte, len(m.m))}
	for k, v := range m.m {
		c.m[k] = append([]byte(nil), v...)
	}
	return c
}

// Corrupt replaces the value of every record whose key starts with prefix by
// damage(value), so tests can see how damage is reported. It returns how many
// records it changed.
func (m *MemoryEngine) Corrupt(prefix []byte, damage func([]byte) []byte) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, v := range m.m {
		if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
			m.m[k] = damage(append([]byte(nil), v...))
			n++
		}
	}
	return n
}
