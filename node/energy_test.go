package node_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// TestNodeEnergyAccess: the energy service in a node's services section
// serves its API to tenants' users, each scoped to its tenant: on meter
// readings an independent MQTT client publishes, campus-service's user
// sees its invoice and its site's ESG figures, a user of another tenant
// sees none of them and 404 for campus-service's invoices, a user without
// a tenant gets 403 and a request without credentials 401.
func TestNodeEnergyAccess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := twinConfig(t, true)
	var sections map[string]service.Section
	src := "energy:\n  kind: energy\n  config:\n    campus: " + twinCampus + "\n    tariff: ../energy/live/campus-tariff.yaml\n    debounce: 10ms\n"
	if err := yaml.Unmarshal([]byte(src), &sections); err != nil {
		t.Fatal(err)
	}
	cfg.Services = sections
	cfg.ACL.Rules = append(cfg.ACL.Rules, auth.RuleConfig{Allow: []string{"read"}, Topics: []string{"energy/+/tenant/+/invoice"},
		Tenants: []string{"campus-service", "wartberg-growers"}})
	n := startNode(t, cfg, nil)
	addr, base := n.Addr(node.ListenerMQTT).String(), "http://"+n.Addr(node.ListenerHTTP).String()
	waitServicesRunning(t, n)

	// The last two hours of the small campus's meter readings, from its
	// simulator (the service's clock is the wall clock: a month long past
	// closes at once).
	m, err := campus.Load(twinCampus)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	out := &sim.MemoryOutput{}
	p, err := sim.NewPlayer(sim.PlayerConfig{Campus: m, Seed: 7, Start: from, Until: from.Add(2 * time.Hour), Outputs: sim.Outputs{Building: out}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	pub := pahoLogin(t, ctx, addr, "building-gateway", "ops", nil)
	defer pub.Disconnect(&paho.Disconnect{})
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
	if sent == 0 {
		t.Fatal("the simulator sent no meter readings")
	}
	var invs live.InvoiceList
	waitFor(t, 20*time.Second, "campus-service's running invoice", func() bool {
		code, body := twinGet(t, "GET", base+"/api/v1/energy/invoices", "ops")
		return code == 200 && json.Unmarshal(body, &invs) == nil && len(invs.Invoices) > 0
	})
	waitFor(t, 10*time.Second, "the campus's ESG figures", func() bool {
		code, body := twinGet(t, "GET", base+"/api/v1/energy/esg", "ops")
		return code == 200 && strings.Contains(string(body), `"site":"campus"`)
	})

	// Over MQTT: campus-service's own client reads its invoice in its
	// namespace, as energy/campus/tenant/campus-service/invoice; the
	// growers' client, subscribed to the same filter, gets none of it.
	var mu sync.Mutex
	got := map[string][]string{}
	on := func(user string) func(*paho.Publish) {
		return func(p *paho.Publish) {
			mu.Lock()
			got[user] = append(got[user], p.Topic+" "+string(p.Payload))
			mu.Unlock()
		}
	}
	cs := pahoLogin(t, ctx, addr, "cs-app", "cs", on("cs"))
	defer cs.Disconnect(&paho.Disconnect{})
	grower := pahoLogin(t, ctx, addr, "grower-app", "grower", on("grower"))
	defer grower.Disconnect(&paho.Disconnect{})
	if _, err := pub.Publish(ctx, &paho.Publish{Topic: "$tenant/wartberg-growers/energy/x/tenant/wartberg-growers/invoice", Payload: []byte("marker"), QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*paho.Client{cs, grower} {
		if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "energy/+/tenant/+/invoice", QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := func(user, sub string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range got[user] {
			if strings.Contains(m, sub) {
				return true
			}
		}
		return false
	}
	waitFor(t, 10*time.Second, "campus-service's invoice over MQTT", func() bool {
		return seen("cs", `energy/campus/tenant/campus-service/invoice {`) && seen("cs", `"tenant":"campus-service"`)
	})
	waitFor(t, 10*time.Second, "the growers' marker", func() bool { return seen("grower", "marker") })
	time.Sleep(200 * time.Millisecond) // the rest of the retained burst
	if seen("grower", "campus-service") {
		t.Errorf("the growers' client got campus-service's invoice: %q", got["grower"])
	}

	for _, c := range []struct {
		name, user, path string
		code             int
		has, lacks       string
	}{
		{"no credentials", "", "/api/v1/energy/invoices", 401, "", "campus-service"},
		{"administrator", "ops", "/api/v1/energy/invoices", 200, `"tenant":"campus-service"`, ""},
		{"own invoices", "cs", "/api/v1/energy/invoices", 200, `"tenant":"campus-service"`, ""},
		{"own tenant's", "cs", "/api/v1/energy/invoices/campus-service", 200, `"status":"running"`, ""},
		{"own site's ESG", "cs", "/api/v1/energy/esg", 200, `"site":"campus"`, ""},
		{"another tenant's invoices", "grower", "/api/v1/energy/invoices", 200, `{"invoices":[]}`, "campus-service"},
		{"another tenant's by name", "grower", "/api/v1/energy/invoices/campus-service", 404, "unknown tenant", `"invoice"`},
		{"another site's ESG", "grower", "/api/v1/energy/esg", 200, `{"esg":[]}`, "campus"},
		{"a tenant that is not the user's", "cs", "/api/v1/energy/invoices/library", 404, "unknown tenant", ""},
		{"no tenant", "plain", "/api/v1/energy/invoices", 403, "Forbidden", "campus-service"},
		{"no tenant, ESG", "plain", "/api/v1/energy/esg", 403, "Forbidden", "campus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, ctype, body := httpDo(t, "GET", base+c.path, c.user, "")
			if code != c.code || !strings.Contains(string(body), c.has) || (c.lacks != "" && strings.Contains(string(body), c.lacks)) {
				t.Errorf("GET %s as %q: %d %s", c.path, c.user, code, body)
			}
			if code >= 400 && ctype != "application/problem+json" {
				t.Errorf("GET %s as %q: content type %q, want application/problem+json", c.path, c.user, ctype)
			}
		})
	}
}
