package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
)

// PlayerConfig configures a Player: which campus, from when, through which
// outputs. Zero fields take the defaults in their comments.
type PlayerConfig struct {
	// Campus is the campus to play (required).
	Campus *campus.Model
	// Seed makes the run: the same seed, campus, start and faults give
	// byte-identical messages.
	Seed uint64
	// Start is the simulated time the run starts at (required). Models
	// start before it (registers at the local midnight of its day, rooms
	// 48 hours, soil 30 days before), so values are settled at Start.
	Start time.Time
	// Clock drives the run (default: a VirtualClock at Start, as fast as
	// the machine goes). Use a ScaledClock for real or accelerated time.
	Clock Clock
	// Until, when set, ends Run once every emission up to it is out.
	Until time.Time
	// Faults are the run's faults; each names an asset, site, gateway or
	// check of the campus (of a copy: with its suffix). Nil: none.
	Faults *FaultSet
	// Outputs say where each kind of message goes; the sources of a kind
	// without an output are not played.
	Outputs Outputs
	// Truth, when set, receives every value produced (the ground truth).
	Truth TruthSink
	// Pictures stores the robot's pictures (default: a MemoryPictures).
	Pictures PictureStore

	// MeterEvery is the meters' reading interval (default 15 min, on the
	// quarter hours as the energy service's RLM interval).
	MeterEvery time.Duration
	// RoomEvery is how often the building gateway scans a room for
	// changes (default 5 min, the room model's step; at least 1 min), and
	// RoomSnapshot how often it sends all of a room's points (default
	// 15 min).
	RoomEvery, RoomSnapshot time.Duration
	// RobotEvery is the interval of the robot's positions (default 1 s).
	RobotEvery time.Duration
	// StatusEvery is the interval of ChirpStack's device status events
	// (battery and link margin; default 24 h, the first with a device's
	// first uplink).
	StatusEvery time.Duration
	// DecodedPayload adds the decoded payload (TTS decoded_payload,
	// ChirpStack object) to uplinks, from the model's values, as a network
	// server with a payload formatter would. Without it the connector must
	// run the codecs.
	DecodedPayload bool
	// DuplicateEvery, when positive, publishes every n-th uplink of every
	// device a second time, as heard through another gateway: what a
	// duplicated gateway path or a reconnecting client delivers, for the
	// connector's deduplication. (The duplicate fault does it per device.)
	DuplicateEvery int

	// LoadRate, when positive, is the load mode: every source (room,
	// meter, device, the robot's position and each of its checks) emits
	// all its points LoadRate times a second, phases spread evenly, with
	// no on-change filtering: the whole campus at LoadRate × its points
	// values a second.
	LoadRate float64
	// Copies plays that many copies of the campus (default 1), with
	// distinct ids, topics and DevEUIs (CopyID, CopyEUI), for scale tests.
	// FirstCopy numbers the first of them (default 0, the campus as
	// described), so that several players (processes, machines) can play
	// distinct copies side by side: the player runs on one core.
	Copies, FirstCopy int

	// Logger receives warnings (default slog.Default()).
	Logger *slog.Logger
}

// Outputs say where each kind of message goes.
type Outputs struct {
	// TTS receives The Things Stack v3 upstream messages
	// (v3/{app}@{tenant}/devices/{device}/up and join) of devices in TTS
	// applications, at QoS 0 as the stack publishes them.
	TTS Output
	// ChirpStack receives ChirpStack v4 events
	// (application/{id}/device/{devEui}/event/up, status, join) at QoS 0.
	ChirpStack Output
	// Building receives what the building gateways publish: meter
	// readings, room values, their own status (docs/events.md).
	Building Output
	// Robot receives the robot's positions, status, checks and pictures.
	Robot Output
}

// Stats counts what a Player did.
type Stats struct {
	// SimTime is the simulated time reached.
	SimTime time.Time
	// Emissions is the number of scheduled emissions handled.
	Emissions int64
	// Values is the number of information point values produced, Lost
	// those a fault kept from leaving, Duplicated those sent twice, Late
	// those held back (out of order).
	Values, Lost, Duplicated, Late int64
	// Uplinks, Joins, DeviceStatus: LoRaWAN messages published. Readings,
	// RoomEvents, GatewayStatus: building events. Positions, RobotStatus,
	// Checks, Pictures: robot events.
	Uplinks, Joins, DeviceStatus             int64
	Readings, RoomEvents, GatewayStatus      int64
	Positions, RobotStatus, Checks, Pictures int64
	// Unrouted counts messages that found no output (sources of a kind
	// without an output are not played, so it stays 0); PublishErrors the
	// publishes an output refused at once.
	Unrouted, PublishErrors int64
}

type playerStats struct {
	simTime                                  atomic.Int64
	emissions, values, lost, dup, late       atomic.Int64
	uplinks, joins, devStatus                atomic.Int64
	readings, roomEvents, gwStatus           atomic.Int64
	positions, robotStatus, checks, pictures atomic.Int64
	unrouted, pubErrors                      atomic.Int64
}

// Player plays a campus: it builds the simulation models from the campus
// model (weather per site, soil per plot and probe, buildings with their
// meters, rooms, the robot on its route), schedules every source at its
// interval, and publishes what the real sources publish through the
// outputs: LoRaWAN uplinks as The Things Stack or ChirpStack write them,
// building gateway events and robot events as docs/events.md says. Build
// it with NewPlayer and call Run once.
type Player struct {
	cfg   PlayerConfig
	m     *campus.Model
	log   *slog.Logger
	loc   *time.Location
	sched *Scheduler
	srcs  []source

	weather  map[string]*Weather
	devices  []*simDevice
	meters   []*simMeter
	rooms    []*simRoom
	robots   []*simRobot
	bgws     []*simGateway // building gateways
	lgws     [][]*loraGateway
	checks   []robotCheck // load mode: one source per robot check
	ttsPub   *Publisher
	csPub    *Publisher
	ran      atomic.Bool
	stats    playerStats
	truthErr error
}

// sourceKind says what a scheduler source is.
type sourceKind uint8

const (
	srcDevice sourceKind = iota
	srcMeter
	srcRoom
	srcRobot
	srcRobotCheck
	srcGateway
)

type source struct {
	kind sourceKind
	idx  int32
}

// robotCheck is one check of one robot, a source of its own in load mode.
type robotCheck struct {
	robot *simRobot
	check string
}

// Player defaults.
const (
	DefaultMeterEvery   = 15 * time.Minute
	DefaultRoomEvery    = 5 * time.Minute
	DefaultRoomSnapshot = 15 * time.Minute
	DefaultRobotEvery   = time.Second
	DefaultStatusEvery  = 24 * time.Hour
)

// NewPlayer builds the models and the schedule of a campus. Errors name
// what in the campus or the configuration cannot be played: an unknown
// device type, a fault naming nothing in the campus, an id too long for a
// copy.
func NewPlayer(cfg PlayerConfig) (*Player, error) {
	if cfg.Campus == nil {
		return nil, errors.New("player: campus is required")
	}
	if cfg.Start.IsZero() {
		return nil, errors.New("player: start is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = NewVirtualClock(cfg.Start)
	}
	if cfg.Pictures == nil {
		cfg.Pictures = &MemoryPictures{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Copies == 0 {
		cfg.Copies = 1
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
		min  time.Duration
	}{
		{"meter interval", &cfg.MeterEvery, DefaultMeterEvery, time.Second},
		{"room scan interval", &cfg.RoomEvery, DefaultRoomEvery, time.Minute},
		{"room snapshot interval", &cfg.RoomSnapshot, DefaultRoomSnapshot, time.Minute},
		{"robot interval", &cfg.RobotEvery, DefaultRobotEvery, time.Millisecond},
		{"status interval", &cfg.StatusEvery, DefaultStatusEvery, time.Minute},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < d.min {
			return nil, fmt.Errorf("player: %s %v is shorter than %v", d.name, *d.v, d.min)
		}
	}
	switch {
	case cfg.Copies < 1 || cfg.Copies > 10000:
		return nil, fmt.Errorf("player: copies %d: want 1 to 10000", cfg.Copies)
	case cfg.FirstCopy < 0 || cfg.FirstCopy+cfg.Copies > 0x10000:
		return nil, fmt.Errorf("player: first copy %d: want 0 to %d", cfg.FirstCopy, 0x10000-cfg.Copies)
	case cfg.LoadRate < 0 || math.IsNaN(cfg.LoadRate) || math.IsInf(cfg.LoadRate, 0):
		return nil, fmt.Errorf("player: load rate %v must be a positive finite number of Hz", cfg.LoadRate)
	case cfg.LoadRate > 1000:
		return nil, fmt.Errorf("player: load rate %v Hz: at most 1000", cfg.LoadRate)
	case cfg.DuplicateEvery < 0:
		return nil, fmt.Errorf("player: duplicate every %d uplinks: want 0 (none) or more", cfg.DuplicateEvery)
	case !cfg.Until.IsZero() && cfg.Until.Before(cfg.Start):
		return nil, fmt.Errorf("player: until %s is before the start %s", cfg.Until.Format(time.RFC3339), cfg.Start.Format(time.RFC3339))
	}
	p := &Player{cfg: cfg, m: cfg.Campus, log: cfg.Logger, loc: cfg.Campus.Location, sched: NewScheduler(cfg.Seed),
		weather: map[string]*Weather{}, ttsPub: &Publisher{ID: "citymesh-sim-tts"}, csPub: &Publisher{ID: "citymesh-sim-chirpstack"}}
	if p.loc == nil {
		p.loc = time.UTC
	}
	if err := p.checkFaults(); err != nil {
		return nil, err
	}
	if err := p.build(); err != nil {
		return nil, err
	}
	if err := p.schedule(); err != nil {
		return nil, err
	}
	return p, nil
}

// copySeed is the seed of copy k's models.
func (p *Player) copySeed(k int) uint64 {
	if k == 0 {
		return p.cfg.Seed
	}
	return SeedOf(p.cfg.Seed, fmt.Sprintf("copy/%d", k))
}

// checkFaults refuses faults that name nothing the campus has, so that a
// typo does not silently leave a run without its fault.
func (p *Player) checkFaults() error {
	if p.cfg.Faults == nil {
		return nil
	}
	names := map[string]bool{}
	for _, s := range p.m.Sites {
		names[s.ID] = true
	}
	add := func(id string) {
		for k := p.cfg.FirstCopy; k < p.cfg.FirstCopy+p.cfg.Copies; k++ {
			names[CopyID(id, k)] = true
		}
	}
	for _, g := range p.m.Gateways {
		add(g.ID)
	}
	for _, b := range p.m.Buildings {
		add(b.ID)
	}
	for _, r := range p.m.Rooms {
		add(r.ID)
	}
	for _, mt := range p.m.Meters {
		add(mt.ID)
	}
	for _, d := range p.m.Devices {
		add(d.ID)
	}
	for _, r := range p.m.Robots {
		add(r.ID)
		for _, w := range r.Route.Waypoints {
			for _, c := range w.Checks {
				names[c.ID], names[c.Asset] = true, true
			}
		}
	}
	for i, f := range p.cfg.Faults.All() {
		if !names[f.Asset] {
			return fmt.Errorf("player: fault %d (%s): %q is not an asset, site, gateway or robot check of campus %s", i+1, f.Kind, f.Asset, p.m.ID)
		}
	}
	return nil
}

// Stats returns what the player did so far; safe from any goroutine.
func (p *Player) Stats() Stats {
	s := &p.stats
	var t time.Time
	if ns := s.simTime.Load(); ns != 0 {
		t = time.Unix(0, ns)
	}
	return Stats{
		SimTime: t, Emissions: s.emissions.Load(),
		Values: s.values.Load(), Lost: s.lost.Load(), Duplicated: s.dup.Load(), Late: s.late.Load(),
		Uplinks: s.uplinks.Load(), Joins: s.joins.Load(), DeviceStatus: s.devStatus.Load(),
		Readings: s.readings.Load(), RoomEvents: s.roomEvents.Load(), GatewayStatus: s.gwStatus.Load(),
		Positions: s.positions.Load(), RobotStatus: s.robotStatus.Load(), Checks: s.checks.Load(), Pictures: s.pictures.Load(),
		Unrouted: s.unrouted.Load(), PublishErrors: s.pubErrors.Load(),
	}
}

// Sources returns the number of scheduled sources.
func (p *Player) Sources() int { return len(p.srcs) }

// PointsPerRound returns how many information point values one emission of
// every source carries: the campus's points times the copies (in load
// mode, the values per second divided by the rate).
func (p *Player) PointsPerRound() int { return len(p.m.Points) * p.cfg.Copies }

// Run plays the campus until ctx ends (returning its error) or Until is
// reached (returning nil). Messages held back by an out-of-order fault are
// published before it returns. It publishes the building gateways' and
// robots' online statuses first. Run may be called once; the outputs and
// the truth sink stay open (their owner closes them).
func (p *Player) Run(ctx context.Context) error {
	if p.ran.Swap(true) {
		return errors.New("player: Run called twice")
	}
	now := p.cfg.Clock.Now()
	for _, g := range p.bgws {
		if p.cfg.Outputs.Building == nil {
			break
		}
		if err := p.gatewayOnline(ctx, g, now); err != nil {
			return err
		}
	}
	for _, r := range p.robots {
		if p.cfg.Outputs.Robot == nil {
			break
		}
		if err := p.robotOnline(ctx, r, now); err != nil {
			return err
		}
	}
	run := Runner{Clock: p.cfg.Clock, Scheduler: p.sched, Emit: p.emit, Until: p.cfg.Until}
	err := run.Run(ctx)
	// Release what out-of-order faults still hold, with a context that
	// survives the run's end so the messages are not lost on Ctrl-C.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	p.flush(fctx)
	if err == nil {
		err = p.truthErr
	}
	return err
}

// emit handles one batch of due emissions.
func (p *Player) emit(ctx context.Context, batch []Due) error {
	for _, d := range batch {
		s := p.srcs[d.Source]
		var err error
		switch s.kind {
		case srcDevice:
			err = p.emitDevice(ctx, p.devices[s.idx], d)
		case srcMeter:
			err = p.emitMeter(ctx, p.meters[s.idx], d)
		case srcRoom:
			err = p.emitRoom(ctx, p.rooms[s.idx], d)
		case srcRobot:
			err = p.emitRobot(ctx, p.robots[s.idx], d)
		case srcRobotCheck:
			err = p.emitRobotCheck(ctx, p.checks[s.idx], d)
		case srcGateway:
			err = p.emitGateway(ctx, p.bgws[s.idx], d)
		}
		if err != nil {
			return err
		}
		if p.truthErr != nil {
			return p.truthErr
		}
		p.stats.emissions.Add(1)
		p.stats.simTime.Store(d.At.UnixNano())
	}
	return nil
}

// flush publishes what the sources' reorder buffers hold.
func (p *Player) flush(ctx context.Context) {
	for _, d := range p.devices {
		d.reorder.Flush(func(e *emission) { p.send(ctx, e) })
	}
	for _, m := range p.meters {
		m.reorder.Flush(func(e *emission) { p.send(ctx, e) })
	}
	for _, r := range p.rooms {
		r.reorder.Flush(func(e *emission) { p.send(ctx, e) })
	}
}

// emission is what one source sends at one time: one or more messages
// through one output, delivered together (and held back together by an
// out-of-order fault).
type emission struct {
	out     Output
	from    *Publisher
	msgs    []Message
	counter *atomic.Int64 // what each message counts as
	// counters, when set, count msgs one by one instead.
	counters []*atomic.Int64
	// alt, when set, is what a duplicate delivers instead of msgs (an
	// uplink heard through another gateway).
	alt  []Message
	sent int
}

// send publishes an emission's messages (alt, if set, the second time).
func (p *Player) send(ctx context.Context, e *emission) {
	msgs := e.msgs
	if e.sent > 0 && e.alt != nil {
		msgs = e.alt
	}
	e.sent++
	for i, m := range msgs {
		c := e.counter
		if i < len(e.counters) && e.counters[i] != nil {
			c = e.counters[i]
		}
		p.publish(ctx, e.out, e.from, m, c)
	}
}

// publish sends one message, counting it.
func (p *Player) publish(ctx context.Context, out Output, from *Publisher, m Message, counter *atomic.Int64) {
	if out == nil {
		p.stats.unrouted.Add(1)
		return
	}
	if err := out.Publish(ctx, from, m); err != nil {
		p.stats.pubErrors.Add(1)
		return
	}
	if counter != nil {
		counter.Add(1)
	}
}

// deliver carries out a Delivery for an emission through a source's
// reorder buffer, recording the fate in the truth records first (lost
// says why a dropped emission was lost).
func (p *Player) deliver(ctx context.Context, r *Reorder[*emission], d Delivery, lost string, e *emission, truth []Truth) {
	published := 1
	if d.Duplicate {
		published = 2
	}
	late := d.HoldBack && !r.holding
	if d.Drop {
		published = 0
	}
	for i := range truth {
		t := &truth[i]
		if t.Lost == "" && d.Drop {
			t.Lost = lost
		}
		if t.Lost != "" {
			t.Published = 0
		} else {
			t.Published = published
			t.Late = late
		}
		p.record(t)
	}
	if d.Drop {
		return
	}
	if d.Duplicate {
		p.stats.dup.Add(int64(len(truth)))
	}
	if late {
		p.stats.late.Add(int64(len(truth)))
	}
	r.Deliver(d, e, func(e *emission) { p.send(ctx, e) })
}

// record writes a truth record and counts its value.
func (p *Player) record(t *Truth) {
	p.stats.values.Add(1)
	if t.Lost != "" {
		p.stats.lost.Add(1)
	}
	if p.cfg.Truth == nil || p.truthErr != nil {
		return
	}
	if err := p.cfg.Truth.Record(t); err != nil {
		p.truthErr = fmt.Errorf("player: ground truth: %w", err)
	}
}

// cityMessage turns a city event into a message: validated, with QoS 1,
// the retain flag of its kind and the CloudEvents properties.
func cityMessage(t event.Topic, e event.Event) (Message, error) {
	bm, err := event.NewMessage(t, e)
	if err != nil {
		return Message{}, fmt.Errorf("player: %w", err)
	}
	return Message{Topic: bm.Topic, Payload: bm.Payload, QoS: bm.QoS, Retain: bm.Retain, ContentType: bm.ContentType, Properties: bm.Properties}, nil
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// roundTo rounds v to a multiple of res (no rounding for res 0).
func roundTo(v, res float64) float64 {
	if res <= 0 {
		return v
	}
	r := math.Round(v/res) * res
	// Trim the binary noise of the multiplication (0.1·3 = 0.30000000000000004)
	// so that the JSON carries the value as a person would write it.
	digits := max(0, -int(math.Floor(math.Log10(res)+1e-9)))
	p := math.Pow(10, float64(digits))
	return math.Round(r*p) / p
}
