package remotewrite

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/twin"
	"github.com/citymesh/citymesh/twin/history"
)

// processCPU returns the CPU time, user and system, that process pid has
// used, from /proc/{pid}/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// campusDay returns the samples of the reference campus's numeric points
// every 15 minutes (a room's, a meter's interval) over the day ending at
// end, tick by tick: the campus day the twin hands on.
func campusDay(t *testing.T, end time.Time) (*campus.Model, [][]history.Sample) {
	m, err := campus.Load("../../examples/campus/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var points []history.Sample
	for _, p := range m.Points {
		if p.Quantity == "position" || strings.Contains(p.ID, "/check/") {
			continue
		}
		points = append(points, history.Sample{Point: p.ID, Asset: p.Asset, AssetKind: string(p.AssetKind), Quantity: p.Quantity,
			Unit: string(p.Unit), Site: p.Site, Tenant: p.Tenant})
	}
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, len(points))
	start := end.Add(-24 * time.Hour)
	var ticks [][]history.Sample
	for at := start; at.Before(end); at = at.Add(15 * time.Minute) {
		tick := make([]history.Sample, len(points))
		for i, p := range points {
			vals[i] += math.Round(r.NormFloat64()*10) / 10
			p.Time, p.Value = at, vals[i]
			tick[i] = p
		}
		ticks = append(ticks, tick)
	}
	return m, ticks
}

// month returns n points's samples every 15 minutes over the 30 days
// ending at end, tick by tick, labelled site "month".
func month(n int, end time.Time) [][]history.Sample {
	start := end.Add(-30 * 24 * time.Hour)
	var ticks [][]history.Sample
	for at := start; at.Before(end); at = at.Add(15 * time.Minute) {
		tick := make([]history.Sample, n)
		for i := range tick {
			tick[i] = history.Sample{Point: fmt.Sprintf("m%04d/energy", i), Asset: fmt.Sprintf("m%04d", i), AssetKind: "meter",
				Quantity: "energy", Unit: "KWH", Site: "month", Time: at, Value: float64(at.Unix()/900 + int64(i))}
		}
		ticks = append(ticks, tick)
	}
	return ticks
}

// median runs fn runs times and returns the median duration.
func median(runs int, fn func()) time.Duration {
	ds := make([]time.Duration, runs)
	for i := range ds {
		began := time.Now()
		fn()
		ds[i] = time.Since(began)
	}
	slices.Sort(ds)
	return ds[runs/2]
}

// TestCompareVictoriaMetrics writes the same campus day (the reference
// campus's 35,598 numeric points every 15 minutes: 3.4 M samples) into the
// embedded history and, through the remote write Writer, into a real
// VictoriaMetrics on loopback, and compares the ingest time and CPU and the
// latency of two queries: a day of one point in 15-minute averages, and a
// month of 1,000 points in hourly averages. It runs only when
// CITYMESH_COMPARE_VM=1 (a few minutes; docs/benchmarks.md has its figures).
func TestCompareVictoriaMetrics(t *testing.T) {
	if os.Getenv("CITYMESH_COMPARE_VM") != "1" {
		t.Skip("set CITYMESH_COMPARE_VM=1 to compare with VictoriaMetrics (minutes)")
	}
	if _, err := os.Stat(victoriaBinary); err != nil {
		t.Skipf("%s not found (Debian package victoria-metrics): %v", victoriaBinary, err)
	}
	ctx := context.Background()
	root := t.TempDir()
	end := time.Now().Add(-time.Hour).Truncate(15 * time.Minute)
	model, day := campusDay(t, end)
	samples := len(day) * len(day[0])
	t.Logf("a campus day: %d points × %d ticks = %d samples", len(day[0]), len(day), samples)

	// The embedded history, in batches of 1,000 as the twin hands them.
	db, err := history.Open(filepath.Join(root, "history"), history.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cpu0, began := selfCPU(), time.Now()
	for _, tick := range day {
		for i := 0; i < len(tick); i += 1000 {
			if err := db.Append(ctx, tick[i:min(i+1000, len(tick))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	embWall, embCPU := time.Since(began), selfCPU()-cpu0

	// VictoriaMetrics, through the Writer (its durable queue and
	// requests of 10,000 samples).
	addr := freeAddr(t)
	vm := startVictoria(t, addr, filepath.Join(root, "vm-data"))
	defer vm.stop()
	w, err := Open(Config{URL: "http://" + addr + "/api/v1/write", Dir: filepath.Join(root, "queue"), MaxSamplesPerSend: 10000,
		BatchWait: 10 * time.Millisecond, Timeout: 30 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	vmCPU0, err := processCPU(vm.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	cpu0, began = selfCPU(), time.Now()
	for _, tick := range day {
		for i := 0; i < len(tick); i += 1000 {
			if err := w.Append(ctx, tick[i:min(i+1000, len(tick))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush(t, w, 5*time.Minute)
	forceFlush(t, addr)
	rwWall, rwCPU := time.Since(began), selfCPU()-cpu0
	vmCPU1, _ := processCPU(vm.cmd.Process.Pid)
	vmCPU := vmCPU1 - vmCPU0

	// A month of 1,000 points, in both (setup, not measured as ingest).
	mdb, err := history.Open(filepath.Join(root, "month"), history.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer mdb.Close()
	for _, tick := range month(1000, end) {
		if err := mdb.Append(ctx, tick); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(ctx, tick); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, w, 5*time.Minute)
	forceFlush(t, addr)
	if err := mdb.TSDB().Compact(ctx); err != nil {
		t.Fatal(err)
	}

	// Both hold the same: the day's count of one point, the month's
	// sum of counts.
	point := day[0][len(day[0])/2].Point
	rng := func(d time.Duration) (time.Time, time.Time) { return end.Add(-d), end }
	from, to := rng(24 * time.Hour)
	res, err := db.Aggregate(ctx, history.Query{Filter: history.Filter{Point: point}, Start: from, End: to, Window: 24 * time.Hour, Func: history.Count})
	if err != nil || len(res.Series) != 1 || res.Series[0].Points[0].Value != 96 {
		t.Fatalf("embedded count of %s: %+v %v", point, res, err)
	}
	if n := vmInstant(t, addr, fmt.Sprintf(`count_over_time(%s{point=%q}[1d])`, history.MetricName, point), to.Add(-time.Millisecond)); n != 96 {
		t.Fatalf("VictoriaMetrics count of %s: %v, want 96", point, n)
	}

	// Query latencies, the median of 9 runs each (VictoriaMetrics's cache
	// is off).
	dayEmb := median(9, func() {
		if _, err := db.Aggregate(ctx, history.Query{Filter: history.Filter{Point: point}, Start: from, End: to, Window: 15 * time.Minute, Func: history.Avg}); err != nil {
			t.Fatal(err)
		}
	})
	dayVM := median(9, func() {
		vmRange(t, addr, fmt.Sprintf(`avg_over_time(%s{point=%q}[15m])`, history.MetricName, point), from.Add(15*time.Minute), to, 15*time.Minute, 1)
	})
	mfrom, mto := rng(30 * 24 * time.Hour)
	monthEmb := median(5, func() {
		res, err := mdb.Aggregate(ctx, history.Query{Filter: history.Filter{Site: "month"}, GroupBy: history.LabelPoint, Start: mfrom, End: mto, Window: time.Hour, Func: history.Avg})
		if err != nil || len(res.Series) != 1000 {
			t.Fatalf("month: %d series, %v", len(res.Series), err)
		}
	})
	monthVM := median(5, func() {
		vmRange(t, addr, fmt.Sprintf(`avg_over_time(%s{site="month"}[1h])`, history.MetricName), mfrom.Add(time.Hour), mto, time.Hour, 1000)
	})
	// Over HTTP on both sides: the embedded history's Prometheus API
	// (PromQL) and the twin's history route.
	dayProm := httptest.NewServer(history.NewAPI(db, history.APIOptions{}))
	defer dayProm.Close()
	monthProm := httptest.NewServer(history.NewAPI(mdb, history.APIOptions{}))
	defer monthProm.Close()
	twinAPI := httptest.NewServer(twin.Handler(twin.NewState(model), twin.HandlerOptions{History: db}))
	defer twinAPI.Close()
	dayPromQL := median(9, func() {
		vmRange(t, strings.TrimPrefix(dayProm.URL, "http://")+"/prometheus", fmt.Sprintf(`avg_over_time(%s{point=%q}[15m])`, history.MetricName, point), from.Add(15*time.Minute), to, 15*time.Minute, 1)
	})
	dayRoute := median(9, func() {
		q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "step": {"15m"}, "agg": {"avg"}}
		resp, err := http.Get(twinAPI.URL + twin.APIPrefix + "points/" + point + "/history?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var a twin.HistoryAnswer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || len(a.Series) != 1 || len(a.Series[0].Buckets) != 96 {
			t.Fatalf("twin route: %d %+v %v", resp.StatusCode, a, err)
		}
		resp.Body.Close()
	})
	monthPromQL := median(5, func() {
		vmRange(t, strings.TrimPrefix(monthProm.URL, "http://")+"/prometheus", fmt.Sprintf(`avg_over_time(%s{site="month"}[1h])`, history.MetricName), mfrom.Add(time.Hour), mto, time.Hour, 1000)
	})

	t.Logf("ingest of %d samples: embedded %s wall, %s CPU (%.0f ns/sample); VictoriaMetrics %s wall through remote write, %s CPU in VictoriaMetrics (%.0f ns/sample) + %s in the writer (%.0f ns/sample)",
		samples, embWall.Round(time.Millisecond), embCPU.Round(time.Millisecond), float64(embCPU.Nanoseconds())/float64(samples),
		rwWall.Round(time.Millisecond), vmCPU.Round(time.Millisecond), float64(vmCPU.Nanoseconds())/float64(samples),
		rwCPU.Round(time.Millisecond), float64(rwCPU.Nanoseconds())/float64(samples))
	t.Logf("ratios (VictoriaMetrics / embedded): ingest wall %.2f, ingest CPU %.2f (database alone) %.2f (with the writer)",
		rwWall.Seconds()/embWall.Seconds(), vmCPU.Seconds()/embCPU.Seconds(), (vmCPU+rwCPU).Seconds()/embCPU.Seconds())
	t.Logf("day of one point in 15-minute averages: embedded Aggregate %s, twin route over HTTP %s, embedded PromQL query_range over HTTP %s; VictoriaMetrics query_range over HTTP %s (ratios to the embedded over HTTP: %.1f, %.1f)",
		dayEmb, dayRoute, dayPromQL, dayVM, dayVM.Seconds()/dayRoute.Seconds(), dayVM.Seconds()/dayPromQL.Seconds())
	t.Logf("month of 1,000 points in hourly averages: embedded Aggregate %s, embedded PromQL query_range over HTTP %s; VictoriaMetrics query_range over HTTP %s (ratios %.2f to Aggregate, %.2f to PromQL over HTTP)",
		monthEmb.Round(time.Millisecond), monthPromQL.Round(time.Millisecond), monthVM.Round(time.Millisecond),
		monthVM.Seconds()/monthEmb.Seconds(), monthVM.Seconds()/monthPromQL.Seconds())
}

func forceFlush(t *testing.T, addr string) {
	resp, err := http.Get("http://" + addr + "/internal/force_flush")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// vmQuery GETs a Prometheus query API path of VictoriaMetrics and decodes
// its data.
func vmQuery(t *testing.T, addr, path string, q url.Values) json.RawMessage {
	t.Helper()
	resp, err := http.Get("http://" + addr + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &body) != nil || body.Status != "success" {
		t.Fatalf("%s %v: %s %s", path, q, resp.Status, b)
	}
	return body.Data
}

func vmInstant(t *testing.T, addr, query string, at time.Time) float64 {
	data := vmQuery(t, addr, "/api/v1/query", url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}})
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil || len(d.Result) != 1 {
		t.Fatalf("%s: %s", query, data)
	}
	v, _ := strconv.ParseFloat(d.Result[0].Value[1].(string), 64)
	return v
}

// vmRange runs a range query and checks it answers series series.
func vmRange(t *testing.T, addr, query string, from, to time.Time, step time.Duration, series int) {
	data := vmQuery(t, addr, "/api/v1/query_range", url.Values{"query": {query}, "start": {strconv.FormatInt(from.Unix(), 10)},
		"end": {strconv.FormatInt(to.Unix(), 10)}, "step": {strconv.Itoa(int(step.Seconds()))}})
	var d struct {
		Result []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil || len(d.Result) != series {
		t.Fatalf("%s: %d series, want %d", query, len(d.Result), series)
	}
}
