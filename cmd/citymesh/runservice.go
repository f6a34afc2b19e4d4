package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
)

// runService runs one service of kind kind as its own process, a client of
// a broker through the remote bus: the entry of a configuration file's
// services section (or the kind's empty configuration), with its durable
// state in a directory of its own and its own HTTP listener for its API,
// /api/v1/services, /metrics and /healthz.
func runService(ctx context.Context, kind string, args []string) error {
	fs := flag.NewFlagSet("run "+kind, flag.ContinueOnError)
	configFile := fs.String("config", "", "YAML configuration `file` with a services section (citymesh serve's file, or one with that section, data and auth); without it the kind's empty configuration")
	name := fs.String("name", "", "the service's `name`: its entry in the services section, its state's namespace, its client id svc-NAME (default the one entry of kind "+kind+", else "+kind+")")
	var rf remoteFlags
	rf.register(fs, "the citymesh broker of the city events: mqtt://, mqtts:// (tls://), ws:// or wss:// `URL`",
		"MQTT client `id` at the broker; keep it stable so that events queued while away are kept (default svc-NAME)",
		"user `name` at the broker")
	dataDir := fs.String("data", "", "data `directory`: the state is DIR/services (default the configuration's data, ./data)")
	httpAddr := fs.String("http", "127.0.0.1:8091", "listen `address` of the service's API (/api/v1/"+kind+"/), /api/v1/services, /metrics and /healthz; off for none")
	logLevel := fs.String("log", "info", "log `level`: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	log, err := textLogger(os.Stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg := node.Default()
	if *configFile != "" {
		var err error
		if cfg, err = node.Load(*configFile); err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	svcName, sec, err := pickService(cfg.Services, kind, *name)
	if err != nil {
		return fmt.Errorf("%s: %w", cmp.Or(*configFile, "no --config"), err)
	}
	if err := rf.resolve(); err != nil {
		return err
	}
	rf.clientID = cmp.Or(rf.clientID, "svc-"+svcName)
	// The HTTP API's users are the auth section's, as for run twin.
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
			return fmt.Errorf("--http %s: refusing to serve the service's API to other hosts without authentication: configure auth, use a loopback address, or allow_remote_anonymous", *httpAddr)
		}
	}

	// The service, its state and the HTTP listener before anything
	// connects: their mistakes are the configuration's.
	list, err := node.BuildServices(map[string]service.Section{svcName: sec})
	if err != nil {
		return err
	}
	var ln net.Listener
	if serveHTTP {
		if ln, err = net.Listen("tcp", *httpAddr); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		defer ln.Close() // (a no-op once served)
	}
	stateDir := filepath.Join(cmp.Or(*dataDir, cfg.Data, "./data"), "services")
	dial := func(ctx context.Context, _ string) (bus.Bus, error) { return rf.dial(ctx, log, rf.clientID) }
	svcs, err := node.NewServices(list, node.ServicesOptions{Dial: dial, StateDir: stateDir,
		Kinds: map[string]string{svcName: kind}, Logger: log})
	if err != nil {
		return err
	}
	defer svcs.Close()

	var stopHTTP func()
	defer func() {
		if stopHTTP != nil {
			stopHTTP()
		}
	}()
	if serveHTTP {
		reg := prometheus.NewRegistry()
		reg.MustRegister(svcs.Collector())
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		if err := svcs.Mount(func(p string, h http.Handler) error { mux.Handle(p, h); return nil }, access); err != nil {
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
	if err := svcs.Start(ctx); err != nil {
		return err
	}
	log.Info("service running", "service", svcName, "kind", kind, "broker", rf.broker, "client", rf.clientID, "state", stateDir)
	<-ctx.Done()
	log.Info("shutting down")
	if stopHTTP != nil {
		stopHTTP()
		stopHTTP = nil
	}
	return svcs.Close()
}

// pickService returns the entry of the services section that `run kind`
// runs: the one called name, or the only one of kind, or — when the
// section has none of kind — an empty configuration called name (default
// kind).
func pickService(sections map[string]service.Section, kind, name string) (string, service.Section, error) {
	kindOf := func(n string) string { return cmp.Or(sections[n].Kind, n) }
	if name != "" {
		sec, ok := sections[name]
		switch {
		case ok && kindOf(name) != kind:
			return "", service.Section{}, fmt.Errorf("services.%s is of kind %s, not %s", name, kindOf(name), kind)
		case ok:
			return name, sec, nil
		}
		if err := service.CheckName(name); err != nil {
			return "", service.Section{}, fmt.Errorf("--name: %w", err)
		}
		return name, service.Section{Kind: kind}, nil
	}
	var of []string
	for n := range sections {
		if kindOf(n) == kind {
			of = append(of, n)
		}
	}
	sort.Strings(of)
	switch len(of) {
	case 0:
		return kind, service.Section{Kind: kind, Config: yaml.Node{}}, nil
	case 1:
		return of[0], sections[of[0]], nil
	}
	return "", service.Section{}, errors.New("the services section has several services of kind " + kind + " (" + strings.Join(of, ", ") + "): choose one with --name")
}
