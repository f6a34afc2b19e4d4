package history

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
)

// campusRate is the reference campus's values per second at 1 Hz per point.
const campusRate = 35666

// cpuTime returns the CPU time the process has used, user and system, every
// goroutine included (the TSDB's own as well).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchSample returns the sample of point i at second sec: the campus's
// mix of kinds, a third each of slowly varying temperatures (0.1 °C steps),
// energy counters (Wh, rising) and on/off states that seldom change.
func benchSample(i, sec int, v float64) Sample {
	s := benchPoints[i]
	s.Time, s.Value = t0.Add(time.Duration(sec)*time.Second), v
	return s
}

// benchPoints are the points of the benchmarks, made once as the twin
// holds them.
var benchPoints = func() []Sample {
	kinds := [...]string{"room", "meter", "device"}
	ps := make([]Sample, campusRate)
	for i := range ps {
		ps[i] = Sample{
			Point: fmt.Sprintf("asset-%d/p%d", i/4, i%4), Asset: fmt.Sprintf("asset-%d", i/4),
			AssetKind: kinds[i%3], Quantity: "value", Unit: "1", Site: fmt.Sprintf("site-%d", i%7),
			Tenant: fmt.Sprintf("tenant-%d", i%50),
		}
	}
	return ps
}()

// walk advances point i's value by one realistic step.
func walk(r *rand.Rand, i int, v float64) float64 {
	switch i % 3 {
	case 0: // temperature: a random walk in 0.1 steps, mostly still
		if r.IntN(10) == 0 {
			v += float64(r.IntN(3)-1) * 0.1
			v = math.Round(v*10) / 10
		}
	case 1: // energy counter in Wh
		v += float64(r.IntN(5))
	case 2: // on/off
		if r.IntN(600) == 0 {
			v = 1 - v
		}
	}
	return v
}

// BenchmarkAppendCampus appends the reference campus at 1 Hz, in batches of
// 1,000 samples over 35,666 series, and reports the process's CPU per
// sample (every goroutine of the TSDB included) and the cores the campus
// would take.
func BenchmarkAppendCampus(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("SyncWAL=%v", sync), func(b *testing.B) {
			db, err := Open(b.TempDir(), Options{Logger: quiet, SyncWAL: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			r := rand.New(rand.NewPCG(1, 2))
			vals := make([]float64, campusRate)
			batch := make([]Sample, 1000)
			// The series exist already, as they do after the first second.
			for i := 0; i < campusRate; i += len(batch) {
				n := min(len(batch), campusRate-i)
				for j := range n {
					batch[j] = benchSample(i+j, 0, 0)
				}
				if err := db.Append(ctx, batch[:n]); err != nil {
					b.Fatal(err)
				}
			}
			next := 0
			var samples int
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				for j := range batch {
					k := next % campusRate
					sec := 1 + next/campusRate
					vals[k] = walk(r, k, vals[k])
					batch[j] = benchSample(k, sec, vals[k])
					next++
				}
				if err := db.Append(ctx, batch); err != nil {
					b.Fatal(err)
				}
				samples += len(batch)
			}
			cpu := cpuTime() - cpu0
			perSample := float64(cpu.Nanoseconds()) / float64(samples)
			b.ReportMetric(perSample, "cpu-ns/sample")
			b.ReportMetric(1e9/perSample, "samples/s/core")
			b.ReportMetric(perSample*campusRate/1e9, "cores@campus")
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/campusRate, "heap-B/series")
		})
	}
}

// BenchmarkDiskBytesPerSample writes two hours of 10,000 series at 1 Hz
// (72 million samples) with realistic values, compacts the head into a
// block and reports the block's bytes on disk per sample, with timestamps
// on the second and with a jitter of up to ±50 ms as uplinks have.
func BenchmarkDiskBytesPerSample(b *testing.B) {
	const series, seconds = 10000, 7200
	for _, jitter := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("jitter=%v", jitter), func(b *testing.B) {
			for b.Loop() {
				dir := b.TempDir()
				db, err := Open(dir, Options{Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				r := rand.New(rand.NewPCG(3, 4))
				vals := make([]float64, series)
				for i := range vals {
					vals[i] = 20 + float64(i%50)/10
				}
				batch := make([]Sample, 0, series)
				for sec := range seconds {
					batch = batch[:0]
					for i := range series {
						vals[i] = walk(r, i, vals[i])
						s := benchSample(i, sec, vals[i])
						if jitter > 0 {
							s.Time = s.Time.Add(time.Duration(r.Int64N(int64(2*jitter))) - jitter)
						}
						batch = append(batch, s)
					}
					if err := db.Append(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				h := db.TSDB().Head()
				if err := db.TSDB().CompactHead(tsdb.NewRangeHead(h, h.MinTime(), h.MaxTime())); err != nil {
					b.Fatal(err)
				}
				var size int64
				for _, blk := range db.TSDB().Blocks() {
					size += dirSize(b, blk.Dir())
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(size)/float64(series*seconds), "disk-B/sample")
				b.ReportMetric(float64(size), "block-bytes")
			}
		})
	}
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// writeBlock writes the samples of gen into one TSDB block in dir, as a
// compacted history holds them.
func writeBlock(b *testing.B, dir string, span time.Duration, gen func(app func(Sample))) {
	w, err := tsdb.NewBlockWriter(quiet, dir, span.Milliseconds())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	app := w.Appender(ctx)
	n := 0
	gen(func(s Sample) {
		if _, err := app.Append(0, Labels(s), s.Time.UnixMilli(), s.Value); err != nil {
			b.Fatal(err)
		}
		if n++; n%100000 == 0 {
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			app = w.Appender(ctx)
		}
	})
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := w.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAggregateDay asks for a day of one 1 Hz point (86,400 samples,
// among 99 other points) at 15-minute averages, with Aggregate and with
// the same query through the PromQL engine.
func BenchmarkAggregateDay(b *testing.B) {
	dir := b.TempDir()
	writeBlock(b, dir, 24*time.Hour, func(app func(Sample)) {
		r := rand.New(rand.NewPCG(5, 6))
		vals := make([]float64, 100)
		for sec := range 86400 {
			for i := range vals {
				if i > 0 && sec%60 != 0 {
					continue // the others once a minute
				}
				vals[i] = walk(r, i, vals[i])
				app(benchSample(i, sec, vals[i]))
			}
		}
	})
	db, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	q := Query{Filter: Filter{Point: "asset-0/p0"}, GroupBy: LabelPoint, Start: t0, End: t0.Add(24 * time.Hour), Window: 15 * time.Minute, Func: Avg}
	b.Run("Aggregate", func(b *testing.B) {
		for b.Loop() {
			res, err := db.Aggregate(context.Background(), q)
			if err != nil || len(res.Series) != 1 || len(res.Series[0].Points) != 96 {
				b.Fatalf("%v %+v", err, res)
			}
		}
	})
	b.Run("PromQL", func(b *testing.B) {
		benchPromQL(b, db, `avg_over_time(citymesh_point_value{point="asset-0/p0"}[15m])`, q, 1)
	})
}

// BenchmarkAggregateMonth asks for a month of 1,000 points at 15-minute
// samples (2.88 million samples) at hourly averages, per point, with
// Aggregate and through the PromQL engine.
func BenchmarkAggregateMonth(b *testing.B) {
	const points, days = 1000, 30
	dir := b.TempDir()
	writeBlock(b, dir, days*24*time.Hour, func(app func(Sample)) {
		r := rand.New(rand.NewPCG(7, 8))
		vals := make([]float64, points)
		for step := range days * 96 {
			for i := range vals {
				vals[i] = walk(r, i, vals[i])
				app(benchSample(i, step*900, vals[i]))
			}
		}
	})
	db, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	q := Query{GroupBy: LabelPoint, Start: t0, End: t0.Add(days * 24 * time.Hour), Window: time.Hour, Func: Avg}
	b.Run("Aggregate", func(b *testing.B) {
		for b.Loop() {
			res, err := db.Aggregate(context.Background(), q)
			if err != nil || len(res.Series) != points || len(res.Series[0].Points) != days*24 {
				b.Fatalf("%v %d", err, len(res.Series))
			}
		}
	})
	b.Run("PromQL", func(b *testing.B) {
		benchPromQL(b, db, `avg_over_time(citymesh_point_value[1h])`, q, points)
	})
}

// benchPromQL runs expr as a range query with step q.Window, evaluated at
// the end of each window (so that each covers the window of Aggregate).
func benchPromQL(b *testing.B, db *DB, expr string, q Query, series int) {
	eng := promql.NewEngine(promql.EngineOpts{Logger: quiet, MaxSamples: 50_000_000, Timeout: time.Minute})
	last := q.Start.Add(q.Window - time.Millisecond)
	end := q.End.Add(-time.Millisecond)
	for b.Loop() {
		qry, err := eng.NewRangeQuery(context.Background(), db, nil, expr, last, end, q.Window)
		if err != nil {
			b.Fatal(err)
		}
		res := qry.Exec(context.Background())
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		m, err := res.Matrix()
		if err != nil || len(m) != series {
			b.Fatalf("%v: %d series", err, len(m))
		}
		qry.Close()
	}
}

// BenchmarkReopenCampus writes two minutes of the reference campus at 1 Hz
// (4.3 million samples), closes the history and opens it again, and
// reports how long Open takes (the TSDB replays its WAL), per sample of the
// head, and how long Latest takes for every point of the campus: what a
// restart of the twin costs when it recovers its state from the history.
func BenchmarkReopenCampus(b *testing.B) {
	const seconds = 120
	for b.Loop() {
		dir := b.TempDir()
		db, err := Open(dir, Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		batch := make([]Sample, 0, 1000)
		for sec := range seconds {
			for i := range campusRate {
				batch = append(batch, benchSample(i, sec, float64(sec)))
				if len(batch) == cap(batch) {
					if err := db.Append(ctx, batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
		}
		if err := db.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		db, err = Open(dir, Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		open := time.Since(start)
		start = time.Now()
		latest, err := db.Latest(ctx, Filter{}, t0.Add(seconds*time.Second), time.Hour)
		if err != nil || len(latest) != campusRate {
			b.Fatalf("%v: %d", err, len(latest))
		}
		lat := time.Since(start)
		db.Close()
		b.ReportMetric(float64(open.Milliseconds()), "open-ms")
		b.ReportMetric(float64(open.Nanoseconds())/(seconds*campusRate), "replay-ns/sample")
		b.ReportMetric(float64(lat.Milliseconds()), "latest-ms")
	}
}
