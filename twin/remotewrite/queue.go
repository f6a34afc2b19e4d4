package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// queue is the durable FIFO of records in Pebble: key = 8-byte big-endian
// sequence number, value = record. Records are committed in the order of
// their sequence numbers (appendMu), so the reader never sees a record
// after one with a higher number: it reads from a cursor and deletes the
// range it sent.
type queue struct {
	db *pebble.DB

	appendMu sync.Mutex // orders commits; guards next
	next     uint64     // sequence number of the next record

	mu      sync.Mutex // guards the fields below
	samples int64      // samples queued
	bytes   int64      // bytes of the records queued
	headMin int64      // oldest sample time (ms) of the first record; valid when samples > 0
}

func key(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// openQueue opens (or creates) the queue in dir and counts what it holds.
func openQueue(dir string) (*queue, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("remotewrite: queue dir: %w", err)
	}
	_, err := os.Stat(filepath.Join(dir, "LOCK"))
	fresh := errors.Is(err, fs.ErrNotExist)
	db, err := pebble.Open(dir, pebbleOptions())
	if err != nil {
		return nil, fmt.Errorf("remotewrite: open queue %s: %w", dir, err)
	}
	if fresh {
		// As in the broker's store: the first log of a new database is
		// written before its format is settled; reopening starts one with
		// WAL sync chunks, which tell damage from a torn write.
		if err := db.Close(); err != nil {
			return nil, fmt.Errorf("remotewrite: create queue %s: %w", dir, err)
		}
		if db, err = pebble.Open(dir, pebbleOptions()); err != nil {
			return nil, fmt.Errorf("remotewrite: open queue %s: %w", dir, err)
		}
	}
	q := &queue{db: db}
	it, err := db.NewIter(nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("remotewrite: scan queue: %w", err)
	}
	first := true
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 8 {
			continue
		}
		n, minT, err := recordHeader(it.Value())
		if err != nil {
			it.Close()
			db.Close()
			return nil, fmt.Errorf("remotewrite: queue record %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if first {
			q.headMin, first = minT, false
		}
		q.samples += int64(n)
		q.bytes += int64(len(it.Value()))
		q.next = binary.BigEndian.Uint64(k) + 1
	}
	if err := it.Close(); err != nil {
		db.Close()
		return nil, fmt.Errorf("remotewrite: scan queue: %w", err)
	}
	return q, nil
}

func pebbleOptions() *pebble.Options {
	return &pebble.Options{
		Logger: quietLogger{},
		// Records are written and deleted soon after: a larger memtable
		// lets most of them meet their deletion before they reach a table.
		MemTableSize:       64 << 20,
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				slog.Error("remotewrite: queue corruption on disk", "file", info.Path, "err", info.Details.Error())
			},
		},
	}
}

// quietLogger passes Pebble's errors to slog and leaves out its chatter.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	slog.Error("remotewrite: pebble: " + fmt.Sprintf(format, args...))
}
func (quietLogger) Fatalf(format string, args ...any) {
	slog.Error("remotewrite: pebble: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}

// ErrQueueFull is returned by Append when the samples do not fit in the
// queue's quota; none of them was taken.
var ErrQueueFull = errors.New("remotewrite: queue full")

// push commits records (each holding n[i] samples, the oldest at
// minTime[i]) as one atomic batch and syncs it, unless they exceed the
// quota.
func (q *queue) push(records [][]byte, n []int, minTime []int64, maxSamples, maxBytes int64) error {
	var ns, nb int64
	for i, r := range records {
		ns += int64(n[i])
		nb += int64(len(r))
	}
	q.appendMu.Lock()
	q.mu.Lock()
	if q.samples+ns > maxSamples || q.bytes+nb > maxBytes {
		s, b := q.samples, q.bytes
		q.mu.Unlock()
		q.appendMu.Unlock()
		return fmt.Errorf("%w: %d samples and %d bytes queued, %d and %d more would pass the quota of %d and %d",
			ErrQueueFull, s, b, ns, nb, maxSamples, maxBytes)
	}
	q.mu.Unlock()
	b := q.db.NewBatch()
	for i, r := range records {
		if err := b.Set(key(q.next+uint64(i)), r, nil); err != nil {
			q.appendMu.Unlock()
			b.Close()
			return fmt.Errorf("remotewrite: queue: %w", err)
		}
	}
	// Committed without a sync under appendMu, so that records become
	// visible in the order of their numbers; synced below outside it, so
	// that concurrent Appends share their syncs.
	if err := b.Commit(pebble.NoSync); err != nil {
		q.appendMu.Unlock()
		b.Close()
		return fmt.Errorf("remotewrite: queue: %w", err)
	}
	b.Close()
	q.next += uint64(len(records))
	q.mu.Lock()
	if q.samples == 0 {
		q.headMin = minTime[0]
	}
	q.samples += ns
	q.bytes += nb
	q.mu.Unlock()
	q.appendMu.Unlock()
	// A synced write after the batch in the same log makes the batch
	// durable too.
	if err := q.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("remotewrite: queue sync: %w", err)
	}
	return nil
}

// span is a run of consecutive records read from the queue.
type span struct {
	from, to       uint64 // sequence numbers [from, to)
	samples, bytes int64
}

// read decodes the records from seq cursor on, as long as their samples
// add up to at most max (but at least one record), appending their series
// to ss and samples to qs. The span is empty when the queue is.
func (q *queue) read(cursor uint64, max int, ss []series, qs []qsample) ([]series, []qsample, span, error) {
	sp := span{from: cursor, to: cursor}
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: key(cursor)})
	if err != nil {
		return ss, qs, sp, fmt.Errorf("remotewrite: queue read: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(k)
		v, err := it.ValueAndErr()
		if err != nil {
			return ss, qs, sp, fmt.Errorf("remotewrite: queue read %d: %w", seq, err)
		}
		rn, _, err := recordHeader(v)
		if err != nil {
			return ss, qs, sp, fmt.Errorf("remotewrite: queue record %d: %w", seq, err)
		}
		if sp.samples > 0 && sp.samples+int64(rn) > int64(max) {
			break
		}
		if ss, qs, err = decodeRecord(v, ss, qs); err != nil {
			return ss, qs, sp, fmt.Errorf("remotewrite: queue record %d: %w", seq, err)
		}
		if sp.samples == 0 && sp.bytes == 0 {
			sp.from = seq
		}
		sp.samples += int64(rn)
		sp.bytes += int64(len(v))
		sp.to = seq + 1
	}
	return ss, qs, sp, it.Error()
}

// remove deletes the records of sp and finds the oldest sample time of the
// record now first. The deletion is not synced: a crash may bring the
// records back, to be sent a second time, never lose them.
func (q *queue) remove(sp span) error {
	if err := q.db.DeleteRange(key(sp.from), key(sp.to), pebble.NoSync); err != nil {
		return fmt.Errorf("remotewrite: queue delete: %w", err)
	}
	// Under appendMu no record is being committed: the record found
	// first is the queue's head.
	q.appendMu.Lock()
	defer q.appendMu.Unlock()
	head := int64(0)
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: key(sp.to)})
	if err == nil {
		if it.First() && len(it.Key()) == 8 {
			if _, m, err := recordHeader(it.Value()); err == nil {
				head = m
			}
		}
		it.Close()
	}
	q.mu.Lock()
	q.samples -= sp.samples
	q.bytes -= sp.bytes
	q.headMin = head
	q.mu.Unlock()
	return nil
}

// stats returns the samples and bytes queued and the oldest queued
// sample's time in milliseconds (0 when the queue is empty).
func (q *queue) stats() (samples, bytes, headMin int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.samples == 0 {
		return 0, q.bytes, 0
	}
	return q.samples, q.bytes, q.headMin
}

func (q *queue) close() error {
	if err := q.db.Close(); err != nil {
		return fmt.Errorf("remotewrite: close queue: %w", err)
	}
	return nil
}
