package remotewrite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/citymesh/citymesh/twin/history"
)

// receiver is a remote write receiver for the tests: it decodes every
// request independently of the writer (github.com/golang/snappy and the
// generated protobuf code), checks the protocol's headers and rules, and
// records the samples it took, per point, in arrival order.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	answer   func(n int) int // status for the n-th request (from 0); 200 when nil
	requests int
	taken    map[string][]prompb.Sample // per point label, samples of 2xx requests
	labels   map[string][]prompb.Label
	problems []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, taken: map[string][]prompb.Sample{}, labels: map[string][]prompb.Label{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/api/v1/write" }

func (r *receiver) setAnswer(f func(n int) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *receiver) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.requests
	r.requests++
	status := http.StatusOK
	if r.answer != nil {
		status = r.answer(n)
	}
	for h, want := range map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
	} {
		if got := req.Header.Get(h); got != want {
			r.problem("request %d: %s = %q, want %q", n, h, got, want)
		}
	}
	if req.Method != http.MethodPost {
		r.problem("request %d: method %s", n, req.Method)
	}
	if err != nil {
		r.problem("request %d: read: %v", n, err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		r.problem("request %d: snappy: %v", n, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		r.problem("request %d: protobuf: %v", n, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if status/100 == 2 {
		for _, ts := range wr.Timeseries {
			if !slices.IsSortedFunc(ts.Labels, func(a, b prompb.Label) int { return cmpString(a.Name, b.Name) }) {
				r.problem("request %d: labels not sorted: %v", n, ts.Labels)
			}
			point := ""
			for _, l := range ts.Labels {
				if l.Value == "" {
					r.problem("request %d: empty label %s", n, l.Name)
				}
				if l.Name == "point" {
					point = l.Value
				}
			}
			if !slices.IsSortedFunc(ts.Samples, cmpSample) {
				r.problem("request %d: samples of %s not in time order", n, point)
			}
			r.taken[point] = append(r.taken[point], ts.Samples...)
			r.labels[point] = ts.Labels
		}
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "0")
	}
	w.WriteHeader(status)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// check fails the test on any protocol problem the receiver saw.
func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		r.t.Error(p)
	}
}

// takenCopy returns the samples taken so far, per point.
func (r *receiver) takenCopy() map[string][]prompb.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]prompb.Sample, len(r.taken))
	for k, v := range r.taken {
		out[k] = slices.Clone(v)
	}
	return out
}

var t0 = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

// gen returns n samples of point p, one a second from start, with values
// that tell them apart.
func gen(p string, start time.Time, n int) []history.Sample {
	out := make([]history.Sample, n)
	for i := range out {
		out[i] = history.Sample{
			Point: p, Asset: "meter-" + p, AssetKind: "meter", Quantity: "energy", Unit: "kWh",
			Site: "campus", Time: start.Add(time.Duration(i) * time.Second), Value: float64(i) + 0.5,
		}
	}
	return out
}

// expectExactlyOnce checks that the receiver took every sample of want,
// once, per point in time order.
func expectExactlyOnce(t *testing.T, got map[string][]prompb.Sample, want []history.Sample) {
	t.Helper()
	per := map[string][]prompb.Sample{}
	for _, s := range want {
		per[s.Point] = append(per[s.Point], prompb.Sample{Timestamp: s.Time.UnixMilli(), Value: s.Value})
	}
	if len(got) != len(per) {
		t.Errorf("receiver has %d points, want %d", len(got), len(per))
	}
	for p, w := range per {
		if !slices.EqualFunc(got[p], w, sameSample) {
			t.Errorf("point %s: receiver took %d samples, want %d (first difference at %d)", p, len(got[p]), len(w), firstDiff(got[p], w))
		}
	}
}

func sameSample(a, b prompb.Sample) bool { return a.Timestamp == b.Timestamp && a.Value == b.Value }

func firstDiff(a, b []prompb.Sample) int {
	for i := range min(len(a), len(b)) {
		if !sameSample(a[i], b[i]) {
			return i
		}
	}
	return min(len(a), len(b))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func flush(t *testing.T, w *Writer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// testConfig is a configuration with short waits for the tests.
func testConfig(t *testing.T, url, dir string) Config {
	return Config{
		URL: url, Dir: dir, MaxSamplesPerSend: 500, BatchWait: 20 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Timeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
}
