package node_test

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
	vinelive "github.com/citymesh/citymesh/vineyard/live"
)

// TestNodeVineyardAccess: the vineyard service in a node's services
// section, its API behind the broker's users: the administrator sees every
// plot, the growers' user its tenant's plot, another tenant's user none
// (its list empty, the plot not found), and a caller without credentials
// is refused.
func TestNodeVineyardAccess(t *testing.T) {
	cfg := twinConfig(t, true)
	var s map[string]service.Section
	if err := yaml.Unmarshal([]byte("vines:\n  kind: vineyard\n  config:\n    campus: "+twinCampus+"\n"), &s); err != nil {
		t.Fatal(err)
	}
	cfg.Services = s
	n := startNode(t, cfg, nil)
	base := "http://" + n.Addr(node.ListenerHTTP).String() + vinelive.APIPrefix
	waitServicesRunning(t, n)

	for _, tc := range []struct {
		name, user, path string
		code             int
		plots            []string // for the plot list
	}{
		{"no credentials", "", "plots", 401, nil},
		{"wrong password", "wrong", "plots", 401, nil},
		{"administrator", "ops", "plots", 200, []string{"wartberg-01"}},
		{"grower", "grower", "plots", 200, []string{"wartberg-01"}},
		{"another tenant's user", "cs", "plots", 200, []string{}},
		{"grower's plot", "grower", "plots/wartberg-01/risk", 200, nil},
		{"grower's weather", "grower", "plots/wartberg-01/weather", 200, nil},
		{"another tenant's plot", "cs", "plots/wartberg-01/risk", 404, nil},
		{"another tenant's samples", "cs", "plots/wartberg-01/samples", 404, nil},
		{"another tenant's post", "cs", "plots/wartberg-01/samples", 404, nil},
		{"unknown plot", "ops", "plots/nowhere/risk", 404, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, body := "GET", ""
			if strings.HasSuffix(tc.name, "post") {
				method, body = "POST", `{"samples":[]}`
			}
			code, ctype, b := httpDo(t, method, base+tc.path, tc.user, body)
			if code != tc.code {
				t.Fatalf("%s %s as %q: %d %s, want %d", method, tc.path, tc.user, code, b, tc.code)
			}
			if code >= 400 {
				var p service.Problem
				if ctype != "application/problem+json" || json.Unmarshal(b, &p) != nil || p.Status != code {
					t.Errorf("not a problem details answer: %s %s", ctype, b)
				}
				return
			}
			if tc.plots == nil {
				return
			}
			var list []vinelive.PlotSummary
			if err := json.Unmarshal(b, &list); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			ids := []string{}
			for _, p := range list {
				ids = append(ids, p.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.plots, ",") {
				t.Errorf("plots %v, want %v", ids, tc.plots)
			}
		})
	}
}
