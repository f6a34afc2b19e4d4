package twin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/event"
)

// fedState returns the small campus's state with a few values.
func fedState(t *testing.T) *State {
	s := NewState(small(t))
	for _, e := range []struct {
		room string
		v    float64
	}{{"b01-0.01", 21.5}, {"b01-0.02", 22.5}} {
		tp, ev := msg(t, roomTopic(e.room), event.NewMeasurement(e.room, t0, building,
			event.Value{Point: e.room + "/temperature", Value: e.v, Unit: event.Celsius}))
		if _, err := s.Apply(tp, ev, t0, nil); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

type list struct {
	Total   int          `json:"total"`
	Count   int          `json:"count"`
	Unknown []string     `json:"unknown"`
	Points  []PointState `json:"points"`
	Assets  []AssetState `json:"assets"`
}

func do(t *testing.T, h http.Handler, method, target, body string, hdr ...string) (int, []byte) {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	// Answers are JSON, errors RFC 9457 problem details.
	want := "application/json"
	if w.Code >= 400 {
		want = "application/problem+json"
	}
	if ct := w.Header().Get("Content-Type"); ct != want {
		t.Errorf("%s %s: %d, Content-Type %q, want %q", method, target, w.Code, ct, want)
	}
	return w.Code, w.Body.Bytes()
}

func TestHandler(t *testing.T) {
	h := Handler(fedState(t), HandlerOptions{Now: func() time.Time { return t0 }})
	// The wartberg-01 plot's outline, by hand around its eight devices
	// (longitudes 9.2352..9.2361, latitudes 49.1595..49.1599).
	plot := `{"type":"Polygon","coordinates":[[[9.2350,49.1594],[9.2363,49.1594],[9.2363,49.1600],[9.2350,49.1600],[9.2350,49.1594]]]}`
	tests := []struct {
		name, method, target, body string
		code                       int
		points, assets             int    // -1: do not check
		first                      string // first id
		errText                    string
	}{
		{name: "point by id", method: "GET", target: "/api/v1/twin/points/b01-0.01/temperature", code: 200, points: -1, assets: -1},
		{name: "meter point by id", method: "GET", target: "/api/v1/twin/points/el-b01-main/1-0:1.8.0", code: 200, points: -1, assets: -1},
		{name: "unknown point", method: "GET", target: "/api/v1/twin/points/nosuch/x", code: 404, points: -1, assets: -1, errText: "no information point"},
		{name: "by quantity and building", method: "GET", target: "/api/v1/twin/points?quantity=temperature&building=b01", code: 200, points: 57, assets: -1, first: "b01-0.01/temperature"},
		{name: "by asset", method: "GET", target: "/api/v1/twin/points?asset=soil-probe-01", code: 200, points: 4, assets: -1},
		{name: "by kind and site", method: "GET", target: "/api/v1/twin/points?kind=device&site=wartberg&limit=5", code: 200, points: 5, assets: -1},
		{name: "within the plot", method: "GET", target: "/api/v1/twin/assets?kind=device&within=" + url.QueryEscape(plot), code: 200, points: -1, assets: 8},
		{name: "within, POST", method: "POST", target: "/api/v1/twin/assets/query", body: `{"within":` + plot + `}`, code: 200, points: -1, assets: 9},
		{name: "bbox", method: "GET", target: "/api/v1/twin/assets?kind=device&bbox=9.2350,49.1594,9.2357,49.1600", code: 200, points: -1, assets: 5},
		{name: "near the weather station, 20 m", method: "GET", target: "/api/v1/twin/assets?kind=device&near=9.2356427,49.1598024&distance=20", code: 200, points: -1, assets: 1, first: "weather-station-01"},
		// Hand-computed (haversine, R 6,378,137 m) from the station: soil-probe-02 26.0 m, the leaf sensors 26.5 m,
		// the pH and NPK probes 26.9 m, soil-probes 01 and 03 39.7 m.
		{name: "near, 30 m", method: "GET", target: "/api/v1/twin/assets?kind=device&near=9.2356427,49.1598024&distance=30", code: 200, points: -1, assets: 6},
		{name: "near, 40 m", method: "GET", target: "/api/v1/twin/assets?kind=device&near=9.2356427,49.1598024&distance=40", code: 200, points: -1, assets: 8},
		{name: "many points at once", method: "POST", target: "/api/v1/twin/points/query", body: `{"ids":["b01-0.02/temperature","b01-0.01/temperature","nosuch/x"]}`, code: 200, points: 2, assets: -1, first: "b01-0.02/temperature"},
		{name: "asset", method: "GET", target: "/api/v1/twin/assets/b01", code: 200, points: -1, assets: -1},
		{name: "unknown asset", method: "GET", target: "/api/v1/twin/assets/nosuch", code: 404, points: -1, assets: -1, errText: "no asset"},
		{name: "unknown route", method: "GET", target: "/api/v1/twin/nosuch", code: 404, points: -1, assets: -1, errText: "no such resource"},
		{name: "bad bbox", method: "GET", target: "/api/v1/twin/points?bbox=1,2,3", code: 400, points: -1, assets: -1, errText: "bbox"},
		{name: "near without distance", method: "GET", target: "/api/v1/twin/points?near=9.2,49.1", code: 400, points: -1, assets: -1, errText: "distance"},
		{name: "negative distance", method: "GET", target: "/api/v1/twin/points?near=9.2,49.1&distance=-5", code: 400, points: -1, assets: -1, errText: "distance"},
		{name: "within a point", method: "GET", target: "/api/v1/twin/points?within=" + url.QueryEscape(`{"type":"Point","coordinates":[9.2,49.1]}`), code: 400, points: -1, assets: -1, errText: "Polygon"},
		{name: "within not JSON", method: "GET", target: "/api/v1/twin/points?within=nope", code: 400, points: -1, assets: -1, errText: "GeoJSON"},
		{name: "unknown parameter", method: "GET", target: "/api/v1/twin/points?colour=red", code: 400, points: -1, assets: -1, errText: "colour"},
		{name: "bad body", method: "POST", target: "/api/v1/twin/points/query", body: `{"idz":[]}`, code: 400, points: -1, assets: -1, errText: "idz"},
		{name: "quantity of assets", method: "GET", target: "/api/v1/twin/assets?quantity=co2", code: 400, points: -1, assets: -1, errText: "quantity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, h, tc.method, tc.target, tc.body)
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			if tc.errText != "" {
				var e problemBody
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Detail, tc.errText) {
					t.Fatalf("error %s, want one mentioning %q", body, tc.errText)
				}
				return
			}
			var l list
			if err := json.Unmarshal(body, &l); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if tc.points >= 0 && len(l.Points) != tc.points {
				t.Errorf("%d points, want %d", len(l.Points), tc.points)
			}
			if tc.assets >= 0 && len(l.Assets) != tc.assets {
				ids := []string{}
				for _, a := range l.Assets {
					ids = append(ids, a.ID)
				}
				t.Errorf("%d assets %v, want %d", len(l.Assets), ids, tc.assets)
			}
			if tc.first != "" {
				got := ""
				if len(l.Points) > 0 {
					got = l.Points[0].ID
				} else if len(l.Assets) > 0 {
					got = l.Assets[0].ID
				}
				if got != tc.first {
					t.Errorf("first %q, want %q", got, tc.first)
				}
			}
		})
	}
	// A point's JSON is what encoding/json makes of its PointState.
	_, body := do(t, h, "GET", "/api/v1/twin/points/b01-0.01/temperature", "")
	var ps PointState
	if err := json.Unmarshal(body, &ps); err != nil || ps.Value == nil || *ps.Value != 21.5 || !ps.Observed.Equal(t0) || ps.Source.Gateway != "bms-b01" {
		t.Fatalf("point %s: %+v %v", body, ps, err)
	}
	want, _ := json.Marshal(ps)
	var a, b map[string]any
	json.Unmarshal(body, &a)
	json.Unmarshal(want, &b)
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	if string(aj) != string(bj) {
		t.Errorf("hand-written JSON\n%s\ndiffers from encoding/json's\n%s", aj, bj)
	}
}

func TestHandlerTenant(t *testing.T) {
	h := Handler(fedState(t), HandlerOptions{Tenant: func(r *http.Request) (string, bool) {
		t := r.Header.Get("X-Tenant")
		return t, t == ""
	}})
	for _, tc := range []struct {
		tenant string
		points int
	}{{"", 500}, {"wartberg-growers", -1}, {"campus-service", -1}, {"library", 0}} {
		code, body := do(t, h, "GET", "/api/v1/twin/points", "", "X-Tenant", tc.tenant)
		var l list
		if code != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("%d %s", code, body)
		}
		if tc.points >= 0 && len(l.Points) != tc.points {
			t.Errorf("tenant %q: %d points, want %d", tc.tenant, len(l.Points), tc.points)
		}
		for _, p := range l.Points {
			if tc.tenant != "" && p.Tenant != tc.tenant {
				t.Fatalf("tenant %q sees %s of tenant %q", tc.tenant, p.ID, p.Tenant)
			}
		}
		if tc.tenant == "wartberg-growers" && len(l.Points) == 0 {
			t.Error("the vineyard's tenant sees nothing")
		}
	}
	// Another tenant's point and asset are not found, nor listed by id.
	if code, _ := do(t, h, "GET", "/api/v1/twin/points/b01-0.01/temperature", "", "X-Tenant", "wartberg-growers"); code != 404 {
		t.Errorf("another tenant's point: %d, want 404", code)
	}
	if code, _ := do(t, h, "GET", "/api/v1/twin/assets/b01-0.01", "", "X-Tenant", "wartberg-growers"); code != 404 {
		t.Errorf("another tenant's asset: %d, want 404", code)
	}
	_, body := do(t, h, "POST", "/api/v1/twin/points/query", `{"ids":["b01-0.01/temperature","soil-probe-01/battery"]}`, "X-Tenant", "wartberg-growers")
	var l list
	json.Unmarshal(body, &l)
	if len(l.Points) != 1 || l.Points[0].ID != "soil-probe-01/battery" || !slices.Equal(l.Unknown, []string{"b01-0.01/temperature"}) {
		t.Errorf("ids across tenants: %s", body)
	}
}

// TestOpenAPIRoutes checks that every route the handler serves is in the
// OpenAPI document, with its method, and that the document lists no other.
func TestOpenAPIRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	h := Handler(NewState(small(t)), HandlerOptions{})
	code, body := do(t, h, "GET", "/api/v1/twin/openapi.json", "")
	if code != 200 || json.Unmarshal(body, &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %d", code)
	}
	served := map[string]bool{}
	for _, r := range routes {
		p := strings.NewReplacer("{$}", "", "{id...}", "{id}").Replace(r.pattern)
		key := strings.ToLower(r.method) + " " + p
		served[key] = true
		if _, ok := doc.Paths[p][strings.ToLower(r.method)]; !ok {
			t.Errorf("route %s %s is not in openapi.json", r.method, r.pattern)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if !served[m+" "+p] {
				t.Errorf("openapi.json has %s %s, which the handler does not serve", m, p)
			}
		}
	}
}

// problemBody is the part of an RFC 9457 problem the tests read.
type problemBody struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
}
