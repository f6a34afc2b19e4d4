package run

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/tts"
	"github.com/citymesh/citymesh/internal/lorawantest"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store/disk"
)

// benchPayloads builds n distinct uplinks of the reference campus's
// The Things Stack devices, round robin, with the frame counter counting
// up per device: more uplinks per device than the deduplicator remembers,
// so that cycling through them again is new uplinks, not copies.
func benchPayloads(b *testing.B, model *campus.Model, n int, decoded bool) (topics []string, payloads [][]byte) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	var devs []*campus.Device
	for _, d := range model.Devices {
		if a, _ := model.Application(d.Application); a.Server == campus.TheThingsStack {
			devs = append(devs, d)
		}
	}
	at := time.Date(2026, 5, 12, 7, 0, 0, 0, time.UTC)
	for i := range n {
		d := devs[i%len(devs)]
		app, _ := model.Application(d.Application)
		up := lorawantest.Uplink{App: app, Device: d, FCnt: uint32(i / len(devs)), Values: lorawantest.RandomValues(rng, d.Type),
			Decoded: decoded, ReceivedAt: at.Add(time.Duration(i) * time.Second)}
		topic, body, err := up.TTS()
		if err != nil {
			b.Fatal(err)
		}
		topics, payloads = append(topics, topic), append(payloads, body)
	}
	return topics, payloads
}

// BenchmarkTTSUplink measures the whole path of an uplink of The Things
// Stack through the connector runtime onto the in-process bus: routing to
// the device's worker, parsing, deduplication, values (the server's
// decoded payload, or the codec run on the raw bytes), the measurement
// and uplink events and their publication, which on the disk store
// returns once the retained measurement is committed (group commit,
// sync batch). Run with -cpu 1 for the figure per core.
func BenchmarkTTSUplink(b *testing.B) {
	model, err := campus.Load(filepath.Join("..", "..", "examples", "campus", "campus.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	for _, path := range []struct {
		name    string
		decoded bool
	}{{"decoded", true}, {"codec", false}} {
		topics, payloads := benchPayloads(b, model, 4096, path.decoded)
		for _, storeKind := range []string{"memory", "disk"} {
			b.Run(fmt.Sprintf("%s/%s", path.name, storeKind), func(b *testing.B) {
				opts := broker.Options{SysInterval: -1, Logger: quiet}
				if storeKind == "disk" {
					st, err := disk.Open(b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					opts.Store = st
				}
				br := broker.New(opts)
				defer br.Close()
				l, _ := bus.NewLocal(br, "connectors")
				defer l.Close()
				cfg := Config{Campus: filepath.Join("..", "..", "examples", "campus", "campus.yaml"), Codecs: codecDir,
					TTS: []TTSConfig{{Application: "wartberg-ttn", URL: "tcp://127.0.0.1:1", APIKey: "k"}}, ReconnectMin: time.Hour,
					QueueLength: 1024, Workers: benchWorkers}
				r, err := New(cfg, Options{Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				if err := r.Start(ctx, l); err != nil {
					b.Fatal(err)
				}
				u := r.ups[0]
				base := r.Stats().Received
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				start := time.Now()
				for i := range b.N {
					j := i % len(payloads)
					u.onMessage(&mqtt.Publish{Topic: topics[j], Payload: payloads[j]})
				}
				for r.Stats().Received-base < uint64(b.N) {
					time.Sleep(50 * time.Microsecond)
				}
				// Wait until the last uplinks' events are published too.
				for r.stats.published[1].Load() < uint64(b.N) {
					time.Sleep(50 * time.Microsecond)
				}
				el := time.Since(start)
				cpu := cpuTime() - cpu0
				b.StopTimer()
				b.ReportMetric(float64(b.N)/el.Seconds(), "uplinks/s")
				// The process's CPU time per uplink: what one core's worth of
				// work costs, whatever else runs on the machine.
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "uplinks/cpu-s")
				st := r.Stats()
				if st.Failed["codec"]+st.Failed["publish"]+st.Failed["parse"] > 0 || st.Duplicates > 0 {
					b.Fatalf("stats %+v", st)
				}
				cancel()
				r.Close()
			})
		}
	}
}

// BenchmarkStages measures the stages of one uplink on one goroutine, to
// show where the time goes: parsing, the values, building the events, and
// publishing them on the in-process bus (memory store).
func BenchmarkStages(b *testing.B) {
	model, err := campus.Load(filepath.Join("..", "..", "examples", "campus", "campus.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	topics, payloads := benchPayloads(b, model, 1024, true)
	br := broker.New(broker.Options{SysInterval: -1, Logger: quiet})
	defer br.Close()
	l, _ := bus.NewLocal(br, "connectors")
	defer l.Close()
	cfg := Config{Campus: filepath.Join("..", "..", "examples", "campus", "campus.yaml"), Codecs: codecDir,
		TTS: []TTSConfig{{Application: "wartberg-ttn", URL: "tcp://127.0.0.1:1", APIKey: "k"}}, ReconnectMin: time.Hour, Commands: new(bool)}
	r, err := New(cfg, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	r.bus = l // not started: the stages run on this goroutine
	p := r.ups[0].proto.(*ttsProto)
	ctx := context.Background()
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			j := i % len(payloads)
			if _, _, err := tts.Decode(topics[j], payloads[j]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse+values", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			j := i % len(payloads)
			t, m, _ := tts.Decode(topics[j], payloads[j])
			d := p.route(topics[j])
			up := p.uplink(d, t, m)
			if vals, _, err := r.values(ctx, d, up); err != nil || len(vals) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole", func(b *testing.B) {
		// Each device's uplinks come round again within the deduplicator's
		// memory here: it remembers one per device.
		r.dedupe = connector.NewDeduplicator(connector.DedupeConfig{PerDevice: 1})
		b.ReportAllocs()
		for i := range b.N {
			j := i % len(payloads)
			p.handle(ctx, &job{up: p.up, dev: p.route(topics[j]), topic: topics[j], payload: payloads[j]})
		}
	})
}

// benchWorkers is the workers of BenchmarkTTSUplink; 0 is the default.
var benchWorkers = 0

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
