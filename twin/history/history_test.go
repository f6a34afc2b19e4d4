package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"go.uber.org/goleak"
)

// t0 is the start of the test data.
// quiet drops the log of the tests.
var quiet = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func openTest(t testing.TB, opts Options) *DB {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	db, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func sample(point, asset, kind, site, tenant string, sec int, v float64) Sample {
	return Sample{Point: point, Asset: asset, AssetKind: kind, Quantity: "temperature", Unit: "CEL",
		Site: site, Tenant: tenant, Time: at(sec), Value: v}
}

// testData is the data of the aggregation tests: windows of a minute from
// t0 hold, for p1, {1,3} {5,7} {} {2}; p2 (same asset) {10} {20}; p3
// (another asset, kind, site and tenant) {100}.
func testData() []Sample {
	return []Sample{
		sample("a1/p1", "a1", "room", "s1", "t1", 0, 1),
		sample("a1/p1", "a1", "room", "s1", "t1", 30, 3),
		sample("a1/p1", "a1", "room", "s1", "t1", 60, 5),
		sample("a1/p1", "a1", "room", "s1", "t1", 90, 7),
		sample("a1/p1", "a1", "room", "s1", "t1", 180, 2),
		sample("a1/p2", "a1", "room", "s1", "t1", 15, 10),
		sample("a1/p2", "a1", "room", "s1", "t1", 75, 20),
		sample("a2/p3", "a2", "meter", "s2", "t2", 0, 100),
	}
}

func b(sec int, v float64, n int) Bucket { return Bucket{Start: at(sec), Value: v, Count: n} }

func TestAggregate(t *testing.T) {
	db := openTest(t, Options{})
	if err := db.Append(t.Context(), testData()); err != nil {
		t.Fatal(err)
	}
	p1 := Filter{Point: "a1/p1"}
	tests := []struct {
		name       string
		q          Query
		want       []Series
		wantErrStr string
	}{
		{"p1 avg, an empty window", Query{Filter: p1, GroupBy: LabelPoint, Start: at(0), End: at(240), Window: time.Minute, Func: Avg},
			[]Series{{"a1/p1", []Bucket{b(0, 2, 2), b(60, 6, 2), b(180, 2, 1)}}}, ""},
		{"p1 min", Query{Filter: p1, GroupBy: LabelPoint, Start: at(0), End: at(240), Window: time.Minute, Func: Min},
			[]Series{{"a1/p1", []Bucket{b(0, 1, 2), b(60, 5, 2), b(180, 2, 1)}}}, ""},
		{"p1 max", Query{Filter: p1, GroupBy: LabelPoint, Start: at(0), End: at(240), Window: time.Minute, Func: Max},
			[]Series{{"a1/p1", []Bucket{b(0, 3, 2), b(60, 7, 2), b(180, 2, 1)}}}, ""},
		{"p1 sum", Query{Filter: p1, GroupBy: LabelPoint, Start: at(0), End: at(240), Window: time.Minute, Func: Sum},
			[]Series{{"a1/p1", []Bucket{b(0, 4, 2), b(60, 12, 2), b(180, 2, 1)}}}, ""},
		{"p1 count", Query{Filter: p1, GroupBy: LabelPoint, Start: at(0), End: at(240), Window: time.Minute, Func: Count},
			[]Series{{"a1/p1", []Bucket{b(0, 2, 2), b(60, 2, 2), b(180, 1, 1)}}}, ""},
		{"p1 last", Query{Filter: p1, GroupBy: LabelPoint, Start: at(0), End: at(240), Window: time.Minute, Func: Last},
			[]Series{{"a1/p1", []Bucket{b(0, 3, 2), b(60, 7, 2), b(180, 2, 1)}}}, ""},
		{"end excluded, one window", Query{Filter: p1, Start: at(0), End: at(60), Func: Count},
			[]Series{{"", []Bucket{b(0, 2, 2)}}}, ""},
		{"start included, offset windows", Query{Filter: p1, Start: at(30), End: at(90), Window: 30 * time.Second, Func: Sum},
			[]Series{{"", []Bucket{b(30, 3, 1), b(60, 5, 1)}}}, ""},
		{"last window cut at end", Query{Filter: p1, Start: at(0), End: at(181), Window: time.Minute, Func: Count},
			[]Series{{"", []Bucket{b(0, 2, 2), b(60, 2, 2), b(180, 1, 1)}}}, ""},
		{"nothing in range", Query{Filter: p1, Start: at(1000), End: at(2000), Window: time.Minute, Func: Avg},
			[]Series{}, ""},
		{"by asset, avg of all samples", Query{GroupBy: LabelAsset, Start: at(0), End: at(120), Window: time.Minute, Func: Avg},
			[]Series{
				{"a1", []Bucket{b(0, 14.0/3, 3), b(60, 32.0/3, 3)}},
				{"a2", []Bucket{b(0, 100, 1)}},
			}, ""},
		{"by asset, last of the group", Query{GroupBy: LabelAsset, Start: at(0), End: at(120), Window: time.Minute, Func: Last},
			[]Series{
				{"a1", []Bucket{b(0, 3, 3), b(60, 7, 3)}},
				{"a2", []Bucket{b(0, 100, 1)}},
			}, ""},
		{"by kind, rooms only", Query{Filter: Filter{AssetKind: "room"}, GroupBy: LabelAssetKind, Start: at(0), End: at(240), Func: Max},
			[]Series{{"room", []Bucket{b(0, 20, 7)}}}, ""},
		{"by site", Query{GroupBy: LabelSite, Start: at(0), End: at(240), Func: Sum},
			[]Series{{"s1", []Bucket{b(0, 48, 7)}}, {"s2", []Bucket{b(0, 100, 1)}}}, ""},
		{"by tenant, one tenant", Query{Filter: Filter{Tenant: "t2"}, GroupBy: LabelTenant, Start: at(0), End: at(240), Func: Count},
			[]Series{{"t2", []Bucket{b(0, 1, 1)}}}, ""},
		{"unknown function", Query{Start: at(0), End: at(1), Func: "median"}, nil, "unknown function"},
		{"bad group", Query{GroupBy: "colour", Start: at(0), End: at(1), Func: Avg}, nil, "cannot group"},
		{"end before start", Query{Start: at(10), End: at(0), Func: Avg}, nil, "not after start"},
		{"too many windows", Query{Start: at(0), End: at(100000), Window: time.Second, Func: Avg}, nil, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := db.Aggregate(t.Context(), tt.q)
			if tt.wantErrStr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrStr) {
					t.Fatalf("err = %v, want one with %q", err, tt.wantErrStr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(res.Series)
			want, _ := json.Marshal(tt.want)
			if !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendOutOfOrder(t *testing.T) {
	db := openTest(t, Options{OutOfOrderWindow: time.Hour})
	ctx := t.Context()
	s := func(sec int, v float64) Sample { return sample("a/p", "a", "device", "", "", sec, v) }
	tests := []struct {
		name    string
		batch   []Sample
		dropped uint64 // Dropped() after the batch
	}{
		{"newest", []Sample{s(7200, 1)}, 0},
		{"late, within the window (a late LoRaWAN uplink)", []Sample{s(7000, 2)}, 0},
		{"the same sample again", []Sample{s(7000, 2)}, 0},
		{"later than the window, with a good one", []Sample{s(100, 3), s(7300, 4)}, 1},
		{"another value at the same time", []Sample{s(7300, 5)}, 2},
		{"no point", []Sample{{Time: at(7400), Value: 6}}, 3},
	}
	for _, tt := range tests {
		if err := db.Append(ctx, tt.batch); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := db.Dropped(); got != tt.dropped {
			t.Fatalf("%s: Dropped() = %d, want %d", tt.name, got, tt.dropped)
		}
	}
	res, err := db.Aggregate(ctx, Query{Start: at(0), End: at(10000), Window: 100 * time.Second, Func: Sum})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(res.Series)
	want, _ := json.Marshal([]Series{{"", []Bucket{b(7000, 2, 1), b(7200, 1, 1), b(7300, 4, 1)}}})
	if !bytes.Equal(got, want) {
		t.Fatalf("kept\ngot  %s\nwant %s", got, want)
	}
	// A cancelled context takes nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.Append(cctx, []Sample{s(7500, 7)}); err == nil {
		t.Fatal("Append with a cancelled context succeeded")
	}
}

// TestAppendSurvivesKill appends in a child process that then kills itself
// with SIGKILL without closing the DB, and checks that every sample whose
// Append returned nil is there when the DB is opened again.
func TestAppendSurvivesKill(t *testing.T) {
	if dir := os.Getenv("HISTORY_KILL_DIR"); dir != "" {
		killChild(dir)
		return
	}
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("SyncWAL=%v", sync), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestAppendSurvivesKill$")
			cmd.Env = append(os.Environ(), "HISTORY_KILL_DIR="+dir, fmt.Sprintf("HISTORY_KILL_SYNC=%v", sync))
			out, err := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v\n%s", err, out)
			}
			db, err := Open(dir, Options{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			res, err := db.Aggregate(t.Context(), Query{Start: at(0), End: at(100000), Func: Count})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Series) != 1 || res.Series[0].Points[0].Value != 1000 {
				t.Fatalf("after the kill: %+v, want 1000 samples", res.Series)
			}
			ev, err := db.Events().Query(t.Context(), "a", at(0), at(100000), 0)
			if err != nil || len(ev) != 10 {
				t.Fatalf("events after the kill: %d, %v; want 10", len(ev), err)
			}
		})
	}
}

func killChild(dir string) {
	db, err := Open(dir, Options{Logger: quiet, SyncWAL: os.Getenv("HISTORY_KILL_SYNC") == "true"})
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := range 100 {
		batch := make([]Sample, 10)
		for j := range batch {
			batch[j] = sample("a/p", "a", "device", "", "", i*10+j, float64(i))
		}
		if err := db.Append(ctx, batch); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		if i%10 == 0 {
			err := db.Events().Append(ctx, []Event{{Asset: "a", Type: "status", Time: at(i), Data: json.RawMessage(`"up"`)}})
			if err != nil {
				fmt.Println(err)
				os.Exit(2)
			}
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

func TestKindRetention(t *testing.T) {
	now := at(10 * 3600)
	db := openTest(t, Options{
		KindRetention:     map[string]time.Duration{"device": time.Hour},
		RetentionInterval: time.Hour,
		Now:               func() time.Time { return now },
	})
	ctx := t.Context()
	var ss []Sample
	for h := range 10 {
		ss = append(ss,
			sample("d/p", "d", "device", "", "", h*3600, 1),
			sample("r/p", "r", "room", "", "", h*3600, 1))
	}
	if err := db.Append(ctx, ss); err != nil {
		t.Fatal(err)
	}
	// Blocks of two hours: [0h, 2h) … [4h, 6h); from 6h to 9h in the head.
	if err := db.TSDB().Compact(ctx); err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for h := range 10 {
		evs = append(evs,
			Event{Asset: "d", AssetKind: "device", Type: "status", Time: at(h * 3600)},
			Event{Asset: "r", AssetKind: "room", Type: "alarm", Time: at(h * 3600)})
	}
	if err := db.Events().Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := db.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := db.Aggregate(ctx, Query{GroupBy: LabelAssetKind, Start: at(0), End: now, Func: Count})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(res.Series)
	// The device's samples older than 9h are out of retention, but only
	// whole blocks go: those before 6h.
	want, _ := json.Marshal([]Series{{"device", []Bucket{b(0, 4, 4)}}, {"room", []Bucket{b(0, 10, 10)}}})
	if !bytes.Equal(got, want) {
		t.Fatalf("after retention\ngot  %s\nwant %s", got, want)
	}
	for _, blk := range db.TSDB().Blocks() {
		if n := blk.Meta().Stats.NumTombstones; n != 0 {
			t.Errorf("block %s has %d tombstones left", blk.Meta().ULID, n)
		}
	}
	for asset, n := range map[string]int{"d": 1, "r": 10} {
		ev, err := db.Events().Query(ctx, asset, at(0), now, 0)
		if err != nil || len(ev) != n {
			t.Fatalf("events of %s after retention: %d, %v; want %d", asset, len(ev), err, n)
		}
	}
}

func TestDeleteTenant(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	// Four hours of data, so that the head compacts into a block and the
	// deletion has to rewrite it.
	var ss []Sample
	for m := range 4 * 60 {
		ss = append(ss,
			sample("a1/p", "a1", "room", "s", "acme", m*60, float64(m)),
			sample("a2/p", "a2", "room", "s", "zenith", m*60, float64(m)))
	}
	if err := db.Append(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if err := db.TSDB().Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if len(db.TSDB().Blocks()) == 0 {
		t.Fatal("no block after compaction")
	}
	// A late sample of each tenant, in the head's out-of-order part.
	late := []Sample{
		sample("a1/late", "a1", "room", "s", "acme", 3*3600+30, 1),
		sample("a2/late", "a2", "room", "s", "zenith", 3*3600+30, 1),
	}
	if err := db.Append(ctx, late[:1]); err != nil {
		t.Fatal(err)
	}
	if err := db.Append(ctx, late[1:]); err != nil {
		t.Fatal(err)
	}
	late[0].Time, late[1].Time = at(3*3600+10), at(3*3600+10)
	if err := db.Append(ctx, late); err != nil {
		t.Fatal(err)
	}
	err := db.Events().Append(ctx, []Event{
		{Asset: "a1", Tenant: "acme", Type: "incident", Time: at(60), Data: json.RawMessage(`{"what":"leak"}`)},
		{Asset: "a2", Tenant: "zenith", Type: "incident", Time: at(60)},
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func(tenant string) (samples, events int) {
		var buf bytes.Buffer
		if err := db.ExportTenant(ctx, tenant, &buf); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&buf)
		for dec.More() {
			var r ExportRecord
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
			switch r.Kind {
			case "sample":
				samples++
				if r.Labels[LabelTenant] != tenant {
					t.Fatalf("export of %s has %+v", tenant, r)
				}
			case "event":
				events++
			}
		}
		return samples, events
	}
	if s, e := count("acme"); s != 242 || e != 1 {
		t.Fatalf("export before deletion: %d samples, %d events; want 240, 1", s, e)
	}
	if err := db.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if s, e := count("acme"); s != 0 || e != 0 {
		t.Fatalf("export after deletion: %d samples, %d events; want none", s, e)
	}
	if s, e := count("zenith"); s != 242 || e != 1 {
		t.Fatalf("other tenant after deletion: %d samples, %d events; want 240, 1", s, e)
	}
	res, err := db.Aggregate(ctx, Query{GroupBy: LabelTenant, Start: at(0), End: at(86400), Func: Count})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 1 || res.Series[0].Group != "zenith" {
		t.Fatalf("aggregate after deletion: %+v", res.Series)
	}
	ev, err := db.Events().Query(ctx, "a1", at(0), at(86400), 0)
	if err != nil || len(ev) != 0 {
		t.Fatalf("events of a1 after deletion: %v, %v", ev, err)
	}
	// Nor through the Prometheus API: series, label values, PromQL.
	srv := newTestServer(t, db, APIOptions{})
	for _, path := range []string{
		"/prometheus/api/v1/series?match[]=citymesh_point_value{tenant=\"acme\"}",
		"/prometheus/api/v1/label/tenant/values",
		"/prometheus/api/v1/query?query=count_over_time(citymesh_point_value{tenant=\"acme\"}[1d])&time=" + fmt.Sprint(at(4*3600).Unix()),
	} {
		_, body := get(t, srv, path)
		if strings.Contains(body, "acme") || strings.Contains(body, `"value"`) {
			t.Errorf("%s after deletion: %s", path, body)
		}
	}
	if err := db.DeleteTenant(ctx, ""); err == nil {
		t.Error("DeleteTenant of the empty tenant succeeded")
	}
}

// TestAggregateMatchesPromQL checks Aggregate per point against the PromQL
// engine's *_over_time functions on random data: the two compute the same
// windows independently (PromQL's range selector (t-w, t] evaluated at the
// last millisecond of each window is the window [t-w+1ms, t]).
func TestAggregateMatchesPromQL(t *testing.T) {
	db := openTest(t, Options{})
	r := rand.New(rand.NewPCG(1, 1))
	var ss []Sample
	for p := range 3 {
		ms := 0
		for range 500 {
			ms += 1 + r.IntN(8000)
			s := sample(fmt.Sprintf("a/p%d", p), "a", "room", "", "", 0, math.Round(r.NormFloat64()*100)/10)
			s.Time = t0.Add(time.Duration(ms) * time.Millisecond)
			ss = append(ss, s)
		}
	}
	if err := db.Append(t.Context(), ss); err != nil {
		t.Fatal(err)
	}
	eng := promql.NewEngine(promql.EngineOpts{Logger: quiet, MaxSamples: 1e6, Timeout: time.Minute})
	start, end, win := at(-100), at(2100), 7*time.Minute
	for _, fn := range []Func{Avg, Min, Max, Sum, Count, Last} {
		t.Run(string(fn), func(t *testing.T) {
			res, err := db.Aggregate(t.Context(), Query{GroupBy: LabelPoint, Start: start, End: end, Window: win, Func: fn})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, s := range res.Series {
				for _, p := range s.Points {
					got[fmt.Sprint(s.Group, p.Start.UnixMilli())] = p.Value
				}
			}
			expr := string(fn) + "_over_time(citymesh_point_value[" + win.String() + "])"
			// Steps at the last millisecond of each whole window; the last
			// window, cut at end, has no step and is not compared.
			qry, err := eng.NewRangeQuery(t.Context(), db, nil, expr,
				start.Add(win-time.Millisecond), end.Add(-time.Millisecond), win)
			if err != nil {
				t.Fatal(err)
			}
			m, err := qry.Exec(t.Context()).Matrix()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]float64{}
			for _, s := range m {
				for _, p := range s.Floats {
					want[fmt.Sprint(s.Metric.Get(LabelPoint), p.T+1-win.Milliseconds())] = p.F
				}
			}
			n := 0
			for k, w := range want {
				g, ok := got[k]
				if !ok || math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
					t.Errorf("window %s: Aggregate %v (found %v), PromQL %v", k, g, ok, w)
				}
				n++
			}
			// Every window of Aggregate's is compared, but the one cut at
			// end.
			if n < 3*4 || len(got) < n || len(got) > n+3 {
				t.Errorf("%d windows compared, Aggregate has %d", n, len(got))
			}
		})
	}
}

// TestRetentionLoop checks that Open applies the retention on its
// schedule, per kind to samples and to every event, and that Close stops
// the loop and leaves no goroutine behind.
func TestRetentionLoop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	now := at(10 * 3600)
	db, err := Open(t.TempDir(), Options{
		Logger:            quiet,
		Retention:         5 * time.Hour,
		KindRetention:     map[string]time.Duration{"device": time.Hour},
		RetentionInterval: 20 * time.Millisecond,
		Now:               func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var ss []Sample
	for h := range 10 {
		ss = append(ss, sample("d/p", "d", "device", "", "", h*3600, 1))
	}
	if err := db.Append(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if err := db.TSDB().Compact(ctx); err != nil {
		t.Fatal(err)
	}
	err = db.Events().Append(ctx, []Event{
		{Asset: "r", AssetKind: "room", Type: "alarm", Time: at(0)},
		{Asset: "r", AssetKind: "room", Type: "alarm", Time: at(9 * 3600)},
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := db.Aggregate(ctx, Query{Start: at(0), End: now, Func: Count})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := db.Events().Query(ctx, "r", at(0), now, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Series) == 1 && res.Series[0].Points[0].Count == 4 && len(evs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention not applied: samples %+v, events %d", res.Series, len(evs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLatest(t *testing.T) {
	db := openTest(t, Options{})
	if err := db.Append(t.Context(), testData()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		f        Filter
		at       time.Time
		lookback time.Duration
		want     []string
	}{
		{"all at 100 s", Filter{}, at(100), time.Hour, []string{"a1/p1=7@90", "a1/p2=20@75", "a2/p3=100@0"}},
		{"at a sample's time, included", Filter{}, at(75), time.Hour, []string{"a1/p1=5@60", "a1/p2=20@75", "a2/p3=100@0"}},
		{"lookback excludes its start", Filter{}, at(100), 100 * time.Second, []string{"a1/p1=7@90", "a1/p2=20@75"}},
		{"one asset", Filter{Asset: "a2"}, at(1000), time.Hour, []string{"a2/p3=100@0"}},
		{"nothing yet", Filter{}, at(-1), time.Hour, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Latest(t.Context(), tt.f, tt.at, tt.lookback)
			if err != nil {
				t.Fatal(err)
			}
			var g []string
			for _, s := range got {
				g = append(g, fmt.Sprintf("%s=%v@%d", s.Point, s.Value, int(s.Time.Sub(t0)/time.Second)))
				if s.Unit != "CEL" || s.Quantity != "temperature" || s.Asset == "" || s.Tenant == "" {
					t.Errorf("labels not restored: %+v", s)
				}
			}
			if !slices.Equal(g, tt.want) {
				t.Errorf("got %v, want %v", g, tt.want)
			}
		})
	}
	if _, err := db.Latest(t.Context(), Filter{}, at(0), 0); err == nil {
		t.Error("zero lookback accepted")
	}
}

// TestEventRetentionWithoutKinds checks that events expire with the
// history's retention when no kind has one of its own (the TSDB applies
// the retention to samples itself, not to events).
func TestEventRetentionWithoutKinds(t *testing.T) {
	now := at(10 * 3600)
	db := openTest(t, Options{Retention: 5 * time.Hour, RetentionInterval: 20 * time.Millisecond,
		Now: func() time.Time { return now }})
	ctx := t.Context()
	err := db.Events().Append(ctx, []Event{
		{Asset: "r", Type: "alarm", Time: at(0)},
		{Asset: "r", Type: "alarm", Time: at(9 * 3600)},
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := db.Events().Query(ctx, "r", at(0), now, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 && evs[0].Time.Equal(at(9*3600)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events after retention: %+v", evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConcurrentUse appends, aggregates, queries through the Prometheus API
// and deletes a tenant at the same time (for the race detector).
func TestConcurrentUse(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	srv := newTestServer(t, db, APIOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 2 {
		wg.Go(func() {
			for i := range 200 {
				tenant := []string{"acme", "zenith"}[w]
				s := sample(fmt.Sprintf("a%d/p", w), fmt.Sprintf("a%d", w), "room", "s", tenant, i, float64(i))
				if err := db.Append(ctx, []Sample{s}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if _, err := db.Aggregate(ctx, Query{GroupBy: LabelTenant, Start: at(0), End: at(300), Window: time.Minute, Func: Avg}); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for range 20 {
			resp, err := srv.Client().Get(srv.URL + "/prometheus/api/v1/query?query=count(citymesh_point_value)&time=" + fmt.Sprint(at(200).Unix()))
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
		}
	})
	wg.Go(func() {
		for range 3 {
			if err := db.DeleteTenant(ctx, "acme"); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	res, err := db.Aggregate(ctx, Query{GroupBy: LabelTenant, Start: at(0), End: at(300), Func: Count})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Series {
		if s.Group == "zenith" && s.Points[0].Count != 200 {
			t.Errorf("zenith has %d samples, want 200", s.Points[0].Count)
		}
	}
}
