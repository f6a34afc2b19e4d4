package twin

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"

	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/twin/history"
)

// APIPrefix is where Handler serves: every route is under it.
const APIPrefix = "/api/v1/twin/"

// openAPI is the API's OpenAPI 3 document, served at
// /api/v1/twin/openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// MaxBody bounds a query's JSON body.
const MaxBody = 4 << 20

// HandlerOptions configure Handler.
type HandlerOptions struct {
	// Tenant, when set, says whom a request is for: a tenant's user sees
	// only its tenant's points and assets (all false), an operator all
	// (all true). Nil: every request sees all.
	Tenant func(r *http.Request) (tenant string, all bool)
	// Now is the clock of liveness (default time.Now).
	Now func() time.Time
	// Tenants, when set, serves the export and erasure of a tenant's data
	// (GET …/tenants/{tenant}/export, DELETE …/tenants/{tenant}) to the
	// requests Admin accepts; nil: those routes answer 404.
	Tenants TenantAdmin
	// Admin says whether a request is an administrator's; nil: none is.
	Admin func(r *http.Request) bool
	// History, when set, serves the history routes (a point's history,
	// history queries, an asset's events); nil: they answer 501.
	History *history.DB
}

// Handler returns the twin's JSON query API over s, to be mounted at
// APIPrefix (its routes carry the whole path): points and assets by id and
// by filter, geometric queries, the latest state of many points at once,
// and the OpenAPI document (docs/twin.md).
func Handler(s *State, o HandlerOptions) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &api{s: s, o: o}
	mux := service.NewMux()
	for _, r := range routes {
		mux.HandleFunc(r.method+" "+r.pattern, r.handle(h))
	}
	mux.HandleFunc(APIPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "no such resource: "+r.URL.Path+" (see "+APIPrefix+"openapi.json)")
	})
	return mux
}

// route is one route of the API; routes lists them all (and the OpenAPI
// test checks each against the document).
type route struct {
	method, pattern string
	handle          func(*api) http.HandlerFunc
}

var routes = []route{
	{"GET", APIPrefix + "{$}", func(h *api) http.HandlerFunc { return h.summary }},
	{"GET", APIPrefix + "openapi.json", func(h *api) http.HandlerFunc { return serveOpenAPI }},
	{"GET", APIPrefix + "points", func(h *api) http.HandlerFunc { return h.points }},
	{"POST", APIPrefix + "points/query", func(h *api) http.HandlerFunc { return h.points }},
	{"GET", APIPrefix + "points/{id...}", func(h *api) http.HandlerFunc { return h.point }},
	{"GET", APIPrefix + "assets", func(h *api) http.HandlerFunc { return h.assets }},
	{"POST", APIPrefix + "assets/query", func(h *api) http.HandlerFunc { return h.assets }},
	{"GET", APIPrefix + "assets/{id}", func(h *api) http.HandlerFunc { return h.asset }},
	{"GET", APIPrefix + "tenants/{tenant}/export", func(h *api) http.HandlerFunc { return h.exportTenant }},
	{"DELETE", APIPrefix + "tenants/{tenant}", func(h *api) http.HandlerFunc { return h.eraseTenant }},
	// The history routes (histapi.go).
	{"GET", APIPrefix + "points/{asset}/{key}/history", func(h *api) http.HandlerFunc { return h.pointHistory }},
	{"POST", APIPrefix + "history/query", func(h *api) http.HandlerFunc { return h.historyQuery }},
	{"GET", APIPrefix + "assets/{id}/events", func(h *api) http.HandlerFunc { return h.assetEvents }},
}

type api struct {
	s *State
	o HandlerOptions
}

// OpenAPI returns the OpenAPI 3.1 document of the twin API, which the
// node merges into its own (GET /api/v1/openapi.json).
func OpenAPI() []byte { return openAPI }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}

// writeError answers r with an RFC 9457 problem (service.WriteProblem),
// the body of every error response.
func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	service.WriteProblem(w, r, code, msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		service.WriteProblem(w, nil, http.StatusInternalServerError, "encoding the response failed: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// scope applies the request's tenant restriction to q.
func (h *api) scope(r *http.Request, q *Query) {
	if h.o.Tenant == nil {
		return
	}
	if t, all := h.o.Tenant(r); !all {
		q.Scoped, q.Scope = true, t
	}
}

// Summary is the body of GET /api/v1/twin/.
type Summary struct {
	Campus  string         `json:"campus"`
	Name    string         `json:"name"`
	Points  int            `json:"points"`
	Valued  int            `json:"points_with_value"`
	Assets  map[string]int `json:"assets"`
	Counts  Counts         `json:"counts"`
	Version uint64         `json:"version"`
}

func (h *api) summary(w http.ResponseWriter, r *http.Request) {
	var q Query
	h.scope(r, &q)
	pr, _ := h.s.Points(q)
	ar, _ := h.s.Assets(q)
	sum := Summary{Campus: h.s.model.ID, Name: h.s.model.Name, Points: pr.Total, Assets: map[string]int{},
		Counts: h.s.Counts(), Version: h.s.Version()}
	h.s.mu.RLock()
	for _, i := range pr.idx {
		if h.s.points[i].set {
			sum.Valued++
		}
	}
	for _, i := range ar.idx {
		sum.Assets[string(h.s.assets[i].a.Kind)]++
	}
	h.s.mu.RUnlock()
	writeJSON(w, http.StatusOK, sum)
}

func (h *api) point(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := Query{IDs: []string{id}}
	h.scope(r, &q)
	res, err := h.s.Points(q)
	if err != nil || res.Len() == 0 {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("no information point %q", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	b := h.s.AppendPointsJSON(nil, res)
	w.Write(b[1 : len(b)-1]) // the one element
}

func (h *api) asset(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := Query{IDs: []string{id}}
	h.scope(r, &q)
	res, err := h.s.Assets(q)
	if err != nil || res.Len() == 0 {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("no asset %q", id))
		return
	}
	writeJSON(w, http.StatusOK, h.s.AssetStates(res, h.o.Now())[0])
}

func (h *api) points(w http.ResponseWriter, r *http.Request) {
	q, err := readQuery(r)
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
	b := make([]byte, 0, 64+400*res.Len())
	b = listHead(b, res, q.Offset)
	b = append(b, `,"points":`...)
	b = h.s.AppendPointsJSON(b, res)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (h *api) assets(w http.ResponseWriter, r *http.Request) {
	q, err := readQuery(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if len(q.Asset) > 0 || q.Quantity != "" {
		writeError(w, r, http.StatusBadRequest, "asset and quantity select points, not assets")
		return
	}
	h.scope(r, &q)
	res, err := h.s.Assets(q)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	list := h.s.AssetStates(res, h.o.Now())
	b := listHead(nil, res, q.Offset)
	js, err := json.Marshal(list)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	b = append(b, `,"assets":`...)
	b = append(b, js...)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// listHead starts a list response: total, offset, count, unknown.
func listHead(b []byte, r Result, offset int) []byte {
	b = append(b, `{"total":`...)
	b = strconv.AppendInt(b, int64(r.Total), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(min(offset, r.Total)), 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(r.Len()), 10)
	if len(r.Unknown) > 0 {
		js, _ := json.Marshal(r.Unknown)
		b = append(b, `,"unknown":`...)
		b = append(b, js...)
	}
	return b
}

// QueryBody is the JSON body of POST …/points/query and …/assets/query:
// the same selection as the GET parameters.
type QueryBody struct {
	IDs      []string `json:"ids,omitempty"`
	Asset    []string `json:"asset,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	Quantity string   `json:"quantity,omitempty"`
	Site     string   `json:"site,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Building string   `json:"building,omitempty"`
	// BBox is [min lon, min lat, max lon, max lat].
	BBox []float64 `json:"bbox,omitempty"`
	// Near is [lon, lat], with DistanceM in metres.
	Near      []float64 `json:"near,omitempty"`
	DistanceM float64   `json:"distance_m,omitempty"`
	// Within is a GeoJSON Polygon or MultiPolygon (a Feature's geometry
	// too).
	Within json.RawMessage `json:"within,omitempty"`
	Offset int             `json:"offset,omitempty"`
	Limit  int             `json:"limit,omitempty"`
}

// readQuery reads a query from a GET request's parameters or a POST
// request's JSON body.
func readQuery(r *http.Request) (Query, error) {
	var b QueryBody
	if r.Method == http.MethodPost {
		dec := json.NewDecoder(io.LimitReader(r.Body, MaxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return Query{}, fmt.Errorf("body: %v", err)
		}
	} else {
		v := r.URL.Query()
		for k := range v {
			switch k {
			case "id", "asset", "kind", "quantity", "site", "tenant", "building", "bbox", "near", "distance", "within", "offset", "limit":
			default:
				return Query{}, fmt.Errorf("unknown parameter %q", k)
			}
		}
		list := func(k string) []string {
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
		b.IDs, b.Asset = list("id"), list("asset")
		b.Kind, b.Quantity, b.Site, b.Tenant, b.Building = v.Get("kind"), v.Get("quantity"), v.Get("site"), v.Get("tenant"), v.Get("building")
		var err error
		if b.BBox, err = floats(v.Get("bbox"), "bbox"); err != nil {
			return Query{}, err
		}
		if b.Near, err = floats(v.Get("near"), "near"); err != nil {
			return Query{}, err
		}
		for _, x := range []struct {
			k string
			p any
		}{{"distance", &b.DistanceM}, {"offset", &b.Offset}, {"limit", &b.Limit}} {
			if s := v.Get(x.k); s != "" {
				if err := json.Unmarshal([]byte(s), x.p); err != nil {
					return Query{}, fmt.Errorf("%s: %q is not a number", x.k, s)
				}
			}
		}
		if w := v.Get("within"); w != "" {
			b.Within = json.RawMessage(w)
		}
	}
	return b.query()
}

func floats(s, name string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", name, f)
		}
		out = append(out, x)
	}
	return out, nil
}

// query turns a body into a Query.
func (b *QueryBody) query() (Query, error) {
	q := Query{IDs: b.IDs, Asset: b.Asset, Kind: b.Kind, Quantity: b.Quantity, Site: b.Site, Tenant: b.Tenant,
		Building: b.Building, Offset: b.Offset, Limit: b.Limit}
	if b.BBox != nil {
		if len(b.BBox) != 4 {
			return q, errors.New("bbox: want 4 numbers: min longitude, min latitude, max longitude, max latitude")
		}
		q.Bound = &orb.Bound{Min: orb.Point{b.BBox[0], b.BBox[1]}, Max: orb.Point{b.BBox[2], b.BBox[3]}}
	}
	if b.Near != nil {
		if len(b.Near) != 2 {
			return q, errors.New("near: want 2 numbers: longitude, latitude")
		}
		if b.DistanceM == 0 {
			return q, errors.New("near: give the distance in metres (distance, distance_m)")
		}
		q.Near = &Near{Point: orb.Point{b.Near[0], b.Near[1]}, DistanceM: b.DistanceM}
	} else if b.DistanceM != 0 {
		return q, errors.New("distance: give near, the point to measure from")
	}
	if len(b.Within) > 0 {
		g, err := parseGeometry(b.Within)
		if err != nil {
			return q, fmt.Errorf("within: %v", err)
		}
		q.Within = g
	}
	return q, q.Validate()
}

// parseGeometry reads a GeoJSON geometry, or a Feature's geometry.
func parseGeometry(data []byte) (orb.Geometry, error) {
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not GeoJSON: %v", err)
	}
	if probe.Type == "Feature" {
		f, err := geojson.UnmarshalFeature(data)
		if err != nil {
			return nil, fmt.Errorf("GeoJSON Feature: %v", err)
		}
		if f.Geometry == nil {
			return nil, errors.New("GeoJSON Feature without a geometry")
		}
		return f.Geometry, nil
	}
	g, err := geojson.UnmarshalGeometry(data)
	if err != nil {
		return nil, fmt.Errorf("GeoJSON geometry: %v", err)
	}
	if g.Coordinates == nil {
		return nil, errors.New("GeoJSON geometry without coordinates")
	}
	return g.Coordinates, nil
}
