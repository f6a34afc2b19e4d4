package live

import (
	"context"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// BenchmarkHandlePosition measures one position of the robot inside its
// corridor: decoding, progress along the route, the corridor check.
func BenchmarkHandlePosition(b *testing.B) {
	msgs := record(b, 20*time.Minute, nil)
	var pos []bus.Message
	for _, m := range msgs {
		if m.Topic == "robot/campus/robot/loomi/position" {
			pos = append(pos, bus.Message{Topic: m.Topic, Payload: m.Payload, QoS: 1, ContentType: m.ContentType, Properties: m.Properties})
		}
	}
	br, _ := testBroker(b)
	r := startService(b, br, service.NewMemoryStore().State("robot"), testConfig(b), nil)
	run := r.s.cur.Load()
	ctx := context.Background()
	// Every round from the first fix, in the corridor.
	pos = pos[:300]
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(pos) == 0 {
			run.trackers["loomi"].tracker.Reset()
			run.trackers["loomi"].last = time.Time{}
		}
		run.handle(ctx, pos[i%len(pos)])
	}
}

// BenchmarkFailedCheck measures a failed check that updates its open
// incident, on Pebble: evaluation, the synced write, the alarm raise.
func BenchmarkFailedCheck(b *testing.B) {
	msgs := record(b, 20*time.Minute, nil)
	var check sim.Recorded
	for _, m := range msgs {
		if m.Topic == "robot/campus/robot/loomi/check" && contains(m.Payload, `"observed":"blocked"`) {
			check = m
		}
	}
	st, err := service.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	br, _ := testBroker(b)
	r := startService(b, br, st.State("robot"), testConfig(b), nil)
	run := r.s.cur.Load()
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// A new check time each round, so that none is a duplicate.
		p := replaceTime(check.Payload, simStart.Add(time.Duration(i)*time.Second))
		run.handle(ctx, bus.Message{Topic: check.Topic, Payload: p, QoS: 1, ContentType: check.ContentType})
	}
}
