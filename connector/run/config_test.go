package run

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
)

func TestConfigValidate(t *testing.T) {
	one := func(f func(*Config)) Config {
		c := Config{Campus: "campus.yaml",
			TTS:        []TTSConfig{{Application: "wartberg-ttn", APIKeyFile: "key"}},
			ChirpStack: []ChirpStackConfig{{Application: "soil-twin", URL: "tcp://localhost:1883"}}}
		if f != nil {
			f(&c)
		}
		return c
	}
	neg, big := -0.5, 200.0
	qos2 := byte(2)
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // "" for a valid configuration
		msg   string
	}{
		{"none configured", Config{}, "", ""},
		{"valid", one(nil), "", ""},
		{"no campus", one(func(c *Config) { c.Campus = "" }), "campus", "required"},
		{"no application", one(func(c *Config) { c.TTS[0].Application = "" }), "tts[0].application", "required"},
		{"bad application id", one(func(c *Config) { c.TTS[0].Application = "a/b" }), "tts[0].application", ""},
		{"no api key", one(func(c *Config) { c.TTS[0].APIKeyFile = "" }), "tts[0].api_key", "required"},
		{"two api keys", one(func(c *Config) { c.TTS[0].APIKey = "x" }), "tts[0].api_key", "not both"},
		{"bad url", one(func(c *Config) { c.TTS[0].URL = "eu1.cloud.thethings.network:8883" }), "tts[0].url", "scheme://host:port"},
		{"bad scheme", one(func(c *Config) { c.TTS[0].URL = "http://eu1.cloud.thethings.network" }), "tts[0].url", "scheme"},
		{"cert without key", one(func(c *Config) { c.TTS[0].TLS.Cert = "c.pem" }), "tts[0].tls.cert", "together"},
		{"chirpstack without url", one(func(c *Config) { c.ChirpStack[0].URL = "" }), "chirpstack[0].url", "required"},
		{"chirpstack qos 2", one(func(c *Config) { c.ChirpStack[0].QoS = &qos2 }), "chirpstack[0].qos", "0 or 1"},
		{"two passwords", one(func(c *Config) { c.ChirpStack[0].Password, c.ChirpStack[0].PasswordFile = "a", "b" }), "chirpstack[0].password", "not both"},
		{"application twice", one(func(c *Config) { c.ChirpStack[0].Application = "wartberg-ttn" }), "chirpstack[0].application", "also connected"},
		{"name twice", one(func(c *Config) { c.TTS[0].Name, c.ChirpStack[0].Name = "x", "x" }), "chirpstack[0].name", "also the name"},
		{"negative copies", one(func(c *Config) { c.Copies = -1 }), "copies", "want 1 to"},
		{"too many copies", one(func(c *Config) { c.Copies = 1 << 16 }), "copies", "want 1 to"},
		{"copies", one(func(c *Config) { c.Copies = 12 }), "", ""},
		{"negative workers", one(func(c *Config) { c.Workers = -1 }), "workers", "negative"},
		{"negative queue", one(func(c *Config) { c.QueueLength = -1 }), "queue_length", "negative"},
		{"reconnect backwards", one(func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Minute, time.Second }), "reconnect_min", "more than"},
		{"negative missed", one(func(c *Config) { c.Liveness.Missed = -1 }), "liveness.missed", "negative"},
		{"negative tolerance", one(func(c *Config) { c.Liveness.Tolerance = &neg }), "liveness.tolerance", "fraction"},
		{"huge tolerance", one(func(c *Config) { c.Liveness.Tolerance = &big }), "liveness.tolerance", "fraction"},
		{"negative dedupe", one(func(c *Config) { c.Dedupe.Window = -time.Second }), "dedupe", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Error(), tc.msg) {
				t.Fatalf("err %v, want a FieldError of %s with %q", err, tc.field, tc.msg)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
campus: examples/campus/small/campus.yaml
codecs: examples/campus/codecs
codec_limits: {timeout: 50ms}
tts:
  - application: wartberg-ttn
    url: tls://eu1.cloud.thethings.network:8883
    api_key_file: /etc/citymesh/ttn.key
    tls: {cafile: /etc/ssl/ca.pem}
chirpstack:
  - {application: soil-twin, url: tcp://chirpstack:1883, qos: 0}
liveness: {missed: 3, tolerance: 0.2}
dedupe: {window: 30m}
reconnect_max: 2m
copies: 3
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.CodecLimits.Timeout != 50*time.Millisecond || c.TTS[0].TLS.CAFile != "/etc/ssl/ca.pem" || *c.ChirpStack[0].QoS != 0 ||
		c.Liveness.OfflineAfter(time.Hour) != 192*time.Minute || c.Dedupe.Window != 30*time.Minute || c.ReconnectMax != 2*time.Minute || c.Copies != 3 {
		t.Errorf("decoded %+v", c)
	}
	if got := (LivenessConfig{}).OfflineAfter(20 * time.Minute); got != 42*time.Minute {
		t.Errorf("default offline after %v for 20 minutes, want 42m", got)
	}
}

// TestNewChecksTheModel: New refuses applications the campus model does
// not have, or has on the other server, and missing files.
func TestNewChecksTheModel(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1, Logger: quiet})
	defer b.Close()
	l, _ := bus.NewLocal(b, "c")
	defer l.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("NNSXS.KEY\n"), 0o600)
	base := func() Config {
		return Config{Campus: smallCampus, Codecs: codecDir,
			TTS: []TTSConfig{{Application: "wartberg-ttn", APIKeyFile: keyFile}}}
	}
	for _, tc := range []struct {
		name, field, msg string
		mutate           func(*Config)
	}{
		{"unknown application", "tts[0].application", "not an application", func(c *Config) { c.TTS[0].Application = "nowhere" }},
		{"wrong server", "tts[0].application", "on chirpstack", func(c *Config) { c.TTS[0].Application = "soil-twin" }},
		{"chirpstack on tts", "chirpstack[0].application", "on tts", func(c *Config) {
			c.TTS = nil
			c.ChirpStack = []ChirpStackConfig{{Application: "wartberg-ttn", URL: "tcp://x:1"}}
		}},
		{"no campus file", "campus", "", func(c *Config) { c.Campus = "nowhere.yaml" }},
		{"no codec dir", "codecs", "not a directory", func(c *Config) { c.Codecs = "nowhere" }},
		{"missing key file", "tts[0]", "api_key_file", func(c *Config) { c.TTS[0].APIKeyFile = "nowhere.key" }},
		{"missing cafile", "tts[0]", "cafile", func(c *Config) { c.TTS[0].URL, c.TTS[0].TLS.CAFile = "tls://x:8883", "nowhere.pem" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			r, err := New(c, Options{Logger: quiet})
			if err == nil {
				r.Close()
				t.Fatal("accepted")
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want a FieldError of %s with %q", err, tc.field, tc.msg)
			}
		})
	}
	// The default URL comes from the application's address in the model,
	// the user name from its ids, the key from its file.
	r, err := New(base(), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o := r.ups[0].src.opts
	if o.Addr != "tls://eu1.cloud.thethings.network:8883" || o.Username != "hn-wartberg-vineyards@ttn" || string(o.Password) != "NNSXS.KEY" ||
		o.TLSConfig == nil || o.TLSConfig.ServerName != "eu1.cloud.thethings.network" {
		t.Errorf("client options %+v", o)
	}
	if len(r.devices) != 6 {
		t.Errorf("%d devices served, want the 6 of wartberg-ttn", len(r.devices))
	}
}
