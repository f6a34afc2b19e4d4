package ngsild

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"

	"github.com/citymesh/citymesh/twin"
	"github.com/citymesh/citymesh/twin/history"
)

// Prefix is where Handler serves: every route is under it.
const Prefix = "/ngsi-ld/v1/"

// CoreContext is the NGSI-LD core @context this API follows (ETSI GS CIM
// 009 V1.8.1).
const CoreContext = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

// ContextPath is where the citymesh @context (the terms beyond the core:
// Smart Data Models' and citymesh's) is served.
const ContextPath = Prefix + "contexts/citymesh.jsonld"

// DefaultLimit and MaxLimit bound a page of entities (clause 6.3.10:
// limit); a larger limit is refused with TooManyResults.
const (
	DefaultLimit = 20
	MaxLimit     = 1000
)

// TenantHeader is the request header naming the tenant (clause 6.3.14).
const TenantHeader = "NGSILD-Tenant"

// CountHeader carries the number of matching entities when count=true
// (clause 6.3.13).
const CountHeader = "NGSILD-Results-Count"

// Options configure Handler.
type Options struct {
	// Tenant, when set, says whom a request is for: a tenant's user sees
	// only its tenant's entities (all false), an operator all (all true),
	// as twin.HandlerOptions.Tenant. A user's request whose NGSILD-Tenant
	// names another tenant is refused with 403; an operator's
	// NGSILD-Tenant selects that tenant's entities. Nil: NGSILD-Tenant,
	// when present, selects its tenant's entities, else all are seen.
	Tenant func(r *http.Request) (tenant string, all bool)
	// Now is the clock of liveness (default time.Now).
	Now func() time.Time
	// ContextURL is the absolute URL of the citymesh @context
	// (ContextPath on the host that serves this API); default: that path
	// on the request's host.
	ContextURL string
}

// Handler returns the NGSI-LD API over state and, for the temporal API,
// hist (nil: the temporal API answers OperationNotSupported), to be
// mounted at Prefix.
func Handler(state *twin.State, hist *history.DB, o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &handler{s: state, hist: hist, o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"entities", h.queryEntities)
	mux.HandleFunc("GET "+Prefix+"entities/{id}", h.retrieveEntity)
	mux.HandleFunc("GET "+Prefix+"temporal/entities", h.queryTemporal)
	mux.HandleFunc("GET "+Prefix+"temporal/entities/{id}", h.retrieveTemporal)
	mux.HandleFunc("GET "+ContextPath, serveContext)
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		for _, p := range []string{"entities", "temporal/entities", "contexts/"} {
			if strings.HasPrefix(strings.TrimPrefix(r.URL.Path, Prefix), p) {
				w.Header().Set("Allow", "GET")
				writeProblem(w, problem{http.StatusMethodNotAllowed, errOperationNotSupported,
					r.Method + " " + r.URL.Path + " is not supported: this NGSI-LD API is read-only"})
				return
			}
		}
		writeProblem(w, problem{http.StatusNotFound, errResourceNotFound, "no such resource: " + r.URL.Path})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			writeProblem(w, problem{http.StatusBadRequest, errBadRequestData, "query string: " + err.Error()})
			return
		}
		r2 := r.WithContext(r.Context())
		u := *r.URL
		u.RawQuery = v.Encode()
		r2.URL = &u
		mux.ServeHTTP(w, r2)
	})
}

// parseQuery parses a query string whose parameters are separated by "&"
// only: NGSI-LD's q and georel use ";" unescaped (q=a>1;b<2,
// georel=near;maxDistance==100), which net/url no longer takes for a
// separator but drops the parameter for.
func parseQuery(raw string) (url.Values, error) {
	v := url.Values{}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		if val, err = url.QueryUnescape(val); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		v[k] = append(v[k], val)
	}
	return v, nil
}

type handler struct {
	s    *twin.State
	hist *history.DB
	o    Options
}

// The error types of clause 5.5.2, and the ProblemDetails body (IETF RFC
// 7807) that carries them.
const (
	errBase                  = "https://uri.etsi.org/ngsi-ld/errors/"
	errInvalidRequest        = errBase + "InvalidRequest"
	errBadRequestData        = errBase + "BadRequestData"
	errResourceNotFound      = errBase + "ResourceNotFound"
	errOperationNotSupported = errBase + "OperationNotSupported"
	errTooComplexQuery       = errBase + "TooComplexQuery"
	errTooManyResults        = errBase + "TooManyResults"
	errInternal              = errBase + "InternalError"
	errNonexistentTenant     = errBase + "NonexistentTenant"
	// errForbidden: the spec has no error type for a refused tenant;
	// about:blank (RFC 7807) says the HTTP status is the whole story.
	errForbidden = "about:blank"
)

// ProblemDetails is the body of an error response.
type ProblemDetails struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
}

type problem struct {
	status int
	typ    string
	detail string
}

func (p *problem) Error() string { return p.detail }

func badRequest(format string, args ...any) *problem {
	return &problem{http.StatusBadRequest, errBadRequestData, fmt.Sprintf(format, args...)}
}

func writeProblem(w http.ResponseWriter, p problem) {
	title := p.typ[strings.LastIndexByte(p.typ, '/')+1:]
	if p.typ == errForbidden {
		title = http.StatusText(p.status)
	}
	b, _ := json.Marshal(ProblemDetails{Type: p.typ, Title: title, Detail: p.detail})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(p.status)
	w.Write(b)
}

// format is how a response is written: JSON-LD with the @context in the
// body, or JSON with the @context in a Link header.
type format struct {
	ld      bool
	context string // the citymesh context's URL
}

// negotiate reads the Accept header (clause 6.3.4).
func (h *handler) negotiate(r *http.Request) (format, *problem) {
	f := format{context: h.o.ContextURL}
	if f.context == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		f.context = scheme + "://" + r.Host + ContextPath
	}
	acc := r.Header.Get("Accept")
	if acc == "" {
		return f, nil
	}
	json := false
	for _, part := range strings.Split(acc, ",") {
		mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if refused(params) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/ld+json":
			f.ld = true
			return f, nil
		case "application/json", "*/*", "application/*":
			json = true
		}
	}
	if !json {
		return f, &problem{http.StatusNotAcceptable, errInvalidRequest, "Accept: only application/json and application/ld+json are served"}
	}
	return f, nil
}

// refused reports whether an Accept entry's parameters give it q=0.
func refused(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.TrimSpace(k) == "q" {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}

// contextValue is the @context of a JSON-LD response.
func (f format) contextValue() []string { return []string{f.context, CoreContext} }

// write writes v (an entity, a list) in format f.
func (f format) write(w http.ResponseWriter, v any) {
	b, err := appendJSON(make([]byte, 0, 4096), v)
	if err != nil {
		writeProblem(w, problem{http.StatusInternalServerError, errInternal, "encoding the response: " + err.Error()})
		return
	}
	if f.ld {
		w.Header().Set("Content-Type", "application/ld+json")
	} else {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Link", "<"+f.context+`>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`)
	}
	w.Write(b)
}

// scope is the tenant restriction of a request.
type scope struct {
	tenant string
	on     bool
}

// tenant decides what tenant a request sees (clause 6.3.14 NGSILD-Tenant
// against Options.Tenant).
func (h *handler) tenant(w http.ResponseWriter, r *http.Request) (scope, *problem) {
	hdr := r.Header.Get(TenantHeader)
	if hdr != "" {
		w.Header().Set(TenantHeader, hdr)
	}
	var sc scope
	if h.o.Tenant != nil {
		t, all := h.o.Tenant(r)
		if !all {
			if hdr != "" && hdr != t {
				return sc, &problem{http.StatusForbidden, errForbidden, fmt.Sprintf("%s %q: this request may see tenant %q only", TenantHeader, hdr, t)}
			}
			return scope{tenant: t, on: true}, nil
		}
	}
	if hdr != "" {
		if _, ok := h.s.Model().Tenant(hdr); !ok {
			return sc, &problem{http.StatusNotFound, errNonexistentTenant, fmt.Sprintf("no tenant %q", hdr)}
		}
		sc = scope{tenant: hdr, on: true}
	}
	return sc, nil
}

// readAttrs checks attribute names, and replaces an IRI the citymesh
// @context gives a term by the term.
func readAttrs(attrs []string) *problem {
	for i, a := range attrs {
		if !validName.MatchString(a) {
			term, ok := compact(a)
			switch {
			case ok:
				attrs[i] = term
			case !strings.Contains(a, ":"):
				return badRequest("attrs: %q is neither an attribute name nor an IRI", a)
			} // an IRI of no attribute served matches nothing
		}
	}
	return nil
}

// selection is what a query selects: entity types, ids, an id pattern, q,
// a geo-query and the attributes asked for.
type selection struct {
	types     []string
	ids       []string
	idPattern *regexp.Regexp
	q         qExpr
	geo       *geoQuery
	attrs     []string
	scope     scope
}

// entityParams are the parameters GET …/entities takes; temporal queries
// take these and theirs.
var entityParams = []string{"type", "id", "idPattern", "q", "attrs", "georel", "geometry", "coordinates", "geoproperty",
	"limit", "offset", "count", "options", "format", "csf", "local"}

// list splits a comma-separated parameter.
func list(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// validName matches an NGSI-LD term used as a type or attribute name.
var validName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// readSelection reads a query's selection parameters.
func readSelection(r *http.Request, known []string) (selection, *problem) {
	v := r.URL.Query()
	var sel selection
	for k := range v {
		if !slices.Contains(known, k) {
			return sel, badRequest("unknown parameter %q", k)
		}
	}
	sel.types = list(v.Get("type"))
	for i, t := range sel.types {
		if !validName.MatchString(t) {
			term, ok := compact(t)
			switch {
			case ok:
				sel.types[i] = term
			case !strings.Contains(t, ":"):
				return sel, badRequest("type: %q is neither a type name nor an IRI", t)
			} // an IRI of no type served selects nothing
		}
	}
	sel.ids = list(v.Get("id"))
	for _, id := range sel.ids {
		if _, _, ok := assetOf(id); !ok && !strings.Contains(id, ":") {
			return sel, badRequest("id: %q is not a URI", id)
		}
	}
	if p := v.Get("idPattern"); len(p) > maxQueryLen {
		return sel, &problem{http.StatusForbidden, errTooComplexQuery, fmt.Sprintf("idPattern longer than %d characters", maxQueryLen)}
	} else if p != "" {
		re, err := regexp.Compile(p)
		if err != nil {
			return sel, badRequest("idPattern: %v", err)
		}
		sel.idPattern = re
	}
	if q := v.Get("q"); q != "" {
		x, err := parseQ(q)
		if err != nil {
			if strings.Contains(err.Error(), "longer than") || strings.Contains(err.Error(), "nested deeper") {
				return sel, &problem{http.StatusForbidden, errTooComplexQuery, err.Error()}
			}
			return sel, &problem{http.StatusBadRequest, errInvalidRequest, err.Error()}
		}
		sel.q = x
	}
	sel.attrs = list(v.Get("attrs"))
	if p := readAttrs(sel.attrs); p != nil {
		return sel, p
	}
	if gp := v.Get("geoproperty"); gp != "" && gp != "location" {
		return sel, badRequest("geoproperty: only location is supported")
	}
	g, err := parseGeoQuery(v.Get("georel"), v.Get("geometry"), v.Get("coordinates"))
	if err != nil {
		return sel, badRequest("%v", err)
	}
	sel.geo = g
	return sel, nil
}

// empty reports whether the selection names none of type, id, idPattern,
// attrs, q or a geo-query, which a query must (clause 5.7.2).
func (s *selection) empty() bool {
	return len(s.types) == 0 && len(s.ids) == 0 && s.idPattern == nil && len(s.attrs) == 0 && s.q == nil && s.geo == nil
}

// selectEntities returns the entities a selection selects, in the
// campus model's order, and how many there are: all of them when page is
// false, else those of [offset, offset+limit).
func (h *handler) selectEntities(sel *selection, offset, limit int) ([]entity, int, error) {
	var q twin.Query
	if sel.scope.on {
		q.Scoped, q.Scope = true, sel.scope.tenant
	}
	types := sel.types
	var kinds []string
	for _, t := range types {
		kinds = append(kinds, kindsOf(t)...)
	}
	if len(types) > 0 && len(kinds) == 0 {
		return nil, 0, nil // types this API does not serve select nothing
	}
	if len(kinds) == 1 {
		q.Kind = kinds[0]
	}
	if sel.ids != nil {
		q.IDs = []string{}
		for _, id := range sel.ids {
			if asset, typ, ok := assetOf(id); ok && slices.Contains(Types, typ) {
				q.IDs = append(q.IDs, asset)
			}
		}
		if len(q.IDs) == 0 {
			return nil, 0, nil
		}
	}
	filtered := sel.q != nil || sel.geo != nil || len(sel.attrs) > 0
	if !filtered && sel.ids == nil && sel.idPattern == nil && len(kinds) <= 1 {
		// The twin's query selects exactly these: let it page.
		if limit == 0 {
			res, err := h.s.Assets(q)
			return nil, res.Total, err
		}
		q.Offset, q.Limit = offset, limit
		res, err := h.s.Assets(q)
		if err != nil {
			return nil, 0, err
		}
		return h.entities(h.s.AssetStates(res, h.o.Now()), sel.scope), res.Total, nil
	}
	res, err := h.s.Assets(q)
	if err != nil {
		return nil, 0, err
	}
	assets := h.s.AssetStates(res, h.o.Now())
	kept := assets[:0]
	for i := range assets {
		a := &assets[i]
		id := EntityID(a.Kind, a.ID)
		switch {
		case len(kinds) > 0 && !slices.Contains(kinds, a.Kind),
			sel.ids != nil && !slices.Contains(sel.ids, id),
			sel.idPattern != nil && !sel.idPattern.MatchString(id):
			continue
		}
		kept = append(kept, *a)
	}
	assets = kept
	if !filtered {
		total := len(assets)
		assets = assets[min(offset, total):]
		assets = assets[:min(limit, len(assets))]
		return h.entities(assets, sel.scope), total, nil
	}
	all := h.entities(assets, sel.scope)
	out := all[:0]
	for i := range all {
		e := &all[i]
		if sel.q != nil && !sel.q.match(e) || sel.geo != nil && !sel.geo.match(e) {
			continue
		}
		if len(sel.attrs) > 0 && !slices.ContainsFunc(sel.attrs, func(a string) bool { _, ok := e.attr(a); return ok }) {
			continue
		}
		out = append(out, *e)
	}
	total := len(out)
	out = out[min(offset, total):]
	return out[:min(limit, len(out))], total, nil
}

// entities maps assets to entities, with their points' latest values.
func (h *handler) entities(assets []twin.AssetState, sc scope) []entity {
	if len(assets) == 0 {
		return nil
	}
	ids := make([]string, len(assets))
	for i, a := range assets {
		ids[i] = a.ID
	}
	pq := twin.Query{Asset: ids, Scoped: sc.on, Scope: sc.tenant}
	pr, _ := h.s.Points(pq)
	byAsset := map[string][]twin.PointState{}
	for _, p := range h.s.PointStates(pr) {
		byAsset[p.Asset] = append(byAsset[p.Asset], p)
	}
	out := make([]entity, len(assets))
	for i := range assets {
		out[i] = newEntity(&assets[i], byAsset[assets[i].ID])
	}
	return out
}

// readPage reads limit, offset and count.
func readPage(r *http.Request) (offset, limit int, count bool, p *problem) {
	v := r.URL.Query()
	limit = DefaultLimit
	num := func(k string, dst *int) *problem {
		s := v.Get(k)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return badRequest("%s: %q is not a whole number of 0 or more", k, s)
		}
		*dst = n
		return nil
	}
	if p = num("limit", &limit); p != nil {
		return
	}
	if p = num("offset", &offset); p != nil {
		return
	}
	switch c := v.Get("count"); c {
	case "", "false":
	case "true":
		count = true
	default:
		return 0, 0, false, badRequest("count: %q, want true or false", c)
	}
	if limit > MaxLimit {
		return 0, 0, false, &problem{http.StatusForbidden, errTooManyResults, fmt.Sprintf("limit %d is more than %d", limit, MaxLimit)}
	}
	if limit == 0 && !count {
		return 0, 0, false, badRequest("limit 0 asks for the count only: give count=true")
	}
	return
}

// readOptions reads options and format: keyValues (or simplified),
// normalized, and for temporal queries temporalValues and
// aggregatedValues (clause 6.3.7 and 6.3.12).
func readOptions(r *http.Request, temporal bool) (string, *problem) {
	rep := "normalized"
	var given []string
	for _, k := range []string{"options", "format"} {
		given = append(given, list(r.URL.Query().Get(k))...)
	}
	for _, o := range given {
		switch o {
		case "keyValues", "simplified":
			if temporal {
				return "", badRequest("options: %s: the temporal API's simplified representation is temporalValues", o)
			}
			rep = "keyValues"
		case "normalized", "count":
		case "temporalValues", "aggregatedValues":
			if !temporal {
				return "", badRequest("options: %s applies to the temporal API only", o)
			}
			rep = o
		case "sysAttrs":
			// Accepted; the twin keeps no createdAt/modifiedAt.
		default:
			return "", badRequest("options: %q is not supported (keyValues, normalized; temporalValues, aggregatedValues)", o)
		}
	}
	return rep, nil
}

func (h *handler) queryEntities(w http.ResponseWriter, r *http.Request) {
	f, p := h.negotiate(r)
	if p == nil {
		var sel selection
		sel, p = readSelection(r, entityParams)
		if p == nil && sel.empty() {
			p = badRequest("give at least one of type, id, idPattern, attrs, q or georel")
		}
		var rep string
		if p == nil {
			rep, p = readOptions(r, false)
		}
		var offset, limit int
		var count bool
		if p == nil {
			offset, limit, count, p = readPage(r)
		}
		if p == nil {
			sel.scope, p = h.tenant(w, r)
		}
		if p == nil {
			list, total, err := h.selectEntities(&sel, offset, limit)
			if err != nil {
				p = badRequest("%v", err)
			} else {
				if count {
					w.Header().Set(CountHeader, strconv.Itoa(total))
				}
				out := make([]any, len(list))
				for i := range list {
					out[i] = render(&list[i], rep == "keyValues", sel.attrs, f)
				}
				f.write(w, out)
				return
			}
		}
	}
	writeProblem(w, *p)
}

func (h *handler) retrieveEntity(w http.ResponseWriter, r *http.Request) {
	e, f, rep, attrs, p := h.oneEntity(w, r, []string{"attrs", "options", "format", "geometryProperty", "lang"}, false)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	f.write(w, render(e, rep == "keyValues", attrs, f))
}

// oneEntity reads the entity a request's path names.
func (h *handler) oneEntity(w http.ResponseWriter, r *http.Request, known []string, temporal bool) (*entity, format, string, []string, *problem) {
	f, p := h.negotiate(r)
	if p != nil {
		return nil, f, "", nil, p
	}
	id := r.PathValue("id")
	if _, _, ok := assetOf(id); !ok && !strings.Contains(id, ":") {
		return nil, f, "", nil, badRequest("%q is not a URI", id)
	}
	for k := range r.URL.Query() {
		if !slices.Contains(known, k) {
			return nil, f, "", nil, badRequest("unknown parameter %q", k)
		}
	}
	attrs := list(r.URL.Query().Get("attrs"))
	if p := readAttrs(attrs); p != nil {
		return nil, f, "", nil, p
	}
	rep, p := readOptions(r, temporal)
	if p != nil {
		return nil, f, "", nil, p
	}
	sc, p := h.tenant(w, r)
	if p != nil {
		return nil, f, "", nil, p
	}
	sel := selection{ids: []string{id}, scope: sc}
	list, _, err := h.selectEntities(&sel, 0, 1)
	if err != nil || len(list) == 0 {
		return nil, f, "", nil, &problem{http.StatusNotFound, errResourceNotFound, fmt.Sprintf("no entity %q", id)}
	}
	return &list[0], f, rep, attrs, nil
}

// render returns an entity's representation: normalized, or keyValues,
// with only attrs if given.
func render(e *entity, keyValues bool, attrs []string, f format) object {
	o := object{{"id", e.id}, {"type", e.typ}}
	for i := range e.attrs {
		a := &e.attrs[i]
		if len(attrs) > 0 && !slices.Contains(attrs, a.name) {
			continue
		}
		if keyValues {
			o = append(o, member{a.name, a.simple()})
		} else {
			o = append(o, member{a.name, a.normalized()})
		}
	}
	if f.ld {
		o = append(o, member{"@context", f.contextValue()})
	}
	return o
}

// simple returns an attribute's simplified value.
func (a *attr) simple() any {
	switch a.kind {
	case kindRelationship:
		return a.object
	case kindGeoProperty:
		return geojson.NewGeometry(a.value.(orb.Geometry))
	}
	return a.value
}

// normalized returns an attribute's normalized representation.
func (a *attr) normalized() object {
	o := object{{"type", a.kind}}
	switch a.kind {
	case kindRelationship:
		o = append(o, member{"object", a.object})
	default:
		o = append(o, member{"value", a.simple()})
	}
	if !a.observedAt.IsZero() {
		o = append(o, member{"observedAt", timeString(a.observedAt)})
	}
	if a.unitCode != "" {
		o = append(o, member{"unitCode", a.unitCode})
	}
	return o
}

// timeString formats t as NGSI-LD's DateTime: UTC, ISO 8601.
func timeString(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// object is a JSON object whose members keep their order.
type object []member

type member struct {
	k string
	v any
}

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) { return appendJSON(nil, o) }
