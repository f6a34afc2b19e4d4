package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// MetricName is the metric name (__name__) of every sample of the history:
// one metric, whose labels say which point, asset and quantity a series is.
const MetricName = "citymesh_point_value"

// The label names of a series. A label whose value is empty is left out, as
// Prometheus does.
const (
	LabelPoint     = "point"
	LabelAsset     = "asset"
	LabelAssetKind = "asset_kind"
	LabelQuantity  = "quantity"
	LabelUnit      = "unit"
	LabelSite      = "site"
	LabelTenant    = "tenant"
)

// DefaultRetention is how long the history keeps samples and events when
// Options.Retention is zero.
const DefaultRetention = 400 * 24 * time.Hour

// DefaultOutOfOrderWindow is how late a sample may arrive and still be kept
// when Options.OutOfOrderWindow is zero.
const DefaultOutOfOrderWindow = 24 * time.Hour

// Options configure a DB. The zero value is usable.
type Options struct {
	// Retention is how long samples and events are kept (DefaultRetention if
	// zero).
	Retention time.Duration
	// KindRetention shortens the retention of the samples and events of the
	// assets of some kinds (asset_kind -> retention). A kind's retention
	// longer than Retention has no effect.
	KindRetention map[string]time.Duration
	// RetentionInterval is how often the per-kind retention is applied (one
	// hour if zero).
	RetentionInterval time.Duration
	// OutOfOrderWindow is how far behind the newest sample of a series a
	// sample may arrive and still be kept (DefaultOutOfOrderWindow if zero,
	// none if negative).
	OutOfOrderWindow time.Duration
	// SyncWAL makes every Append fsync the write-ahead log before it
	// returns, so that what it took survives a crash of the machine as well
	// as one of the process.
	SyncWAL bool
	// Logger receives the history's log (slog.Default() if nil).
	Logger *slog.Logger
	// Now is the clock of retention (time.Now if nil).
	Now func() time.Time
}

// A DB is the embedded history: a Prometheus TSDB for the numeric samples
// and an EventLog for the events. Its methods are safe for concurrent use.
type DB struct {
	tsdb   *tsdb.DB
	events *EventLog
	opts   Options
	dir    string
	log    *slog.Logger

	mu    sync.Mutex // guards cache
	cache map[string]*seriesEntry

	syncMu sync.Mutex // serialises SyncWAL's fsyncs

	// delMu keeps the TSDB's Delete apart from the creation of queriers:
	// a block's Delete replaces its tombstones and meta without a lock
	// that its querier takes.
	delMu sync.RWMutex

	dropped atomic.Uint64 // samples Append left out

	stop context.CancelFunc // stops the retention loop
	done chan struct{}      // closed when it has stopped
}

// seriesEntry caches the labels and TSDB reference of one point's series.
type seriesEntry struct {
	meta Sample // the sample whose labels these are (Time and Value unused)
	lset labels.Labels
	ref  storage.SeriesRef
}

// Open opens (or creates) the history in dir: the TSDB in dir and the event
// log in dir/events. It starts the retention loop; Close stops it.
func Open(dir string, opts Options) (*DB, error) {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Hour
	}
	if opts.OutOfOrderWindow == 0 {
		opts.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	to := tsdb.DefaultOptions()
	to.RetentionDuration = opts.Retention.Milliseconds()
	// Close writes the head's chunks to a snapshot, so that Open after a
	// clean shutdown loads it instead of replaying the whole WAL.
	to.EnableMemorySnapshotOnShutdown = true
	if opts.OutOfOrderWindow > 0 {
		to.OutOfOrderTimeWindow = opts.OutOfOrderWindow.Milliseconds()
	}
	// Blocks may grow to a tenth of the shortest retention (as Prometheus
	// does with its one retention), so that a long range is read from few
	// blocks and data outlives its retention by at most a tenth.
	shortest := opts.Retention
	for _, r := range opts.KindRetention {
		if r > 0 && r < shortest {
			shortest = r
		}
	}
	to.MaxBlockDuration = max(to.MinBlockDuration, min(shortest.Milliseconds()/10, (31*24*time.Hour).Milliseconds()))
	log := opts.Logger.With("component", "history")
	tdb, err := tsdb.Open(dir, slog.New(warnHandler{log.Handler()}), nil, to, nil)
	if err != nil {
		return nil, fmt.Errorf("history: open tsdb in %s: %w", dir, err)
	}
	ev, err := OpenEventLog(filepath.Join(dir, "events"))
	if err != nil {
		tdb.Close()
		return nil, err
	}
	db := &DB{
		tsdb:   tdb,
		events: ev,
		opts:   opts,
		dir:    dir,
		log:    log,
		cache:  make(map[string]*seriesEntry),
		done:   make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	db.stop = cancel
	go db.retentionLoop(ctx)
	return db, nil
}

// TSDB returns the underlying Prometheus TSDB, for its administration
// (compaction, statistics); it must not be closed by the caller. Queries go
// through the DB itself, a storage.Queryable.
func (db *DB) TSDB() *tsdb.DB { return db.tsdb }

// Querier returns a querier of the samples in [mint, maxt] (milliseconds):
// a DB is a storage.Queryable, for the Prometheus query engine.
func (db *DB) Querier(mint, maxt int64) (storage.Querier, error) {
	db.delMu.RLock()
	defer db.delMu.RUnlock()
	return db.tsdb.Querier(mint, maxt)
}

// delete deletes the samples of the series matching ms in [mint, maxt].
func (db *DB) delete(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) error {
	db.delMu.Lock()
	defer db.delMu.Unlock()
	return db.tsdb.Delete(ctx, mint, maxt, ms...)
}

// Events returns the event log of the history.
func (db *DB) Events() *EventLog { return db.events }

// Close stops the retention loop and closes the TSDB and the event log.
func (db *DB) Close() error {
	db.stop()
	<-db.done
	return errors.Join(db.tsdb.Close(), db.events.Close())
}

// Labels returns the labels of the series of s.
func Labels(s Sample) labels.Labels {
	b := labels.NewScratchBuilder(8)
	b.Add(labels.MetricName, MetricName)
	add := func(n, v string) {
		if v != "" {
			b.Add(n, v)
		}
	}
	add(LabelPoint, s.Point)
	add(LabelAsset, s.Asset)
	add(LabelAssetKind, s.AssetKind)
	add(LabelQuantity, s.Quantity)
	add(LabelUnit, s.Unit)
	add(LabelSite, s.Site)
	add(LabelTenant, s.Tenant)
	b.Sort()
	return b.Labels()
}

func sameSeries(a, b *Sample) bool {
	return a.Point == b.Point && a.Asset == b.Asset && a.AssetKind == b.AssetKind &&
		a.Quantity == b.Quantity && a.Unit == b.Unit && a.Site == b.Site && a.Tenant == b.Tenant
}

// Append adds samples to the history. It implements Sink: when it returns
// nil the samples are in the TSDB's write-ahead log (written to the
// operating system, and fsynced too if Options.SyncWAL), so they survive a
// restart of the process; when it returns an error (the context's, or the
// disk's) none of them is kept, and the same batch may be tried again.
//
// Samples the history refuses for good are left out and counted (see
// Dropped) without failing the batch, so that one bad sample does not hold
// back a durable queue forever: a sample without a point, one older than
// the newest of its series by more than the out-of-order window, and a
// second, different value of a series at the same millisecond.
func (db *DB) Append(ctx context.Context, samples []Sample) error {
	if len(samples) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("history: append: %w", err)
	}
	app := db.tsdb.Appender(ctx)
	db.mu.Lock()
	var err error
	dropped := 0
	for i := range samples {
		s := &samples[i]
		if s.Point == "" {
			dropped++
			continue
		}
		e := db.cache[s.Point]
		if e == nil || !sameSeries(&e.meta, s) {
			e = &seriesEntry{meta: *s, lset: Labels(*s)}
			e.meta.Time, e.meta.Value = time.Time{}, 0
			db.cache[s.Point] = e
		}
		var ref storage.SeriesRef
		ref, err = app.Append(e.ref, e.lset, s.Time.UnixMilli(), s.Value)
		if refused(err) {
			dropped++
			err = nil
			continue
		}
		if err != nil {
			err = fmt.Errorf("history: append %s at %s: %w", s.Point, s.Time.Format(time.RFC3339Nano), err)
			break
		}
		e.ref = ref
	}
	db.mu.Unlock()
	if err != nil {
		if rerr := app.Rollback(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("history: commit: %w", err)
	}
	if dropped > 0 {
		db.dropped.Add(uint64(dropped))
	}
	if db.opts.SyncWAL {
		if err := db.syncWAL(); err != nil {
			return fmt.Errorf("history: sync: %w", err)
		}
	}
	return nil
}

// refused reports whether err is the TSDB refusing a sample for good.
func refused(err error) bool {
	return err != nil && (errors.Is(err, storage.ErrOutOfBounds) || errors.Is(err, storage.ErrOutOfOrderSample) ||
		errors.Is(err, storage.ErrTooOldSample) || errors.Is(err, storage.ErrDuplicateSampleForTimestamp))
}

// Dropped returns how many samples Append has left out since Open.
func (db *DB) Dropped() uint64 { return db.dropped.Load() }

// syncWAL fsyncs the newest segment of the write-ahead log and of the
// out-of-order write-behind log. fsync acts on the file, whichever
// descriptor it is called on, so a descriptor of our own will do.
func (db *DB) syncWAL() error {
	db.syncMu.Lock()
	defer db.syncMu.Unlock()
	for _, sub := range []string{"wal", "wbl"} {
		if err := syncNewestSegment(filepath.Join(db.dir, sub)); err != nil {
			return err
		}
	}
	return nil
}

func syncNewestSegment(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	newest, name := -1, ""
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err == nil && n > newest {
			newest, name = n, e.Name()
		}
	}
	if name == "" {
		return nil
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// retentionLoop applies the per-kind retention, and that of the events,
// at once and then every RetentionInterval, until Close.
func (db *DB) retentionLoop(ctx context.Context) {
	defer close(db.done)
	t := time.NewTicker(db.opts.RetentionInterval)
	defer t.Stop()
	for {
		if err := db.ApplyRetention(ctx); err != nil && ctx.Err() == nil {
			db.log.Warn("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ApplyRetention deletes the samples and events of each kind of
// Options.KindRetention older than its retention. TSDB keeps one retention
// for a whole database, dropping whole blocks, so the shorter ones are
// applied here the same way: a kind's samples are deleted from the blocks
// that end before its cutoff (tsdb's Delete, which hides them from queries
// at once), and those blocks are rewritten without them (CleanTombstones).
// Each block is so rewritten once, when it falls out of a kind's retention,
// and a kind's samples stay at most one block's length (a tenth of the
// shortest retention, at least two hours) beyond it. Events are deleted to
// the nanosecond. Open runs it every RetentionInterval.
func (db *DB) ApplyRetention(ctx context.Context) error {
	now := db.opts.Now()
	deleted := false
	for kind, ret := range db.opts.KindRetention {
		if ret <= 0 || ret >= db.opts.Retention {
			continue
		}
		cutoff := now.Add(-ret).UnixMilli()
		end := int64(math.MinInt64)
		for _, b := range db.tsdb.Blocks() {
			if m := b.Meta(); m.MaxTime <= cutoff && m.MaxTime > end {
				end = m.MaxTime
			}
		}
		if end == math.MinInt64 {
			continue
		}
		m := labels.MustNewMatcher(labels.MatchEqual, LabelAssetKind, kind)
		if err := db.delete(ctx, math.MinInt64, end-1, m); err != nil {
			return fmt.Errorf("history: retention of %s: %w", kind, err)
		}
		deleted = true
	}
	if deleted {
		if err := db.tsdb.CleanTombstones(); err != nil {
			return fmt.Errorf("history: clean tombstones: %w", err)
		}
	}
	if err := db.events.applyRetention(now, db.opts.Retention, db.opts.KindRetention); err != nil {
		return fmt.Errorf("history: event retention: %w", err)
	}
	return nil
}

// DeleteTenant erases every sample and event of tenant: none is queryable
// when it returns, and the TSDB's blocks are rewritten without them. The
// samples still in the head's write-ahead log are dropped from disk when
// the head is next compacted (within three hours).
func (db *DB) DeleteTenant(ctx context.Context, tenant string) error {
	if tenant == "" {
		return errors.New("history: delete tenant: empty tenant")
	}
	// The head's index would still name the tenant's series (in label
	// values) after their samples are deleted: move them out of the head
	// into a block first (late samples first, as series with some are not
	// moved), then delete them from every block.
	if err := db.tsdb.CompactOOOHead(ctx); err != nil {
		return fmt.Errorf("history: delete tenant %s: %w", tenant, err)
	}
	refs, err := db.headSeries(ctx, LabelTenant, tenant)
	if err != nil {
		return fmt.Errorf("history: delete tenant %s: %w", tenant, err)
	}
	if err := db.tsdb.CompactSelectedSeries(refs); err != nil {
		return fmt.Errorf("history: delete tenant %s: %w", tenant, err)
	}
	m := labels.MustNewMatcher(labels.MatchEqual, LabelTenant, tenant)
	if err := db.delete(ctx, math.MinInt64, math.MaxInt64, m); err != nil {
		return fmt.Errorf("history: delete tenant %s: %w", tenant, err)
	}
	if err := db.tsdb.CleanTombstones(); err != nil {
		return fmt.Errorf("history: delete tenant %s: %w", tenant, err)
	}
	db.mu.Lock()
	for k, e := range db.cache {
		if e.meta.Tenant == tenant {
			delete(db.cache, k)
		}
	}
	db.mu.Unlock()
	if err := db.events.DeleteTenant(ctx, tenant); err != nil {
		return err
	}
	return nil
}

// headSeries returns the references of the head's series whose label name
// has value v.
func (db *DB) headSeries(ctx context.Context, name, v string) ([]storage.SeriesRef, error) {
	ir, err := db.tsdb.Head().Index()
	if err != nil {
		return nil, err
	}
	defer ir.Close()
	p, err := ir.Postings(ctx, name, v)
	if err != nil {
		return nil, err
	}
	var refs []storage.SeriesRef
	for p.Next() {
		refs = append(refs, p.At())
	}
	return refs, p.Err()
}

// matchers returns the label matchers selecting the samples whose labels
// equal the non-empty ones of f (all of the history if none).
func matchers(f Filter) []*labels.Matcher {
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, MetricName)}
	for _, kv := range [][2]string{
		{LabelPoint, f.Point}, {LabelAsset, f.Asset}, {LabelAssetKind, f.AssetKind},
		{LabelQuantity, f.Quantity}, {LabelSite, f.Site}, {LabelTenant, f.Tenant},
	} {
		if kv[1] != "" {
			ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, kv[0], kv[1]))
		}
	}
	return ms
}

// A Filter selects samples by their labels: each non-empty field must equal
// the sample's.
type Filter struct {
	Point, Asset, AssetKind, Quantity, Site, Tenant string
}

// String returns the filter as PromQL label matchers.
func (f Filter) String() string {
	var b strings.Builder
	for i, m := range matchers(f) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.String())
	}
	return b.String()
}

// warnHandler passes on the records of Warn level and above: the TSDB logs
// every compaction and WAL replay at Info. Two warnings of the normal
// course are passed on at Debug: late (out-of-order) samples are compacted
// into blocks that overlap the in-order ones until the next compaction
// merges them, and closing the history stops a compaction under way.
type warnHandler struct{ slog.Handler }

// routineWarnings are the TSDB's warnings of the normal course.
var routineWarnings = map[string]bool{
	"Overlapping blocks found during reloadBlocks":         true,
	"aborting block compactions to persist the head block": true,
}

func (h warnHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnHandler) Handle(ctx context.Context, r slog.Record) error {
	if routineWarnings[r.Message] && r.Level == slog.LevelWarn {
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return warnHandler{h.Handler.WithAttrs(as)}
}

func (h warnHandler) WithGroup(name string) slog.Handler {
	return warnHandler{h.Handler.WithGroup(name)}
}
