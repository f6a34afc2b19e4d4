package node_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/node"
)

// logBuffer is a slog handler's output, safe for the node's goroutines and
// the test to share.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logger returns a logger at level that writes text lines into buf.
func logger(buf *logBuffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level}))
}

// testConfig is a node on 127.0.0.1 with every plain listener on a port the
// system chooses, its store in a temporary directory.
func testConfig(t *testing.T) node.Config {
	cfg := node.Default()
	cfg.MQTT, cfg.WS, cfg.HTTP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.SysIntervalSeconds = -1
	return cfg
}

// startNode creates and starts a node, and closes it when the test ends.
func startNode(t *testing.T, cfg node.Config, log *slog.Logger) *node.Node {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := node.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// pahoV5 connects an Eclipse Paho MQTT 5 client over TCP to addr.
func pahoV5(t *testing.T, ctx context.Context, addr, id string, onMessage func(*paho.Publish)) *paho.Client {
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
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("paho connect: %v %+v", err, ack)
	}
	return c
}

type (
	pahoMQTTClient  = pahov3.Client
	pahoMQTTMessage = pahov3.Message
)

// pahoWS connects an Eclipse Paho MQTT 3.1.1 client over WebSocket to url,
// sending header with the upgrade request.
func pahoWS(url, id string, header http.Header) (pahov3.Client, error) {
	opts := pahov3.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetProtocolVersion(4).SetConnectRetry(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	if header != nil {
		opts.SetHTTPHeaders(header)
	}
	c := pahov3.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	return c, tok.Error()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestNodeFromGo starts a whole node from Go (TCP, WebSocket and HTTP on
// ports the system chooses, the disk store), exchanges messages between
// Paho over TCP (MQTT 5), Paho over WebSocket (MQTT 3.1.1) and an
// in-process bus client, reads /healthz and /metrics, and checks that Close
// leaves no goroutine behind and releases the store for the next node.
func TestNodeFromGo(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := testConfig(t)
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n.Addr(node.ListenerMQTT) != nil {
		t.Fatal("a listener is bound before Start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{node.ListenerMQTT, node.ListenerWS, node.ListenerHTTP} {
		if a := n.Addr(l); a == nil || strings.HasSuffix(a.String(), ":0") {
			t.Fatalf("Addr(%s) = %v", l, a)
		}
	}
	if n.Addr(node.ListenerMQTTS) != nil || n.Addr(node.ListenerWSS) != nil {
		t.Fatal("a listener that is off has an address")
	}

	got := make(chan string, 16)
	service, err := bus.NewLocal(n.Broker(), "in-process-service")
	if err != nil {
		t.Fatal(err)
	}
	if err := service.Subscribe(ctx, "energy/#", 1, func(_ context.Context, m bus.Message) {
		got <- "bus " + m.Topic + " " + string(m.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	tcp := pahoV5(t, ctx, n.Addr(node.ListenerMQTT).String(), "paho-tcp", func(p *paho.Publish) {
		got <- "tcp " + p.Topic + " " + string(p.Payload)
	})
	if _, err := tcp.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "energy/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	ws, err := pahoWS("ws://"+n.Addr(node.ListenerWS).String()+"/mqtt", "paho-ws", nil)
	if err != nil {
		t.Fatalf("paho over WebSocket: %v", err)
	}
	if tok := ws.Publish("energy/b1/meter/el-1/reading", 1, false, "42"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish over WebSocket: %v", tok.Error())
	}
	want := map[string]bool{"bus energy/b1/meter/el-1/reading 42": true, "tcp energy/b1/meter/el-1/reading 42": true}
	for len(want) > 0 {
		select {
		case m := <-got:
			if !want[m] {
				t.Fatalf("unexpected %q", m)
			}
			delete(want, m)
		case <-ctx.Done():
			t.Fatalf("still waiting for %v", want)
		}
	}
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	if code, body := httpGet(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/metrics"); code != 200 || !strings.Contains(body, "citymesh_clients_connected 3") || !strings.Contains(body, "citymesh_connections_total 2") ||
		!strings.Contains(body, `citymesh_messages_dropped_total{reason="queue_full"}`) || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}

	ws.Disconnect(100)
	tcp.Disconnect(&paho.Disconnect{})
	service.Close()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", n.Addr(node.ListenerMQTT).String()); err == nil {
		t.Fatal("the MQTT listener still accepts after Close")
	}
	// The store is free again: a node on the same data directory starts.
	n2, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("a node on the released store: %v", err)
	}
	n2.Close()
}

// TestRunEndsWithContext runs a node until its context ends.
func TestRunEndsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := testConfig(t)
	cfg.Store = "memory"
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for n.Addr(node.ListenerMQTT) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the node did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := pahoV5(t, context.Background(), n.Addr(node.ListenerMQTT).String(), "held", nil)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client is still connected after Run returned")
	}
}

// TestStartFailsOnBusyPort: a listener that cannot bind fails Start with an
// error naming it, and Close still releases everything.
func TestStartFailsOnBusyPort(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t)
	cfg.WS = busy.Addr().String()
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = n.Start(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "ws: ") {
		t.Fatalf("Start = %v, want an error of the ws listener", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("store not released: %v", err)
	}
	n2.Close()
}

func TestDefault(t *testing.T) {
	cfg := node.Default()
	if cfg.MQTT != "127.0.0.1:1883" || cfg.WS != "127.0.0.1:8083" || cfg.HTTP != "127.0.0.1:8080" ||
		cfg.MQTTS != "off" || cfg.WSS != "off" || cfg.Store != "disk" || filepath.Join(cfg.Data, "store") != "data/store" ||
		cfg.Sync != "batch" || cfg.Log != "info" {
		t.Fatalf("Default() = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	var zero node.Config
	if err := zero.Validate(); err != nil {
		t.Fatalf("the zero Config does not validate: %v", err)
	}
}

// TestNodeHandle: a program adds its own pages to the node's HTTP
// listener beside /healthz and /metrics; a pattern that conflicts, is not
// valid, or comes after Start is refused.
func TestNodeHandle(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store, cfg.WS = "memory", "off"
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	pics := http.StripPrefix("/pictures/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "picture "+r.URL.Path)
	}))
	if err := n.Handle("GET /pictures/", pics); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pattern string
		h       http.Handler
		want    string
	}{
		{"GET /metrics", pics, "conflicts"},
		{"GET /pictures/", pics, "conflicts"},
		{"BAD PATTERN HERE", pics, "Handle"},
		{"/other", nil, "nil handler"},
	} {
		if err := n.Handle(c.pattern, c.h); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Handle(%q) = %v, want %q", c.pattern, err, c.want)
		}
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.Handle("GET /late/", pics); err == nil {
		t.Error("Handle after Start was accepted")
	}
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	for path, want := range map[string]string{"/pictures/abc.png": "picture abc.png", "/healthz": "ok\n"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s: %d %q, want %q", path, resp.StatusCode, body, want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}
