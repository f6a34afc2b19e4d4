package twin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/twin/history"
)

// Limits of the history routes (docs/twin.md).
const (
	// DefaultHistoryRange is the range asked when a request gives
	// neither from nor to: the last day.
	DefaultHistoryRange = 24 * time.Hour
	// MaxHistoryRange is the longest range one request may ask: the
	// history's default retention.
	MaxHistoryRange = history.DefaultRetention
	// MaxHistoryPoints is the most points one history query may select.
	MaxHistoryPoints = 10000
	// MaxHistoryBuckets is the most buckets (points × windows) one
	// aggregated answer may hold; a series has at most history.MaxWindows.
	MaxHistoryBuckets = 2000000
	// DefaultRawLimit and MaxRawLimit bound the raw samples of a request
	// without step (in all, over every point).
	DefaultRawLimit = 10000
	MaxRawLimit     = 1000000
	// DefaultEventLimit and MaxEventLimit bound the events of one asset's
	// events request.
	DefaultEventLimit = 1000
	MaxEventLimit     = 100000
	// perPointQueries is up to how many points a history query reads
	// point by point; beyond, it reads the series its labels select and
	// keeps the selected points.
	perPointQueries = 64
)

// errNoHistory answers the history routes of a handler without history.
const errNoHistory = "no history on this node: the twin's history routes need HandlerOptions.History"

// HistoryBody is the JSON body of POST /api/v1/twin/history/query: a
// selection of points as for …/points/query, and the history asked of
// them. Offset skips selected points; Limit bounds the raw samples.
type HistoryBody struct {
	QueryBody
	// From and To bound the range [From, To): RFC 3339 times or Unix
	// seconds (default: the last day up to now).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Step is the window length ("15m", "1h", or seconds); without it
	// the raw samples are returned.
	Step string `json:"step,omitempty"`
	// Agg lists the aggregation functions (avg, min, max, sum, count,
	// last; default avg).
	Agg []string `json:"agg,omitempty"`
	// Limit bounds the raw samples in all (DefaultRawLimit, at most
	// MaxRawLimit).
	Limit int `json:"limit,omitempty"`
}

// HistoryAnswer is the body of a history response: the range, and per
// point either its buckets (with step) or its raw samples (without).
type HistoryAnswer struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Step is the window length in seconds (0: raw samples).
	Step float64  `json:"step,omitempty"`
	Agg  []string `json:"agg,omitempty"`
	// Total is how many points the selection has (before Offset).
	Total int `json:"total"`
	// Unknown are the ids asked that the twin does not know (or the
	// request's tenant does not see).
	Unknown []string `json:"unknown,omitempty"`
	// Truncated says the raw samples were cut at Limit.
	Truncated bool `json:"truncated,omitempty"`
	Limit     int  `json:"limit,omitempty"`
	// Series are the points that have samples in the range, by id.
	Series []HistorySeries `json:"series"`
}

// HistorySeries is the history of one point.
type HistorySeries struct {
	Point    string `json:"point"`
	Asset    string `json:"asset"`
	Quantity string `json:"quantity,omitempty"`
	Unit     string `json:"unit,omitempty"`
	// Buckets are the windows that hold samples, oldest first; each has
	// its start, its count and a value per function asked.
	Buckets []map[string]any `json:"buckets,omitempty"`
	// Samples are the raw samples: [time, value] pairs.
	Samples []RawSample `json:"samples,omitempty"`
}

// RawSample is one sample of a raw answer.
type RawSample struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// histRequest is a parsed history request.
type histRequest struct {
	from, to time.Time
	step     time.Duration
	aggs     []history.Func
	limit    int
}

// parseHistory checks the range, step, functions and limit of a request.
func parseHistory(now time.Time, from, to, step string, aggs []string, limit int) (histRequest, error) {
	var hr histRequest
	var err error
	hr.to = now
	if to != "" {
		if hr.to, err = parseTime(to); err != nil {
			return hr, fmt.Errorf("to: %v", err)
		}
	}
	hr.from = hr.to.Add(-DefaultHistoryRange)
	if from != "" {
		if hr.from, err = parseTime(from); err != nil {
			return hr, fmt.Errorf("from: %v", err)
		}
	}
	if !hr.to.After(hr.from) {
		return hr, fmt.Errorf("from %s is not before to %s", hr.from.Format(time.RFC3339), hr.to.Format(time.RFC3339))
	}
	if r := hr.to.Sub(hr.from); r > MaxHistoryRange {
		return hr, fmt.Errorf("the range %s is longer than %s", r, MaxHistoryRange)
	}
	if step != "" {
		if hr.step, err = parseStep(step); err != nil {
			return hr, fmt.Errorf("step: %v", err)
		}
		if n := windows(hr.from, hr.to, hr.step); n > history.MaxWindows {
			return hr, fmt.Errorf("step %s makes %d buckets over the range, more than %d", hr.step, n, history.MaxWindows)
		}
		if len(aggs) == 0 {
			aggs = []string{string(history.Avg)}
		}
		for _, a := range aggs {
			f := history.Func(strings.TrimSpace(a))
			switch f {
			case history.Avg, history.Min, history.Max, history.Sum, history.Count, history.Last:
			default:
				return hr, fmt.Errorf("agg: unknown function %q (want avg, min, max, sum, count or last)", a)
			}
			if !slices.Contains(hr.aggs, f) {
				hr.aggs = append(hr.aggs, f)
			}
		}
	} else if len(aggs) > 0 {
		return hr, errors.New("agg: give step, the window length, to aggregate (without it the raw samples are returned)")
	}
	switch {
	case limit < 0:
		return hr, errors.New("limit must not be negative")
	case limit > MaxRawLimit:
		return hr, fmt.Errorf("limit %d is more than %d", limit, MaxRawLimit)
	case limit == 0:
		limit = DefaultRawLimit
	}
	hr.limit = limit
	return hr, nil
}

// windows returns how many windows of step cover [from, to).
func windows(from, to time.Time, step time.Duration) int64 {
	r := to.Sub(from)
	return int64((r + step - 1) / step)
}

// parseTime reads an RFC 3339 time or Unix seconds.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor Unix seconds", s)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// parseStep reads a duration ("15m", "1h30m", "1d") or seconds, at least a
// second.
func parseStep(s string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f > 1e9 {
			return 0, fmt.Errorf("%q is not a length", s)
		}
		d = time.Duration(f * float64(time.Second))
	} else if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days > 1000 {
			return 0, fmt.Errorf("%q is not a length", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("%q is not a length (15m, 1h, 1d or seconds)", s)
	}
	if d < time.Second {
		return 0, fmt.Errorf("%s is shorter than a second", d)
	}
	return d, nil
}

// history answers 501 when the handler has no history, and reports
// whether it has.
func (h *api) hasHistory(w http.ResponseWriter, r *http.Request) bool {
	if h.o.History == nil {
		writeError(w, r, http.StatusNotImplemented, errNoHistory)
		return false
	}
	return true
}

// pointHistory serves GET …/points/{asset}/{key}/history.
func (h *api) pointHistory(w http.ResponseWriter, r *http.Request) {
	if !h.hasHistory(w, r) {
		return
	}
	id := r.PathValue("asset") + "/" + r.PathValue("key")
	v := r.URL.Query()
	for k := range v {
		switch k {
		case "from", "to", "step", "agg", "limit":
		default:
			writeError(w, r, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q (want from, to, step, agg, limit)", k))
			return
		}
	}
	q := Query{IDs: []string{id}}
	h.scope(r, &q)
	res, err := h.s.Points(q)
	if err != nil || res.Len() == 0 {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("no information point %q", id))
		return
	}
	limit, err := intParam(v, "limit")
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	hr, err := parseHistory(h.o.Now(), v.Get("from"), v.Get("to"), v.Get("step"), listParam(v, "agg"), limit)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	h.answerHistory(w, r, res, "", hr)
}

// historyQuery serves POST …/history/query.
func (h *api) historyQuery(w http.ResponseWriter, r *http.Request) {
	if !h.hasHistory(w, r) {
		return
	}
	var b HistoryBody
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("body: %v", err))
		return
	}
	hr, err := parseHistory(h.o.Now(), b.From, b.To, b.Step, b.Agg, b.Limit)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	qb := b.QueryBody
	qb.Limit = 0
	q, err := qb.query()
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	h.scope(r, &q)
	res, err := h.s.Points(q)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if res.Total-min(q.Offset, res.Total) > MaxHistoryPoints {
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("the selection has %d points, more than %d: narrow it (by kind, quantity, site, building or area) or name at most that many ids", res.Total, MaxHistoryPoints))
		return
	}
	h.answerHistory(w, r, res, q.Scope, hr)
}

// answerHistory reads the history of the points of res and writes it.
func (h *api) answerHistory(w http.ResponseWriter, r *http.Request, res Result, scope string, hr histRequest) {
	if hr.step > 0 {
		if n := int64(res.Len()) * windows(hr.from, hr.to, hr.step); n > MaxHistoryBuckets {
			writeError(w, r, http.StatusBadRequest, fmt.Sprintf("%d points × %d buckets is more than %d buckets: narrow the selection or the range, or widen the step",
				res.Len(), windows(hr.from, hr.to, hr.step), MaxHistoryBuckets))
			return
		}
	}
	ans := HistoryAnswer{From: hr.from, To: hr.to, Total: res.Total, Unknown: res.Unknown, Series: []HistorySeries{}}
	ids := h.s.pointIDs(res)
	var err error
	if hr.step > 0 {
		ans.Step = hr.step.Seconds()
		for _, f := range hr.aggs {
			ans.Agg = append(ans.Agg, string(f))
		}
		ans.Series, err = h.aggregate(r.Context(), ids, h.commonFilter(res, scope), hr)
	} else {
		ans.Limit = hr.limit
		ans.Series, ans.Truncated, err = h.raw(r.Context(), ids, h.commonFilter(res, scope), hr)
	}
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		writeError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// pointIDs returns the ids of the points of a Points result.
func (s *State) pointIDs(r Result) []string {
	ids := make([]string, len(r.idx))
	for j, i := range r.idx {
		ids[j] = s.points[i].p.ID // the model's part of an entry: read-only
	}
	return ids
}

// commonFilter returns the labels the points of res all share (site,
// tenant, asset kind, quantity, asset), so that a query over many points
// reads only the series that may be among them.
func (h *api) commonFilter(res Result, scope string) history.Filter {
	var f history.Filter
	for j, i := range res.idx {
		p := h.s.points[i].p
		c := history.Filter{Asset: p.Asset, AssetKind: string(p.AssetKind), Quantity: p.Quantity, Site: p.Site, Tenant: p.Tenant}
		if j == 0 {
			f = c
			continue
		}
		for _, x := range []struct{ a, b *string }{{&f.Asset, &c.Asset}, {&f.AssetKind, &c.AssetKind},
			{&f.Quantity, &c.Quantity}, {&f.Site, &c.Site}, {&f.Tenant, &c.Tenant}} {
			if *x.a != *x.b {
				*x.a = ""
			}
		}
	}
	if scope != "" {
		f.Tenant = scope
	}
	return f
}

// aggregate returns the buckets of each point of ids: point by point when
// they are few, else over the series common selects, grouped by point.
func (h *api) aggregate(ctx context.Context, ids []string, common history.Filter, hr histRequest) ([]HistorySeries, error) {
	type acc struct {
		s   HistorySeries
		row map[int64]map[string]any // by window start
	}
	byPoint := make(map[string]*acc, len(ids))
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	add := func(f history.Func, res history.Result, point string) {
		for _, s := range res.Series {
			id := s.Group
			if point != "" {
				id = point
			}
			if !want[id] {
				continue
			}
			a := byPoint[id]
			if a == nil {
				a = &acc{row: map[int64]map[string]any{}}
				a.s.Point = id
				byPoint[id] = a
			}
			for _, b := range s.Points {
				k := b.Start.UnixMilli()
				row := a.row[k]
				if row == nil {
					row = map[string]any{"start": b.Start, "count": b.Count}
					a.row[k] = row
				}
				row[string(f)] = b.Value
			}
		}
	}
	for _, f := range hr.aggs {
		q := history.Query{Start: hr.from, End: hr.to, Window: hr.step, Func: f}
		if len(ids) <= perPointQueries {
			for _, id := range ids {
				q.Filter = history.Filter{Point: id}
				res, err := h.o.History.Aggregate(ctx, q)
				if err != nil {
					return nil, err
				}
				add(f, res, id)
			}
			continue
		}
		q.Filter, q.GroupBy = common, history.LabelPoint
		res, err := h.o.History.Aggregate(ctx, q)
		if err != nil {
			return nil, err
		}
		add(f, res, "")
	}
	out := make([]HistorySeries, 0, len(byPoint))
	for _, id := range ids {
		a := byPoint[id]
		if a == nil {
			continue
		}
		h.describe(&a.s)
		keys := make([]int64, 0, len(a.row))
		for k := range a.row {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			a.s.Buckets = append(a.s.Buckets, a.row[k])
		}
		out = append(out, a.s)
		delete(byPoint, id) // an id asked twice is answered once
	}
	return out, nil
}

// raw returns the raw samples of each point of ids, hr.limit in all.
func (h *api) raw(ctx context.Context, ids []string, common history.Filter, hr histRequest) ([]HistorySeries, bool, error) {
	var all []history.RawSeries
	truncated := false
	if len(ids) <= perPointQueries {
		left := hr.limit
		for _, id := range slices.Compact(slices.Clone(ids)) {
			// One more than is left tells whether some are left out.
			rs, _, err := h.o.History.Raw(ctx, history.Filter{Point: id}, hr.from, hr.to, left+1, nil)
			if err != nil {
				return nil, false, err
			}
			for _, s := range rs {
				if n := len(s.Times); n > left {
					s.Times, s.Values, truncated = s.Times[:left], s.Values[:left], true
				}
				left -= len(s.Times)
				if len(s.Times) > 0 {
					all = append(all, s)
				}
			}
			if truncated {
				break
			}
		}
	} else {
		want := make(map[string]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
		var err error
		all, truncated, err = h.o.History.Raw(ctx, common, hr.from, hr.to, hr.limit, func(p string) bool { return want[p] })
		if err != nil {
			return nil, false, err
		}
	}
	out := make([]HistorySeries, 0, len(all))
	for _, rs := range all {
		s := HistorySeries{Point: rs.Meta.Point, Samples: make([]RawSample, len(rs.Times))}
		h.describe(&s)
		for i := range rs.Times {
			s.Samples[i] = RawSample{Time: rs.Times[i], Value: rs.Values[i]}
		}
		out = append(out, s)
	}
	return out, truncated, nil
}

// describe fills a series's asset, quantity and unit from the model.
func (h *api) describe(s *HistorySeries) {
	if p, ok := h.s.model.Point(s.Point); ok {
		s.Asset, s.Quantity, s.Unit = p.Asset, p.Quantity, string(p.Unit)
	}
}

// EventsAnswer is the body of GET …/assets/{id}/events.
type EventsAnswer struct {
	Asset string    `json:"asset"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Limit int       `json:"limit"`
	// Truncated says there are more events in the range after the last
	// one returned.
	Truncated bool            `json:"truncated"`
	Events    []history.Event `json:"events"`
}

// assetEvents serves GET …/assets/{id}/events.
func (h *api) assetEvents(w http.ResponseWriter, r *http.Request) {
	if !h.hasHistory(w, r) {
		return
	}
	id := r.PathValue("id")
	v := r.URL.Query()
	for k := range v {
		switch k {
		case "from", "to", "limit":
		default:
			writeError(w, r, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q (want from, to, limit)", k))
			return
		}
	}
	q := Query{IDs: []string{id}}
	h.scope(r, &q)
	if res, err := h.s.Assets(q); err != nil || res.Len() == 0 {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("no asset %q", id))
		return
	}
	limit, err := intParam(v, "limit")
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case limit < 0:
		writeError(w, r, http.StatusBadRequest, "limit must not be negative")
		return
	case limit > MaxEventLimit:
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("limit %d is more than %d", limit, MaxEventLimit))
		return
	case limit == 0:
		limit = DefaultEventLimit
	}
	hr, err := parseHistory(h.o.Now(), v.Get("from"), v.Get("to"), "", nil, 0)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	evs, err := h.o.History.Events().Query(r.Context(), id, hr.from, hr.to, limit+1)
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		writeError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	ans := EventsAnswer{Asset: id, From: hr.from, To: hr.to, Limit: limit, Events: evs}
	if len(evs) > limit {
		ans.Events, ans.Truncated = evs[:limit], true
	}
	if ans.Events == nil {
		ans.Events = []history.Event{}
	}
	writeJSON(w, http.StatusOK, ans)
}

// intParam reads an integer parameter (0 if absent).
func intParam(v url.Values, k string) (int, error) {
	s := v.Get(k)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a whole number", k, s)
	}
	return n, nil
}

// listParam reads a comma-separated, possibly repeated parameter.
func listParam(v url.Values, k string) []string {
	var out []string
	for _, x := range v[k] {
		for _, y := range strings.Split(x, ",") {
			if y != "" {
				out = append(out, y)
			}
		}
	}
	return out
}
