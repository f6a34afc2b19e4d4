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
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/sim"
)

func init() {
	register("sim", "play a campus file: LoRaWAN uplinks as The Things Stack and ChirpStack publish them, building and robot events", func(ctx context.Context, args []string) error {
		return runSim(ctx, args, os.Stdout, os.Stderr)
	})
}

// faultList is the repeatable --fault flag.
type faultList []sim.Fault

func (f *faultList) String() string { return fmt.Sprint(len(*f), " faults") }

func (f *faultList) Set(s string) error {
	flt, err := sim.ParseFault(s)
	if err != nil {
		return err
	}
	*f = append(*f, flt)
	return nil
}

// simFlags are the flags of citymesh sim.
type simFlags struct {
	campus, start, until, duration, faultsFile, truth, pictures, picturesListen string
	broker, tts, chirpstack                                                     string
	user, pass, ttsUser, ttsPass, csUser, csPass, version                       string
	seed                                                                        uint64
	speed, loadRate                                                             float64
	copies, firstCopy, duplicateEvery                                           int
	decoded, shared                                                             bool
	meterEvery, statsEvery                                                      time.Duration
	faults                                                                      faultList
	tls                                                                         tlsFlags
}

func (f *simFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.campus, "campus", "examples/campus/campus.yaml", "campus `file` to play (docs/campus.md)")
	fs.Uint64Var(&f.seed, "seed", 1, "simulation `seed`: the same seed, campus, start and faults give the same messages (default: the fault scenario's seed, else 1)")
	fs.StringVar(&f.start, "start", "now", "simulated start `time`: RFC 3339 (2026-05-12T07:00:00+02:00) or now")
	fs.Float64Var(&f.speed, "speed", 1, "simulated seconds per wall second: 1 real time, 60 an hour a minute, 0 as fast as possible (needs --duration or --until)")
	fs.StringVar(&f.until, "until", "", "simulated `time` (RFC 3339) to stop at")
	fs.StringVar(&f.duration, "duration", "", "simulated `duration` to play (1h, 30m); default: until Ctrl-C")
	fs.StringVar(&f.broker, "broker", "mqtt://127.0.0.1:1883", "`URL` of the broker for building gateway and robot events (mqtt://, mqtts://, ws://, wss://); none to leave them out, discard to count them only")
	fs.StringVar(&f.tts, "tts", "", "`URL` of the MQTT endpoint that plays The Things Stack (v3/{app}@{tenant}/devices/{dev}/up, QoS 0); default: --broker; none, discard")
	fs.StringVar(&f.chirpstack, "chirpstack", "", "`URL` of the MQTT endpoint that plays ChirpStack (application/{id}/device/{devEui}/event/up); default: --broker; none, discard")
	fs.StringVar(&f.user, "username", "", "`username` for --broker")
	fs.StringVar(&f.pass, "password", "", "`password` for --broker")
	fs.StringVar(&f.ttsUser, "tts-username", "", "`username` for --tts")
	fs.StringVar(&f.ttsPass, "tts-password", "", "`password` for --tts")
	fs.StringVar(&f.csUser, "chirpstack-username", "", "`username` for --chirpstack")
	fs.StringVar(&f.csPass, "chirpstack-password", "", "`password` for --chirpstack")
	fs.StringVar(&f.version, "mqtt-version", "5", "MQTT `version` towards --broker: 5 (content type and CloudEvents properties) or 311; the network server endpoints get 3.1.1, as those servers speak")
	fs.BoolVar(&f.shared, "shared-connection", false, "publish building and robot events through one connection instead of one per building gateway and robot (no wills)")
	f.tls.register(fs)
	fs.StringVar(&f.faultsFile, "faults", "", "fault scenario `file` (YAML, docs/simulator.md)")
	fs.Var(&f.faults, "fault", "a fault `kind=K,asset=A,start=T[,duration=D,...]` (repeatable)")
	fs.StringVar(&f.truth, "truth", "", "write the ground truth to `file`, one JSON line per value produced")
	fs.StringVar(&f.pictures, "pictures", "", "write the robot's pictures into `dir` (file:// URLs); default: kept in memory")
	fs.StringVar(&f.picturesListen, "pictures-listen", "", "serve the pictures over HTTP on `addr` (host:port); their URLs point there")
	fs.BoolVar(&f.decoded, "decoded", false, "add the decoded payload (TTS decoded_payload, ChirpStack object) from the model's values; without it the connector runs the codecs")
	fs.IntVar(&f.duplicateEvery, "duplicate-every", 0, "publish every `n`-th uplink of every device twice, through another gateway path (deduplication)")
	fs.Float64Var(&f.loadRate, "load-rate", 0, "load mode: every point at `hz` (all of a source's points each time, phases spread evenly)")
	fs.IntVar(&f.copies, "copies", 1, "play `n` copies of the campus with distinct ids, topics and DevEUIs (ids of copy k end in -xk)")
	fs.IntVar(&f.firstCopy, "first-copy", 0, "number of the first copy played (several processes play distinct copies side by side)")
	fs.DurationVar(&f.meterEvery, "meter-every", sim.DefaultMeterEvery, "meter reading `interval`")
	fs.DurationVar(&f.statsEvery, "stats", 10*time.Second, "print counts every `interval` of wall time (0: only at the end)")
}

// runSim implements citymesh sim.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f simFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: citymesh sim [flags]\n\nPlays a campus file and publishes what its real sources would: LoRaWAN uplinks as The Things\nStack v3 and ChirpStack v4 publish them, building gateway readings and room values, the robot's\npositions, checks and pictures (docs/simulator.md). Ctrl-C stops it.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before it; the campus file is --campus)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	cfg, closers, err := f.config(ctx, set, stdout)
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	if err != nil {
		return err
	}
	p, err := sim.NewPlayer(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sim: %d sources, %d information points%s; seed %d; start %s; %s\n", p.Sources(), p.PointsPerRound(), copiesNote(cfg.Copies),
		cfg.Seed, cfg.Start.Format(time.RFC3339), speedNote(f.speed, cfg))
	if cfg.LoadRate > 0 {
		fmt.Fprintf(stdout, "sim: load mode: every point at %g Hz, %.0f values/s\n", cfg.LoadRate, cfg.LoadRate*float64(p.PointsPerRound()))
	}
	outs := []struct {
		name string
		o    sim.Output
	}{{"tts", cfg.Outputs.TTS}, {"chirpstack", cfg.Outputs.ChirpStack}, {"building", cfg.Outputs.Building}, {"robot", cfg.Outputs.Robot}}
	report := func(final bool) {
		st := p.Stats()
		var b strings.Builder
		when := "sim"
		if final {
			when = "sim: done"
		}
		fmt.Fprintf(&b, "%s %s  values %d (lost %d, duplicated %d, late %d)", when, st.SimTime.In(cfg.Campus.Location).Format(time.RFC3339), st.Values, st.Lost, st.Duplicated, st.Late)
		seen := map[sim.Output]bool{}
		for _, o := range outs {
			if o.o == nil || seen[o.o] {
				continue
			}
			seen[o.o] = true
			if s, ok := sim.StatsOf(o.o); ok {
				fmt.Fprintf(&b, "  %s %d msgs %s", outputNames(outs, o.o), s.Messages, byteCount(s.Bytes))
				if s.Errors > 0 {
					fmt.Fprintf(&b, " (%d errors)", s.Errors)
				}
			}
		}
		if final {
			fmt.Fprintf(&b, "\nsim: uplinks %d, joins %d, device status %d; readings %d, room events %d, gateway status %d; positions %d, robot status %d, checks %d, pictures %d",
				st.Uplinks, st.Joins, st.DeviceStatus, st.Readings, st.RoomEvents, st.GatewayStatus, st.Positions, st.RobotStatus, st.Checks, st.Pictures)
			if st.Unrouted > 0 {
				fmt.Fprintf(&b, "; %d without an output", st.Unrouted)
			}
		}
		fmt.Fprintln(stdout, b.String())
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	if f.statsEvery > 0 {
		go func() {
			defer close(done)
			tick := time.NewTicker(f.statsEvery)
			defer tick.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
					report(false)
				}
			}
		}()
	} else {
		close(done)
	}
	began := time.Now()
	err = p.Run(runCtx)
	stop()
	<-done
	// Close the outputs before the last report, so that it counts what
	// was acknowledged.
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	closers = nil
	report(true)
	fmt.Fprintf(stdout, "sim: %v of wall time\n", time.Since(began).Round(time.Millisecond))
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // Ctrl-C: a clean stop
	}
	return err
}

// config builds the player's configuration from the flags; closers end
// what it opened (outputs, truth file, picture server), last first.
func (f *simFlags) config(ctx context.Context, set map[string]bool, stdout io.Writer) (sim.PlayerConfig, []func(), error) {
	var closers []func()
	var cfg sim.PlayerConfig
	m, err := campus.Load(f.campus)
	var errs campus.Errors
	if errors.As(err, &errs) {
		return cfg, nil, fmt.Errorf("--campus %s: %d mistakes, the first: %v (citymesh campus validate lists them all)", f.campus, len(errs), errs[0])
	}
	if err != nil {
		return cfg, nil, fmt.Errorf("--campus: %w", err)
	}
	cfg.Campus = m
	cfg.Seed = f.seed
	// Faults.
	var seed *uint64
	if cfg.Faults, seed, err = readFaults(f.faultsFile, f.faults); err != nil {
		return cfg, nil, err
	}
	if seed != nil && !set["seed"] {
		cfg.Seed = *seed
	}
	// Time.
	if f.start == "now" {
		cfg.Start = time.Now().Truncate(time.Second)
	} else if cfg.Start, err = time.Parse(time.RFC3339, f.start); err != nil {
		return cfg, nil, fmt.Errorf("--start %q: want RFC 3339 (2026-05-12T07:00:00+02:00) or now", f.start)
	}
	if set["until"] && set["duration"] {
		return cfg, nil, errors.New("--until and --duration: give one")
	}
	if f.until != "" {
		if cfg.Until, err = time.Parse(time.RFC3339, f.until); err != nil {
			return cfg, nil, fmt.Errorf("--until %q: want RFC 3339", f.until)
		}
		if !cfg.Until.After(cfg.Start) {
			return cfg, nil, fmt.Errorf("--until %s is not after the start %s", f.until, cfg.Start.Format(time.RFC3339))
		}
	}
	if f.duration != "" {
		d, err := time.ParseDuration(f.duration)
		if err != nil || d <= 0 {
			return cfg, nil, fmt.Errorf("--duration %q: want a positive duration such as 1h or 30m", f.duration)
		}
		cfg.Until = cfg.Start.Add(d)
	}
	switch {
	case f.speed < 0 || f.speed != f.speed || f.speed > 1e6:
		return cfg, nil, fmt.Errorf("--speed %v: want 0 (as fast as possible) or a positive factor up to 1e6", f.speed)
	case f.speed == 0:
		if cfg.Until.IsZero() {
			return cfg, nil, errors.New("--speed 0 plays as fast as possible: give --duration or --until")
		}
		cfg.Clock = sim.NewVirtualClock(cfg.Start)
	default:
		if cfg.Clock, err = sim.NewScaledClock(cfg.Start, f.speed); err != nil {
			return cfg, nil, err
		}
	}
	cfg.FirstCopy = f.firstCopy
	cfg.LoadRate, cfg.Copies, cfg.DecodedPayload, cfg.DuplicateEvery, cfg.MeterEvery = f.loadRate, f.copies, f.decoded, f.duplicateEvery, f.meterEvery
	if f.copies < 1 {
		return cfg, nil, fmt.Errorf("--copies %d: want at least 1", f.copies)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Outputs.
	var version byte
	switch f.version {
	case "5", "mqttv5":
		version = mqtt.V5
	case "311", "mqttv311":
		version = mqtt.V311
	default:
		return cfg, nil, fmt.Errorf("--mqtt-version %q: want 5 or 311", f.version)
	}
	if f.tts == "" {
		f.tts = f.broker
	}
	if f.chirpstack == "" {
		f.chirpstack = f.broker
	}
	made := map[string]sim.Output{}
	output := func(name, u, user, pass string, opts sim.MQTTOptions) (sim.Output, error) {
		switch u {
		case "none", "":
			return nil, nil
		case "discard":
			return &sim.DiscardOutput{}, nil
		}
		key := u + "\x00" + user + "\x00" + strconv.FormatBool(opts.PerPublisher) + strconv.Itoa(int(opts.Version))
		if o, ok := made[key]; ok {
			return o, nil
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			return nil, fmt.Errorf("--%s %q: want a URL such as mqtt://host:1883", name, u)
		}
		switch pu.Scheme {
		case "mqtt", "tcp", "mqtts", "tls", "ssl", "ws", "wss":
		default:
			return nil, fmt.Errorf("--%s %q: scheme %q: want mqtt, mqtts, tls, ws or wss", name, u, pu.Scheme)
		}
		if pu.User != nil { // mqtt://user:password@host
			if user == "" {
				user = pu.User.Username()
			}
			if p, ok := pu.User.Password(); ok && pass == "" {
				pass = p
			}
			pu.User = nil
		}
		if pu.Port() == "" {
			port := "1883"
			switch pu.Scheme {
			case "mqtts", "tls", "ssl":
				port = "8883"
			case "ws":
				port = "80"
			case "wss":
				port = "443"
			}
			pu.Host = net.JoinHostPort(pu.Hostname(), port)
		}
		opts.URL = pu.String()
		opts.Username = user
		if pass != "" {
			opts.Password = []byte(pass)
		}
		switch pu.Scheme {
		case "mqtts", "tls", "ssl", "wss":
			tc, err := f.tls.config(pu.Hostname())
			if err != nil {
				return nil, err
			}
			opts.TLSConfig = tc
		}
		opts.Logger = cfg.Logger
		o, err := sim.NewMQTTOutput(opts)
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := o.Probe(pctx); err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
		made[key] = o
		closers = append(closers, func() {
			if err := o.Close(); err != nil {
				cfg.Logger.Warn("sim: closing an output", "url", u, "err", err)
			}
		})
		return o, nil
	}
	city := sim.MQTTOptions{Version: version, PerPublisher: !f.shared, ClientID: "citymesh-sim", SessionExpiry: 3600}
	if cfg.Outputs.Building, err = output("broker", f.broker, f.user, f.pass, city); err != nil {
		return cfg, closers, err
	}
	cfg.Outputs.Robot = cfg.Outputs.Building
	ns := sim.MQTTOptions{Version: mqtt.V311, ClientID: "citymesh-sim-network-server"}
	if cfg.Outputs.TTS, err = output("tts", f.tts, f.ttsUser, f.ttsPass, ns); err != nil {
		return cfg, closers, err
	}
	if cfg.Outputs.ChirpStack, err = output("chirpstack", f.chirpstack, f.csUser, f.csPass, ns); err != nil {
		return cfg, closers, err
	}
	for _, o := range []struct{ name, url string }{{"tts", f.tts}, {"chirpstack", f.chirpstack}, {"building", f.broker}, {"robot", f.broker}} {
		fmt.Fprintf(stdout, "sim: %-10s → %s\n", o.name, redact(o.url))
	}
	// Truth.
	if f.truth != "" {
		fh, err := os.Create(f.truth)
		if err != nil {
			return cfg, closers, fmt.Errorf("--truth: %w", err)
		}
		jt := sim.NewJSONLinesTruth(fh)
		cfg.Truth = jt
		closers = append(closers, func() {
			if err := jt.Close(); err != nil {
				cfg.Logger.Warn("sim: writing the truth", "file", f.truth, "err", err)
			}
		})
		fmt.Fprintf(stdout, "sim: ground truth → %s\n", f.truth)
	}
	// Pictures.
	var handler http.Handler
	base := ""
	if f.picturesListen != "" {
		host, port, err := net.SplitHostPort(f.picturesListen)
		if err != nil {
			return cfg, closers, fmt.Errorf("--pictures-listen %q: want host:port", f.picturesListen)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		base = "http://" + net.JoinHostPort(host, port) + "/pictures/"
	}
	if f.pictures != "" {
		d := &sim.DirPictures{Dir: f.pictures, BaseURL: base}
		cfg.Pictures, handler = d, d.Handler()
		fmt.Fprintf(stdout, "sim: pictures → %s\n", f.pictures)
	} else {
		mp := &sim.MemoryPictures{BaseURL: base}
		cfg.Pictures, handler = mp, mp
	}
	if f.picturesListen != "" {
		ln, err := net.Listen("tcp", f.picturesListen)
		if err != nil {
			return cfg, closers, fmt.Errorf("--pictures-listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/pictures/", http.StripPrefix("/pictures/", handler))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		served := make(chan struct{})
		go func() { defer close(served); srv.Serve(ln) }()
		closers = append(closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			<-served
		})
		fmt.Fprintf(stdout, "sim: pictures served at %s\n", base)
	}
	return cfg, closers, nil
}

// redact hides a URL's password.
func redact(u string) string {
	pu, err := url.Parse(u)
	if err != nil || pu.User == nil {
		return u
	}
	return pu.Redacted()
}

func copiesNote(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" (%d copies)", n)
}

func speedNote(speed float64, cfg sim.PlayerConfig) string {
	s := "real time"
	switch {
	case speed == 0:
		s = "as fast as possible"
	case speed != 1:
		s = fmt.Sprintf("%g× real time", speed)
	}
	if !cfg.Until.IsZero() {
		s += ", until " + cfg.Until.Format(time.RFC3339)
	} else {
		s += ", until Ctrl-C"
	}
	return s
}

// outputNames lists the kinds that go to output o ("tts+chirpstack").
func outputNames(outs []struct {
	name string
	o    sim.Output
}, o sim.Output) string {
	var names []string
	for _, x := range outs {
		if x.o == o {
			names = append(names, x.name)
		}
	}
	return strings.Join(names, "+")
}

// byteCount writes n bytes for people.
func byteCount(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// readFaults reads the fault scenario file ("" for none) of --faults and
// adds the faults of --fault: the player's fault set (nil when there are
// none) and the scenario's seed (nil when it names none).
func readFaults(file string, extra []sim.Fault) (*sim.FaultSet, *uint64, error) {
	var faults []sim.Fault
	var seed *uint64
	if file != "" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, nil, fmt.Errorf("--faults: %w", err)
		}
		sc, err := sim.ReadScenario(fh)
		fh.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("--faults %s: %w", file, err)
		}
		faults, seed = sc.Faults, sc.Seed
	}
	faults = append(faults, extra...)
	if len(faults) == 0 {
		return nil, seed, nil
	}
	fs, err := sim.NewFaultSet(faults)
	if err != nil {
		return nil, nil, err
	}
	return fs, seed, nil
}
