package node_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
)

// BenchmarkAlarmCommand is the round trip of POST /api/v1/alarms/{id}/ack
// on a node: the HTTP request, the command published to the alarm's
// command topic, the owning service's manager, its MQTT 5 reply and the
// answer (the alarm is acknowledged already: the manager changes nothing,
// so this is the path without the state's sync).
func BenchmarkAlarmCommand(b *testing.B) {
	ctx := context.Background()
	cfg := node.Default()
	cfg.MQTT, cfg.WS, cfg.HTTP, cfg.Store, cfg.SysIntervalSeconds = "127.0.0.1:0", "off", "127.0.0.1:0", "memory", -1
	var sections map[string]service.Section
	if err := yaml.Unmarshal([]byte("toy-a:\n  kind: toy\n  config: {types: [co2-high]}\n"), &sections); err != nil {
		b.Fatal(err)
	}
	cfg.Services = sections
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for !allRunning(n) {
		time.Sleep(time.Millisecond)
	}
	pub, err := bus.NewLocal(n.Broker(), "bench-raise")
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	key := alarm.Key{Site: "campus", Kind: "room", Asset: "b01-0.01", Type: "co2-high"}
	raw, _ := json.Marshal(toyCommand{Key: key, Severity: alarm.Major, Time: time.Now().UTC()})
	if err := pub.Publish(ctx, bus.Message{Topic: "toy/toy-a/raise", Payload: raw, QoS: 1}); err != nil {
		b.Fatal(err)
	}
	var a alarm.Alarm
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if l := n.Services().Board().List(alarm.Filter{}); len(l) == 1 {
			a = l[0]
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no alarm")
		}
	}
	url := "http://" + n.Addr(node.ListenerHTTP).String() + "/api/v1/alarms/" + a.ID + "/ack"
	for b.Loop() {
		resp, err := http.Post(url, "application/json", nil)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

func allRunning(n *node.Node) bool {
	for _, h := range n.Services().Runner().Health() {
		if h.Status != service.StatusRunning {
			return false
		}
	}
	return true
}
