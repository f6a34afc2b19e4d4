package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/sim"
)

func init() {
	register("demo", "run the simulated campus through citymesh on this machine: node, network server endpoint, connectors, simulator", func(ctx context.Context, args []string) error {
		return runDemo(ctx, args, os.Stdout, os.Stderr)
	})
}

// runDemo implements citymesh demo.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demo.Options
	fs.StringVar(&o.MQTT, "mqtt", demo.DefaultMQTT, "MQTT over TCP listen `address` of the node (\"off\": the simulator publishes in-process)")
	fs.StringVar(&o.WS, "ws", demo.DefaultWS, "MQTT over WebSocket listen `address`, path /mqtt (\"off\" disables)")
	fs.StringVar(&o.HTTP, "http", demo.DefaultHTTP, "HTTP listen `address`: /metrics, /healthz, /pictures/ (\"off\" disables)")
	fs.StringVar(&o.NetworkServer, "network-server", demo.DefaultNetworkServer, "listen `address` of the MQTT endpoint that plays The Things Stack and ChirpStack")
	fs.StringVar(&o.Data, "data", demo.DefaultData, "data `directory`; the store is DIR/store")
	fs.StringVar(&o.Store, "store", "disk", "`disk` (the embedded store in DATA/store) or memory")
	fs.StringVar(&o.Campus, "campus", demo.DefaultCampus, "campus `file` to simulate")
	fs.StringVar(&o.Codecs, "codecs", "", "`directory` of the device codecs (default: codecs beside the campus file, else examples/campus/codecs)")
	fs.Uint64Var(&o.Seed, "seed", 1, "simulation `seed` (default: the fault scenario's seed, else 1)")
	faultsFile := fs.String("faults", "", "fault scenario `file` (YAML, docs/simulator.md): examples/sim/campus-faults.yaml with --start 2026-05-12T07:00:00+02:00 shows a water leak, a meter exchange, the robot's incidents and a downy-mildew alarm")
	var faults faultList
	fs.Var(&faults, "fault", "a fault `kind=K,asset=A,start=T[,duration=D,...]` (repeatable)")
	start := fs.String("start", "now", "simulated start `time`: RFC 3339 (2026-05-12T06:00:00+02:00) or now")
	speed := fs.Float64("speed", demo.DefaultSpeed, "simulated seconds per wall second: 60 an hour a minute, 1 real time, 0 as fast as possible (needs --duration)")
	duration := fs.Duration("duration", 0, "simulated `duration` after which the simulation stops (the node keeps serving until Ctrl-C); default: no end")
	fs.IntVar(&o.Copies, "copies", 1, "simulate `n` copies of the campus (copy k's ids end in -xk); the connectors know them all")
	fs.Float64Var(&o.LoadRate, "load-rate", 0, "load mode: every information point at `hz`")
	fs.DurationVar(&o.StatsEvery, "stats", demo.DefaultStatsEvery, "how often to log a one-line summary (`interval`; 0: only at the end)")
	fs.StringVar(&o.Dashboard.MapTiles, "map-tiles", "", "tile server `URL` template under the dashboard's maps, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (default none: the campus's own shapes)")
	fs.StringVar(&o.Dashboard.MapAttribution, "map-attribution", "", "the tiles' attribution `text`, e.g. \"© OpenStreetMap contributors\"")
	open := fs.Bool("open", false, "no users: the dashboard and the HTTP APIs serve everyone (default: demo users, printed at start, one per role and tenant)")
	logLevel := fs.String("log", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: citymesh demo [flags]

Runs the simulated campus through citymesh on this machine, as a city runs it: a citymesh node
(broker, store in ./data, MQTT, WebSocket, HTTP), an MQTT endpoint that plays the LoRaWAN
network servers, the connectors that read it, and the campus simulator: uplinks as The Things
Stack and ChirpStack publish them, building gateway readings and room values, the patrol robot.
Ctrl-C stops it. For production, run citymesh serve (docs/cli.md).

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Users = !*open
	if err := o.Dashboard.Validate(); err != nil {
		// "map_tiles: …" is the flag --map-tiles here.
		key, msg, _ := strings.Cut(err.Error(), ": ")
		return fmt.Errorf("--%s: %s", strings.ReplaceAll(key, "_", "-"), msg)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	log, err := textLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	fset, seed, err := readFaults(*faultsFile, faults)
	if err != nil {
		return err
	}
	o.Faults = fset
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if seed != nil && !seedSet {
		o.Seed = *seed
	}
	if *start != "now" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			return fmt.Errorf("--start %q: want RFC 3339 (2026-05-12T06:00:00+02:00) or now", *start)
		}
		o.Start = t
	} else {
		o.Start = time.Now().Truncate(time.Second)
	}
	switch {
	case *duration < 0:
		return fmt.Errorf("--duration %v: cannot be negative", *duration)
	case *duration > 0:
		o.Until = o.Start.Add(*duration)
	}
	switch {
	case *speed < 0 || *speed != *speed:
		return fmt.Errorf("--speed %v: want 0 (as fast as possible) or a positive factor", *speed)
	case *speed == 0:
		if *duration == 0 {
			return errors.New("--speed 0 plays as fast as possible: give --duration")
		}
		o.Clock = sim.NewVirtualClock(o.Start)
	default:
		o.Speed = *speed
	}
	if o.StatsEvery == 0 {
		o.StatsEvery = -1
	}
	o.Logger = log
	d, err := demo.New(o)
	if err != nil {
		var inUse *node.StoreInUseError
		if errors.As(err, &inUse) {
			inUse.Advice = "stop it or use --data DIR"
		}
		return err
	}
	if err := d.Start(ctx); err != nil {
		d.Close()
		return withListenAdvice(err)
	}
	d.WriteBanner(stdout)
	select {
	case <-ctx.Done():
	case <-d.Failed():
	}
	err = d.Err()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// withListenAdvice names the flag that moves a demo listener whose address
// another program already uses.
func withListenAdvice(err error) error {
	var fe *node.FieldError
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &fe) {
		return err
	}
	flag := "--" + fe.Field
	if strings.Contains(err.Error(), "network server endpoint") {
		flag = "--network-server"
	}
	return fmt.Errorf("%w (another program listens there: stop it, or choose another address with %s)", err, flag)
}
