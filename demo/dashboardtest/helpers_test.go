// Package dashboardtest_test holds the dashboard's browser tests: headless
// Chromium (Debian's chromium package) driven by chromedp against a real
// demo. They are a package of their own so that their shared demo and
// browser, running across tests, do not meet the demo package's checks
// for leaked goroutines.
package dashboardtest_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/sim"
)

// waitDemo polls cond until it holds, failing the test after 30 s with
// explain's account.
func waitDemo(t *testing.T, what string, cond func() bool, explain func() string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s)", what, explain())
		}
	}
}

var (
	smallCampus = filepath.Join("..", "..", "examples", "campus", "small", "campus.yaml")
	codecs      = filepath.Join("..", "..", "examples", "campus", "codecs")
	start       = time.Date(2026, 5, 12, 7, 0, 0, 0, sim.Berlin)
)

// options are a demo of the small campus on ports the system chooses, at
// half an hour a second, with its users.
func options(t *testing.T) demo.Options {
	return demo.Options{MQTT: "127.0.0.1:0", WS: "127.0.0.1:0", HTTP: "127.0.0.1:0", NetworkServer: "127.0.0.1:0",
		Data: t.TempDir(), Campus: smallCampus, Codecs: codecs, Seed: 3, Start: start, Speed: 1800, RobotEvery: 30 * time.Second,
		StatsEvery: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), Users: true}
}

// collector is an Eclipse Paho MQTT 5 subscriber that keeps what arrives.
type collector struct {
	mu   sync.Mutex
	msgs []*paho.Publish
	c    *paho.Client
}

// subscribe connects a Paho client to addr (with user and password when
// user is not "") and subscribes it to filters.
func subscribe(t *testing.T, ctx context.Context, addr, id, user, password string, filters ...string) *collector {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{}
	col.c = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			col.mu.Lock()
			col.msgs = append(col.msgs, pr.Packet)
			col.mu.Unlock()
			return true, nil
		}}})
	cp := &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
	if user != "" {
		cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = user, true, []byte(password), true
	}
	if ack, err := col.c.Connect(ctx, cp); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect %s: %v %+v", id, err, ack)
	}
	var subs []paho.SubscribeOptions
	for _, f := range filters {
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	if _, err := col.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { col.c.Disconnect(&paho.Disconnect{}) })
	return col
}

// snapshot returns what arrived so far.
func (c *collector) snapshot() []*paho.Publish {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*paho.Publish(nil), c.msgs...)
}
