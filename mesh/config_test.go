package mesh

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	edge := func(mod func(*Config)) Config {
		c := Config{Node: "vineyard", Role: "edge", Upstream: []PeerConfig{{Name: "core", URL: "mqtt://core.example"}}}
		mod(&c)
		return c
	}
	core := func(mod func(*Config)) Config {
		c := Config{Node: "core-1", Role: "core", Peers: []PeerConfig{{Name: "core-2", URL: "mqtts://core-2.example"}}}
		mod(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"an edge", edge(func(*Config) {}), ""},
		{"a core", core(func(*Config) {}), ""},
		{"bridges only", Config{Node: "n", Role: "core", Bridges: []BridgeConfig{{Name: "ttn", URL: "mqtts://eu1.example",
			Topics: []BridgeTopic{{Filter: "#", Direction: "in"}}}}}, ""},
		{"no name", edge(func(c *Config) { c.Node = "" }), "a name is needed"},
		{"a slash in the name", edge(func(c *Config) { c.Node = "a/b" }), "no '/'"},
		{"a wildcard in the name", core(func(c *Config) { c.Node = "core+" }), "no '/', '+', '#'"},
		{"no role", edge(func(c *Config) { c.Role = "" }), "want core or edge"},
		{"an unknown role", edge(func(c *Config) { c.Role = "leaf" }), `role "leaf"`},
		{"a core with upstream", core(func(c *Config) { c.Upstream = []PeerConfig{{Name: "x", URL: "mqtt://x"}} }), "not upstream"},
		{"an edge with peers", edge(func(c *Config) { c.Peers = []PeerConfig{{Name: "x", URL: "mqtt://x"}} }), "has no peers"},
		{"an edge that accepts", edge(func(c *Config) { c.Accept.Edges = []string{"*"} }), "accepts no links"},
		{"a peer without a name", core(func(c *Config) { c.Peers[0].Name = "" }), "needs a name"},
		{"a peer named like the node", core(func(c *Config) { c.Peers[0].Name = "core-1" }), "other than this node's"},
		{"an http URL", core(func(c *Config) { c.Peers[0].URL = "http://core-2" }), "want mqtt:// or mqtts://"},
		{"a URL without host", edge(func(c *Config) { c.Upstream[0].URL = "mqtt://" }), "no host"},
		{"a bad export filter", core(func(c *Config) { c.Peers[0].Export = []string{"a/#/b"} }), `filter "a/#/b"`},
		{"a bad accept filter", core(func(c *Config) { c.Accept.Import = []string{"x+"} }), "accept"},
		{"a bridge without topics", core(func(c *Config) {
			c.Bridges = []BridgeConfig{{Name: "m", URL: "mqtt://m"}}
		}), "no topics"},
		{"a bridge direction", core(func(c *Config) {
			c.Bridges = []BridgeConfig{{Name: "m", URL: "mqtt://m", Topics: []BridgeTopic{{Filter: "#", Direction: "sideways"}}}}
		}), `direction "sideways"`},
		{"a bridge QoS", core(func(c *Config) {
			c.Bridges = []BridgeConfig{{Name: "m", URL: "mqtt://m", Topics: []BridgeTopic{{Filter: "#", Direction: "in", QoS: 3}}}}
		}), "qos 3"},
		{"a bridge filter", core(func(c *Config) {
			c.Bridges = []BridgeConfig{{Name: "m", URL: "mqtt://m", Topics: []BridgeTopic{{Filter: "#/x", Direction: "out"}}}}
		}), `filter "#/x"`},
		{"a bridge name", core(func(c *Config) {
			c.Bridges = []BridgeConfig{{Name: "a b", URL: "mqtt://m", Topics: []BridgeTopic{{Filter: "#", Direction: "out"}}}}
		}), "a bridge needs a name"},
		{"negative limits", edge(func(c *Config) { c.LinkMaxMessages = -1 }), "cannot be negative"},
		{"a link keep alive in whole seconds", edge(func(c *Config) { c.LinkKeepAlive = 5 * time.Second }), ""},
		{"a link keep alive of a fraction of a second", edge(func(c *Config) { c.LinkKeepAlive = 1500 * time.Millisecond }), "link_keep_alive 1.5s: whole seconds"},
		{"a link keep alive below a second", core(func(c *Config) { c.LinkKeepAlive = 500 * time.Millisecond }), "whole seconds from 1s"},
		{"a negative link keep alive", core(func(c *Config) { c.LinkKeepAlive = -time.Second }), "whole seconds"},
		{"a link keep alive beyond MQTT's", core(func(c *Config) { c.LinkKeepAlive = 65536 * time.Second }), "to 65535s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid configuration refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error saying %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
	c := edge(func(*Config) {})
	if err := c.Validate(); err != nil || c.MaxHops != 8 || c.InterestBatch != 20*time.Millisecond || c.Accept.Group != "mesh" ||
		c.LinkKeepAlive != 2*time.Second {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

func TestDialAddressDefaultsPorts(t *testing.T) {
	for raw, want := range map[string]string{
		"mqtt://core":       "core:1883",
		"mqtts://core":      "core:8883",
		"tcp://core:1999":   "core:1999",
		"ssl://10.0.0.1":    "10.0.0.1:8883",
		"mqtts://[::1]:884": "[::1]:884",
	} {
		u, err := dialAddress(raw)
		if err != nil || u.Host != want {
			t.Errorf("dialAddress(%q) = %v, %v; want host %s", raw, u, err, want)
		}
	}
}

func TestBackoffJitter(t *testing.T) {
	for _, d := range []time.Duration{minBackoff, time.Second, maxBackoff} {
		lo, hi := d, d
		for range 1000 {
			j := jitter(d)
			lo, hi = min(lo, j), max(hi, j)
			if j < d*3/4 || j > d*5/4 {
				t.Fatalf("jitter(%v) = %v, outside ±25%%", d, j)
			}
		}
		if hi-lo < d/4 {
			t.Fatalf("jitter(%v) spread only %v..%v: reconnects would come in step", d, lo, hi)
		}
	}
}

func TestMinimalInterest(t *testing.T) {
	set := map[string]struct{}{}
	for _, f := range []string{"energy/#", "energy/b1/+/reading", "energy/b2/#", "water/+", "$share/g/energy/b1/x", "#/x"} {
		set[f] = struct{}{}
	}
	delete(set, "#/x") // (not a valid filter; never in a set)
	got := keys(minimal(set))
	want := []string{"$share/g/energy/b1/x", "energy/#", "water/+"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("minimal = %q, want %q", got, want)
	}
	if got := keys(minimal(map[string]struct{}{"#": {}, "a/b": {}, "$SYS/x": {}})); strings.Join(got, " ") != "# $SYS/x" {
		t.Fatalf("minimal with # = %q", got)
	}
}

func TestBackoffGrowsAndResets(t *testing.T) {
	cases := []struct {
		name   string
		b      backoff
		events string // f: a failed attempt (its wait is checked), r: a link that was up
		want   []time.Duration
	}{
		{"the defaults double to 30 s", backoff{}, "fffffffff",
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"a link that was up starts again small", backoff{}, "ffffrff",
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 500 * time.Millisecond, time.Second}},
		{"bounds of its own", backoff{min: 50 * time.Millisecond, max: 150 * time.Millisecond}, "fffrf",
			[]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 50 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []time.Duration
			for _, e := range tc.events {
				if e == 'r' {
					tc.b.reset()
				} else {
					got = append(got, tc.b.wait())
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d waits, want %d", len(got), len(tc.want))
			}
			for i, w := range got {
				if w < tc.want[i]*3/4 || w > tc.want[i]*5/4 {
					t.Fatalf("waits %v, want %v (each ±25 %%)", got, tc.want)
				}
			}
		})
	}
}
