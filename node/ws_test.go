package node_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/node"
)

// upgrade sends a raw WebSocket upgrade request for /mqtt to addr with the
// given Host and Origin headers ("" leaves Origin out) and returns the
// response's status code.
func upgrade(t *testing.T, addr, host, origin string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /mqtt HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n"
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric returns the value of a sample line of /metrics (name with labels).
func metric(t *testing.T, base, sample string) string {
	t.Helper()
	_, body := httpGet(t, base+"/metrics")
	m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(sample) + " (\\S+)$").FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", sample)
	}
	return m[1]
}

// TestWebSocketOrigins: browsers' upgrade requests are accepted from the
// node's own HTTP origins and the configured ones only; requests without
// Origin (not from a browser) are accepted, except on a loopback listener
// reached under a name that is not loopback (DNS rebinding). Refusals are
// 403 and counted.
func TestWebSocketOrigins(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.WSAllowedOrigins = []string{"https://dashboard.city.example", "https://*.example.org", "http://localhost:*"}
	n := startNode(t, cfg, nil)
	ws := n.Addr(node.ListenerWS).String()
	_, wsPort, _ := net.SplitHostPort(ws)
	_, httpPort, _ := net.SplitHostPort(n.Addr(node.ListenerHTTP).String())
	evil := "evil.example:" + wsPort
	tests := []struct {
		name, host, origin string
		want               int
	}{
		{"no Origin: not a browser", ws, "", 101},
		{"no Origin, Host localhost", "localhost:" + wsPort, "", 101},
		{"the node's dashboard", ws, "http://127.0.0.1:" + httpPort, 101},
		{"the node's dashboard as localhost", ws, "http://localhost:" + httpPort, 101},
		{"the node's dashboard on IPv6 loopback", ws, "http://[::1]:" + httpPort, 101},
		{"an allowed origin", ws, "https://dashboard.city.example", 101},
		{"an allowed origin, explicit default port", ws, "https://dashboard.city.example:443", 101},
		{"an allowed subdomain", ws, "https://ops.example.org", 101},
		{"an allowed deeper subdomain", ws, "https://a.b.example.org", 101},
		{"an allowed port pattern", ws, "http://localhost:3000", 101},
		{"an allowed origin through a proxy that keeps the Host", "broker.city.example", "https://dashboard.city.example", 101},
		{"evil origin", ws, "http://evil.example", 403},
		{"null origin (sandboxed page, file://)", ws, "null", 403},
		{"not an origin", ws, "evil", 403},
		{"the parent of an allowed subdomain pattern", ws, "https://example.org", 403},
		{"a suffix that is not a subdomain", ws, "https://evilexample.org", 403},
		{"an allowed host with another scheme", ws, "http://dashboard.city.example", 403},
		{"the dashboard's host on another port", ws, "http://127.0.0.1:1", 403},
		{"DNS rebinding: the attacker's name and origin", evil, "http://" + evil, 403},
		{"DNS rebinding: the attacker's name, no Origin", evil, "", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := upgrade(t, ws, tc.host, tc.origin); got != tc.want {
				t.Fatalf("Host %q Origin %q: status %d, want %d", tc.host, tc.origin, got, tc.want)
			}
		})
	}
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	if got := metric(t, base, `citymesh_ws_upgrades_refused_total{reason="origin"}`); got != "8" {
		t.Errorf("refused for their origin: %s, want 8", got)
	}
	if got := metric(t, base, `citymesh_ws_upgrades_refused_total{reason="host"}`); got != "1" {
		t.Errorf("refused for their host: %s, want 1", got)
	}
}

// TestWebSocketOriginsWithMQTTClient connects Paho over WebSocket as a
// browser would, with an Origin header: an allowed origin gets an MQTT
// session, another gets none.
func TestWebSocketOriginsWithMQTTClient(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.WSAllowedOrigins = []string{"https://dashboard.city.example"}
	n := startNode(t, cfg, nil)
	url := "ws://" + n.Addr(node.ListenerWS).String() + "/mqtt"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan string, 1)
	_ = pahoV5(t, ctx, n.Addr(node.ListenerMQTT).String(), "watcher", nil)

	c, err := pahoWS(url, "dashboard", http.Header{"Origin": {"https://dashboard.city.example"}})
	if err != nil {
		t.Fatalf("an allowed origin cannot connect: %v", err)
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("alerts/#", 1, func(_ pahoMQTTClient, m pahoMQTTMessage) { got <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish("alerts/energy/1", 1, false, "from the dashboard"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "from the dashboard" {
			t.Fatalf("got %q", m)
		}
	case <-ctx.Done():
		t.Fatal("no message over WebSocket")
	}

	if c, err := pahoWS(url, "evil-page", http.Header{"Origin": {"http://evil.example"}}); err == nil {
		c.Disconnect(0)
		t.Fatal("a page of another origin got an MQTT connection")
	} else if !strings.Contains(err.Error(), "bad handshake") && !strings.Contains(err.Error(), "403") {
		t.Logf("refused with %v", err)
	}
}

// TestWebSocketOriginsDefault: without ws_allowed_origins and without an
// HTTP listener, no browser page may connect; setting the list and
// reloading lets one in without a restart.
func TestWebSocketOriginsDefault(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store, cfg.HTTP = "memory", "off"
	n := startNode(t, cfg, nil)
	ws := n.Addr(node.ListenerWS).String()
	for _, origin := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "https://dashboard.city.example"} {
		if got := upgrade(t, ws, ws, origin); got != 403 {
			t.Errorf("Origin %s: %d, want 403", origin, got)
		}
	}
	if got := upgrade(t, ws, ws, ""); got != 101 {
		t.Errorf("no Origin: %d, want 101", got)
	}
	next := n.Config()
	next.WSAllowedOrigins = []string{"https://dashboard.city.example"}
	notApplied, err := n.Reload(&next)
	if err != nil || len(notApplied) > 0 {
		t.Fatalf("Reload = %v, %v", notApplied, err)
	}
	if got := upgrade(t, ws, ws, "https://dashboard.city.example"); got != 101 {
		t.Errorf("after reload: %d, want 101", got)
	}
}

// TestWebSocketOriginsDefaultHTTPAddress: with the default HTTP listener
// address, the dashboard origins are http://127.0.0.1:8080 and
// http://localhost:8080.
func TestWebSocketOriginsDefaultHTTPAddress(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Skipf("127.0.0.1:8080 is taken (%v)", err)
	}
	probe.Close()
	cfg := testConfig(t)
	cfg.Store, cfg.HTTP = "memory", node.Default().HTTP
	n := startNode(t, cfg, nil)
	ws := n.Addr(node.ListenerWS).String()
	for origin, want := range map[string]int{"http://127.0.0.1:8080": 101, "http://localhost:8080": 101, "http://127.0.0.1:8081": 403, "https://localhost:8080": 403} {
		if got := upgrade(t, ws, ws, origin); got != want {
			t.Errorf("Origin %s: %d, want %d", origin, got, want)
		}
	}
}

func TestWSAllowedOriginsValidate(t *testing.T) {
	for _, tc := range []struct {
		origins []string
		want    string // "" for valid
	}{
		{[]string{"https://a.example", "http://localhost:3000", "https://*.example.org", "http://127.0.0.1:*", "*", "http://[::1]:8080"}, ""},
		{[]string{"https://a.example", "example.org"}, `ws_allowed_origins[1]: "example.org" is not an origin`},
		{[]string{"https://a.example/dashboard"}, "ws_allowed_origins[0]"},
		{[]string{"null"}, "ws_allowed_origins[0]"},
		{[]string{"https://a.*.example"}, "subdomains"},
	} {
		cfg := node.Default()
		cfg.WSAllowedOrigins = tc.origins
		err := cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: Validate() = %v, want %q", tc.origins, err, tc.want)
		}
	}
}

// wsMQTT opens MQTT 5 over WebSocket at url with the given headers
// (Cookie, Origin) and connects as clientID without credentials; it
// returns the client, the CONNACK's reason code, and the messages it
// receives.
func wsMQTT(t *testing.T, ctx context.Context, u string, hdr http.Header, clientID string) (*paho.Client, byte, chan *paho.Publish) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	got := make(chan *paho.Publish, 16)
	// paho.golang writes a packet in several Write calls and sends PINGREQ
	// from a goroutine of its own (the first right after CONNACK); over a
	// WebSocket NetConn, unlike a TCP socket's writev, those calls can
	// interleave with the SUBSCRIBE that follows, and the broker rightly
	// answers the mixed bytes with DISCONNECT 0x81 (malformed packet).
	// packets.NewThreadSafeConn makes each packet's writes one critical
	// section.
	ws := packets.NewThreadSafeConn(websocket.NetConn(context.Background(), c, websocket.MessageBinary))
	cl := paho.NewClient(paho.ClientConfig{Conn: ws,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { got <- pr.Packet; return true, nil }},
	})
	ack, err := cl.Connect(ctx, &paho.Connect{ClientID: clientID, CleanStart: true, KeepAlive: 30})
	if ack == nil {
		t.Fatalf("connect %s: %v", clientID, err)
	}
	t.Cleanup(func() { cl.Disconnect(&paho.Disconnect{}) })
	return cl, ack.ReasonCode, got
}

// TestWebSocketSession: the dashboard's pages open MQTT over WebSocket at
// /mqtt on the node's own HTTP listener, and the browser's session cookie
// logs the connection in as the session's user: a tenant's user is in its
// tenant's namespace, as over MQTT with its password. Without a session
// (and anonymous clients not allowed) the CONNECT is refused; a foreign
// origin is refused at the upgrade, cookie or not.
func TestWebSocketSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := twinConfig(t, true)
	cfg.Twin = node.TwinConfig{}
	cfg.ACL.Rules = append(cfg.ACL.Rules, auth.RuleConfig{Allow: []string{"read"}, Topics: []string{"energy/#"}, Tenants: []string{"campus-service"}})
	n := startNode(t, cfg, nil)
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	wsURL := "ws://" + n.Addr(node.ListenerHTTP).String() + "/mqtt"
	cookie, s := login(t, base, "cs")
	csrf := s.CSRF

	// The tenant's browser subscribes to its own namespace's topic.
	hdr := http.Header{"Cookie": {cookie}, "Origin": {base}}
	cl, code, got := wsMQTT(t, ctx, wsURL, hdr, "browser-cs")
	if code != 0 {
		t.Fatalf("CONNECT with the session cookie: reason %#x", code)
	}
	if _, err := cl.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "energy/#", QoS: 0}}}); err != nil {
		t.Fatal(err)
	}
	// Paho over TCP as an administrator publishes into the tenant's
	// namespace and outside it.
	conn, err := net.Dial("tcp", n.Addr(node.ListenerMQTT).String())
	if err != nil {
		t.Fatal(err)
	}
	pub := paho.NewClient(paho.ClientConfig{Conn: conn})
	if ack, err := pub.Connect(ctx, &paho.Connect{ClientID: "ops-pub", CleanStart: true, KeepAlive: 30,
		Username: "ops", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true}); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect ops: %v %+v", err, ack)
	}
	defer pub.Disconnect(&paho.Disconnect{})
	for _, topic := range []string{"energy/x/other", "$tenant/library/energy/x/theirs", "$tenant/campus-service/energy/x/mine"} {
		if _, err := pub.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(topic)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case p := <-got:
		if p.Topic != "energy/x/mine" || string(p.Payload) != "$tenant/campus-service/energy/x/mine" {
			t.Fatalf("the tenant's browser got %q %q", p.Topic, p.Payload)
		}
	case <-ctx.Done():
		t.Fatal("the tenant's browser got nothing")
	}
	select {
	case p := <-got:
		t.Fatalf("the tenant's browser also got %q", p.Topic)
	case <-time.After(200 * time.Millisecond):
	}

	// Logging out ends the session's MQTT over WebSocket connections.
	resp, body := apiCall(t, "DELETE", base+"/api/v1/session", "", map[string]string{"Cookie": cookie, api.CSRFHeader: csrf})
	if resp.StatusCode != 204 {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	select {
	case <-cl.Done():
	case <-ctx.Done():
		t.Fatal("the logged-out session's MQTT over WebSocket connection is still open")
	}

	// No session: the CONNECT without credentials is refused.
	if _, code, _ := wsMQTT(t, ctx, wsURL, http.Header{"Origin": {base}}, "browser-none"); code != 0x86 && code != 0x87 {
		t.Errorf("CONNECT without a session: reason %#x, want 0x86 or 0x87", code)
	}
	// A foreign page's upgrade is refused, with a live session's cookie too.
	live, _ := login(t, base, "cs")
	_, resp, err = websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {live}, "Origin": {"http://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("upgrade from another origin: %v %v", err, resp)
	}
}
