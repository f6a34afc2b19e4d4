package live

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/service"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSeason feeds every plot of the campus (14 plots: 4 weather
// stations, 28 leaf sensors, 28 soil probes) with VINEYARD_BENCH_DAYS
// days of simulated uplinks (default 7) from 1 May, in order, through an
// in-process broker, with the service's state in Pebble (a durable write
// per event), and reports the process's CPU time per day of data
// and the events per second. One iteration is the whole feed.
func BenchmarkSeason(b *testing.B) {
	days := 7
	if v, err := strconv.Atoi(os.Getenv("VINEYARD_BENCH_DAYS")); err == nil && v > 0 {
		days = v
	}
	m := loadCampus(b)
	w := siteWeather(b)
	var plots []string
	for _, p := range m.Plots {
		plots = append(plots, p.ID)
	}
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	msgs := feed(b, m, w, plots, from, from.Add(time.Duration(days)*24*time.Hour))
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		br, _ := startBroker(b)
		cfg := testConfig(m)
		cfg.Debounce = time.Second
		s, err := New("vineyard", cfg)
		if err != nil {
			b.Fatal(err)
		}
		st, err := service.OpenStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		env, stop := runService(b, br, s, st)
		pub, err := bus.NewLocal(br, "feed")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0, t0 := cpuTime(), time.Now()
		// In chunks that fit the service's session queue: the service
		// takes each chunk before the next (a live feed is far slower).
		for i, msg := range msgs {
			if err := pub.Publish(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
			if (i+1)%500 == 0 {
				waitFor(b, time.Minute, "chunk delivered", func() bool { return env.Health().EventsIn >= uint64(i+1) })
			}
		}
		waitFor(b, 10*time.Minute, "events delivered", func() bool { return env.Health().EventsIn >= uint64(len(msgs)) })
		waitFor(b, time.Minute, "flushes", func() bool { return s.riskDeb.Pending() == 0 && s.soilDeb.Pending() == 0 })
		cpu, wall := cpuTime()-cpu0, time.Since(t0)
		b.StopTimer()
		pub.Close()
		stop()
		st.Close()
		b.ReportMetric(float64(cpu.Milliseconds())/float64(days), "cpu-ms/day")
		b.ReportMetric(float64(len(msgs))/wall.Seconds(), "events/s")
		b.ReportMetric(float64(len(msgs))/float64(days), "events/day")
		b.StartTimer()
	}
}
