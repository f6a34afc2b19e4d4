package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// campusPoints is the reference campus's 35,666 information points as
// sources with their reporting intervals: room automation points every 5
// minutes (spread), building meters every 15 minutes (on the quarter hour)
// or every minute, LoRaWAN devices every 10 to 15 minutes with up to 30 s
// of jitter, and the robot's position every second.
type pointClass struct {
	name  string
	n     int
	every func(id SourceID) Every
}

func campusPoints(seed uint64) []pointClass {
	return []pointClass{
		{"robot", 1, func(SourceID) Every { return Every{Interval: time.Second} }},
		{"meter-1min", 200, func(SourceID) Every { return Every{Interval: time.Minute} }},
		{"meter-15min", 1465, func(SourceID) Every { return Every{Interval: 15 * time.Minute} }},
		{"lorawan", 4000, func(id SourceID) Every {
			return Every{Interval: SpreadInterval(seed, fmt.Sprint("dev-", id), 10*time.Minute, 15*time.Minute), Jitter: 30 * time.Second, Spread: true}
		}},
		{"room", 30000, func(SourceID) Every { return Every{Interval: 5 * time.Minute, Spread: true} }},
	}
}

func buildCampus(t testing.TB, s *Scheduler, from time.Time) []Every {
	t.Helper()
	var plan []Every
	id := SourceID(0)
	for _, c := range campusPoints(1) {
		for range c.n {
			e := c.every(id)
			if err := s.Add(id, e, from); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, e)
			id++
		}
	}
	if id != 35666 {
		t.Fatalf("%d points, want 35,666", id)
	}
	return plan
}

// TestSchedulerDayIsExact runs the campus's 35,666 sources through a
// simulated day in one-second ticks and checks every emission (9.6 million):
// in time order, each source's emissions numbered without a gap, each one
// within its jitter of its slot (epoch + phase + k·interval), so nothing
// drifts; every source emitted as often as its interval allows; memory
// unchanged. Under the race detector it covers three hours.
func TestSchedulerDayIsExact(t *testing.T) {
	from := date(2026, 3, 2)
	s := NewScheduler(7)
	plan := buildCampus(t, s, from)
	period := 24 * time.Hour
	if raceEnabled {
		period = 3 * time.Hour
	}
	end := from.Add(period)
	type seen struct {
		n           int
		next        uint64
		first, last int64
	}
	got := make([]seen, len(plan))
	var prevAt int64
	var prevSrc SourceID
	var batch []Due
	total := 0
	heapCap := cap(s.heap)
	for now := from; !now.After(end); now = now.Add(time.Second) {
		batch = s.AppendDue(batch[:0], now, 0)
		tick := now.UnixNano()
		for _, d := range batch {
			at := d.At.UnixNano()
			if at > tick || at < prevAt || (at == prevAt && d.Source < prevSrc && total > 0) {
				t.Fatalf("emission %+v after source %d at %v, tick %v", d, prevSrc, time.Unix(0, prevAt), now)
			}
			g := &got[d.Source]
			if g.n > 0 && d.Seq != g.next {
				t.Fatalf("source %d: emission %d after %d", d.Source, d.Seq, g.next-1)
			}
			e := &plan[d.Source]
			slot := int64(d.Seq) * int64(e.Interval)
			if !e.Spread {
				slot += int64(e.Phase)
			}
			off := at - slot
			// Spread phases lie within the interval.
			limit := int64(e.Jitter)
			if e.Spread {
				limit += int64(e.Interval)
			}
			if off < 0 || (off >= limit && limit > 0) || (limit == 0 && off != 0) {
				t.Fatalf("source %d emission %d at %v: %v from its slot, allowed [0, %v)", d.Source, d.Seq, d.At, time.Duration(off), time.Duration(limit))
			}
			if g.n == 0 {
				g.first = at
			}
			g.n++
			g.next = d.Seq + 1
			g.last = at
			prevAt, prevSrc = at, d.Source
			total++
		}
	}
	for id, e := range plan {
		g := got[id]
		// Slots in a day, one more when both ends hold one, one fewer when
		// jitter pushes the last past the end.
		want := int(period / e.Interval)
		lo := want
		if e.Jitter > 0 {
			lo--
		}
		if g.n < lo || g.n > want+1 {
			t.Fatalf("source %d (every %v): %d emissions in %v, want %d to %d", id, e.Interval, g.n, period, lo, want+1)
		}
		// No drift: the last emission is n−1 intervals after the first,
		// give or take the jitter.
		span := time.Duration(g.last-g.first) - time.Duration(g.n-1)*e.Interval
		if span < -e.Jitter || span > e.Jitter {
			t.Fatalf("source %d drifted by %v over %v", id, span, period)
		}
	}
	if s.Len() != len(plan) || len(s.heap) != len(plan) || cap(s.heap) != heapCap {
		t.Errorf("after %v: %d sources, heap %d (cap %d, was %d)", period, s.Len(), len(s.heap), cap(s.heap), heapCap)
	}
	t.Logf("%d emissions from %d sources in %v of simulated time", total, len(plan), period)
}

func TestSchedulerAddRemove(t *testing.T) {
	from := date(2026, 1, 1)
	s := NewScheduler(1)
	for id := range SourceID(3000) {
		if err := s.Add(id, Every{Interval: time.Minute}, from); err != nil {
			t.Fatal(err)
		}
	}
	for id := SourceID(0); id < 3000; id += 2 {
		s.Remove(id)
	}
	s.Remove(99999) // absent
	s.Remove(0)     // twice
	// Replace source 1: every 30 s now.
	if err := s.Add(1, Every{Interval: 30 * time.Second}, from); err != nil {
		t.Fatal(err)
	}
	count := map[SourceID]int{}
	for _, d := range s.AppendDue(nil, from.Add(10*time.Minute), 0) {
		count[d.Source]++
	}
	if s.Len() != 1500 || count[0] != 0 || count[2] != 0 || count[3] != 11 || count[1] != 21 {
		t.Fatalf("len %d, counts 0:%d 1:%d 2:%d 3:%d", s.Len(), count[0], count[1], count[2], count[3])
	}
	if len(s.heap) > 1500+1024+1 {
		t.Errorf("stale entries not compacted: heap %d for %d sources", len(s.heap), s.Len())
	}
	// max bounds a batch.
	if b := s.AppendDue(nil, from.Add(time.Hour), 7); len(b) != 7 {
		t.Errorf("batch of %d, want 7", len(b))
	}
	for _, tc := range []struct {
		e    Every
		want string
	}{
		{Every{}, "interval"},
		{Every{Interval: time.Minute, Jitter: 2 * time.Minute}, "jitter"},
		{Every{Interval: time.Minute, Phase: -time.Second}, "phase"},
	} {
		if err := s.Add(5, tc.e, from); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v", tc.e, err)
		}
	}
	empty := NewScheduler(1)
	if _, ok := empty.Next(); ok {
		t.Error("an empty scheduler has a next emission")
	}
}

func TestLoadModeIsSteady(t *testing.T) {
	from := date(2026, 1, 1)
	s := NewScheduler(1)
	// Ten copies of the campus, every point once a second: 356,660 a second.
	const n = 10 * 35666
	if err := s.AddEvenly(0, n, time.Second, from); err != nil {
		t.Fatal(err)
	}
	var b []Due
	for i := range 5 {
		tick := from.Add(time.Duration(i+1) * 100 * time.Millisecond)
		b = s.AppendDue(b[:0], tick, 0)
		// Every 100 ms a tenth of the points, give or take one.
		if len(b) < n/10-1 || len(b) > n/10+1+n*(1-min(i, 1)) {
			t.Fatalf("tick %d: %d emissions, want about %d", i, len(b), n/10)
		}
	}
}

func TestOnChange(t *testing.T) {
	c := OnChange{Threshold: 0.5, MaxSilence: 10 * time.Minute}
	at := date(2026, 1, 1)
	steps := []struct {
		min  int
		v    float64
		want bool
	}{
		{0, 20, true}, {1, 20.2, false}, {2, 20.4, false}, {3, 20.5, true}, {4, 20.1, false},
		{13, 20.1, true}, {14, 19.9, false}, {15, 19.9, false}, {16, 21, true},
	}
	for _, s := range steps {
		if got := c.Report(at.Add(time.Duration(s.min)*time.Minute), s.v); got != s.want {
			t.Errorf("minute %d value %v: report %v, want %v", s.min, s.v, got, s.want)
		}
	}
	var z OnChange
	if !z.Report(at, 1) || z.Report(at, 1) || !z.Report(at, 1.0001) {
		t.Error("the zero OnChange reports every change and nothing else")
	}
}

func TestRunnerWithManualClock(t *testing.T) {
	start := date(2026, 1, 1)
	clock := NewManualClock(start)
	s := NewScheduler(1)
	if err := s.Add(1, Every{Interval: time.Minute}, start.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(2, Every{Interval: 90 * time.Second}, start.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make(chan Due, 100)
	r := Runner{Clock: clock, Scheduler: s, Emit: func(_ context.Context, b []Due) error {
		for _, d := range b {
			got <- d
		}
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The runner waits for the first slot, 1 minute after the epoch-aligned
	// start (source 1) — nothing is emitted before the clock moves.
	waitFor("the runner to wait", func() bool { return len(clock.Waiting()) == 1 })
	if w := clock.Waiting()[0]; !w.Equal(start.Add(time.Minute)) {
		t.Fatalf("runner waits for %v, want %v", w, start.Add(time.Minute))
	}
	select {
	case d := <-got:
		t.Fatalf("emitted %+v before the clock moved", d)
	default:
	}
	clock.Advance(3 * time.Minute)
	var ds []Due
	for len(ds) < 5 { // source 1 at 1, 2, 3 min; source 2 at 1.5 and 3 min
		select {
		case d := <-got:
			ds = append(ds, d)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %+v, want 5 emissions", ds)
		}
	}
	want := []struct {
		src SourceID
		at  time.Duration
	}{{1, time.Minute}, {2, 90 * time.Second}, {1, 2 * time.Minute}, {1, 3 * time.Minute}, {2, 3 * time.Minute}}
	for i, w := range want {
		if ds[i].Source != w.src || !ds[i].At.Equal(start.Add(w.at)) {
			t.Errorf("emission %d: %+v, want source %d at +%v", i, ds[i], w.src, w.at)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("runner did not stop")
	}
}

func TestRunnerVirtualClockUntil(t *testing.T) {
	start := date(2026, 1, 1)
	s := NewScheduler(1)
	plan := buildCampus(t, s, start)
	n := 0
	r := Runner{Clock: NewVirtualClock(start), Scheduler: s, Until: start.Add(time.Hour),
		Emit: func(_ context.Context, b []Due) error { n += len(b); return nil }}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, e := range plan {
		want += int(time.Hour / e.Interval)
	}
	if math.Abs(float64(n-want)) > 0.02*float64(want) {
		t.Fatalf("%d emissions in an hour, want about %d", n, want)
	}
	// An error from Emit ends the run.
	boom := errors.New("boom")
	r2 := Runner{Clock: NewVirtualClock(start), Scheduler: NewScheduler(1), Emit: func(context.Context, []Due) error { return boom }}
	_ = r2.Scheduler.Add(0, Every{Interval: time.Second}, start)
	if err := r2.Run(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("run ended with %v, want boom", err)
	}
	if err := (&Runner{}).Run(context.Background()); err == nil {
		t.Fatal("a runner without clock ran")
	}
}

func TestScaledClock(t *testing.T) {
	if _, err := NewScaledClock(date(2026, 1, 1), 0); err == nil {
		t.Fatal("speed 0 accepted")
	}
	if _, err := NewScaledClock(date(2026, 1, 1), math.Inf(1)); err == nil {
		t.Fatal("infinite speed accepted")
	}
	start := date(2026, 1, 1)
	c, err := NewScaledClock(start, 36000) // an hour in 100 ms
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Now()
	if err := c.WaitUntil(context.Background(), start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(wall); el < 90*time.Millisecond || el > 5*time.Second {
		t.Errorf("an hour at speed 36000 took %v of wall time, want about 100 ms", el)
	}
	if now := c.Now(); now.Before(start.Add(time.Hour)) {
		t.Errorf("after waiting the clock reads %v", now)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.WaitUntil(ctx, start.Add(1000*time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait returned %v", err)
	}
	// A deterministic clock face: with a fake wall clock the simulated time
	// is exactly start + speed × elapsed.
	fake := date(2030, 1, 1)
	c.origin, c.wall = fake, func() time.Time { return fake.Add(1500 * time.Millisecond) }
	if got, want := c.Now(), start.Add(15*time.Hour); !got.Equal(want) {
		t.Errorf("1.5 s at speed 36000: %v, want %v", got, want)
	}
}

// BenchmarkScheduler measures emissions handed out per second with the
// campus's 35,666 sources, in 1-second ticks of simulated time.
func BenchmarkScheduler(b *testing.B) {
	from := date(2026, 1, 1)
	s := NewScheduler(1)
	buildCampus(b, s, from)
	var batch []Due
	now := from
	b.ResetTimer()
	n := 0
	for n < b.N {
		now = now.Add(time.Second)
		batch = s.AppendDue(batch[:0], now, 0)
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "emissions/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/emission")
}

// BenchmarkSchedulerLoad measures the load mode: ten copies of the campus,
// every point once a second (356,660 emissions a simulated second).
func BenchmarkSchedulerLoad(b *testing.B) {
	from := date(2026, 1, 1)
	s := NewScheduler(1)
	if err := s.AddEvenly(0, 10*35666, time.Second, from); err != nil {
		b.Fatal(err)
	}
	var batch []Due
	now := from
	b.ResetTimer()
	n := 0
	for n < b.N {
		now = now.Add(10 * time.Millisecond)
		batch = s.AppendDue(batch[:0], now, 0)
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "emissions/s")
}
