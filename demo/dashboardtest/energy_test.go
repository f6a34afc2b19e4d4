package dashboardtest_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// amount is how the Energy view shows an invoice's amount: the energy
// service's decimal string, to the cent, with its currency.
var amount = regexp.MustCompile(`^-?[0-9]+\.[0-9]{2} EUR$`)

// apiGross returns the running invoice total of site/tenant as the energy
// API gives it ("" without one).
func apiGross(t *testing.T, base, site, tenant string) string {
	t.Helper()
	resp := sharedDemo(t).get(t, "admin", "/api/v1/energy/invoices?site="+site)
	defer resp.Body.Close()
	var out struct {
		Invoices []struct {
			Site    string `json:"site"`
			Invoice struct {
				Tenant   string `json:"tenant"`
				Gross    string `json:"gross"`
				Currency string `json:"currency"`
			} `json:"invoice"`
		} `json:"invoices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET invoices: %v", err)
	}
	for _, iv := range out.Invoices {
		if iv.Site == site && iv.Invoice.Tenant == tenant {
			return iv.Invoice.Gross + " " + iv.Invoice.Currency
		}
	}
	return ""
}

// TestDashboardEnergy opens the Energy view of the shared demo: it loads
// without console errors; the running invoice's total is shown to the
// cent as the energy service's API gives it and changes on screen, live
// over MQTT, as the simulator's readings come; the buildings' power, the
// consumption charts per building and per tenant, and the ESG figures with
// their units are on the page; the carrier can be changed with the
// keyboard. CITYMESH_SCREENSHOTS=docs/screenshots writes energy.png there.
func TestDashboardEnergy(t *testing.T) {
	chromium(t)
	dd := sharedDemo(t)
	tb := newTab(t)
	tb.Open(dd.base + "/energy")

	row := `#invoices tbody tr[data-key="campus/campus-service"]`
	waitDemo(t, "the running invoice of campus-service", func() bool {
		return Eval[bool](tb, `!!document.querySelector('`+row+`')`)
	}, func() string { return textNow(tb, "#invoices tbody") })
	first := textNow(tb, row+" td.gross")
	if !amount.MatchString(first) {
		t.Fatalf("invoice total %q: want a decimal to the cent with its currency", first)
	}

	// The total changes on screen as the simulated meters read (every 15
	// simulated minutes, half a second at 1,800×), within seconds.
	start := time.Now()
	waitDemo(t, "the invoice total to change on screen", func() bool {
		return textNow(tb, row+" td.gross") != first
	}, func() string { return "still " + first })
	t.Logf("invoice total %s → %s on screen after %v", first, textNow(tb, row+" td.gross"), time.Since(start).Round(time.Millisecond))
	if n, _ := strconv.Atoi(Eval[string](tb, `document.body.dataset.mqttInvoices || "0"`)); n == 0 {
		t.Errorf("no invoice came over MQTT")
	}
	if n, _ := strconv.Atoi(textNow(tb, "#inv-updates")); n == 0 {
		t.Errorf("no invoice update counted")
	}
	// What the page shows is what the service computes: at some moment the
	// page and the API agree (both move on while we look).
	waitDemo(t, "the page's total to equal the API's", func() bool {
		page := textNow(tb, row+" td.gross")
		return page == apiGross(t, dd.base, "campus", "campus-service") && amount.MatchString(page)
	}, func() string {
		return textNow(tb, row+" td.gross") + " on the page, " + apiGross(t, dd.base, "campus", "campus-service") + " in the API"
	})

	// Buildings: b01's power now, its consumption in the period with units.
	waitDemo(t, "building b01's power", func() bool {
		return strings.HasSuffix(textNow(tb, `#buildings tr[data-building="b01"] td.power`), " kW")
	}, func() string { return textNow(tb, "#buildings tbody") })
	waitDemo(t, "building b01's consumption in the period", func() bool {
		s := textNow(tb, `#buildings tr[data-building="b01"] td[data-carrier="electricity"]`)
		return strings.HasSuffix(s, " kWh") && strings.Contains(textNow(tb, "#buildings thead"), "Electricity (kWh)")
	}, func() string { return textNow(tb, `#buildings tr[data-building="b01"]`) })

	// Charts: one series per building and per tenant, with the unit.
	waitDemo(t, "the consumption charts", func() bool {
		return Eval[bool](tb, `!!document.querySelector("#chart-building canvas") && !!document.querySelector("#chart-tenant canvas")`) &&
			strings.Contains(textNow(tb, "#chart-building .u-legend"), "b01 (kWh/h)") &&
			strings.Contains(textNow(tb, "#chart-tenant .u-legend"), "campus-service (kWh/h)")
	}, func() string { return textNow(tb, "#h-history") + ": " + textNow(tb, "#history-note") })

	// ESG: the site's month with kWh and kg CO2e.
	waitDemo(t, "the ESG figures", func() bool {
		return strings.HasSuffix(textNow(tb, `#esg tr[data-key="campus/2026-05"] td.co2-location`), " kg CO2e")
	}, func() string { return textNow(tb, "#esg tbody") })
	if s := textNow(tb, "#elec-month"); s == "–" {
		t.Errorf("electricity of the month: %q", s)
	}

	// Keyboard: focus the carrier, choose heat with the arrow key.
	tb.Do("choose heat with the keyboard", chromedp.Focus(chromedp.CSS("#carrier")), chromedp.KeyEvent(kb.ArrowDown))
	waitDemo(t, "the heat chart", func() bool {
		return Eval[string](tb, `document.querySelector("#carrier").value`) != "electricity" &&
			strings.Contains(textNow(tb, "#chart-building .u-legend"), "b01 (")
	}, func() string { return Eval[string](tb, `document.querySelector("#carrier").value`) })

	if os.Getenv("CITYMESH_SCREENSHOTS") != "" {
		Eval[bool](tb, `(() => { const s = document.querySelector("#carrier"); s.value = "electricity"; s.dispatchEvent(new Event("change")); return true; })()`)
		// Half a simulated day of history in the charts (a second at most
		// per hour at 1,800×).
		waitDemo(t, "12 hours in the charts", func() bool {
			n, _ := strconv.Atoi(Eval[string](tb, `document.body.dataset.hours || "0"`))
			return n >= 12
		}, func() string { return textNow(tb, "#history-note") })
		waitDemo(t, "the electricity chart again", func() bool {
			return strings.Contains(textNow(tb, "#chart-building .u-legend"), "b01 (kWh/h)")
		}, func() string { return textNow(tb, "#chart-building .u-legend") })
		tb.Screenshot("energy")
	}
}

// textNow returns the trimmed text of the first element matching the CSS
// selector sel ("" without one), read in one evaluation: the views replace
// their tables' bodies as data comes, so a query and a later read of the
// node it found may miss.
func textNow(tb *tab, sel string) string {
	tb.t.Helper()
	q, _ := json.Marshal(sel)
	return Eval[string](tb, `(document.querySelector(`+string(q)+`)?.textContent ?? "").trim()`)
}

// TestDashboardEnergyTenant: a tenant's user sees on the Energy view its
// own running invoice, live over MQTT in its namespace, and no other
// tenant's, and only buildings where it has meters.
func TestDashboardEnergyTenant(t *testing.T) {
	chromium(t)
	dd := sharedDemo(t)
	tb := newTabAs(t, "campus-service")
	tb.Open(dd.base + "/energy")
	own := `#invoices tbody tr[data-key="campus/campus-service"]`
	waitDemo(t, "campus-service's invoice", func() bool {
		return Eval[bool](tb, `!!document.querySelector('`+own+`')`)
	}, func() string { return textNow(tb, "#invoices tbody") })
	// It came over MQTT, in the tenant's namespace (the energy service's
	// tenant's copy), not only from the API.
	waitDemo(t, "an invoice over MQTT in the tenant's namespace", func() bool {
		n, _ := strconv.Atoi(Eval[string](tb, `document.body.dataset.mqttInvoices || "0"`))
		return n > 0
	}, func() string { return Eval[string](tb, `document.body.dataset.mqttInvoices || "0"`) + " over MQTT" })
	keys := Eval[[]string](tb, `[...document.querySelectorAll("#invoices tbody tr[data-key]")].map((r) => r.dataset.key)`)
	for _, k := range keys {
		if k != "campus/campus-service" {
			t.Errorf("campus-service's Energy view shows the invoice %s", k)
		}
	}
	all := len(Eval[[]string](tb, `[...document.querySelectorAll("#buildings tbody tr[data-building]")].map((r) => r.dataset.building)`))
	admin := newTab(t)
	admin.Open(dd.base + "/energy")
	waitDemo(t, "the administrator's buildings", func() bool {
		return Eval[int](admin, `document.querySelectorAll("#buildings tbody tr[data-building]").length`) > 0
	}, func() string { return textNow(admin, "#buildings tbody") })
	if n := Eval[int](admin, `document.querySelectorAll("#buildings tbody tr[data-building]").length`); all > n {
		t.Errorf("the tenant sees %d buildings, the administrator %d", all, n)
	}
}
