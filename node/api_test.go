package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/golang-jwt/jwt/v5"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/node"
)

// apiCall does an HTTP request with the given headers and body, and
// returns the response and its body.
func apiCall(t *testing.T, method, u, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "basic" {
			req.SetBasicAuth(v, "pw")
			continue
		}
		req.Header.Set(k, v)
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
	return resp, b
}

// sessionBody is the answer of the session routes.
type sessionBody struct {
	User   string   `json:"user"`
	Tenant string   `json:"tenant"`
	Roles  []string `json:"roles"`
	CSRF   string   `json:"csrf_token"`
	Method string   `json:"method"`
}

// login logs user in and returns the session cookie's header and the
// session.
func login(t *testing.T, base, user string) (string, sessionBody) {
	t.Helper()
	resp, b := apiCall(t, "POST", base+"/api/v1/session", `{"username":"`+user+`","password":"pw"}`,
		map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 201 {
		t.Fatalf("login as %s: %d %s", user, resp.StatusCode, b)
	}
	var s sessionBody
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == api.CookieName {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value == "" {
		t.Fatalf("login as %s: no session cookie in %v", user, resp.Header["Set-Cookie"])
	}
	return api.CookieName + "=" + cookie.Value, s
}

// TestAPISessions: a browser logs in over real HTTP, its session cookie
// works on the twin's and the services' APIs, its state-changing requests
// need the CSRF token, tools with Bearer or Basic need none, logins from
// another origin or not in JSON are refused, the broker's routes are for
// administrators and operators, errors are problem details and every
// answer carries the security headers.
func TestAPISessions(t *testing.T) {
	cfg := twinConfig(t, true)
	cfg.Services = toySections(t)
	n := startNode(t, cfg, nil)
	host := n.Addr(node.ListenerHTTP).String()
	base := "http://" + host

	// Login: the cookie's attributes, the session's roles and token.
	resp, b := apiCall(t, "POST", base+"/api/v1/session", `{"username":"ops","password":"pw"}`,
		map[string]string{"Content-Type": "application/json", "Origin": base})
	if resp.StatusCode != 201 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, attr := range []string{api.CookieName + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, attr) {
			t.Errorf("Set-Cookie %q lacks %s", sc, attr)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q: Secure over plain HTTP", sc)
	}
	cookie, s := login(t, base, "ops")
	if s.User != "ops" || !slices.Equal(s.Roles, []string{api.RoleAdmin}) || s.CSRF == "" {
		t.Errorf("ops's session: %+v", s)
	}
	_, cs := login(t, base, "cs")
	if cs.Tenant != "campus-service" || !slices.Equal(cs.Roles, []string{api.RoleTenantUser}) {
		t.Errorf("cs's session: %+v", cs)
	}

	adminJWT := bearer(t, jwt.MapClaims{"sub": "ops-app", "groups": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix()})
	withCookie := map[string]string{"Cookie": cookie}
	withCSRF := map[string]string{"Cookie": cookie, api.CSRFHeader: s.CSRF}
	for _, c := range []struct {
		name, method, path string
		hdr                map[string]string
		body, ctype        string
		want               int
	}{
		{"whoami with the cookie", "GET", "/api/v1/session", withCookie, "", "", 200},
		{"whoami without credentials", "GET", "/api/v1/session", nil, "", "", 401},
		{"whoami with a forged cookie", "GET", "/api/v1/session", map[string]string{"Cookie": api.CookieName + "=forged"}, "", "", 401},
		{"twin with the cookie", "GET", "/api/v1/twin/points", withCookie, "", "", 200},
		{"services with the cookie", "GET", "/api/v1/services", withCookie, "", "", 200},
		// A state-changing request with the cookie: 403 without the
		// token; with it, the access check lets it through (the twin's
		// API has no POST on its points: 404).
		{"twin POST without CSRF", "POST", "/api/v1/twin/points", withCookie, "", "", 403},
		{"twin POST with a wrong CSRF", "POST", "/api/v1/twin/points", map[string]string{"Cookie": cookie, api.CSRFHeader: "nope"}, "", "", 403},
		{"twin POST with CSRF", "POST", "/api/v1/twin/points", withCSRF, "", "", 404},
		{"alarm command without CSRF", "POST", "/api/v1/alarms/x/ack", withCookie, "", "", 403},
		{"twin POST with Bearer", "POST", "/api/v1/twin/points", map[string]string{"Authorization": adminJWT}, "", "", 404},
		{"twin POST with Basic", "POST", "/api/v1/twin/points", map[string]string{"basic": "ops"}, "", "", 404},
		{"summary with the cookie", "GET", "/api/v1/broker/summary", withCookie, "", "", 200},
		{"summary with Bearer", "GET", "/api/v1/broker/summary", map[string]string{"Authorization": adminJWT}, "", "", 200},
		{"summary as a tenant's user", "GET", "/api/v1/broker/summary", map[string]string{"basic": "cs"}, "", "", 403},
		{"summary as a user without a role", "GET", "/api/v1/broker/summary", map[string]string{"basic": "plain"}, "", "", 403},
		{"summary without credentials", "GET", "/api/v1/broker/summary", nil, "", "", 401},
		{"login with a wrong password", "POST", "/api/v1/session", nil, `{"username":"ops","password":"x"}`, "application/json", 401},
		{"login as a form", "POST", "/api/v1/session", nil, `username=ops&password=pw`, "application/x-www-form-urlencoded", 415},
		{"login as text/plain", "POST", "/api/v1/session", nil, `{"username":"ops","password":"pw"}`, "text/plain", 415},
		{"login from another origin", "POST", "/api/v1/session", map[string]string{"Origin": "http://evil.example"}, `{"username":"ops","password":"pw"}`, "application/json", 403},
		{"login from another scheme", "POST", "/api/v1/session", map[string]string{"Origin": "https://" + host}, `{"username":"ops","password":"pw"}`, "application/json", 403},
		{"login not JSON", "POST", "/api/v1/session", nil, `{"username":`, "application/json", 400},
		{"login with unknown fields", "POST", "/api/v1/session", nil, `{"user":"ops","password":"pw"}`, "application/json", 400},
		{"logout without CSRF", "DELETE", "/api/v1/session", withCookie, "", "", 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			for k, v := range c.hdr {
				hdr[k] = v
			}
			if c.ctype != "" {
				hdr["Content-Type"] = c.ctype
			}
			resp, b := apiCall(t, c.method, base+c.path, c.body, hdr)
			if resp.StatusCode != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, b, c.want)
			}
			if c.want >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: Content-Type %q, want problem details", c.method, c.path, resp.Header.Get("Content-Type"))
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s %s: Cache-Control %q", c.method, c.path, got)
			}
		})
	}

	// The summary's counters.
	_, b = apiCall(t, "GET", base+"/api/v1/broker/summary", "", map[string]string{"basic": "ops"})
	var sum map[string]float64
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"uptime_seconds", "clients", "sessions", "subscriptions", "retained", "messages_in_per_second", "messages_out_per_second"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary lacks %s: %s", k, b)
		}
	}

	// Logout with the token ends the session.
	if resp, b := apiCall(t, "DELETE", base+"/api/v1/session", "", withCSRF); resp.StatusCode != 204 ||
		!strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %s %v", resp.StatusCode, b, resp.Header["Set-Cookie"])
	}
	if resp, _ := apiCall(t, "GET", base+"/api/v1/twin/points", "", withCookie); resp.StatusCode != 401 {
		t.Errorf("twin after logout: %d, want 401", resp.StatusCode)
	}
}

// TestAPISecurityHeaders: everything the HTTP listener serves carries the
// browsers' security headers; only the API's answers are not to be cached.
func TestAPISecurityHeaders(t *testing.T) {
	n := startNode(t, testConfig(t), nil)
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	for _, c := range []struct {
		path    string
		noStore bool
	}{{"/healthz", false}, {"/metrics", false}, {"/nothing-here", false}, {"/api/v1/session", true}, {"/api/v1/openapi.json", true}} {
		resp, _ := apiCall(t, "GET", base+c.path, "", nil)
		for k, v := range map[string]string{
			"Content-Security-Policy": api.CSP, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", c.path, k, got, v)
			}
		}
		if got := resp.Header.Get("Cache-Control") == "no-store"; got != c.noStore {
			t.Errorf("%s: Cache-Control %q", c.path, resp.Header.Get("Cache-Control"))
		}
	}
	if !strings.Contains(api.CSP, "frame-ancestors 'none'") || !strings.Contains(api.CSP, "connect-src 'self' ws: wss:") {
		t.Errorf("CSP %q", api.CSP)
	}
}

// TestAPIBroker: the broker's routes over real HTTP with real MQTT
// clients: the client list, a publish seen by an independent Paho
// subscriber, a disconnect the Paho client sees as DISCONNECT 0x98, the
// retained messages, and their refusals.
func TestAPIBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := twinConfig(t, true)
	cfg.Twin = node.TwinConfig{}
	cfg.ACL.Rules = append(cfg.ACL.Rules, auth.RuleConfig{Allow: []string{"read", "write"}, Topics: []string{"city/#"}, Users: []string{"ops"}})
	n := startNode(t, cfg, nil)
	addr, base := n.Addr(node.ListenerMQTT).String(), "http://"+n.Addr(node.ListenerHTTP).String()
	got := make(chan *paho.Publish, 8)
	disc := make(chan *paho.Disconnect, 1)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	sub := paho.NewClient(paho.ClientConfig{Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { got <- pr.Packet; return true, nil }},
		OnServerDisconnect: func(d *paho.Disconnect) { disc <- d },
	})
	if ack, err := sub.Connect(ctx, &paho.Connect{ClientID: "watcher", CleanStart: true, KeepAlive: 30,
		Username: "ops", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true}); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v %+v", err, ack)
	}
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "city/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	ops := map[string]string{"basic": "ops", "Content-Type": "application/json"}

	// The client list.
	resp, b := apiCall(t, "GET", base+"/api/v1/broker/clients", "", ops)
	var cl struct {
		Clients []struct {
			ID, User, Listener string
			Protocol           int `json:"protocol_version"`
			Subscriptions      int
		}
	}
	if err := json.Unmarshal(b, &cl); err != nil || resp.StatusCode != 200 || len(cl.Clients) != 1 || cl.Clients[0].ID != "watcher" ||
		cl.Clients[0].User != "ops" || cl.Clients[0].Protocol != 5 || cl.Clients[0].Subscriptions != 1 || cl.Clients[0].Listener != node.ListenerMQTT {
		t.Fatalf("clients: %d %s", resp.StatusCode, b)
	}
	if resp, b := apiCall(t, "GET", base+"/api/v1/broker/clients/watcher", "", ops); resp.StatusCode != 200 || !strings.Contains(string(b), `"connected_since"`) {
		t.Errorf("client watcher: %d %s", resp.StatusCode, b)
	}

	// A publish over HTTP reaches the subscriber; it is retained.
	if resp, b := apiCall(t, "POST", base+"/api/v1/broker/publish", `{"topic":"city/a/b","payload":"hello","qos":1,"retain":true}`, ops); resp.StatusCode != 200 {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
	select {
	case p := <-got:
		if p.Topic != "city/a/b" || string(p.Payload) != "hello" || p.QoS != 1 {
			t.Errorf("received %s %q qos %d", p.Topic, p.Payload, p.QoS)
		}
	case <-ctx.Done():
		t.Fatal("the published message did not arrive")
	}
	resp, b = apiCall(t, "GET", base+"/api/v1/broker/retained?filter="+url.QueryEscape("city/+/#")+"&limit=5", "", ops)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"topic":"city/a/b","payload_size":5,"payload_preview":"hello"`) {
		t.Errorf("retained: %d %s", resp.StatusCode, b)
	}

	for _, c := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		want                     int
	}{
		{"publish outside the ACL", "POST", "/api/v1/broker/publish", `{"topic":"other/x","payload":"p"}`, ops, 403},
		{"publish to $SYS", "POST", "/api/v1/broker/publish", `{"topic":"$SYS/x","payload":"p"}`, ops, 400},
		{"publish to a filter", "POST", "/api/v1/broker/publish", `{"topic":"city/#","payload":"p"}`, ops, 400},
		{"publish qos 3", "POST", "/api/v1/broker/publish", `{"topic":"city/x","qos":3}`, ops, 400},
		{"publish not JSON", "POST", "/api/v1/broker/publish", `topic=x`, ops, 400},
		{"publish as a tenant's user", "POST", "/api/v1/broker/publish", `{"topic":"city/x"}`, map[string]string{"basic": "cs"}, 403},
		{"clients as a tenant's user", "GET", "/api/v1/broker/clients", "", map[string]string{"basic": "grower"}, 403},
		{"clients without credentials", "GET", "/api/v1/broker/clients", "", nil, 401},
		{"retained with a bad filter", "GET", "/api/v1/broker/retained?filter=a/%23/b", "", ops, 400},
		{"retained with a bad limit", "GET", "/api/v1/broker/retained?limit=-1", "", ops, 400},
		{"unknown client", "GET", "/api/v1/broker/clients/nobody", "", ops, 404},
		{"disconnect an unknown client", "DELETE", "/api/v1/broker/clients/nobody", "", ops, 404},
		{"clear a topic without retained", "DELETE", "/api/v1/broker/retained/city/none", "", ops, 404},
		{"clear retained", "DELETE", "/api/v1/broker/retained/city/a/b", "", ops, 204},
	} {
		resp, b := apiCall(t, c.method, base+c.path, c.body, c.hdr)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, b, c.want)
		} else if c.want >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", c.name, resp.Header.Get("Content-Type"))
		}
	}
	if _, b := apiCall(t, "GET", base+"/api/v1/broker/retained?filter=city/%23", "", ops); !strings.Contains(string(b), `"retained":[]`) {
		t.Errorf("retained after clearing: %s", b)
	}

	// A disconnect: the client hears DISCONNECT 0x98.
	if resp, b := apiCall(t, "DELETE", base+"/api/v1/broker/clients/watcher", "", ops); resp.StatusCode != 204 {
		t.Fatalf("disconnect: %d %s", resp.StatusCode, b)
	}
	select {
	case d := <-disc:
		if d.ReasonCode != 0x98 {
			t.Errorf("DISCONNECT %#x, want 0x98", d.ReasonCode)
		}
	case <-ctx.Done():
		t.Fatal("no DISCONNECT")
	}
}
