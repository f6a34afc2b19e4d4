package ngsild

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/citymesh/citymesh/twin/history"
)

// MaxInstances bounds the instances of one attribute in a temporal
// response; a query that selects more (without lastN) is refused with
// TooManyResults and should narrow its timerel or give lastN.
const MaxInstances = 10000

// temporalParams are the parameters of the temporal API beyond those of
// the entities.
var temporalParams = []string{"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods", "aggrPeriodDuration"}

// aggrFuncs maps the aggregation methods of clause 4.5.19 to what
// history.Aggregate computes; distinctCount, stddev and sumsq it does not.
var aggrFuncs = map[string]history.Func{
	"totalCount": history.Count,
	"sum":        history.Sum,
	"avg":        history.Avg,
	"min":        history.Min,
	"max":        history.Max,
}

// temporalQuery is a temporal query's time selection (clause 4.11) and
// representation.
type temporalQuery struct {
	// mint and maxt bound the instances, milliseconds, both included.
	mint, maxt int64
	// from and to are the aggregation's range when timerel gives them.
	from, to       time.Time
	hasFrom, hasTo bool
	lastN          int
	rep            string // normalized, temporalValues, aggregatedValues
	methods        []string
	period         time.Duration
}

// readTemporal reads timerel, timeAt, endTimeAt, lastN, aggrMethods and
// aggrPeriodDuration. timerel before selects instances observed before
// timeAt, after those observed at or after it, between those in [timeAt,
// endTimeAt); without timerel, all.
func readTemporal(r *http.Request, rep string) (temporalQuery, *problem) {
	v := r.URL.Query()
	tq := temporalQuery{mint: math.MinInt64, maxt: math.MaxInt64, rep: rep}
	if tp := v.Get("timeproperty"); tp != "" && tp != "observedAt" {
		return tq, badRequest("timeproperty: only observedAt is kept")
	}
	parse := func(k string) (time.Time, *problem) {
		s := v.Get(k)
		if s == "" {
			return time.Time{}, badRequest("%s is missing", k)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, badRequest("%s: %q is not an ISO 8601 date-time (2026-05-12T09:30:00Z)", k, s)
		}
		return t, nil
	}
	switch rel := v.Get("timerel"); rel {
	case "":
		if v.Get("timeAt") != "" || v.Get("endTimeAt") != "" {
			return tq, badRequest("timeAt and endTimeAt need timerel")
		}
	case "before", "after", "between":
		at, p := parse("timeAt")
		if p != nil {
			return tq, p
		}
		switch rel {
		case "before":
			tq.maxt, tq.to, tq.hasTo = at.UnixMilli()-1, at, true
		case "after":
			tq.mint, tq.from, tq.hasFrom = at.UnixMilli(), at, true
		case "between":
			end, p := parse("endTimeAt")
			if p != nil {
				return tq, p
			}
			if !end.After(at) {
				return tq, badRequest("endTimeAt %s is not after timeAt %s", v.Get("endTimeAt"), v.Get("timeAt"))
			}
			tq.mint, tq.maxt = at.UnixMilli(), end.UnixMilli()-1
			tq.from, tq.to, tq.hasFrom, tq.hasTo = at, end, true, true
		}
		if rel != "between" && v.Get("endTimeAt") != "" {
			return tq, badRequest("endTimeAt goes with timerel=between only")
		}
	default:
		return tq, badRequest("timerel: %q, want before, after or between", rel)
	}
	if s := v.Get("lastN"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return tq, badRequest("lastN: %q is not a whole number of 1 or more", s)
		}
		tq.lastN = n
	}
	if rep != "aggregatedValues" {
		if v.Get("aggrMethods") != "" || v.Get("aggrPeriodDuration") != "" {
			return tq, badRequest("aggrMethods and aggrPeriodDuration go with options=aggregatedValues")
		}
		return tq, nil
	}
	tq.methods = list(v.Get("aggrMethods"))
	if len(tq.methods) == 0 {
		return tq, badRequest("aggregatedValues needs aggrMethods (totalCount, sum, avg, min, max)")
	}
	for _, m := range tq.methods {
		if _, ok := aggrFuncs[m]; !ok {
			switch m {
			case "distinctCount", "stddev", "sumsq":
				return tq, &problem{http.StatusBadRequest, errBadRequestData, fmt.Sprintf("aggrMethods: %s is not supported here (totalCount, sum, avg, min, max are)", m)}
			}
			return tq, badRequest("aggrMethods: unknown method %q", m)
		}
	}
	if s := v.Get("aggrPeriodDuration"); s != "" {
		d, err := ParseDuration(s)
		if err != nil {
			return tq, badRequest("aggrPeriodDuration: %v", err)
		}
		tq.period = d
	}
	return tq, nil
}

func (h *handler) retrieveTemporal(w http.ResponseWriter, r *http.Request) {
	known := append([]string{"attrs", "options", "format"}, temporalParams...)
	e, f, rep, attrs, p := h.oneEntity(w, r, known, true)
	if p == nil && h.hist == nil {
		p = &problem{http.StatusUnprocessableEntity, errOperationNotSupported, "this server keeps no history"}
	}
	var tq temporalQuery
	if p == nil {
		tq, p = readTemporal(r, rep)
	}
	if p == nil {
		var out object
		out, p = h.temporalEntity(r.Context(), e, attrs, &tq, f)
		if p == nil {
			f.write(w, out)
			return
		}
	}
	writeProblem(w, *p)
}

func (h *handler) queryTemporal(w http.ResponseWriter, r *http.Request) {
	f, p := h.negotiate(r)
	var sel selection
	if p == nil {
		sel, p = readSelection(r, append(slices.Clone(entityParams), temporalParams...))
	}
	if p == nil && sel.empty() {
		p = badRequest("give at least one of type, id, idPattern, attrs, q or georel")
	}
	var rep string
	if p == nil {
		rep, p = readOptions(r, true)
	}
	var offset, limit int
	var count bool
	if p == nil {
		offset, limit, count, p = readPage(r)
	}
	if p == nil && h.hist == nil {
		p = &problem{http.StatusUnprocessableEntity, errOperationNotSupported, "this server keeps no history"}
	}
	var tq temporalQuery
	if p == nil {
		tq, p = readTemporal(r, rep)
	}
	if p == nil {
		sel.scope, p = h.tenant(w, r)
	}
	if p == nil {
		list, total, err := h.selectEntities(&sel, offset, limit)
		if err != nil {
			p = badRequest("%v", err)
		} else {
			out := make([]object, 0, len(list))
			for i := range list {
				o, pp := h.temporalEntity(r.Context(), &list[i], sel.attrs, &tq, f)
				if pp != nil {
					writeProblem(w, *pp)
					return
				}
				out = append(out, o)
			}
			if count {
				w.Header().Set(CountHeader, strconv.Itoa(total))
			}
			f.write(w, out)
			return
		}
	}
	writeProblem(w, *p)
}

// instance is one sample of a point.
type instance struct {
	t int64
	v float64
}

// temporalEntity returns an entity's temporal representation: each
// attribute with a history (the numeric points) as its instances, or
// their aggregates.
func (h *handler) temporalEntity(ctx context.Context, e *entity, attrs []string, tq *temporalQuery, f format) (object, *problem) {
	o := object{{"id", e.id}, {"type", e.typ}}
	for i := range e.attrs {
		a := &e.attrs[i]
		if a.point == "" || len(attrs) > 0 && !slices.Contains(attrs, a.name) {
			continue
		}
		inst, err := h.instances(ctx, a.point, tq)
		if err != nil {
			return nil, err
		}
		if len(inst) == 0 {
			continue
		}
		switch tq.rep {
		case "normalized":
			arr := make([]object, len(inst))
			for j, x := range inst {
				arr[j] = object{{"type", kindProperty}, {"value", x.v}, {"observedAt", timeString(time.UnixMilli(x.t))}}
				if a.unitCode != "" {
					arr[j] = append(arr[j], member{"unitCode", a.unitCode})
				}
			}
			o = append(o, member{a.name, arr})
		case "temporalValues":
			vals := make([][2]any, len(inst))
			for j, x := range inst {
				vals[j] = [2]any{x.v, timeString(time.UnixMilli(x.t))}
			}
			o = append(o, member{a.name, object{{"type", kindProperty}, {"values", vals}}})
		case "aggregatedValues":
			m, p := h.aggregate(ctx, a, inst, tq)
			if p != nil {
				return nil, p
			}
			o = append(o, member{a.name, m})
		}
	}
	if f.ld {
		o = append(o, member{"@context", f.contextValue()})
	}
	return o, nil
}

// instances returns point's samples in the query's time range, oldest
// first: the last lastN if given; for an aggregation, the first and the
// last only.
func (h *handler) instances(ctx context.Context, point string, tq *temporalQuery) ([]instance, *problem) {
	internal := func(err error) *problem {
		return &problem{http.StatusInternalServerError, errInternal, "history: " + err.Error()}
	}
	q, err := h.hist.Querier(tq.mint, tq.maxt)
	if err != nil {
		return nil, internal(err)
	}
	defer q.Close()
	ss := q.Select(ctx, false, nil,
		labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, history.MetricName),
		labels.MustNewMatcher(labels.MatchEqual, history.LabelPoint, point))
	var out []instance
	aggr := tq.rep == "aggregatedValues"
	first, last := instance{t: math.MaxInt64}, instance{t: math.MinInt64}
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for vt := it.Seek(tq.mint); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if t > tq.maxt {
				break
			}
			if value.IsStaleNaN(v) {
				continue
			}
			if aggr {
				// An aggregation needs the first and last times only.
				if first.t > t || first.t == math.MaxInt64 {
					first = instance{t, v}
				}
				if last.t < t || last.t == math.MinInt64 {
					last = instance{t, v}
				}
				continue
			}
			out = append(out, instance{t, v})
			if tq.lastN > 0 && len(out) > 2*tq.lastN+MaxInstances {
				out = append(out[:0], out[len(out)-tq.lastN:]...)
			}
			if tq.lastN == 0 && len(out) > MaxInstances {
				return nil, &problem{http.StatusForbidden, errTooManyResults,
					fmt.Sprintf("%s has more than %d instances in this time range: narrow timerel or give lastN", point, MaxInstances)}
			}
		}
		if err := it.Err(); err != nil {
			return nil, internal(err)
		}
	}
	if err := ss.Err(); err != nil {
		return nil, internal(err)
	}
	if aggr {
		if first.t == math.MaxInt64 {
			return nil, nil
		}
		return []instance{first, last}, nil
	}
	// A unit or tenant change makes a second series of the same point.
	slices.SortStableFunc(out, func(a, b instance) int { return cmp.Compare(a.t, b.t) })
	if tq.lastN > 0 && len(out) > tq.lastN {
		out = out[len(out)-tq.lastN:]
	}
	return out, nil
}

// aggregate returns an attribute's aggregated representation (clause
// 4.5.19): for each method, [value, start, end] of each period of
// aggrPeriodDuration (the whole range if zero) that has instances. The
// range is timerel's; a start it leaves open is the first instance's
// time, an open end the end of the period that holds the last instance
// (with no period, just after that instance).
func (h *handler) aggregate(ctx context.Context, a *attr, inst []instance, tq *temporalQuery) (object, *problem) {
	start, end := time.UnixMilli(inst[0].t), time.UnixMilli(inst[len(inst)-1].t+1)
	if tq.hasFrom {
		start = tq.from
	}
	if tq.hasTo {
		end = tq.to
	} else if p := tq.period; p > 0 {
		// An open end: the last period is whole.
		end = start.Add((end.Sub(start) + p - 1) / p * p)
	}
	m := object{{"type", kindProperty}}
	for _, name := range tq.methods {
		res, err := h.hist.Aggregate(ctx, history.Query{Filter: history.Filter{Point: a.point},
			Start: start, End: end, Window: tq.period, Func: aggrFuncs[name]})
		if err != nil {
			if strings.Contains(err.Error(), "windows, more than") {
				return nil, &problem{http.StatusForbidden, errTooManyResults, "aggrPeriodDuration: " + err.Error()}
			}
			return nil, badRequest("%v", err)
		}
		var rows [][3]any
		for _, s := range res.Series {
			for _, b := range s.Points {
				e := end
				if tq.period > 0 && b.Start.Add(tq.period).Before(end) {
					e = b.Start.Add(tq.period)
				}
				rows = append(rows, [3]any{b.Value, timeString(b.Start), timeString(e)})
			}
		}
		if tq.lastN > 0 && len(rows) > tq.lastN {
			rows = rows[len(rows)-tq.lastN:]
		}
		if rows == nil {
			rows = [][3]any{}
		}
		m = append(m, member{name, rows})
	}
	return m, nil
}
