package dashboardtest_test

import (
	"strconv"
	"testing"

	"github.com/citymesh/citymesh/alarm"
)

// TestDashboardMapAlarm raises an alarm on building b01 while the Campus
// map is open: its marker comes on the map within seconds (the page
// follows alarm/# over MQTT), with its type and asset in its title,
// reachable with the keyboard, and the count of placed alarms beside the
// map says so.
func TestDashboardMapAlarm(t *testing.T) {
	chromium(t)
	dd := sharedDemo(t)
	tb := newTab(t)
	tb.Open(dd.base + "/map")
	waitDemo(t, "the MQTT connection", func() bool { return tb.Text("#mqtt-state") == "connected" },
		func() string { return tb.Text("#mqtt-state") })
	placed := func() int {
		n, _ := strconv.Atoi(textNow(tb, "#n-alarms-placed"))
		return n
	}
	before := placed()
	raiseAlarm(t, dd, alarm.Condition{Key: alarm.Key{Site: "campus", Kind: "building", Asset: "b01", Type: "dashboard-map-check"},
		Severity: alarm.Critical, Category: "security", Description: "the map's test raised this alarm"})
	marker := `#map .leaflet-marker-icon[title="Alarm: dashboard-map-check on b01"]`
	waitDemo(t, "the alarm's marker", func() bool { return Eval[bool](tb, `!!document.querySelector('`+marker+`')`) },
		func() string { return "placed: " + textNow(tb, "#n-alarms-placed") })
	// At least one more: the demo's services may raise alarms of their own.
	if n := placed(); n <= before {
		t.Errorf("%d alarms placed on the map, before the alarm %d", n, before)
	}
	if tab := Eval[string](tb, `document.querySelector('`+marker+`').getAttribute("tabindex") ?? ""`); tab != "0" {
		t.Errorf("the alarm's marker has tabindex %q: not reachable with the keyboard", tab)
	}
}
