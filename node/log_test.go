package node_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/node"
)

// waitLog waits up to 10 s for a line of buf to match re.
func waitLog(t *testing.T, buf *logBuffer, re string) string {
	t.Helper()
	rx := regexp.MustCompile("(?m)^.*" + re + ".*$")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := rx.FindString(buf.String()); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matches %s in:\n%s", re, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writePasswordFile writes a password file with users (password "pw") and
// returns its path.
func writePasswordFile(t *testing.T, users ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	f := auth.NewPasswordFile(path)
	for _, u := range users {
		hash, err := auth.HashPassword([]byte("pw"), auth.HashParams{Bcrypt: true, Cost: 4})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Set(u, hash, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStartupLog: the node says which build it is, where its store is, what
// it listens on, and how it authenticates.
func TestStartupLog(t *testing.T) {
	var buf logBuffer
	cfg := testConfig(t)
	cfg.Auth.PasswordFile = writePasswordFile(t, "ops", "meter-7", "meter-8")
	cfg.ACL = auth.ACLConfig{Rules: []auth.RuleConfig{
		{Allow: []string{"publish"}, Topics: []string{"energy/%u/#"}},
		{Allow: []string{"read"}, Topics: []string{"#"}},
	}}
	n := startNode(t, cfg, logger(&buf, slog.LevelInfo))
	waitLog(t, &buf, `msg="citymesh node" version=\S+ revision=\S* go=`+regexp.QuoteMeta(runtime.Version()))
	waitLog(t, &buf, `msg=authentication backends=\[password_file\] users=3 anonymous=false acl_rules=2`)
	waitLog(t, &buf, `msg=store kind=disk path=`+regexp.QuoteMeta(filepath.Join(cfg.Data, "store"))+` sync=batch`)
	for _, l := range []struct{ msg, name string }{{`"MQTT listening"`, node.ListenerMQTT}, {`"MQTT over WebSocket listening"`, node.ListenerWS}, {`"HTTP listening"`, node.ListenerHTTP}} {
		waitLog(t, &buf, `msg=`+l.msg+` addr=`+regexp.QuoteMeta(n.Addr(l.name).String()))
	}

	var anon logBuffer
	cfg = testConfig(t)
	cfg.Store = "memory"
	startNode(t, cfg, logger(&anon, slog.LevelInfo))
	waitLog(t, &anon, `msg=authentication backends=\[none\] users=0 anonymous=true acl_rules=0`)
	waitLog(t, &anon, `level=WARN msg="store memory`)
}

// TestBuildInfoMetric: /metrics has citymesh_build_info 1 with the build's
// labels.
func TestBuildInfoMetric(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	n := startNode(t, cfg, nil)
	_, body := httpGet(t, "http://"+n.Addr(node.ListenerHTTP).String()+"/metrics")
	re := regexp.MustCompile(`(?m)^citymesh_build_info\{goversion="` + regexp.QuoteMeta(runtime.Version()) + `",revision="[^"]*",version="[^"]+"\} 1$`)
	if !re.MatchString(body) {
		t.Fatalf("no citymesh_build_info line in /metrics:\n%s", body)
	}
}

// TestClientLines: a line at info level when a client connects and when it
// goes, with its user and address and why it went.
func TestClientLines(t *testing.T) {
	var buf logBuffer
	cfg := testConfig(t)
	cfg.Store = "memory"
	n := startNode(t, cfg, logger(&buf, slog.LevelInfo))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	conn, err := net.Dial("tcp", n.Addr(node.ListenerMQTT).String())
	if err != nil {
		t.Fatal(err)
	}
	local := regexp.QuoteMeta(conn.LocalAddr().String())
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "meter-7", CleanStart: true, KeepAlive: 30,
		Username: "meter-7", UsernameFlag: true}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, &buf, `level=INFO msg="client connected" client=meter-7 user=meter-7 remote=`+local+` listener=mqtt version=5.0`)
	c.Disconnect(&paho.Disconnect{})
	waitLog(t, &buf, `level=INFO msg="client disconnected" client=meter-7 user=meter-7 remote=`+local+` listener=mqtt reason=disconnect`)

	ws, err := pahoWS("ws://"+n.Addr(node.ListenerWS).String()+"/mqtt", "dashboard", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, &buf, `msg="client connected" client=dashboard user="" remote=127\.0\.0\.1:\d+ listener=ws version=3\.1\.1`)
	// Taken over by a second connection with the same identifier.
	_ = pahoV5(t, ctx, n.Addr(node.ListenerMQTT).String(), "dashboard", nil)
	waitLog(t, &buf, `msg="client disconnected" client=dashboard user="" remote=\S+ listener=ws reason="taken over"`)
	ws.Disconnect(0)
}

// TestClientLinesStorm: a storm of connections does not flood the log; the
// lines held back are counted in one line.
func TestClientLinesStorm(t *testing.T) {
	var buf logBuffer
	cfg := testConfig(t)
	cfg.Store, cfg.WS, cfg.HTTP = "memory", "off", "off"
	n := startNode(t, cfg, logger(&buf, slog.LevelInfo))
	addr := n.Addr(node.ListenerMQTT).String()
	const storm = 400 // 800 lines, well beyond the bucket
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range storm {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c := paho.NewClient(paho.ClientConfig{Conn: conn})
		if _, err := c.Connect(ctx, &paho.Connect{ClientID: "storm-" + strconv.Itoa(i), CleanStart: true}); err != nil {
			t.Fatal(err)
		}
		c.Disconnect(&paho.Disconnect{})
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Count(out, `msg="client connected"`) + strings.Count(out, `msg="client disconnected"`)
	m := regexp.MustCompile(`(\d+) client connect and disconnect lines suppressed`).FindAllStringSubmatch(out, -1)
	suppressed := 0
	for _, s := range m {
		k, _ := strconv.Atoi(s[1])
		suppressed += k
	}
	if lines >= 2*storm || lines > 400 || len(m) == 0 {
		t.Fatalf("%d client lines and %d reports of suppressed lines for %d connections", lines, len(m), storm)
	}
	t.Logf("%d connections: %d lines written, %d held back and reported in %d lines", storm, lines, suppressed, len(m))
	if lines+suppressed != 2*storm {
		t.Fatalf("%d lines written and %d suppressed, want %d in all", lines, suppressed, 2*storm)
	}
}

// TestRefusedLinkLogged: the node that refuses a mesh link says so at warn
// level, with the peer, its address and why.
func TestRefusedLinkLogged(t *testing.T) {
	var buf logBuffer
	cfg := testConfig(t)
	cfg.Store = "memory"
	n := startNode(t, cfg, logger(&buf, slog.LevelInfo))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", n.Addr(node.ListenerMQTT).String())
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: "$mesh/core-9", CleanStart: false, KeepAlive: 30})
	if err == nil && ack.ReasonCode == 0 {
		t.Fatal("a node without mesh configuration accepted a link")
	}
	waitLog(t, &buf, `level=WARN msg="mesh: link refused" peer=core-9 remote=`+regexp.QuoteMeta(conn.LocalAddr().String())+` reason="this node has no mesh configuration`)
}

// TestRegistryForTheProgram: a program may register its own collectors in
// the node's registry (the Go runtime's too) before starting it.
func TestRegistryForTheProgram(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Registry().MustRegister(collectors.NewGoCollector(), prometheus.NewCounter(prometheus.CounterOpts{Name: "city_services_started_total", Help: "x"}))
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, body := httpGet(t, "http://"+n.Addr(node.ListenerHTTP).String()+"/metrics")
	for _, want := range []string{"go_goroutines", "process_open_fds", "city_services_started_total 0", "citymesh_sessions"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
