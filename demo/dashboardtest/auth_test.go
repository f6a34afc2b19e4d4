package dashboardtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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

// The security tests of the dashboard run against a node with users (a
// password file): the shared demo serves everyone without a login.

// authPassword is every test user's password.
const authPassword = "a-long-enough-password"

// authUsers writes a password file with an administrator (admin), an
// operator (operator), and a user of each of two tenants of the small
// campus (cs: campus-service, grower: wartberg-growers).
func authUsers(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	f := auth.NewPasswordFile(path)
	for _, u := range []struct{ name, group, tenant string }{
		{"admin", auth.AdminGroup, ""}, {"operator", "operator", ""}, {"cs", "", "campus-service"}, {"grower", "", "wartberg-growers"},
	} {
		hash, err := auth.HashPassword([]byte(authPassword), auth.HashParams{Bcrypt: true, Cost: 4})
		if err != nil {
			t.Fatal(err)
		}
		var groups []string
		if u.group != "" {
			groups = []string{u.group}
		}
		if err := f.Set(u.name, hash, groups, u.tenant); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	return path
}

// authNode starts a node with the users of authUsers, serving the
// dashboard on its HTTP listener, with the energy service of the small
// campus when energy is set; it is closed when the test ends.
func authNode(t *testing.T, energy bool) *node.Node {
	t.Helper()
	cfg := node.Default()
	cfg.MQTT, cfg.WS, cfg.HTTP = "127.0.0.1:0", "off", "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.SysIntervalSeconds = -1
	cfg.Auth.PasswordFile = authUsers(t)
	cfg.Services = map[string]service.Section{} // the alarm API
	if energy {
		var sections map[string]service.Section
		src := "energy:\n  kind: energy\n  config:\n    campus: " + smallCampus + "\n    tariff: ../../energy/live/campus-tariff.yaml\n    debounce: 10ms\n"
		if err := yaml.Unmarshal([]byte(src), &sections); err != nil {
			t.Fatal(err)
		}
		cfg.Services = sections
	}
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// basicGet does GET url as user (HTTP Basic; "" for none) and returns the
// status and body.
func basicGet(t *testing.T, url, user string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, authPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// signIn fills the sign-in page, which the tab shows, with user and
// password and clicks its button.
func (tb *tab) signIn(user, password string) {
	tb.t.Helper()
	tb.Do("sign in as "+user,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("username").value = ""; document.getElementById("password").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#username`), user),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
}

// status fetches path from the page with init (a JavaScript object
// literal, "{}" for a GET) and returns the answer's status.
func (tb *tab) status(path, init string) int {
	tb.t.Helper()
	return Eval[int](tb, `fetch(`+strconv.Quote(path)+`, `+init+`).then((r) => r.status)`)
}

// goTo sends the tab to url from the page, without waiting for the page
// to load: a view without a session replaces itself by the sign-in page
// before it loads, which chromedp.Navigate would wait for in vain.
// It returns once the tab has left the page it was on (a new document).
func (tb *tab) goTo(url string) {
	tb.t.Helper()
	was := Eval[float64](tb, `performance.timeOrigin`)
	tb.Do("go to "+url, chromedp.Evaluate[chromedp.Void](`location.assign(`+strconv.Quote(url)+`)`))
	waitDemo(tb.t, "the tab to leave its page for "+url, func() bool {
		// While the tab navigates, evaluating may fail: try again.
		now, err := chromedp.Run(tb.ctx, chromedp.Evaluate[float64](`performance.timeOrigin`))
		return err == nil && now != was
	}, func() string { return "still on the page it was on" })
}

// location returns the page's path and query.
func (tb *tab) location() string { return Eval[string](tb, `location.pathname + location.search`) }

// TestDashboardAuthLogin signs in and out in headless Chromium on a node
// with users: a page without a session goes to the sign-in page and comes
// back after it; a wrong password is refused on the page; the session
// cookie is HttpOnly; a state-changing fetch with the cookie but without
// X-CSRF-Token gets 403 (with it, the same request succeeds); after
// logging out, the API answers 401 and pages go to the sign-in page. An
// operator sees the Broker & mesh view; a tenant's user neither sees it in
// the navigation nor gets its API. CITYMESH_SCREENSHOTS=docs/screenshots
// writes login.png there.
func TestDashboardAuthLogin(t *testing.T) {
	chromium(t)
	n := authNode(t, false)
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	tb := newTabAs(t, "")

	// No session: the page goes to the sign-in page, to come back.
	tb.goTo(base + "/alarms")
	tb.Do("the sign-in page", chromedp.WaitVisible(chromedp.CSS(`#username`)))
	if got := tb.location(); got != "/login?next=%2Falarms" {
		t.Errorf("without a session /alarms went to %s", got)
	}
	if os.Getenv("CITYMESH_SCREENSHOTS") != "" {
		tb.Screenshot("login")
	}
	tb.signIn("admin", "not-the-password")
	waitDemo(t, "the refusal on the page", func() bool { return tb.Text("#login-error") == "wrong user name or password" },
		func() string { return tb.Text("#login-error") })
	tb.signIn("admin", authPassword)
	tb.Do("back on the alarms", chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
	if got := tb.location(); got != "/alarms" {
		t.Errorf("after signing in: %s, want /alarms", got)
	}
	if got := tb.Text("#user"); got != "admin" {
		t.Errorf("signed in as %q", got)
	}
	// The page's MQTT over WebSocket is logged in by the cookie.
	waitDemo(t, "the page's MQTT connection", func() bool { return tb.Text("#mqtt-state") == "connected" },
		func() string { return tb.Text("#mqtt-state") })
	if c := Eval[string](tb, `document.cookie`); c != "" {
		t.Errorf("the page's script reads cookies %q: the session cookie must be HttpOnly", c)
	}

	// CSRF: the cookie alone does not change state.
	publish := `{method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({topic: "dashboard/csrf", payload: "x"})}`
	for _, c := range []struct{ path, init string }{
		{"/api/v1/broker/publish", publish},
		{"/api/v1/broker/clients/someone", `{method: "DELETE"}`},
		{"/api/v1/broker/retained/a/b", `{method: "DELETE"}`},
		{"/api/v1/alarms/alarm:campus:building:b01:x:1/ack", `{method: "POST"}`},
		{"/api/v1/session", `{method: "DELETE"}`},
	} {
		if got := tb.status(c.path, c.init); got != http.StatusForbidden {
			t.Errorf("%s %s with the cookie, without %s: %d, want 403", c.init, c.path, "X-CSRF-Token", got)
		}
	}
	// With the session's token, the same publish goes through.
	withToken := `fetch("/api/v1/session").then((r) => r.json()).then((s) => fetch("/api/v1/broker/publish", {method: "POST",
		headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf_token}, body: JSON.stringify({topic: "dashboard/csrf", payload: "x"})}))
		.then((r) => r.status)`
	if got := Eval[int](tb, withToken); got != http.StatusOK {
		t.Errorf("publish with the CSRF token: %d, want 200", got)
	}

	// Log out: the API answers 401, pages go to the sign-in page.
	tb.Do("log out", chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#username`)))
	if got := tb.location(); got != "/login" {
		t.Errorf("after logging out: %s", got)
	}
	for _, p := range []string{"/api/v1/session", "/api/v1/broker/summary", "/api/v1/alarms"} {
		if got := tb.status(p, "{}"); got != http.StatusUnauthorized {
			t.Errorf("GET %s after logging out: %d, want 401", p, got)
		}
	}
	tb.goTo(base + "/broker")
	tb.Do("the sign-in page", chromedp.WaitVisible(chromedp.CSS(`#username`)))
	if got := tb.location(); got != "/login?next=%2Fbroker" {
		t.Errorf("after logging out /broker went to %s", got)
	}

	// An operator has the broker's view.
	tb.signIn("operator", authPassword)
	tb.Do("the broker's view", chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
	waitDemo(t, "the clients' count", func() bool { return tb.Text("#clients") != "–" }, func() string { return tb.Text("#clients") })
	if nav := tb.Text("header nav"); !strings.Contains(nav, "Broker & mesh") {
		t.Errorf("an operator's navigation: %s", nav)
	}
	tb.Do("log out", chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#username`)))

	// A tenant's user has neither the view nor its API.
	tb.goTo(base + "/login?next=%2Falarms")
	tb.signIn("cs", authPassword)
	tb.Do("the alarms", chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
	if got := tb.Text("#user"); got != "cs (campus-service)" {
		t.Errorf("signed in as %q", got)
	}
	if nav := tb.Text("header nav"); strings.Contains(nav, "Broker") {
		t.Errorf("a tenant's navigation offers the broker: %s", nav)
	}
	if got := tb.status("/api/v1/broker/summary", "{}"); got != http.StatusForbidden {
		t.Errorf("GET /api/v1/broker/summary as a tenant's user: %d, want 403", got)
	}
	tb.Do("open the broker", chromedp.Navigate(base+"/broker"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
	if got := tb.Text("#forbidden"); !strings.Contains(got, "administrators and operators") {
		t.Errorf("the broker's view to a tenant's user: %q", got)
	}
}

// refusedUpgrades reads citymesh_ws_upgrades_refused_total{reason="origin"}
// from the node's /metrics.
func refusedUpgrades(t *testing.T, base string) float64 {
	t.Helper()
	_, b := basicGet(t, base+"/metrics", "")
	m := regexp.MustCompile(`(?m)^citymesh_ws_upgrades_refused_total\{reason="origin"\} ([0-9.e+]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no citymesh_ws_upgrades_refused_total{reason=\"origin\"} in /metrics")
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDashboardAuthWebSocketOrigin: a page of another origin (a server of
// the test on another port of the loopback address) that opens MQTT over
// WebSocket to the node in Chromium is refused — the WebSocket fails, the
// node answered the upgrade 403 and counts it in
// citymesh_ws_upgrades_refused_total —, while the dashboard's own page
// connects.
func TestDashboardAuthWebSocketOrigin(t *testing.T) {
	chromium(t)
	n := authNode(t, false)
	host := n.Addr(node.ListenerHTTP).String()
	base := "http://" + host

	// The upgrade from another origin, as a browser sends it: 403.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>another site</title><p>another site</p>`)
	}))
	defer evil.Close()
	req, err := http.NewRequest("GET", base+"/mqtt", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "mqtt", "Origin": evil.URL} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("upgrade with Origin %s: %d, want 403", evil.URL, resp.StatusCode)
	}

	before := refusedUpgrades(t, base)
	tb := newTabAs(t, "")
	tb.Do("open the other site", chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS(`p`)))
	got := Eval[string](tb, `new Promise((resolve) => {
		const ws = new WebSocket("ws://`+host+`/mqtt", "mqtt");
		ws.onopen = () => { resolve("open"); ws.close(); };
		ws.onerror = () => resolve("error");
		setTimeout(() => resolve("timeout"), 10000);
	})`)
	if got != "error" {
		t.Errorf("a page of %s opening ws://%s/mqtt: %s, want error", evil.URL, host, got)
	}
	waitDemo(t, "the refusal counted", func() bool { return refusedUpgrades(t, base) > before },
		func() string { return fmt.Sprintf("still %v", before) })

	// The dashboard's own page, signed in, connects.
	tb.goTo(base + "/alarms")
	tb.signIn("admin", authPassword)
	tb.Do("the alarms", chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
	waitDemo(t, "the page's MQTT connection", func() bool { return tb.Text("#mqtt-state") == "connected" },
		func() string { return tb.Text("#mqtt-state") })
	got = Eval[string](tb, `new Promise((resolve) => {
		const ws = new WebSocket("ws://`+host+`/mqtt", "mqtt");
		ws.onopen = () => { resolve("open"); ws.close(); };
		ws.onerror = () => resolve("error");
		setTimeout(() => resolve("timeout"), 10000);
	})`)
	if got != "open" {
		t.Errorf("the dashboard's own page opening ws://%s/mqtt: %s, want open", host, got)
	}
}

// TestDashboardAuthTenantInvoice: on a node whose energy service bills the
// small campus's tenants (meter readings from its simulator, published by
// an independent MQTT client), a tenant's user signed in in Chromium sees
// its own invoice through the API and none of another tenant's: not in the
// list, 404 by name, and not on the Overview's invoice table, which shows
// the administrator every tenant's.
func TestDashboardAuthTenantInvoice(t *testing.T) {
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := authNode(t, true)
	base := "http://" + n.Addr(node.ListenerHTTP).String()

	// Two hours of the small campus's meter readings.
	m, err := campus.Load(smallCampus)
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
	conn, err := net.Dial("tcp", n.Addr(node.ListenerMQTT).String())
	if err != nil {
		t.Fatal(err)
	}
	pub := paho.NewClient(paho.ClientConfig{Conn: conn})
	if ack, err := pub.Connect(ctx, &paho.Connect{ClientID: "building-gateway", CleanStart: true, KeepAlive: 30,
		Username: "admin", UsernameFlag: true, Password: []byte(authPassword), PasswordFlag: true}); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v %+v", err, ack)
	}
	defer pub.Disconnect(&paho.Disconnect{})
	for _, r := range out.Messages() {
		if r.Will || !strings.HasSuffix(r.Topic, "/"+string(event.EventReading)) {
			continue
		}
		if _, err := pub.Publish(ctx, &paho.Publish{Topic: r.Topic, Payload: r.Payload, QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// campus-service's invoice exists (the growers have no meters).
	var all live.InvoiceList
	names := map[string]string{}
	waitDemo(t, "campus-service's invoice", func() bool {
		code, b := basicGet(t, base+"/api/v1/energy/invoices", "admin")
		if code != 200 || json.Unmarshal(b, &all) != nil {
			return false
		}
		for _, inv := range all.Invoices {
			names[inv.Invoice.Tenant] = inv.Invoice.Name
		}
		return names["campus-service"] != ""
	}, func() string { return fmt.Sprint(names) })

	// Through the API, as the grower with HTTP Basic.
	if code, b := basicGet(t, base+"/api/v1/energy/invoices/campus-service", "grower"); code != http.StatusNotFound {
		t.Errorf("the grower's GET of campus-service's invoices: %d %s", code, b)
	}
	if code, b := basicGet(t, base+"/api/v1/energy/invoices", "grower"); code != http.StatusOK || strings.Contains(string(b), "campus-service") {
		t.Errorf("the grower's GET of the invoices: %d %s", code, b)
	}

	// A retained invoice in the growers' namespace, published by the
	// administrator: the mark that the grower's page has its retained
	// invoices (delivered together after its subscription).
	const mark = "Wartberg growers (the test's mark)"
	body, _ := json.Marshal(map[string]any{"site": "wartberg", "status": "running", "updated": time.Now().UTC(),
		"invoice": map[string]any{"tenant": "wartberg-growers", "name": mark, "currency": "EUR", "gross": "0.00"}})
	if _, err := pub.Publish(ctx, &paho.Publish{Topic: "$tenant/wartberg-growers/energy/wartberg/tenant/wartberg-growers/invoice",
		Payload: body, QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}

	// The administrator's Overview shows campus-service's invoice, live
	// over MQTT (retained).
	tb := newTabAs(t, "")
	tb.goTo(base + "/")
	tb.signIn("admin", authPassword)
	tb.Do("the overview", chromedp.WaitVisible(chromedp.CSS(`#user`)))
	waitDemo(t, "campus-service's invoice on the administrator's page", func() bool {
		return strings.Contains(tb.Text("#invoices"), names["campus-service"])
	}, func() string { return tb.Text("#invoices") })
	tb.Do("log out", chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#username`)))

	// The grower's: not campus-service's.
	tb.goTo(base + "/")
	tb.signIn("grower", authPassword)
	tb.Do("the overview", chromedp.WaitVisible(chromedp.CSS(`#user`)))
	waitDemo(t, "the page's MQTT connection", func() bool { return tb.Text("#mqtt-state") == "connected" },
		func() string { return tb.Text("#mqtt-state") })
	waitDemo(t, "the mark on the grower's page", func() bool {
		return strings.Contains(tb.Text("#invoices"), mark)
	}, func() string { return tb.Text("#invoices") })
	if got := tb.Text("#invoices"); strings.Contains(got, names["campus-service"]) || strings.Contains(got, "campus-service") {
		t.Errorf("the grower's Overview shows campus-service's invoice: %s", got)
	}
	list := Eval[string](tb, `fetch("/api/v1/energy/invoices").then((r) => r.text())`)
	if !strings.Contains(list, `"invoices":[`) || strings.Contains(list, "campus-service") {
		t.Errorf("the grower's invoices from the page: %s", list)
	}
	if got := tb.status("/api/v1/energy/invoices/campus-service", "{}"); got != http.StatusNotFound {
		t.Errorf("the grower's page fetching campus-service's invoices: %d, want 404", got)
	}
}
