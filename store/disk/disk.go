// Package disk is the default engine of package store: the embedded Pebble
// key-value store in a directory, with synced writes for durable batches.
package disk

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"

	"github.com/citymesh/citymesh/store"
)

// Engine is a store.Engine on Pebble.
type Engine struct {
	db  *pebble.DB
	dir string
}

// Open opens (or creates) the store in dir.
func Open(dir string) (*store.Store, error) {
	e, err := OpenEngine(dir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(e)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("%w (in %s)", err, dir)
	}
	return st, nil
}

// OpenEngine opens (or creates) the Pebble engine in dir.
func OpenEngine(dir string) (*Engine, error) {
	opts := &pebble.Options{
		Logger: logger{},
		// Queue entries are written and deleted soon after: a larger
		// memtable lets more of them meet before they reach a table.
		MemTableSize: 64 << 20,
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return &Engine{db: db, dir: dir}, nil
}

// Close implements store.Engine.
func (e *Engine) Close() error {
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", e.dir, err)
	}
	return nil
}

// Check reads every table of the store and verifies its block checksums and
// key order, beyond the record checksums that Load verifies.
func (e *Engine) Check() error {
	if err := e.db.CheckLevels(nil); err != nil {
		return fmt.Errorf("store: %s: %w", e.dir, err)
	}
	return nil
}

// Metrics returns Pebble's metrics, for diagnostics.
func (e *Engine) Metrics() *pebble.Metrics { return e.db.Metrics() }

// Apply implements store.Engine.
func (e *Engine) Apply(b *store.Batch, durable bool) error {
	pb := e.db.NewBatchWithSize(b.Size() + 16*b.Len())
	defer pb.Close()
	err := b.Each(func(kind store.Op, key, value []byte) error {
		switch kind {
		case store.OpSet:
			return pb.Set(key, value, nil)
		case store.OpDelete:
			return pb.Delete(key, nil)
		default:
			return pb.DeleteRange(key, value, nil)
		}
	})
	if err != nil {
		return fmt.Errorf("store: batch: %w", err)
	}
	opt := pebble.NoSync
	if durable {
		opt = pebble.Sync
	}
	if err := pb.Commit(opt); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// Scan implements store.Engine.
func (e *Engine) Scan(lower, upper []byte, fn func(key, value []byte) error) error {
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("store: scan: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("store: read %q: %w", it.Key(), err)
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			if errors.Is(err, store.ErrStop) {
				return nil
			}
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("store: scan: %w", err)
	}
	return nil
}

// Get implements store.Engine.
func (e *Engine) Get(key []byte) ([]byte, bool, error) {
	v, closer, err := e.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: get: %w", err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// logger passes Pebble's errors to the process's log and keeps its
// informational messages out of it.
type logger struct{}

func (logger) Infof(string, ...any) {}
func (logger) Errorf(format string, args ...any) {
	slog.Error("store: pebble: " + fmt.Sprintf(format, args...))
}
func (logger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("store: pebble: "+format, args...))
}
