// Package disk is the default engine of package store: the embedded Pebble
// key-value store in a directory, with synced writes for durable batches.
package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"

	"github.com/citymesh/citymesh/store"
)

// Engine is a store.Engine on Pebble.
type Engine struct {
	db      *pebble.DB
	dir     string
	walTail string // how the write-ahead log ended, when not cleanly
}

// Open opens (or creates) the store in dir.
func Open(dir string) (*store.Store, error) {
	return OpenWith(dir, Options{})
}

// Options tune a disk store. The zero value is Pebble's defaults.
type Options struct {
	// MinSyncInterval is the shortest time between two syncs of the
	// write-ahead log: a commit that asks for a sync sooner waits for the
	// rest of the interval, and the commits that arrive meanwhile share
	// its sync. On a node whose clients publish a few messages each, at
	// different times (building gateways, connectors), most syncs carry
	// one or two messages and the syncs themselves cost most of the
	// node's CPU; 500 µs cut a campus node's syncs from 2,700 to 590 a
	// second and its CPU from 0.62 to 0.22 cores (docs/benchmarks.md), for
	// at most that much more time before a durable PUBACK. 0 syncs at once.
	MinSyncInterval time.Duration
}

// OpenWith opens (or creates) the store in dir with options o.
func OpenWith(dir string, o Options) (*store.Store, error) {
	e, err := OpenEngineWith(dir, o)
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

// OpenEngine opens (or creates) the Pebble engine in dir with Pebble's
// defaults.
func OpenEngine(dir string) (*Engine, error) { return OpenEngineWith(dir, Options{}) }

// OpenEngineWith opens (or creates) the Pebble engine in dir with options o.
func OpenEngineWith(dir string, o Options) (*Engine, error) {
	_, err := os.Stat(filepath.Join(dir, "LOCK"))
	fresh := errors.Is(err, fs.ErrNotExist)
	tail, err := checkWALTail(dir)
	if err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, options(o))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	if fresh {
		// The first log of a new store is written before its format is
		// settled, without WAL sync chunks; reopening starts a log that
		// has them, so that damage is told from a torn write from the
		// first record on.
		if err := db.Close(); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", dir, err)
		}
		if db, err = pebble.Open(dir, options(o)); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", dir, err)
		}
	}
	if tail != "" {
		slog.Warn("store: " + tail)
	}
	return &Engine{db: db, dir: dir, walTail: tail}, nil
}

// WALTail reports how the write-ahead log ended when the engine was opened,
// when it did not end cleanly; "" when it did.
func (e *Engine) WALTail() string { return e.walTail }

// checkWALTail reads the newest write-ahead log in dir, the one a crash
// interrupts, and describes how it ends when it does not end cleanly. Pebble
// replays such a log up to its last whole record: what follows was cut short
// while it was being written, before it was synced and so before anything
// it held was acknowledged. A log truncated by damage looks the same, which
// is why it is reported rather than passed over. Damage in the middle of the
// log is detected by Pebble itself, which then refuses to open.
func checkWALTail(dir string) (string, error) {
	logs, err := wal.Scan(wal.Dir{FS: vfs.Default, Dirname: dir})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("store: list write-ahead logs in %s: %w", dir, err)
	}
	if len(logs) == 0 {
		return "", nil
	}
	ll := logs[len(logs)-1]
	r := ll.OpenForRead()
	defer r.Close()
	records := 0
	for {
		rec, off, err := r.NextRecord()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err == nil {
			_, err = io.Copy(io.Discard, rec)
		}
		if err != nil {
			size, _ := ll.PhysicalSize()
			return fmt.Sprintf("write-ahead log %s ends in an incomplete or damaged record after %d whole records (at %s of %d bytes): "+
				"a write cut short by a crash, which was never acknowledged, or a damaged file; it is not replayed (%v)",
				ll, records, off, size, err), nil
		}
		records++
	}
}

func options(o Options) *pebble.Options {
	var minSync func() time.Duration
	if o.MinSyncInterval > 0 {
		minSync = func() time.Duration { return o.MinSyncInterval }
	}
	return &pebble.Options{
		WALMinSyncInterval: minSync,
		Logger:             logger{},
		// Queue entries are written and deleted soon after: a larger
		// memtable lets more of them meet before they reach a table.
		MemTableSize: 64 << 20,
		// The newest format writes WAL sync chunks, which record how far
		// the log was synced: damage to a synced record is then told apart
		// from a write torn by a crash, and reported, not replayed past.
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			// Pebble's default stops the process; the broker reports the
			// damaged file and the read fails with an error instead.
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				slog.Error("store: on-disk corruption", "file", info.Path, "err", info.Details.Error())
			},
		},
	}
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

// Flush writes the engine's memory tables to tables on disk.
func (e *Engine) Flush() error {
	if err := e.db.Flush(); err != nil {
		return fmt.Errorf("store: flush %s: %w", e.dir, err)
	}
	return nil
}
