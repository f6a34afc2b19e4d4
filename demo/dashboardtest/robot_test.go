package dashboardtest_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/node"
	robotlive "github.com/citymesh/citymesh/robot/live"
	"github.com/citymesh/citymesh/sim"
)

// The Campus map and Robot views need the robot's incidents, which the
// shared demo (no faults) does not have, and the Robot test acts on them:
// their tests share a second demo of the small campus, with the fault
// scenario examples/sim/campus-faults.yaml (the escape route at b01
// blocked from 07:00, the robot off its corridor at 08:02, a water leak,
// downy-mildew weather, ...). TestDashboardRobot, which runs after
// TestDashboardMap, stops it when it ends, so that it does not run on
// beside the package's other tests; a later caller starts a new one.
var (
	faultDashMu  sync.Mutex
	faultDash    *dashDemo
	faultDashOff func()
)

// faultDemo returns the demo with the fault scenario, starting it if none
// runs; stopFaultDemo (or TestMain) stops it.
func faultDemo(t *testing.T) *dashDemo {
	t.Helper()
	faultDashMu.Lock()
	defer faultDashMu.Unlock()
	if faultDash != nil {
		return faultDash
	}
	f, err := os.Open(filepath.Join("..", "..", "examples", "sim", "campus-faults.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sim.ReadScenario(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := sim.NewFaultSet(sc.Faults)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "citymesh-dashboard-faults-")
	if err != nil {
		t.Fatal(err)
	}
	opts := options(t)
	opts.Data = dir
	opts.Faults = fs
	d, err := demo.New(opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("the demo with faults: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Start(ctx); err != nil {
		cancel()
		d.Close()
		os.RemoveAll(dir)
		t.Fatalf("the demo with faults: %v", err)
	}
	faultDash = &dashDemo{d: d, base: "http://" + d.Addr(node.ListenerHTTP).String()}
	faultDashOff = func() {
		cancel()
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "demo with faults: close:", err)
		}
		os.RemoveAll(dir)
	}
	dashStop = append(dashStop, stopFaultDemo)
	return faultDash
}

// stopFaultDemo stops the demo with faults, if one runs.
func stopFaultDemo() {
	faultDashMu.Lock()
	defer faultDashMu.Unlock()
	if faultDash == nil {
		return
	}
	faultDashOff()
	faultDash, faultDashOff = nil, nil
}

// dashboardTarget returns the base URL the test runs against
// (CITYMESH_DASHBOARD, a running `citymesh demo`, else the demo with
// faults) and the address of its MQTT listener (CITYMESH_DASHBOARD_MQTT
// with CITYMESH_DASHBOARD, host:port).
func dashboardTarget(t *testing.T) (base, mqttAddr string) {
	t.Helper()
	if b := os.Getenv("CITYMESH_DASHBOARD"); b != "" {
		b = strings.TrimSuffix(b, "/")
		if i := strings.Index(strings.TrimPrefix(strings.TrimPrefix(b, "http://"), "https://"), "/"); i >= 0 {
			b = b[:len(b)-len(strings.TrimPrefix(strings.TrimPrefix(b, "http://"), "https://"))+i]
		}
		return b, os.Getenv("CITYMESH_DASHBOARD_MQTT")
	}
	d := faultDemo(t)
	return d.base, d.d.Addr(node.ListenerMQTT).String()
}

// targetTab opens a tab signed in to the test's target: the demo with
// faults as its administrator, or a running demo (CITYMESH_DASHBOARD) as
// CITYMESH_USER (default admin) with CITYMESH_PASSWORD, if given.
func targetTab(t *testing.T, base string) *tab {
	t.Helper()
	tb := newTabAs(t, "")
	if os.Getenv("CITYMESH_DASHBOARD") != "" {
		if pw := os.Getenv("CITYMESH_PASSWORD"); pw != "" {
			tb.Login(base, cmp.Or(os.Getenv("CITYMESH_USER"), "admin"), pw)
		}
		return tb
	}
	u := faultDemo(t).user(t, "admin")
	tb.Login(base, u.Name, u.Password)
	return tb
}

// watchCSP makes every Content-Security-Policy violation in the tab's
// documents a console error, which fails the test (the harness fails on
// console errors; Chromium reports violations to its log, not the console
// API).
func watchCSP(tb *tab) {
	tb.t.Helper()
	const script = `document.addEventListener("securitypolicyviolation", (e) =>
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`
	tb.Do("watch CSP violations", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return chromedp.Void{}, err
	})
}

// TestDashboardRobot opens the Robot view of a demo whose robot finds the
// blocked escape route at b01: the view loads without console errors or
// CSP violations; the robot's marker moves on the track and its position
// changes on screen within seconds as the simulator moves it; its battery
// and status come from the twin; the incident is listed with its picture
// (loaded, from the robot API) and its audit trail; acknowledging it with
// a note in the UI is seen by an independent MQTT subscriber (Debian's
// mosquitto_sub) on the incident's topic, with the note and who acted, and
// the UI's audit trail shows it; start, resolve and close then follow from
// the buttons, each seen over MQTT, and a button the lifecycle does not
// allow is disabled. CITYMESH_DASHBOARD (with CITYMESH_DASHBOARD_MQTT)
// runs it against a running demo; CITYMESH_SCREENSHOTS writes robot.png.
func TestDashboardRobot(t *testing.T) {
	chromium(t)
	base, mqttAddr := dashboardTarget(t)
	t.Cleanup(stopFaultDemo) // after the tab's cleanup (cleanups run last first)
	tb := targetTab(t, base)
	tb.Open(base + "/robot")

	// The robot moves on screen.
	waitDemo(t, "the robot's position", func() bool { return tb.Text("#robot-pos") != "–" }, func() string { return tb.Text("#robot-pos") })
	pos, d := tb.Text("#robot-pos"), Eval[string](tb, `document.querySelector("#track path.robot-marker")?.getAttribute("d") ?? ""`)
	if d == "" {
		t.Fatal("no robot marker on the track")
	}
	waitDemo(t, "the robot to move on screen", func() bool {
		return tb.Text("#robot-pos") != pos && Eval[string](tb, `document.querySelector("#track path.robot-marker").getAttribute("d")`) != d
	}, func() string { return "still at " + pos })
	waitDemo(t, "the robot's battery (%) and status from the twin", func() bool {
		_, err := strconv.ParseFloat(tb.Text("#robot-battery"), 64)
		return err == nil && tb.Text("#robot-status") != "–"
	}, func() string { return tb.Text("#robot-battery") + " " + tb.Text("#robot-status") })
	waitDemo(t, "the patrol's waypoints", func() bool { return strings.Contains(tb.Text("#waypoints"), "wp02") },
		func() string { return tb.Text("#waypoints") })

	// The blocked escape route's incident, with its picture.
	const card = `#incident-list article.incident[data-state="new"]`
	var id string
	waitDemo(t, "the escape route's incident, new, with a picture", func() bool {
		id = Eval[string](tb, `[...document.querySelectorAll('`+card+`')].find((e) => e.querySelector("h4").textContent.startsWith("Escape route blocked") && e.querySelector(".pictures img"))?.id ?? ""`)
		return id != ""
	}, func() string { return textOf(tb, "#incident-list") })
	sel := "#" + id
	incID := strings.TrimPrefix(id, "incident-")
	waitDemo(t, "its picture to load", func() bool {
		return Eval[bool](tb, `(() => { const i = document.querySelector("`+sel+` .pictures img"); return !!i && i.complete && i.naturalWidth > 0; })()`)
	}, func() string { return Eval[string](tb, `document.querySelector("`+sel+` .pictures img").src`) })
	if a := textOf(tb, sel+" table.audit tbody"); !strings.Contains(a, "robot") || !strings.Contains(a, "open") {
		t.Errorf("audit trail of a new incident: %q", a)
	}
	if Eval[bool](tb, `document.querySelector("`+sel+` button.act-close").disabled`) == false {
		t.Error("close is enabled on a new incident")
	}

	// Acknowledge it in the UI; an MQTT subscriber sees it.
	topic := robotlive.IncidentTopic("campus", incID)
	if mqttAddr == "" {
		t.Fatal("CITYMESH_DASHBOARD_MQTT (host:port) is needed with CITYMESH_DASHBOARD")
	}
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Skip("no mosquitto_sub (Debian: apt-get install mosquitto-clients)")
	}
	host, port, _ := strings.Cut(mqttAddr, ":")
	sub := exec.Command("mosquitto_sub", "-h", host, "-p", port, "-V", "mqttv5", "-t", topic, "-F", "%p", "-W", "90")
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sub.Process.Kill(); sub.Wait() }()
	states := make(chan robotlive.Incident, 16)
	go func() {
		dec := json.NewDecoder(out)
		for {
			var inc robotlive.Incident
			if err := dec.Decode(&inc); err != nil {
				close(states)
				return
			}
			states <- inc
		}
	}()
	// The retained state first: new.
	waitState := func(want string) robotlive.Incident {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case inc, ok := <-states:
				if !ok {
					t.Fatalf("mosquitto_sub ended before %s", want)
				}
				if string(inc.State) == want {
					return inc
				}
			case <-timeout:
				t.Fatalf("mosquitto_sub: no %s state of %s within 30 s", want, incID)
			}
		}
	}
	waitState("new")

	clicked := time.Now()
	tb.Do("acknowledge with a note",
		chromedp.SendKeys(chromedp.CSS(sel+" .actions input"), "on my way"),
		chromedp.Click(chromedp.CSS(sel+" button.act-acknowledge")))
	inc := waitState("acknowledged")
	t.Logf("the acknowledgement seen over MQTT %v after the click", time.Since(clicked).Round(time.Millisecond))
	last := inc.Audit[len(inc.Audit)-1]
	if last.Action != "acknowledge" || last.Note != "on my way" || last.Actor == "" || last.Actor == "robot" {
		t.Errorf("audit entry over MQTT: %+v", last)
	}
	waitDemo(t, "the audit trail to show the acknowledgement", func() bool {
		a := textOf(tb, sel+" table.audit tbody")
		return strings.Contains(a, "acknowledge") && strings.Contains(a, "on my way") && strings.Contains(a, last.Actor)
	}, func() string { return textOf(tb, sel+" table.audit tbody") })
	if s := textOf(tb, sel+" .state"); !strings.Contains(s, "acknowledged") {
		t.Errorf("state badge %q", s)
	}
	if st := tb.Text("#action-status"); !strings.Contains(st, "acknowledged") {
		t.Errorf("status line %q", st)
	}

	// A screenshot with the acknowledged incident.
	if os.Getenv("CITYMESH_SCREENSHOTS") != "" {
		tb.Screenshot("robot")
	}

	// Start, resolve, close: each button, each state over MQTT.
	for _, c := range []struct{ button, state string }{{"start", "in_progress"}, {"resolve", "resolved"}} {
		tb.Do(c.button, chromedp.Click(chromedp.CSS(sel+" button.act-"+c.button)))
		waitState(c.state)
	}
	// Close. The robot reopens a resolved incident when it sees the
	// anomaly again (the fault may still be on): then resolve it again.
	press := func(state, button string) {
		t.Helper()
		waitDemo(t, "the card in state "+state, func() bool {
			return Eval[string](tb, `document.querySelector("`+sel+`")?.dataset.state ?? ""`) == state
		}, func() string { return textOf(tb, sel+" .state") })
		tb.Do(button, chromedp.Click(chromedp.CSS(sel+" button.act-"+button)))
	}
	press("resolved", "close")
	deadline := time.After(60 * time.Second)
	for closed := false; !closed; {
		select {
		case inc, ok := <-states:
			if !ok {
				t.Fatal("mosquitto_sub ended before the incident closed")
			}
			switch inc.State {
			case "closed":
				closed = true
			case "in_progress":
				t.Logf("reopened by %s: resolved again", inc.Audit[len(inc.Audit)-1].Actor)
				press("in_progress", "resolve")
			case "resolved":
				press("resolved", "close")
			}
		case <-deadline:
			t.Fatalf("mosquitto_sub: %s not closed within 60 s", incID)
		}
	}
	// Closed: gone from the incidents to do, listed under "closed".
	waitDemo(t, "the closed incident to leave the list of those to do", func() bool {
		return Eval[bool](tb, `!document.querySelector("`+sel+`")`)
	}, func() string { return textOf(tb, "#incident-list") })
	Eval[bool](tb, `(() => { const s = document.querySelector("#state"); s.value = "closed"; return s.dispatchEvent(new Event("change")); })()`)
	waitDemo(t, "the closed incident under closed, with its audit trail", func() bool {
		return Eval[bool](tb, `!!document.querySelector("`+sel+`[data-state=closed]")`) &&
			strings.Contains(textOf(tb, sel+" table.audit tbody"), "close")
	}, func() string { return textOf(tb, "#incident-list") })
}

// textOf returns the text of the first element matching sel, read in one
// evaluation (a live page may replace the element between a query and a
// read); "" when there is none.
func textOf(tb *tab, sel string) string {
	tb.t.Helper()
	b, _ := json.Marshal(sel)
	return strings.TrimSpace(Eval[string](tb, `document.querySelector(`+string(b)+`)?.textContent ?? ""`))
}
