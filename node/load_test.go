package node_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/node"
)

// TestLoadErrors: mistakes in the configuration file are told in the file's
// terms — the key, the line, what was expected — not Go's.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // the whole message after "config FILE: "
	}{
		{"unknown key with a likely meaning", "mqtt: 127.0.0.1:1883\nhttp: \"off\"\nsync: batch\nlog_level: debug\n",
			"unknown key log_level at line 4 (did you mean log?)"},
		{"misspelt key in a section", "limits:\n  max_connections: 5\n  max_inflite: 10\n",
			"unknown key max_inflite in limits at line 3 (did you mean max_inflight?)"},
		{"key in the wrong section", "max_inflight: 10\n",
			"unknown key max_inflight at line 1 (it belongs in limits)"},
		{"unknown key in a list item", "mesh:\n  node: core-1\n  role: core\n  peers:\n    - name: core-2\n      adress: mqtt://x\n",
			"unknown key adress in mesh.peers or mesh.upstream at line 6"},
		{"misspelt key of a connector", "connectors:\n  campus: campus.yaml\n  tts:\n    - application: wartberg-ttn\n      api_kee: NNSXS\n",
			"unknown key api_kee in connectors.tts at line 5 (did you mean api_key?)"},
		{"liveness in the wrong place", "connectors:\n  missed: 3\n",
			"unknown key missed in connectors at line 2 (it belongs in connectors.liveness)"},
		{"text for a number", "limits:\n  max_inflight: lots   # of them\n",
			"max_inflight at line 2: lots is not a whole number from 0 to 65535"},
		{"number out of range", "limits:\n  max_inflight: 70000\n",
			"max_inflight at line 2: 70000 is not a whole number from 0 to 65535"},
		{"duration without a unit", "limits:\n  connect_timeout: 10\n",
			"connect_timeout at line 2: 10 is not a duration with a unit, such as 10s, 1m or 1h30m"},
		{"not a boolean", "allow_remote_anonymous: maybe\n",
			"allow_remote_anonymous at line 1: maybe is not true or false"},
		{"a section for a value", "ws: \"off\"\nmqtt:\n  port: 1883\n",
			"mqtt at line 2: want a single value, not a section"},
		{"a value for a list", "acl:\n  rules:\n    - allow: publish\n      topics: [\"#\"]\n",
			"allow at line 3: publish is not a list (write [publish])"},
		{"a key twice", "mqtt: 127.0.0.1:1883\nws: \"off\"\nmqtt: 127.0.0.1:1884\n",
			"mqtt is set twice, at lines 1 and 3"},
		{"tab indentation", "auth:\n\tpassword_file: /etc/citymesh/passwd\n",
			"line 2 is not valid YAML: found character that cannot start any token (line 2 has a tab: YAML indents with spaces only)"},
		{"broken flow list", "mqtt: 127.0.0.1:1883\nws_allowed_origins: [https://a.example\n",
			"line 2 is not valid YAML: did not find expected ',' or ']'"},
		{"a mosquitto.conf", "# /etc/mosquitto/mosquitto.conf\npersistence true\npersistence_location /var/lib/mosquitto/\n\nlistener 1883\nallow_anonymous false\npassword_file /etc/mosquitto/passwd\ninclude_dir /etc/mosquitto/conf.d\n",
			"this looks like a mosquitto.conf; citymesh reads YAML (docs/citymesh.example.yaml is a commented example): " +
				"persistence (line 2) is store, persistence_location (line 3) is data, listener (line 5) is mqtt, mqtts, ws or wss (host:port), " +
				"allow_anonymous (line 6) is auth.allow_anonymous, password_file (line 7) is auth.password_file"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "citymesh-"+strconv.Itoa(i)+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := node.Load(path)
			if err == nil {
				t.Fatal("Load accepted it")
			}
			if want := "config " + path + ": " + tc.want; err.Error() != want {
				t.Fatalf("Load:\n got %s\nwant %s", err, want)
			}
		})
	}
}

// TestLoadOverDefaults: keys the file leaves out keep their defaults; an
// empty file is the defaults.
func TestLoadOverDefaults(t *testing.T) {
	cfg, err := node.Parse([]byte("ws: \"off\"\nlimits:\n  max_inflight: 16\n  max_connections: 100\n  connect_timeout: 5s\nws_allowed_origins: [https://dashboard.city.example]\n"))
	if err != nil {
		t.Fatal(err)
	}
	def := node.Default()
	if cfg.WS != "off" || cfg.MQTT != def.MQTT || cfg.HTTP != def.HTTP || cfg.Data != def.Data || cfg.Store != "disk" ||
		cfg.Limits.MaxInflight != 16 || cfg.Limits.Limits.MaxConnections != 100 || cfg.Limits.ConnectTimeout != 5*time.Second ||
		!slices.Equal(cfg.WSAllowedOrigins, []string{"https://dashboard.city.example"}) {
		t.Fatalf("Parse = %+v", cfg)
	}
	for _, empty := range []string{"", "# nothing yet\n"} {
		cfg, err := node.Parse([]byte(empty))
		if err != nil || !slices.Equal(cfg.WSAllowedOrigins, nil) || cfg.MQTT != def.MQTT {
			t.Fatalf("Parse(%q) = %+v, %v", empty, cfg, err)
		}
	}
	if _, err := node.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

// TestStoreInUse: a second node on the same data directory is refused with
// the first one's process id, in the same process (here) and in another
// (cmd/citymesh TestStoreInUseByAnotherProcess).
func TestStoreInUse(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTT, cfg.WS, cfg.HTTP = "off", "off", "off"
	first, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := os.ReadFile(filepath.Join(cfg.Data, "citymesh.pid"))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid file: %q, %v", pid, err)
	}
	_, err = node.New(cfg, slog.New(slog.DiscardHandler))
	var inUse *node.StoreInUseError
	if !errors.As(err, &inUse) || inUse.PID != os.Getpid() || inUse.Store != filepath.Join(cfg.Data, "store") {
		t.Fatalf("second node: %v", err)
	}
	want := filepath.Join(cfg.Data, "store") + " is in use by another citymesh process (pid " + strconv.Itoa(os.Getpid()) + "); stop it or use another data directory"
	if err.Error() != want {
		t.Fatalf("got  %s\nwant %s", err, want)
	}
	first.Close()
	second, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	second.Close()
}

// TestReloadNamesWhatNeedsRestart: Reload applies the ACL and the allowed
// origins, and names every other changed setting (here a listener address
// and a limit) as not applied until restart.
func TestReloadNamesWhatNeedsRestart(t *testing.T) {
	var buf logBuffer
	cfg := testConfig(t)
	cfg.Store = "memory"
	n := startNode(t, cfg, logger(&buf, slog.LevelInfo))
	mqttBefore := n.Addr(node.ListenerMQTT).String()

	next := n.Config()
	next.MQTT = "127.0.0.1:1"
	next.Limits.MaxInflight = 8
	next.WSAllowedOrigins = []string{"https://dashboard.city.example"}
	notApplied, err := n.Reload(&next)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mqtt", "limits.max_inflight"}; !slices.Equal(notApplied, want) {
		t.Fatalf("not applied: %v, want %v", notApplied, want)
	}
	waitLog(t, &buf, `level=WARN msg="not applied until restart: mqtt, limits.max_inflight"`)
	if got := n.Addr(node.ListenerMQTT).String(); got != mqttBefore {
		t.Fatalf("the listener moved to %s", got)
	}
	if got := n.Config(); got.MQTT != cfg.MQTT || got.Limits.MaxInflight != 0 || len(got.WSAllowedOrigins) != 1 {
		t.Fatalf("running configuration after reload: %+v", got)
	}
	// Reloading the same again names them again: they are still not applied.
	if notApplied, _ := n.Reload(&next); len(notApplied) != 2 {
		t.Fatalf("second reload: %v", notApplied)
	}
	// A configuration that does not validate changes nothing.
	bad := next
	bad.Sync = "fast"
	if _, err := n.Reload(&bad); err == nil || !strings.Contains(err.Error(), "sync: ") {
		t.Fatalf("Reload of an invalid configuration: %v", err)
	}
	// Nothing changed: nothing to name.
	if notApplied, err := n.Reload(nil); err != nil || len(notApplied) != 0 {
		t.Fatalf("Reload(nil) = %v, %v", notApplied, err)
	}
}
