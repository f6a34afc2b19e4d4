package alarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"strings"
	"sync"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/service"
)

// Defaults of Options.
const (
	DefaultPrefix      = "alarm"
	DefaultRetention   = 90 * 24 * time.Hour
	DefaultDedupWindow = 24 * time.Hour
)

// Options configure a Manager.
type Options struct {
	// Bus is where the alarms are published and the commands received;
	// State where they are kept (a namespace of the service's own:
	// env.State.Sub("alarm")). Both required.
	Bus   bus.Bus
	State service.State
	// Originator is the name of the service whose alarms these are.
	// Required.
	Originator string
	// Types are the alarm types this Manager owns: it subscribes to the
	// command topics of these types only (alarm/+/+/+/{type}/+, one filter
	// each) and answers commands for them. Empty: it subscribes to every
	// command, and answers those of alarms it does not hold only when they
	// ask for a reply. Each must be an id and not a city event name.
	Types []string
	// Prefix is the first level of the alarm topics (default "alarm").
	Prefix string
	// Retention is how long closed alarms stay in the history (default
	// 90 days).
	Retention time.Duration
	// DedupWindow is how far behind a key's newest raise an event time is
	// still told apart from a redelivery (default 24 h).
	DedupWindow time.Duration
	// Now is the clock (default time.Now); Logger the logger (default
	// slog.Default()).
	Now    func() time.Time
	Logger *slog.Logger
}

// Condition is what a service raises: an alarm of Key with the given
// severity and details.
type Condition struct {
	Key
	Severity    Severity
	Category    string
	SubCategory string
	Description string
	// Tenant is the tenant of the alarm's asset (campus.Asset.Tenant), ""
	// for none; optional.
	Tenant string
	// Data are the details (values, thresholds): anything that encodes as
	// a JSON object, or a json.RawMessage.
	Data any
	// Time is the event time of the observation that raises it; zero: now.
	Time time.Time
}

// Manager is the alarm lifecycle of one service: Raise and Clear for the
// service, Acknowledge and ClearBy for people (through the Go API or the
// command topics), the alarms kept in the service's State and published
// retained. Every change is applied under one lock and written durably
// before the call returns, so concurrent raises of one key make one alarm;
// the publishing of the retained messages follows in Run, which publishes
// each changed alarm's latest state (so a retained message never goes
// back to an older state). It is safe for concurrent use.
type Manager struct {
	o     Options
	dedup *service.Dedup
	types map[string]bool
	wake  chan struct{}
	cmds  chan bus.Message
	ready chan struct{}

	mu struct {
		sync.Mutex
		cur   map[Key]*Alarm // open alarms: active, or cleared and not acknowledged
		meta  map[Key]meta
		gone  map[Key]bool // closed alarms whose retained message is still to be removed
		dirty map[Key]bool // alarms to publish
	}
}

// meta is what a Manager keeps per key beyond its open alarm.
type meta struct {
	// Seq counts the key's alarms; LastClear is the event time of the
	// latest clear (Unix nanoseconds): raises at or before it are stale.
	Seq       int   `json:"seq"`
	LastClear int64 `json:"lastClear"`
}

// State keys, under Options.State.
const (
	keyCur  = "cur/"  // + key: an open alarm
	keyMeta = "meta/" // + key: its meta
	keyGone = "gone/" // + key: retained message to remove
	keyHist = "hist/" // + 16 hex digits of the closing time + "/" + id: a closed alarm
)

// NewManager returns a Manager with options o, loading the alarms that
// o.State holds.
func NewManager(o Options) (*Manager, error) {
	if o.Bus == nil || o.State == nil || o.Originator == "" {
		return nil, errors.New("alarm: a manager needs Bus, State and Originator")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	dd, err := service.NewDedup(o.State.Sub("seen"), o.DedupWindow)
	if err != nil {
		return nil, fmt.Errorf("alarm: %w", err)
	}
	m := &Manager{o: o, dedup: dd, wake: make(chan struct{}, 1), cmds: make(chan bus.Message, 256), ready: make(chan struct{})}
	if len(o.Types) > 0 {
		m.types = make(map[string]bool)
		for _, t := range o.Types {
			if err := (Key{Site: "s", Kind: "k", Asset: "a", Type: t}).Check(); err != nil {
				return nil, fmt.Errorf("alarm: type %q: %w", t, err)
			}
			m.types[t] = true
		}
	}
	m.mu.cur = make(map[Key]*Alarm)
	m.mu.meta = make(map[Key]meta)
	m.mu.gone = make(map[Key]bool)
	m.mu.dirty = make(map[Key]bool)
	load := func(prefix string, fn func(k Key, v []byte) error) error {
		return o.State.Scan(prefix, func(s string, v []byte) error {
			k, err := ParseKey(strings.TrimPrefix(s, prefix))
			if err != nil {
				o.Logger.Warn("alarm: skipping a bad state key", "key", s, "err", err)
				return nil
			}
			return fn(k, v)
		})
	}
	err = errors.Join(
		load(keyCur, func(k Key, v []byte) error {
			a := new(Alarm)
			if err := json.Unmarshal(v, a); err != nil {
				return fmt.Errorf("alarm %s: %w", k, err)
			}
			m.mu.cur[k] = a
			m.mu.dirty[k] = true // published again at start: the retained copy may be older
			return nil
		}),
		load(keyMeta, func(k Key, v []byte) error {
			var mt meta
			if err := json.Unmarshal(v, &mt); err != nil {
				return fmt.Errorf("alarm %s: meta: %w", k, err)
			}
			m.mu.meta[k] = mt
			return nil
		}),
		load(keyGone, func(k Key, _ []byte) error {
			m.mu.gone[k] = true
			m.mu.dirty[k] = true
			return nil
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("alarm: load: %w", err)
	}
	return m, nil
}

// Ready is closed once Run has subscribed to the command topics.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// change is the outcome of one lifecycle step, applied to the state and
// then to the Manager's memory.
type change struct {
	key    Key
	cur    *Alarm // the open alarm after the step; nil: none
	closed *Alarm // an alarm that went to the history
	meta   *meta
}

// write adds c's writes to b.
func (m *Manager) write(b *service.Batch, c *change) error {
	st, ks := m.o.State, c.key.String()
	if c.cur != nil {
		v, err := json.Marshal(c.cur)
		if err != nil {
			return err
		}
		b.Set(st, keyCur+ks, v)
		b.Delete(st, keyGone+ks)
	}
	if c.closed != nil {
		v, err := json.Marshal(c.closed)
		if err != nil {
			return err
		}
		b.Set(st, histKey(c.closed), v)
		if c.cur == nil {
			b.Delete(st, keyCur+ks)
			b.Set(st, keyGone+ks, nil)
		}
	}
	if c.meta != nil {
		v, _ := json.Marshal(c.meta)
		b.Set(st, keyMeta+ks, v)
	}
	return nil
}

// commit records c in memory, after its writes were applied; m.mu held.
func (m *Manager) commit(c *change) {
	if c.meta != nil {
		m.mu.meta[c.key] = *c.meta
	}
	if c.cur != nil {
		m.mu.cur[c.key] = c.cur
		delete(m.mu.gone, c.key)
	} else if c.closed != nil {
		delete(m.mu.cur, c.key)
		m.mu.gone[c.key] = true
	}
	m.mu.dirty[c.key] = true
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// apply writes c durably and commits it; m.mu held.
func (m *Manager) apply(c *change) error {
	var b service.Batch
	if err := m.write(&b, c); err != nil {
		return fmt.Errorf("alarm %s: %w", c.key, err)
	}
	if err := m.o.State.Apply(&b); err != nil {
		return fmt.Errorf("alarm %s: %w", c.key, err)
	}
	m.commit(c)
	return nil
}

func histKey(a *Alarm) string {
	return fmt.Sprintf("%s%016x/%s", keyHist, uint64(a.DateClosed.UnixNano()), a.ID)
}

// Raise raises the alarm of c.Key: it opens one when none is active, and
// otherwise updates the active one (severity, details, count, last time).
// A raise whose event time was applied already (a redelivery) is a
// Duplicate, one at or before the key's latest clear is Stale; neither
// changes anything. It returns the alarm after the raise.
func (m *Manager) Raise(ctx context.Context, c Condition) (Alarm, Result, error) {
	if err := c.Key.Check(); err != nil {
		return Alarm{}, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !c.Severity.Valid() {
		return Alarm{}, "", fmt.Errorf("%w: severity %q", ErrInvalid, c.Severity)
	}
	var data json.RawMessage
	if c.Data != nil {
		raw, err := json.Marshal(c.Data)
		if err != nil {
			return Alarm{}, "", fmt.Errorf("%w: data: %w", ErrInvalid, err)
		}
		if len(raw) == 0 || raw[0] != '{' {
			return Alarm{}, "", fmt.Errorf("%w: data is not a JSON object", ErrInvalid)
		}
		data = raw
	}
	now := m.o.Now().UTC()
	at := c.Time.UTC()
	if c.Time.IsZero() {
		at = now
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.mu.meta[c.Key]
	if at.UnixNano() <= mt.LastClear {
		return m.current(c.Key), Stale, nil
	}
	var ch *change
	res := Updated
	v, err := m.dedup.Apply(c.Key.String(), at, func(b *service.Batch) error {
		cur := m.mu.cur[c.Key]
		ch = &change{key: c.Key}
		if cur != nil && cur.Status == Active {
			a := *cur
			a.Audit = slices.Clone(cur.Audit)
			a.Count++
			if !at.Before(a.LastRaised) {
				if a.Severity != c.Severity {
					a.Audit = append(a.Audit, AuditEntry{Time: now, Action: ActionSeverity, By: m.o.Originator, Comment: string(a.Severity) + " → " + string(c.Severity)})
				}
				a.Severity, a.Description, a.Data = c.Severity, c.Description, data
				a.Category, a.SubCategory = c.Category, c.SubCategory
				if c.Tenant != "" {
					a.Tenant = c.Tenant
				}
				a.LastRaised = at
			}
			if at.Before(a.ValidFrom) {
				a.ValidFrom = at
			}
			a.DateModified = now
			ch.cur = &a
			return m.write(b, ch)
		}
		res = Opened
		if cur != nil { // cleared, not acknowledged: replaced by the new one
			old := *cur
			old.DateClosed, old.DateModified = now, now
			old.Audit = append(slices.Clone(cur.Audit), AuditEntry{Time: now, Action: ActionReplaced, By: m.o.Originator})
			ch.closed = &old
		}
		mt.Seq++
		ch.meta = &mt
		ch.cur = &Alarm{
			ID: fmt.Sprintf("alarm:%s:%s:%s:%s:%d", c.Site, c.Kind, c.Asset, c.Type, mt.Seq), Key: c.Key,
			Severity: c.Severity, Category: c.Category, SubCategory: c.SubCategory,
			Status: Active, Originator: m.o.Originator, Tenant: c.Tenant, Description: c.Description, Data: data,
			DateIssued: now, ValidFrom: at, DateModified: now, LastRaised: at, Count: 1,
			Audit: []AuditEntry{{Time: now, Action: ActionRaised, By: m.o.Originator, Comment: string(c.Severity)}},
		}
		return m.write(b, ch)
	})
	if err != nil {
		return Alarm{}, "", fmt.Errorf("alarm %s: %w", c.Key, err)
	}
	switch v {
	case service.Duplicate:
		return m.current(c.Key), Duplicate, nil
	case service.Stale:
		return m.current(c.Key), Stale, nil
	}
	m.commit(ch)
	return *ch.cur, res, nil
}

// current returns a copy of key's open alarm, the zero Alarm for none; m.mu
// held.
func (m *Manager) current(k Key) Alarm {
	if a := m.mu.cur[k]; a != nil {
		c := *a
		c.Audit = slices.Clone(a.Audit)
		return c
	}
	return Alarm{}
}

// Clear clears key's active alarm for its service: the condition ended at
// event time at (zero: now). A clear older than the alarm's latest raise is
// Stale (a newer raise says the condition holds); with no active alarm it
// is Unchanged, but remembered, so that a raise older than it arriving
// later is Stale. An acknowledged alarm that is cleared is closed.
func (m *Manager) Clear(ctx context.Context, key Key, at time.Time, comment string) (Alarm, Result, error) {
	if err := key.Check(); err != nil {
		return Alarm{}, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	now := m.o.Now().UTC()
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.mu.meta[key]
	switch {
	case at.UnixNano() == mt.LastClear:
		return m.current(key), Duplicate, nil
	case at.UnixNano() < mt.LastClear:
		return m.current(key), Stale, nil
	}
	cur := m.mu.cur[key]
	if cur != nil && cur.Status == Active && at.Before(cur.LastRaised) {
		return m.current(key), Stale, nil
	}
	mt.LastClear = at.UnixNano()
	ch := &change{key: key, meta: &mt}
	res := Unchanged
	if cur != nil && cur.Status == Active {
		res = ClearedNow
		ch.cur, ch.closed = m.cleared(cur, at, now, m.o.Originator, comment)
	}
	if err := m.apply(ch); err != nil {
		return Alarm{}, "", err
	}
	return m.result(ch), res, nil
}

// cleared returns cur cleared at event time at by by: the open alarm, or
// the closed one when it was acknowledged.
func (m *Manager) cleared(cur *Alarm, at, now time.Time, by, comment string) (open, closed *Alarm) {
	a := *cur
	a.Audit = append(slices.Clone(cur.Audit), AuditEntry{Time: now, Action: ActionCleared, By: by, Comment: comment})
	a.Status, a.ValidTo, a.ClearedBy, a.ClearedAt, a.DateModified = Cleared, at, by, now, now
	if a.Acknowledged {
		return nil, m.close(&a, now, by)
	}
	return &a, nil
}

func (m *Manager) close(a *Alarm, now time.Time, by string) *Alarm {
	a.DateClosed = now
	a.Audit = append(a.Audit, AuditEntry{Time: now, Action: ActionClosed, By: by})
	return a
}

// result returns the alarm ch leaves: the open one, or the closed one.
func (m *Manager) result(ch *change) Alarm {
	switch {
	case ch.cur != nil:
		return *ch.cur
	case ch.closed != nil:
		return *ch.closed
	}
	return Alarm{}
}

// Acknowledge records that the person by acknowledged key's open alarm,
// with an optional comment. Acknowledging it again is Unchanged. A cleared
// alarm that is acknowledged is closed.
func (m *Manager) Acknowledge(ctx context.Context, key Key, by, comment string) (Alarm, Result, error) {
	if by == "" {
		return Alarm{}, "", fmt.Errorf("%w: who acknowledges is required", ErrInvalid)
	}
	now := m.o.Now().UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.mu.cur[key]
	if cur == nil {
		return Alarm{}, "", fmt.Errorf("alarm %s: %w", key, ErrNotFound)
	}
	if cur.Acknowledged {
		return m.current(key), Unchanged, nil
	}
	a := *cur
	a.Audit = append(slices.Clone(cur.Audit), AuditEntry{Time: now, Action: ActionAcknowledged, By: by, Comment: comment})
	a.Acknowledged, a.AcknowledgedBy, a.AcknowledgedAt, a.DateModified = true, by, now, now
	ch := &change{key: key, cur: &a}
	if a.Status == Cleared {
		ch.cur, ch.closed = nil, m.close(&a, now, by)
	}
	if err := m.apply(ch); err != nil {
		return Alarm{}, "", err
	}
	return m.result(ch), Acknowledged, nil
}

// ClearBy clears key's active alarm for the person by (who judged the
// condition over). Raises with event times before now are then Stale; a
// later raise opens a new alarm. Clearing a cleared alarm is Unchanged. An
// acknowledged alarm that is cleared is closed.
func (m *Manager) ClearBy(ctx context.Context, key Key, by, comment string) (Alarm, Result, error) {
	if by == "" {
		return Alarm{}, "", fmt.Errorf("%w: who clears is required", ErrInvalid)
	}
	now := m.o.Now().UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.mu.cur[key]
	if cur == nil {
		return Alarm{}, "", fmt.Errorf("alarm %s: %w", key, ErrNotFound)
	}
	if cur.Status == Cleared {
		return m.current(key), Unchanged, nil
	}
	mt := m.mu.meta[key]
	mt.LastClear = max(mt.LastClear, now.UnixNano())
	ch := &change{key: key, meta: &mt}
	ch.cur, ch.closed = m.cleared(cur, now, now, by, comment)
	if err := m.apply(ch); err != nil {
		return Alarm{}, "", err
	}
	return m.result(ch), ClearedNow, nil
}

// Get returns key's open alarm.
func (m *Manager) Get(key Key) (Alarm, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.mu.cur[key]
	return m.current(key), ok
}

// Open returns every open alarm (active, or cleared and not acknowledged),
// ordered by key.
func (m *Manager) Open() []Alarm {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Alarm, 0, len(m.mu.cur))
	for k := range m.mu.cur {
		out = append(out, m.current(k))
	}
	slices.SortFunc(out, func(a, b Alarm) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out
}

// History returns the closed alarms closed at or after since, oldest first.
func (m *Manager) History(since time.Time) ([]Alarm, error) {
	var out []Alarm
	lo := ""
	if since.Unix() > 0 {
		lo = fmt.Sprintf("%016x", uint64(since.UnixNano()))
	}
	err := m.o.State.Scan(keyHist, func(k string, v []byte) error {
		if k[len(keyHist):] < lo {
			return nil
		}
		var a Alarm
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("alarm history %s: %w", k, err)
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// Prune removes the closed alarms older than the retention, and returns how
// many it removed. Run calls it every hour.
func (m *Manager) Prune() (int, error) {
	limit := fmt.Sprintf("%016x", uint64(m.o.Now().Add(-m.o.Retention).UnixNano()))
	var b service.Batch
	err := m.o.State.Scan(keyHist, func(k string, _ []byte) error {
		if len(k) >= len(keyHist)+16 && k[len(keyHist):len(keyHist)+16] >= limit {
			return service.ErrStop
		}
		b.Delete(m.o.State, k)
		return nil
	})
	if err == nil {
		err = m.o.State.Apply(&b)
	}
	if err != nil {
		return 0, fmt.Errorf("alarm: prune history: %w", err)
	}
	return b.Len(), nil
}

// Command is the body of a command on alarm/{site}/{kind}/{asset}/{type}/ack
// or …/clear.
type Command struct {
	// By is who acknowledges or clears: a person's user name. Required.
	By string `json:"by"`
	// Comment is optional.
	Comment string `json:"comment,omitempty"`
}

// Reply is the body of the answer to a command that carried an MQTT 5
// response topic.
type Reply struct {
	OK     bool   `json:"ok"`
	Result Result `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	Alarm  *Alarm `json:"alarm,omitempty"`
}

// Verbs of the command topics.
const (
	VerbAck   = "ack"
	VerbClear = "clear"
)

// Run publishes the alarms as they change, takes the commands, and prunes
// the history, until ctx ends. At start it publishes every open alarm (and
// removes the retained message of every alarm closed since its last
// publish), so the retained messages match the state after a restart.
func (m *Manager) Run(ctx context.Context) error {
	// One filter per owned type, so that the ACL can give a service the
	// command topics of its own types only.
	filters := []string{m.o.Prefix + "/+/+/+/+/+"}
	if len(m.o.Types) > 0 {
		filters = filters[:0]
		for _, t := range m.o.Types {
			filters = append(filters, m.o.Prefix+"/+/+/+/"+t+"/+")
		}
	}
	for _, f := range filters {
		err := m.o.Bus.Subscribe(ctx, f, 1, func(hctx context.Context, msg bus.Message) {
			select {
			case m.cmds <- msg:
			case <-ctx.Done():
			case <-hctx.Done():
			}
		})
		if err != nil {
			return fmt.Errorf("alarm: subscribe %s: %w", f, err)
		}
	}
	close(m.ready)
	if n, err := m.Prune(); err != nil {
		m.o.Logger.Warn("alarm: prune", "err", err)
	} else if n > 0 {
		m.o.Logger.Info("alarm: pruned history", "alarms", n)
	}
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	retry := service.Retry{Min: 100 * time.Millisecond}
	defer retry.Stop()
	for {
		retry.Done(m.publish(ctx))
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			m.publish(fctx)
			cancel()
			return nil
		case <-m.wake:
		case <-retry.C():
		case msg := <-m.cmds:
			m.command(ctx, msg)
		case <-prune.C:
			if _, err := m.Prune(); err != nil {
				m.o.Logger.Warn("alarm: prune", "err", err)
			}
		}
	}
}

// publish publishes the latest state of every changed alarm, and reports
// whether all went out.
func (m *Manager) publish(ctx context.Context) bool {
	m.mu.Lock()
	keys := make([]Key, 0, len(m.mu.dirty))
	for k := range m.mu.dirty {
		keys = append(keys, k)
	}
	clear(m.mu.dirty)
	m.mu.Unlock()
	ok := true
	for _, k := range keys {
		m.mu.Lock()
		var payload []byte
		cur, gone := m.mu.cur[k], m.mu.gone[k]
		if cur != nil {
			payload, _ = json.Marshal(cur)
		}
		m.mu.Unlock()
		if cur == nil && !gone {
			continue
		}
		// An empty retained payload removes the retained message
		// [MQTT-3.3.1-6]: a closed alarm leaves its topic.
		err := m.o.Bus.Publish(ctx, bus.Message{Topic: k.Topic(m.o.Prefix), Payload: payload, QoS: 1, Retain: true, ContentType: contentType(payload)})
		if err == nil && cur == nil {
			err = m.forgetGone(k)
		}
		if err != nil {
			m.o.Logger.Warn("alarm: publish", "alarm", k.String(), "err", err)
			m.mu.Lock()
			m.mu.dirty[k] = true
			m.mu.Unlock()
			ok = false
		}
	}
	return ok
}

func contentType(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	return "application/json"
}

// forgetGone drops k's pending removal once its retained message is gone,
// unless the key was opened again meanwhile.
func (m *Manager) forgetGone(k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mu.gone[k] {
		return nil
	}
	var b service.Batch
	b.Delete(m.o.State, keyGone+k.String())
	if err := m.o.State.Apply(&b); err != nil {
		return err
	}
	delete(m.mu.gone, k)
	return nil
}

// command carries out one command message and answers it when it asks.
func (m *Manager) command(ctx context.Context, msg bus.Message) {
	rest, ok := strings.CutPrefix(msg.Topic, m.o.Prefix+"/")
	if !ok {
		return
	}
	if msg.Retain {
		// A retained command would be carried out again at every start
		// (and clear alarms raised since): commands are never retained.
		m.o.Logger.Warn("alarm: ignoring a retained command; publish commands without the retain flag", "topic", msg.Topic)
		return
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return
	}
	verb := rest[i+1:]
	key, err := ParseKey(rest[:i])
	if err == nil && m.types != nil && !m.types[key.Type] {
		return // another service's alarm
	}
	var reply Reply
	switch {
	case err != nil:
		reply.Error = err.Error()
	case verb != VerbAck && verb != VerbClear:
		reply.Error = fmt.Sprintf("unknown command %q: want %s or %s", verb, VerbAck, VerbClear)
	default:
		var c Command
		dec := json.NewDecoder(bytes.NewReader(msg.Payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			reply.Error = "command body: " + err.Error()
			break
		}
		var a Alarm
		var res Result
		if verb == VerbAck {
			a, res, err = m.Acknowledge(ctx, key, c.By, c.Comment)
		} else {
			a, res, err = m.ClearBy(ctx, key, c.By, c.Comment)
		}
		if err != nil {
			if m.types == nil && errors.Is(err, ErrNotFound) && msg.ResponseTopic == "" {
				return
			}
			reply.Error = err.Error()
			break
		}
		reply.OK, reply.Result, reply.Alarm = true, res, &a
		m.o.Logger.Info("alarm command", "alarm", key.String(), "command", verb, "by", c.By, "result", res)
	}
	if !reply.OK {
		m.o.Logger.Info("alarm command refused", "topic", msg.Topic, "err", reply.Error)
	}
	if msg.ResponseTopic == "" {
		return
	}
	body, _ := json.Marshal(reply)
	err = m.o.Bus.Publish(ctx, bus.Message{
		Topic: msg.ResponseTopic, Payload: body, QoS: 1, ContentType: "application/json",
		CorrelationData: msg.CorrelationData,
	})
	if err != nil {
		m.o.Logger.Warn("alarm: reply", "topic", msg.ResponseTopic, "err", err)
	}
}
