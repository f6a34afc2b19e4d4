package sim

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/campus"
)

var referenceCampus = sync.OnceValues(func() (*campus.Model, error) { return campus.Load("../examples/campus/campus.yaml") })

// warmPlayer builds a player into outputs that only count and plays its
// first warm simulated seconds, so that the models have settled (rooms
// step through 48 hours at their first question).
func warmPlayer(b *testing.B, cfg PlayerConfig, warm time.Duration) *Player {
	b.Helper()
	m, err := referenceCampus()
	if err != nil {
		b.Fatal(err)
	}
	if cfg.Campus == nil {
		cfg.Campus = m
	}
	d := &DiscardOutput{}
	cfg.Outputs = Outputs{TTS: d, ChirpStack: d, Building: d, Robot: d}
	cfg.Start = may12
	p, err := NewPlayer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	playUntil(b, p, may12.Add(warm))
	return p
}

// playUntil hands the player every emission due up to until, as Run does
// with a virtual clock.
func playUntil(b *testing.B, p *Player, until time.Time) {
	var batch []Due
	for {
		batch = p.sched.AppendDue(batch[:0], until, 4096)
		if len(batch) == 0 {
			return
		}
		if err := p.emit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlayerLoad plays the reference campus in load mode, every one
// of its 35,666 points once a second, into outputs that only count: the
// simulator's own CPU (models, encoding, the network servers' JSON, city
// events), per simulated second.
func BenchmarkPlayerLoad(b *testing.B) {
	p := warmPlayer(b, PlayerConfig{Seed: 1, LoadRate: 1}, 2*time.Second)
	v0 := p.Stats().Values
	b.ResetTimer()
	s := 2
	for b.Loop() {
		s++
		playUntil(b, p, may12.Add(time.Duration(s)*time.Second))
	}
	values := p.Stats().Values - v0
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(values)/sec, "values/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(values), "ns/value")
	b.ReportMetric(100*sec/float64(s-2), "%core-at-1Hz")
}

// BenchmarkPlayerNormal plays the reference campus as it runs normally
// (rooms on change, meters every 15 minutes, devices at their intervals,
// the robot every second), per simulated hour.
func BenchmarkPlayerNormal(b *testing.B) {
	p := warmPlayer(b, PlayerConfig{Seed: 1}, time.Hour)
	h := 1
	b.ResetTimer()
	for b.Loop() {
		h++
		playUntil(b, p, may12.Add(time.Duration(h)*time.Hour))
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(h-1)*1000, "ms/simulated-hour")
	b.ReportMetric(float64(h-1)*3600/b.Elapsed().Seconds(), "×real-time")
}

// BenchmarkUplink makes one LoRaWAN uplink of a soil probe: the model's
// values, the device's bytes, the radio and The Things Stack's JSON.
func BenchmarkUplink(b *testing.B) {
	for _, typ := range []string{"dragino-lse01", "sensecap-s2120"} {
		b.Run(typ, func(b *testing.B) {
			p := warmPlayer(b, PlayerConfig{Seed: 1, Campus: loadSmall(b)}, time.Minute)
			var d *simDevice
			for _, x := range p.devices {
				if x.ctype.ID == typ {
					d = x
				}
			}
			t := may12.Add(time.Minute)
			for b.Loop() {
				t = t.Add(20 * time.Minute)
				if err := p.emitDevice(context.Background(), d, Due{At: t}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoomSnapshot sends all of a room's eight points (the load
// mode's room event) as a validated city event.
func BenchmarkRoomSnapshot(b *testing.B) {
	p := warmPlayer(b, PlayerConfig{Seed: 1, Campus: loadSmall(b), LoadRate: 1}, time.Second)
	r := p.rooms[0]
	t := may12.Add(time.Second)
	for b.Loop() {
		t = t.Add(time.Second)
		if err := p.emitRoom(context.Background(), r, Due{At: t}); err != nil {
			b.Fatal(err)
		}
	}
}
