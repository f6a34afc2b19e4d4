package service

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// State is a service's durable key-value state: its own keys, namespaced
// so that no other service sees them. Writes are durable when they return
// (synced to disk on a Pebble-backed state). It is safe for concurrent use.
type State interface {
	// Get returns a copy of the value of key and whether it exists.
	Get(key string) ([]byte, bool, error)
	// Scan calls fn for every key that starts with prefix, in key order;
	// key is given without the state's namespace and value is valid only
	// during the call. Returning ErrStop from fn ends the scan without an
	// error.
	Scan(prefix string, fn func(key string, value []byte) error) error
	// Apply writes every operation of b atomically and durably.
	Apply(b *Batch) error
	// Sub returns the state of the namespace name inside this one: a
	// library used by a service (alarm.Manager, Dedup) keeps its keys
	// there.
	Sub(name string) State
}

// ErrStop ends a Scan early.
var ErrStop = errors.New("service: stop scan")

// Batch is a list of writes that State.Apply applies atomically. Its zero
// value is empty; it is not safe for concurrent use. Writes built through a
// Sub state's Batch carry that state's namespace: build a Batch with
// State.Sub(...) as NewBatch's argument, or write keys through Writer.
type Batch struct {
	ops []batchOp
}

type batchOp struct {
	key   string // full key, namespace included
	value []byte
	del   bool
}

// Len reports how many writes b holds.
func (b *Batch) Len() int { return len(b.ops) }

// Set adds a write of value to key of state st (a State or one of its Sub
// states) to b. Every state of one batch must come from the same Store.
func (b *Batch) Set(st State, key string, value []byte) {
	b.ops = append(b.ops, batchOp{key: fullKey(st, key), value: bytes.Clone(value)})
}

// Delete adds a deletion of key of state st to b.
func (b *Batch) Delete(st State, key string) {
	b.ops = append(b.ops, batchOp{key: fullKey(st, key), del: true})
}

func fullKey(st State, key string) string {
	ns, ok := st.(*nsState)
	if !ok {
		panic(fmt.Sprintf("service: batch write to a %T, not a state of a service.Store", st))
	}
	return ns.prefix + key
}

// sep ends each namespace in a key; namespace names may not hold it.
const sep = "\x00"

// backend is the ordered key-value engine under a Store.
type backend interface {
	get(key string) ([]byte, bool, error)
	scan(prefix string, fn func(key string, value []byte) error) error
	apply(ops []batchOp) error
	Close() error
}

// Store holds the durable state of every service of a process, each in its
// own namespace (see Store.State). Open one with OpenStore (Pebble, in a
// directory) or NewMemoryStore (tests).
type Store struct {
	b backend
}

// NewMemoryStore returns a Store in memory, for tests: reopening a service's
// State on the same Store finds what it wrote, as after a restart.
func NewMemoryStore() *Store { return &Store{b: &memBackend{m: map[string][]byte{}}} }

// OpenStore opens (or creates) the Pebble store in dir.
func OpenStore(dir string) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("service: open state %s: %w", dir, err)
	}
	return &Store{b: &pebbleBackend{db: db, dir: dir}}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.b.Close() }

// State returns the state of the service called name.
func (s *Store) State(name string) State {
	return &nsState{b: s.b, prefix: checkNS(name) + sep}
}

func checkNS(name string) string {
	if name == "" || strings.Contains(name, sep) {
		panic(fmt.Sprintf("service: state namespace %q is empty or holds a NUL byte", name))
	}
	return name
}

// nsState is a State: the keys of backend b under prefix.
type nsState struct {
	b      backend
	prefix string
}

func (n *nsState) Get(key string) ([]byte, bool, error) { return n.b.get(n.prefix + key) }

func (n *nsState) Scan(prefix string, fn func(string, []byte) error) error {
	return n.b.scan(n.prefix+prefix, func(k string, v []byte) error { return fn(k[len(n.prefix):], v) })
}

func (n *nsState) Apply(b *Batch) error {
	if b == nil || len(b.ops) == 0 {
		return nil
	}
	return n.b.apply(b.ops)
}

func (n *nsState) Sub(name string) State {
	return &nsState{b: n.b, prefix: n.prefix + checkNS(name) + sep}
}

// memBackend keeps the keys in a map, and their sorted list so that a
// scan reads the keys of its prefix only, as Pebble's does (a service that
// scans small prefixes of a large state stays as fast in tests).
type memBackend struct {
	mu     sync.Mutex
	m      map[string][]byte
	sorted []string // the keys of m, in order
}

func (m *memBackend) get(key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return bytes.Clone(v), ok, nil
}

func (m *memBackend) scan(prefix string, fn func(string, []byte) error) error {
	m.mu.Lock()
	var keys []string
	var vals [][]byte
	i, _ := slices.BinarySearch(m.sorted, prefix)
	for ; i < len(m.sorted) && strings.HasPrefix(m.sorted[i], prefix); i++ {
		keys = append(keys, m.sorted[i])
		vals = append(vals, m.m[m.sorted[i]])
	}
	m.mu.Unlock()
	for i, k := range keys {
		if err := fn(k, vals[i]); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (m *memBackend) apply(ops []batchOp) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range ops {
		_, had := m.m[o.key]
		if o.del {
			if had {
				delete(m.m, o.key)
				i, _ := slices.BinarySearch(m.sorted, o.key)
				m.sorted = slices.Delete(m.sorted, i, i+1)
			}
			continue
		}
		m.m[o.key] = append([]byte{}, o.value...)
		if !had {
			i, _ := slices.BinarySearch(m.sorted, o.key)
			m.sorted = slices.Insert(m.sorted, i, o.key)
		}
	}
	return nil
}

func (m *memBackend) Close() error { return nil }

// pebbleBackend keeps the keys in a Pebble database; every batch is synced.
type pebbleBackend struct {
	db  *pebble.DB
	dir string
}

func (p *pebbleBackend) get(key string) ([]byte, bool, error) {
	v, c, err := p.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("service: state %s: %w", p.dir, err)
	}
	defer c.Close()
	return bytes.Clone(v), true, nil
}

func (p *pebbleBackend) scan(prefix string, fn func(string, []byte) error) error {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: prefixEnd([]byte(prefix))})
	if err != nil {
		return fmt.Errorf("service: state %s: %w", p.dir, err)
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(string(it.Key()), it.Value()); err != nil {
			it.Close()
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("service: state %s: %w", p.dir, err)
	}
	return nil
}

func (p *pebbleBackend) apply(ops []batchOp) error {
	b := p.db.NewBatch()
	defer b.Close()
	for _, o := range ops {
		var err error
		if o.del {
			err = b.Delete([]byte(o.key), nil)
		} else {
			err = b.Set([]byte(o.key), o.value, nil)
		}
		if err != nil {
			return fmt.Errorf("service: state %s: %w", p.dir, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("service: state %s: %w", p.dir, err)
	}
	return nil
}

func (p *pebbleBackend) Close() error {
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("service: close state %s: %w", p.dir, err)
	}
	return nil
}

// prefixEnd returns the smallest key after every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// quiet drops Pebble's informational logs.
type quiet struct{}

func (quiet) Infof(string, ...any) {}
func (quiet) Errorf(format string, args ...any) {
	slog.Error("service: state: " + fmt.Sprintf(format, args...))
}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
