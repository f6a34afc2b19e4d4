package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
)

// campusReadings returns the reading messages of every meter of the
// campus at quarter hour q after start (every register growing steadily).
func campusReadings(tb testing.TB, m *campus.Model, start time.Time, q int) []bus.Message {
	tb.Helper()
	at := start.Add(time.Duration(q) * 15 * time.Minute)
	out := make([]bus.Message, 0, len(m.Meters))
	for i, mt := range m.Meters {
		vals := make([]event.Value, len(mt.Registers))
		for j, r := range mt.Registers {
			v := float64(1000*(i+1)) + float64(q)*float64(1+i%7)*0.25
			if r.OBIS.C == 1 && r.OBIS.D == 7 {
				v = float64(1 + i%7) // power
			}
			vals[j] = event.Value{Point: r.Point, Value: v, Unit: r.Unit, OBIS: r.OBIS.String()}
		}
		e := event.NewMeasurement(mt.ID, at, event.Source{Type: event.SourceBuilding, Gateway: "bms-" + mt.Building}, vals...)
		msg, err := event.NewMessage(mt.Topic(event.EventReading), e)
		if err != nil {
			tb.Fatal(err)
		}
		msg.QoS = 1
		out = append(out, msg)
	}
	return out
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadingToInvoice measures, with the anomaly rules off and on, on the reference campus (281 meters,
// 378 registers) with three days of the month already billed: the latency
// from one meter's reading published to the updated invoice event of a
// tenant it concerns (debounce 1 ms), and the CPU time per 1,000 readings
// when a backlog of quarter hours of all meters arrives at once (broker,
// publisher and service in one process), with the state on Pebble.
func BenchmarkReadingToInvoice(b *testing.B) {
	for _, anomalies := range []bool{false, true} {
		b.Run(fmt.Sprintf("anomalies=%v", anomalies), func(b *testing.B) { benchReadingToInvoice(b, anomalies) })
	}
}

func benchReadingToInvoice(b *testing.B, anomalies bool) {
	m := loadCampus(b, "../../examples/campus/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		b.Fatal(err)
	}
	tf := loadTariff(b)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin)
	br, _ := startBroker(b)
	cfg := live.Config{Sites: sites, Tariffs: &tf, Debounce: time.Millisecond, Anomalies: live.AnomalyConfig{Disabled: !anomalies}}
	store, err := service.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ls := newLiveOn(b, br, cfg, start.Add(24*time.Hour), store)
	defer ls.stop()
	pub, err := bus.NewLocal(br, "gateways")
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	const warm = 3 * 96
	q := 0
	publishQ := func(n int) int {
		count := 0
		for range n {
			for _, msg := range campusReadings(b, m, start, q) {
				// A full queue is the broker's back-pressure: wait and
				// send again, as a mesh link or a gateway would.
				for err := pub.Publish(context.Background(), msg); err != nil; err = pub.Publish(context.Background(), msg) {
					if !strings.Contains(err.Error(), "queue is full") {
						b.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
				count++
			}
			q++
		}
		return count
	}
	// The backlog: three days of all meters at once.
	c0, t0 := cpuTime(), time.Now()
	n := publishQ(warm)
	ls.waitUpdated("2026-05", start.Add(time.Duration(q-1)*15*time.Minute), 5*time.Minute)
	cpu, wall := cpuTime()-c0, time.Since(t0)
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-ms/1k-readings")
	b.Logf("backlog: %d readings (%d quarter hours × %d meters) billed in %v wall, %v CPU: %.1f ms CPU per 1,000 readings, %.0f readings/s",
		n, warm, len(m.Meters), wall.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(n), float64(n)/wall.Seconds())

	var keys, size int
	ls.store.State("energy").Scan("r/", func(k string, v []byte) error { keys++; size += len(k) + len(v); return nil })
	b.Logf("state: %d register-days, %d bytes of readings (keys and values) for %d quarter hours: %.1f MB for a 31-day month",
		keys, size, warm, float64(size)/float64(warm)*31*96/1e6)

	// Latency: one reading of el-b02-f1 (a tenant's sub-meter) at a time.
	sub, err := bus.NewLocal(br, "invoice-watcher")
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	got := make(chan time.Time, 16)
	err = sub.Subscribe(context.Background(), live.InvoiceTopic("campus", "tech-university", live.EventInvoice), 1, func(_ context.Context, msg bus.Message) {
		var ev live.InvoiceEvent
		if json.Unmarshal(msg.Payload, &ev) == nil {
			got <- ev.Updated
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	<-got // the retained one
	var mt *campus.Meter
	for _, x := range m.Meters {
		if x.ID == "el-b02-f1" {
			mt = x
		}
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := start.Add(time.Duration(q) * 15 * time.Minute)
		v := event.Value{Point: mt.Registers[0].Point, Value: 5000 + float64(q), Unit: mt.Registers[0].Unit, OBIS: mt.Registers[0].OBIS.String()}
		msg, _ := event.NewMessage(mt.Topic(event.EventReading), event.NewMeasurement(mt.ID, at, event.Source{Type: event.SourceBuilding, Gateway: "bms-b02"}, v))
		msg.QoS = 1
		t1 := time.Now()
		if err := pub.Publish(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
		for u := range got {
			if !u.Before(at) {
				break
			}
		}
		lat = append(lat, time.Since(t1))
		q++
	}
	b.StopTimer()
	slices.Sort(lat)
	p := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
	b.Logf("reading → invoice event, %d samples, debounce 1 ms: p50 %v, p99 %v, max %v", len(lat), p(0.5), p(0.99), lat[len(lat)-1])
}
