package node

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1883": true, "[::1]:1883": true, "localhost:1": true, "LOCALHOST:1": true,
		"127.0.0.2:1883": true, "0.0.0.0:1883": false, ":1883": false, "10.0.0.1:1883": false, "bad": false, "evil.example:1": false} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestChangedKeys(t *testing.T) {
	a := Default()
	b := Default()
	b.MQTT = "127.0.0.1:1884"
	b.Limits.MaxInflight = 10
	b.Limits.Limits.MaxConnections = 5
	b.Mesh.Node = "core-1"
	b.TLS = nil
	a.TLS = nil
	got := changedKeys(reflect.ValueOf(a), reflect.ValueOf(b), "", nil)
	want := []string{"mqtt", "limits.max_inflight", "limits.max_connections", "mesh.node"}
	if !slices.Equal(got, want) {
		t.Fatalf("changedKeys = %v, want %v", got, want)
	}
	b = a
	b.Auth.JWT = nil
	if got := changedKeys(reflect.ValueOf(a), reflect.ValueOf(b), "", nil); len(got) != 0 {
		t.Fatalf("no change: %v", got)
	}
}

func TestSectionsKnowTheKeys(t *testing.T) {
	for typ, want := range map[string]struct {
		path string
		key  string
	}{
		"node.Config":      {"", "ws_allowed_origins"},
		"broker.Options":   {"limits", "max_connections"}, // inline broker.Limits
		"auth.Config":      {"auth", "password_file"},
		"mesh.PeerConfig":  {"mesh.peers", "url"},
		"auth.TLSConfig":   {"tls", "client_ca"},
		"mesh.BridgeTopic": {"mesh.bridges.topics", "direction"},
	} {
		si := sections[typ]
		if si == nil || !slices.Contains(si.paths, want.path) || !slices.Contains(si.keys, want.key) {
			t.Errorf("sections[%s] = %+v, want path %q and key %q", typ, si, want.path, want.key)
		}
	}
	if k := sections["broker.Options"].keys; slices.Contains(k, "logger") || slices.Contains(k, "onclient") || slices.Contains(k, "limits") {
		t.Errorf("limits keys include what the node sets: %v", k)
	}
}

func TestOriginPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern, origin string
		want            bool
	}{
		{"https://a.example", "https://a.example", true},
		{"https://a.example", "https://A.EXAMPLE", true},
		{"https://a.example", "https://a.example:443", true},
		{"https://a.example", "https://a.example:8443", false},
		{"https://a.example", "http://a.example", false},
		{"http://localhost:*", "http://localhost:5173", true},
		{"http://localhost:*", "http://localhost", true},
		{"https://*.example.org", "https://x.example.org", true},
		{"https://*.example.org", "https://example.org", false},
		{"https://*.example.org", "https://x.example.org.evil", false},
		{"http://[::1]:8080", "http://[::1]:8080", true},
	} {
		p := newOriginPolicy(nil, []string{tc.pattern})
		if got := p.allows(tc.origin); got != tc.want {
			t.Errorf("%s allows %s = %v, want %v", tc.pattern, tc.origin, got, tc.want)
		}
	}
	if !newOriginPolicy(nil, []string{"*"}).allows("null") {
		t.Error(`"*" does not allow every origin`)
	}
	if newOriginPolicy(nil, []string{"https://*.example.org"}).allows("https://*.example.org") {
		t.Error("a pattern sent as an origin is allowed")
	}
	for _, tc := range []struct {
		host, port string
		want       []string
	}{
		{"127.0.0.1", "8080", []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"}},
		{"", "9000", []string{"http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"}},
		{"0.0.0.0", "80", []string{"http://127.0.0.1:80", "http://localhost:80", "http://[::1]:80"}},
		{"node.city.example", "8080", []string{"http://node.city.example:8080"}},
		{"fd00::5", "8080", []string{"http://[fd00::5]:8080"}},
	} {
		if got := ownOrigins(tc.host, tc.port); !slices.Equal(got, tc.want) {
			t.Errorf("ownOrigins(%q, %q) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClientLogReports: the lines held back are reported every
// clientLogEvery, and not at all when there were none.
func TestClientLogReports(t *testing.T) {
	defer func(d time.Duration) { clientLogEvery = d }(clientLogEvery)
	clientLogEvery = 20 * time.Millisecond
	var buf syncBuffer
	l := newClientLog(slog.New(slog.NewTextHandler(&buf, nil)))
	for range clientLogBurst + 5 {
		l.event(broker.ClientEvent{Connected: true, ClientID: "c", Remote: "127.0.0.1:1", Listener: "mqtt", Version: 4})
	}
	l.event(broker.ClientEvent{Link: true}) // links are not logged, nor counted
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "5 client connect and disconnect lines suppressed") {
		if time.Now().After(deadline) {
			t.Fatalf("no report of suppressed lines:\n%s", buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(3 * clientLogEvery)
	cancel()
	<-done
	if n := strings.Count(buf.String(), "suppressed"); n != 1 {
		t.Fatalf("%d reports, want 1:\n%s", n, buf.String())
	}
	if n := strings.Count(buf.String(), `msg="client connected" client=c user="" remote=127.0.0.1:1 listener=mqtt version=3.1.1`); n != clientLogBurst {
		t.Fatalf("%d lines, want %d", n, clientLogBurst)
	}
}
