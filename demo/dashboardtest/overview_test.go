package dashboardtest_test

import (
	"cmp"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's Chromium (apt-get install chromium), or skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no chromium binary (/usr/bin/chromium; Debian: apt-get install chromium): the dashboard's browser test needs one")
	return ""
}

// TestDashboardOverview opens the dashboard of a running demo in headless
// Chromium, under the node's Content-Security-Policy: the Overview loads
// without console errors or exceptions, shows the services' count, a live
// events-per-second figure that changes within seconds and its MQTT
// connection. CITYMESH_DASHBOARD=http://127.0.0.1:8080/ runs it against a
// running `citymesh demo` instead, signed in as CITYMESH_USER (default
// admin) with CITYMESH_PASSWORD; CITYMESH_SCREENSHOTS=docs/screenshots
// writes overview.png there.
func TestDashboardOverview(t *testing.T) {
	chromium(t)
	page := os.Getenv("CITYMESH_DASHBOARD")
	if page == "" {
		page = sharedDemo(t).base + "/"
	}

	// The page is served with the CSP that forbids inline scripts and styles.
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != 200 || !strings.Contains(got, "script-src 'self'") || !strings.Contains(got, "style-src 'self'") {
		t.Fatalf("GET %s: %d, Content-Security-Policy %q", page, resp.StatusCode, got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q", page, ct)
	}

	var tb *tab
	if os.Getenv("CITYMESH_DASHBOARD") == "" {
		tb = newTab(t)
	} else {
		tb = newTabAs(t, "")
		if pw := os.Getenv("CITYMESH_PASSWORD"); pw != "" {
			user := cmp.Or(os.Getenv("CITYMESH_USER"), "admin")
			u, err := url.Parse(page)
			if err != nil {
				t.Fatal(err)
			}
			tb.Login(u.Scheme+"://"+u.Host, user, pw)
		}
	}
	tb.Open(page)
	firstMS := Eval[float64](tb, `performance.getEntriesByName("citymesh:first-data")[0].startTime`)
	t.Logf("first data rendered %.0f ms after navigation start", firstMS)

	waitDemo(t, "the services' count", func() bool {
		n, err := strconv.Atoi(tb.Text("#services-total"))
		return err == nil && n > 0
	}, func() string { return tb.Text("#services-total") })
	first := tb.Text("#eps")
	waitDemo(t, "the events per second to change", func() bool {
		s := tb.Text("#eps")
		return s != first && s != "–"
	}, func() string { return "still " + first })
	waitDemo(t, "the MQTT connection", func() bool { return tb.Text("#mqtt-state") == "connected" },
		func() string { return tb.Text("#mqtt-state") })
	waitDemo(t, "the twin's points", func() bool { return tb.Text("#points-total") != "–" },
		func() string { return tb.Text("#points-total") })

	if os.Getenv("CITYMESH_SCREENSHOTS") != "" {
		// A chart with half a minute of samples.
		samples := func() int {
			i, _ := strconv.Atoi(Eval[string](tb, `document.body.dataset.samples || "0"`))
			return i
		}
		for deadline := time.Now().Add(60 * time.Second); samples() < 15 && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		}
		t.Logf("%d samples of events/s", samples())
		tb.Screenshot("overview")
	}
}

// TestDashboardTenantOverview: a tenant's user signs in and the Overview
// shows its own running invoice and no other tenant's; its header names
// the user and the tenant; the page's own API calls for another tenant's
// invoice are refused like any other request of that user.
func TestDashboardTenantOverview(t *testing.T) {
	d := sharedDemo(t)
	tb := newTabAs(t, "campus-service")
	tb.Open(d.base + "/")
	if got := tb.Text("#user"); got != "campus-service (campus-service)" {
		t.Errorf("the header names %q", got)
	}
	var names []string
	for _, tn := range d.d.Model().Tenants {
		if tn.ID != "campus-service" {
			names = append(names, tn.Name)
		}
	}
	waitDemo(t, "the tenant's invoice on the Overview", func() bool {
		return strings.Contains(tb.Text("#invoices"), "Schwarz Campus Service")
	}, func() string { return tb.Text("#invoices") })
	table := tb.Text("#invoices")
	for _, n := range names {
		if strings.Contains(table, n) {
			t.Errorf("campus-service's Overview shows %s's invoice:\n%s", n, table)
		}
	}
	status := Eval[float64](tb, `fetch("/api/v1/energy/invoices/library").then((r) => r.status)`)
	if status != 404 && status != 403 {
		t.Errorf("campus-service's page reading library's invoice: HTTP %v", status)
	}
}
