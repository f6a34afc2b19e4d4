package dashboardtest_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestDashboardVineyard opens the Vineyard view of the shared demo: it
// loads without console errors; the plot's latest hour of weather changes
// on screen within seconds as the simulator's weather station reports (an
// hour every two seconds at 1,800×); the weather charts have their series
// with units; every disease has its level, and every day its reasons or
// "no rule fired"; the soil maps come as images with their units; the
// plot can be chosen with the keyboard. CITYMESH_SCREENSHOTS=docs/screenshots
// writes vineyard.png there.
func TestDashboardVineyard(t *testing.T) {
	chromium(t)
	dd := sharedDemo(t)
	tb := newTab(t)
	tb.Open(dd.base + "/vineyard?plot=wartberg-01") // a plot named in the address

	waitDemo(t, "the plot wartberg-01 in the table, chosen", func() bool {
		return textNow(tb, `#plots tr[data-plot="wartberg-01"] td.hours`) != "" &&
			Eval[string](tb, `document.querySelector("#plot").value`) == "wartberg-01" &&
			strings.Contains(textNow(tb, "#h-weather"), "wartberg-01")
	}, func() string { return textNow(tb, "#plots tbody") + " / " + textNow(tb, "#h-weather") })

	// The latest hour moves on screen as the simulated station reports.
	waitDemo(t, "the latest hour of weather", func() bool { return textNow(tb, "#plot-latest") != "–" },
		func() string { return textNow(tb, "#weather-empty") })
	first := textNow(tb, "#plot-latest")
	start := time.Now()
	waitDemo(t, "the latest hour to change on screen", func() bool { return textNow(tb, "#plot-latest") != first },
		func() string { return "still " + first })
	t.Logf("latest hour %s → %s on screen after %v", first, textNow(tb, "#plot-latest"), time.Since(start).Round(time.Millisecond))

	// Charts with units in their legends.
	for sel, want := range map[string]string{
		"#chart-temp .u-legend": "Temperature (°C)",
		"#chart-hum .u-legend":  "Relative humidity (%)",
		"#chart-rain .u-legend": "Rain (mm)",
	} {
		if got := textNow(tb, sel); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q in it", sel, got, want)
		}
	}

	// Risk: a card per disease with its level; each day with its reasons.
	for _, d := range []string{"downy_mildew", "powdery_mildew", "botrytis"} {
		sel := `#risk article[data-disease="` + d + `"]`
		waitDemo(t, d+"'s risk", func() bool {
			l := textNow(tb, sel+" output.level")
			return l == "none" || l == "low" || l == "moderate" || l == "high"
		}, func() string { return textNow(tb, "#risk") })
		if got := textNow(tb, sel+" tbody td.reasons"); got == "" {
			t.Errorf("%s: a day without reasons and without saying none fired", d)
		}
	}
	if got := textNow(tb, `#plots tr[data-plot="wartberg-01"] td.d-powdery_mildew`); got == "" || got == "–" {
		t.Errorf("powdery mildew in the plots' table: %q", got)
	}

	// Soil maps: the images (the probes report hourly), with their units.
	waitDemo(t, "the soil maps", func() bool {
		return Eval[int](tb, `[...document.querySelectorAll("#soil img:not([hidden])")].filter((i) => i.complete && i.naturalWidth > 0).length`) == 3
	}, func() string { return textNow(tb, "#soil") })
	if got := textNow(tb, "#soil"); !strings.Contains(got, "mg P/100 g") || !strings.Contains(got, "mg K/100 g") {
		t.Errorf("soil maps' captions: %q", got)
	}

	// Keyboard: the plot chooser and the span are reachable and work.
	tb.Do("choose 2 days with the keyboard", chromedp.Focus(chromedp.CSS("#days")), chromedp.KeyEvent(kb.ArrowUp))
	waitDemo(t, "2 days of weather", func() bool {
		return Eval[string](tb, `document.querySelector("#days").value`) == "2" && textNow(tb, "#plot-latest") != "–"
	}, func() string { return Eval[string](tb, `document.querySelector("#days").value`) })

	if os.Getenv("CITYMESH_SCREENSHOTS") != "" {
		Eval[bool](tb, `(() => { const s = document.querySelector("#days"); s.value = "7"; s.dispatchEvent(new Event("change")); return true; })()`)
		// Half a simulated day of weather (a second per hour at 1,800×).
		waitDemo(t, "12 hours of weather", func() bool {
			n, _ := strconv.Atoi(strings.TrimSuffix(textNow(tb, `#plots tr[data-plot="wartberg-01"] td.hours`), " h"))
			return n >= 12
		}, func() string { return textNow(tb, `#plots tr[data-plot="wartberg-01"] td.hours`) })
		tb.Screenshot("vineyard")
	}
}

// TestDashboardVineyardTenant signs in the wine growers' tenant user: its
// Vineyard view shows its plot, live over MQTT from its namespace (the
// vineyard service's tenant copies), not only from the API; another
// tenant's user sees no plot and gets no vineyard message over MQTT.
func TestDashboardVineyardTenant(t *testing.T) {
	chromium(t)
	dd := sharedDemo(t)
	grower := newTabAs(t, "wartberg-growers")
	grower.Open(dd.base + "/vineyard")
	waitDemo(t, "the growers' plot", func() bool {
		return Eval[bool](grower, `!!document.querySelector('#plots tr[data-plot="wartberg-01"]')`)
	}, func() string { return textNow(grower, "#plots tbody") })
	mqttCount := `document.body.dataset.mqttVineyard || "0"`
	waitDemo(t, "the plot's messages over MQTT in the tenant's namespace", func() bool {
		n, _ := strconv.Atoi(Eval[string](grower, mqttCount))
		return n > 0
	}, func() string { return Eval[string](grower, mqttCount) + " over MQTT" })
	waitDemo(t, "the plot's risk", func() bool {
		l := textNow(grower, `#risk article[data-disease="downy_mildew"] output.level`)
		return l == "none" || l == "low" || l == "moderate" || l == "high"
	}, func() string { return textNow(grower, "#risk") })

	other := newTabAs(t, "library")
	other.Open(dd.base + "/vineyard")
	waitDemo(t, "no plot for the library", func() bool {
		return strings.Contains(textNow(other, "#plots tbody"), "Your tenant has no plots.")
	}, func() string { return textNow(other, "#plots tbody") })
	// The grower's view got the retained messages at once on subscribing;
	// the library's, subscribed to the same filters, has had as long.
	waitDemo(t, "the library's MQTT connection", func() bool {
		return textNow(other, "#mqtt-state") == "connected"
	}, func() string { return textNow(other, "#mqtt-state") })
	before := Eval[string](grower, mqttCount)
	waitDemo(t, "another message for the grower", func() bool { return Eval[string](grower, mqttCount) != before },
		func() string { return "still " + before })
	if n := Eval[string](other, mqttCount); n != "0" {
		t.Errorf("the library's Vineyard view got %s vineyard messages over MQTT", n)
	}
	if n := Eval[int](other, `document.querySelectorAll("#plots tr[data-plot]").length`); n != 0 {
		t.Errorf("the library's Vineyard view shows %d plots", n)
	}
}
