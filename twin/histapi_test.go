package twin

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/twin/history"
)

// histDB returns a history with two rooms' temperatures every 5 minutes
// for two hours from t0 (values i and 100+i), a soil probe's battery of
// another tenant (3.6 V), and three events of robot loomi.
func histDB(t *testing.T) *history.DB {
	t.Helper()
	db, err := history.Open(t.TempDir(), history.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var ss []history.Sample
	for i := range 24 {
		at := t0.Add(time.Duration(i) * 5 * time.Minute)
		for j, room := range []string{"b01-0.01", "b01-0.02"} {
			ss = append(ss, history.Sample{Point: room + "/temperature", Asset: room, AssetKind: "room", Quantity: "temperature",
				Unit: "CEL", Site: "campus", Tenant: "campus-service", Time: at, Value: float64(100*j + i)})
		}
		ss = append(ss, history.Sample{Point: "soil-probe-01/battery", Asset: "soil-probe-01", AssetKind: "device", Quantity: "batteryVoltage",
			Unit: "VLT", Site: "wartberg", Tenant: "wartberg-growers", Time: at, Value: 3.6})
	}
	if err := db.Append(context.Background(), ss); err != nil {
		t.Fatal(err)
	}
	var evs []history.Event
	for i := range 3 {
		evs = append(evs, history.Event{Asset: "loomi", AssetKind: "robot", Site: "campus", Tenant: "campus-service", Type: "status",
			Time: t0.Add(time.Duration(i) * time.Minute), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
	}
	if err := db.Events().Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	return db
}

func histHandler(t *testing.T, db *history.DB) http.Handler {
	return Handler(fedState(t), HandlerOptions{History: db, Now: func() time.Time { return t0.Add(2 * time.Hour) },
		Tenant: func(r *http.Request) (string, bool) { t := r.Header.Get("X-Tenant"); return t, t == "" }})
}

// TestHistoryAggregates: a point's 15-minute and hourly aggregates, by GET
// and by POST over ids and over an asset, equal those computed by hand.
func TestHistoryAggregates(t *testing.T) {
	h := histHandler(t, histDB(t))
	from, to := t0.Format(time.RFC3339), t0.Add(2*time.Hour).Format(time.RFC3339)
	// Room b01-0.01 has values 0..23 every 5 minutes: a 15-minute
	// window k holds 3k, 3k+1, 3k+2.
	want15 := func(k int, base float64) map[string]float64 {
		v := base + float64(3*k)
		return map[string]float64{"avg": v + 1, "min": v, "max": v + 2, "sum": 3*v + 3, "count": 3, "last": v + 2}
	}
	check := func(name string, a HistoryAnswer, step time.Duration, points []string, base []float64) {
		t.Helper()
		if len(a.Series) != len(points) {
			t.Fatalf("%s: %d series, want %d: %+v", name, len(a.Series), len(points), a)
		}
		per := int(step / (5 * time.Minute))
		for si, s := range a.Series {
			if s.Point != points[si] || s.Quantity != "temperature" || s.Unit != "CEL" {
				t.Fatalf("%s: series %d is %+v", name, si, s)
			}
			if len(s.Buckets) != 24/per {
				t.Fatalf("%s: %d buckets, want %d", name, len(s.Buckets), 24/per)
			}
			for k, b := range s.Buckets {
				v := base[si] + float64(per*k)
				want := map[string]float64{"avg": v + float64(per-1)/2, "min": v, "max": v + float64(per-1),
					"sum": float64(per)*v + float64(per*(per-1)/2), "count": float64(per), "last": v + float64(per-1)}
				if per == 3 {
					want = want15(k, base[si])
				}
				for f, w := range want {
					if got, _ := b[f].(float64); math.Abs(got-w) > 1e-9 {
						t.Errorf("%s: %s bucket %d %s = %v, want %v", name, s.Point, k, f, b[f], w)
					}
				}
				if st, _ := b["start"].(string); st != t0.Add(time.Duration(k)*step).Format(time.RFC3339) {
					t.Errorf("%s: bucket %d starts %v", name, k, b["start"])
				}
			}
		}
	}
	get := func(target string, hdr ...string) HistoryAnswer {
		t.Helper()
		code, body := do(t, h, "GET", target, "", hdr...)
		var a HistoryAnswer
		if code != 200 || json.Unmarshal(body, &a) != nil {
			t.Fatalf("GET %s: %d %s", target, code, body)
		}
		return a
	}
	post := func(body string, hdr ...string) HistoryAnswer {
		t.Helper()
		code, b := do(t, h, "POST", "/api/v1/twin/history/query", body, hdr...)
		var a HistoryAnswer
		if code != 200 || json.Unmarshal(b, &a) != nil {
			t.Fatalf("POST %s: %d %s", body, code, b)
		}
		return a
	}
	all := "avg,min,max,sum,count,last"
	for _, step := range []time.Duration{15 * time.Minute, time.Hour} {
		q := url.Values{"from": {from}, "to": {to}, "step": {step.String()}, "agg": {all}}
		a := get("/api/v1/twin/points/b01-0.01/temperature/history?" + q.Encode())
		check("GET "+step.String(), a, step, []string{"b01-0.01/temperature"}, []float64{0})
		if a.Step != step.Seconds() || len(a.Agg) != 6 {
			t.Errorf("answer's step %v agg %v", a.Step, a.Agg)
		}
		body := fmt.Sprintf(`{"ids":["b01-0.01/temperature","b01-0.02/temperature"],"from":%q,"to":%q,"step":%q,"agg":["avg","min","max","sum","count","last"]}`, from, to, step)
		check("POST ids "+step.String(), post(body), step, []string{"b01-0.01/temperature", "b01-0.02/temperature"}, []float64{0, 100})
		// By asset and quantity; by a building's area (the selection
		// has more points than are read one by one).
		body = fmt.Sprintf(`{"asset":["b01-0.02"],"quantity":"temperature","from":%q,"to":%q,"step":%q,"agg":["avg","min","max","sum","count","last"]}`, from, to, step)
		check("POST asset "+step.String(), post(body), step, []string{"b01-0.02/temperature"}, []float64{100})
		body = fmt.Sprintf(`{"building":"b01","from":%q,"to":%q,"step":%q,"agg":["avg","min","max","sum","count","last"]}`, from, to, step)
		check("POST building "+step.String(), post(body), step, []string{"b01-0.01/temperature", "b01-0.02/temperature"}, []float64{0, 100})
	}
	// Unix seconds; the default function avg; a default range (the last
	// day up to Now).
	a := get(fmt.Sprintf("/api/v1/twin/points/b01-0.02/temperature/history?from=%d&step=1h", t0.Unix()))
	if len(a.Series) != 1 || len(a.Series[0].Buckets) != 2 || a.Series[0].Buckets[0]["avg"] != 105.5 || a.Series[0].Buckets[0]["min"] != nil {
		t.Errorf("default avg: %+v", a)
	}
	if a := get("/api/v1/twin/points/b01-0.02/temperature/history?step=1d"); len(a.Series) != 1 || a.Series[0].Buckets[0]["count"] != 24.0 {
		t.Errorf("default range: %+v", a)
	}
	// Raw samples, bounded by limit over every point.
	a = get("/api/v1/twin/points/b01-0.01/temperature/history?from=" + from + "&to=" + to)
	if len(a.Series) != 1 || len(a.Series[0].Samples) != 24 || a.Truncated || a.Series[0].Samples[23].Value != 23 ||
		!a.Series[0].Samples[1].Time.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("raw: %+v", a)
	}
	for _, tc := range []struct {
		limit, first, second int
		truncated            bool
	}{{30, 24, 6, true}, {24, 24, 0, true}, {48, 24, 24, false}, {10, 10, 0, true}} {
		a = post(fmt.Sprintf(`{"ids":["b01-0.01/temperature","b01-0.02/temperature"],"from":%q,"to":%q,"limit":%d}`, from, to, tc.limit))
		n := []int{0, 0}
		for i, s := range a.Series {
			n[i] = len(s.Samples)
		}
		if n[0] != tc.first || n[1] != tc.second || a.Truncated != tc.truncated {
			t.Errorf("raw limit %d: %v samples, truncated %v; want %d, %d, %v", tc.limit, n, a.Truncated, tc.first, tc.second, tc.truncated)
		}
	}
	a = post(fmt.Sprintf(`{"building":"b01","from":%q,"to":%q,"limit":30}`, from, to))
	if total := len(a.Series[0].Samples) + len(a.Series[1].Samples); len(a.Series) != 2 || total != 30 || !a.Truncated {
		t.Errorf("raw over many points, limit 30: %+v", a)
	}
	// Tenants: another tenant's point is not found, nor answered by id;
	// a selection of everything answers the tenant's points only.
	if code, _ := do(t, h, "GET", "/api/v1/twin/points/b01-0.01/temperature/history", "", "X-Tenant", "wartberg-growers"); code != 404 {
		t.Errorf("another tenant's history: %d", code)
	}
	a = post(fmt.Sprintf(`{"ids":["b01-0.01/temperature","soil-probe-01/battery"],"from":%q,"to":%q,"step":"1h"}`, from, to), "X-Tenant", "wartberg-growers")
	if len(a.Series) != 1 || a.Series[0].Point != "soil-probe-01/battery" || len(a.Unknown) != 1 {
		t.Errorf("ids across tenants: %+v", a)
	}
	// By kind and site within a bounding box (the plot), and by quantity
	// near a point: the probe's battery, the one point there with samples.
	for _, sel := range []string{`"kind":"device","site":"wartberg","bbox":[9.2348,49.1593,9.2365,49.1600]`,
		`"quantity":"batteryVoltage","near":[9.2352306,49.1595688],"distance_m":5`} {
		a = post(fmt.Sprintf(`{%s,"from":%q,"to":%q,"step":"1h","agg":["max","count"]}`, sel, from, to))
		if len(a.Series) != 1 || a.Series[0].Point != "soil-probe-01/battery" || len(a.Series[0].Buckets) != 2 ||
			a.Series[0].Buckets[0]["max"] != 3.6 || a.Series[0].Buckets[0]["count"] != 12.0 || a.Total < 1 {
			t.Errorf("{%s}: %+v", sel, a)
		}
	}
	a = post(fmt.Sprintf(`{"from":%q,"to":%q,"step":"1h"}`, from, to), "X-Tenant", "wartberg-growers")
	if len(a.Series) != 1 || a.Series[0].Point != "soil-probe-01/battery" {
		t.Errorf("everything as wartberg-growers: %+v", a)
	}
}

// TestHistoryBadInput: bad requests are 400 (or 404 for an unknown point)
// with a message that says what is wrong; without a history, 501.
func TestHistoryBadInput(t *testing.T) {
	h := histHandler(t, histDB(t))
	p := "/api/v1/twin/points/b01-0.01/temperature/history?"
	from, to := t0.Format(time.RFC3339), t0.Add(2*time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name, method, target, body string
		code                       int
		msg                        string
	}{
		{"from after to", "GET", p + "from=" + to + "&to=" + from, "", 400, "is not before"},
		{"from equals to", "GET", p + "from=" + to + "&to=" + to, "", 400, "is not before"},
		{"bad from", "GET", p + "from=yesterday", "", 400, "from: \"yesterday\" is neither"},
		{"step 0", "GET", p + "step=0", "", 400, "shorter than a second"},
		{"step garbage", "GET", p + "step=soon", "", 400, "not a length"},
		{"too many buckets", "GET", p + "from=" + from + "&to=" + t0.Add(200*24*time.Hour).Format(time.RFC3339) + "&step=1m", "", 400, "more than 11000"},
		{"unknown agg", "GET", p + "step=1h&agg=avg,median", "", 400, `unknown function "median"`},
		{"agg without step", "GET", p + "agg=max", "", 400, "give step"},
		{"too long a range", "GET", p + "from=2020-01-01T00:00:00Z&to=" + to + "&step=1d", "", 400, "longer than"},
		{"unknown parameter", "GET", p + "frm=1", "", 400, `unknown parameter "frm"`},
		{"negative limit", "GET", p + "limit=-1", "", 400, "not be negative"},
		{"limit too large", "GET", p + "limit=9999999", "", 400, "more than 1000000"},
		{"unknown point", "GET", "/api/v1/twin/points/b01-0.01/nothing/history", "", 404, "no information point"},
		{"body unknown field", "POST", "/api/v1/twin/history/query", `{"idz":[]}`, 400, "unknown field"},
		{"body bad geometry", "POST", "/api/v1/twin/history/query", `{"within":{"type":"Point","coordinates":[9,49]}}`, 400, "within"},
		{"body bad step", "POST", "/api/v1/twin/history/query", `{"step":"-1h"}`, 400, "step"},
		{"body too many buckets over points", "POST", "/api/v1/twin/history/query",
			fmt.Sprintf(`{"from":%q,"to":%q,"step":"1s"}`, from, t0.Add(3*time.Hour).Format(time.RFC3339)), 400, "buckets"},
		{"too many points", "POST", "/api/v1/twin/history/query",
			`{"ids":[` + strings.Repeat(`"b01-0.01/temperature",`, MaxHistoryPoints) + `"b01-0.01/temperature"],"step":"1h"}`, 400, "more than 10000"},
		{"events unknown asset", "GET", "/api/v1/twin/assets/nobody/events", "", 404, "no asset"},
		{"events bad limit", "GET", "/api/v1/twin/assets/loomi/events?limit=x", "", 400, "not a whole number"},
		{"events limit too large", "GET", "/api/v1/twin/assets/loomi/events?limit=100001", "", 400, "more than 100000"},
		{"events from after to", "GET", "/api/v1/twin/assets/loomi/events?from=" + to + "&to=" + from, "", 400, "is not before"},
		{"events step", "GET", "/api/v1/twin/assets/loomi/events?step=1h", "", 400, "unknown parameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, h, tc.method, tc.target, tc.body)
			var e problemBody
			if code != tc.code || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Detail, tc.msg) {
				t.Errorf("%d %s; want %d with %q", code, body, tc.code, tc.msg)
			}
		})
	}
	// Without a history: 501 on every history route, saying why.
	bare := Handler(fedState(t), HandlerOptions{})
	for _, r := range [][3]string{{"GET", p, ""}, {"POST", "/api/v1/twin/history/query", "{}"}, {"GET", "/api/v1/twin/assets/loomi/events", ""}} {
		code, body := do(t, bare, r[0], r[1], r[2])
		if code != 501 || !strings.Contains(string(body), "no history on this node") {
			t.Errorf("%s %s without history: %d %s", r[0], r[1], code, body)
		}
	}
}

// TestAssetEvents: an asset's events over a range, oldest first, bounded
// by limit (then truncated), and hidden from other tenants.
func TestAssetEvents(t *testing.T) {
	h := histHandler(t, histDB(t))
	for _, tc := range []struct {
		query     string
		want      []string
		truncated bool
	}{
		{"from=" + t0.Format(time.RFC3339) + "&to=" + t0.Add(time.Hour).Format(time.RFC3339), []string{`{"n":0}`, `{"n":1}`, `{"n":2}`}, false},
		{"", []string{`{"n":0}`, `{"n":1}`, `{"n":2}`}, false},
		{"limit=2", []string{`{"n":0}`, `{"n":1}`}, true},
		{"limit=3", []string{`{"n":0}`, `{"n":1}`, `{"n":2}`}, false},
		{fmt.Sprintf("from=%d", t0.Add(30*time.Second).Unix()), []string{`{"n":1}`, `{"n":2}`}, false},
		{"to=" + t0.Format(time.RFC3339), nil, false},
	} {
		code, body := do(t, h, "GET", "/api/v1/twin/assets/loomi/events?"+tc.query, "")
		var a EventsAnswer
		if code != 200 || json.Unmarshal(body, &a) != nil {
			t.Fatalf("%s: %d %s", tc.query, code, body)
		}
		var got []string
		for _, e := range a.Events {
			got = append(got, string(e.Data))
			if e.Type != "status" || e.Tenant != "campus-service" {
				t.Errorf("%s: event %+v", tc.query, e)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") || a.Truncated != tc.truncated || a.Events == nil {
			t.Errorf("%s: %v truncated %v, want %v %v", tc.query, got, a.Truncated, tc.want, tc.truncated)
		}
	}
	if code, _ := do(t, h, "GET", "/api/v1/twin/assets/loomi/events", "", "X-Tenant", "wartberg-growers"); code != 404 {
		t.Errorf("another tenant's asset's events: %d, want 404", code)
	}
}
