package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/internal/pahotest"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
)

// TestDemoEnergy: the demo runs the energy service on the campus with the
// reference tariff: it is listed running in /api/v1/services, and within
// seconds of the demo's start (a quarter of an hour's readings take half a
// second at the test's speed) campus-service's running invoice of the
// simulated month and the campus's ESG figures are served by its API and
// retained on the bus, where an independent MQTT client reads them.
func TestDemoEnergy(t *testing.T) {
	d, err := demo.New(options(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Start(ctx); err != nil {
		d.Close()
		t.Fatal(err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	base := "http://" + d.Addr(node.ListenerHTTP).String()
	get := func(path string, v any) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, v)
		return resp.StatusCode, string(b)
	}
	var health string
	waitDemo(t, "the energy service to run", func() bool {
		var l service.ServiceList
		_, health = get(node.ServicesPrefix, &l)
		for _, h := range l.Services {
			if h.Name == live.Kind {
				return h.Status == service.StatusRunning
			}
		}
		return false
	}, func() string { return health })

	period := start.Format("2006-01")
	var invs live.InvoiceList
	var body string
	waitDemo(t, "campus-service's running invoice", func() bool {
		_, body = get(live.APIPrefix+"invoices/campus-service", &invs)
		for _, ev := range invs.Invoices {
			if ev.Period == period && ev.Status == live.StatusRunning && ev.Updated.After(start) && ev.Invoice.Gross.Sign() > 0 {
				return true
			}
		}
		return false
	}, func() string { return body })
	var esg live.ESGList
	waitDemo(t, "the campus's ESG figures", func() bool {
		_, body = get(live.APIPrefix+"esg?site=campus", &esg)
		return len(esg.ESG) == 1 && esg.ESG[0].Period == period && esg.ESG[0].TotalMWh > 0
	}, func() string { return body })

	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	col := pahotest.Subscribe(t, sctx, d.Addr(node.ListenerMQTT).String(), pahotest.Options{ClientID: "energy-reader"},
		live.InvoiceTopic("campus", "campus-service", live.EventInvoice), live.ESGTopic("campus"))
	defer col.Close()
	var got map[string]bool
	waitDemo(t, "the retained invoice and ESG figures", func() bool {
		got = map[string]bool{}
		for _, p := range col.Messages() {
			var ev struct {
				Period string `json:"period"`
				Status string `json:"status"`
			}
			if json.Unmarshal(p.Payload, &ev) == nil && ev.Period == period && ev.Status == live.StatusRunning {
				got[p.Topic] = true
			}
		}
		return len(got) == 2
	}, func() string { return body })
}
