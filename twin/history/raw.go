package history

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// A RawSeries is the samples of one point as they were appended.
type RawSeries struct {
	// Meta describes the point (its Time and Value are unused).
	Meta Sample
	// Times and Values are the samples, oldest first.
	Times  []time.Time
	Values []float64
}

// Raw returns the samples of the series selected by f in [from, to), point
// by point and oldest first, for the points keep accepts (all if keep is
// nil). It stops after limit samples in all (no bound if limit <= 0) and
// then reports truncated.
func (db *DB) Raw(ctx context.Context, f Filter, from, to time.Time, limit int, keep func(point string) bool) (out []RawSeries, truncated bool, err error) {
	start, end := from.UnixMilli(), to.UnixMilli()
	if end <= start {
		return nil, false, fmt.Errorf("history: raw: end %s is not after start %s", to, from)
	}
	q, err := db.Querier(start, end-1)
	if err != nil {
		return nil, false, fmt.Errorf("history: raw: %w", err)
	}
	defer q.Close()
	ss := q.Select(ctx, true, nil, matchers(f)...)
	var it chunkenc.Iterator
	n := 0
	for ss.Next() {
		s := ss.At()
		l := s.Labels()
		if keep != nil && !keep(l.Get(LabelPoint)) {
			continue
		}
		rs := RawSeries{Meta: sampleOf(l, 0, 0)}
		rs.Meta.Time = time.Time{}
		it = s.Iterator(it)
		for vt := it.Seek(start); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if t >= end {
				break
			}
			if value.IsStaleNaN(v) {
				continue
			}
			if limit > 0 && n >= limit {
				truncated = true
				break
			}
			rs.Times = append(rs.Times, time.UnixMilli(t).UTC())
			rs.Values = append(rs.Values, v)
			n++
		}
		if err := it.Err(); err != nil {
			return nil, false, fmt.Errorf("history: raw: %w", err)
		}
		if len(rs.Times) > 0 {
			out = append(out, rs)
		}
		if truncated {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, false, fmt.Errorf("history: raw: %w", err)
		}
	}
	if err := ss.Err(); err != nil {
		return nil, false, fmt.Errorf("history: raw: %w", err)
	}
	return out, truncated, nil
}
