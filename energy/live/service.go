package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
)

// Alarm types the service raises, on alarm/{site}/meter/{meter}/{type}.
const (
	AlarmWaterLeak     = "water-leak"
	AlarmNightBaseLoad = "night-base-load"
	AlarmDeviation     = "consumption-deviation"
)

// Statuses of an invoice event.
const (
	StatusRunning = "running"
	StatusFinal   = "final"
)

// reasonMeterExchange is the reason of a building gateway's status event
// that carries a meter exchange record (docs/events.md).
const reasonMeterExchange = "meter_exchange"

// InvoiceEvent is a tenant's invoice for a month as the service publishes
// it: running while the month is open, final once it closed.
type InvoiceEvent struct {
	Site   string `json:"site"`
	Period string `json:"period"` // YYYY-MM in the tariff's time zone
	Status string `json:"status"` // running or final
	// Updated is the time of the latest reading billed.
	Updated time.Time      `json:"updated"`
	Invoice energy.Invoice `json:"invoice"`
	// Warnings are the site's billing warnings (shared meters' negative
	// remainders, carriers without tariff).
	Warnings []string `json:"warnings,omitempty"`
}

// ESGEvent is a site's ESG figures for a month so far.
type ESGEvent struct {
	Site    string              `json:"site"`
	Period  string              `json:"period"`
	Status  string              `json:"status"`
	Updated time.Time           `json:"updated"`
	Uses    []energy.CarrierUse `json:"consumption_kwh"`
	energy.ESGReport
}

// Service is the energy service. Build it with New; it is run by a
// service.Runner (or directly with Run) and serves its HTTP API with
// HTTPHandler.
type Service struct {
	name    string
	cfg     Config
	sites   map[string]energy.Site
	tariffs energy.Tariffs
	factors energy.FactorSet
	loc     *time.Location
	meters  map[string]string // meter id → site id
	tenants map[string]string // meter id → the tenant its alarms are for
	billed  map[string]energy.RegisterKey

	stats struct{ readings, duplicates, late atomic.Uint64 }

	view struct {
		sync.RWMutex
		invoices map[string]map[string]map[string]InvoiceEvent // site → period → tenant
		esg      map[string]map[string]ESGEvent                // site → period
	}
}

// New builds the energy service called name from c (checked with Check).
func New(name string, c Config) (*Service, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	sites, model, tf, factors, err := c.load()
	if err != nil {
		return nil, err
	}
	if tf.Heating != nil {
		// The split is of a heating period's whole cost; a month's invoice
		// would bill all of it every month.
		return nil, errors.New("energy: the tariff's heating split (HeizkostenV §7) is for a heating period, not a month: leave it out of the service's tariff")
	}
	loc, err := time.LoadLocation(tf.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("energy: tariff time zone: %w", err)
	}
	s := &Service{name: name, cfg: c, sites: map[string]energy.Site{}, tariffs: tf, factors: factors, loc: loc, meters: map[string]string{}, tenants: map[string]string{}, billed: map[string]energy.RegisterKey{}}
	for id, site := range sites {
		// A checked copy of its own (Check fills in wrap values).
		site.Meters = slices.Clone(site.Meters)
		for i := range site.Meters {
			site.Meters[i].Registers = slices.Clone(site.Meters[i].Registers)
		}
		if err := site.Check(); err != nil {
			return nil, fmt.Errorf("energy: site %s: %w", id, err)
		}
		s.sites[id] = site
		if err := event.ValidID(id); err != nil {
			return nil, fmt.Errorf("energy: site %q: %w", id, err)
		}
		for _, m := range site.Meters {
			if other, dup := s.meters[m.ID]; dup {
				return nil, fmt.Errorf("energy: meter %s is in sites %s and %s", m.ID, other, id)
			}
			s.meters[m.ID] = id
			o, _ := energy.ParseOBIS(m.OBIS)
			s.billed[m.ID] = energy.RegisterKey{Meter: m.ID, OBIS: o}
		}
		// A billing for a month checks tariffs and site once here.
		if _, err := energy.NewRunningBilling(site, tf, energy.InvoiceOptions{From: time.Unix(0, 0), To: time.Unix(1, 0)}); err != nil {
			return nil, fmt.Errorf("energy: site %s: %w", id, err)
		}
	}
	for _, site := range s.sites {
		for _, m := range site.Meters {
			s.tenants[m.ID] = meterTenant(model, site, m.ID)
		}
	}
	s.view.invoices = map[string]map[string]map[string]InvoiceEvent{}
	s.view.esg = map[string]map[string]ESGEvent{}
	return s, nil
}

// meterTenant returns the tenant of meter id, whose alarms are for it: its
// tenant in the campus model when it names one, else the tenant of site
// that has it as its own meter, or the only tenant it is shared among (a
// building's main meter when one tenant has rooms there); "" for none.
func meterTenant(m *campus.Model, site energy.Site, id string) string {
	if m != nil {
		if mt, ok := m.Meter(id); ok && mt.Tenant != "" {
			return mt.Tenant
		}
	}
	for _, t := range site.Tenants {
		if slices.Contains(t.Meters, id) {
			return t.ID
		}
	}
	for _, a := range site.Shared {
		if a.Meter == id && len(a.Tenants) == 1 {
			return a.Tenants[0]
		}
	}
	return ""
}

// Stats counts what the service did since it was built.
type Stats struct {
	// Readings counts the register readings stored and billed,
	// Duplicates the redelivered ones (dropped), Late those of a closed
	// month (ignored).
	Readings, Duplicates, Late uint64
}

// Stats returns the service's counts.
func (s *Service) Stats() Stats {
	return Stats{Readings: s.stats.readings.Load(), Duplicates: s.stats.duplicates.Load(), Late: s.stats.late.Load()}
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// period is one open billing month of one site.
type period struct {
	key      string
	from, to time.Time
	rb       *energy.RunningBilling
	latest   time.Time       // newest reading billed
	changed  map[string]bool // meters with readings since the last anomaly check
	readings int
}

// run is the state of one Run.
type run struct {
	s     *Service
	env   *service.Env
	alarm *alarm.Manager
	deb   *service.Debouncer[struct{}]

	mu       sync.Mutex
	days     map[energy.RegisterKey]map[string][]point // register → UTC day → readings
	exch     map[energy.RegisterKey][]energy.Exchange
	latest   map[string]time.Time          // meter → newest reading time (billed register)
	periods  map[string]map[string]*period // site → period key
	closed   map[string]map[string]bool    // site → period key
	active   map[alarm.Key]bool
	lastSent map[string][]byte // topic → payload last published
}

// periodOf returns the billing month containing t: [from, to) in the
// tariff's time zone, and its key YYYY-MM.
func (s *Service) periodOf(t time.Time) (string, time.Time, time.Time) {
	l := t.In(s.loc)
	from := time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, s.loc)
	return from.Format("2006-01"), from, from.AddDate(0, 1, 0)
}

func (s *Service) options() energy.Options {
	return energy.Options{Interval: s.cfg.Interval, MaxGap: s.cfg.MaxGap, FillGaps: s.cfg.FillGaps}
}

// Run runs the service until ctx ends.
func (s *Service) Run(ctx context.Context, env *service.Env) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	r := &run{s: s, env: env, days: map[energy.RegisterKey]map[string][]point{}, exch: map[energy.RegisterKey][]energy.Exchange{},
		latest: map[string]time.Time{}, periods: map[string]map[string]*period{}, closed: map[string]map[string]bool{},
		active: map[alarm.Key]bool{}, lastSent: map[string][]byte{}}
	if !s.cfg.Anomalies.Disabled {
		m, err := alarm.NewManager(alarm.Options{Bus: env.Bus, State: env.State.Sub("alarm"), Originator: s.name,
			Types: []string{AlarmWaterLeak, AlarmNightBaseLoad, AlarmDeviation}, Logger: env.Log, Now: env.Now})
		if err != nil {
			return fmt.Errorf("energy: %w", err)
		}
		r.alarm = m
		wg.Go(func() { m.Run(ctx) })
		select {
		case <-m.Ready():
		case <-ctx.Done():
			return nil
		}
		for _, a := range m.Open() {
			if a.Status == alarm.Active {
				r.active[a.Key] = true
			}
		}
	}
	if err := r.recover(); err != nil {
		return fmt.Errorf("energy: recovering state: %w", err)
	}
	r.deb = service.NewDebouncer(s.cfg.Debounce, func(ctx context.Context, key string, _ struct{}) { r.flush(ctx, key) })
	wg.Go(func() { r.deb.Run(ctx) })
	for site, ps := range r.periods {
		for key := range ps {
			r.deb.Put(site+"|"+key, struct{}{})
		}
	}
	msgs := make(chan bus.Message, 1024)
	enqueue := func(ctx context.Context, m bus.Message) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}
	if err := env.Bus.Subscribe(ctx, event.Filter(event.DomainEnergy, "", event.AssetMeter, "", event.EventReading), 1, enqueue); err != nil {
		return fmt.Errorf("energy: subscribe readings: %w", err)
	}
	if err := env.Bus.Subscribe(ctx, event.Filter(event.DomainBuilding, "", event.AssetGateway, "", event.EventStatus), 1, enqueue); err != nil {
		return fmt.Errorf("energy: subscribe gateway status: %w", err)
	}
	env.Running()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// What the bus delivered is stored before Run returns: the
			// broker counts it as acknowledged.
			var rest []bus.Message
			for {
				select {
				case m := <-msgs:
					rest = append(rest, m)
					continue
				default:
				}
				break
			}
			if len(rest) > 0 {
				r.handleAll(rest)
			}
			return nil
		case m := <-msgs:
			batch := []bus.Message{m}
		more:
			for len(batch) < maxBatch {
				select {
				case m := <-msgs:
					batch = append(batch, m)
				default:
					break more
				}
			}
			r.handleAll(batch)
		case <-tick.C:
			r.checkGrace()
		}
	}
}

// recover loads the readings, exchanges and closed months from the state
// and rebuilds the open months.
func (r *run) recover() error {
	st := r.env.State
	err := st.Scan("r/", func(key string, v []byte) error {
		k, day, err := parseRegisterKey(strings.TrimPrefix(key, "r/"))
		if err != nil {
			return err
		}
		ps, err := decodeDay(v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if r.days[k] == nil {
			r.days[k] = map[string][]point{}
		}
		r.days[k][day] = ps
		return nil
	})
	if err != nil {
		return err
	}
	err = st.Scan("x/", func(key string, v []byte) error {
		k, ts, err := parseRegisterKey(strings.TrimPrefix(key, "x/"))
		if err != nil {
			return err
		}
		t, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		e, err := decodeExchange(t, v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		r.exch[k] = append(r.exch[k], e)
		return nil
	})
	if err != nil {
		return err
	}
	err = st.Scan("closed/", func(key string, _ []byte) error {
		site, p, ok := strings.Cut(strings.TrimPrefix(key, "closed/"), "/")
		if !ok {
			return fmt.Errorf("state key %q", key)
		}
		r.markClosed(site, p)
		return nil
	})
	if err != nil {
		return err
	}
	err = st.Scan("final/", func(key string, v []byte) error {
		var ie InvoiceEvent
		if err := json.Unmarshal(v, &ie); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		r.s.setInvoice(ie)
		return nil
	})
	if err != nil {
		return err
	}
	err = st.Scan("esg/", func(key string, v []byte) error {
		var ev ESGEvent
		if err := json.Unmarshal(v, &ev); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		r.s.setESG(ev)
		return nil
	})
	if err != nil {
		return err
	}
	// Rebuild the open months from the store.
	for k, days := range r.days {
		site, ok := r.s.meters[k.Meter]
		if !ok || r.s.billed[k.Meter] != k {
			continue
		}
		for _, ps := range days {
			for _, p := range ps {
				at := time.Unix(0, p.t)
				if at.After(r.latest[k.Meter]) {
					r.latest[k.Meter] = at
				}
				key, _, _ := r.s.periodOf(at)
				if !r.closed[site][key] {
					r.open(site, key)
				}
			}
		}
	}
	return nil
}

func (r *run) markClosed(site, p string) {
	if r.closed[site] == nil {
		r.closed[site] = map[string]bool{}
	}
	r.closed[site][p] = true
}

// maxBatch bounds the messages applied in one state batch.
const maxBatch = 1024

// handleAll applies the messages queued: the readings of all of them are
// stored in one state batch (one sync on Pebble for a whole backlog),
// then billed; exchange records are applied in order after them (the
// billing does not depend on the order).
func (r *run) handleAll(msgs []bus.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b service.Batch
	var adds []staged
	var exch []*event.Status
	dirty := map[dayRef]bool{}
	for _, m := range msgs {
		t, e, err := event.ReadMessage(m)
		if err != nil {
			r.env.Error(fmt.Errorf("energy: %s: %w", m.Topic, err))
			continue
		}
		switch e := e.(type) {
		case *event.Measurement:
			if t.Event != event.EventReading {
				continue
			}
			a, err := r.stage(t, e, dirty)
			if err != nil {
				r.env.Error(err)
			}
			adds = append(adds, a...)
		case *event.Status:
			if e.Reason == reasonMeterExchange {
				exch = append(exch, e)
			}
		}
	}
	for d := range dirty {
		b.Set(r.env.State, dayKey(d.k, d.day), encodeDay(r.days[d.k][d.day]))
	}
	if b.Len() > 0 {
		if err := r.env.State.Apply(&b); err != nil {
			// Undo in memory what was not stored: the broker redelivers
			// what a restarted service did not acknowledge.
			for _, a := range adds {
				d := dayOf(a.p.t)
				ps := r.days[a.k][d]
				for i := range ps {
					if ps[i] == a.p {
						r.days[a.k][d] = append(ps[:i:i], ps[i+1:]...)
						break
					}
				}
			}
			r.env.Error(fmt.Errorf("energy: storing readings: %w", err))
			adds = nil
		}
	}
	for _, a := range adds {
		r.place(a.site, a.k, a.p)
	}
	r.s.stats.readings.Add(uint64(len(adds)))
	for _, e := range exch {
		if err := r.exchange(e); err != nil {
			r.env.Error(err)
		}
	}
}

// staged is a reading stored in memory and in the batch, to be billed once
// the batch is applied.
type staged struct {
	site string
	k    energy.RegisterKey
	p    point
}

// dayRef names one register's UTC day.
type dayRef struct {
	k   energy.RegisterKey
	day string
}

// stage adds the new readings of a meter's reading event to r.days and
// their days to dirty.
func (r *run) stage(t event.Topic, e *event.Measurement, dirty map[dayRef]bool) ([]staged, error) {
	site, ok := r.s.meters[t.Asset]
	if !ok {
		return nil, nil // not a meter the service bills
	}
	var adds []staged
	for i := range e.Values {
		v := &e.Values[i]
		code := v.OBIS
		if code == "" {
			_, code, _ = strings.Cut(v.Point, "/")
		}
		o, err := energy.ParseOBIS(code)
		if err != nil {
			return adds, fmt.Errorf("energy: %s: values[%d]: %w", t, i, err)
		}
		k := energy.RegisterKey{Meter: t.Asset, OBIS: o}
		if r.s.billed[t.Asset] != k {
			continue // further registers: not billed, not kept
		}
		at := e.Time
		if v.Time != nil {
			at = *v.Time
		}
		p := point{t: at.UnixNano(), v: v.Value}
		d := dayOf(p.t)
		if r.days[k] == nil {
			r.days[k] = map[string][]point{}
		}
		ps, added := insert(r.days[k][d], p)
		if !added {
			r.s.stats.duplicates.Add(1)
			continue // a redelivery
		}
		r.days[k][d] = ps
		dirty[dayRef{k, d}] = true
		adds = append(adds, staged{site, k, p})
	}
	return adds, nil
}

// place bills reading p of register k in the open months it belongs to:
// its own month, and the month before when p is at that month's start (a
// reading at midnight closes one month and opens the next). A month that
// closed already does not take it (counted as late). p is in r.days
// already.
func (r *run) place(site string, k energy.RegisterKey, p point) {
	at := time.Unix(0, p.t)
	if at.After(r.latest[k.Meter]) {
		r.latest[k.Meter] = at
	}
	key, from, _ := r.s.periodOf(at)
	if r.closed[site][key] {
		r.s.stats.late.Add(1)
		return
	}
	pr, created := r.open(site, key)
	if pr == nil {
		return
	}
	if !created {
		pr.add(k, p)
	}
	r.deb.Put(site+"|"+key, struct{}{})
	if at.Equal(from) {
		prevKey, _, _ := r.s.periodOf(from.Add(-time.Nanosecond))
		if prev := r.periods[site][prevKey]; prev != nil {
			prev.add(k, p)
			r.deb.Put(site+"|"+prevKey, struct{}{})
		}
	}
}

// add bills reading p of register k.
func (pr *period) add(k energy.RegisterKey, p point) {
	at := time.Unix(0, p.t).UTC()
	pr.rb.Add(energy.Reading{Time: at, Meter: k.Meter, OBIS: k.OBIS, Value: p.v})
	pr.readings++
	pr.changed[k.Meter] = true
	if at.After(pr.latest) {
		pr.latest = at
	}
}

// open returns the open month key of site; a new one is built from the
// stored readings in [from, to] and the exchange records (created true).
func (r *run) open(site, key string) (pr *period, created bool) {
	if pr := r.periods[site][key]; pr != nil {
		return pr, false
	}
	from, err := time.ParseInLocation("2006-01", key, r.s.loc)
	if err != nil {
		return nil, false
	}
	to := from.AddDate(0, 1, 0)
	rb, err := energy.NewRunningBilling(r.s.sites[site], r.s.tariffs, energy.InvoiceOptions{From: from, To: to, Consumption: r.s.options()})
	if err != nil {
		r.env.Error(err)
		return nil, false
	}
	pr = &period{key: key, from: from, to: to, rb: rb, changed: map[string]bool{}}
	if r.periods[site] == nil {
		r.periods[site] = map[string]*period{}
	}
	r.periods[site][key] = pr
	for k, ex := range r.exch {
		if r.s.meters[k.Meter] == site {
			for _, e := range ex {
				rb.AddExchange(k, e)
			}
		}
	}
	lo, hi := from.UnixNano(), to.UnixNano()
	for k, days := range r.days {
		if r.s.meters[k.Meter] != site || r.s.billed[k.Meter] != k {
			continue
		}
		for d, ps := range days {
			dt, _ := time.Parse(time.DateOnly, d)
			if dt.Add(24*time.Hour).UnixNano() <= lo || dt.UnixNano() > hi {
				continue
			}
			for _, p := range ps {
				if p.t >= lo && p.t <= hi {
					pr.add(k, p)
				}
			}
		}
	}
	return pr, true
}
