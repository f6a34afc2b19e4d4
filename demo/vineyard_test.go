package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/pahotest"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
	vinelive "github.com/citymesh/citymesh/vineyard/live"
)

// TestDemoVineyard: citymesh demo runs the vineyard service with its demo
// configuration over the demo's campus: it is listed running in
// /api/v1/services, and within the simulation's first hours the plot's
// hourly weather and disease risk are retained on the bus, as an
// independent MQTT client (Paho) reads them, and served by the service's
// HTTP API.
func TestDemoVineyard(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	opts := options(t)
	d, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	if err := d.Start(ctx); err != nil {
		d.Close()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + d.Addr(node.ListenerHTTP).String()
	get := func(path string) (int, []byte) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	var health []byte
	waitDemo(t, "the vineyard service to run", func() bool {
		var code int
		code, health = get(node.ServicesPrefix)
		var l service.ServiceList
		json.Unmarshal(health, &l)
		for _, h := range l.Services {
			if h.Name == vinelive.Kind {
				return code == 200 && h.Status == service.StatusRunning
			}
		}
		return false
	}, func() string { return string(health) })

	m := d.Model()
	var plots []string
	for _, p := range m.Plots {
		plots = append(plots, p.ID)
	}
	if len(plots) == 0 {
		t.Fatal("the demo's campus has no plots")
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	col := pahotest.Subscribe(t, sctx, d.Addr(node.ListenerMQTT).String(), pahotest.Options{ClientID: "vineyard-dashboard"}, "vineyard/+/plot/+/risk", "vineyard/+/plot/+/weather")
	defer col.Close()
	// Every plot's risk, read from the retained messages: at least two
	// hours of weather (the first hours come within seconds at the demo's
	// speed).
	risks := map[string]vinelive.Risk{}
	weather := map[string]bool{}
	waitDemo(t, "every plot's risk and weather on the bus", func() bool {
		for _, p := range col.Messages() {
			tp, err := event.ParseTopic(p.Topic)
			if err != nil {
				t.Fatalf("topic %s: %v", p.Topic, err)
			}
			switch tp.Event {
			case "risk":
				var r vinelive.Risk
				if err := json.Unmarshal(p.Payload, &r); err != nil {
					t.Fatalf("%s: %v: %s", p.Topic, err, p.Payload)
				}
				risks[tp.Asset] = r
			case "weather":
				weather[tp.Asset] = true
			}
		}
		for _, id := range plots {
			if risks[id].Hours < 2 || !weather[id] {
				return false
			}
		}
		return true
	}, func() string { return "risks " + strings.Join(mapKeysOf(risks), ",") })
	t.Logf("every plot's risk and weather %v after Start, at %s simulated", time.Since(t0).Round(10*time.Millisecond), d.Stats().SimTime.In(start.Location()).Format("15:04"))
	for _, id := range plots {
		r := risks[id]
		t.Logf("%s: %d hours to %s, level %s", id, r.Hours, r.Time.Format(time.RFC3339), r.Level)
		for _, dr := range r.Diseases {
			if n := len(dr.Days); n > 0 {
				t.Logf("  %s %s: %+v", dr.Disease, dr.Level, dr.Days[n-1].Reasons)
			}
		}
		if len(r.Diseases) != 3 || r.Date == "" || r.Time.Before(start) {
			t.Errorf("%s: risk %+v", id, r)
		}
	}
	// The service's API, as the demo serves it (no authentication: all
	// plots).
	code, b := get(vinelive.APIPrefix + "plots")
	var list []vinelive.PlotSummary
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list) != len(plots) {
		t.Fatalf("GET plots: %d %s", code, b)
	}
	for _, p := range list {
		if p.Hours < 2 || p.Level == nil {
			t.Errorf("plot %s: %+v", p.ID, p)
		}
	}
	if code, b := get(vinelive.APIPrefix + "plots/" + plots[0] + "/risk"); code != 200 || !strings.Contains(string(b), `"diseases"`) {
		t.Errorf("GET risk: %d %.300s", code, b)
	}
}

func mapKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
