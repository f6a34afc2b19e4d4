package remotewrite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"

	"github.com/citymesh/citymesh/twin/history"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []history.Sample
	}{
		{"one", gen("a/t", t0, 1)},
		{"one series", gen("a/t", t0, 100)},
		{"empty labels and odd values", []history.Sample{
			{Point: "p", Time: t0, Value: math.Inf(-1)},
			{Point: "p", Time: t0.Add(-time.Hour), Value: math.NaN()},
			{Point: "q", Unit: "°C", Tenant: "t1", Time: time.UnixMilli(0), Value: -0},
		}},
		{"interleaved", append(gen("a/t", t0, 5), gen("b/t", t0, 5)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := first(encodeRecord(nil, tc.samples, map[series]int{}, nil))
			n, minT, err := recordHeader(rec)
			if err != nil || n != len(tc.samples) {
				t.Fatalf("header: %d, %v; want %d", n, err, len(tc.samples))
			}
			wantMin := int64(math.MaxInt64)
			for _, s := range tc.samples {
				wantMin = min(wantMin, s.Time.UnixMilli())
			}
			if minT != wantMin {
				t.Errorf("min time %d, want %d", minT, wantMin)
			}
			ss, qs, err := decodeRecord(rec, []series{{Point: "before"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.samples {
				q := qs[i]
				if ss[q.series] != seriesOf(&s) || q.ms != s.Time.UnixMilli() ||
					math.Float64bits(q.value) != math.Float64bits(s.Value) {
					t.Errorf("sample %d: %+v %+v, want %+v", i, ss[q.series], q, s)
				}
			}
		})
	}
}

func TestRecordBadInput(t *testing.T) {
	good := first(encodeRecord(nil, append(gen("a/t", t0, 3), gen("b/t", t0, 2)...), map[series]int{}, nil))
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad version", append([]byte{9}, good[1:]...)},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"series index out of range", func() []byte {
			b := first(encodeRecord(nil, gen("a/t", t0, 1), map[series]int{}, nil))
			// The record ends with the sample: series index (one
			// byte), time, value; one series, so index 5 is out of range.
			i := len(b) - 8 - len(binary.AppendVarint(nil, t0.UnixMilli())) - 1
			b[i] = 5
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeRecord(tc.b, nil, nil); !errors.Is(err, errBadRecord) {
				t.Errorf("decode: %v, want errBadRecord", err)
			}
		})
	}
	for i := range len(good) {
		if _, _, err := decodeRecord(good[:i], nil, nil); err == nil {
			t.Errorf("record cut at %d of %d decoded", i, len(good))
		}
	}
}

// TestWriterDeliversExactlyOnceInOrder appends from several goroutines in
// chunks that do not line up with the requests, and checks that the
// receiver got every sample once, each point's in time order, with the
// protocol's headers and label rules.
func TestWriterDeliversExactlyOnceInOrder(t *testing.T) {
	r := newReceiver(t)
	w, err := Open(testConfig(t, r.url(), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var all []history.Sample
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := range 4 {
		var mine []history.Sample
		for p := range 5 {
			mine = append(mine, gen(fmt.Sprintf("asset%d/point%d", g, p), t0, 400)...)
		}
		// Interleave the points, as the twin appends a tick of every
		// point at a time.
		var inter []history.Sample
		for i := range 400 {
			for p := range 5 {
				inter = append(inter, mine[p*400+i])
			}
		}
		all = append(all, inter...)
		wg.Go(func() {
			for len(inter) > 0 {
				n := min(37, len(inter))
				if err := w.Append(context.Background(), inter[:n]); err != nil {
					mu.Lock()
					t.Error(err)
					mu.Unlock()
					return
				}
				inter = inter[n:]
			}
		})
	}
	wg.Wait()
	flush(t, w, 10*time.Second)
	r.check()
	expectExactlyOnce(t, r.takenCopy(), all)
	if got := testutil.ToFloat64(w.m.sent); got != float64(len(all)) {
		t.Errorf("sent_samples_total = %v, want %d", got, len(all))
	}
	if s := w.Stats(); s.QueuedSamples != 0 || s.QueuedBytes != 0 || s.Lag != 0 {
		t.Errorf("stats after flush: %+v", s)
	}
	// Labels: __name__ first, empty ones (tenant) left out.
	got := r.labels["asset0/point0"]
	want := []prompb.Label{
		{Name: "__name__", Value: MetricName}, {Name: "asset", Value: "meter-asset0/point0"},
		{Name: "asset_kind", Value: "meter"}, {Name: "point", Value: "asset0/point0"},
		{Name: "quantity", Value: "energy"}, {Name: "site", Value: "campus"}, {Name: "unit", Value: "kWh"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

// TestWriterSortsWithinRequest appends a point's samples out of time order
// in one Append: the request carries them sorted.
func TestWriterSortsWithinRequest(t *testing.T) {
	r := newReceiver(t)
	w, err := Open(testConfig(t, r.url(), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := gen("a/t", t0, 10)
	rev := make([]history.Sample, len(s))
	for i := range s {
		rev[i] = s[len(s)-1-i]
	}
	if err := w.Append(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	flush(t, w, 5*time.Second)
	r.check()
	expectExactlyOnce(t, r.takenCopy(), s)
}

// TestWriterAnswers checks what the writer does with each kind of answer:
// retries 5xx, 429 and network errors until the receiver takes the
// request; drops a request refused with another 4xx, and counts it.
func TestWriterAnswers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		answers     []int // the first requests' statuses, then 200
		wantTaken   bool
		wantRetries float64
		wantFailed  float64
		wantDropped float64
	}{
		{"200", nil, true, 0, 0, 0},
		{"204", []int{204}, true, 0, 0, 0},
		{"500 500 500 then 200", []int{500, 500, 500}, true, 3, 3, 0},
		{"503 then 200", []int{503}, true, 1, 1, 0},
		{"429 429 then 200", []int{429, 429}, true, 2, 2, 0},
		{"400 dropped", []int{400}, false, 0, 1, 20},
		{"413 dropped", []int{413}, false, 0, 1, 20},
		{"404 dropped", []int{404}, false, 0, 1, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t)
			r.setAnswer(func(n int) int {
				if n < len(tc.answers) {
					return tc.answers[n]
				}
				return 200
			})
			w, err := Open(testConfig(t, r.url(), t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			first := gen("a/t", t0, 20)
			if err := w.Append(context.Background(), first); err != nil {
				t.Fatal(err)
			}
			flush(t, w, 10*time.Second)
			// A second batch after the first answer is always taken.
			second := gen("a/t", t0.Add(time.Hour), 5)
			if err := w.Append(context.Background(), second); err != nil {
				t.Fatal(err)
			}
			flush(t, w, 10*time.Second)
			r.check()
			want := second
			if tc.wantTaken {
				want = append(first, second...)
			}
			expectExactlyOnce(t, r.takenCopy(), want)
			for _, m := range []struct {
				name string
				c    prometheus.Counter
				want float64
			}{
				{"retries", w.m.retries, tc.wantRetries},
				{"failed", w.m.failed, tc.wantFailed},
				{"dropped", w.m.dropped, tc.wantDropped},
				{"sent", w.m.sent, float64(len(want))},
			} {
				if got := testutil.ToFloat64(m.c); got != m.want {
					t.Errorf("%s = %v, want %v", m.name, got, m.want)
				}
			}
		})
	}
}

// TestWriterNetworkErrorRetried points the writer at a port where nothing
// listens, then starts a receiver there: what was appended arrives.
func TestWriterNetworkErrorRetried(t *testing.T) {
	r := newReceiver(t)
	addr := r.srv.Listener.Addr().String()
	r.srv.Close() // nothing listens now
	w, err := Open(testConfig(t, "http://"+addr+"/api/v1/write", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := gen("a/t", t0, 50)
	if err := w.Append(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "two failed attempts", func() bool { return testutil.ToFloat64(w.m.failed) >= 2 })
	r2 := newReceiverAt(t, addr)
	flush(t, w, 10*time.Second)
	r2.check()
	expectExactlyOnce(t, r2.takenCopy(), s)
	if testutil.ToFloat64(w.m.retries) < 2 {
		t.Errorf("retries = %v, want ≥ 2", testutil.ToFloat64(w.m.retries))
	}
}

// newReceiverAt starts a receiver on addr (retrying while the port is
// being released).
func newReceiverAt(t *testing.T, addr string) *receiver {
	r := &receiver{t: t, taken: map[string][]prompb.Sample{}, labels: map[string][]prompb.Label{}}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	var err error
	waitFor(t, 5*time.Second, "listening on "+addr, func() bool {
		var l net.Listener
		l, err = net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		r.srv.Listener = l
		return true
	})
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// TestWriterQueueFull fills the quota while the receiver is down: the
// Append that does not fit fails with ErrQueueFull and takes nothing;
// once the queue drains, Append takes samples again.
func TestWriterQueueFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
	}{
		{"samples", func(c *Config) { c.MaxQueueSamples = 100 }},
		{"bytes", func(c *Config) {
			c.MaxQueueBytes = int64(len(first(encodeRecord(nil, gen("a/t", t0, 60), map[series]int{}, nil)))) + 60
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t)
			var down sync.Mutex
			isDown := true
			r.setAnswer(func(int) int {
				down.Lock()
				defer down.Unlock()
				if isDown {
					return 503
				}
				return 200
			})
			cfg := testConfig(t, r.url(), t.TempDir())
			tc.cfg(&cfg)
			w, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			first := gen("a/t", t0, 60)
			if err := w.Append(context.Background(), first); err != nil {
				t.Fatal(err)
			}
			before := w.Stats()
			err = w.Append(context.Background(), gen("a/t", t0.Add(time.Hour), 50))
			if !errors.Is(err, ErrQueueFull) {
				t.Fatalf("append over quota: %v, want ErrQueueFull", err)
			}
			if after := w.Stats(); after.QueuedSamples != before.QueuedSamples || after.QueuedBytes != before.QueuedBytes {
				t.Errorf("a refused append changed the queue: %+v → %+v", before, after)
			}
			if got := testutil.ToFloat64(w.m.rejected); got != 50 {
				t.Errorf("rejected = %v, want 50", got)
			}
			down.Lock()
			isDown = false
			down.Unlock()
			flush(t, w, 10*time.Second)
			again := gen("a/t", t0.Add(2*time.Hour), 50)
			if err := w.Append(context.Background(), again); err != nil {
				t.Fatalf("append after the queue drained: %v", err)
			}
			flush(t, w, 10*time.Second)
			r.check()
			expectExactlyOnce(t, r.takenCopy(), append(first, again...))
		})
	}
}

// TestWriterCloseWhileDownKeepsQueue closes a writer whose receiver is
// down; a writer opened on the same directory later sends everything, once.
func TestWriterCloseWhileDownKeepsQueue(t *testing.T) {
	r := newReceiver(t)
	r.setAnswer(func(int) int { return 500 })
	dir := t.TempDir()
	w, err := Open(testConfig(t, r.url(), dir))
	if err != nil {
		t.Fatal(err)
	}
	var all []history.Sample
	for i := range 10 {
		s := gen("a/t", t0.Add(time.Duration(i)*time.Hour), 100)
		all = append(all, s...)
		if err := w.Append(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "a failed attempt", func() bool { return testutil.ToFloat64(w.m.failed) >= 1 })
	queued := w.Stats()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), all[:1]); err == nil {
		t.Error("append to a closed writer succeeded")
	}
	if queued.QueuedSamples != 1000 || queued.Lag <= 0 {
		t.Errorf("stats while down: %+v, want 1000 samples and a lag", queued)
	}

	// The reopened writer sends to a receiver of its own that answers 2xx:
	// a request of the closed writer still on its way to the first one
	// (Close does not wait for the receiver to read it) must not be taken
	// there as if it were new.
	// It answers 503 until the reopened queue has been looked at, since the
	// writer starts sending as soon as it is open.
	r2 := newReceiver(t)
	r2.setAnswer(func(int) int { return 503 })
	w, err = Open(testConfig(t, r2.url(), dir))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if s := w.Stats(); s.QueuedSamples != 1000 || s.QueuedBytes != queued.QueuedBytes {
		t.Errorf("reopened queue: %+v, want %+v", s, queued)
	}
	r2.setAnswer(nil)
	flush(t, w, 10*time.Second)
	// r is not checked: Close cuts a request to it short on purpose, which
	// it sees as a body ending early.
	r2.check()
	expectExactlyOnce(t, r2.takenCopy(), all)
}

// TestWriterReopenAfterCleanClose sends, closes, reopens and sends more:
// nothing is sent twice.
func TestWriterReopenAfterCleanClose(t *testing.T) {
	r := newReceiver(t)
	dir := t.TempDir()
	var all []history.Sample
	for round := range 3 {
		w, err := Open(testConfig(t, r.url(), dir))
		if err != nil {
			t.Fatal(err)
		}
		s := gen("a/t", t0.Add(time.Duration(round)*time.Hour), 700)
		all = append(all, s...)
		if err := w.Append(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		flush(t, w, 10*time.Second)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r.check()
	expectExactlyOnce(t, r.takenCopy(), all)
}

func TestWriterMetrics(t *testing.T) {
	r := newReceiver(t)
	w, err := Open(testConfig(t, r.url(), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append(context.Background(), gen("a/t", t0, 10)); err != nil {
		t.Fatal(err)
	}
	flush(t, w, 5*time.Second)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(w); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP citymesh_remote_write_queued_samples Samples in the durable queue, not yet sent.
# TYPE citymesh_remote_write_queued_samples gauge
citymesh_remote_write_queued_samples 0
# HELP citymesh_remote_write_sent_samples_total Samples the remote write receiver took (2xx).
# TYPE citymesh_remote_write_sent_samples_total counter
citymesh_remote_write_sent_samples_total 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"citymesh_remote_write_queued_samples", "citymesh_remote_write_sent_samples_total"); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n != 9 {
		t.Errorf("%d metrics (%v), want 9", n, err)
	}
}

func TestConfigBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no url", Config{Dir: dir}, "url is required"},
		{"bad scheme", Config{URL: "ftp://x/", Dir: dir}, "want http"},
		{"no host", Config{URL: "http:///write", Dir: dir}, "want http"},
		{"no dir", Config{URL: "http://x/"}, "dir"},
		{"two auths", Config{URL: "http://x/", Dir: dir, BearerToken: "t", BasicAuth: &BasicAuth{Username: "u"}}, "exclusive"},
		{"password twice", Config{URL: "http://x/", Dir: dir, BasicAuth: &BasicAuth{Username: "u", Password: "p", PasswordFile: "f"}}, "exclusive"},
		{"negative", Config{URL: "http://x/", Dir: dir, MaxQueueBytes: -1}, "negative"},
		{"protocol header", Config{URL: "http://x/", Dir: dir, Headers: map[string]string{"content-type": "x"}}, "set by the writer"},
		{"missing token file", Config{URL: "http://x/", Dir: dir, BearerTokenFile: dir + "/none"}, "bearer_token_file"},
		{"missing CA", Config{URL: "https://x/", Dir: dir, TLS: TLSConfig{CAFile: dir + "/none"}}, "ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Open(tc.cfg)
			if err == nil {
				w.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestWriterAuthAndHeaders checks the Authorization and extra headers.
func TestWriterAuthAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(c *Config, dir string)
		want string
	}{
		{"basic", func(c *Config, _ string) { c.BasicAuth = &BasicAuth{Username: "u", Password: "p"} }, "Basic dTpw"},
		{"bearer", func(c *Config, _ string) { c.BearerToken = "tok" }, "Bearer tok"},
		{"bearer file", func(c *Config, dir string) {
			f := dir + "/token"
			if err := os.WriteFile(f, []byte("filetok\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c.BearerTokenFile = f
		}, "Bearer filetok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var auth, org string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				auth, org = r.Header.Get("Authorization"), r.Header.Get("X-Scope-OrgID")
				mu.Unlock()
			}))
			defer srv.Close()
			dir := t.TempDir()
			cfg := testConfig(t, srv.URL, dir+"/q")
			cfg.Headers = map[string]string{"X-Scope-OrgID": "city"}
			tc.cfg(&cfg, dir)
			w, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.Append(context.Background(), gen("a/t", t0, 1)); err != nil {
				t.Fatal(err)
			}
			flush(t, w, 5*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if auth != tc.want || org != "city" {
				t.Errorf("Authorization %q, X-Scope-OrgID %q; want %q, city", auth, org, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		want *= time.Millisecond
		for range 50 {
			d := backoff(lo, hi, attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := backoff(lo, hi, 1000); d > hi {
		t.Errorf("attempt 1000: %v", d)
	}
}

func first[A, B any](a A, _ B) A { return a }
