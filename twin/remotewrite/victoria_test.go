package remotewrite

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citymesh/citymesh/twin/history"
)

// victoriaBinary is where Debian's victoria-metrics package installs the
// single-node server.
const victoriaBinary = "/usr/bin/victoria-metrics"

// victoria is a VictoriaMetrics server the test started, on loopback.
type victoria struct {
	t    *testing.T
	addr string
	data string
	cmd  *exec.Cmd
	log  *os.File
}

func startVictoria(t *testing.T, addr, data string) *victoria {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(data), "victoria.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	v := &victoria{t: t, addr: addr, data: data, log: logf}
	v.cmd = exec.Command(victoriaBinary,
		"-httpListenAddr="+addr,
		"-storageDataPath="+data,
		"-retentionPeriod=1",
		// Make what was just written visible to queries at once.
		"-search.latencyOffset=0s",
		"-search.disableCache",
		"-loggerLevel=WARN",
	)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "VictoriaMetrics /health", func() bool {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return v
}

// stop ends the server by its PID with SIGTERM, VictoriaMetrics's clean
// shutdown, and waits for it.
func (v *victoria) stop() {
	if v.cmd == nil {
		return
	}
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = v.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = v.cmd.Process.Kill()
		<-done
		v.t.Error("VictoriaMetrics did not stop on SIGTERM within 15 s; killed")
	}
	v.cmd = nil
	v.log.Close()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestVictoriaMetricsEndToEnd writes 50,000 samples of 500 points through
// the Writer into a real VictoriaMetrics, stops and restarts the database
// mid-stream (on the same data path), and reads everything back with
// /api/v1/export: every sample is there, none twice.
func TestVictoriaMetricsEndToEnd(t *testing.T) {
	if _, err := os.Stat(victoriaBinary); err != nil {
		t.Skipf("%s not found (Debian package victoria-metrics; .ci/run installs it): %v", victoriaBinary, err)
	}
	if testing.Short() {
		t.Skip("starts VictoriaMetrics")
	}
	root := t.TempDir()
	addr := freeAddr(t)
	data := filepath.Join(root, "vm-data")
	vm := startVictoria(t, addr, data)
	defer func() { vm.stop() }()

	const points, ticks = 500, 100
	cfg := Config{
		URL: "http://" + addr + "/api/v1/write", Dir: filepath.Join(root, "queue"),
		MaxSamplesPerSend: 5000, BatchWait: 50 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Timeout: 5 * time.Second,
	}
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Recent times, inside VictoriaMetrics's retention: one sample every
	// 10 s per point, ending a minute ago.
	start := time.Now().Add(-time.Duration(ticks)*10*time.Second - time.Minute).Truncate(time.Second)
	tick := func(i int) []history.Sample {
		s := make([]history.Sample, points)
		for p := range s {
			s[p] = history.Sample{
				Point: fmt.Sprintf("meter%03d/energy", p), Asset: fmt.Sprintf("meter%03d", p), AssetKind: "meter",
				Quantity: "energy", Unit: "kWh", Site: "campus", Tenant: fmt.Sprintf("t%d", p%4),
				Time: start.Add(time.Duration(i) * 10 * time.Second), Value: float64(p*1000 + i),
			}
		}
		return s
	}
	began := time.Now()
	var downAt, upAt time.Time
	var failedBefore float64
	for i := range ticks {
		if err := w.Append(context.Background(), tick(i)); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 30:
			// Mid-stream: wait until part of it has been taken, then
			// stop the database while the writer keeps appending.
			waitFor(t, 10*time.Second, "some samples sent", func() bool { return w.Stats().QueuedSamples < int64((i+1)*points) })
			failedBefore = testutil.ToFloat64(w.m.failed)
			vm.stop()
			downAt = time.Now()
			t.Logf("VictoriaMetrics stopped with %d samples queued", w.Stats().QueuedSamples)
		case 60:
			// The appends since tick 30 ran while the database was
			// down; let the sender fail against it before restarting.
			waitFor(t, 10*time.Second, "failed attempts while down", func() bool {
				return testutil.ToFloat64(w.m.failed) >= failedBefore+2
			})
			vm = startVictoria(t, addr, data)
			upAt = time.Now()
			t.Logf("VictoriaMetrics restarted with %d samples queued", w.Stats().QueuedSamples)
		}
	}
	flush(t, w, 30*time.Second)
	elapsed := time.Since(began)
	down := upAt.Sub(downAt)
	sent := points * ticks
	t.Logf("%d samples sent through one restart in %v (database down %v): %.0f samples/s with the downtime, %.0f without; %v retries",
		sent, elapsed.Round(time.Millisecond), down.Round(time.Millisecond),
		float64(sent)/elapsed.Seconds(), float64(sent)/(elapsed-down).Seconds(), testutil.ToFloat64(w.m.retries))
	if got := testutil.ToFloat64(w.m.sent); got != float64(sent) {
		t.Errorf("sent_samples_total = %v, want %d", got, sent)
	}

	// Read everything back.
	if resp, err := http.Get("http://" + addr + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}
	q := url.Values{
		"match[]": {MetricName},
		"start":   {strconv.FormatInt(start.Add(-time.Minute).Unix(), 10)},
		"end":     {strconv.FormatInt(time.Now().Unix(), 10)},
	}
	resp, err := http.Get("http://" + addr + "/api/v1/export?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("export: %s: %s", resp.Status, b)
	}
	type line struct {
		Metric     map[string]string `json:"metric"`
		Values     []float64         `json:"values"`
		Timestamps []int64           `json:"timestamps"`
	}
	seen := map[string]bool{}
	total := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("export line: %v", err)
		}
		p := l.Metric["point"]
		if seen[p] {
			t.Errorf("point %s exported as two series", p)
		}
		seen[p] = true
		var n int
		if _, err := fmt.Sscanf(p, "meter%03d/energy", &n); err != nil {
			t.Errorf("unexpected point %q", p)
			continue
		}
		if l.Metric["tenant"] != fmt.Sprintf("t%d", n%4) || l.Metric["asset_kind"] != "meter" || l.Metric["unit"] != "kWh" {
			t.Errorf("point %s: labels %v", p, l.Metric)
		}
		if len(l.Timestamps) != ticks {
			t.Errorf("point %s: %d samples, want %d", p, len(l.Timestamps), ticks)
		}
		for i, ts := range l.Timestamps {
			if i >= ticks {
				break
			}
			wantTS := start.Add(time.Duration(i) * 10 * time.Second).UnixMilli()
			if ts != wantTS || l.Values[i] != float64(n*1000+i) {
				t.Errorf("point %s sample %d: %d=%v, want %d=%v", p, i, ts, l.Values[i], wantTS, float64(n*1000+i))
				break
			}
		}
		total += len(l.Timestamps)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != points || total != sent {
		t.Errorf("VictoriaMetrics holds %d samples of %d points, want %d of %d", total, len(seen), sent, points)
	}
}
