package dashboardtest_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/internal/pahotest"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
)

// TestDashboardAlarms opens the Alarms view of the shared demo in headless
// Chromium: it loads without console errors, lists the open alarms,
// acknowledges one with its button — which an independent MQTT client
// (Eclipse Paho, MQTT 5) subscribed to the alarm's retained topic sees —,
// shows its history (the audit trail with the acknowledgement), and
// filters as the API does (the query string is the filter).
// CITYMESH_SCREENSHOTS=docs/screenshots writes alarms.png there.
func TestDashboardAlarms(t *testing.T) {
	chromium(t)
	dd := sharedDemo(t)
	// An alarm of a service of the test's own, on the demo's broker: a
	// real alarm.Manager that answers the acknowledgement.
	raised := raiseAlarm(t, dd, alarm.Condition{Key: alarm.Key{Site: "campus", Kind: "building", Asset: "b01", Type: "dashboard-check"},
		Severity: alarm.Major, Category: "security", Description: "the dashboard's test raised this alarm"})
	minor := raiseAlarm(t, dd, alarm.Condition{Key: alarm.Key{Site: "campus", Kind: "room", Asset: "b01-0.01", Type: "dashboard-drill"},
		Severity: alarm.Minor, Category: "security", Description: "a second alarm of the dashboard's test"})
	tb := newTab(t)
	tb.Open(dd.base + "/alarms")
	waitDemo(t, "the MQTT connection", func() bool { return tb.Text("#mqtt-state") == "connected" },
		func() string { return tb.Text("#mqtt-state") })

	// Its row, active, not acknowledged.
	type row struct{ ID, Topic, Status string }
	var target row
	waitDemo(t, "the alarm's row", func() bool {
		target = Eval[row](tb, `(() => {
			const r = document.querySelector('#alarms tr[data-id="`+raised.ID+`"]');
			return r ? {ID: r.dataset.id, Topic: r.dataset.topic, Status: r.cells[1].textContent + " " + r.cells[2].textContent} : {ID: "", Topic: "", Status: ""};
		})()`)
		return target.ID != ""
	}, func() string { return tb.Text("#alarms") })
	if want := raised.Topic(alarm.DefaultPrefix); target.Topic != want || target.Status != "active no" {
		t.Fatalf("row %+v, want topic %s, active, not acknowledged", target, want)
	}
	t.Logf("acknowledging %s (%s)", target.ID, target.Topic)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := pahotest.Subscribe(t, ctx, dd.d.Addr(node.ListenerMQTT).String(), pahotest.Options{ClientID: "alarms-watcher"}, target.Topic)
	// The retained alarm arrives first, not acknowledged.
	var first alarm.Alarm
	waitDemo(t, "the retained alarm", func() bool {
		for _, m := range sub.Messages() {
			if len(m.Payload) > 0 && json.Unmarshal(m.Payload, &first) == nil && first.ID == target.ID {
				return true
			}
		}
		return false
	}, func() string { return strconv.Itoa(len(sub.Messages())) + " messages" })
	if first.Acknowledged {
		t.Fatalf("the retained alarm is acknowledged already: %+v", first)
	}

	sel := `#alarms tr[data-id="` + target.ID + `"]`
	tb.Do("type a comment", chromedp.SendKeys(chromedp.CSS("#comment"), "seen on the dashboard"))
	clickRow(tb, sel+` button.ack`)

	// The subscriber sees the acknowledgement on the retained topic: the
	// alarm acknowledged by the page's user, or, had its service cleared
	// it meanwhile, closed (its retained message removed).
	var acked alarm.Alarm
	waitDemo(t, "the acknowledgement over MQTT", func() bool {
		for _, m := range sub.Messages() {
			if len(m.Payload) == 0 {
				t.Logf("the alarm closed (its service had cleared it)")
				return true
			}
			var a alarm.Alarm
			if json.Unmarshal(m.Payload, &a) == nil && a.ID == target.ID && a.Acknowledged {
				acked = a
				return true
			}
		}
		return false
	}, func() string { return strconv.Itoa(len(sub.Messages())) + " messages" })
	if acked.ID != "" {
		if acked.AcknowledgedBy != "admin" {
			t.Errorf("acknowledged by %q, want the page's user, admin", acked.AcknowledgedBy)
		}
		last := acked.Audit[len(acked.Audit)-1]
		if last.Action != alarm.ActionAcknowledged || last.Comment != "seen on the dashboard" {
			t.Errorf("the audit trail ends with %+v", last)
		}
	}
	waitDemo(t, "the page to say so", func() bool {
		return strings.Contains(tb.Text("#action-status"), "acknowledged")
	}, func() string { return tb.Text("#action-status") + " " + tb.Text("#action-error") })

	if acked.ID != "" {
		// The row says acknowledged; its history has the acknowledgement.
		waitDemo(t, "the row to be acknowledged", func() bool {
			return strings.HasPrefix(ackCell(tb, target.ID), "yes, by admin")
		}, func() string { return tb.Text("#alarms") })
		clickRow(tb, sel+` button.history`)
		if got := tb.Text("#audit"); !strings.Contains(got, "acknowledged") || !strings.Contains(got, "seen on the dashboard") {
			t.Errorf("history: %s", got)
		}
		if f := Eval[string](tb, `document.activeElement.id`); f != "h-audit" {
			t.Errorf("focus after opening the history on %q, want the history's heading", f)
		}
		tb.Do("close the history", chromedp.Click(chromedp.CSS("#audit-close")))
	}

	// The filter: acknowledged alarms only, from the query string; every
	// row acknowledged, the select showing it.
	tb.Open(dd.base + "/alarms?acknowledged=true&severity=critical,major,minor,warning,indeterminate")
	if v := Eval[string](tb, `document.getElementById("f-ack").value`); v != "true" {
		t.Errorf("acknowledged filter %q", v)
	}
	acks := Eval[[]string](tb, `[...document.querySelectorAll("#alarms tr[data-id] td:nth-child(3)")].map((c) => c.textContent)`)
	for _, a := range acks {
		if !strings.HasPrefix(a, "yes") {
			t.Errorf("filter acknowledged=true shows an alarm acknowledged %q", a)
		}
	}
	// Changing a select refilters and writes the query string.
	tb.Do("filter: not acknowledged",
		chromedp.SetValue(chromedp.CSS("#f-ack"), "false"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("filter").dispatchEvent(new Event("change"))`))
	waitDemo(t, "the query string", func() bool {
		return strings.Contains(Eval[string](tb, `location.search`), "acknowledged=false")
	}, func() string { return Eval[string](tb, `location.search`) })
	waitDemo(t, "unacknowledged alarms only", func() bool {
		rows := Eval[[]string](tb, `[...document.querySelectorAll("#alarms tr[data-id] td:nth-child(3)")].map((c) => c.textContent)`)
		for _, a := range rows {
			if a != "no" {
				return false
			}
		}
		return true
	}, func() string { return tb.Text("#alarms") })

	// A severity box: minor alarms only, the test's second among them.
	tb.Open(dd.base + "/alarms")
	tb.Do("filter: minor", chromedp.Click(chromedp.CSS(`#filter input[value="minor"]`)))
	waitDemo(t, "minor alarms only", func() bool {
		sev := Eval[[]string](tb, `[...document.querySelectorAll("#alarms tr[data-id]")].map((r) => r.dataset.id + " " + r.cells[0].textContent)`)
		found := false
		for _, s := range sev {
			id, v, _ := strings.Cut(s, " ")
			if v != "minor" {
				return false
			}
			found = found || id == minor.ID
		}
		return found && strings.Contains(Eval[string](tb, `location.search`), "severity=minor")
	}, func() string { return tb.Text("#alarms") })

	// With the keyboard: Enter on the second alarm's Acknowledge button
	// acknowledges it, and the keyboard stays on its row (its Clear).
	minorRow := `#alarms tr[data-id="` + minor.ID + `"]`
	// Focused from the page's script in one step: the table's rows are
	// replaced as alarms change (the keyboard stays on the same button,
	// keepFocus), so a node looked up before may be gone when focused.
	if !Eval[bool](tb, `(() => { const b = document.querySelector('`+minorRow+` button.ack'); b?.focus(); return !!b; })()`) {
		t.Fatal("the second alarm has no Acknowledge button")
	}
	tb.Do("acknowledge with the keyboard", chromedp.KeyEvent("\r"))
	waitDemo(t, "the second alarm acknowledged", func() bool {
		return strings.HasPrefix(ackCell(tb, minor.ID), "yes, by admin")
	}, func() string { return tb.Text("#alarms") + tb.Text("#action-error") })
	waitDemo(t, "the focus on the row's Clear", func() bool {
		return Eval[string](tb, `document.activeElement.className + " " + (document.activeElement.closest("tr")?.dataset.id ?? "")`) == "clear "+minor.ID
	}, func() string { return Eval[string](tb, `document.activeElement.outerHTML`) })

	if os.Getenv("CITYMESH_SCREENSHOTS") != "" {
		tb.Open(dd.base + "/alarms")
		tb.Screenshot("alarms")
	}
}

// raiseAlarm raises c with an alarm.Manager of the test's own (originator
// "dashboard-test", owning c's type) on the shared demo's broker, kept
// running until the test ends, and returns the alarm.
func raiseAlarm(t *testing.T, dd *dashDemo, c alarm.Condition) alarm.Alarm {
	t.Helper()
	b, err := bus.NewLocal(dd.d.Node().Broker(), "dashboard-test-"+c.Type)
	if err != nil {
		t.Fatal(err)
	}
	m, err := alarm.NewManager(alarm.Options{Bus: b, State: service.NewMemoryStore().State("alarm"), Originator: "dashboard-test",
		Types: []string{c.Type}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		// Closed, its retained message removed (by Run's last publish).
		m.ClearBy(ctx, c.Key, "dashboard-test", "the test ended")
		m.Acknowledge(ctx, c.Key, "dashboard-test", "the test ended")
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the test's alarm manager: %v", err)
		}
		b.Close()
	})
	select {
	case <-m.Ready():
	case err := <-done:
		t.Fatalf("the test's alarm manager: %v", err)
	}
	a, _, err := m.Raise(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ackCell returns the Acknowledged cell's text of the row of alarm id, ""
// without one, read in one go: the page replaces its rows as it refreshes.
func ackCell(tb *tab, id string) string {
	tb.t.Helper()
	return Eval[string](tb, `document.querySelector('#alarms tr[data-id="`+id+`"]')?.cells[2].textContent ?? ""`)
}

// clickRow clicks the enabled button sel of a table's row in one go (the
// views replace their rows as they refresh, which a query followed by a
// click can fall between).
func clickRow(tb *tab, sel string) {
	tb.t.Helper()
	waitDemo(tb.t, "a click on "+sel, func() bool {
		return Eval[bool](tb, `(() => { const b = document.querySelector('`+sel+`'); if (!b || b.disabled) return false; b.click(); return true; })()`)
	}, func() string { return "no enabled button " + sel })
}
