package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/testproc"
)

// TestDemoProcess runs `citymesh demo` as a process on the small campus,
// fast: an Eclipse Paho subscriber gets the connectors' device
// measurements and uplinks, meter readings, room measurements and robot
// positions, valid by their schemas and the campus model; SIGINT (Ctrl-C)
// stops it with exit status 0 after its last summary.
func TestDemoProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	mqttAddr, httpAddr, nsAddr := freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(testproc.Binary(t), "demo", "--campus", smallCampus, "--codecs", "../../examples/campus/codecs",
		"--data", t.TempDir(), "--mqtt", mqttAddr, "--ws", "off", "--http", httpAddr, "--network-server", nsAddr,
		"--speed", "1200", "--start", "2026-05-12T07:00:00+02:00", "--seed", "4", "--stats", "1s",
		"--faults", filepath.Join("..", "..", "examples", "sim", "campus-faults.yaml"))
	out := new(testproc.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("citymesh demo:\n%s", out)
		}
	}()
	waitUntil(t, "the banner", func() bool { return strings.Contains(out.String(), "Ctrl-C stops it") }, out.String)
	for _, want := range []string{"network server  mqtt://" + nsAddr, "citymesh MQTT   mqtt://" + mqttAddr, "'vineyard/#'"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the banner lacks %q", want)
		}
	}

	var mu sync.Mutex
	var msgs []pahov3.Message
	c := pahov3.NewClient(pahov3.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("demo-watcher").SetProtocolVersion(4).
		SetAutoReconnect(false).SetDefaultPublishHandler(func(_ pahov3.Client, m pahov3.Message) {
		mu.Lock()
		msgs = append(msgs, m)
		mu.Unlock()
	}))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.SubscribeMultiple(map[string]byte{"vineyard/#": 1, "energy/#": 1, "building/#": 1, "robot/#": 1}, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho subscribe: %v", tok.Error())
	}
	m, err := campus.Load(smallCampus)
	if err != nil {
		t.Fatal(err)
	}
	need := map[string]bool{"vineyard/device/measurement": false, "vineyard/device/uplink": false, "energy/meter/reading": false,
		"building/room/measurement": false, "robot/robot/position": false}
	waitUntil(t, "every kind of event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, msg := range msgs {
			tp, err := event.ParseTopic(msg.Topic())
			if err != nil {
				t.Fatalf("%s: %v", msg.Topic(), err)
			}
			k, ok := tp.EventKind()
			if !ok {
				continue // a service's result (a robot's progress, an incident): its own tests check it
			}
			if err := event.ValidateJSON(k, msg.Payload()); err != nil {
				t.Fatalf("%s: %v\n%s", msg.Topic(), err, msg.Payload())
			}
			e, err := event.Decode(k, msg.Payload())
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Check(tp, e); err != nil {
				t.Fatalf("%s: %v", msg.Topic(), err)
			}
			need[string(tp.Domain)+"/"+string(tp.Kind)+"/"+tp.Event] = true
		}
		msgs = msgs[:0]
		for _, ok := range need {
			if !ok {
				return false
			}
		}
		return true
	}, func() string { return out.String() })
	waitUntil(t, "a summary", func() bool { return strings.Contains(out.String(), "uplinks_decoded=") })

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGINT")
	}
	if !strings.Contains(out.String(), `msg="demo stopped"`) {
		t.Errorf("no last summary")
	}
}

// TestDemoBadFlags: command lines the demo cannot run are refused before
// anything listens.
func TestDemoBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--speed", "0"}, "give --duration"},
		{[]string{"--speed", "-1"}, "--speed"},
		{[]string{"--start", "tomorrow"}, "--start"},
		{[]string{"--duration", "-1h"}, "--duration"},
		{[]string{"--log", "loud"}, "--log"},
		{[]string{"--campus", "nowhere.yaml"}, "campus"},
		{[]string{"stray"}, "unexpected argument"},
		{[]string{"--faults", "nowhere.yaml"}, "--faults"},
		{[]string{"--fault", "kind=nope,asset=b01,start=2026-05-12T07:00:00Z"}, "fault"},
		{[]string{"--map-tiles", "tiles.example.org/{z}/{x}/{y}.png"}, "--map-tiles: \"tiles.example.org/{z}/{x}/{y}.png\": want an https:// or http:// URL"},
		{[]string{"--map-attribution", "© OpenStreetMap contributors"}, "--map-attribution: an attribution without map_tiles"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runDemo(context.Background(), append([]string{"--data", t.TempDir()}, c.args...), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want %q in it", err, c.want)
			}
		})
	}
}

func TestDemoNamesTheFlagOfABusyAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"mqtt", []string{"-mqtt", addr, "-ws", "off", "-http", "off", "-network-server", "127.0.0.1:0"}, "choose another address with --mqtt"},
		{"http", []string{"-mqtt", "127.0.0.1:0", "-ws", "off", "-http", addr, "-network-server", "127.0.0.1:0"}, "choose another address with --http"},
		{"network server", []string{"-mqtt", "127.0.0.1:0", "-ws", "off", "-http", "off", "-network-server", addr}, "choose another address with --network-server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-store", "memory", "-data", t.TempDir(), "-campus", smallCampus, "-codecs", "../../examples/campus/codecs"}, tt.args...)
			err := runDemo(t.Context(), args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), addr) {
				t.Fatalf("runDemo with %s busy: %v, want an error naming %s and %q", tt.name, err, addr, tt.want)
			}
		})
	}
}
