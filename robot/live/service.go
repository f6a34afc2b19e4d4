package live

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
)

// Options are what a node gives the service beyond its configuration: the
// HTTP API's access hooks.
type Options struct {
	// Tenant, when set, says whom an HTTP request is for: a tenant's user
	// (all false) sees and acts on its tenant's incidents only, an
	// operator (all true) on all (twin.HandlerOptions.Tenant's contract).
	// Nil: every request sees all.
	Tenant func(r *http.Request) (tenant string, all bool)
	// User returns the authenticated user of an HTTP request, recorded as
	// who acted on an incident. Nil or "": the request's body must name
	// one (by), which suits only a node without authentication.
	User func(r *http.Request) string
}

// The service serves an HTTP API to administrators and to tenants' users.
var (
	_ service.HTTPService  = (*Service)(nil)
	_ service.AccessSetter = (*Service)(nil)
)

// Service is the robot service. Build it with New (or through the
// registry: kind "robot").
type Service struct {
	name string
	cfg  Config
	opts Options
	cur  atomic.Pointer[run]
	// processed is called after each event is handled, for tests and
	// benchmarks; nil: nothing.
	processed func(topic string)
}

// New returns the robot service called name with configuration c (checked
// by Check when it was not yet) and options o.
func New(name string, c Config, o Options) (*Service, error) {
	if c.routes == nil {
		if err := c.Check(); err != nil {
			return nil, fmt.Errorf("robot service %s: %w", name, err)
		}
	}
	return &Service{name: name, cfg: c, opts: o}, nil
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// SetOptions replaces the HTTP access hooks; call it before serving.
func (s *Service) SetOptions(o Options) { s.opts = o }

// SetAccess takes a node's access hooks (service.AccessSetter): the
// tenant of each HTTP request, so that a tenant's users see and act on
// their tenant's incidents, and its user, recorded as who acted. The node
// calls it before HTTPHandler and before the service runs.
func (s *Service) SetAccess(a service.Access) { s.SetOptions(Options{Tenant: a.Tenant, User: a.User}) }

// Topics of the service: where it reads and what it publishes.
const (
	// Commands: robot/{site}/incident/{id}/{action}.
	incidentFilter = "robot/+/incident/+/+"
	tenantPrefix   = "$tenant/"
)

// run is one run of the service: what Run built, which the HTTP API uses.
type run struct {
	s      *Service
	env    *service.Env
	book   *book
	pics   *pictureStore
	alarms *alarm.Manager

	trackers map[string]*tracked // robot id → its tracker
	progress *service.Debouncer[Progress]

	mu    sync.Mutex
	dirty map[string]bool     // incidents to publish
	last  map[string]Progress // robot id → latest progress
	wake  chan struct{}
}

// tracked is a robot being followed.
type tracked struct {
	id, site string
	route    *robot.Route
	tracker  *robot.Tracker
	patrol   time.Time // when the current patrol started (route_started)
	last     time.Time
}

// Progress is a robot's progress along its route, published retained on
// robot/{site}/robot/{robot}/progress.
type Progress struct {
	Time  time.Time `json:"time"`
	Robot string    `json:"robot"`
	Site  string    `json:"site"`
	Route string    `json:"route"`
	// PatrolStarted is when the current patrol started (its
	// route_started status), when seen.
	PatrolStarted time.Time `json:"patrol_started,omitzero"`
	robot.Position
	// Waypoints is every waypoint's outcome on this patrol.
	Waypoints []robot.WaypointStatus `json:"waypoints"`
	CorridorM float64                `json:"corridor_m"`
}

// anomalyKinds are the anomaly kinds of the robot service, one alarm type
// each.
var anomalyKinds = []robot.AnomalyKind{robot.AnomalySetpointOutOfRange, robot.AnomalyBollardWrongState, robot.AnomalyEscapeRouteBlocked,
	robot.AnomalyLightingWrongState, robot.AnomalyCheckFailed, robot.AnomalyOffCorridor}

func alarmType(k robot.AnomalyKind) string { return strings.ReplaceAll(string(k), "_", "-") }

// alarmKey is an incident's alarm: the robot for a corridor excursion,
// else the checked asset under the kind of thing the check inspects.
func alarmKey(site, robotID, asset string, kind robot.AnomalyKind, ck robot.CheckKind) alarm.Key {
	if kind == robot.AnomalyOffCorridor {
		return alarm.Key{Site: site, Kind: "robot", Asset: robotID, Type: alarmType(kind)}
	}
	k := "asset"
	switch ck {
	case robot.CheckHVACSetpoint:
		k = "room"
	case robot.CheckBollard:
		k = "bollard"
	case robot.CheckEscapeRoute:
		k = "escape-route"
	case robot.CheckLighting:
		k = "lighting"
	}
	return alarm.Key{Site: site, Kind: k, Asset: asset, Type: alarmType(kind)}
}

// alarmSeverity maps an incident's severity to an alarm's.
func alarmSeverity(s robot.Severity) alarm.Severity {
	switch s {
	case robot.SeverityCritical:
		return alarm.Critical
	case robot.SeverityHigh:
		return alarm.Major
	case robot.SeverityMedium:
		return alarm.Minor
	}
	return alarm.Warning
}

// noCommands is the bus the alarm manager gets: its subscriptions to the
// alarm command topics are not made, because a command on a robot alarm is
// an action on its incident and the service takes it there (so the alarm
// and the incident never disagree).
type noCommands struct{ bus.Bus }

func (noCommands) Subscribe(context.Context, string, byte, bus.Handler) error { return nil }

// Run runs the service until ctx ends.
func (s *Service) Run(ctx context.Context, env *service.Env) error {
	bk, err := openBook(env.State.Sub("incidents"), s.cfg.DedupWindow, s.cfg.Owners, s.name, s.cfg.MaxPicturesPerIncident)
	if err != nil {
		return err
	}
	pics, err := openPictures(env.State.Sub("pictures"), s.cfg.Pictures, env.Now)
	if err != nil {
		return err
	}
	types := make([]string, len(anomalyKinds))
	for i, k := range anomalyKinds {
		types[i] = alarmType(k)
	}
	mgr, err := alarm.NewManager(alarm.Options{Bus: noCommands{env.Bus}, State: env.State.Sub("alarm"), Originator: s.name,
		Types: types, Logger: env.Log, Now: env.Now})
	if err != nil {
		return err
	}
	r := &run{s: s, env: env, book: bk, pics: pics, alarms: mgr, trackers: map[string]*tracked{},
		dirty: map[string]bool{}, last: map[string]Progress{}, wake: make(chan struct{}, 1)}
	for _, rc := range s.cfg.Robots {
		rt := s.cfg.routes[rc.ID]
		tr, err := robot.NewTracker(rt, robot.TrackerConfig{CorridorM: rc.CorridorM})
		if err != nil {
			return fmt.Errorf("robot %s: %w", rc.ID, err)
		}
		r.trackers[rc.ID] = &tracked{id: rc.ID, site: rc.Site, route: rt, tracker: tr}
	}
	r.progress = service.NewDebouncer(250*time.Millisecond, r.publishProgress)
	// Publish again what may not have gone out before a stop.
	for _, inc := range bk.list(func(i *Incident) bool { return !i.Final() }) {
		r.dirty[inc.ID] = true
	}
	for _, id := range bk.gone() {
		r.dirty[id] = true
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { mgr.Run(ctx) })
	wg.Go(func() { r.progress.Run(ctx) })
	wg.Go(func() { r.publishLoop(ctx) })
	wg.Go(func() { r.housekeeping(ctx) })
	select {
	case <-mgr.Ready():
	case <-ctx.Done():
		return nil
	}

	// The handlers hand the messages to one goroutine, in order.
	in := make(chan bus.Message, 4096)
	enqueue := func(hctx context.Context, m bus.Message) {
		select {
		case in <- m:
		case <-ctx.Done():
		case <-hctx.Done():
		}
	}
	for _, f := range s.filters(types) {
		if err := env.Bus.Subscribe(ctx, f, 1, enqueue); err != nil {
			return fmt.Errorf("robot service: subscribe %s: %w", f, err)
		}
	}
	s.cur.Store(r)
	defer s.cur.CompareAndSwap(r, nil)
	env.Running()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-in:
			r.handle(ctx, m)
			if s.processed != nil {
				s.processed(m.Topic)
			}
		}
	}
}

// filters are the service's subscriptions, on one bus client: they must not
// overlap, since a bus client holds one subscription per filter and may
// deliver a message matching two of them once (bus.Bus).
func (s *Service) filters(alarmTypes []string) []string {
	filters := []string{
		event.Filter(event.DomainRobot, "", event.AssetRobot, "", event.EventPosition),
		event.Filter(event.DomainRobot, "", event.AssetRobot, "", event.EventCheck),
		event.Filter(event.DomainRobot, "", event.AssetRobot, "", event.EventPicture),
		event.Filter(event.DomainRobot, "", event.AssetRobot, "", event.EventStatus),
		incidentFilter,
	}
	for _, t := range alarmTypes {
		filters = append(filters, "alarm/+/+/+/"+t+"/+")
	}
	if s.cfg.TenantCommands {
		filters = append(filters, tenantPrefix+"+/"+incidentFilter)
	}
	return filters
}

// handle dispatches one message.
func (r *run) handle(ctx context.Context, m bus.Message) {
	switch {
	case strings.HasPrefix(m.Topic, "alarm/"):
		r.alarmCommand(ctx, m)
		return
	case strings.HasPrefix(m.Topic, tenantPrefix):
		rest := strings.TrimPrefix(m.Topic, tenantPrefix)
		i := strings.IndexByte(rest, '/')
		if i > 0 {
			r.command(ctx, m, rest[i+1:], rest[:i])
		}
		return
	}
	parts := strings.Split(m.Topic, "/")
	if len(parts) == 5 && parts[0] == "robot" && parts[2] == "incident" {
		if parts[4] != "state" {
			r.command(ctx, m, m.Topic, "")
		}
		return
	}
	t, e, err := event.ReadMessage(m)
	if err != nil {
		r.env.Error(fmt.Errorf("robot service: %s: %w", m.Topic, err))
		return
	}
	tr := r.trackers[t.Asset]
	if tr == nil || tr.site != t.Site {
		return // a robot this service does not follow
	}
	switch ev := e.(type) {
	case *event.Position:
		r.position(ctx, tr, ev)
	case *event.Check:
		r.check(ctx, tr, ev)
	case *event.Picture:
		r.pics.external(ev.Hash, ev.URL)
	case *event.Status:
		// A patrol starts at route_started; after docked the next fix is
		// placed afresh (at the dock, the route's start).
		switch {
		case ev.Reason == event.ReasonRouteStarted && ev.Time.After(tr.patrol):
			tr.patrol = ev.Time
			tr.tracker.Reset()
			tr.last = time.Time{}
		case ev.Reason == event.ReasonDocked && ev.Time.After(tr.last):
			tr.tracker.Reset()
			tr.last = ev.Time
		}
	}
}

// position follows a fix: progress along the route (fixes in order; an
// older one than the last is left out of the progress), and, from the fix
// alone, whether the robot is outside its corridor.
func (r *run) position(ctx context.Context, tr *tracked, p *event.Position) {
	if !p.Time.Before(tr.last) {
		pos, err := tr.tracker.Update(robot.Fix{Time: p.Time, Lat: p.Lat, Lon: p.Lon})
		if err == nil {
			tr.last = p.Time
			pr := Progress{Time: p.Time, Robot: tr.id, Site: tr.site, Route: tr.route.ID, PatrolStarted: tr.patrol,
				Position: pos, Waypoints: tr.tracker.Waypoints(), CorridorM: tr.tracker.CorridorM()}
			r.mu.Lock()
			r.last[tr.id] = pr
			r.mu.Unlock()
			r.progress.Put(tr.id, pr)
		}
	}
	seg, dev := tr.tracker.Nearest(p.Lat, p.Lon)
	if seg < 0 || math.Abs(dev) <= tr.tracker.CorridorM() {
		return
	}
	from, to := tr.route.Waypoints[seg].ID, tr.route.Waypoints[seg+1].ID
	a := robot.Anomaly{Time: p.Time, Kind: robot.AnomalyOffCorridor, Severity: robot.SeverityMedium, Asset: tr.id, Waypoint: from,
		Observed: fmt.Sprintf("%.1f m", math.Abs(dev)), Expected: fmt.Sprintf("≤ %.1f m", tr.tracker.CorridorM()),
		Reason: fmt.Sprintf("%s is %.1f m from its route between %s and %s (corridor %.1f m)", tr.id, math.Abs(dev), from, to, tr.tracker.CorridorM())}
	r.record(ctx, finding{Anomaly: a, Site: tr.site, Robot: tr.id, Dedup: "corridor/" + tr.site + "/" + tr.id})
}

// check evaluates a check against the route (the robot's own verdict is
// not trusted) and records an anomaly.
func (r *run) check(ctx context.Context, tr *tracked, c *event.Check) {
	ev, err := robot.Evaluate(tr.route, robot.Observation{Time: c.Time, Check: c.Check, Waypoint: c.Waypoint, Value: c.Observed, Picture: c.Picture, Note: c.Note})
	if err != nil {
		r.env.Error(fmt.Errorf("robot service: check of %s: %w", tr.id, err))
		return
	}
	if ev.OK {
		return
	}
	f := finding{Anomaly: *ev.Anomaly, Site: tr.site, Robot: tr.id, Dedup: "check/" + tr.site + "/" + tr.id + "/" + c.Check, CheckKind: ev.Kind}
	if f.Picture != "" {
		f.PictureURL = r.s.pictureURL(f.Picture)
	}
	r.record(ctx, f)
}

// record files a finding and raises its incident's alarm.
func (r *run) record(ctx context.Context, f finding) {
	inc, outcome, v, err := r.book.record(f)
	if err != nil {
		r.env.Error(err)
		return
	}
	if v != service.New {
		return
	}
	r.changed(inc.ID)
	if outcome == outcomeLate || !inc.State.Open() {
		return
	}
	key := alarmKey(f.Site, f.Robot, f.Asset, f.Kind, f.checkKind())
	data := map[string]any{"incident": inc.ID, "observed": f.Observed, "expected": f.Expected, "waypoint": f.Waypoint}
	if f.Check != "" {
		data["check"] = f.Check
	}
	if f.PictureURL != "" {
		data["picture"] = f.PictureURL
	}
	_, _, err = r.alarms.Raise(ctx, alarm.Condition{Key: key, Severity: alarmSeverity(f.Severity), Category: "facility",
		SubCategory: string(f.Kind), Description: f.Reason, Data: data, Time: f.Time, Tenant: inc.Tenant})
	if err != nil {
		r.env.Error(fmt.Errorf("robot service: alarm of incident %s: %w", inc.ID, err))
	}
}

// act carries out a person's action and mirrors it on the alarm.
func (r *run) act(ctx context.Context, id, action, by, note string) (*Incident, string, error) {
	inc, from, res, err := r.book.act(id, action, by, note, r.env.Now())
	if err != nil || res == resultUnchanged {
		return inc, res, err
	}
	r.changed(id)
	r.env.Log.Info("incident action", "incident", id, "action", action, "by", by, "from", from, "to", inc.State)
	key := alarmKey(inc.Site, inc.Robot, inc.Asset, inc.Kind, checkKindOf(r.trackers[inc.Robot], inc.Check))
	switch inc.State {
	case robot.StateAcknowledged, robot.StateInProgress:
		if from == robot.StateResolved { // reopened: the condition is back
			_, _, err = r.alarms.Raise(ctx, alarm.Condition{Key: key, Severity: alarmSeverity(inc.Severity), Category: "facility",
				SubCategory: string(inc.Kind), Description: inc.Reason, Data: map[string]any{"incident": inc.ID}, Time: inc.UpdatedAt, Tenant: inc.Tenant})
		}
		if err == nil {
			_, _, err = r.alarms.Acknowledge(ctx, key, by, note)
		}
	case robot.StateResolved, robot.StateClosed, robot.StateCancelled:
		// The person who resolves has seen it: the alarm is cleared and
		// acknowledged, so it closes and leaves its topic.
		if _, _, err = r.alarms.ClearBy(ctx, key, by, note); err == nil || errors.Is(err, alarm.ErrNotFound) {
			_, _, err = r.alarms.Acknowledge(ctx, key, by, note)
		}
	}
	if err != nil && !errors.Is(err, alarm.ErrNotFound) {
		r.env.Error(fmt.Errorf("robot service: alarm of incident %s: %w", id, err))
	}
	return inc, res, nil
}

// checkKindOf returns the kind of the route's check id.
func checkKindOf(tr *tracked, check string) robot.CheckKind {
	if tr == nil || check == "" {
		return ""
	}
	c, _, ok := tr.route.CheckByID(check)
	if !ok {
		return ""
	}
	return c.Kind
}

// changed marks an incident to publish.
func (r *run) changed(id string) {
	r.mu.Lock()
	r.dirty[id] = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// IncidentTopic is the retained topic of an incident's state.
func IncidentTopic(site, id string) string { return "robot/" + site + "/incident/" + id + "/state" }

// ProgressTopic is the retained topic of a robot's progress.
func ProgressTopic(site, robotID string) string {
	return "robot/" + site + "/robot/" + robotID + "/progress"
}

// publishLoop publishes each changed incident's latest state, retained;
// a closed or cancelled incident's final state goes out once, not retained,
// and its retained message is removed. A failed publish is retried.
func (r *run) publishLoop(ctx context.Context) {
	var retry service.Retry
	defer retry.Stop()
	for {
		retry.Done(r.publish(ctx))
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			r.publish(fctx)
			cancel()
			return
		case <-r.wake:
		case <-retry.C():
		}
	}
}

func (r *run) publish(ctx context.Context) bool {
	r.mu.Lock()
	ids := make([]string, 0, len(r.dirty))
	for id := range r.dirty {
		ids = append(ids, id)
	}
	clear(r.dirty)
	r.mu.Unlock()
	ok := true
	for _, id := range ids {
		inc, found := r.book.get(id)
		if !found {
			continue
		}
		payload, err := json.Marshal(inc)
		if err != nil {
			continue
		}
		topic := IncidentTopic(inc.Site, inc.ID)
		if inc.Final() {
			err = r.env.Bus.Publish(ctx, bus.Message{Topic: topic, Payload: payload, QoS: 1, ContentType: "application/json"})
			if err == nil {
				err = r.env.Bus.Publish(ctx, bus.Message{Topic: topic, QoS: 1, Retain: true})
			}
			if err == nil {
				err = r.book.forgetGone(id)
			}
		} else {
			err = r.env.Bus.Publish(ctx, bus.Message{Topic: topic, Payload: payload, QoS: 1, Retain: true, ContentType: "application/json"})
		}
		if err != nil {
			r.env.Log.Warn("robot service: publish incident", "incident", id, "err", err)
			r.mu.Lock()
			r.dirty[id] = true
			r.mu.Unlock()
			ok = false
		}
	}
	return ok
}

func (r *run) publishProgress(ctx context.Context, robotID string, p Progress) {
	payload, err := json.Marshal(p)
	if err != nil {
		return
	}
	if err := r.env.Bus.Publish(ctx, bus.Message{Topic: ProgressTopic(p.Site, robotID), Payload: payload, QoS: 1, Retain: true, ContentType: "application/json"}); err != nil {
		r.env.Error(fmt.Errorf("robot service: progress of %s: %w", robotID, err))
	}
}

// lastProgress returns every followed robot's latest progress.
func (r *run) lastProgress() []Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Progress, 0, len(r.last))
	for _, p := range r.last {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Robot < out[j].Robot })
	return out
}

// Command is the body of an incident command (MQTT) or action (HTTP).
type Command struct {
	// By is who acts; over HTTP the authenticated user replaces it.
	By   string `json:"by"`
	Note string `json:"note,omitempty"`
}

// Reply answers a command that asked for one (MQTT 5 response topic).
type Reply struct {
	OK       bool      `json:"ok"`
	Result   string    `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
	Incident *Incident `json:"incident,omitempty"`
	// Alarm is the incident's alarm after a command on the alarm, as the
	// alarm board wants it (alarm.Reply).
	Alarm *alarm.Alarm `json:"alarm,omitempty"`
}

func decodeCommand(p []byte) (Command, error) {
	var c Command
	if len(bytes.TrimSpace(p)) == 0 {
		return c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("command body: %w", err)
	}
	return c, nil
}

// decodeAlarmCommand reads the body of a command on an alarm: a Command,
// or the alarm board's (alarm.Command: by, comment), the comment as the
// note.
func decodeAlarmCommand(p []byte) (Command, error) {
	var c struct {
		By      string `json:"by"`
		Note    string `json:"note,omitempty"`
		Comment string `json:"comment,omitempty"`
	}
	if len(bytes.TrimSpace(p)) == 0 {
		return Command{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Command{}, fmt.Errorf("command body: %w", err)
	}
	return Command{By: c.By, Note: cmp.Or(c.Note, c.Comment)}, nil
}

// command carries out robot/{site}/incident/{id}/{action}; tenant is the
// namespace it came from ("" outside any), which must own the incident.
func (r *run) command(ctx context.Context, m bus.Message, topic, tenant string) {
	if m.Retain {
		r.env.Log.Warn("robot service: ignoring a retained command; publish commands without the retain flag", "topic", m.Topic)
		return
	}
	p := strings.Split(topic, "/")
	if len(p) != 5 {
		return
	}
	site, id, action := p[1], p[3], p[4]
	var reply Reply
	c, err := decodeCommand(m.Payload)
	if err == nil {
		if inc, ok := r.book.get(id); !ok || inc.Site != site || tenant != "" && inc.Tenant != tenant {
			err = fmt.Errorf("incident %s: %w", id, errNoIncident)
		}
	}
	if err == nil {
		var inc *Incident
		inc, reply.Result, err = r.act(ctx, id, action, c.By, c.Note)
		reply.Incident = inc
	}
	r.reply(ctx, m, tenant, reply, err)
}

func (r *run) reply(ctx context.Context, m bus.Message, tenant string, reply Reply, err error) {
	if err != nil {
		reply = Reply{Error: err.Error()}
		r.env.Log.Info("robot service: command refused", "topic", m.Topic, "err", err)
	} else {
		reply.OK = true
		if reply.Result == resultDone && reply.Incident != nil {
			reply.Result = string(reply.Incident.State)
		}
	}
	if m.ResponseTopic == "" {
		return
	}
	body, _ := json.Marshal(reply)
	topic := m.ResponseTopic
	if tenant != "" {
		topic = tenantPrefix + tenant + "/" + topic
	}
	if err := r.env.Bus.Publish(ctx, bus.Message{Topic: topic, Payload: body, QoS: 1, ContentType: "application/json", CorrelationData: m.CorrelationData}); err != nil {
		r.env.Log.Warn("robot service: reply", "topic", topic, "err", err)
	}
}

// alarmCommand takes alarm/{site}/{kind}/{asset}/{type}/{ack|clear} for
// a robot alarm as the action on its incident: ack acknowledges it, clear
// resolves it.
func (r *run) alarmCommand(ctx context.Context, m bus.Message) {
	if m.Retain {
		return
	}
	p := strings.Split(m.Topic, "/")
	if len(p) != 6 || p[5] != alarm.VerbAck && p[5] != alarm.VerbClear {
		return // the alarm itself, or not a command
	}
	kind := robot.AnomalyKind(strings.ReplaceAll(p[4], "-", "_"))
	site, asset := p[1], p[3]
	var reply Reply
	c, err := decodeAlarmCommand(m.Payload)
	var id string
	if err == nil {
		var ok bool
		if kind == robot.AnomalyOffCorridor && p[2] != "robot" {
			ok = false
		} else {
			id, ok = r.book.byKey(site, asset, kind)
		}
		if !ok {
			err = fmt.Errorf("alarm %s: %w", strings.Join(p[1:5], "/"), errNoIncident)
		}
	}
	if err == nil {
		action := robot.ActionAcknowledge
		if p[5] == alarm.VerbClear {
			action = robot.ActionResolve
		}
		if inc, _ := r.book.get(id); action == robot.ActionAcknowledge && inc != nil && inc.State != robot.StateNew {
			reply.Result, reply.Incident = resultUnchanged, inc
		} else {
			reply.Incident, reply.Result, err = r.act(ctx, id, action, c.By, c.Note)
		}
	}
	if err == nil {
		if a, ok := r.alarms.Get(alarm.Key{Site: site, Kind: p[2], Asset: asset, Type: p[4]}); ok {
			reply.Alarm = &a
		}
	}
	r.reply(ctx, m, "", reply, err)
}
