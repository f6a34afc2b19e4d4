package alarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/citymesh/citymesh/bus"
)

// DefaultCommandTimeout is how long a Board waits for the owning service's
// answer to a command (BoardOptions.Timeout).
const DefaultCommandTimeout = 10 * time.Second

// ErrTimeout is matched by errors.Is for a command that no service answered
// in time: the service that owns the alarm is stopped, or cut off.
var ErrTimeout = errors.New("no answer from the alarm's service")

// ErrRefused is matched by errors.Is for a command that the owning service
// refused (its reply's error is in the message).
var ErrRefused = errors.New("the alarm's service refused the command")

// BoardOptions configure a Board.
type BoardOptions struct {
	// Bus is where the alarms are read and the commands published.
	// Required.
	Bus bus.Bus
	// Prefix is the first level of the alarm topics (default "alarm").
	Prefix string
	// ReplyTopic is the topic the owning services answer commands on
	// (default replies/citymesh-alarms/ and a random suffix, so that two
	// boards on one broker do not read each other's answers).
	ReplyTopic string
	// Timeout bounds the wait for a command's answer (default 10 s).
	Timeout time.Duration
	// TenantOf returns the tenant of an alarm that does not name one
	// (Alarm.Tenant): the tenant of its asset in the campus model. Nil, or
	// "": the alarm belongs to no tenant, and only those who see all see
	// it.
	TenantOf func(Key) string
	// Logger receives the board's logs (default slog.Default()).
	Logger *slog.Logger
}

// Board is the read model of every alarm on a bus, whichever service (in
// this process or another, at an edge node across the mesh) raised it: it
// keeps the latest retained state of each alarm topic
// (alarm/{site}/{kind}/{asset}/{type}), and carries out people's
// acknowledgements and clears by publishing commands to the alarms' command
// topics with an MQTT 5 response topic, and waiting for the owning
// Manager's reply. It holds open alarms only: a closed alarm leaves its
// topic, and its history stays with its service. It is safe for concurrent
// use.
type Board struct {
	o     BoardOptions
	ready chan struct{}

	mu struct {
		sync.Mutex
		cur     map[Key]*Alarm
		closed  map[string]time.Time // ids closed through the board, with their last change
		pending map[string]chan Reply
	}
}

// NewBoard returns a Board with options o. Run it to fill it.
func NewBoard(o BoardOptions) (*Board, error) {
	if o.Bus == nil {
		return nil, errors.New("alarm: a board needs a Bus")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultCommandTimeout
	}
	if o.ReplyTopic == "" {
		var r [6]byte
		rand.Read(r[:])
		o.ReplyTopic = "replies/citymesh-alarms/" + hex.EncodeToString(r[:])
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	b := &Board{o: o, ready: make(chan struct{})}
	b.mu.cur = make(map[Key]*Alarm)
	b.mu.closed = make(map[string]time.Time)
	b.mu.pending = make(map[string]chan Reply)
	return b, nil
}

// Ready is closed once Run has subscribed (the retained alarms follow).
func (b *Board) Ready() <-chan struct{} { return b.ready }

// Run subscribes to the alarms and to the replies, and keeps the board until
// ctx ends.
func (b *Board) Run(ctx context.Context) error {
	if err := b.o.Bus.Subscribe(ctx, b.o.ReplyTopic, 1, b.reply); err != nil {
		return fmt.Errorf("alarm board: subscribe %s: %w", b.o.ReplyTopic, err)
	}
	// Five levels: the alarms, not their command topics (six).
	filter := b.o.Prefix + "/+/+/+/+"
	if err := b.o.Bus.Subscribe(ctx, filter, 1, b.alarm); err != nil {
		return fmt.Errorf("alarm board: subscribe %s: %w", filter, err)
	}
	close(b.ready)
	<-ctx.Done()
	return nil
}

// alarm takes one retained alarm message.
func (b *Board) alarm(_ context.Context, m bus.Message) {
	k, err := ParseKey(strings.TrimPrefix(m.Topic, b.o.Prefix+"/"))
	if err != nil {
		return
	}
	if len(m.Payload) == 0 {
		b.mu.Lock()
		delete(b.mu.cur, k)
		b.mu.Unlock()
		return
	}
	a := new(Alarm)
	if err := json.Unmarshal(m.Payload, a); err != nil || a.ID == "" || a.Key != k {
		b.o.Logger.Warn("alarm board: ignoring a message that is not an alarm of its topic", "topic", m.Topic, "err", err)
		return
	}
	b.put(a)
}

// put keeps a unless the board knows a newer state of its alarm.
func (b *Board) put(a *Alarm) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.mu.closed[a.ID]; ok && !a.DateModified.After(t) {
		return // an older copy of an alarm the board saw closed
	}
	if cur := b.mu.cur[a.Key]; cur != nil && cur.ID == a.ID && a.DateModified.Before(cur.DateModified) {
		return
	}
	if a.Closed() {
		delete(b.mu.cur, a.Key)
		b.mu.closed[a.ID] = a.DateModified
		return
	}
	b.mu.cur[a.Key] = a
}

// reply takes one answer to a command.
func (b *Board) reply(_ context.Context, m bus.Message) {
	var r Reply
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		return
	}
	b.mu.Lock()
	ch := b.mu.pending[string(m.CorrelationData)]
	b.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- r:
	default: // the waiter has an answer already
	}
}

// Filter selects alarms; each zero field selects all.
type Filter struct {
	// Status is active or cleared.
	Status Status
	// Severities are the severities wanted.
	Severities []Severity
	// Site, Kind, Asset, Type and Originator select by those members.
	Site, Kind, Asset, Type, Originator string
	// Acknowledged, when set, selects acknowledged (true) or
	// unacknowledged (false) alarms.
	Acknowledged *bool
	// Tenant selects one tenant's alarms.
	Tenant string
}

// all reports whether f selects every alarm.
func (f *Filter) all() bool {
	return f.Status == "" && len(f.Severities) == 0 && f.Site == "" && f.Kind == "" && f.Asset == "" &&
		f.Type == "" && f.Originator == "" && f.Acknowledged == nil && f.Tenant == ""
}

// match reports whether f selects a, whose tenant is tenant.
func (f *Filter) match(a *Alarm, tenant string) bool {
	switch {
	case f.Status != "" && a.Status != f.Status,
		len(f.Severities) > 0 && !slices.Contains(f.Severities, a.Severity),
		f.Site != "" && a.Site != f.Site,
		f.Kind != "" && a.Kind != f.Kind,
		f.Asset != "" && a.Asset != f.Asset,
		f.Type != "" && a.Type != f.Type,
		f.Originator != "" && a.Originator != f.Originator,
		f.Acknowledged != nil && a.Acknowledged != *f.Acknowledged,
		f.Tenant != "" && tenant != f.Tenant:
		return false
	}
	return true
}

// tenant returns a's tenant: its own, else TenantOf's.
func (b *Board) tenant(a *Alarm) string {
	if a.Tenant == "" && b.o.TenantOf != nil {
		return b.o.TenantOf(a.Key)
	}
	return a.Tenant
}

// withTenant returns a copy of a with its tenant filled in from TenantOf.
func (b *Board) withTenant(a *Alarm) Alarm {
	c := *a
	c.Audit = slices.Clone(a.Audit)
	c.Tenant = b.tenant(a)
	return c
}

// List returns the open alarms f selects, the most severe first, then the
// most recently modified.
func (b *Board) List(f Filter) []Alarm {
	b.mu.Lock()
	var out []Alarm
	if f.all() {
		out = make([]Alarm, 0, len(b.mu.cur))
	}
	for _, a := range b.mu.cur {
		if f.match(a, b.tenant(a)) {
			out = append(out, b.withTenant(a))
		}
	}
	b.mu.Unlock()
	if out == nil {
		out = []Alarm{} // "alarms": [] in JSON
	}
	slices.SortFunc(out, func(x, y Alarm) int {
		if d := severityRank(x.Severity) - severityRank(y.Severity); d != 0 {
			return d
		}
		if c := y.DateModified.Compare(x.DateModified); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out
}

func severityRank(s Severity) int {
	switch s {
	case Critical:
		return 0
	case Major:
		return 1
	case Minor:
		return 2
	case Warning:
		return 3
	}
	return 4
}

// Get returns the open alarm with id.
func (b *Board) Get(id string) (Alarm, bool) {
	k, ok := keyOfID(id)
	if !ok {
		return Alarm{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.mu.cur[k]
	if a == nil || a.ID != id {
		return Alarm{}, false
	}
	return b.withTenant(a), true
}

// keyOfID returns the key of an alarm id, alarm:{site}:{kind}:{asset}:{type}:{n}.
func keyOfID(id string) (Key, bool) {
	p := strings.Split(id, ":")
	if len(p) != 6 || p[0] != "alarm" {
		return Key{}, false
	}
	k := Key{Site: p[1], Kind: p[2], Asset: p[3], Type: p[4]}
	return k, k.Check() == nil
}

// Command acknowledges (verb VerbAck) or clears (VerbClear) the open alarm
// with id for the person by: it publishes the command on the alarm's
// command topic and returns the owning service's answer. Errors: ErrNotFound
// when the board holds no open alarm with id (or its service holds none),
// ErrTimeout when no service answered within the timeout, ErrRefused when
// the service refused, ErrInvalid for a bad verb or an empty by.
func (b *Board) Command(ctx context.Context, id, verb, by, comment string) (Alarm, Result, error) {
	if verb != VerbAck && verb != VerbClear {
		return Alarm{}, "", fmt.Errorf("%w: command %q: want %s or %s", ErrInvalid, verb, VerbAck, VerbClear)
	}
	if by == "" {
		return Alarm{}, "", fmt.Errorf("%w: who acts is required", ErrInvalid)
	}
	a, ok := b.Get(id)
	if !ok {
		return Alarm{}, "", fmt.Errorf("alarm %s: %w", id, ErrNotFound)
	}
	body, err := json.Marshal(Command{By: by, Comment: comment})
	if err != nil {
		return Alarm{}, "", err
	}
	var corr [12]byte
	rand.Read(corr[:])
	ch := make(chan Reply, 8)
	b.mu.Lock()
	b.mu.pending[string(corr[:])] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.mu.pending, string(corr[:]))
		b.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	err = b.o.Bus.Publish(ctx, bus.Message{Topic: a.Key.Topic(b.o.Prefix) + "/" + verb, Payload: body, QoS: 1,
		ContentType: "application/json", ResponseTopic: b.o.ReplyTopic, CorrelationData: corr[:]})
	if err != nil {
		return Alarm{}, "", fmt.Errorf("alarm %s: publish the command: %w", id, err)
	}
	// Managers that own every type answer "no open alarm" for the alarms
	// of others: an answer that is not that one wins; "no open alarm" is
	// the answer only when no other came within a short while.
	var notFound *Reply
	var grace <-chan time.Time
	for {
		select {
		case r := <-ch:
			switch {
			case r.OK && r.Alarm != nil:
				b.put(r.Alarm)
				return b.withTenant(r.Alarm), r.Result, nil
			case strings.Contains(r.Error, ErrNotFound.Error()):
				if notFound == nil {
					notFound = &r
					grace = time.After(min(time.Second, b.o.Timeout/4))
				}
			default:
				return Alarm{}, "", fmt.Errorf("alarm %s: %w: %s", id, ErrRefused, r.Error)
			}
		case <-grace:
			return Alarm{}, "", fmt.Errorf("alarm %s: %w", id, ErrNotFound)
		case <-ctx.Done():
			if notFound != nil {
				return Alarm{}, "", fmt.Errorf("alarm %s: %w", id, ErrNotFound)
			}
			return Alarm{}, "", fmt.Errorf("alarm %s: %w within %v", id, ErrTimeout, b.o.Timeout)
		}
	}
}
