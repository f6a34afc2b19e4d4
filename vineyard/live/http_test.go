package live

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"github.com/citymesh/citymesh/internal/openapitest"
	"github.com/citymesh/citymesh/service"
)

// labBody returns n laboratory samples on a grid inside the plot.
func labBody(t *testing.T, s *Service, plot string, n int) []LabSample {
	t.Helper()
	pi := s.plots[plot]
	bd := pi.Area.Bound()
	var out []LabSample
	for i := 0; len(out) < n && i < 10000; i++ {
		u, v := math.Mod(float64(i)*0.618034, 1), math.Mod(float64(i)*0.754878, 1)
		p := orb.Point{bd.Min.Lon() + u*(bd.Max.Lon()-bd.Min.Lon()), bd.Min.Lat() + v*(bd.Max.Lat()-bd.Min.Lat())}
		if !planar.MultiPolygonContains(pi.Area, p) {
			continue
		}
		k := len(out)
		out = append(out, LabSample{ID: fmt.Sprintf("lab-%02d", k), Time: time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC),
			Lon: math.Round(p.Lon()*1e7) / 1e7, Lat: math.Round(p.Lat()*1e7) / 1e7,
			P: 4 + 8*u + 2*v, K: 10 + 12*v, PH: 6 + 1.2*u})
	}
	return out
}

func TestHTTP(t *testing.T) {
	m := loadCampus(t)
	w := siteWeather(t)
	from := downyStart.Add(-1 * 24 * time.Hour)
	b, url := startBroker(t)
	c := collect(t, url)
	cfg := testConfig(m, "wartberg-01", "wartberg-02")
	// The tenant is the X-Tenant header; "operator" sees all.
	cfg.Tenant = func(r *http.Request) (string, bool) {
		t := r.Header.Get("X-Tenant")
		return t, t == "operator"
	}
	s, err := New("vineyard", cfg)
	if err != nil {
		t.Fatal(err)
	}
	runService(t, b, s, service.NewMemoryStore())
	publishAll(t, url, feed(t, m, w, []string{"wartberg-01", "wartberg-02"}, from, from.Add(3*24*time.Hour)))
	c.quiet(t, s)
	srv := httptest.NewServer(s.HTTPHandler())
	defer srv.Close()

	do := func(method, path, tenant, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("X-Tenant", tenant)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, data
	}
	good := labBody(t, s, "wartberg-01", 14)
	goodJSON, _ := json.Marshal(SamplesRequest{Samples: good})
	outside := good[0]
	outside.Lon += 0.01
	bad := func(ls LabSample) string {
		b, _ := json.Marshal(SamplesRequest{Samples: []LabSample{ls}})
		return string(b)
	}
	noTime := good[0]
	noTime.Time = time.Time{}
	highP := good[0]
	highP.P = 900
	badID := good[0]
	badID.ID = "a b"

	for _, tc := range []struct {
		name, method, path, tenant, body string
		code                             int
		ctype, contains                  string
	}{
		{"plots operator", "GET", "/api/v1/vineyard/plots", "operator", "", 200, "application/json", `"id":"wartberg-02"`},
		{"plots growers", "GET", "/api/v1/vineyard/plots", "wartberg-growers", "", 200, "application/json", `"station":"weather-station-01"`},
		{"plots other tenant", "GET", "/api/v1/vineyard/plots", "library", "", 200, "application/json", `[]`},
		{"risk", "GET", "/api/v1/vineyard/plots/wartberg-01/risk", "wartberg-growers", "", 200, "application/json", `"disease":"downy_mildew"`},
		{"risk span", "GET", "/api/v1/vineyard/plots/wartberg-01/risk?from=2026-06-03&to=2026-06-03", "operator", "", 200, "application/json", `"date":"2026-06-03"`},
		{"risk bad span", "GET", "/api/v1/vineyard/plots/wartberg-01/risk?from=yesterday", "operator", "", 400, "application/problem+json", `neither`},
		{"risk reversed span", "GET", "/api/v1/vineyard/plots/wartberg-01/risk?from=2026-06-04&to=2026-06-02", "operator", "", 400, "application/problem+json", `after`},
		{"risk other tenant", "GET", "/api/v1/vineyard/plots/wartberg-01/risk", "library", "", 404, "application/problem+json", `no plot`},
		{"risk unknown plot", "GET", "/api/v1/vineyard/plots/nowhere/risk", "operator", "", 404, "application/problem+json", `no plot`},
		{"weather", "GET", "/api/v1/vineyard/plots/wartberg-01/weather?from=2026-06-03T10:00:00Z&to=2026-06-03T12:00:00Z", "operator", "", 200, "application/json", `"time":"2026-06-03T12:00:00+02:00"`},
		{"weather csv", "GET", "/api/v1/vineyard/plots/wartberg-01/weather.csv?from=2026-06-03&to=2026-06-03", "operator", "", 200, "text/csv; charset=utf-8", "time,temp_c,rh_pct,rain_mm,leaf_wet\n2026-06-03T00:00:00+02:00,"},
		{"weather csv bad span", "GET", "/api/v1/vineyard/plots/wartberg-01/weather.csv?to=x", "operator", "", 400, "application/problem+json", "neither"},
		{"samples post", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "wartberg-growers", string(goodJSON), 202, "application/json", `"accepted":14`},
		{"samples other tenant", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "library", string(goodJSON), 404, "application/problem+json", `no plot`},
		{"samples not json", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "operator", `{"samples":`, 400, "application/problem+json", `body`},
		{"samples unknown field", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "operator", `{"samples":[],"x":1}`, 400, "application/problem+json", `unknown field`},
		{"samples none", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "operator", `{"samples":[]}`, 422, "application/problem+json", `want 1 to`},
		{"samples outside", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "operator", bad(outside), 422, "application/problem+json", `not inside`},
		{"samples no time", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "operator", bad(noTime), 422, "application/problem+json", `time`},
		{"samples P too high", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "operator", bad(highP), 422, "application/problem+json", `p_mg_100g`},
		{"samples bad id", "POST", "/api/v1/vineyard/plots/wartberg-01/samples", "operator", bad(badID), 422, "application/problem+json", `id`},
		{"soil bad nutrient", "GET", "/api/v1/vineyard/plots/wartberg-01/soil/n.png", "operator", "", 404, "application/problem+json", `want {p,k,ph}`},
		{"soil bad extension", "GET", "/api/v1/vineyard/plots/wartberg-01/soil/p.svg", "operator", "", 404, "application/problem+json", `want {p,k,ph}`},
		{"unknown route", "GET", "/api/v1/vineyard/nothing", "operator", "", 404, "application/problem+json", `no such resource`},
	} {
		resp, body := do(tc.method, tc.path, tc.tenant, tc.body)
		if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != tc.ctype || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: %d %s %.300s; want %d %s with %q", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.code, tc.ctype, tc.contains)
		}
		if resp.StatusCode/100 == 2 && tc.ctype == "application/json" {
			openapitest.Check(t, s.OpenAPI(), tc.method, tc.path, resp.StatusCode, "", body)
		}
	}

	// The maps are rebuilt from the lab samples (debounced) and served.
	waitFor(t, 20*time.Second, "P map from 15 samples", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		sm := s.mu.maps["wartberg-01"]
		return sm != nil && sm.maps[0] != nil && sm.maps[0].Samples == len(good)+1
	})
	for _, n := range []string{"p", "k", "ph"} {
		resp, body := do("GET", "/api/v1/vineyard/plots/wartberg-01/soil/"+n+".png", "wartberg-growers", "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("%s.png: %d %s", n, resp.StatusCode, body)
		}
		if _, err := png.Decode(bytes.NewReader(body)); err != nil {
			t.Errorf("%s.png: %v", n, err)
		}
		if dir := os.Getenv("VINEYARD_PNG_DIR"); dir != "" {
			os.WriteFile(dir+"/wartberg-01-"+n+".png", body, 0o644)
		}
		resp, body = do("GET", "/api/v1/vineyard/plots/wartberg-01/soil/"+n+".geojson", "operator", "")
		var fc struct {
			Type     string `json:"type"`
			Features []struct {
				Properties map[string]any `json:"properties"`
			} `json:"features"`
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/geo+json" || json.Unmarshal(body, &fc) != nil || fc.Type != "FeatureCollection" {
			t.Fatalf("%s.geojson: %d %.200s", n, resp.StatusCode, body)
		}
		probes := 0
		for _, f := range fc.Features {
			if src, _ := f.Properties["source"].(string); strings.HasPrefix(src, "probe:") {
				probes++
			}
		}
		if probes != 1 {
			t.Errorf("%s.geojson: %d probe samples, want 1", n, probes)
		}
	}
	resp, body := do("GET", "/api/v1/vineyard/plots/wartberg-02/soil/p.png", "operator", "")
	if resp.StatusCode != 200 {
		t.Errorf("wartberg-02 p.png from its probe alone: %d %s", resp.StatusCode, body)
	}
	resp, body = do("GET", "/api/v1/vineyard/plots/wartberg-01/samples", "operator", "")
	if resp.StatusCode != 200 || strings.Count(string(body), `"id"`) != len(good) {
		t.Errorf("samples: %d %.200s", resp.StatusCode, body)
	}
	// The retained soil summary names the maps.
	waitFor(t, 5*time.Second, "soil summary with 15 P samples", func() bool {
		return strings.Contains(c.snapshot()["vineyard/wartberg/plot/wartberg-01/soil"], `"nutrient":"p","unit":"mg P/100 g","samples":15`)
	})
}
