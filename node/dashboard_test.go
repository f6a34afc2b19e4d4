package node_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/node"
)

// TestNodeDashboard: the node serves the dashboard at / and /static/ unless
// the program serves its own pages there.
func TestNodeDashboard(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pattern   string // the program's own page; "" none
		root      string // what / serves
		dashboard bool   // /static/overview.js is the dashboard's
	}{
		{"none", "", `<main id="main"`, true},
		{"pictures", "GET /pictures/", `<main id="main"`, true},
		{"own root", "/", "own page", false},
		{"own exact root", "GET /{$}", "own page", false},
		{"own static", "GET /static/", "404 page not found", false}, // the page would lack its files
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Store, cfg.WS = "memory", "off"
			n, err := node.New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if tc.pattern != "" {
				if err := n.Handle(tc.pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, "own page")
				})); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			base := "http://" + n.Addr(node.ListenerHTTP).String()
			get := func(path string) (*http.Response, string) {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp, string(b)
			}
			if resp, body := get("/"); !strings.Contains(body, tc.root) {
				t.Errorf("GET /: %d %.200q, want %q", resp.StatusCode, body, tc.root)
			}
			resp, body := get("/static/overview.js")
			if got := resp.StatusCode == 200 && strings.Contains(body, "import uPlot"); got != tc.dashboard {
				t.Errorf("GET /static/overview.js: %d %.100q; the dashboard's: %v, want %v", resp.StatusCode, body, got, tc.dashboard)
			}
			if resp, body := get("/healthz"); body != "ok\n" {
				t.Errorf("GET /healthz: %d %q", resp.StatusCode, body)
			}
		})
	}
}
