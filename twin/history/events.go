package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// An Event is something of an asset that is not a number: an incident, an
// alarm, a device's status, the reference of a picture.
type Event struct {
	// Asset is the asset the event is about, AssetKind its kind.
	Asset     string `json:"asset"`
	AssetKind string `json:"asset_kind,omitempty"`
	// Site and Tenant are the asset's site and tenant ("" if none).
	Site   string `json:"site,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	// Type says what the event is (incident, alarm, status, picture, ...).
	Type string `json:"type"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Source is where it came from (a topic, a connector), if known.
	Source string `json:"source,omitempty"`
	// Data is the event's content, as JSON.
	Data json.RawMessage `json:"data,omitempty"`
}

// An EventLog keeps events in a Pebble database, ordered by asset and time,
// so that the events of one asset over a time range are one scan. Its
// methods are safe for concurrent use.
type EventLog struct {
	db  *pebble.DB
	seq atomic.Uint32
}

// Keys are 'e' asset 0x00 time(8 bytes big-endian, nanoseconds since the
// epoch, offset so that they sort) seq(4 bytes), so that events of one
// asset sort by time and two events at the same time do not collide.
const (
	eventPrefix = 'e'
	timeOffset  = uint64(1) << 63
)

func eventKey(asset string, t time.Time, seq uint32) []byte {
	k := make([]byte, 0, 1+len(asset)+1+12)
	k = append(k, eventPrefix)
	k = append(k, asset...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano())+timeOffset)
	k = binary.BigEndian.AppendUint32(k, seq)
	return k
}

// assetPrefix returns the prefix of the keys of asset's events.
func assetPrefix(asset string) []byte {
	k := make([]byte, 0, len(asset)+2)
	k = append(k, eventPrefix)
	k = append(k, asset...)
	return append(k, 0)
}

// timeBound returns the smallest key of asset at or after t.
func timeBound(asset string, t time.Time) []byte {
	k := assetPrefix(asset)
	return binary.BigEndian.AppendUint64(k, uint64(t.UnixNano())+timeOffset)
}

// OpenEventLog opens (or creates) an event log in dir.
func OpenEventLog(dir string) (*EventLog, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("history: open event log in %s: %w", dir, err)
	}
	return &EventLog{db: db}, nil
}

// Close closes the event log.
func (l *EventLog) Close() error { return l.db.Close() }

// Append adds events to the log, all or none; when it returns nil they are
// synced to disk.
func (l *EventLog) Append(ctx context.Context, events []Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("history: append events: %w", err)
	}
	b := l.db.NewBatch()
	defer b.Close()
	for i := range events {
		e := &events[i]
		if e.Asset == "" || strings.IndexByte(e.Asset, 0) >= 0 {
			return fmt.Errorf("history: event %d: bad asset %q", i, e.Asset)
		}
		if e.Data != nil && !json.Valid(e.Data) {
			return fmt.Errorf("history: event %d: data is not JSON", i)
		}
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("history: event %d: %w", i, err)
		}
		if err := b.Set(eventKey(e.Asset, e.Time, l.seq.Add(1)), v, nil); err != nil {
			return fmt.Errorf("history: event %d: %w", i, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("history: append events: %w", err)
	}
	return nil
}

// Query returns the events of asset in [from, to), oldest first, at most
// limit of them (all if limit <= 0).
func (l *EventLog) Query(ctx context.Context, asset string, from, to time.Time, limit int) ([]Event, error) {
	if !to.After(from) {
		return nil, ctx.Err()
	}
	it, err := l.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: timeBound(asset, from),
		UpperBound: timeBound(asset, to),
	})
	if err != nil {
		return nil, fmt.Errorf("history: query events: %w", err)
	}
	defer it.Close()
	var out []Event
	for ok := it.First(); ok; ok = it.Next() {
		if limit > 0 && len(out) >= limit {
			break
		}
		var e Event
		if err := json.Unmarshal(it.Value(), &e); err != nil {
			return nil, fmt.Errorf("history: event %x: %w", it.Key(), err)
		}
		out = append(out, e)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("history: query events: %w", err)
	}
	return out, ctx.Err()
}

// scan calls fn with every event of the log, asset by asset.
func (l *EventLog) scan(ctx context.Context, fn func(key []byte, e *Event) error) error {
	it, err := l.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte{eventPrefix},
		UpperBound: []byte{eventPrefix + 1},
	})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var e Event
		if err := json.Unmarshal(it.Value(), &e); err != nil {
			return fmt.Errorf("history: event %x: %w", it.Key(), err)
		}
		if err := fn(it.Key(), &e); err != nil {
			return err
		}
	}
	return it.Error()
}

// DeleteTenant deletes every event of tenant and compacts the log so that
// they are gone from disk too.
func (l *EventLog) DeleteTenant(ctx context.Context, tenant string) error {
	b := l.db.NewBatch()
	defer b.Close()
	err := l.scan(ctx, func(k []byte, e *Event) error {
		if e.Tenant == tenant {
			return b.Delete(bytes.Clone(k), nil)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("history: delete events of %s: %w", tenant, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("history: delete events of %s: %w", tenant, err)
	}
	if err := l.db.Compact(ctx, []byte{eventPrefix}, []byte{eventPrefix + 1}, false); err != nil {
		return fmt.Errorf("history: compact events: %w", err)
	}
	return nil
}

// ExportTenant calls fn with every event of tenant, asset by asset and by
// time.
func (l *EventLog) ExportTenant(ctx context.Context, tenant string, fn func(*Event) error) error {
	return l.scan(ctx, func(_ []byte, e *Event) error {
		if e.Tenant == tenant {
			return fn(e)
		}
		return nil
	})
}

// applyRetention deletes, asset by asset, the events older than the
// retention of the asset's kind (kinds) or than retention. It reads one
// event per asset (the kind of an asset is that of its oldest event) and
// deletes a key range, so it costs one seek per asset.
func (l *EventLog) applyRetention(now time.Time, retention time.Duration, kinds map[string]time.Duration) error {
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{eventPrefix},
		UpperBound: []byte{eventPrefix + 1},
	})
	if err != nil {
		return err
	}
	b := l.db.NewBatch()
	defer b.Close()
	for ok := it.First(); ok; {
		k := it.Key()
		i := bytes.IndexByte(k[1:], 0)
		if i < 0 {
			ok = it.Next()
			continue
		}
		asset := string(k[1 : 1+i])
		var e Event
		if err := json.Unmarshal(it.Value(), &e); err != nil {
			it.Close()
			return fmt.Errorf("history: event %x: %w", k, err)
		}
		ret := retention
		if r, found := kinds[e.AssetKind]; found && r > 0 && r < ret {
			ret = r
		}
		cutoff := timeBound(asset, now.Add(-ret))
		if bytes.Compare(k, cutoff) < 0 {
			if err := b.DeleteRange(assetPrefix(asset), cutoff, nil); err != nil {
				it.Close()
				return err
			}
		}
		// Next asset: the smallest key after every key of this one.
		next := assetPrefix(asset)
		next[len(next)-1] = 1
		ok = it.SeekGE(next)
	}
	if err := it.Close(); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("history: event retention: %w", err)
	}
	return nil
}

// quietLogger keeps Pebble's informational messages out of the log.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	slog.Error(fmt.Sprintf(format, args...), "component", "history/events")
}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(errors.New(fmt.Sprintf(format, args...)))
}
