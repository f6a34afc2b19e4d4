package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// APIOptions configure the Prometheus HTTP query API of a DB. The zero
// value is usable.
type APIOptions struct {
	// Prefix is the path under which the API is mounted: its endpoints are
	// Prefix+"/api/v1/query" and so on ("/prometheus" if empty).
	Prefix string
	// Timeout is the longest a query may run (two minutes if zero, as
	// Prometheus); a request's timeout parameter may only shorten it.
	Timeout time.Duration
	// MaxSamples is the most samples a query may hold in memory at once
	// (50 million if zero, as Prometheus).
	MaxSamples int
	// MaxPointsPerSeries is the most points a range query may return per
	// series (11,000 if zero, as Prometheus).
	MaxPointsPerSeries int
	// LookbackDelta is how far back an instant selector looks for a sample
	// (five minutes if zero).
	LookbackDelta time.Duration
	// Scope, if set, says which tenant's series a request may read: every
	// selector of the request then also matches tenant="<tenant>", so that
	// nothing of another tenant is seen, in PromQL as in series and labels.
	// An empty tenant sees everything; an error refuses the request (403,
	// errorType "forbidden").
	Scope func(*http.Request) (tenant string, err error)
}

// An API serves the Prometheus HTTP query API (query, query_range, series,
// labels, label values) over a DB, in Prometheus's JSON format, so that
// Grafana and other Prometheus clients can read the history. Create it
// with NewAPI; it is an http.Handler.
type API struct {
	db     *DB
	opts   APIOptions
	engine *promql.Engine
	parser parser.Parser
	mux    *http.ServeMux
}

// NewAPI returns the Prometheus HTTP query API of db, to be mounted at
// opts.Prefix+"/" (for example mux.Handle("/prometheus/", api)).
func NewAPI(db *DB, opts APIOptions) *API {
	if opts.Prefix == "" {
		opts.Prefix = "/prometheus"
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = 50_000_000
	}
	if opts.MaxPointsPerSeries <= 0 {
		opts.MaxPointsPerSeries = 11000
	}
	if opts.LookbackDelta <= 0 {
		opts.LookbackDelta = 5 * time.Minute
	}
	p := parser.NewParser(parser.Options{})
	a := &API{
		db:   db,
		opts: opts,
		engine: promql.NewEngine(promql.EngineOpts{
			Logger:               db.log,
			MaxSamples:           opts.MaxSamples,
			Timeout:              opts.Timeout,
			LookbackDelta:        opts.LookbackDelta,
			EnableAtModifier:     true,
			EnableNegativeOffset: true,
			Parser:               p,
		}),
		parser: p,
		mux:    http.NewServeMux(),
	}
	base := opts.Prefix + "/api/v1/"
	a.handle(base+"query", a.query)
	a.handle(base+"query_range", a.queryRange)
	a.handle(base+"series", a.series)
	a.handle(base+"labels", a.labelNames)
	a.handle(base+"label/{name}/values", a.labelValues)
	a.handle(base+"status/buildinfo", a.buildInfo)
	a.handle(base+"metadata", a.metadata)
	a.handle(base+"query_exemplars", a.exemplars)
	a.mux.HandleFunc(base, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{typ: "not_found", code: http.StatusNotFound, err: fmt.Errorf("no endpoint %s", r.URL.Path)})
	})
	return a
}

// ServeHTTP serves the API's endpoints.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// tenantKey is the context key of the tenant a request is scoped to.
type tenantKey struct{}

// queryable returns what r may read: the DB, or the DB seen through the
// tenant r is scoped to.
func (a *API) queryable(r *http.Request) storage.Queryable {
	tenant, _ := r.Context().Value(tenantKey{}).(string)
	if tenant == "" {
		return a.db
	}
	return scopedQueryable{a.db, labels.MustNewMatcher(labels.MatchEqual, LabelTenant, tenant)}
}

// A scopedQueryable adds a matcher to every selection of its queriers.
type scopedQueryable struct {
	q storage.Queryable
	m *labels.Matcher
}

func (s scopedQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedQuerier{q, s.m}, nil
}

type scopedQuerier struct {
	storage.Querier
	m *labels.Matcher
}

func (s scopedQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return s.Querier.Select(ctx, sorted, hints, append(slices.Clip(ms), s.m)...)
}

func (s scopedQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return s.Querier.LabelValues(ctx, name, hints, append(slices.Clip(ms), s.m)...)
}

func (s scopedQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return s.Querier.LabelNames(ctx, hints, append(slices.Clip(ms), s.m)...)
}

// An apiError is an error in the API's error format.
type apiError struct {
	typ  string
	code int
	err  error
}

func badData(format string, args ...any) *apiError {
	return &apiError{typ: "bad_data", code: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

func (a *API) handle(pattern string, fn func(*http.Request) (any, annotations.Annotations, *apiError)) {
	h := func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeError(w, badData("parse form: %v", err))
			return
		}
		if a.opts.Scope != nil {
			tenant, err := a.opts.Scope(r)
			if err != nil {
				writeError(w, &apiError{typ: "forbidden", code: http.StatusForbidden, err: err})
				return
			}
			if tenant != "" {
				r = r.WithContext(context.WithValue(r.Context(), tenantKey{}, tenant))
			}
		}
		data, warnings, aerr := fn(r)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		writeSuccess(w, data, warnings)
	}
	a.mux.HandleFunc("GET "+pattern, h)
	a.mux.HandleFunc("POST "+pattern, h)
}

// queryContext returns the context of a query: the request's, shortened by
// its timeout parameter.
func (a *API) queryContext(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	if s := r.FormValue("timeout"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return nil, nil, badData("invalid parameter \"timeout\": %v", err)
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithCancel(r.Context())
	return ctx, cancel, nil
}

func (a *API) query(r *http.Request) (any, annotations.Annotations, *apiError) {
	ts := time.Now()
	if s := r.FormValue("time"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return nil, nil, badData("invalid parameter \"time\": %v", err)
		}
		ts = t
	}
	ctx, cancel, aerr := a.queryContext(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	defer cancel()
	q, err := a.engine.NewInstantQuery(ctx, a.queryable(r), nil, r.FormValue("query"), ts)
	if err != nil {
		return nil, nil, badData("invalid parameter \"query\": %v", err)
	}
	return a.exec(ctx, q)
}

func (a *API) queryRange(r *http.Request) (any, annotations.Annotations, *apiError) {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"start\": %v", err)
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"end\": %v", err)
	}
	if end.Before(start) {
		return nil, nil, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"step\": %v", err)
	}
	if step <= 0 {
		return nil, nil, badData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if end.Sub(start)/step > time.Duration(a.opts.MaxPointsPerSeries) {
		return nil, nil, badData("exceeded maximum resolution of %d points per timeseries. Try decreasing the query resolution (?step=XX)", a.opts.MaxPointsPerSeries)
	}
	ctx, cancel, aerr := a.queryContext(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	defer cancel()
	q, err := a.engine.NewRangeQuery(ctx, a.queryable(r), nil, r.FormValue("query"), start, end, step)
	if err != nil {
		return nil, nil, badData("invalid parameter \"query\": %v", err)
	}
	return a.exec(ctx, q)
}

// queryData is the data of a query's answer.
type queryData struct {
	typ parser.ValueType
	val parser.Value
}

func (a *API) exec(ctx context.Context, q promql.Query) (any, annotations.Annotations, *apiError) {
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Warnings, execError(res.Err)
	}
	return queryData{typ: res.Value.Type(), val: res.Value}, res.Warnings, nil
}

// execError maps an error of the query engine to the API's error types, as
// Prometheus does.
func execError(err error) *apiError {
	var (
		canceled promql.ErrQueryCanceled
		timeout  promql.ErrQueryTimeout
		series   promql.ErrTooManySeries
		read     promql.ErrTooManySamplesRead
		stor     promql.ErrStorage
	)
	switch {
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return &apiError{typ: "canceled", code: 499, err: err}
	case errors.As(err, &timeout):
		return &apiError{typ: "timeout", code: http.StatusServiceUnavailable, err: err}
	case errors.As(err, &series), errors.As(err, &read):
		return &apiError{typ: "cost_limit", code: http.StatusUnprocessableEntity, err: err}
	case errors.As(err, &stor):
		return &apiError{typ: "internal", code: http.StatusInternalServerError, err: err}
	}
	return &apiError{typ: "execution", code: http.StatusUnprocessableEntity, err: err}
}

// selectRange returns the start, end and match[] selectors of a series or
// labels request.
func (a *API) selectRange(r *http.Request) (int64, int64, [][]*labels.Matcher, *apiError) {
	start, end := int64(math.MinInt64/2), int64(math.MaxInt64/2)
	if s := r.FormValue("start"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return 0, 0, nil, badData("invalid parameter \"start\": %v", err)
		}
		start = t.UnixMilli()
	}
	if s := r.FormValue("end"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return 0, 0, nil, badData("invalid parameter \"end\": %v", err)
		}
		end = t.UnixMilli()
	}
	if end < start {
		return 0, 0, nil, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	var sets [][]*labels.Matcher
	for _, m := range r.Form["match[]"] {
		ms, err := a.parser.ParseMetricSelector(m)
		if err != nil {
			return 0, 0, nil, badData("invalid parameter \"match[]\": %v", err)
		}
		sets = append(sets, ms)
	}
	return start, end, sets, nil
}

func parseLimit(r *http.Request) (int, *apiError) {
	s := r.FormValue("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badData("invalid parameter \"limit\": %q is not a non-negative integer", s)
	}
	return n, nil
}

func (a *API) series(r *http.Request) (any, annotations.Annotations, *apiError) {
	start, end, sets, aerr := a.selectRange(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	if len(sets) == 0 {
		return nil, nil, badData("no match[] parameter provided")
	}
	limit, aerr := parseLimit(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	q, err := a.queryable(r).Querier(start, end)
	if err != nil {
		return nil, nil, &apiError{typ: "execution", code: http.StatusUnprocessableEntity, err: err}
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: start, End: end, Func: "series"}
	var all []storage.SeriesSet
	for _, ms := range sets {
		all = append(all, q.Select(r.Context(), true, hints, ms...))
	}
	set := storage.NewMergeSeriesSet(all, 0, storage.ChainedSeriesMerge)
	out := []labels.Labels{}
	var warnings annotations.Annotations
	for set.Next() {
		if limit > 0 && len(out) >= limit {
			warnings.Add(errors.New("results truncated due to limit"))
			break
		}
		out = append(out, set.At().Labels())
	}
	if err := set.Err(); err != nil {
		return nil, nil, execError(err)
	}
	warnings.Merge(set.Warnings())
	return out, warnings, nil
}

func (a *API) labelNames(r *http.Request) (any, annotations.Annotations, *apiError) {
	return a.labels(r, "")
}

func (a *API) labelValues(r *http.Request) (any, annotations.Annotations, *apiError) {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if name == "" || !model.UTF8Validation.IsValidLabelName(name) {
		return nil, nil, badData("invalid label name: %q", name)
	}
	return a.labels(r, name)
}

// labels answers labels (name == "") and label/name/values.
func (a *API) labels(r *http.Request, name string) (any, annotations.Annotations, *apiError) {
	start, end, sets, aerr := a.selectRange(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	limit, aerr := parseLimit(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	q, err := a.queryable(r).Querier(start, end)
	if err != nil {
		return nil, nil, &apiError{typ: "execution", code: http.StatusUnprocessableEntity, err: err}
	}
	defer q.Close()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	var warnings annotations.Annotations
	seen := map[string]struct{}{}
	for _, ms := range sets {
		var vals []string
		var ws annotations.Annotations
		if name == "" {
			vals, ws, err = q.LabelNames(r.Context(), nil, ms...)
		} else {
			vals, ws, err = q.LabelValues(r.Context(), name, nil, ms...)
		}
		if err != nil {
			return nil, nil, execError(err)
		}
		warnings.Merge(ws)
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings.Add(errors.New("results truncated due to limit"))
	}
	return out, warnings, nil
}

// buildInfo answers status/buildinfo, which Grafana asks to know which
// flavour of Prometheus it talks to.
func (a *API) buildInfo(*http.Request) (any, annotations.Annotations, *apiError) {
	return map[string]string{"version": "3.0.0", "revision": "citymesh", "branch": "", "buildUser": "", "buildDate": "", "goVersion": ""}, nil, nil
}

// exemplars answers query_exemplars: the history keeps no exemplars.
func (a *API) exemplars(*http.Request) (any, annotations.Annotations, *apiError) {
	return []string{}, nil, nil
}

// metadata answers metadata: the one metric of the history is a gauge.
func (a *API) metadata(*http.Request) (any, annotations.Annotations, *apiError) {
	return map[string][]map[string]string{
		MetricName: {{"type": "gauge", "help": "Value of a citymesh information point, in the unit of its unit label.", "unit": ""}},
	}, nil, nil
}

// Response writing. The JSON is written by hand: a range query's answer is
// mostly numbers in strings, which encoding/json would reflect over one by
// one.

func writeError(w http.ResponseWriter, e *apiError) {
	var b bytes.Buffer
	b.WriteString(`{"status":"error","errorType":`)
	writeString(&b, e.typ)
	b.WriteString(`,"error":`)
	writeString(&b, e.err.Error())
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.code)
	w.Write(b.Bytes())
}

func writeSuccess(w http.ResponseWriter, data any, warnings annotations.Annotations) {
	var b bytes.Buffer
	b.WriteString(`{"status":"success","data":`)
	switch d := data.(type) {
	case queryData:
		writeQueryData(&b, d)
	case []labels.Labels:
		b.WriteByte('[')
		for i, l := range d {
			if i > 0 {
				b.WriteByte(',')
			}
			writeLabels(&b, l)
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, s := range d {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(&b, s)
		}
		b.WriteByte(']')
	case map[string]string:
		b.WriteByte('{')
		for i, k := range slices.Sorted(mapKeys(d)) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(&b, k)
			b.WriteByte(':')
			writeString(&b, d[k])
		}
		b.WriteByte('}')
	case map[string][]map[string]string:
		b.WriteByte('{')
		first := true
		for k, list := range d {
			if !first {
				b.WriteByte(',')
			}
			first = false
			writeString(&b, k)
			b.WriteString(":[")
			for i, m := range list {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteByte('{')
				for j, mk := range slices.Sorted(mapKeys(m)) {
					if j > 0 {
						b.WriteByte(',')
					}
					writeString(&b, mk)
					b.WriteByte(':')
					writeString(&b, m[mk])
				}
				b.WriteByte('}')
			}
			b.WriteByte(']')
		}
		b.WriteByte('}')
	default:
		b.WriteString("null")
	}
	if len(warnings) > 0 {
		ws, infos := warnings.AsStrings("", 10, 10)
		if len(ws) > 0 {
			b.WriteString(`,"warnings":`)
			writeStrings(&b, ws)
		}
		if len(infos) > 0 {
			b.WriteString(`,"infos":`)
			writeStrings(&b, infos)
		}
	}
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func writeStrings(b *bytes.Buffer, ss []string) {
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(b, s)
	}
	b.WriteByte(']')
}

func writeQueryData(b *bytes.Buffer, d queryData) {
	b.WriteString(`{"resultType":`)
	writeString(b, string(d.typ))
	b.WriteString(`,"result":`)
	switch v := d.val.(type) {
	case promql.Matrix:
		b.WriteByte('[')
		for i, s := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"metric":`)
			writeLabels(b, s.Metric)
			b.WriteString(`,"values":[`)
			for j, p := range s.Floats {
				if j > 0 {
					b.WriteByte(',')
				}
				writePoint(b, p.T, p.F)
			}
			b.WriteString("]}")
		}
		b.WriteByte(']')
	case promql.Vector:
		b.WriteByte('[')
		for i, s := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"metric":`)
			writeLabels(b, s.Metric)
			b.WriteString(`,"value":`)
			writePoint(b, s.T, s.F)
			b.WriteByte('}')
		}
		b.WriteByte(']')
	case promql.Scalar:
		writePoint(b, v.T, v.V)
	case promql.String:
		b.WriteByte('[')
		writeTime(b, v.T)
		b.WriteByte(',')
		writeString(b, v.V)
		b.WriteByte(']')
	default:
		b.WriteString("null")
	}
	b.WriteByte('}')
}

func writeLabels(b *bytes.Buffer, l labels.Labels) {
	b.WriteByte('{')
	first := true
	l.Range(func(lb labels.Label) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeString(b, lb.Name)
		b.WriteByte(':')
		writeString(b, lb.Value)
	})
	b.WriteByte('}')
}

// writePoint writes [seconds, "value"], Prometheus's form of a sample.
func writePoint(b *bytes.Buffer, t int64, v float64) {
	b.WriteByte('[')
	writeTime(b, t)
	b.WriteString(`,"`)
	switch {
	case math.IsInf(v, 1):
		b.WriteString("+Inf")
	case math.IsInf(v, -1):
		b.WriteString("-Inf")
	case math.IsNaN(v):
		b.WriteString("NaN")
	default:
		b.Write(strconv.AppendFloat(b.AvailableBuffer(), v, 'f', -1, 64))
	}
	b.WriteString(`"]`)
}

// writeTime writes a time in milliseconds as seconds with a fraction.
func writeTime(b *bytes.Buffer, ms int64) {
	b.Write(strconv.AppendFloat(b.AvailableBuffer(), float64(ms)/1000, 'f', -1, 64))
}

// writeString writes s as a JSON string.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// parseTime parses a time as the Prometheus API does: seconds since the
// epoch (with a fraction) or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing time")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration parses a duration as the Prometheus API does: seconds (with
// a fraction) or a Prometheus duration (5m, 1h30m).
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("missing duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		d := f * float64(time.Second)
		if math.IsNaN(d) || d >= float64(math.MaxInt64) || d <= float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(d), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}
