package remotewrite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/twin/history"
)

// benchSamples is a tick of n points of a campus: labels of the sizes the
// campus description gives them.
func benchSamples(n int, at time.Time) []history.Sample {
	s := make([]history.Sample, n)
	for i := range s {
		s[i] = history.Sample{
			Point:     fmt.Sprintf("building-%02d/meter-%04d/active_power", i%40, i),
			Asset:     fmt.Sprintf("building-%02d/meter-%04d", i%40, i),
			AssetKind: "meter", Quantity: "active_power", Unit: "W",
			Site: "campus-north", Tenant: fmt.Sprintf("tenant-%02d", i%12),
			Time: at, Value: float64(i) * 1.5,
		}
	}
	return s
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, samples int, wall, cpu time.Duration) {
	b.ReportMetric(float64(samples)/wall.Seconds(), "samples/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(samples), "cpu-ns/sample")
	// The share of one core that the reference campus's 35,666 samples/s
	// would take at this cost.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(samples)*35666/1e9, "cores@campus")
}

// BenchmarkAppend measures Append into the durable queue alone (the
// receiver refuses everything and the sender waits a minute between
// attempts), per size of the Append.
func BenchmarkAppend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for _, size := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("samples=%d", size), func(b *testing.B) {
			w, err := Open(Config{
				URL: srv.URL, Dir: b.TempDir(), MinBackoff: time.Minute, MaxBackoff: time.Minute,
				MaxQueueSamples: 1 << 40, MaxQueueBytes: 1 << 50, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			s := benchSamples(size, t0)
			ctx := context.Background()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for i := 0; b.Loop(); i++ {
				for j := range s {
					s[j].Time = t0.Add(time.Duration(i) * time.Second)
				}
				if err := w.Append(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			report(b, b.N*size, time.Since(start), cpuTime()-cpu0)
		})
	}
}

// BenchmarkSend measures the whole path to an HTTP receiver that reads and
// discards the requests: Append, the queue, encoding, snappy, the POST and
// the deletion, until the queue is empty. The campus appends a tick of
// every point at a time; here ticks of 1,000 points.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w, err := Open(Config{URL: srv.URL, Dir: b.TempDir(), BatchWait: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	const size = 1000
	s := benchSamples(size, t0)
	ctx := context.Background()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; b.Loop(); i++ {
		for j := range s {
			s[j].Time = t0.Add(time.Duration(i) * time.Second)
		}
		if err := w.Append(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	report(b, b.N*size, time.Since(start), cpuTime()-cpu0)
}
