package live

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// TestIncidentLatencyUnderLoad measures the time from a failed check
// published by a robot (an MQTT 5 client over TCP) to the incident's event
// received by an independent subscriber (another client over TCP), with
// the service in-process on its Pebble state, while the simulator plays
// the reference campus in load mode (every information point once a
// second; CITYMESH_LATENCY_RATE times a second when set) through the same
// broker. It runs only with CITYMESH_LATENCY=seconds (docs/benchmarks.md).
func TestIncidentLatencyUnderLoad(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("CITYMESH_LATENCY"))
	if secs <= 0 {
		t.Skip("set CITYMESH_LATENCY=seconds to measure")
	}
	b, addr := testBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Background: the reference campus in load mode, in real time.
	bg, err := bus.NewLocal(b, "campus-gateways")
	if err != nil {
		t.Fatal(err)
	}
	defer bg.Close()
	m, err := campus.Load(campusFile)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	clock, err := sim.NewScaledClock(start, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := sim.NewBusOutput(bg)
	load := os.Getenv("CITYMESH_LATENCY_NOLOAD") == ""
	rate := 1.0
	if v, err := strconv.ParseFloat(os.Getenv("CITYMESH_LATENCY_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	playerDone := make(chan struct{})
	var p *sim.Player
	if load {
		p, err = sim.NewPlayer(sim.PlayerConfig{Campus: m, Seed: 3, Start: start, Clock: clock, LoadRate: rate,
			Outputs: sim.Outputs{TTS: out, ChirpStack: out, Building: out}})
		if err != nil {
			t.Fatal(err)
		}
		go func() { p.Run(ctx); close(playerDone) }()
	} else {
		close(playerDone)
	}

	// The service, on Pebble.
	st, err := service.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := startService(t, b, st.State("robot"), testConfig(t), nil)
	defer r.stop()

	obs := newObserver(t, addr, "watcher", "robot/campus/incident/+/state")
	rob := newObserver(t, addr, "loomi")
	topic := event.NewTopic(event.DomainRobot, "campus", event.AssetRobot, "loomi", event.EventCheck)
	var lat []time.Duration
	warm := time.Now().Add(5 * time.Second)
	end := time.Now().Add(time.Duration(secs) * time.Second)
	for i := 1; time.Now().Before(end); i++ {
		at := time.Now()
		c := &event.Check{Header: event.Header{Time: at, Asset: "loomi", Source: event.Source{Type: event.SourceRobot}}, Point: "loomi/check/b01-escape",
			Route: "loomi-night-patrol", Waypoint: "wp02", Check: "b01-escape", CheckKind: "escape_route", Target: "b01-escape-route", Observed: "blocked"}
		msg, err := event.NewMessage(topic, c)
		if err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		if _, err := rob.c.Publish(ctx, &paho.Publish{Topic: msg.Topic, QoS: 1, Payload: msg.Payload,
			Properties: &paho.PublishProperties{ContentType: msg.ContentType}}); err != nil {
			t.Fatalf("check %d, %v after the start: %v", i, time.Since(start), err)
		}
		want := fmt.Sprintf(`"count":%d,`, i)
		obs.next(t, 10*time.Second, "incident update "+want, func(p *paho.Publish) bool { return strings.Contains(string(p.Payload), want) })
		if time.Now().After(warm) {
			lat = append(lat, time.Since(sent))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-playerDone
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	bgInfo := "no background"
	if load {
		os, _ := sim.StatsOf(out)
		ps := p.Stats()
		el := time.Since(start).Seconds()
		bgInfo = fmt.Sprintf("background %.0f messages/s, %.0f values/s", float64(os.Messages)/el, float64(ps.Values)/el)
	}
	res := map[string]any{"samples": len(lat), "p50": q(0.5).String(), "p90": q(0.9).String(), "p99": q(0.99).String(), "max": lat[len(lat)-1].String()}
	js, _ := json.Marshal(res)
	t.Logf("failed check → incident event: %s; %s", js, bgInfo)
	if q(0.99) > 50*time.Millisecond {
		t.Errorf("p99 %v above the 50 ms target", q(0.99))
	}
}
