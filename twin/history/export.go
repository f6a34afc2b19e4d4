package history

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// An ExportRecord is one line of ExportTenant's output: a sample (Kind
// "sample", with Labels and Value) or an event (Kind "event", with Event).
type ExportRecord struct {
	Kind   string            `json:"kind"`
	Time   time.Time         `json:"time"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  *float64          `json:"value,omitempty"`
	Event  *Event            `json:"event,omitempty"`
}

// ExportTenant writes everything the history holds of tenant to w as JSON
// Lines, one ExportRecord a line: every sample of every series of the
// tenant (series by series, oldest first), then every event of it.
func (db *DB) ExportTenant(ctx context.Context, tenant string, w io.Writer) error {
	if tenant == "" {
		return errors.New("history: export tenant: empty tenant")
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return fmt.Errorf("history: export %s: %w", tenant, err)
	}
	defer q.Close()
	ss := q.Select(ctx, true, nil,
		labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, MetricName),
		labels.MustNewMatcher(labels.MatchEqual, LabelTenant, tenant))
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		lm := s.Labels().Map()
		delete(lm, labels.MetricName)
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if err := enc.Encode(ExportRecord{Kind: "sample", Time: time.UnixMilli(t).UTC(), Labels: lm, Value: &v}); err != nil {
				return fmt.Errorf("history: export %s: %w", tenant, err)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("history: export %s: %w", tenant, err)
		}
	}
	if err := ss.Err(); err != nil {
		return fmt.Errorf("history: export %s: %w", tenant, err)
	}
	err = db.events.ExportTenant(ctx, tenant, func(e *Event) error {
		return enc.Encode(ExportRecord{Kind: "event", Time: e.Time.UTC(), Event: e})
	})
	if err != nil {
		return fmt.Errorf("history: export %s: %w", tenant, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("history: export %s: %w", tenant, err)
	}
	return nil
}
