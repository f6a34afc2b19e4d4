package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	connectors "github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
)

func init() {
	register("run", "run a citymesh service as its own process against a broker: run connector, run twin, run KIND of a service (run help lists them)", runRun)
}

// runnable is a part of citymesh that `citymesh run` starts as its own
// process, a client of a broker through the remote bus: the connectors, the
// twin, and every kind of service the registry knows (service.Kinds).
type runnable struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var runnables = map[string]runnable{
	"connector": {"the LoRaWAN connectors of a configuration's connectors section (The Things Stack, ChirpStack)", runConnector},
	"twin":      {"the digital twin of a configuration's twin section, with its history, remote write and HTTP APIs", runTwin},
}

func runUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: citymesh run <service> [flags]\n\nservices:")
	names := make([]string, 0, len(runnables))
	for n := range runnables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, runnables[n].summary)
	}
	for _, k := range service.Kinds() {
		if _, taken := runnables[k]; !taken {
			fmt.Fprintf(w, "  %-10s %s (a service: a configuration's services section)\n", k, service.Summary(k))
		}
	}
	fmt.Fprintln(w, "\nRun 'citymesh run <service> -help' for its flags.")
}

func runRun(ctx context.Context, args []string) error {
	if len(args) == 0 {
		runUsage(os.Stderr)
		return &exitError{code: 2, err: errors.New("which service?")}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		runUsage(os.Stdout)
		return nil
	}
	if s, ok := runnables[args[0]]; ok {
		return s.run(ctx, args[1:])
	}
	if slices.Contains(service.Kinds(), args[0]) {
		return runService(ctx, args[0], args[1:])
	}
	runUsage(os.Stderr)
	return &exitError{code: 2, err: fmt.Errorf("unknown service %q", args[0])}
}

// runConnector runs the connectors of a configuration file's connectors
// section as their own process, publishing through the remote bus.
func runConnector(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run connector", flag.ContinueOnError)
	configFile := fs.String("config", "", "YAML configuration `file` with a connectors section (citymesh serve's file, or one with that section only)")
	var rf remoteFlags
	rf.register(fs, "the citymesh broker to publish to: mqtt://, tls://, ws:// or wss:// `URL`",
		"MQTT client `id` at the broker; keep it stable so that commands queued while away are kept (default citymesh-connector-HOSTNAME)",
		"user `name` at the broker")
	httpAddr := fs.String("http", "", "listen `address` of GET /metrics and /healthz (default off)")
	logLevel := fs.String("log", "info", "log `level`: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	if *configFile == "" {
		return errors.New("--config is required: a file with a connectors section")
	}
	log, err := textLogger(os.Stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := node.Load(*configFile)
	if err != nil {
		return err
	}
	if !cfg.Connectors.Enabled() {
		return fmt.Errorf("%s: the connectors section names no tts or chirpstack application", *configFile)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := rf.resolve(); err != nil {
		return err
	}
	rf.defaultClientID("citymesh-connector-")

	// The configuration and the campus model are checked before anything
	// connects.
	rt, err := connectors.New(cfg.Connectors, connectors.Options{Logger: log, ClientIDPrefix: rf.clientID})
	if err != nil {
		var fe *connectors.FieldError
		if errors.As(err, &fe) {
			return fmt.Errorf("%s: connectors.%w", *configFile, err)
		}
		return err
	}
	defer rt.Close()
	remote, err := rf.dial(ctx, log, rf.clientID)
	if err != nil {
		return err
	}
	defer remote.Close()
	var srv *http.Server
	if *httpAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(rt.Collector())
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		// Profiles for `go tool pprof`, as on a node's HTTP listener.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		log.Info("HTTP listening", "addr", ln.Addr().String())
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		served := make(chan struct{})
		go func() { srv.Serve(ln); close(served) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			srv.Shutdown(sctx)
			cancel()
			<-served
		}()
	}
	if err := rt.Start(ctx, remote); err != nil {
		return err
	}
	log.Info("connectors running", "broker", rf.broker, "client", rf.clientID)
	<-ctx.Done()
	log.Info("shutting down")
	return rt.Close()
}

// textLogger returns the logger of a command's --log level: text lines on w.
func textLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
