package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/sim"
)

// TestAPILoad measures the latency of the twin's and the invoices' routes
// under 100 concurrent clients over loopback, each logged in with its own
// browser session (the dashboard's way), against a node with the twin and
// the energy service of the reference campus (CITYMESH_API_LOAD_CAMPUS
// names another campus file) fed an hour of its meter readings. It runs
// only with CITYMESH_API_LOAD=1, each route for CITYMESH_API_LOAD_SECONDS
// (default 5), and reports p50, p99 and requests per second
// (docs/benchmarks.md).
func TestAPILoad(t *testing.T) {
	if os.Getenv("CITYMESH_API_LOAD") == "" {
		t.Skip("set CITYMESH_API_LOAD=1 to run the API load test")
	}
	secs := 5
	if v, err := strconv.Atoi(os.Getenv("CITYMESH_API_LOAD_SECONDS")); err == nil && v > 0 {
		secs = min(v, 60)
	}
	campusFile := "../examples/campus/campus.yaml"
	if f := os.Getenv("CITYMESH_API_LOAD_CAMPUS"); f != "" {
		campusFile = f
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := twinConfig(t, true)
	cfg.Twin.Campus = campusFile
	src := "energy:\n  kind: energy\n  config:\n    campus: " + campusFile + "\n    tariff: ../energy/live/campus-tariff.yaml\n    debounce: 100ms\n"
	if err := yaml.Unmarshal([]byte(src), &cfg.Services); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, cfg, nil)
	addr, base := n.Addr(node.ListenerMQTT).String(), "http://"+n.Addr(node.ListenerHTTP).String()
	waitServicesRunning(t, n)

	// An hour of the campus's meter readings, from its simulator.
	m, err := campus.Load(campusFile)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now().Add(-time.Hour).Truncate(time.Hour)
	out := &sim.MemoryOutput{}
	p, err := sim.NewPlayer(sim.PlayerConfig{Campus: m, Seed: 7, Start: from, Until: from.Add(time.Hour), Outputs: sim.Outputs{Building: out}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	pub := pahoLogin(t, ctx, addr, "building-gateway", "ops", nil)
	sent := 0
	for _, r := range out.Messages() {
		if r.Will || !strings.HasSuffix(r.Topic, "/"+string(event.EventReading)) {
			continue
		}
		if _, err := pub.Publish(ctx, &paho.Publish{Topic: r.Topic, Payload: r.Payload, QoS: 1}); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	pub.Disconnect(&paho.Disconnect{})
	waitFor(t, 60*time.Second, "campus-service's running invoice", func() bool {
		code, body := twinGet(t, "GET", base+"/api/v1/energy/invoices/campus-service", "ops")
		return code == 200 && strings.Contains(string(body), `"status":"running"`)
	})
	var pts struct {
		Points []struct {
			ID string `json:"id"`
		} `json:"points"`
	}
	_, body := twinGet(t, "GET", base+"/api/v1/twin/points?kind=meter&limit=1", "ops")
	if err := json.Unmarshal(body, &pts); err != nil || len(pts.Points) == 0 {
		t.Fatalf("a meter point: %s", body)
	}
	var sum struct {
		Points int `json:"points"`
	}
	_, body = twinGet(t, "GET", base+"/api/v1/twin/", "ops")
	json.Unmarshal(body, &sum)
	t.Logf("campus %s: %d points, %d meter readings sent", campusFile, sum.Points, sent)

	// 100 clients, each with its own session.
	const clients = 100
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := make([]*http.Client, clients)
	for i := range hc {
		jar, _ := cookiejar.New(nil)
		hc[i] = &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second}
		resp, err := hc[i].Post(base+"/api/v1/session", "application/json", strings.NewReader(`{"username":"ops","password":"pw"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("login %d: %d", i, resp.StatusCode)
		}
	}
	for _, r := range []struct{ name, path string }{
		{"twin query (a building's temperatures)", "/api/v1/twin/points?building=b01&quantity=temperature&limit=100"},
		{"twin point latest", "/api/v1/twin/points/" + pts.Points[0].ID},
		{"invoice of a tenant", "/api/v1/energy/invoices/campus-service"},
	} {
		var mu sync.Mutex
		var lat []time.Duration
		failed := 0
		deadline := time.Now().Add(time.Duration(secs) * time.Second)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				var mine []time.Duration
				bad := 0
				for time.Now().Before(deadline) {
					t0 := time.Now()
					resp, err := hc[i].Get(base + r.path)
					if err != nil {
						bad++
						continue
					}
					var buf [32 << 10]byte
					for {
						if _, err := resp.Body.Read(buf[:]); err != nil {
							break
						}
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						bad++
						continue
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat, failed = append(lat, mine...), failed+bad
				mu.Unlock()
			})
		}
		wg.Wait()
		if failed > 0 || len(lat) == 0 {
			t.Errorf("%s: %d failed requests, %d answered", r.name, failed, len(lat))
			continue
		}
		slices.Sort(lat)
		q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
		line := fmt.Sprintf("%-40s GET %s: %d requests in %d s (%.0f/s), p50 %v, p99 %v, max %v", r.name, r.path, len(lat), secs,
			float64(len(lat))/float64(secs), q(0.50).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
		t.Log(line)
	}
}
