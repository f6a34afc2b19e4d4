package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/node"
)

// runTwin runs the twin of a configuration file's twin section as its own
// process, a client of a broker through the remote bus, with its own HTTP
// listener for the twin API, the Prometheus API, /metrics and /healthz.
func runTwin(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run twin", flag.ContinueOnError)
	configFile := fs.String("config", "", "YAML configuration `file` with a twin section (citymesh serve's file, or one with that section, data and auth); its auth section authenticates the HTTP APIs' users")
	var rf remoteFlags
	rf.register(fs, "the citymesh broker of the city events: mqtt://, tls://, ws:// or wss:// `URL`",
		"MQTT client `id` at the broker; keep it stable so that events queued while away are kept (default citymesh-twin-HOSTNAME)",
		"user `name` at the broker: an administrator, so that the twin may publish into the tenants' namespaces")
	httpAddr := fs.String("http", "127.0.0.1:8090", "listen `address` of the twin API (/api/v1/twin/), the Prometheus API (/prometheus/), /metrics and /healthz; off for none")
	logLevel := fs.String("log", "info", "log `level`: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	if *configFile == "" {
		return errors.New("--config is required: a file with a twin section")
	}
	log, err := textLogger(os.Stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := node.Load(*configFile)
	if err != nil {
		return err
	}
	if !cfg.Twin.Enabled {
		return fmt.Errorf("%s: twin.enabled is not true", *configFile)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := rf.resolve(); err != nil {
		return err
	}
	rf.defaultClientID("citymesh-twin-")
	// The HTTP APIs' users are the auth section's: the broker's password
	// file and JWT keys, read by this process too.
	chain, _, err := cfg.Auth.Build()
	if err != nil {
		return fmt.Errorf("%s: auth: %w", *configFile, err)
	}
	acl, err := cfg.ACL.Build()
	if err != nil {
		return fmt.Errorf("%s: acl: %w", *configFile, err)
	}
	access := node.NewTwinAccess(chain, acl != nil)
	serveHTTP := *httpAddr != "" && *httpAddr != "off"
	if serveHTTP && chain == nil && acl == nil && !cfg.AllowRemoteAnonymous {
		if host, _, err := net.SplitHostPort(*httpAddr); err != nil || !loopbackHost(host) {
			return fmt.Errorf("--http %s: refusing to serve the twin to other hosts without authentication: configure auth in %s, use a loopback address, or allow_remote_anonymous", *httpAddr, *configFile)
		}
	}

	// The HTTP listener, the campus and the history before anything
	// connects: their mistakes are the configuration's.
	var ln net.Listener
	if serveHTTP {
		if ln, err = net.Listen("tcp", *httpAddr); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		defer ln.Close() // (a no-op once served)
	}
	tw, err := node.NewTwin(cfg.Twin, node.TwinOptions{Connectors: cfg.Connectors, Data: cfg.Data, Logger: log})
	if err != nil {
		return fmt.Errorf("%s: %w", *configFile, err)
	}
	defer tw.Close() // the last to run: the history closes after the twin stopped

	remote, err := rf.dial(ctx, log, rf.clientID)
	if err != nil {
		return err
	}
	defer remote.Close()
	// The event log's recorder on a client of its own: its filters
	// overlap the twin's (status events), and a client holds one
	// subscription per filter.
	events, err := rf.dial(ctx, log, rf.clientID+"-events")
	if err != nil {
		return err
	}
	defer events.Close()
	defer tw.Close() // before the buses: the last snapshots are published
	if err := tw.Start(ctx, remote, events); err != nil {
		return err
	}
	// The HTTP APIs once the twin runs on the bus (an erasure publishes).
	var stopHTTP func()
	defer func() {
		if stopHTTP != nil {
			stopHTTP()
		}
	}()
	if serveHTTP {
		reg := prometheus.NewRegistry()
		reg.MustRegister(tw.Collectors()...)
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		if err := tw.Mount(func(p string, h http.Handler) error { mux.Handle(p, h); return nil }, access); err != nil {
			return err
		}
		log.Info("HTTP listening", "addr", ln.Addr().String())
		srv := &http.Server{Handler: api.Headers(mux), ReadHeaderTimeout: 10 * time.Second}
		served := make(chan struct{})
		go func() { srv.Serve(ln); close(served) }()
		stopHTTP = func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			srv.Shutdown(sctx)
			cancel()
			<-served
		}
	}
	log.Info("twin running", "broker", rf.broker, "client", rf.clientID)
	<-ctx.Done()
	log.Info("shutting down")
	if stopHTTP != nil {
		stopHTTP() // no request reads a closed history
		stopHTTP = nil
	}
	return tw.Close()
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
