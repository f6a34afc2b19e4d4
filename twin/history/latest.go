package history

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Latest returns, for each series selected by f, its latest sample in
// (at-lookback, at], ordered by point: what the twin's state recovers from
// the history after a restart.
func (db *DB) Latest(ctx context.Context, f Filter, at time.Time, lookback time.Duration) ([]Sample, error) {
	if lookback <= 0 {
		return nil, fmt.Errorf("history: latest: lookback %s is not positive", lookback)
	}
	mint, maxt := at.Add(-lookback).UnixMilli()+1, at.UnixMilli()
	q, err := db.Querier(mint, maxt)
	if err != nil {
		return nil, fmt.Errorf("history: latest: %w", err)
	}
	defer q.Close()
	ss := q.Select(ctx, true, nil, matchers(f)...)
	var out []Sample
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		found := false
		var lt int64
		var lv float64
		for vt := it.Seek(mint); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if t > maxt {
				break
			}
			if !value.IsStaleNaN(v) {
				found, lt, lv = true, t, v
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("history: latest: %w", err)
		}
		if found {
			out = append(out, sampleOf(s.Labels(), lt, lv))
		}
	}
	if err := ss.Err(); err != nil {
		return nil, fmt.Errorf("history: latest: %w", err)
	}
	return out, nil
}

// sampleOf returns the Sample of a series's labels, time and value.
func sampleOf(l labels.Labels, t int64, v float64) Sample {
	return Sample{
		Point: l.Get(LabelPoint), Asset: l.Get(LabelAsset), AssetKind: l.Get(LabelAssetKind),
		Quantity: l.Get(LabelQuantity), Unit: l.Get(LabelUnit), Site: l.Get(LabelSite),
		Tenant: l.Get(LabelTenant), Time: time.UnixMilli(t).UTC(), Value: v,
	}
}
