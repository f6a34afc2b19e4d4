package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func newTestServer(t testing.TB, db *DB, opts APIOptions) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/prometheus/", NewAPI(db, opts))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t testing.TB, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, string(body)
}

// promResponse is the Prometheus API's envelope.
type promResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

func TestPrometheusAPI(t *testing.T) {
	db := openTest(t, Options{})
	if err := db.Append(t.Context(), testData()); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, db, APIOptions{MaxPointsPerSeries: 100})
	sec := func(s int) string { return fmt.Sprint(at(s).Unix()) }
	q := func(path string, kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return "/prometheus/api/v1/" + path + "?" + v.Encode()
	}
	tests := []struct {
		name      string
		path      string
		code      int
		errorType string
		data      string // the exact data, if not empty
	}{
		{"instant vector", q("query", "query", `citymesh_point_value{point="a1/p1"}`, "time", sec(90)),
			200, "", `{"resultType":"vector","result":[{"metric":{"__name__":"citymesh_point_value","asset":"a1","asset_kind":"room","point":"a1/p1","quantity":"temperature","site":"s1","tenant":"t1","unit":"CEL"},"value":[` + sec(90) + `,"7"]}]}`},
		{"instant, RFC 3339 time", q("query", "query", `sum by (asset) (citymesh_point_value)`, "time", at(90).Format("2006-01-02T15:04:05Z")),
			200, "", `{"resultType":"vector","result":[{"metric":{"asset":"a1"},"value":[` + sec(90) + `,"27"]},{"metric":{"asset":"a2"},"value":[` + sec(90) + `,"100"]}]}`},
		{"scalar", q("query", "query", `1.5`, "time", "1700000000.5"),
			200, "", `{"resultType":"scalar","result":[1700000000.5,"1.5"]}`},
		{"range, avg over windows", q("query_range", "query", `avg_over_time(citymesh_point_value{point="a1/p1"}[1m])`, "start", sec(60), "end", sec(120), "step", "60"),
			200, "", `{"resultType":"matrix","result":[{"metric":{"asset":"a1","asset_kind":"room","point":"a1/p1","quantity":"temperature","site":"s1","tenant":"t1","unit":"CEL"},"values":[[` + sec(60) + `,"4"],[` + sec(120) + `,"7"]]}]}`},
		{"range with nothing", q("query_range", "query", `citymesh_point_value`, "start", "1000", "end", "2000", "step", "15s"),
			200, "", `{"resultType":"matrix","result":[]}`},
		{"bad PromQL", q("query", "query", `sum(citymesh_point_value`), 400, "bad_data", ""},
		{"bad time", q("query", "query", `1`, "time", "yesterday"), 400, "bad_data", ""},
		{"zero step", q("query_range", "query", `1`, "start", "0", "end", "10", "step", "0"), 400, "bad_data", ""},
		{"end before start", q("query_range", "query", `1`, "start", "10", "end", "0", "step", "1"), 400, "bad_data", ""},
		{"too many points", q("query_range", "query", `1`, "start", "0", "end", "101", "step", "1"), 400, "bad_data", ""},
		{"as many points as allowed", q("query_range", "query", `1`, "start", "0", "end", "100", "step", "1"), 200, "", ""},
		// A subquery of 604,800 steps takes tens of milliseconds.
		{"timeout", q("query", "query", `count_over_time(citymesh_point_value[7d:1s])`, "time", sec(60), "timeout", "0.001"), 503, "timeout", ""},
		{"execution error", q("query", "query", `citymesh_point_value + on(asset) citymesh_point_value`, "time", sec(90)), 422, "execution", ""},
		{"series", q("series", "match[]", `{asset="a2"}`),
			200, "", `[{"__name__":"citymesh_point_value","asset":"a2","asset_kind":"meter","point":"a2/p3","quantity":"temperature","site":"s2","tenant":"t2","unit":"CEL"}]`},
		{"series without match", q("series"), 400, "bad_data", ""},
		{"series, bad match", q("series", "match[]", `{asset=}`), 400, "bad_data", ""},
		{"labels", q("labels"), 200, "", `["__name__","asset","asset_kind","point","quantity","site","tenant","unit"]`},
		{"label values", q("label/point/values"), 200, "", `["a1/p1","a1/p2","a2/p3"]`},
		{"label values, matched, limited", q("label/point/values", "match[]", `{asset="a1"}`, "limit", "1"), 200, "", `["a1/p1"]`},
		{"label values, time range with nothing", q("label/point/values", "start", "1000", "end", "2000"), 200, "", `[]`},
		{"metadata", q("metadata"), 200, "", ""},
		{"build info", q("status/buildinfo"), 200, "", ""},
		{"exemplars", q("query_exemplars", "query", "citymesh_point_value"), 200, "", `[]`},
		{"unknown endpoint", q("alerts"), 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv, tt.path)
			if code != tt.code {
				t.Fatalf("%s: status %d, want %d: %s", tt.path, code, tt.code, body)
			}
			var r promResponse
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatalf("not JSON: %v: %s", err, body)
			}
			if tt.errorType != "" {
				if r.Status != "error" || r.ErrorType != tt.errorType || r.Error == "" {
					t.Fatalf("want error %s, got %s", tt.errorType, body)
				}
				return
			}
			if r.Status != "success" {
				t.Fatalf("status %q: %s", r.Status, body)
			}
			if tt.data != "" && string(r.Data) != tt.data {
				t.Fatalf("data\n got %s\nwant %s", r.Data, tt.data)
			}
		})
	}
	// POST with a form, as Grafana sends.
	resp, err := srv.Client().PostForm(srv.URL+"/prometheus/api/v1/query", url.Values{"query": {"count(citymesh_point_value)"}, "time": {sec(90)}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"3"`) {
		t.Fatalf("POST query: %d %s", resp.StatusCode, body)
	}
}

func TestWriteString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ back`, "ctl \x00\x1f\n\t", "é 東京", "bad \xff utf8"} {
		var b bytes.Buffer
		writeString(&b, s)
		var got string
		if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b.String(), err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want {
			t.Errorf("%q -> %q", s, got)
		}
	}
}

// TestPrometheusAPIScope checks that a request scoped to a tenant sees
// nothing of another, whatever it asks.
func TestPrometheusAPIScope(t *testing.T) {
	db := openTest(t, Options{})
	if err := db.Append(t.Context(), testData()); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, db, APIOptions{Scope: func(r *http.Request) (string, error) {
		switch u, _, _ := r.BasicAuth(); u {
		case "admin":
			return "", nil
		case "t1", "t2":
			return u, nil
		}
		return "", errors.New("unknown user")
	}})
	ts := fmt.Sprint(at(90).Unix())
	do := func(user, path string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, "")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		user, path  string
		code        int
		has, hasNot string
	}{
		{"t2", "/prometheus/api/v1/query?query=count(citymesh_point_value)&time=" + ts, 200, `"1"`, "t1"},
		{"t2", "/prometheus/api/v1/query?query=citymesh_point_value{tenant=\"t1\"}&time=" + ts, 200, `"result":[]`, "a1/p1"},
		{"t2", "/prometheus/api/v1/query?query=count(%7Btenant%3D~%22.%2B%22%7D)&time=" + ts, 200, `"1"`, "t1"},
		{"t2", "/prometheus/api/v1/label/tenant/values", 200, `["t2"]`, "t1"},
		{"t2", "/prometheus/api/v1/label/point/values", 200, `["a2/p3"]`, "a1"},
		{"t2", "/prometheus/api/v1/series?match[]={__name__=~\".%2B\"}", 200, "a2/p3", "a1"},
		{"t1", "/prometheus/api/v1/query?query=count(citymesh_point_value)&time=" + ts, 200, `"2"`, "t2"},
		{"admin", "/prometheus/api/v1/query?query=count(citymesh_point_value)&time=" + ts, 200, `"3"`, ""},
		{"", "/prometheus/api/v1/labels", 403, `"errorType":"forbidden"`, "tenant"},
	}
	for _, tt := range tests {
		code, body := do(tt.user, tt.path)
		if code != tt.code || !strings.Contains(body, tt.has) || (tt.hasNot != "" && strings.Contains(body, tt.hasNot)) {
			t.Errorf("%s %s: %d %s; want %d with %s and without %q", tt.user, tt.path, code, body, tt.code, tt.has, tt.hasNot)
		}
	}
}
