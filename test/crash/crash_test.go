// Package crash_test is the crash test of citymesh: it builds and runs the
// real citymesh binary, kills it with SIGKILL at random moments while MQTT 5
// clients publish and subscribe through it over TCP, starts it again on the
// same data directory and port, and then checks that the broker kept every
// promise it made to the clients.
//
// # What it proves
//
// Four publishers with persistent sessions publish numbered messages (payload
// "p{publisher}:{seq}" on topic crash/p{publisher}), two at QoS 1 and two at
// QoS 2, pipelined up to 50 unacknowledged each. Three persistent subscribers
// receive them through one QoS 2 subscription to crash/#, made on their first
// connection only. One subscriber reads steadily, one stalls now and then
// (messages queue in the broker while it is connected), one leaves now and
// then (messages queue for its offline session), so every kind of state the
// broker must keep is there at the moment of a kill. One publisher of each
// QoS drops its own connection now and then, so that the resend paths are
// exercised even without kills.
//
// The clients are written here on top of package mqtt and keep their session
// state in memory across reconnects, as correct MQTT 5 clients do: a
// publisher resends every unacknowledged PUBLISH (DUP=1, same packet
// identifier) and the PUBREL of every QoS 2 message whose PUBREC had arrived,
// in their original order, before anything new (MQTT 5.0 section 4.4); a
// subscriber is the QoS 2 receiver of section 4.3.3 Method B, holding the
// packet identifiers it has received and not yet seen released.
//
// A message counts as acknowledged, that is owned by the broker, when its
// PUBACK (QoS 1) or PUBREC (QoS 2) arrives with reason code 0x00. An error
// reason code (0x80 or above) is counted as a refusal; 0x10 No matching
// subscribers fails the test, since the subscriptions exist. After the last
// crash the test stops publishing, waits (up to 20 s, or 5 s without any
// progress) until everything is delivered, and fails unless:
//
//   - every acknowledged message reached every subscriber (LOSS);
//   - every QoS 2 message reached each subscriber at most once (DUPLICATE
//     QoS 2);
//   - per publisher, first arrivals at each subscriber are in increasing
//     sequence order (ORDER; QoS 1 redeliveries are duplicates, counted and
//     allowed);
//   - no message arrived that was never published (PHANTOM), at a QoS other
//     than its own, or with a packet identifier still held by an unreleased
//     QoS 2 exchange (BROKER: packet identifier reused);
//   - every persistent session survived each crash, that is CONNACK carried
//     Session Present 1 on every reconnect (SESSION LOST), and the broker
//     completed every QoS 2 exchange with PUBREL (UNRELEASED QoS 2).
//
// Messages that were published but never acknowledged may or may not arrive;
// they are counted. Lost messages are reported with the broker run that had
// acknowledged them. With CITYMESH_CRASH_CYCLES=0 the broker runs once and is
// never killed: that run checks the harness itself and must pass.
//
// # Running it
//
//	go test -race -count=1 -v ./test/crash/
//	CITYMESH_CRASH_CYCLES=0 go test -race -count=1 -v ./test/crash/       # harness self-check
//	CITYMESH_CRASH_CYCLES=200 go test -count=1 -timeout 30m ./test/crash/ # soak
//
// The test is skipped with -short. Environment variables:
//
//   - CITYMESH_CRASH_CYCLES: number of SIGKILL and restart cycles (default
//     5; 0 is the self-check without kills).
//   - CITYMESH_CRASH_SEED: seed of the random kill moments, 300 ms to 1.5 s
//     after each start (default: from the clock; the seed used is logged, so
//     a failing run's kill schedule can be repeated; client timing still
//     varies).
//   - CITYMESH_CRASH_SYNC: when set, passed to the broker as --sync VALUE.
//   - CITYMESH_CRASH_RATE: messages per second per publisher (default 500).
//
// On failure the test prints the first few offending publisher/sequence
// pairs of each kind, the broker's output of every run, and `citymesh store
// check` of its data directory. A global deadline (90 s plus 5 s per cycle,
// within go test's -timeout) bounds the test whatever the broker does, and
// no broker process outlives it (on Linux not even a killed test binary).
package crash_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/internal/testproc"
)

// The workload and its timing.
// pubSpec describes one publisher: its QoS, and whether it drops its own
// connection now and then (with messages inflight, to be resent on the next
// connection even when the broker is not killed).
type pubSpec struct {
	qos      byte
	dropping bool
}

var (
	publishers      = []pubSpec{{1, false}, {1, true}, {2, false}, {2, true}} // one publisher per entry
	subscriberModes = []subMode{steady, stalling, intermittent}               // one subscriber per entry
)

const (
	defaultCycles = 5
	defaultRate   = 500 // messages per second per publisher

	minKillDelay = 300 * time.Millisecond  // earliest kill after the broker came up
	maxKillDelay = 1500 * time.Millisecond // latest kill after the broker came up
	tailRun      = time.Second             // publishing on the last broker before stopping
	selfCheckRun = 3 * time.Second         // publishing when CITYMESH_CRASH_CYCLES=0
	setupTimeout = 10 * time.Second        // clients connected and subscribed
	drainTimeout = 20 * time.Second        // everything delivered after publishing stopped
	quietTimeout = 5 * time.Second         // no progress at all: stop waiting early
)

// config is the test's configuration from the environment.
type config struct {
	cycles   int
	seed     uint64
	syncMode string
	rate     int
}

// loadConfig reads the CITYMESH_CRASH_* environment variables.
func loadConfig(t *testing.T) config {
	t.Helper()
	cfg := config{cycles: defaultCycles, seed: uint64(time.Now().UnixNano()), rate: defaultRate}
	if v := os.Getenv("CITYMESH_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("CITYMESH_CRASH_CYCLES=%q: want a number >= 0", v)
		}
		cfg.cycles = n
	}
	if v := os.Getenv("CITYMESH_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CITYMESH_CRASH_SEED=%q: want an unsigned number", v)
		}
		cfg.seed = n
	}
	if v := os.Getenv("CITYMESH_CRASH_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("CITYMESH_CRASH_RATE=%q: want a number > 0", v)
		}
		cfg.rate = n
	}
	cfg.syncMode = os.Getenv("CITYMESH_CRASH_SYNC")
	return cfg
}

// harness is what the clients share with the test: a way to stop the
// workload for a fatal condition, a record of notable broker behaviour, and a
// progress counter.
type harness struct {
	cancel   context.CancelFunc // ends the workload
	progress atomic.Int64       // deliveries, acknowledgements and releases seen by any client
	run      atomic.Int32       // number of the broker run being started or running, from 1
	stopped  atomic.Bool        // publishing has stopped: subscribers stop stalling and leaving

	mu       sync.Mutex
	aborted  []string
	findings map[string]*finding
	order    []string // finding kinds in order of first occurrence
}

// finding is one kind of notable broker behaviour: how often it happened and
// the first few examples. A failing finding fails the test.
type finding struct {
	fails    bool
	count    int
	examples []string
}

// maxExamples is how many examples are kept of each finding and each
// verification failure.
const maxExamples = 5

// abort records a fatal condition, such as a lost session, and ends the
// workload.
func (h *harness) abort(format string, args ...any) {
	h.mu.Lock()
	h.aborted = append(h.aborted, fmt.Sprintf(format, args...))
	h.mu.Unlock()
	h.cancel()
}

// report records one occurrence of finding kind; fails says whether it fails
// the test.
func (h *harness) report(kind string, fails bool, format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.findings[kind]
	if f == nil {
		f = &finding{fails: fails}
		h.findings[kind] = f
		h.order = append(h.order, kind)
	}
	f.count++
	if len(f.examples) < maxExamples {
		f.examples = append(f.examples, fmt.Sprintf(format, args...))
	}
}

// abortedWith returns the fatal conditions recorded so far.
func (h *harness) abortedWith() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.aborted...)
}

// TestCrashRestart kills the citymesh broker with SIGKILL at random moments
// under a QoS 1 and QoS 2 workload of persistent sessions, restarts it on the
// same data directory, and verifies that no acknowledged message was lost,
// no QoS 2 message was duplicated, order was kept and no session was lost.
func TestCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds and kills the real broker; skipped with -short")
	}
	cfg := loadConfig(t)
	qos := make([]byte, len(publishers))
	var desc []string
	for i, p := range publishers {
		qos[i] = p.qos
		d := fmt.Sprintf("p%d QoS %d", i, p.qos)
		if p.dropping {
			d += " dropping"
		}
		desc = append(desc, d)
	}
	t.Logf("seed %d (CITYMESH_CRASH_SEED=%d CITYMESH_CRASH_CYCLES=%d to repeat the kill schedule); publishers %s at %d msg/s each, window %d; subscribers %v",
		cfg.seed, cfg.seed, cfg.cycles, strings.Join(desc, ", "), cfg.rate, window, subscriberModes)
	if cfg.syncMode != "" {
		t.Logf("broker runs with --sync %s", cfg.syncMode)
	}
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15))

	// One global deadline bounds the whole test, whatever the broker does.
	budget := 90*time.Second + time.Duration(cfg.cycles)*5*time.Second
	if d, ok := t.Deadline(); ok {
		left := time.Until(d)
		budget = min(budget, left-min(10*time.Second, left/5)) // time to report before go test's -timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	t.Cleanup(cancel)

	bin := testproc.Binary(t)
	n := newNode(t, bin, freeAddr(t), t.TempDir(), cfg.syncMode)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker output (%d runs):\n%s", n.runs, indent(n.log.String()))
			if !n.running() {
				t.Logf("citymesh store check --data %s:\n%s", n.dir, indent(n.storeCheck(context.Background())))
			}
		}
	})
	// The workload runs under its own context, ended after the drain or on a
	// fatal condition; wg waits for every client goroutine.
	workCtx, stopWork := context.WithCancel(ctx)
	h := &harness{cancel: stopWork, findings: make(map[string]*finding)}
	var wg sync.WaitGroup
	t.Cleanup(func() { stopWork(); wg.Wait() })

	h.run.Store(1)
	if err := n.start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker pid %d listening on %s, data in %s", n.cmd.Process.Pid, n.addr, n.dir)

	subs := make([]*subscriber, len(subscriberModes))
	for i := range subs {
		subs[i] = newSubscriber(h, i, subscriberModes[i], n.addr, qos)
		wg.Go(func() { subs[i].run(workCtx) })
	}
	for _, s := range subs {
		if !waitClosed(workCtx, s.ready, setupTimeout) {
			t.Fatalf("SETUP: subscriber %s not subscribed within %v %v", s.name(), setupTimeout, h.abortedWith())
		}
	}
	pubs := make([]*publisher, len(publishers))
	for i, spec := range publishers {
		pubs[i] = newPublisher(h, i, spec.qos, spec.dropping, n.addr, cfg.rate)
		wg.Go(func() { pubs[i].run(workCtx) })
	}
	for _, p := range pubs {
		if !waitClosed(workCtx, p.connected, setupTimeout) {
			t.Fatalf("SETUP: publisher %s not connected within %v %v", p.name(), setupTimeout, h.abortedWith())
		}
	}

	start := time.Now()
	// The first kill counts from the end of the setup, so that no session is
	// killed before the broker could store it.
	upAt := start
	if cfg.cycles == 0 {
		t.Logf("self-check: no kills, publishing for %v", selfCheckRun)
		sleepCtx(workCtx, selfCheckRun)
	}
	for cycle := 1; cycle <= cfg.cycles && workCtx.Err() == nil; cycle++ {
		delay := minKillDelay + time.Duration(rng.Int64N(int64(maxKillDelay-minKillDelay)))
		select {
		case <-time.After(time.Until(upAt.Add(delay))):
		case <-n.exited:
			t.Fatalf("broker run %d exited by itself (%v) before kill %d", n.runs, n.waitErr, cycle)
		case <-workCtx.Done():
		}
		if workCtx.Err() != nil {
			break
		}
		acked := totalAcked(pubs)
		if err := n.kill(); err != nil {
			t.Fatal(err)
		}
		killedAt := time.Now()
		h.run.Store(int32(n.runs + 1))
		if err := n.start(ctx); err != nil {
			t.Fatalf("cycle %d: restart: %v", cycle, err)
		}
		upAt = n.upAt
		t.Logf("cycle %d/%d: SIGKILL %v after the broker came up (%d messages acknowledged so far); pid %d accepting connections %v later",
			cycle, cfg.cycles, delay.Round(time.Millisecond), acked, n.cmd.Process.Pid, n.upAt.Sub(killedAt).Round(time.Millisecond))
	}
	if cfg.cycles > 0 {
		sleepCtx(workCtx, tailRun)
	}

	// Stop publishing, let inflight messages complete, and wait until every
	// subscriber has every acknowledged message and no unreleased exchange.
	for _, p := range pubs {
		p.stop()
	}
	h.stopped.Store(true)
	stoppedAt := time.Now()
	drained, cut := drain(workCtx, t, n, h, pubs, subs)
	drainTime := time.Since(stoppedAt)
	stopWork()
	wg.Wait()
	if err := n.kill(); err != nil {
		t.Error(err)
	}
	for _, msg := range h.abortedWith() {
		t.Errorf("%s", msg)
	}
	if ctx.Err() != nil {
		t.Errorf("DEADLINE: the test's global deadline of %v passed", budget)
	}

	if cut {
		t.Errorf("INCOMPLETE: the run was cut short before every message could be delivered (%s); the losses below include messages that may still have been on their way", drained)
	}
	res := verify(pubs, subs, n.runs, !cut)
	t.Logf("summary: %d kill cycles, workload %v, drain %v (%s); seed %d",
		cfg.cycles, stoppedAt.Sub(start).Round(time.Millisecond), drainTime.Round(time.Millisecond), drained, cfg.seed)
	for _, line := range res.summary {
		t.Logf("  %s", line)
	}
	h.mu.Lock()
	for _, kind := range h.order {
		f := h.findings[kind]
		msg := fmt.Sprintf("%s: %d times, e.g.\n\t%s", kind, f.count, strings.Join(f.examples, "\n\t"))
		if f.fails {
			t.Errorf("BROKER: %s", msg)
		} else {
			t.Logf("note: %s", msg)
		}
	}
	h.mu.Unlock()
	for _, f := range res.failures {
		t.Errorf("%s", f)
	}
	if t.Failed() {
		t.Logf("rerun: CITYMESH_CRASH_SEED=%d CITYMESH_CRASH_CYCLES=%d go test -race -count=1 -run 'TestCrashRestart$' -v ./test/crash/", cfg.seed, cfg.cycles)
	}
}

// drain waits, after publishing stopped, until every publisher's inflight
// messages completed, every subscriber received every acknowledged message
// and no subscriber holds an unreleased QoS 2 exchange. It gives up after
// drainTimeout or after quietTimeout without any progress, and says which;
// it reports cut when it was interrupted instead, because the broker exited
// or ctx ended.
func drain(ctx context.Context, t *testing.T, n *node, h *harness, pubs []*publisher, subs []*subscriber) (how string, cut bool) {
	deadline := time.Now().Add(drainTimeout)
	lastProgress, lastCount := time.Now(), int64(-1)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		inflight := 0
		status := make([][]byte, len(pubs))
		for i, p := range pubs {
			inflight += p.pending()
			status[i] = p.statusCopy()
		}
		lost, unreleased := 0, 0
		for _, s := range subs {
			l, u := s.missing(status)
			lost += l
			unreleased += u
		}
		if inflight == 0 && lost == 0 && unreleased == 0 {
			return "complete", false
		}
		if c := h.progress.Load(); c != lastCount {
			lastCount, lastProgress = c, time.Now()
		}
		state := fmt.Sprintf("%d messages still inflight at publishers, %d acknowledged deliveries missing, %d QoS 2 exchanges unreleased", inflight, lost, unreleased)
		switch {
		case time.Now().After(deadline):
			return "gave up after " + drainTimeout.String() + ": " + state, false
		case time.Since(lastProgress) > quietTimeout:
			return "gave up after " + quietTimeout.String() + " without progress: " + state, false
		}
		select {
		case <-tick.C:
		case <-n.exited:
			t.Errorf("BROKER: run %d exited by itself while delivering: %v", n.runs, n.waitErr)
			return "broker exited: " + state, true
		case <-ctx.Done():
			return "workload ended: " + state, true
		}
	}
}

// totalAcked returns how many messages the publishers saw acknowledged.
func totalAcked(pubs []*publisher) int {
	n := 0
	for _, p := range pubs {
		n += p.snapshot().stats.acked
	}
	return n
}

// waitClosed waits up to d for ch to be closed and reports whether it was.
func waitClosed(ctx context.Context, ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	case <-ctx.Done():
		return false
	}
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// indent indents every line of s by a tab, for output inside the test log.
func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "\t(nothing)"
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}
