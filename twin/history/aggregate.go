package history

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// A Func is an aggregation function over the samples of a window.
type Func string

// The aggregation functions.
const (
	Avg   Func = "avg"
	Min   Func = "min"
	Max   Func = "max"
	Sum   Func = "sum"
	Count Func = "count"
	Last  Func = "last"
)

// MaxWindows is the most windows an aggregation may have per series, as
// Prometheus's 11,000 points per series.
const MaxWindows = 11000

// A Query asks for the aggregates of the samples selected by Filter, over
// [Start, End), in windows [Start+k*Window, Start+(k+1)*Window) (the last
// one ends at End), grouped by the label GroupBy.
type Query struct {
	Filter
	// GroupBy is the label whose values make the groups: LabelPoint,
	// LabelAsset, LabelAssetKind, LabelQuantity, LabelSite or LabelTenant;
	// "" puts every selected sample in one group.
	GroupBy string
	// Start and End bound the query; End is excluded.
	Start, End time.Time
	// Window is the length of a window (End-Start if zero: one window).
	Window time.Duration
	// Func is the aggregation function. Over a group of many series, avg
	// is that of all their samples, count and sum add up, and last is the
	// value of the group's latest sample.
	Func Func
}

// A Result is the answer to a Query: one Series per group, ordered by group.
type Result struct {
	Series []Series `json:"series"`
}

// A Series is the aggregates of one group, windows without samples left out.
type Series struct {
	// Group is the value of the label Query.GroupBy for this group.
	Group  string   `json:"group"`
	Points []Bucket `json:"points"`
}

// A Bucket is the aggregate of one window.
type Bucket struct {
	// Start is the start of the window.
	Start time.Time `json:"start"`
	// Value is the aggregate; Count the number of samples in the window.
	Value float64 `json:"value"`
	Count int     `json:"count"`
}

type accum struct {
	v     []float64
	n     []int64
	lastT []int64
}

// Aggregate answers q by reading the TSDB's chunks directly: each sample is
// decoded once and added to its window's aggregate.
func (db *DB) Aggregate(ctx context.Context, q Query) (Result, error) {
	switch q.Func {
	case Avg, Min, Max, Sum, Count, Last:
	default:
		return Result{}, fmt.Errorf("history: aggregate: unknown function %q", q.Func)
	}
	switch q.GroupBy {
	case "", LabelPoint, LabelAsset, LabelAssetKind, LabelQuantity, LabelSite, LabelTenant:
	default:
		return Result{}, fmt.Errorf("history: aggregate: cannot group by %q", q.GroupBy)
	}
	start, end := q.Start.UnixMilli(), q.End.UnixMilli()
	if end <= start {
		return Result{}, fmt.Errorf("history: aggregate: end %s is not after start %s", q.End, q.Start)
	}
	win := q.Window.Milliseconds()
	if q.Window == 0 {
		win = end - start
	}
	if win <= 0 {
		return Result{}, fmt.Errorf("history: aggregate: window %s is shorter than a millisecond", q.Window)
	}
	nwin := (end - start + win - 1) / win
	if nwin > MaxWindows {
		return Result{}, fmt.Errorf("history: aggregate: %d windows, more than %d", nwin, MaxWindows)
	}
	querier, err := db.Querier(start, end-1)
	if err != nil {
		return Result{}, fmt.Errorf("history: aggregate: %w", err)
	}
	defer querier.Close()
	ss := querier.Select(ctx, false, nil, matchers(q.Filter)...)
	groups := make(map[string]*accum)
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		g := ""
		if q.GroupBy != "" {
			g = s.Labels().Get(q.GroupBy)
		}
		a := groups[g]
		if a == nil {
			a = &accum{v: make([]float64, nwin), n: make([]int64, nwin)}
			if q.Func == Last {
				a.lastT = make([]int64, nwin)
			}
			groups[g] = a
		}
		it = s.Iterator(it)
		vt := it.Seek(start)
		for ; vt != chunkenc.ValNone; vt = it.Next() {
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
			i := (t - start) / win
			n := a.n[i]
			switch q.Func {
			case Avg, Sum:
				a.v[i] += v
			case Min:
				if n == 0 || v < a.v[i] {
					a.v[i] = v
				}
			case Max:
				if n == 0 || v > a.v[i] {
					a.v[i] = v
				}
			case Last:
				if n == 0 || t >= a.lastT[i] {
					a.v[i], a.lastT[i] = v, t
				}
			}
			a.n[i] = n + 1
		}
		if err := it.Err(); err != nil {
			return Result{}, fmt.Errorf("history: aggregate: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("history: aggregate: %w", err)
		}
	}
	if err := ss.Err(); err != nil {
		return Result{}, fmt.Errorf("history: aggregate: %w", err)
	}
	res := Result{Series: make([]Series, 0, len(groups))}
	for g, a := range groups {
		s := Series{Group: g}
		used := 0
		for _, n := range a.n {
			if n > 0 {
				used++
			}
		}
		s.Points = make([]Bucket, 0, used)
		for i, n := range a.n {
			if n == 0 {
				continue
			}
			v := a.v[i]
			switch q.Func {
			case Avg:
				v /= float64(n)
			case Count:
				v = float64(n)
			}
			s.Points = append(s.Points, Bucket{
				Start: time.UnixMilli(start + int64(i)*win).UTC(),
				Value: v,
				Count: int(n),
			})
		}
		if len(s.Points) > 0 {
			res.Series = append(res.Series, s)
		}
	}
	slices.SortFunc(res.Series, func(a, b Series) int {
		return strings.Compare(a.Group, b.Group)
	})
	return res, nil
}
