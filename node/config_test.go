package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/node"
)

// TestValidate: each mistake is an error that names the setting.
func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*node.Config)
		field string // the FieldError's Field
		want  string // in its message
	}{
		{"listener not host:port", func(c *node.Config) { c.MQTT = "1883" }, "mqtt", "is not host:port"},
		{"listener port out of range", func(c *node.Config) { c.WS = "127.0.0.1:70000" }, "ws", "port"},
		{"remote listener without authentication", func(c *node.Config) { c.MQTT = "0.0.0.0:1883" }, "mqtt", "without authentication"},
		{"remote HTTP even with authentication", func(c *node.Config) {
			c.HTTP = ":8080"
			c.Auth.PasswordFile = "passwd"
		}, "http", "no authentication"},
		{"mqtts without a certificate", func(c *node.Config) { c.MQTTS = "127.0.0.1:8883" }, "mqtts", "needs a certificate"},
		{"wss with a key only", func(c *node.Config) {
			c.WSS = "127.0.0.1:8084"
			c.TLS = &auth.TLSConfig{Key: "k.pem"}
		}, "wss", "needs a certificate"},
		{"store kind", func(c *node.Config) { c.Store = "pebble" }, "store", `"pebble": want disk or memory`},
		{"disk store without data", func(c *node.Config) { c.Data = "" }, "data", "needs a data directory"},
		{"sync mode", func(c *node.Config) { c.Sync = "fast" }, "sync", `"fast": want batch, always or none`},
		{"negative sync interval", func(c *node.Config) { c.SyncInterval = -time.Millisecond }, "sync_interval", "-1ms: want a duration from 0 to 1s"},
		{"sync interval too long", func(c *node.Config) { c.SyncInterval = 2 * time.Second }, "sync_interval", "2s: want a duration from 0 to 1s"},
		{"log level", func(c *node.Config) { c.Log = "verbose" }, "log", `"verbose": want debug, info, warn or error`},
		{"acl rule without topics", func(c *node.Config) {
			c.ACL = auth.ACLConfig{Rules: []auth.RuleConfig{{Allow: []string{"publish"}}}}
		}, "acl", "rule 1: no topics"},
		{"certificate authentication", func(c *node.Config) {
			c.Auth.Certificates = &auth.CertificateAuth{UsernameFrom: "serial"}
		}, "auth.certificates", "serial"},
		{"negative limit", func(c *node.Config) { c.Limits.MaxQueuedMessages = -1 }, "limits.max_queued_messages", "cannot be negative"},
		{"negative protection limit", func(c *node.Config) { c.Limits.Limits.MaxConnections = -5 }, "limits.max_connections", "cannot be negative"},
		{"negative rate", func(c *node.Config) { c.Limits.Limits.PublishRate = -1 }, "limits.publish_rate", "cannot be negative"},
		{"duration without a unit", func(c *node.Config) { c.Limits.ConnectTimeout = 10 }, "limits.connect_timeout", "write a unit"},
		{"mesh without a role", func(c *node.Config) { c.Mesh = mesh.Config{Node: "core-1"} }, "mesh", "role"},
		{"tile template without {y}", func(c *node.Config) { c.Dashboard.MapTiles = "https://tiles.example.org/{z}/{x}.png" }, "dashboard.map_tiles", "has no {y}"},
		{"attribution without tiles", func(c *node.Config) { c.Dashboard.MapAttribution = "© OpenStreetMap contributors" }, "dashboard.map_attribution", "without map_tiles"},
		{"connector without a campus", func(c *node.Config) {
			c.Connectors.TTS = []run.TTSConfig{{Application: "wartberg-ttn", APIKeyFile: "ttn.key"}}
		}, "connectors.campus", "campus file is required"},
		{"connector without a key", func(c *node.Config) {
			c.Connectors = run.Config{Campus: "campus.yaml", TTS: []run.TTSConfig{{Application: "wartberg-ttn"}}}
		}, "connectors.tts[0].api_key", "API key is required"},
		{"chirpstack without a broker", func(c *node.Config) {
			c.Connectors = run.Config{Campus: "campus.yaml", ChirpStack: []run.ChirpStackConfig{{Application: "soil-twin"}}}
		}, "connectors.chirpstack[0].url", "required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := node.Default()
			tc.edit(&cfg)
			err := cfg.Validate()
			var fe *node.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Error(), tc.want) {
				t.Fatalf("Validate() = %v; want a FieldError of %s saying %q", err, tc.field, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Fatalf("the message %q does not start with the setting", err)
			}
		})
	}

	t.Run("every mistake at once", func(t *testing.T) {
		cfg := node.Default()
		cfg.Sync, cfg.Log, cfg.Limits.MaxInflight = "fast", "loud", 10
		cfg.Limits.Limits.LoginFailures = -1 // negative turns the back-off off: allowed
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "sync: ") || !strings.Contains(err.Error(), "log: ") {
			t.Fatalf("Validate() = %v", err)
		}
		if strings.Contains(err.Error(), "login_failures") || strings.Contains(err.Error(), "max_inflight") {
			t.Fatalf("a valid setting is reported: %v", err)
		}
	})

	t.Run("allowed", func(t *testing.T) {
		for _, edit := range []func(*node.Config){
			func(c *node.Config) { c.MQTT, c.WS, c.HTTP = "off", "", "off" },
			func(c *node.Config) { c.MQTT, c.AllowRemoteAnonymous = "0.0.0.0:1883", true },
			func(c *node.Config) { c.MQTT, c.Auth.PasswordFile = "[::]:1883", "passwd" },
			func(c *node.Config) { c.MQTT = "[::1]:1883" },
			func(c *node.Config) { c.MQTT = "localhost:1883" },
			func(c *node.Config) { c.Store, c.Data = "memory", "" },
			func(c *node.Config) { c.Limits.Limits.MaxLoginBackoff = 2 * time.Minute },
			func(c *node.Config) { c.Mesh.Bridges = nil; c.SysIntervalSeconds = -1 },
		} {
			cfg := node.Default()
			edit(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		}
	})
}
