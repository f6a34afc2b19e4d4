package run

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/event"
)

// Config is the connectors section of a node's configuration (the
// connectors: key of citymesh.yaml) and the configuration of `citymesh run
// connector`. Each field's yaml tag is its key; the zero value runs no
// connector.
//
// The campus model says which LoRaWAN applications exist, on which network
// server, under which ids, and which devices are in them; this section
// says how to reach each application's server (address, credentials, TLS).
type Config struct {
	// Campus is the campus file (campus.Load) that names the applications
	// and devices. Required when a connector is configured.
	Campus string `yaml:"campus"`
	// Copies, when more than 1, makes the connectors know that many copies
	// of the campus (campus.Model.Copies from copy 0): the devices of copy
	// k > 0 have the ids, network ids and DevEUIs the simulator gives them
	// (soil-probe-07-x2; campus.CopyID, CopyEUI), for scale tests with
	// `citymesh sim --copies N`. Default 1: the campus as described.
	Copies int `yaml:"copies"`
	// Codecs is the directory of the device codecs, {device type}.js.
	// Default: the directory codecs beside the campus file.
	Codecs string `yaml:"codecs"`
	// CodecLimits bound every codec call; each zero field takes the
	// codec package's default (100 ms, ...).
	CodecLimits codec.Limits `yaml:"codec_limits"`
	// TTS are the applications on The Things Stack v3 (The Things Network).
	TTS []TTSConfig `yaml:"tts"`
	// ChirpStack are the applications on ChirpStack v4.
	ChirpStack []ChirpStackConfig `yaml:"chirpstack"`
	// Liveness says when a silent device is declared offline.
	Liveness LivenessConfig `yaml:"liveness"`
	// Dedupe bounds the memory of recent uplinks that drops copies.
	Dedupe connector.DedupeConfig `yaml:"dedupe"`
	// Workers is how many uplinks are handled at once; uplinks of one
	// device are always handled in order, by the same worker. Default
	// 32 × GOMAXPROCS, at least 64: a publish waits until the event is
	// stored (a group commit of the disk store, a PUBACK of a remote
	// broker), so many uplinks in flight keep the cores busy meanwhile.
	Workers int `yaml:"workers"`
	// QueueLength is each worker's queue of received messages; when it is
	// full, reading from the network server waits. Default 128.
	QueueLength int `yaml:"queue_length"`
	// ReconnectMin and ReconnectMax bound the wait before reconnecting to
	// a network server: it doubles from ReconnectMin after each failure up
	// to ReconnectMax, with jitter. Defaults 1s and 1m.
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// Commands turns downlinks off when false; default true: the connectors
	// subscribe to {domain}/{site}/device/{device}/command on the bus.
	Commands *bool `yaml:"commands"`
}

// TTSConfig is one application on The Things Stack v3, reached through
// its application server's MQTT server (MQTT 3.1.1, QoS 0).
type TTSConfig struct {
	// Name names the connector in logs and metrics; default the
	// application.
	Name string `yaml:"name"`
	// Application is the application's id in the campus model (its
	// applications: list), whose server must be tts. The Things Stack's
	// application id and tenant come from the model.
	Application string `yaml:"application"`
	// URL is the MQTT server: tls://host:8883 (or mqtts://, ssl://),
	// tcp://host:1883 (or mqtt://). Default tls://{address}:8883 with the
	// application's address in the campus model.
	URL string `yaml:"url"`
	// Username is the MQTT user name; default {application id}@{tenant
	// id}, or the application id alone when the model gives no tenant (an
	// open-source deployment).
	Username string `yaml:"username"`
	// APIKey is an API key of the application with the right to read
	// application traffic (and to write downlinks); APIKeyFile names a
	// file that holds it, which is better. One of the two is required.
	APIKey     string `yaml:"api_key"`
	APIKeyFile string `yaml:"api_key_file"`
	// ClientID is the MQTT client identifier; default
	// citymesh-{name}-{random}.
	ClientID string `yaml:"client_id"`
	// TLS is the TLS of tls:// URLs: the CA of the server's certificate
	// (default the system's), a client certificate.
	TLS TLSConfig `yaml:"tls"`
}

// ChirpStackConfig is one application on ChirpStack v4, reached through
// the MQTT broker its MQTT integration publishes to.
type ChirpStackConfig struct {
	// Name names the connector in logs and metrics; default the
	// application.
	Name string `yaml:"name"`
	// Application is the application's id in the campus model, whose
	// server must be chirpstack; ChirpStack's application UUID comes from
	// the model.
	Application string `yaml:"application"`
	// URL is the broker: tcp://host:1883, tls://host:8883, ... Required.
	URL string `yaml:"url"`
	// Username and Password (or PasswordFile) authenticate at the broker,
	// if it asks.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// ClientID is the MQTT client identifier; default
	// citymesh-{name}. With QoS 1 the session is persistent, so the
	// broker keeps events while the connector is away: keep it stable.
	ClientID string `yaml:"client_id"`
	// QoS is the subscription's QoS: 1 (default) keeps events in a
	// persistent session while the connector is away, if ChirpStack
	// publishes at QoS 1 (its integration.mqtt.qos); 0 does not.
	QoS *byte `yaml:"qos"`
	// TLS is the TLS of tls:// URLs.
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig is the client side of a TLS connection.
type TLSConfig struct {
	// CAFile is a PEM file of the CAs that sign the server's certificate;
	// default the system's.
	CAFile string `yaml:"cafile"`
	// Cert and Key are a client certificate and its key (PEM), for
	// servers that ask for one.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ServerName is the name the server's certificate must carry; default
	// the URL's host.
	ServerName string `yaml:"server_name"`
}

// LivenessConfig says when a device that stopped sending is declared
// offline: after Missed expected intervals plus Tolerance of one interval
// without an uplink (default 2 + 0.1: a device that sends every 20 minutes
// is offline 42 minutes after its last uplink).
type LivenessConfig struct {
	// Missed is how many expected uplinks in a row may be missed; default
	// 2. LoRaWAN uplinks are unconfirmed and some are lost: one missed
	// uplink is not an outage.
	Missed int `yaml:"missed"`
	// Tolerance is the fraction of the interval added for jitter and
	// clock drift of the device; default 0.1. Negative is refused.
	Tolerance *float64 `yaml:"tolerance"`
	// Off turns liveness off: no offline statuses.
	Off bool `yaml:"off"`
}

// Defaults of the liveness rule.
const (
	DefaultMissed    = 2
	DefaultTolerance = 0.1
)

// Enabled reports whether any connector is configured.
func (c *Config) Enabled() bool { return len(c.TTS) > 0 || len(c.ChirpStack) > 0 }

// commandsOn reports whether downlink commands are on.
func (c *Config) commandsOn() bool { return c.Commands == nil || *c.Commands }

// OfflineAfter returns how long a device of interval iv may stay silent
// before it is declared offline.
func (l LivenessConfig) OfflineAfter(iv time.Duration) time.Duration {
	missed := l.Missed
	if missed <= 0 {
		missed = DefaultMissed
	}
	tol := DefaultTolerance
	if l.Tolerance != nil {
		tol = *l.Tolerance
	}
	return time.Duration(float64(iv) * (float64(missed) + tol))
}

// A FieldError is a mistake in one setting of a Config.
type FieldError struct {
	// Field is the setting's key below the section: "tts[0].url",
	// "liveness.missed".
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the mistake itself.
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks the configuration without reading any file (New reads
// the campus file and checks the applications against it), and returns
// every mistake, each a *FieldError, joined with errors.Join, or nil.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	if !c.Enabled() {
		return nil
	}
	if c.Campus == "" {
		bad("campus", "the campus file is required: it names the applications and devices")
	}
	if c.Copies < 0 || c.Copies >= campus.MaxCopies {
		bad("copies", "%d: want 1 to %d (0 is the default, 1)", c.Copies, campus.MaxCopies-1)
	}
	if c.Workers < 0 {
		bad("workers", "%d: cannot be negative (0 is the default)", c.Workers)
	}
	if c.QueueLength < 0 {
		bad("queue_length", "%d: cannot be negative (0 is the default)", c.QueueLength)
	}
	if c.ReconnectMin < 0 || c.ReconnectMax < 0 {
		bad("reconnect_min", "durations cannot be negative (0 is the default)")
	} else if c.ReconnectMin > 0 && c.ReconnectMax > 0 && c.ReconnectMin > c.ReconnectMax {
		bad("reconnect_min", "%v is more than reconnect_max %v", c.ReconnectMin, c.ReconnectMax)
	}
	if c.Liveness.Missed < 0 {
		bad("liveness.missed", "%d: cannot be negative (0 is the default, %d)", c.Liveness.Missed, DefaultMissed)
	}
	if t := c.Liveness.Tolerance; t != nil && (*t < 0 || *t > 100) {
		bad("liveness.tolerance", "%v: want a fraction of the interval from 0 to 100 (0.1 is 10 %%)", *t)
	}
	if c.Dedupe.MaxDevices < 0 || c.Dedupe.PerDevice < 0 || c.Dedupe.Window < 0 {
		bad("dedupe", "values cannot be negative (0 is the default)")
	}
	if c.CodecLimits.Timeout < 0 {
		bad("codec_limits.timeout", "%v: cannot be negative (0 is the default)", c.CodecLimits.Timeout)
	}
	names := make(map[string]string)
	apps := make(map[string]string)
	seen := func(field, name, app string) {
		if app != "" {
			if prev, ok := apps[app]; ok {
				bad(field+".application", "%q is also connected by %s", app, prev)
				return
			}
			apps[app] = field
		}
		if name != "" {
			if prev, ok := names[name]; ok {
				bad(field+".name", "%q is also the name of %s", name, prev)
			}
			names[name] = field
		}
	}
	for i := range c.TTS {
		t := &c.TTS[i]
		f := fmt.Sprintf("tts[%d]", i)
		validApp(bad, f, t.Application)
		if t.URL != "" {
			validURL(bad, f+".url", t.URL)
		}
		switch {
		case t.APIKey != "" && t.APIKeyFile != "":
			bad(f+".api_key", "give api_key or api_key_file, not both")
		case t.APIKey == "" && t.APIKeyFile == "":
			bad(f+".api_key", "an API key is required: api_key_file (or api_key)")
		}
		validTLS(bad, f+".tls", t.TLS)
		seen(f, t.name(), t.Application)
	}
	for i := range c.ChirpStack {
		cs := &c.ChirpStack[i]
		f := fmt.Sprintf("chirpstack[%d]", i)
		validApp(bad, f, cs.Application)
		if cs.URL == "" {
			bad(f+".url", "the broker ChirpStack's MQTT integration publishes to is required (tcp://host:1883)")
		} else {
			validURL(bad, f+".url", cs.URL)
		}
		if cs.Password != "" && cs.PasswordFile != "" {
			bad(f+".password", "give password or password_file, not both")
		}
		if cs.QoS != nil && *cs.QoS > 1 {
			bad(f+".qos", "%d: want 0 or 1", *cs.QoS)
		}
		validTLS(bad, f+".tls", cs.TLS)
		seen(f, cs.name(), cs.Application)
	}
	return errors.Join(errs...)
}

func validApp(bad func(string, string, ...any), f, app string) {
	if app == "" {
		bad(f+".application", "required: the application's id in the campus model")
	} else if err := event.ValidID(app); err != nil {
		bad(f+".application", "%v", err)
	}
}

func validURL(bad func(string, string, ...any), f, s string) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !strings.Contains(s, "://") {
		bad(f, "%q: want scheme://host:port, for example tls://eu1.cloud.thethings.network:8883", s)
		return
	}
	switch u.Scheme {
	case "tcp", "mqtt", "tls", "mqtts", "ssl", "ws", "wss":
	default:
		bad(f, "%q: scheme %q, want tcp, mqtt, tls, mqtts, ssl, ws or wss", s, u.Scheme)
	}
}

func validTLS(bad func(string, string, ...any), f string, t TLSConfig) {
	if (t.Cert == "") != (t.Key == "") {
		bad(f+".cert", "cert and key go together")
	}
}

// name is the connector's name: Name, or the application.
func (t *TTSConfig) name() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Application
}

func (c *ChirpStackConfig) name() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Application
}

// secret returns value, or the first line of file with surrounding space
// removed.
func secret(value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return s, nil
}

// config returns the client TLS configuration for a URL, or nil when the
// URL does not use TLS.
func (t TLSConfig) config(rawURL string) (*tls.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "tls", "mqtts", "ssl", "wss":
	default:
		return nil, nil
	}
	c := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cafile %s: no PEM certificates", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
