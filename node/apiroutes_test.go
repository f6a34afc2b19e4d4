package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/node"
	robotlive "github.com/citymesh/citymesh/robot/live"
)

// fullAPIConfig is a node that serves every part of the API: the twin of
// the small campus with its history, the energy, vineyard and robot
// services (and so the alarms), a mesh (a core alone) and the broker's
// users of twinUsers.
func fullAPIConfig(t *testing.T) node.Config {
	t.Helper()
	cfg := twinConfig(t, true)
	cfg.Twin.History.Dir = t.TempDir()
	cfg.ACL.Rules = append(cfg.ACL.Rules, auth.RuleConfig{Allow: []string{"read", "write"}, Topics: []string{"city/#"}, Users: []string{"ops"}})
	src := "energy:\n  kind: energy\n  config:\n    campus: " + twinCampus + "\n    tariff: ../energy/live/campus-tariff.yaml\n" +
		"vines:\n  kind: vineyard\n  config:\n    campus: " + twinCampus + "\n" + robotSection
	if err := yaml.Unmarshal([]byte(src), &cfg.Services); err != nil {
		t.Fatal(err)
	}
	cfg.Mesh = mesh.Config{Node: "core-1", Role: "core"}
	return cfg
}

// routePath turns a route's ServeMux pattern into its OpenAPI form:
// "GET /api/v1/twin/points/{id...}" → "GET /api/v1/twin/points/{id}".
func routePath(pattern string) string {
	return strings.NewReplacer("{$}", "", "...}", "}").Replace(pattern)
}

// documentedRoutes fetches the node's OpenAPI document and returns its
// operations as "METHOD /path".
func documentedRoutes(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, b := apiCall(t, "GET", base+"/api/v1/openapi.json", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %s", resp.StatusCode, b)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	out := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options":
				out[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	return out
}

// TestAPIOpenAPI: the node's one OpenAPI document describes every route it
// serves under /api/v1/ — its own (package api), the twin's, the services'
// health, the alarms', and each service's — and no route it does not
// serve; TestAPIEveryRoute calls each documented route with success.
func TestAPIOpenAPI(t *testing.T) {
	n := startNode(t, fullAPIConfig(t), nil)
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	documented := documentedRoutes(t, base)
	served := map[string]bool{}
	for _, rt := range n.APIRoutes() {
		served[routePath(rt)] = true
		if !documented[routePath(rt)] {
			t.Errorf("route %s is not documented", rt)
		}
	}
	for rt := range documented {
		if !served[rt] {
			t.Errorf("documented %s is not a route of the node", rt)
		}
	}
	for _, part := range []string{"GET /api/v1/twin/points", "GET /api/v1/energy/invoices", "GET /api/v1/vineyard/plots", "GET /api/v1/robot/incidents",
		"GET /api/v1/alarms", "GET /api/v1/services", "GET /api/v1/broker/sessions", "GET /api/v1/mesh"} {
		if !served[part] {
			t.Errorf("the node does not serve %s", part)
		}
	}
	// A merge keeps one home per path and schema.
	if _, err := api.MergeOpenAPI(api.OpenAPI(), api.OpenAPI()); err == nil {
		t.Error("merging a document with itself: no error for its paths documented twice")
	}
}

// routeCase is a row of TestAPIEveryRoute: one route, called with success,
// with bad input, without credentials and by another tenant's user.
type routeCase struct {
	route string // the route, as Node.APIRoutes names it
	path  string // its path (and query) for a successful call
	body  string // the body of the successful call
	ctype string // its Content-Type (default application/json with a body)
	user  string // who calls with success (default ops, the administrator)
	ok    int    // the status of success
	// public routes answer without credentials.
	public bool
	// bad is a call with bad input (path; badBody its body), answered
	// badCode with problem details.
	bad, badBody string
	badCode      int
	// other is a user of another tenant: otherPath (default path) answers
	// otherCode, and its body never contains lacks.
	other, otherPath string
	otherCode        int
	lacks            string
	// wait: the route answers ok once the node has caught up (a soil map
	// computed from samples).
	wait bool
}

// call does method path with body as user (Basic, password "pw"; "" for
// none), returning status, content type and body.
func call(t *testing.T, base, method, path, body, ctype, user string) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", cmpOr(ctype, "application/json"))
	}
	if user != "" {
		req.SetBasicAuth(user, "pw")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// apiFixture is the state TestAPIEveryRoute's calls refer to.
type apiFixture struct {
	n          *node.Node
	base, mqtt string
	// csIncident and growerIncident are the robot's incidents of each
	// tenant, csAlarm the alarm of campus-service's.
	csIncident, growerIncident, csAlarm string
	// samples are lab soil samples of wartberg-01, as the body of a POST.
	samples string
}

// newAPIFixture starts a node with every part of the API, connects two MQTT
// clients (watcher, subscribed to city/#, and victim), lets the robot raise
// an incident for each tenant and retains a message on city/api/keep.
func newAPIFixture(t *testing.T, ctx context.Context) *apiFixture {
	t.Helper()
	n := startNode(t, fullAPIConfig(t), nil)
	f := &apiFixture{n: n, base: "http://" + n.Addr(node.ListenerHTTP).String(), mqtt: n.Addr(node.ListenerMQTT).String()}
	waitServicesRunning(t, n)
	for _, id := range []string{"watcher", "victim"} {
		conn, err := net.Dial("tcp", f.mqtt)
		if err != nil {
			t.Fatal(err)
		}
		c := paho.NewClient(paho.ClientConfig{Conn: conn})
		if ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30, Properties: &paho.ConnectProperties{SessionExpiryInterval: ptrU32(60)},
			Username: "ops", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true}); err != nil || ack.ReasonCode != 0 {
			t.Fatalf("connect %s: %v %+v", id, err, ack)
		}
		t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
		if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "city/#", QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	publishRobotChecks(t, ctx, f.mqtt)
	waitFor(t, 10*time.Second, "both incidents in the robot API", func() bool {
		_, _, body := call(t, f.base, "GET", robotlive.APIPrefix+"incidents", "", "", "ops")
		var l struct{ Incidents []robotlive.Incident }
		json.Unmarshal([]byte(body), &l)
		for _, inc := range l.Incidents {
			switch inc.Tenant {
			case "campus-service":
				f.csIncident = inc.ID
			case "wartberg-growers":
				f.growerIncident = inc.ID
			}
		}
		return f.csIncident != "" && f.growerIncident != ""
	})
	waitFor(t, 10*time.Second, "campus-service's alarm", func() bool {
		_, _, body := call(t, f.base, "GET", "/api/v1/alarms?tenant=campus-service", "", "", "ops")
		var l alarm.List
		json.Unmarshal([]byte(body), &l)
		if len(l.Alarms) > 0 {
			f.csAlarm = l.Alarms[0].ID
		}
		return f.csAlarm != ""
	})
	f.samples = labSamples(t, "wartberg-01", 14)
	if code, _, body := call(t, f.base, "POST", "/api/v1/broker/publish", `{"topic":"city/api/keep","payload":"x","retain":true}`, "", "ops"); code != 200 {
		t.Fatalf("retain city/api/keep: %d %s", code, body)
	}
	return f
}

// labSamples returns n lab soil samples spread over plot of the small
// campus, as the JSON body of POST …/samples.
func labSamples(t *testing.T, plot string, n int) string {
	t.Helper()
	m, err := campus.Load(twinCampus)
	if err != nil {
		t.Fatal(err)
	}
	var area orb.MultiPolygon
	for _, p := range m.Plots {
		if p.ID == plot {
			area = p.Area
		}
	}
	bd := area.Bound()
	var out []map[string]any
	for i := 0; len(out) < n && i < 10000; i++ {
		u, v := math.Mod(float64(i)*0.618034, 1), math.Mod(float64(i)*0.754878, 1)
		p := orb.Point{bd.Min.Lon() + u*(bd.Max.Lon()-bd.Min.Lon()), bd.Min.Lat() + v*(bd.Max.Lat()-bd.Min.Lat())}
		if !planar.MultiPolygonContains(area, p) {
			continue
		}
		out = append(out, map[string]any{"id": fmt.Sprintf("lab-%02d", len(out)), "time": "2026-04-02T10:00:00Z",
			"lon": math.Round(p.Lon()*1e7) / 1e7, "lat": math.Round(p.Lat()*1e7) / 1e7, "p_mg_100g": 4 + 8*u + 2*v, "k_mg_100g": 10 + 12*v, "ph": 6 + 1.2*u})
	}
	b, err := json.Marshal(map[string]any{"samples": out})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// png is a picture of one pixel.
const png = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"

// routeCases is the table of every route of a node with every part of the
// API (fullAPIConfig), in the order they are called.
func routeCases(f *apiFixture) []routeCase {
	sum := sha256.Sum256([]byte(png))
	pic := hex.EncodeToString(sum[:])
	esc := url.PathEscape
	return []routeCase{
		// Sessions.
		{route: "POST /api/v1/session", path: "/api/v1/session", body: `{"username":"ops","password":"pw"}`, ok: 201, public: true,
			bad: "/api/v1/session", badBody: `{"username":`, badCode: 400},
		{route: "GET /api/v1/session", path: "/api/v1/session", ok: 200},
		{route: "DELETE /api/v1/session", path: "/api/v1/session", user: "session:ops", ok: 204},
		{route: "GET /api/v1/openapi.json", path: "/api/v1/openapi.json", ok: 200, public: true},
		// The broker and the mesh: administrators and operators.
		{route: "GET /api/v1/broker/summary", path: "/api/v1/broker/summary", ok: 200, other: "cs", otherCode: 403, lacks: "uptime"},
		{route: "GET /api/v1/broker/clients", path: "/api/v1/broker/clients", user: "watch", ok: 200, other: "grower", otherCode: 403, lacks: "watcher"},
		{route: "GET /api/v1/broker/clients/{id}", path: "/api/v1/broker/clients/watcher", ok: 200,
			bad: "/api/v1/broker/clients/nobody", badCode: 404, other: "cs", otherCode: 403},
		{route: "GET /api/v1/broker/retained", path: "/api/v1/broker/retained?filter=city/%23", ok: 200,
			bad: "/api/v1/broker/retained?filter=a/%23/b", badCode: 400, other: "cs", otherCode: 403, lacks: "city/api/keep"},
		{route: "POST /api/v1/broker/publish", path: "/api/v1/broker/publish", body: `{"topic":"city/api/x","payload":"hello","qos":1}`, ok: 200,
			bad: "/api/v1/broker/publish", badBody: `{"topic":"$SYS/x"}`, badCode: 400, other: "cs", otherCode: 403},
		{route: "GET /api/v1/broker/sessions", path: "/api/v1/broker/sessions", user: "watch", ok: 200, other: "cs", otherCode: 403, lacks: "watcher"},
		{route: "GET /api/v1/broker/sessions/{id}", path: "/api/v1/broker/sessions/watcher", ok: 200,
			bad: "/api/v1/broker/sessions/nobody", badCode: 404, other: "grower", otherCode: 403, lacks: "city/#"},
		{route: "GET /api/v1/broker/listeners", path: "/api/v1/broker/listeners", ok: 200, other: "cs", otherCode: 403, lacks: "127.0.0.1"},
		{route: "GET /api/v1/mesh", path: "/api/v1/mesh", user: "watch", ok: 200, other: "cs", otherCode: 403, lacks: "core-1"},
		{route: "DELETE /api/v1/broker/retained/{topic...}", path: "/api/v1/broker/retained/city/api/keep", ok: 204,
			bad: "/api/v1/broker/retained/city/%2B", badCode: 400, other: "cs", otherCode: 403},
		{route: "DELETE /api/v1/broker/clients/{id}", path: "/api/v1/broker/clients/victim", ok: 204,
			bad: "/api/v1/broker/clients/nobody", badCode: 404, other: "cs", otherPath: "/api/v1/broker/clients/watcher", otherCode: 403},
		// The twin: a tenant's user sees its tenant's points and assets
		// only; another's are not found.
		{route: "GET /api/v1/twin/{$}", path: "/api/v1/twin/", ok: 200},
		{route: "GET /api/v1/twin/openapi.json", path: "/api/v1/twin/openapi.json", ok: 200},
		{route: "GET /api/v1/twin/points", path: "/api/v1/twin/points?asset=b01-0.01", ok: 200, bad: "/api/v1/twin/points?colour=red", badCode: 400,
			other: "grower", otherCode: 200, lacks: roomPoint},
		{route: "POST /api/v1/twin/points/query", path: "/api/v1/twin/points/query", body: `{"ids":["` + roomPoint + `"]}`, user: "cs", ok: 200,
			bad: "/api/v1/twin/points/query", badBody: `{"idz":[]}`, badCode: 400, other: "grower", otherCode: 200, lacks: `"points":[{`},
		{route: "GET /api/v1/twin/points/{id...}", path: "/api/v1/twin/points/" + roomPoint, user: "cs", ok: 200,
			bad: "/api/v1/twin/points/nosuch/x", badCode: 404, other: "grower", otherCode: 404, lacks: "b01"},
		{route: "GET /api/v1/twin/assets", path: "/api/v1/twin/assets?kind=building", user: "watch", ok: 200,
			bad: "/api/v1/twin/assets?quantity=co2", badCode: 400, other: "grower", otherCode: 200, lacks: `"b01"`},
		{route: "POST /api/v1/twin/assets/query", path: "/api/v1/twin/assets/query", body: `{"ids":["b01"]}`, ok: 200,
			bad: "/api/v1/twin/assets/query", badBody: `{"idz":[]}`, badCode: 400, other: "grower", otherCode: 200, lacks: `"assets":[{`},
		{route: "GET /api/v1/twin/assets/{id}", path: "/api/v1/twin/assets/b01", user: "cs", ok: 200,
			bad: "/api/v1/twin/assets/nosuch", badCode: 404, other: "grower", otherCode: 404, lacks: "b01-0.01"},
		{route: "GET /api/v1/twin/points/{asset}/{key}/history", path: "/api/v1/twin/points/" + roomPoint + "/history", user: "cs", ok: 200,
			bad: "/api/v1/twin/points/" + roomPoint + "/history?step=x", badCode: 400, other: "grower", otherCode: 404, lacks: "b01"},
		{route: "POST /api/v1/twin/history/query", path: "/api/v1/twin/history/query", body: `{"ids":["` + roomPoint + `"],"step":"1h"}`, ok: 200,
			bad: "/api/v1/twin/history/query", badBody: `{"step":"-1h"}`, badCode: 400, other: "grower", otherCode: 200, lacks: `"series":[{`},
		{route: "GET /api/v1/twin/assets/{id}/events", path: "/api/v1/twin/assets/b01/events", user: "cs", ok: 200,
			bad: "/api/v1/twin/assets/b01/events?limit=x", badCode: 400, other: "grower", otherCode: 404, lacks: "b01-0.01"},
		{route: "GET /api/v1/twin/tenants/{tenant}/export", path: "/api/v1/twin/tenants/campus-service/export", ok: 200,
			bad: "/api/v1/twin/tenants/" + esc("no tenant") + "/export", badCode: 400, other: "grower", otherPath: "/api/v1/twin/tenants/campus-service/export", otherCode: 403, lacks: "b01"},
		{route: "DELETE /api/v1/twin/tenants/{tenant}", path: "/api/v1/twin/tenants/nobody-here", ok: 200,
			bad: "/api/v1/twin/tenants/" + esc("no tenant"), badCode: 400, other: "grower", otherPath: "/api/v1/twin/tenants/campus-service", otherCode: 403},
		// The services' health and the alarms.
		{route: "GET /api/v1/services", path: "/api/v1/services", user: "watch", ok: 200},
		{route: "GET /api/v1/alarms", path: "/api/v1/alarms", user: "cs", ok: 200, bad: "/api/v1/alarms?status=x", badCode: 400,
			other: "grower", otherCode: 200, lacks: f.csAlarm},
		{route: "GET /api/v1/alarms/{id}", path: "/api/v1/alarms/" + f.csAlarm, user: "cs", ok: 200, bad: "/api/v1/alarms/nosuch", badCode: 404,
			other: "grower", otherCode: 404, lacks: "campus-service"},
		{route: "POST /api/v1/alarms/{id}/{verb}", path: "/api/v1/alarms/" + f.csAlarm + "/ack", body: `{"comment":"seen"}`, user: "cs", ok: 200,
			bad: "/api/v1/alarms/" + f.csAlarm + "/ack", badBody: `{"comment":`, badCode: 400, other: "grower", otherCode: 404, lacks: "campus-service"},
		// Energy.
		{route: "GET /api/v1/energy/invoices", path: "/api/v1/energy/invoices", user: "cs", ok: 200, bad: "/api/v1/energy/invoices?period=2026-13", badCode: 400,
			other: "grower", otherCode: 200, lacks: "campus-service"},
		{route: "GET /api/v1/energy/invoices/{tenant}", path: "/api/v1/energy/invoices/campus-service", user: "cs", ok: 200,
			bad: "/api/v1/energy/invoices/campus-service?period=x", badCode: 400, other: "grower", otherCode: 404, lacks: `"invoices"`},
		{route: "GET /api/v1/energy/esg", path: "/api/v1/energy/esg", user: "watch", ok: 200, bad: "/api/v1/energy/esg?site=" + esc("no site"), badCode: 400},
		// The vineyard.
		{route: "GET /api/v1/vineyard/plots", path: "/api/v1/vineyard/plots", user: "grower", ok: 200, other: "cs", otherCode: 200, lacks: "wartberg-01"},
		{route: "GET /api/v1/vineyard/plots/{plot}/risk", path: "/api/v1/vineyard/plots/wartberg-01/risk", user: "grower", ok: 200,
			bad: "/api/v1/vineyard/plots/wartberg-01/risk?from=x", badCode: 400, other: "cs", otherCode: 404, lacks: `"level"`},
		{route: "GET /api/v1/vineyard/plots/{plot}/weather", path: "/api/v1/vineyard/plots/wartberg-01/weather", user: "watch", ok: 200,
			bad: "/api/v1/vineyard/plots/wartberg-01/weather?to=x", badCode: 400, other: "cs", otherCode: 404},
		{route: "GET /api/v1/vineyard/plots/{plot}/weather.csv", path: "/api/v1/vineyard/plots/wartberg-01/weather.csv", ok: 200,
			bad: "/api/v1/vineyard/plots/wartberg-01/weather.csv?from=x", badCode: 400, other: "cs", otherCode: 404},
		{route: "POST /api/v1/vineyard/plots/{plot}/samples", path: "/api/v1/vineyard/plots/wartberg-01/samples", body: f.samples, user: "grower", ok: 202,
			bad: "/api/v1/vineyard/plots/wartberg-01/samples", badBody: `{"samples":`, badCode: 400, other: "cs", otherCode: 404},
		{route: "GET /api/v1/vineyard/plots/{plot}/samples", path: "/api/v1/vineyard/plots/wartberg-01/samples", user: "grower", ok: 200,
			bad: "/api/v1/vineyard/plots/nosuch/samples", badCode: 404, other: "cs", otherCode: 404},
		{route: "GET /api/v1/vineyard/plots/{plot}/soil/{file}", path: "/api/v1/vineyard/plots/wartberg-01/soil/ph.geojson", user: "grower", ok: 200, wait: true,
			bad: "/api/v1/vineyard/plots/wartberg-01/soil/ph.txt", badCode: 404, other: "cs", otherCode: 404},
		// The robot.
		{route: "GET /api/v1/robot/incidents", path: "/api/v1/robot/incidents?state=all", user: "cs", ok: 200, bad: "/api/v1/robot/incidents?state=x", badCode: 400,
			other: "cs", otherCode: 200, lacks: f.growerIncident},
		{route: "GET /api/v1/robot/incidents/{id}", path: "/api/v1/robot/incidents/" + f.csIncident, user: "cs", ok: 200,
			bad: "/api/v1/robot/incidents/nosuch", badCode: 404, other: "grower", otherCode: 404, lacks: f.csIncident},
		{route: "POST /api/v1/robot/incidents/{id}/{action}", path: "/api/v1/robot/incidents/" + f.csIncident + "/acknowledge", user: "cs", ok: 200,
			bad: "/api/v1/robot/incidents/" + f.csIncident + "/frobnicate", badCode: 404, other: "grower", otherCode: 404, lacks: f.csIncident},
		{route: "GET /api/v1/robot/progress", path: "/api/v1/robot/progress", user: "watch", ok: 200},
		{route: "GET /api/v1/robot/routes", path: "/api/v1/robot/routes", user: "cs", ok: 200},
		{route: "POST /api/v1/robot/pictures", path: "/api/v1/robot/pictures", body: png, ctype: "image/png", ok: 201,
			bad: "/api/v1/robot/pictures", badBody: "not a picture", badCode: 415, other: "cs", otherCode: 403},
		{route: "GET /api/v1/robot/pictures/{hash}", path: "/api/v1/robot/pictures/" + pic, user: "cs", ok: 200,
			bad: "/api/v1/robot/pictures/xyz", badCode: 400},
	}
}

// TestAPIEveryRoute calls every route of a node with every part of the API
// over real HTTP, with the broker's password-file users: with success (as
// an administrator, an operator or a tenant's user), with bad input
// (problem details and their status), without credentials (401) and as
// another tenant's user (403, or 404 or an empty answer that shows nothing
// of the other tenant). The table must have a row for every route the node
// serves: a route added without one fails the test.
func TestAPIEveryRoute(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	f := newAPIFixture(t, ctx)
	cases := routeCases(f)

	n := map[string]bool{}
	for _, c := range cases {
		n[c.route] = true
	}
	// Every route the node serves has a row, and every row a route; and
	// every route is documented.
	documented := documentedRoutes(t, f.base)
	served := map[string]bool{}
	for _, rt := range f.n.APIRoutes() {
		served[rt] = true
		if !n[rt] {
			t.Errorf("route %s has no row in the table", rt)
		}
	}
	for _, c := range cases {
		if !served[c.route] {
			t.Errorf("row %s: the node serves no such route", c.route)
		}
		if !documented[routePath(c.route)] {
			t.Errorf("row %s: not documented", c.route)
		}
	}

	problem := func(t *testing.T, what string, code int, ctype, body string, want int) {
		t.Helper()
		if code != want {
			t.Errorf("%s: %d %.300s, want %d", what, code, body, want)
			return
		}
		if code < 400 {
			return
		}
		var p struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if ctype != "application/problem+json" || json.Unmarshal([]byte(body), &p) != nil || p.Status != code || p.Title == "" {
			t.Errorf("%s: %d %q %.300s: not problem details", what, code, ctype, body)
		}
	}
	for _, c := range cases {
		t.Run(c.route, func(t *testing.T) {
			method, _, _ := strings.Cut(c.route, " ")
			user := cmpOr(c.user, "ops")
			if c.wait {
				waitFor(t, 20*time.Second, c.path, func() bool {
					code, _, _ := call(t, f.base, method, c.path, c.body, c.ctype, user)
					return code == c.ok
				})
			}
			var code int
			var ctype, body string
			if who, ok := strings.CutPrefix(user, "session:"); ok {
				cookie, s := login(t, f.base, who)
				resp, b := apiCall(t, method, f.base+c.path, c.body, map[string]string{"Cookie": cookie, api.CSRFHeader: s.CSRF})
				code, ctype, body = resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
			} else {
				code, ctype, body = call(t, f.base, method, c.path, c.body, c.ctype, user)
			}
			problem(t, "success as "+user, code, ctype, body, c.ok)
			if c.bad != "" {
				code, ctype, body := call(t, f.base, method, c.bad, c.badBody, c.ctype, "ops")
				problem(t, "bad input "+c.bad, code, ctype, body, c.badCode)
			}
			if !c.public {
				code, ctype, body := call(t, f.base, method, c.path, c.body, c.ctype, "")
				problem(t, "without credentials", code, ctype, body, http.StatusUnauthorized)
			}
			if c.other != "" {
				code, ctype, body := call(t, f.base, method, cmpOr(c.otherPath, c.path), c.body, c.ctype, c.other)
				problem(t, "as "+c.other, code, ctype, body, c.otherCode)
				// A refusal names what was asked for, never more.
				if c.lacks != "" && ctype != "application/problem+json" && strings.Contains(body, c.lacks) {
					t.Errorf("as %s: the answer shows %q: %.300s", c.other, c.lacks, body)
				}
			}
		})
	}
}

// ptrU32 returns a pointer to v, for the optional properties of Paho.
func ptrU32(v uint32) *uint32 { return &v }

// TestAPIOperatorReads: an operator (group operator, no tenant) reads the
// twin, the energy, vineyard and robot services and the alarms of every
// tenant, and changes nothing there (403), as a tenant's user may in its
// tenant; it also reads the broker's sessions with their subscriptions and
// the listeners.
func TestAPIOperatorReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newAPIFixture(t, ctx)
	for _, c := range []struct {
		method, path, body string
		code               int
		has                []string
	}{
		{"GET", "/api/v1/twin/points?asset=b01-0.01", "", 200, []string{roomPoint}},
		{"GET", "/api/v1/twin/points/soil-probe-01/battery", "", 200, []string{devicePoint}},
		{"POST", "/api/v1/twin/points/query", `{"ids":["` + roomPoint + `","` + devicePoint + `"]}`, 200, []string{roomPoint, devicePoint}},
		{"GET", "/api/v1/energy/invoices/campus-service", "", 200, []string{`"invoices"`}},
		{"GET", "/api/v1/vineyard/plots", "", 200, []string{"wartberg-01"}},
		{"GET", "/api/v1/robot/incidents?state=all", "", 200, []string{f.csIncident, f.growerIncident}},
		{"GET", "/api/v1/alarms", "", 200, []string{f.csAlarm, "wartberg-growers"}},
		{"GET", "/api/v1/broker/sessions/watcher", "", 200, []string{`"filter":"city/#"`, `"connected":true`, `"expiry_seconds":60`}},
		{"GET", "/api/v1/broker/listeners", "", 200, []string{`"name":"mqtt"`, `"name":"http"`, `"tls":false`}},
		{"POST", "/api/v1/alarms/" + f.csAlarm + "/ack", "", 403, nil},
		{"POST", "/api/v1/robot/incidents/" + f.csIncident + "/acknowledge", "", 403, nil},
		{"POST", "/api/v1/vineyard/plots/wartberg-01/samples", f.samples, 403, nil},
		{"GET", "/api/v1/twin/tenants/campus-service/export", "", 403, nil},
		{"DELETE", "/api/v1/twin/tenants/campus-service", "", 403, nil},
	} {
		code, ctype, body := call(t, f.base, c.method, c.path, c.body, "", "watch")
		if code != c.code {
			t.Errorf("%s %s as an operator: %d %.300s, want %d", c.method, c.path, code, body, c.code)
			continue
		}
		if code >= 400 && ctype != "application/problem+json" {
			t.Errorf("%s %s as an operator: Content-Type %q", c.method, c.path, ctype)
		}
		for _, h := range c.has {
			if !strings.Contains(body, h) {
				t.Errorf("%s %s as an operator: no %q in %.300s", c.method, c.path, h, body)
			}
		}
	}
}

// TestAPILoginBackoff: failed logins over POST /api/v1/session make the
// address wait as the broker's login guard does for MQTT (the third
// failure starts a wait of a second): the next login is refused with 429,
// Retry-After and problem details, an MQTT CONNECT from the address too
// (CONNACK 0x9F); once the wait is over the right password logs in and
// forgives the failures.
func TestAPILoginBackoff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := twinConfig(t, true)
	cfg.Twin = node.TwinConfig{}
	n := startNode(t, cfg, nil)
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	loginAs := func(pw string) (int, string, string, string) {
		resp, b := apiCall(t, "POST", base+"/api/v1/session", `{"username":"ops","password":"`+pw+`"}`, map[string]string{"Content-Type": "application/json"})
		return resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), string(b)
	}
	var code int
	var ctype, retry, body string
	for try := 0; ; try++ {
		for i := range 3 {
			if code, _, _, body := loginAs("wrong"); code != 401 {
				t.Fatalf("failed login %d: %d %s", i+1, code, body)
			}
		}
		third := time.Now()
		code, ctype, retry, body = loginAs("pw")
		// A machine too busy to send the next login within the second
		// of the wait logs in (which forgives): try again.
		if code != 201 || time.Since(third) < time.Second || try == 2 {
			break
		}
	}
	if code != 429 || ctype != "application/problem+json" || retry != "1" || !strings.Contains(body, `"status":429`) {
		t.Fatalf("login after 3 failures: %d %q Retry-After %q %s", code, ctype, retry, body)
	}
	// MQTT from the same address waits too.
	conn, err := net.Dial("tcp", n.Addr(node.ListenerMQTT).String())
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: "after-http-failures", CleanStart: true, KeepAlive: 30,
		Username: "ops", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	if ack == nil || ack.ReasonCode != 0x9F {
		t.Errorf("MQTT CONNECT during the back-off: %v %+v, want CONNACK 0x9F", err, ack)
	}
	waitFor(t, 5*time.Second, "the back-off to pass", func() bool {
		code, _, _, _ := loginAs("pw")
		return code == 201
	})
	// The success forgave the failures: one more is a plain 401.
	if code, _, _, body := loginAs("wrong"); code != 401 {
		t.Errorf("a failure after a success: %d %s", code, body)
	}
}

// TestAPIBasicBackoff: HTTP Basic credentials on any API route go through
// the login back-off too: after three wrong passwords from an address,
// even the right one is refused with 429, Retry-After and problem details
// until the wait has passed, and a session login from that address waits
// as well.
func TestAPIBasicBackoff(t *testing.T) {
	cfg := twinConfig(t, true)
	cfg.Twin = node.TwinConfig{}
	n := startNode(t, cfg, nil)
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	basic := func(pw string) (int, string, string, string) {
		t.Helper()
		req, err := http.NewRequest("GET", base+"/api/v1/broker/summary", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("ops", pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), string(b)
	}
	if code, _, _, body := basic("pw"); code != 200 {
		t.Fatalf("Basic with the right password: %d %s", code, body)
	}
	var code int
	var ctype, retry, body string
	var sessionCode int
	for try := 0; ; try++ {
		for i := range 3 {
			if code, _, _, body := basic("wrong"); code != 401 {
				t.Fatalf("wrong password %d: %d %s", i+1, code, body)
			}
		}
		third := time.Now()
		code, ctype, retry, body = basic("pw")
		resp, _ := apiCall(t, "POST", base+"/api/v1/session", `{"username":"ops","password":"pw"}`, map[string]string{"Content-Type": "application/json"})
		sessionCode = resp.StatusCode
		// A machine too busy to send the requests within the second of
		// the wait: try again.
		if time.Since(third) < time.Second || try == 2 {
			break
		}
	}
	if code != 429 || ctype != "application/problem+json" || retry == "" || !strings.Contains(body, `"status":429`) {
		t.Fatalf("Basic after 3 failures: %d %q Retry-After %q %s", code, ctype, retry, body)
	}
	if sessionCode != 429 {
		t.Errorf("session login after 3 Basic failures: %d, want 429", sessionCode)
	}
	waitFor(t, 5*time.Second, "the back-off to pass", func() bool {
		code, _, _, _ := basic("pw")
		return code == 200
	})
	// The right password forgave the failures: one more wrong one does
	// not start a wait.
	if code, _, _, body := basic("wrong"); code != 401 {
		t.Errorf("a wrong password after a right one: %d %s", code, body)
	}
	if code, _, _, body := basic("pw"); code != 200 {
		t.Errorf("the right password after one wrong: %d %s", code, body)
	}
}
