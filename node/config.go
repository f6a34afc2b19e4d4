package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/web"
)

// Config is a node's configuration. Its YAML form is the configuration file
// of `citymesh serve` (docs/citymesh.example.yaml is a commented example);
// each field's yaml tag is its key there, and the field's comment is its
// documentation. A program that embeds a node fills one in directly, usually
// starting from Default.
//
// The zero value is a node without listeners and without a store: clients
// reach it in-process only (Node.Broker), and nothing survives its end.
type Config struct {
	// MQTT is the listen address of MQTT over TCP, host:port; "" or "off"
	// disables it. Default 127.0.0.1:1883.
	MQTT string `yaml:"mqtt"`
	// MQTTS is the listen address of MQTT over TLS (needs TLS). Default off.
	MQTTS string `yaml:"mqtts"`
	// WS is the listen address of MQTT over WebSocket, path /mqtt,
	// subprotocol mqtt. Default 127.0.0.1:8083.
	WS string `yaml:"ws"`
	// WSS is the listen address of MQTT over WebSocket over TLS (needs TLS).
	// Default off.
	WSS string `yaml:"wss"`
	// HTTP is the listen address of GET /healthz, Prometheus GET /metrics,
	// /debug/pprof/ and, on a mesh node, GET /api/mesh. These have no
	// authentication. Default 127.0.0.1:8080.
	HTTP string `yaml:"http"`
	// WSAllowedOrigins are the origins of web pages (scheme://host[:port],
	// as browsers send them in the Origin header) that may use MQTT over
	// WebSocket, besides the pages of the node's own HTTP listener (its
	// dashboard). "https://*.example.org" allows every subdomain, a port
	// of * every port, and "*" every origin. Clients that are not
	// browsers send no Origin and are not affected. Default none: other
	// sites' pages cannot use the node through their visitors' browsers.
	WSAllowedOrigins []string `yaml:"ws_allowed_origins"`
	// AllowRemoteAnonymous allows listening on addresses other than
	// loopback ones without authentication. Default false: a node whose
	// clients need no credentials, and the HTTP listener, stay on loopback.
	AllowRemoteAnonymous bool `yaml:"allow_remote_anonymous"`
	// TLS is the certificate of the mqtts and wss listeners, and the CAs of
	// client certificates.
	TLS *auth.TLSConfig `yaml:"tls"`

	// Data is the data directory; the disk store is Data/store. Default
	// ./data.
	Data string `yaml:"data"`
	// Store is where durable state lives: "disk" (an embedded store in
	// Data/store) or "memory" (nothing survives a restart). Default disk;
	// "" is memory.
	Store string `yaml:"store"`
	// Sync says when acknowledged messages count as stored: "batch"
	// (fsynced, grouped across connections; the default), "always" (one
	// fsync each) or "none" (not fsynced: unsafe). See docs/durability.md.
	Sync string `yaml:"sync"`
	// SyncInterval is the shortest time between two syncs of the disk
	// store's log: commits that arrive within it share one sync, at the
	// price of at most that much more time before a durable PUBACK.
	// Default (node.Default) 500µs; 0 syncs each commit at once. See
	// docs/durability.md.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// Log is the log level of `citymesh serve`: debug, info, warn or error.
	// Default info. A node created with New logs to the logger it is
	// given.
	Log string `yaml:"log"`
	// Audit is the audit log: a file of JSON lines, "-" for standard
	// error, "" for none.
	Audit string `yaml:"audit"`

	// Auth configures authentication: password file, JWT, client
	// certificates.
	Auth auth.Config `yaml:"auth"`
	// ACL is the access control: rules of who may publish, subscribe to
	// and receive what.
	ACL auth.ACLConfig `yaml:"acl"`
	// Limits are the broker's bounds and its protection from clients that
	// take too much; each zero field takes the broker's default (see
	// broker.Options and broker.Limits, whose yaml tags are the keys of
	// this section). The fields that the tags mark "-" are the node's to
	// set and ignored here.
	Limits broker.Options `yaml:"limits"`
	// SysIntervalSeconds is the period of $SYS/ statistics in seconds.
	// Default 0: 10 seconds; negative disables them.
	SysIntervalSeconds int `yaml:"sys_interval_seconds"`
	// Mesh is this node's place in the event mesh, and its bridges to
	// foreign brokers (docs/mesh.md).
	Mesh mesh.Config `yaml:"mesh"`
	// Connectors are the LoRaWAN connectors the node runs in-process: The
	// Things Stack and ChirpStack applications whose traffic becomes city
	// events on the node's bus (docs/connectors.md). Default none.
	Connectors run.Config `yaml:"connectors"`
	// Twin is the digital twin the node runs in-process: the latest state
	// of the campus's information points from the city events on the
	// node's bus, its history and remote write, and their HTTP APIs on the
	// HTTP listener (docs/twin.md). Default none. Every twin setting needs
	// a restart.
	Twin TwinConfig `yaml:"twin"`
	// Services are the services the node runs in-process, by name: each
	// entry's kind (default its name) is a registered kind of service
	// (service.Kinds: energy, vineyard, robot) and its config that kind's
	// configuration (docs/services.md). A services section, even an empty
	// one ({}), also serves the alarm API of every alarm on the node's bus,
	// and the services' health at /api/v1/services. Default none. Every
	// service setting needs a restart.
	Services map[string]service.Section `yaml:"services"`
	// Dashboard are the dashboard's settings: a tile server under the
	// maps (docs/dashboard.md). Default none: the maps show the campus's
	// own shapes on a plain background.
	Dashboard web.Options `yaml:"dashboard"`
}

// Default returns the configuration of `citymesh serve` without flags or a
// file: MQTT on 127.0.0.1:1883, MQTT over WebSocket on 127.0.0.1:8083,
// HTTP on 127.0.0.1:8080, the disk store in ./data/store, sync batch, log
// level info.
func Default() Config {
	return Config{
		MQTT:  "127.0.0.1:1883",
		MQTTS: "off",
		WS:    "127.0.0.1:8083",
		WSS:   "off",
		HTTP:  "127.0.0.1:8080",
		Data:  "./data",
		Store: "disk",
		Sync:  "batch",
		Log:   "info",

		SyncInterval: DefaultSyncInterval,
	}
}

// DefaultSyncInterval is the default Config.SyncInterval: the interval
// Pebble's documentation suggests, which on a campus node cut the store's
// syncs by 4.6 times (docs/benchmarks.md).
const DefaultSyncInterval = 500 * time.Microsecond

// A FieldError is a mistake in one setting of a Config.
type FieldError struct {
	// Field is the setting's key in the YAML form: "mqtt",
	// "limits.max_inflight", "ws_allowed_origins[1]".
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the mistake itself.
func (e *FieldError) Unwrap() error { return e.Err }

// fieldError returns a FieldError for field whose message is err's without a
// leading "field: " that err may already carry.
func fieldError(field string, err error) *FieldError {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, field+": "); ok {
		return &FieldError{Field: field, Err: errors.New(rest)}
	}
	return &FieldError{Field: field, Err: err}
}

// Listener names, as Node.Addr takes them.
const (
	ListenerMQTT  = "mqtt"
	ListenerMQTTS = "mqtts"
	ListenerWS    = "ws"
	ListenerWSS   = "wss"
	ListenerHTTP  = "http"
)

// listener is one listener of a configuration.
type listener struct {
	name, addr string
}

// listeners returns the configuration's listeners, enabled or not, in a
// fixed order.
func (c *Config) listeners() []listener {
	return []listener{{ListenerMQTT, c.MQTT}, {ListenerMQTTS, c.MQTTS}, {ListenerWS, c.WS}, {ListenerWSS, c.WSS}, {ListenerHTTP, c.HTTP}}
}

// enabled reports whether a listen address turns its listener on.
func enabled(addr string) bool { return addr != "" && addr != "off" }

// Validate checks the configuration without reading any file, and returns
// every mistake it finds, each a *FieldError naming the setting (joined with
// errors.Join), or nil.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	authenticated := c.Auth.Enabled() && !c.Auth.AllowAnonymous
	for _, l := range c.listeners() {
		if !enabled(l.addr) {
			continue
		}
		_, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			bad(l.name, "%q is not host:port (for example 127.0.0.1:1883), nor off", l.addr)
			continue
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad(l.name, "%q: the port must be a number from 0 to 65535", l.addr)
			continue
		}
		switch {
		case c.AllowRemoteAnonymous || isLoopback(l.addr):
		case l.name == ListenerHTTP:
			bad(l.name, "refusing to listen on %s: the HTTP endpoints have no authentication; use a loopback address, or allow_remote_anonymous (--allow-remote-anonymous)", l.addr)
		case !authenticated:
			bad(l.name, "refusing to listen on %s without authentication: use a loopback address, configure auth, or allow_remote_anonymous (--allow-remote-anonymous)", l.addr)
		}
		if (l.name == ListenerMQTTS || l.name == ListenerWSS) && (c.TLS == nil || c.TLS.Cert == "" || c.TLS.Key == "") {
			bad(l.name, "needs a certificate: tls with cert and key (--tls-cert and --tls-key)")
		}
	}
	for i, o := range c.WSAllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := parseOrigin(o); err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("ws_allowed_origins[%d]", i), Err: err})
		}
	}
	switch c.Store {
	case "", "memory":
	case "disk":
		if c.Data == "" {
			bad("data", "the disk store needs a data directory")
		}
	default:
		bad("store", "%q: want disk or memory", c.Store)
	}
	if c.SyncInterval < 0 || c.SyncInterval > time.Second {
		bad("sync_interval", "%v: want a duration from 0 to 1s, e.g. 500us", c.SyncInterval)
	}
	if _, err := broker.ParseSyncMode(c.Sync); err != nil {
		bad("sync", "%q: want batch, always or none", c.Sync)
	}
	if _, err := parseLevel(c.Log); err != nil {
		bad("log", "%q: want debug, info, warn or error", c.Log)
	}
	if c.Auth.Certificates != nil {
		if err := c.Auth.Certificates.Validate(); err != nil {
			errs = append(errs, fieldError("auth.certificates", err))
		}
	}
	if _, err := c.ACL.Build(); err != nil {
		errs = append(errs, fieldError("acl", err))
	}
	errs = append(errs, validateLimits(reflect.ValueOf(c.Limits), "limits")...)
	if c.Mesh.Enabled() {
		m := c.meshConfig()
		if err := m.Validate(); err != nil {
			errs = append(errs, fieldError("mesh", err))
		}
	}
	errs = append(errs, connectorErrors(c.Connectors.Validate())...)
	data := c.Data
	if c.Store != "disk" && c.Twin.History.Dir == "" {
		data = "" // the history needs a directory of its own
	}
	errs = append(errs, c.Twin.validate(&c.Connectors, data)...)
	errs = append(errs, validateServices(c.Services)...)
	if err := c.Dashboard.Validate(); err != nil {
		key, msg, _ := strings.Cut(err.Error(), ": ")
		errs = append(errs, &FieldError{Field: "dashboard." + key, Err: errors.New(msg)})
	}
	return errors.Join(errs...)
}

// connectorErrors turns the connectors' field errors into the node's, under
// the connectors key.
func connectorErrors(err error) []error {
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var fe *run.FieldError
		if errors.As(e, &fe) {
			out = append(out, &FieldError{Field: "connectors." + fe.Field, Err: fe.Err})
		} else {
			out = append(out, &FieldError{Field: "connectors", Err: e})
		}
	}
	return out
}

// validateLimits checks that no number of the limits is negative (except
// login_failures_before_backoff, where negative turns the back-off off), and
// that durations have a unit.
func validateLimits(v reflect.Value, path string) []error {
	var errs []error
	walkYAML(v, path, func(key string, f reflect.Value) {
		if key == path+".login_failures_before_backoff" {
			return
		}
		switch {
		case f.Type() == reflect.TypeFor[time.Duration]():
			d := time.Duration(f.Int())
			if d < 0 {
				errs = append(errs, &FieldError{Field: key, Err: fmt.Errorf("%v: cannot be negative (0 is the default)", d)})
			} else if d > 0 && d < time.Millisecond {
				errs = append(errs, &FieldError{Field: key, Err: fmt.Errorf("%d nanoseconds: write a unit, for example 10s or 1m", d.Nanoseconds())})
			}
		case f.CanInt() && f.Int() < 0:
			errs = append(errs, &FieldError{Field: key, Err: fmt.Errorf("%d: cannot be negative (0 is the default)", f.Int())})
		case f.CanFloat() && f.Float() < 0:
			errs = append(errs, &FieldError{Field: key, Err: fmt.Errorf("%v: cannot be negative (0 is no limit)", f.Float())})
		}
	})
	return errs
}

// meshConfig returns the mesh configuration the node runs with: a node with
// bridges only is a core of its own, named standalone.
func (c *Config) meshConfig() mesh.Config {
	m := c.Mesh
	if m.Node == "" && len(m.Bridges) > 0 {
		m.Node, m.Role = "standalone", "core"
	}
	return m
}

// parseLevel reads a log level; "" is info.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// isLoopback reports whether a listen address is on a loopback interface
// only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return isLoopbackHost(host)
}

// isLoopbackHost reports whether host is localhost or a loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
