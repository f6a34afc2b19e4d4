package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/node"
)

func init() {
	register("serve", "run a citymesh node: MQTT broker, WebSocket and HTTP", runServe)
}

// serveFlags are the flags of `citymesh serve`; those given override the
// configuration file.
type serveFlags struct {
	fs         *flag.FlagSet
	configFile string
	remote     bool
	set        map[string]string // flag name → value, for the flags given
}

func newServeFlags() *serveFlags {
	f := &serveFlags{fs: flag.NewFlagSet("serve", flag.ContinueOnError)}
	fs := f.fs
	fs.StringVar(&f.configFile, "config", "", "YAML configuration `file` (flags override it)")
	fs.String("mqtt", "", "MQTT over TCP listen `address` (default 127.0.0.1:1883; \"off\" disables)")
	fs.String("mqtts", "", "MQTT over TLS listen `address` (default off; needs tls in the configuration, or --tls-cert and --tls-key)")
	fs.String("ws", "", "MQTT over WebSocket listen `address`, path /mqtt (default 127.0.0.1:8083; \"off\" disables)")
	fs.String("wss", "", "MQTT over WebSocket over TLS listen `address`, path /mqtt (default off)")
	fs.String("tls-cert", "", "server certificate chain `file` (PEM) of the TLS listeners")
	fs.String("tls-key", "", "server private key `file` (PEM) of the TLS listeners")
	fs.String("tls-client-ca", "", "CA `file` (PEM) that signs client certificates; clients must present one signed by it")
	fs.String("password-file", "", "password `file` (see citymesh passwd); anonymous access is then off")
	fs.String("http", "", "HTTP listen `address` for /healthz and /metrics (default 127.0.0.1:8080; \"off\" disables)")
	fs.String("data", "", "data `directory` (default ./data)")
	fs.String("store", "", "where durable state lives: `disk` (an embedded store in DATA/store; default) or memory (nothing survives a restart)")
	fs.String("sync", "", "when acknowledged messages count as stored: `batch` (fsynced, grouped across connections; default), always (one fsync each) or none (unsafe: not fsynced)")
	fs.String("sync-interval", "", "shortest `time` between two syncs of the store's log; commits within it share one sync (default 500us; 0 syncs at once)")
	fs.String("log", "", "log `level`: debug, info, warn or error (default info)")
	fs.String("map-tiles", "", "tile server `URL` template under the dashboard's maps (dashboard.map_tiles; default none)")
	fs.String("map-attribution", "", "the tiles' attribution `text` (dashboard.map_attribution)")
	fs.BoolVar(&f.remote, "allow-remote-anonymous", false, "allow listening on non-loopback addresses without authentication")
	return f
}

func (f *serveFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", f.fs.Arg(0))
	}
	f.set = make(map[string]string)
	f.fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = fl.Value.String() })
	return nil
}

// config returns the node's configuration: the defaults, the file over
// them, the flags over the file. SIGHUP builds it again.
func (f *serveFlags) config() (node.Config, error) {
	cfg := node.Default()
	if f.configFile != "" {
		var err error
		if cfg, err = node.Load(f.configFile); err != nil {
			return cfg, err
		}
	}
	for name, dst := range map[string]*string{"mqtt": &cfg.MQTT, "mqtts": &cfg.MQTTS, "ws": &cfg.WS, "wss": &cfg.WSS,
		"http": &cfg.HTTP, "data": &cfg.Data, "store": &cfg.Store, "sync": &cfg.Sync, "log": &cfg.Log,
		"password-file": &cfg.Auth.PasswordFile, "map-tiles": &cfg.Dashboard.MapTiles, "map-attribution": &cfg.Dashboard.MapAttribution} {
		if v, ok := f.set[name]; ok {
			*dst = v
		}
	}
	if v, ok := f.set["sync-interval"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("--sync-interval %q: want a duration such as 500us, 2ms or 0", v)
		}
		cfg.SyncInterval = d
	}
	cert, hasCert := f.set["tls-cert"]
	key, hasKey := f.set["tls-key"]
	ca, hasCA := f.set["tls-client-ca"]
	if hasCert || hasKey || hasCA {
		if cfg.TLS == nil {
			cfg.TLS = &auth.TLSConfig{}
		}
		if hasCert {
			cfg.TLS.Cert = cert
		}
		if hasKey {
			cfg.TLS.Key = key
		}
		if hasCA {
			cfg.TLS.ClientCA = ca
			if cfg.TLS.ClientAuth == "" {
				cfg.TLS.ClientAuth = "require"
			}
		}
	}
	cfg.AllowRemoteAnonymous = cfg.AllowRemoteAnonymous || f.remote
	return cfg, nil
}

func runServe(ctx context.Context, args []string) error {
	f := newServeFlags()
	if err := f.parse(args); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if !anyListener(&cfg) {
		return errors.New("every listener is off")
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log)) // checked by Validate
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	n, err := node.New(cfg, log)
	if err != nil {
		var inUse *node.StoreInUseError
		if errors.As(err, &inUse) {
			inUse.Advice = "stop it or use --data DIR"
		}
		return err
	}
	// SIGHUP reloads certificates, password file, JWT keys and the ACL
	// rules; established connections keep what they had.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			next, err := f.config()
			if err == nil {
				_, err = n.Reload(&next)
			}
			if err != nil {
				log.Error("reload failed; keeping the previous configuration", "err", err)
			} else {
				log.Info("reloaded certificates, credentials and access rules")
			}
		}
	}
}

// anyListener reports whether cfg turns any listener on.
func anyListener(cfg *node.Config) bool {
	for _, a := range []string{cfg.MQTT, cfg.MQTTS, cfg.WS, cfg.WSS, cfg.HTTP} {
		if a != "" && a != "off" {
			return true
		}
	}
	return false
}
