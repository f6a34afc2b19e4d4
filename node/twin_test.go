package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/twin/history"
)

const (
	twinCampus  = "../examples/campus/small/campus.yaml"
	twinSecret  = "a-test-secret-of-at-least-32-bytes-length!"
	roomPoint   = "b01-0.01/temperature"  // tenant campus-service
	devicePoint = "soil-probe-01/battery" // tenant wartberg-growers
)

// twinUsers writes a password file (password "pw") with an administrator
// (ops), an operator (watch), a user of each tenant of the small campus
// (cs: campus-service, grower: wartberg-growers) and a user without a
// tenant nor a role (plain).
func twinUsers(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	f := auth.NewPasswordFile(path)
	for _, u := range []struct{ name, group, tenant string }{
		{"ops", "admin", ""}, {"watch", "operator", ""}, {"cs", "", "campus-service"}, {"grower", "", "wartberg-growers"}, {"plain", "", ""},
	} {
		hash, err := auth.HashPassword([]byte("pw"), auth.HashParams{Bcrypt: true, Cost: 4})
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

// twinConfig is a node with the twin of the small campus.
func twinConfig(t *testing.T, secured bool) node.Config {
	cfg := testConfig(t)
	cfg.WS = "off"
	cfg.Twin = node.TwinConfig{Enabled: true, Campus: twinCampus, PublishEvery: 50 * time.Millisecond}
	if secured {
		cfg.Auth.PasswordFile = twinUsers(t)
		cfg.Auth.JWT = &auth.JWTConfig{Secret: twinSecret}
		// Tenants' users read the twin (in their namespace, where the
		// twin publishes their assets' copies); nothing else.
		cfg.ACL = auth.ACLConfig{Rules: []auth.RuleConfig{
			{Allow: []string{"read"}, Topics: []string{"twin/#"}, Tenants: []string{"campus-service", "wartberg-growers"}},
		}}
	}
	return cfg
}

// publishTwinEvents publishes a room measurement and a device status, as
// an independent MQTT client (Paho, MQTT 5) logged in as user.
func publishTwinEvents(t *testing.T, ctx context.Context, addr, user string, temp, battery float64, at time.Time) {
	t.Helper()
	c := pahoLogin(t, ctx, addr, "publisher", user, nil)
	defer c.Disconnect(&paho.Disconnect{})
	room := event.NewTopic(event.DomainBuilding, "campus", event.AssetRoom, "b01-0.01", event.EventMeasurement)
	m := event.NewMeasurement("b01-0.01", at, event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"},
		event.Value{Point: roomPoint, Value: temp, Unit: event.Celsius})
	st := event.NewStatus("soil-probe-01", at, event.Source{Type: event.SourceService, Service: "citymesh-connector"}, event.Online, event.ReasonUplink)
	st.Battery = &event.Value{Point: devicePoint, Value: battery, Unit: event.Volt}
	dev := event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-01", event.EventStatus)
	for _, e := range []struct {
		topic event.Topic
		ev    event.Event
	}{{room, m}, {dev, st}} {
		msg, err := event.NewMessage(e.topic, e.ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Publish(ctx, &paho.Publish{Topic: msg.Topic, Payload: msg.Payload, QoS: 1, Retain: msg.Retain}); err != nil {
			t.Fatal(err)
		}
	}
}

// pahoLogin connects a Paho MQTT 5 client with user name and password "pw"
// ("" for none).
func pahoLogin(t *testing.T, ctx context.Context, addr, id, user string, onMessage func(*paho.Publish)) *paho.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc := paho.ClientConfig{Conn: conn}
	if onMessage != nil {
		cc.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { onMessage(pr.Packet); return true, nil },
		}
	}
	c := paho.NewClient(cc)
	cp := &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
	if user != "" {
		cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = user, true, []byte("pw"), true
	}
	ack, err := c.Connect(ctx, cp)
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("paho connect as %s: %v %+v", user, err, ack)
	}
	return c
}

// twinGet does an HTTP request as user (password "pw"), or with a bearer
// token when user starts with "Bearer ", or without credentials for "".
func twinGet(t *testing.T, method, u, user string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(user, "Bearer "):
		req.Header.Set("Authorization", user)
	case user == "wrong":
		req.SetBasicAuth("ops", "not-pw")
	case user != "":
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
	return resp.StatusCode, b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pointHasValue reports whether the twin API (as ops) shows a value for
// point id.
func pointHasValue(t *testing.T, base, id string) bool {
	code, body := twinGet(t, "GET", base+"/api/v1/twin/points/"+id, "ops")
	if code != http.StatusOK {
		return false
	}
	var p struct {
		Value *float64 `json:"value"`
	}
	json.Unmarshal(body, &p)
	return p.Value != nil
}

// promSeries returns the points of the series an instant query of the
// Prometheus API returns, as user.
func promSeries(t *testing.T, base, user, query string) []string {
	t.Helper()
	code, body := twinGet(t, "GET", base+"/prometheus/api/v1/query?query="+url.QueryEscape(query), user)
	if code != http.StatusOK {
		t.Fatalf("query %s as %s: %d %s", query, user, code, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range r.Data.Result {
		out = append(out, s.Metric["point"])
	}
	return out
}

// retainedTwin subscribes to twin/# as user and returns the topics of the
// retained messages it gets: ops then publishes a marker (not retained) to
// the same namespace, after which every retained message has arrived.
func retainedTwin(t *testing.T, ctx context.Context, addr, user, marker string) []string {
	t.Helper()
	var mu sync.Mutex
	var topics []string
	done := make(chan struct{})
	var once sync.Once
	c := pahoLogin(t, ctx, addr, "sub-"+user, user, func(p *paho.Publish) {
		if p.Topic == "twin/_marker/x/y" {
			once.Do(func() { close(done) })
			return
		}
		if p.Retain && len(p.Payload) > 0 {
			mu.Lock()
			topics = append(topics, p.Topic)
			mu.Unlock()
		}
	})
	defer c.Disconnect(&paho.Disconnect{})
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "twin/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	pub := pahoLogin(t, ctx, addr, "marker-"+user, "ops", nil)
	defer pub.Disconnect(&paho.Disconnect{})
	if _, err := pub.Publish(ctx, &paho.Publish{Topic: marker + "twin/_marker/x/y", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the marker did not arrive", user)
	}
	mu.Lock()
	defer mu.Unlock()
	return topics
}

func bearer(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(twinSecret))
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// TestNodeTwinTenants: a node with a twin section and the broker's users:
// events published by an independent MQTT client appear in the twin API
// and the Prometheus API; each tenant's user sees its tenant's points only,
// over HTTP (Basic and Bearer JWT) and over MQTT (twin/# in its namespace);
// an administrator exports and erases a tenant, after which nothing of it
// is left in the twin API, the Prometheus API, the event log or the
// retained snapshots.
func TestNodeTwinTenants(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.New(twinConfig(t, true), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := n.Addr(node.ListenerMQTT).String()
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	publishTwinEvents(t, ctx, addr, "ops", 21.5, 3.58, at)
	waitFor(t, 10*time.Second, "both points in the twin API", func() bool {
		return pointHasValue(t, base, roomPoint) && pointHasValue(t, base, devicePoint)
	})
	// The device's status reaches the event log through the recorder, and
	// the twin API serves it to its tenant only.
	waitFor(t, 10*time.Second, "the device's status in its events", func() bool {
		code, body := twinGet(t, "GET", base+"/api/v1/twin/assets/soil-probe-01/events", "grower")
		return code == 200 && bytes.Contains(body, []byte(`"status"`))
	})
	if code, body := twinGet(t, "GET", base+"/api/v1/twin/assets/soil-probe-01/events", "cs"); code != 404 {
		t.Errorf("another tenant's asset's events: %d %s, want 404", code, body)
	}
	waitFor(t, 10*time.Second, "both series in the Prometheus API", func() bool {
		return len(promSeries(t, base, "ops", "citymesh_point_value")) == 2
	})

	growerJWT := bearer(t, jwt.MapClaims{"sub": "grower-app", "tenant": "wartberg-growers", "exp": time.Now().Add(time.Hour).Unix()})
	adminJWT := bearer(t, jwt.MapClaims{"sub": "ops-app", "groups": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix()})
	operatorJWT := bearer(t, jwt.MapClaims{"sub": "cs-ops", "tenant": "campus-service", "groups": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix()})
	expiredJWT := bearer(t, jwt.MapClaims{"sub": "grower-app", "tenant": "wartberg-growers", "exp": time.Now().Add(-time.Hour).Unix()})
	httpCases := []struct {
		name, user, method, path string
		code                     int
	}{
		{"no credentials", "", "GET", "/api/v1/twin/points", 401},
		{"wrong password", "wrong", "GET", "/api/v1/twin/points", 401},
		{"expired token", expiredJWT, "GET", "/api/v1/twin/points", 401},
		{"no credentials, prometheus", "", "GET", "/prometheus/api/v1/query?query=up", 401},
		{"user without tenant", "plain", "GET", "/api/v1/twin/points", 403},
		{"user without tenant, prometheus", "plain", "GET", "/prometheus/api/v1/query?query=up", 403},
		{"tenant, own point", "cs", "GET", "/api/v1/twin/points/" + roomPoint, 200},
		{"tenant, other's point", "cs", "GET", "/api/v1/twin/points/" + devicePoint, 404},
		{"other tenant, own point", "grower", "GET", "/api/v1/twin/points/" + devicePoint, 200},
		{"other tenant, other's point", "grower", "GET", "/api/v1/twin/points/" + roomPoint, 404},
		{"tenant token, own point", growerJWT, "GET", "/api/v1/twin/points/" + devicePoint, 200},
		{"tenant token, other's point", growerJWT, "GET", "/api/v1/twin/points/" + roomPoint, 404},
		{"admin token", adminJWT, "GET", "/api/v1/twin/points/" + roomPoint, 200},
		{"admin", "ops", "GET", "/api/v1/twin/points/" + devicePoint, 200},
		{"tenant exports", "cs", "GET", "/api/v1/twin/tenants/campus-service/export", 403},
		{"tenant erases", "grower", "DELETE", "/api/v1/twin/tenants/wartberg-growers", 403},
		{"bad tenant id", "ops", "GET", "/api/v1/twin/tenants/a+b/export", 400},
		{"tenant's operator, own point", operatorJWT, "GET", "/api/v1/twin/points/" + roomPoint, 200},
		{"tenant's operator, other's point", operatorJWT, "GET", "/api/v1/twin/points/" + devicePoint, 404},
		{"tenant's operator exports its tenant", operatorJWT, "GET", "/api/v1/twin/tenants/campus-service/export", 200},
		{"tenant's operator exports another", operatorJWT, "GET", "/api/v1/twin/tenants/wartberg-growers/export", 403},
		{"tenant's operator erases another", operatorJWT, "DELETE", "/api/v1/twin/tenants/wartberg-growers", 403},
		{"ngsi-ld, no credentials", "", "GET", "/ngsi-ld/v1/entities?type=Device", 401},
		{"ngsi-ld, user without tenant", "plain", "GET", "/ngsi-ld/v1/entities?type=Device", 403},
		{"ngsi-ld, tenant, own entity", "cs", "GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:IndoorEnvironmentObserved:b01-0.01", 200},
		{"ngsi-ld, tenant, other's entity", "cs", "GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:soil-probe-01", 404},
		{"ngsi-ld, other tenant, own entity", growerJWT, "GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:soil-probe-01", 200},
		{"ngsi-ld, admin", "ops", "GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:soil-probe-01", 200},
		{"ngsi-ld temporal, tenant, own entity", "grower", "GET", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Device:soil-probe-01?lastN=5", 200},
		{"ngsi-ld temporal, tenant, other's entity", "cs", "GET", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Device:soil-probe-01?lastN=5", 404},
	}
	for _, tc := range httpCases {
		t.Run("http/"+tc.name, func(t *testing.T) {
			if code, body := twinGet(t, tc.method, base+tc.path, tc.user); code != tc.code {
				t.Errorf("%s %s as %q: %d %s, want %d", tc.method, tc.path, tc.user, code, body, tc.code)
			}
		})
	}
	promql := []struct {
		user, query string
		want        []string
	}{
		{"ops", "citymesh_point_value", []string{roomPoint, devicePoint}},
		{"cs", "citymesh_point_value", []string{roomPoint}},
		{"grower", "citymesh_point_value", []string{devicePoint}},
		{growerJWT, "citymesh_point_value", []string{devicePoint}},
		{operatorJWT, "citymesh_point_value", []string{roomPoint}},
		{"cs", `citymesh_point_value{tenant="wartberg-growers"}`, nil},
		{"grower", `sum by (point) ({__name__=~".+"})`, []string{devicePoint}},
	}
	for _, tc := range promql {
		t.Run("promql/"+tc.query, func(t *testing.T) {
			got := promSeries(t, base, tc.user, tc.query)
			if !sameSet(got, tc.want) {
				t.Errorf("%s as %.20s: %v, want %v", tc.query, tc.user, got, tc.want)
			}
		})
	}
	waitFor(t, 10*time.Second, "the tenant copies published", func() bool { return n.Twin().Service().Stats().Published >= 4 })
	mqtt := []struct {
		user   string
		marker string // the namespace ops publishes the marker in
		want   []string
	}{
		{"cs", "$tenant/campus-service/", []string{"twin/campus/room/b01-0.01"}},
		{"grower", "$tenant/wartberg-growers/", []string{"twin/wartberg/device/soil-probe-01"}},
		{"ops", "", []string{"twin/campus/room/b01-0.01", "twin/wartberg/device/soil-probe-01"}},
	}
	for _, tc := range mqtt {
		t.Run("mqtt/"+tc.user, func(t *testing.T) {
			if got := retainedTwin(t, ctx, addr, tc.user, tc.marker); !sameSet(got, tc.want) {
				t.Errorf("retained twin/# for %s: %v, want %v", tc.user, got, tc.want)
			}
		})
	}

	// Export, then erase the growers.
	code, body := twinGet(t, "GET", base+"/api/v1/twin/tenants/wartberg-growers/export", "ops")
	if code != 200 {
		t.Fatalf("export: %d %s", code, body)
	}
	kinds := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var rec struct {
			Kind     string `json:"kind"`
			Snapshot *struct {
				Asset string `json:"asset"`
			} `json:"snapshot"`
			Labels map[string]string `json:"labels"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		kinds[rec.Kind]++
		if rec.Kind == "sample" && rec.Labels["tenant"] != "wartberg-growers" || strings.Contains(sc.Text(), "b01-0.01") {
			t.Errorf("export of wartberg-growers has another tenant's data: %s", sc.Text())
		}
	}
	if kinds["asset"] == 0 || kinds["sample"] != 1 {
		t.Errorf("export: %v, want assets and one sample", kinds)
	}
	code, body = twinGet(t, "DELETE", base+"/api/v1/twin/tenants/wartberg-growers", "ops")
	if code != 200 || !strings.Contains(string(body), `"points":1`) || !strings.Contains(string(body), `"history":true`) {
		t.Fatalf("erase: %d %s", code, body)
	}
	if pointHasValue(t, base, devicePoint) || !pointHasValue(t, base, roomPoint) {
		t.Error("after the erasure: the growers' point still has its value, or campus-service's lost its")
	}
	if got := promSeries(t, base, "ops", "citymesh_point_value"); !sameSet(got, []string{roomPoint}) {
		t.Errorf("after the erasure, the Prometheus API has %v", got)
	}
	if code, body := twinGet(t, "GET", base+"/prometheus/api/v1/series?match[]=citymesh_point_value{tenant=\"wartberg-growers\"}", "ops"); code != 200 || !strings.Contains(string(body), `"data":[]`) {
		t.Errorf("after the erasure, series: %d %s", code, body)
	}
	if code, body := twinGet(t, "GET", base+"/prometheus/api/v1/label/tenant/values", "ops"); code != 200 || strings.Contains(string(body), "wartberg") {
		t.Errorf("after the erasure, tenant label values: %d %s", code, body)
	}
	events := 0
	n.Twin().History().Events().ExportTenant(ctx, "wartberg-growers", func(*history.Event) error { events++; return nil })
	if events != 0 {
		t.Errorf("after the erasure, %d events of the tenant", events)
	}
	for _, tc := range []struct {
		user, marker string
		want         []string
	}{
		{"ops", "", []string{"twin/campus/room/b01-0.01"}},
		{"grower", "$tenant/wartberg-growers/", nil},
		{"cs", "$tenant/campus-service/", []string{"twin/campus/room/b01-0.01"}},
	} {
		if got := retainedTwin(t, ctx, addr, tc.user, tc.marker); !sameSet(got, tc.want) {
			t.Errorf("after the erasure, retained twin/# for %s: %v, want %v", tc.user, got, tc.want)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, v := range seen {
		if v != 0 {
			return false
		}
	}
	return true
}
