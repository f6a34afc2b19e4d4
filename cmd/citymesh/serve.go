package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/store/disk"
)

func init() {
	register("serve", "run a citymesh node: MQTT broker, WebSocket and HTTP", runServe)
}

// serveConfig is the configuration file of `citymesh serve`; command-line flags
// override it. Every field is optional.
type serveConfig struct {
	MQTT    string          `yaml:"mqtt"`  // MQTT over TCP listen address
	MQTTS   string          `yaml:"mqtts"` // MQTT over TLS listen address
	WS      string          `yaml:"ws"`    // MQTT over WebSocket listen address (path /mqtt)
	WSS     string          `yaml:"wss"`   // MQTT over WebSocket over TLS listen address
	HTTP    string          `yaml:"http"`  // HTTP listen address: /healthz, /metrics
	TLS     *auth.TLSConfig `yaml:"tls"`   // certificates of the mqtts and wss listeners
	Data    string          `yaml:"data"`  // data directory
	Sync    string          `yaml:"sync"`  // store sync mode: batch, always or none
	Store   string          `yaml:"store"` // disk (the default) or memory
	Log     string          `yaml:"log"`   // log level: debug, info, warn, error
	Remote  bool            `yaml:"allow_remote_anonymous"`
	Auth    auth.Config     `yaml:"auth"`
	ACL     auth.ACLConfig  `yaml:"acl"`
	Audit   string          `yaml:"audit"` // audit log file, "-" for standard error, "" for none
	Limits  limits          `yaml:"limits"`
	SysSecs int             `yaml:"sys_interval_seconds"`
	Mesh    mesh.Config     `yaml:"mesh"` // this node's place in the event mesh, and its bridges
}

type limits struct {
	MaxPacketSize            uint32        `yaml:"max_packet_size"`
	ReceiveMaximum           uint16        `yaml:"receive_maximum"`
	MaxInflight              uint16        `yaml:"max_inflight"`
	TopicAliasMaximum        uint16        `yaml:"topic_alias_maximum"`
	MaxQueuedMessages        int           `yaml:"max_queued_messages"`
	MaxQueuedBytes           int           `yaml:"max_queued_bytes"`
	MaxStoredMessages        int           `yaml:"max_stored_messages"`
	MaxStoredBytes           int           `yaml:"max_stored_bytes"`
	MaxSessionExpiry         uint32        `yaml:"max_session_expiry_seconds"`
	MaxKeepAlive             uint16        `yaml:"max_keep_alive_seconds"`
	MaxConnections           int           `yaml:"max_connections"`
	MaxConnectionsPerAddress int           `yaml:"max_connections_per_address"`
	ConnectRate              float64       `yaml:"connect_rate_per_address"`
	ConnectBurst             int           `yaml:"connect_burst_per_address"`
	LoginFailures            int           `yaml:"login_failures_before_backoff"`
	MaxLoginBackoff          time.Duration `yaml:"max_login_backoff"`
	PublishRate              float64       `yaml:"publish_rate"`
	PublishBurst             int           `yaml:"publish_burst"`
	PublishBandwidth         int           `yaml:"publish_bandwidth"`
	MaxSubscriptions         int           `yaml:"max_subscriptions"`
	MaxTopicLength           int           `yaml:"max_topic_length"`
	MaxTopicLevels           int           `yaml:"max_topic_levels"`
	ConnectTimeout           time.Duration `yaml:"connect_timeout"`
}

// loadServeConfig reads a configuration file into cfg; unknown keys are an
// error.
func loadServeConfig(path string, cfg *serveConfig) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := serveConfig{MQTT: "127.0.0.1:1883", MQTTS: "off", WS: "127.0.0.1:8083", WSS: "off", HTTP: "127.0.0.1:8080",
		Data: "./data", Log: "info", Sync: "batch", Store: "disk"}
	configFile := fs.String("config", "", "YAML configuration `file` (flags override it)")
	mqttAddr := fs.String("mqtt", "", "MQTT over TCP listen `address` (default 127.0.0.1:1883; \"off\" disables)")
	mqttsAddr := fs.String("mqtts", "", "MQTT over TLS listen `address` (default off; needs tls in the configuration, or --tls-cert and --tls-key)")
	wsAddr := fs.String("ws", "", "MQTT over WebSocket listen `address`, path /mqtt (default 127.0.0.1:8083; \"off\" disables)")
	wssAddr := fs.String("wss", "", "MQTT over WebSocket over TLS listen `address`, path /mqtt (default off)")
	tlsCert := fs.String("tls-cert", "", "server certificate chain `file` (PEM) of the TLS listeners")
	tlsKey := fs.String("tls-key", "", "server private key `file` (PEM) of the TLS listeners")
	tlsCA := fs.String("tls-client-ca", "", "CA `file` (PEM) that signs client certificates; clients must present one signed by it")
	passwordFile := fs.String("password-file", "", "password `file` (see citymesh passwd); anonymous access is then off")
	httpAddr := fs.String("http", "", "HTTP listen `address` for /healthz and /metrics (default 127.0.0.1:8080; \"off\" disables)")
	data := fs.String("data", "", "data `directory` (default ./data)")
	storeKind := fs.String("store", "", "where durable state lives: `disk` (an embedded store in DATA/store; default) or memory (nothing survives a restart)")
	syncMode := fs.String("sync", "", "when acknowledged messages count as stored: `batch` (fsynced, grouped across connections; default), always (one fsync each) or none (unsafe: not fsynced)")
	logLevel := fs.String("log", "", "log `level`: debug, info, warn or error (default info)")
	remote := fs.Bool("allow-remote-anonymous", false, "allow listening on non-loopback addresses without authentication")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configFile != "" {
		if err := loadServeConfig(*configFile, &cfg); err != nil {
			return err
		}
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{{&cfg.MQTT, *mqttAddr}, {&cfg.MQTTS, *mqttsAddr}, {&cfg.WS, *wsAddr}, {&cfg.WSS, *wssAddr}, {&cfg.HTTP, *httpAddr},
		{&cfg.Data, *data}, {&cfg.Log, *logLevel}, {&cfg.Sync, *syncMode}, {&cfg.Store, *storeKind}, {&cfg.Auth.PasswordFile, *passwordFile}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if *tlsCert != "" || *tlsKey != "" || *tlsCA != "" {
		if cfg.TLS == nil {
			cfg.TLS = &auth.TLSConfig{}
		}
		for _, o := range []struct {
			dst *string
			v   string
		}{{&cfg.TLS.Cert, *tlsCert}, {&cfg.TLS.Key, *tlsKey}, {&cfg.TLS.ClientCA, *tlsCA}} {
			if o.v != "" {
				*o.dst = o.v
			}
		}
		if *tlsCA != "" && cfg.TLS.ClientAuth == "" {
			cfg.TLS.ClientAuth = "require"
		}
	}
	cfg.Remote = cfg.Remote || *remote

	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log)); err != nil {
		return fmt.Errorf("log level %q: %w", cfg.Log, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	// Clients on other machines need credentials, unless the operator says
	// otherwise; the HTTP endpoints have none of their own.
	authenticated := cfg.Auth.Enabled() && !cfg.Auth.AllowAnonymous
	for _, l := range []struct {
		addr string
		open bool // reachable without MQTT credentials
	}{{cfg.MQTT, !authenticated}, {cfg.MQTTS, !authenticated}, {cfg.WS, !authenticated}, {cfg.WSS, !authenticated}, {cfg.HTTP, true}} {
		if l.addr == "off" || l.addr == "" || !l.open {
			continue
		}
		if !cfg.Remote && !isLoopback(l.addr) {
			return fmt.Errorf("refusing to listen on %s without authentication: use a loopback address, configure auth, or --allow-remote-anonymous", l.addr)
		}
	}
	sec, err := newSecurity(&cfg, log)
	if err != nil {
		return err
	}
	defer sec.close()
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	mode, err := broker.ParseSyncMode(cfg.Sync)
	if err != nil {
		return err
	}
	if mode == broker.SyncNone {
		log.Warn("sync mode none: acknowledged messages are not fsynced and may be lost in a crash")
	}
	var st *store.Store
	switch cfg.Store {
	case "disk":
		if st, err = disk.Open(filepath.Join(cfg.Data, "store")); err != nil {
			return err
		}
		defer st.Close()
	case "memory":
		log.Warn("store memory: sessions, queued and retained messages do not survive a restart")
	default:
		return fmt.Errorf("store %q: want disk or memory", cfg.Store)
	}

	var node *mesh.Node
	if cfg.Mesh.Enabled() {
		if cfg.Mesh.Node == "" && len(cfg.Mesh.Bridges) > 0 {
			// A node with bridges only needs no place in a mesh.
			cfg.Mesh.Node, cfg.Mesh.Role = "standalone", "core"
		}
		if node, err = mesh.New(cfg.Mesh, log); err != nil {
			return err
		}
	}

	opts := broker.Options{
		Authenticator:     sec.authenticator(),
		Authorizer:        sec.authorizer(),
		Audit:             sec.audit,
		Limits:            sec.limits(cfg.Limits),
		Store:             st,
		Sync:              mode,
		MaxStoredMessages: cfg.Limits.MaxStoredMessages,
		MaxStoredBytes:    cfg.Limits.MaxStoredBytes,
		MaxPacketSize:     cfg.Limits.MaxPacketSize,
		ReceiveMaximum:    cfg.Limits.ReceiveMaximum,
		MaxInflight:       cfg.Limits.MaxInflight,
		TopicAliasMaximum: cfg.Limits.TopicAliasMaximum,
		MaxQueuedMessages: cfg.Limits.MaxQueuedMessages,
		MaxQueuedBytes:    cfg.Limits.MaxQueuedBytes,
		MaxSessionExpiry:  cfg.Limits.MaxSessionExpiry,
		MaxKeepAlive:      cfg.Limits.MaxKeepAlive,
		ConnectTimeout:    cfg.Limits.ConnectTimeout,
		SysInterval:       time.Duration(cfg.SysSecs) * time.Second,
		Logger:            log,
	}
	if node != nil {
		opts.NodeName, opts.Mesh, opts.MaxHops = cfg.Mesh.Node, node.Handler(), cfg.Mesh.MaxHops
		opts.MaxLinkStoredMessages, opts.MaxLinkStoredBytes = cfg.Mesh.LinkMaxMessages, cfg.Mesh.LinkMaxBytes
	}
	b := broker.New(opts)
	defer b.Close() // before the store closes: it commits the last writes

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if node != nil {
		// Before the listeners: the grants of links restored from the store
		// must be in place before anything is routed to them.
		if err := node.Start(ctx, b); err != nil {
			return err
		}
		defer node.Stop()
		log.Info("mesh node started", "node", cfg.Mesh.Node, "role", cfg.Mesh.Role,
			"peers", len(cfg.Mesh.Peers), "upstream", len(cfg.Mesh.Upstream), "bridges", len(cfg.Mesh.Bridges))
	}
	errc := make(chan error, 3)
	listening := 0
	if cfg.MQTT != "off" {
		ln, err := net.Listen("tcp", cfg.MQTT)
		if err != nil {
			return fmt.Errorf("mqtt listener: %w", err)
		}
		log.Info("MQTT listening", "addr", ln.Addr().String())
		listening++
		go func() { errc <- b.Serve(ctx, ln) }()
	}
	if cfg.MQTTS != "off" && cfg.MQTTS != "" {
		if sec.tls == nil {
			return errors.New("mqtts listener: no tls configuration (tls: cert, key in the configuration, or --tls-cert and --tls-key)")
		}
		ln, err := net.Listen("tcp", cfg.MQTTS)
		if err != nil {
			return fmt.Errorf("mqtts listener: %w", err)
		}
		log.Info("MQTT over TLS listening", "addr", ln.Addr().String())
		listening++
		go func() {
			errc <- b.ServeListener(ctx, tls.NewListener(ln, sec.tls.Config()), broker.ConnInfo{Listener: "mqtts"})
		}()
	}
	if cfg.WS != "off" {
		srv, ln, err := listenHTTP(cfg.WS, wsHandler(ctx, b, log, "ws"))
		if err != nil {
			return fmt.Errorf("websocket listener: %w", err)
		}
		log.Info("MQTT over WebSocket listening", "addr", ln.Addr().String(), "path", "/mqtt")
		listening++
		go func() { errc <- serveHTTP(ctx, srv, ln) }()
	}
	if cfg.WSS != "off" && cfg.WSS != "" {
		if sec.tls == nil {
			return errors.New("wss listener: no tls configuration")
		}
		srv, ln, err := listenHTTP(cfg.WSS, wsHandler(ctx, b, log, "wss"))
		if err != nil {
			return fmt.Errorf("websocket over TLS listener: %w", err)
		}
		srv.TLSConfig = sec.tls.Config()
		log.Info("MQTT over WebSocket over TLS listening", "addr", ln.Addr().String(), "path", "/mqtt")
		listening++
		go func() { errc <- serveHTTP(ctx, srv, tls.NewListener(ln, srv.TLSConfig)) }()
	}
	if cfg.HTTP != "off" {
		mux := httpHandler(b, node)
		srv, ln, err := listenHTTP(cfg.HTTP, mux)
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		log.Info("HTTP listening", "addr", ln.Addr().String())
		listening++
		go func() { errc <- serveHTTP(ctx, srv, ln) }()
	}
	if listening == 0 {
		return errors.New("every listener is off")
	}
	// SIGHUP reloads certificates, password file, JWT keys and the ACL
	// rules; established connections keep what they had.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			return nil
		case err := <-errc:
			return err
		case <-hup:
			if err := sec.reload(*configFile); err != nil {
				log.Error("reload failed; keeping the previous configuration", "err", err)
			} else {
				log.Info("reloaded certificates, credentials and access rules")
			}
		}
	}
}

// httpHandler serves /healthz, Prometheus /metrics, /debug/pprof and, on
// a mesh node (node not nil), GET /api/mesh.
func httpHandler(b *broker.Broker, node *mesh.Node) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	if node != nil {
		reg.MustRegister(node.Collector())
		mux.Handle("GET /api/mesh", node)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles for `go tool pprof`; the HTTP listener is on loopback unless
	// configured otherwise.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func listenHTTP(addr string, h http.Handler) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln, nil
}

func serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// wsHandler serves MQTT over WebSocket on /mqtt, with the "mqtt" subprotocol
// (MQTT 5.0 section 6).
func wsHandler(ctx context.Context, b *broker.Broker, log *slog.Logger, listener string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/mqtt", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols:       []string{"mqtt", "mqttv3.1"},
			InsecureSkipVerify: true, // browsers on other origins (the dashboard) may connect
		})
		if err != nil {
			log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
			return
		}
		c.SetReadLimit(-1) // the broker enforces the maximum packet size
		b.ServeConnInfo(websocket.NetConn(ctx, c, websocket.MessageBinary), broker.ConnInfo{Listener: listener, TLS: r.TLS})
	})
	return mux
}
