// Package remotewrite sends the twin's history to a distributed
// time-series database (VictoriaMetrics, Mimir, Thanos receive, Cortex,
// Prometheus itself) with Prometheus remote write 1.0, through a durable
// queue on disk: what Append accepted is sent, in order, once the database
// answers, whatever the outages of the database or crashes of the process
// in between.
//
// The protocol is the one of the Prometheus Remote-Write Specification 1.0
// (https://prometheus.io/docs/specs/remote_write_spec/): a POST of a
// snappy-compressed (block format) protobuf WriteRequest, with the headers
// Content-Encoding: snappy, Content-Type: application/x-protobuf and
// X-Prometheus-Remote-Write-Version: 0.1.0; labels sorted by name, no
// empty label value, the samples of a series in time order; a request
// answered 5xx (or 429) is retried with back-off, one answered with
// another 4xx is not.
package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citymesh/citymesh/twin/history"
)

// A Writer is a history.Sink that queues samples durably and sends them to
// a remote write receiver. Open one with Open; Close it to stop sending.
// Its methods are safe for concurrent use.
type Writer struct {
	cfg    Config
	client *http.Client
	q      *queue
	user   string
	pass   string
	bearer string

	closeMu sync.RWMutex // held for reading by Append, for writing by Close
	closed  bool

	notify chan struct{} // Append's and Flush's wake-up call to the sender
	cancel context.CancelFunc
	done   chan struct{} // closed when the sender has returned

	flushMu  sync.Mutex
	flushing int           // Flush calls waiting
	emptied  chan struct{} // closed, and replaced, when the queue runs empty

	m metrics
}

var _ history.Sink = (*Writer)(nil)

// Open opens the queue in cfg.Dir (what an earlier Writer left in it is
// sent first) and starts the sender.
func Open(cfg Config) (*Writer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	user, pass, bearer, err := cfg.authorization()
	if err != nil {
		return nil, err
	}
	client, err := cfg.client()
	if err != nil {
		return nil, err
	}
	q, err := openQueue(cfg.Dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		cfg: cfg, client: client, q: q, user: user, pass: pass, bearer: bearer,
		notify: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
		emptied: make(chan struct{}),
	}
	w.m = newMetrics(q)
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
	return w, nil
}

// Append queues samples and returns once they are synced to disk: from
// then on they are sent even if the process is killed, after it restarts.
// It returns an error wrapping ErrQueueFull, having taken none of them,
// when they would take the queue over its quota. A sample's time is kept
// to the millisecond, the protocol's precision.
func (w *Writer) Append(ctx context.Context, samples []history.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.closeMu.RLock()
	defer w.closeMu.RUnlock()
	if w.closed {
		return errors.New("remotewrite: append to a closed writer")
	}
	max := w.cfg.MaxSamplesPerSend
	nrec := (len(samples) + max - 1) / max
	records := make([][]byte, 0, nrec)
	counts := make([]int, 0, nrec)
	mins := make([]int64, 0, nrec)
	index := make(map[series]int, min(len(samples), max))
	var idx []int
	for len(samples) > 0 {
		part := samples[:min(max, len(samples))]
		samples = samples[len(part):]
		var r []byte
		r, idx = encodeRecord(nil, part, index, idx)
		_, m, _ := recordHeader(r)
		records = append(records, r)
		counts = append(counts, len(part))
		mins = append(mins, m)
	}
	if err := w.q.push(records, counts, mins, w.cfg.MaxQueueSamples, w.cfg.MaxQueueBytes); err != nil {
		if errors.Is(err, ErrQueueFull) {
			w.m.rejected.Add(float64(sum(counts)))
		}
		return err
	}
	select {
	case w.notify <- struct{}{}:
	default:
	}
	return nil
}

func sum(n []int) int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}

// Flush waits until the queue is empty (everything appended before and
// while it waits has been sent, or dropped by the receiver), or ctx ends.
// The sender does not wait for a batch to fill up while Flush waits.
func (w *Writer) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	if n, _, _ := w.q.stats(); n == 0 {
		w.flushMu.Unlock()
		return nil
	}
	ch := w.emptied
	w.flushing++
	w.flushMu.Unlock()
	defer func() {
		w.flushMu.Lock()
		w.flushing--
		w.flushMu.Unlock()
	}()
	select {
	case w.notify <- struct{}{}:
	default:
	}
	select {
	case <-ch:
		return nil
	case <-w.done:
		return errors.New("remotewrite: writer closed before the queue was empty")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the sender (a request in flight is abandoned, to be sent
// again by the next Writer on the same directory) and closes the queue.
// What is still queued stays on disk.
func (w *Writer) Close() error {
	w.cancel()
	<-w.done
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	w.client.CloseIdleConnections()
	return w.q.close()
}

// run is the sender: it reads the queue in order, sends, and deletes what
// the receiver took.
func (w *Writer) run(ctx context.Context) {
	var (
		cursor uint64
		ss     []series
		qs     []qsample
		enc    encoder
	)
	for {
		n, _, _ := w.q.stats()
		if n == 0 {
			w.signalEmpty()
			select {
			case <-ctx.Done():
				return
			case <-w.notify:
			}
			continue
		}
		if n < int64(w.cfg.MaxSamplesPerSend) && !w.isFlushing() {
			if !w.waitBatch(ctx) {
				return
			}
		}
		var sp span
		var err error
		ss, qs, sp, err = w.q.read(cursor, w.cfg.MaxSamplesPerSend, ss[:0], qs[:0])
		if err != nil {
			// A damaged record cannot be sent; nothing after it can be
			// skipped to without losing order. Report and retry later.
			w.cfg.Logger.Error("remotewrite: reading the queue", "err", err)
			if !sleep(ctx, w.cfg.MaxBackoff) {
				return
			}
			continue
		}
		if sp.samples == 0 {
			// The counters say there is something, but it is behind
			// the cursor: cannot happen, as records are committed in
			// order; resynchronise from the start rather than spin.
			cursor = 0
			if !sleep(ctx, w.cfg.MinBackoff) {
				return
			}
			continue
		}
		body, err := enc.encode(ss, qs)
		if err != nil {
			w.cfg.Logger.Error("remotewrite: encoding a request", "err", err)
			if !sleep(ctx, w.cfg.MaxBackoff) {
				return
			}
			continue
		}
		sent, ok := w.send(ctx, body, sp.samples)
		if !ok {
			return
		}
		if err := w.q.remove(sp); err != nil {
			w.cfg.Logger.Error("remotewrite: deleting sent records", "err", err)
		}
		cursor = sp.to
		if sent {
			w.m.sent.Add(float64(sp.samples))
		} else {
			w.m.dropped.Add(float64(sp.samples))
		}
	}
}

func (w *Writer) isFlushing() bool {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	return w.flushing > 0
}

func (w *Writer) signalEmpty() {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	if n, _, _ := w.q.stats(); n == 0 {
		close(w.emptied)
		w.emptied = make(chan struct{})
	}
}

// waitBatch waits for a full batch, for BatchWait, or for a Flush; false
// when ctx ended.
func (w *Writer) waitBatch(ctx context.Context) bool {
	t := time.NewTimer(w.cfg.BatchWait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-w.notify:
			if n, _, _ := w.q.stats(); n >= int64(w.cfg.MaxSamplesPerSend) || w.isFlushing() {
				return true
			}
		}
	}
}

// send posts body until the receiver takes it (sent), or refuses it for
// good with a 4xx other than 429 (not sent, dropped); ok is false when ctx
// ended first.
func (w *Writer) send(ctx context.Context, body []byte, samples int64) (sent, ok bool) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			w.m.retries.Inc()
		}
		status, retryAfter, err := w.post(ctx, body)
		switch {
		case ctx.Err() != nil:
			return false, false
		case status/100 == 2:
			return true, true
		case status/100 == 4 && status != http.StatusTooManyRequests:
			w.m.failed.Inc()
			w.cfg.Logger.Error("remotewrite: receiver refused a request; its samples are dropped",
				"url", w.cfg.URL, "status", status, "err", err, "samples", samples)
			return false, true
		}
		w.m.failed.Inc()
		d := backoff(w.cfg.MinBackoff, w.cfg.MaxBackoff, attempt)
		if retryAfter > d {
			d = min(retryAfter, w.cfg.MaxBackoff)
		}
		if attempt == 0 || attempt%10 == 9 {
			w.cfg.Logger.Warn("remotewrite: request failed; retrying",
				"url", w.cfg.URL, "status", status, "err", err, "attempt", attempt+1, "wait", d)
		}
		if !sleep(ctx, d) {
			return false, false
		}
	}
}

// backoff is the wait before attempt+1: MinBackoff doubled per attempt, at
// most MaxBackoff, with "equal jitter" (half fixed, half random) so that
// many writers do not come back in step.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for range min(attempt, 30) {
		d *= 2
		if d >= hi {
			d = hi
			break
		}
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// post sends one request and returns the status (0 when there was no
// answer) and the Retry-After the receiver asked for (0 if none); the
// error describes a failure, with the first bytes of the answer's body.
func (w *Writer) post(ctx context.Context, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	h := req.Header
	for k, v := range w.cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Encoding", "snappy")
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("User-Agent", "citymesh-remote-write")
	h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	switch {
	case w.user != "":
		req.SetBasicAuth(w.user, w.pass)
	case w.bearer != "":
		h.Set("Authorization", "Bearer "+w.bearer)
	}
	start := time.Now()
	resp, err := w.client.Do(req)
	w.m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	// Drain (a little of) the body so the connection is reused; keep a
	// line of an error for the log.
	var msg []byte
	if resp.StatusCode/100 != 2 {
		msg, _ = io.ReadAll(io.LimitReader(resp.Body, 256))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	var ra time.Duration
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(s); err == nil && secs > 0 {
			ra = time.Duration(secs) * time.Second
		}
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, ra, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return resp.StatusCode, ra, nil
}

// Stats is a snapshot of a Writer's counters.
type Stats struct {
	// QueuedSamples and QueuedBytes are what the queue holds.
	QueuedSamples, QueuedBytes int64
	// Lag is the age of the oldest queued sample (0 when empty).
	Lag time.Duration
}

// Stats returns the queue's current size and lag.
func (w *Writer) Stats() Stats {
	n, b, head := w.q.stats()
	s := Stats{QueuedSamples: n, QueuedBytes: b}
	if n > 0 {
		s.Lag = max(0, time.Since(time.UnixMilli(head)))
	}
	return s
}

// metrics are the Writer's Prometheus collectors.
type metrics struct {
	sent, dropped, rejected, failed, retries prometheus.Counter
	duration                                 prometheus.Histogram
	gauges                                   []prometheus.Collector
}

func newMetrics(q *queue) metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "citymesh_remote_write_" + name, Help: help})
	}
	return metrics{
		sent:     c("sent_samples_total", "Samples the remote write receiver took (2xx)."),
		dropped:  c("dropped_samples_total", "Samples dropped because the receiver refused their request with a 4xx other than 429."),
		rejected: c("rejected_samples_total", "Samples Append refused because the queue was full."),
		failed:   c("failed_requests_total", "Requests that failed: network errors, 5xx, 429 (retried) and other 4xx (dropped)."),
		retries:  c("retries_total", "Requests sent again after a failure."),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "citymesh_remote_write_request_duration_seconds",
			Help:    "Duration of remote write requests, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		gauges: []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "citymesh_remote_write_queued_samples", Help: "Samples in the durable queue, not yet sent.",
			}, func() float64 { n, _, _ := q.stats(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "citymesh_remote_write_queued_bytes", Help: "Bytes of the records in the durable queue (before Pebble's compression).",
			}, func() float64 { _, b, _ := q.stats(); return float64(b) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "citymesh_remote_write_lag_seconds", Help: "Age of the oldest sample in the queue (its observed time), 0 when the queue is empty.",
			}, func() float64 {
				n, _, head := q.stats()
				if n == 0 {
					return 0
				}
				return max(0, time.Since(time.UnixMilli(head)).Seconds())
			}),
		},
	}
}

func (m *metrics) all() []prometheus.Collector {
	return append([]prometheus.Collector{m.sent, m.dropped, m.rejected, m.failed, m.retries, m.duration}, m.gauges...)
}

// Describe implements prometheus.Collector: register the Writer to export
// its metrics.
func (w *Writer) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range w.m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (w *Writer) Collect(ch chan<- prometheus.Metric) {
	for _, c := range w.m.all() {
		c.Collect(ch)
	}
}
