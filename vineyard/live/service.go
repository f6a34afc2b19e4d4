package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/vineyard"
	"github.com/citymesh/citymesh/vineyard/soil"
	"github.com/paulmach/orb/geo"
)

// Quantities of the campus model's points the service reads.
const (
	qTemp      = "temperature"
	qRH        = "relativeHumidity"
	qRain      = "precipitation"
	qLeafWet   = "leafWetness"
	qSoilP     = "soilPhosphorus"
	qSoilK     = "soilPotassium"
	qSoilPH    = "soilPH"
	eventRisk  = "risk"
	eventWx    = "weather"
	eventSoil  = "soil"
	alarmTypeS = "-risk"
)

// weatherCode is the short name of a weather quantity in state keys.
var weatherCode = map[string]string{qTemp: "t", qRH: "h", qRain: "r", qLeafWet: "l"}

// soilNutrient is the soil map nutrient of a soil probe's quantity.
var soilNutrient = map[string]soil.Nutrient{qSoilP: soil.Phosphorus, qSoilK: soil.Potassium, qSoilPH: soil.PH}

// plotInfo is what the service knows of one plot.
type plotInfo struct {
	*campus.Plot
	station string   // weather station device, "" for none
	leaf    []string // leaf-wetness devices on the plot
}

// Service is the vineyard service. Build one with New (or through the
// service registry, kind "vineyard"); run it with a service.Runner.
type Service struct {
	name      string
	cfg       Config
	model     *campus.Model
	plots     map[string]*plotInfo
	plotIDs   []string            // sorted
	feeds     map[string][]string // device → plots whose weather it feeds
	soilPlot  map[string]string   // soil probe device → plot
	alarmAt   vineyard.Level
	soilType  soil.SoilType
	budMonth  time.Month
	budDay    int
	alarmKeys []string

	mu struct {
		sync.Mutex
		st      service.State // nil until Run
		env     *service.Env
		hours   map[string]map[int64]vineyard.Hour // plot → hour start (Unix s) → hour
		results map[string]*plotResult
		maps    map[string]*soilMaps
		// latest is the start of the latest hour of any plot (Unix s);
		// pruned the horizon up to which raw values were deleted.
		latest, pruned int64
		// tooLate counts the values dropped as older than the horizon.
		tooLate uint64
	}
	// riskDeb and soilDeb are the current run's debouncers.
	riskDeb *service.Debouncer[struct{}]
	soilDeb *service.Debouncer[struct{}]
	alarms  *alarm.Manager
}

// The service serves an HTTP API scoped to tenants.
var (
	_ service.HTTPService  = (*Service)(nil)
	_ service.AccessSetter = (*Service)(nil)
)

// plotResult is a plot's latest assessment.
type plotResult struct {
	assessment vineyard.Assessment
	hours      []vineyard.Hour
	derived    []vineyard.Derived
	risk       Risk
}

// New returns the vineyard service called name.
func New(name string, c Config) (*Service, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	m := c.Model
	if m == nil {
		var err error
		if m, err = campus.Load(c.Campus); err != nil {
			return nil, fmt.Errorf("vineyard: %w", err)
		}
	}
	if c.AlarmDays == 0 {
		c.AlarmDays = DefaultAlarmDays
	}
	if c.PublishDays == 0 {
		c.PublishDays = DefaultPublishDays
	}
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	if c.SoilDebounce == 0 {
		c.SoilDebounce = c.Debounce
	}
	if c.SoilCellM == 0 {
		c.SoilCellM = DefaultSoilCellM
	}
	if c.LateDays == 0 {
		c.LateDays = DefaultLateDays
	}
	s := &Service{name: name, cfg: c, model: m, plots: map[string]*plotInfo{}, feeds: map[string][]string{}, soilPlot: map[string]string{}, alarmAt: vineyard.Moderate, soilType: soil.Medium, budMonth: time.January, budDay: 1}
	if c.AlarmLevel != "" {
		_ = s.alarmAt.UnmarshalText([]byte(c.AlarmLevel)) // checked
	}
	if c.SoilType != "" {
		s.soilType, _ = soil.ParseSoilType(c.SoilType) // checked
	}
	if c.Budbreak != "" {
		d, _ := time.Parse("01-02", c.Budbreak) // checked
		s.budMonth, s.budDay = d.Month(), d.Day()
	}
	want, missing := map[string]bool{}, map[string]bool{}
	for _, p := range c.Plots {
		want[p], missing[p] = true, true
	}
	quantities := func(dev string) map[string]bool {
		q := map[string]bool{}
		for _, p := range m.PointsOf(dev) {
			q[p.Quantity] = true
		}
		return q
	}
	// Stations of each site.
	stations := map[string][]*campus.Device{}
	for _, d := range m.Devices {
		if q := quantities(d.ID); q[qTemp] && q[qRH] {
			stations[d.Site] = append(stations[d.Site], d)
		}
	}
	for _, p := range m.Plots {
		if c.Site != "" && p.Site != c.Site || len(want) > 0 && !want[p.ID] {
			continue
		}
		delete(missing, p.ID)
		pi := &plotInfo{Plot: p}
		for _, id := range p.Devices {
			q := quantities(id)
			switch {
			case q[qTemp] && q[qRH] && pi.station == "":
				pi.station = id
			case q[qLeafWet]:
				pi.leaf = append(pi.leaf, id)
			}
			if q[qSoilP] || q[qSoilK] || q[qSoilPH] {
				s.soilPlot[id] = p.ID
			}
		}
		if st, ok := c.Stations[p.ID]; ok {
			d, ok := m.Device(st)
			if !ok || !quantities(st)[qTemp] {
				return nil, fmt.Errorf("vineyard: stations: %s: %q is not a weather station of the campus", p.ID, st)
			}
			pi.station = d.ID
		} else if pi.station == "" {
			best := math.Inf(1)
			for _, d := range stations[p.Site] {
				if dist := geo.Distance(d.Location, p.Location); dist < best {
					best, pi.station = dist, d.ID
				}
			}
		}
		if pi.station != "" {
			s.feeds[pi.station] = append(s.feeds[pi.station], p.ID)
		}
		for _, l := range pi.leaf {
			s.feeds[l] = append(s.feeds[l], p.ID)
		}
		s.plots[p.ID] = pi
		s.plotIDs = append(s.plotIDs, p.ID)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("vineyard: plots: %v not in the campus (or not on site %q)", mapKeys(missing), c.Site)
	}
	if len(s.plots) == 0 {
		return nil, errors.New("vineyard: the campus has no plots to serve")
	}
	sort.Strings(s.plotIDs)
	for _, d := range []string{vineyard.DiseaseDowny, vineyard.DiseasePowdery, vineyard.DiseaseBotrytis} {
		s.alarmKeys = append(s.alarmKeys, alarmType(d))
	}
	return s, nil
}

func mapKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// alarmType is the alarm type of a disease: downy-mildew-risk, ...
func alarmType(disease string) string {
	b := []byte(disease)
	for i, c := range b {
		if c == '_' {
			b[i] = '-'
		}
	}
	return string(b) + alarmTypeS
}

// SetAccess scopes the HTTP API to the callers' tenants: the node calls it
// (service.AccessSetter) before HTTPHandler, so that a tenant's user sees
// the plots of its tenant only and an administrator every plot. The API
// records no user, so a.User is not kept.
func (s *Service) SetAccess(a service.Access) {
	s.cfg.Tenant = a.Tenant
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// Filter is the topic filter of the events the service reads.
func Filter() string {
	return event.Filter(event.DomainVineyard, "", event.AssetDevice, "", event.EventMeasurement)
}

// Run runs the service until ctx ends.
func (s *Service) Run(ctx context.Context, env *service.Env) error {
	am, err := alarm.NewManager(alarm.Options{Bus: env.Bus, State: env.State.Sub("alarm"), Originator: s.name, Types: s.alarmKeys, Now: env.Now, Logger: env.Log})
	if err != nil {
		return fmt.Errorf("vineyard: %w", err)
	}
	s.mu.Lock()
	s.mu.st, s.mu.env = env.State, env
	s.alarms = am
	s.riskDeb = service.NewDebouncer(s.cfg.Debounce, func(ctx context.Context, plot string, _ struct{}) { s.refresh(ctx, plot) })
	s.soilDeb = service.NewDebouncer(s.cfg.SoilDebounce, func(ctx context.Context, plot string, _ struct{}) { s.refreshSoil(ctx, plot) })
	err = s.loadLocked()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("vineyard: load state: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() {
		if err := am.Run(ctx); err != nil && ctx.Err() == nil {
			select {
			case errc <- err:
			default:
			}
			cancel()
		}
	})
	wg.Go(func() { s.riskDeb.Run(ctx) })
	wg.Go(func() { s.soilDeb.Run(ctx) })
	defer wg.Wait()

	// Everything the state holds is computed and published again: the
	// retained messages may be older, a debounced flush may have been lost.
	for _, p := range s.plotIDs {
		s.riskDeb.Put(p, struct{}{})
		s.soilDeb.Put(p, struct{}{})
	}
	if err := env.Bus.Subscribe(ctx, Filter(), 1, func(ctx context.Context, m bus.Message) {
		if err := s.ingest(m); err != nil {
			env.Error(err)
		}
	}); err != nil {
		cancel()
		return fmt.Errorf("vineyard: subscribe: %w", err)
	}
	env.Running()
	<-ctx.Done()
	select {
	case err := <-errc:
		return fmt.Errorf("vineyard: alarms: %w", err)
	default:
	}
	return nil
}

// loadLocked reads the plots' hours from the state and finishes the hours
// a crash left dirty; s.mu held.
func (s *Service) loadLocked() error {
	st := s.mu.st
	s.mu.hours = map[string]map[int64]vineyard.Hour{}
	s.mu.results = map[string]*plotResult{}
	if s.mu.maps == nil {
		s.mu.maps = map[string]*soilMaps{}
	}
	err := st.Scan("h/", func(key string, v []byte) error {
		plot, hour, ok := splitHourKey(key[2:])
		if !ok || s.plots[plot] == nil {
			return nil
		}
		var hr hourRecord
		if err := unmarshal(v, &hr); err != nil {
			return fmt.Errorf("hour %s: %w", key, err)
		}
		s.hoursOf(plot)[hour] = hr.hour(s.model.Location)
		s.mu.latest = max(s.mu.latest, hour)
		return nil
	})
	if err != nil {
		return err
	}
	var dirty []devHour
	if err := st.Scan("d/", func(key string, _ []byte) error {
		dev, hour, ok := splitHourKey(key[2:])
		if ok {
			dirty = append(dirty, devHour{dev, hour})
		}
		return nil
	}); err != nil {
		return err
	}
	var b service.Batch
	if _, err := s.recomputeLocked(&b, nil, dirty); err != nil {
		return err
	}
	return s.mu.st.Apply(&b)
}

func (s *Service) hoursOf(plot string) map[int64]vineyard.Hour {
	h := s.mu.hours[plot]
	if h == nil {
		h = map[int64]vineyard.Hour{}
		s.mu.hours[plot] = h
	}
	return h
}

// devHour is one hour of one device.
type devHour struct {
	dev  string
	hour int64 // Unix seconds of the hour's start
}

// ingest reads one measurement: it keeps its weather and soil values and
// recomputes the hours and plots they change.
func (s *Service) ingest(m bus.Message) error {
	t, e, err := event.ReadMessage(m)
	if err != nil {
		return fmt.Errorf("vineyard: %w", err)
	}
	me, ok := e.(*event.Measurement)
	if !ok {
		return nil
	}
	dev := t.Asset
	feeds, soilPlot := s.feeds[dev], s.soilPlot[dev]
	if len(feeds) == 0 && soilPlot == "" {
		return nil // not a device of a plot the service serves
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.mu.st
	var b service.Batch
	touched := map[devHour]bool{}
	pending := map[string][]byte{}
	soilChanged := false
	for _, v := range me.Values {
		p, ok := s.model.Point(v.Point)
		if !ok || p.Asset != dev {
			continue
		}
		at := me.Time
		if v.Time != nil {
			at = *v.Time
		}
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) || at.Unix() < 0 {
			continue
		}
		if code, ok := weatherCode[p.Quantity]; ok && len(feeds) > 0 {
			h := at.Truncate(time.Hour).Unix()
			if h < s.horizonLocked() {
				s.mu.tooLate++
				continue
			}
			k, v := sampleKey(dev, h, code, at), floatBytes(v.Value)
			b.Set(st, k, v)
			pending[k] = v
			touched[devHour{dev, h}] = true
			continue
		}
		if _, ok := soilNutrient[p.Quantity]; ok && soilPlot != "" {
			changed, err := s.putProbeLocked(&b, soilPlot, dev, p.Quantity, at, v.Value)
			if err != nil {
				return err
			}
			soilChanged = soilChanged || changed
		}
	}
	if b.Len() == 0 {
		return nil
	}
	dirty := make([]devHour, 0, len(touched))
	for dh := range touched {
		dirty = append(dirty, dh)
	}
	// The values, the hours they change and the plots' revisions go in
	// one atomic write.
	plots, err := s.recomputeLocked(&b, pending, dirty)
	if err != nil {
		return err
	}
	for _, p := range plots {
		s.riskDeb.Put(p, struct{}{})
	}
	if soilChanged {
		s.soilDeb.Put(soilPlot, struct{}{})
	}
	return s.pruneLocked()
}

// horizonLocked is the start of the oldest hour whose raw values are kept:
// late_days before the latest hour. s.mu held.
func (s *Service) horizonLocked() int64 {
	if s.mu.latest == 0 {
		return 0
	}
	return s.mu.latest - int64(s.cfg.LateDays)*24*3600
}

// pruneLocked deletes the raw values of the hours before the horizon, once
// the horizon has moved a day since the last time. s.mu held.
func (s *Service) pruneLocked() error {
	h := s.horizonLocked()
	if h-s.mu.pruned < 24*3600 {
		return nil
	}
	var b service.Batch
	for dev := range s.feeds {
		err := s.mu.st.Scan("r/"+dev+"/", func(key string, _ []byte) error {
			rest := key[len("r/"+dev+"/"):]
			if len(rest) < 16 {
				return nil
			}
			hour, err := strconv.ParseInt(rest[:16], 16, 64)
			if err != nil || hour >= h {
				return service.ErrStop
			}
			b.Delete(s.mu.st, key)
			return nil
		})
		if err != nil {
			return fmt.Errorf("vineyard: prune: %w", err)
		}
	}
	if err := s.mu.st.Apply(&b); err != nil {
		return fmt.Errorf("vineyard: prune: %w", err)
	}
	s.mu.pruned = h
	return nil
}

// recomputeLocked computes the plot hours the dirty device hours feed from
// the values in the state and those of pending (not yet written), adds
// them, the plots' new revisions and the removal of dirty marks to b,
// applies b and returns the plots whose weather changed; s.mu held. (Dirty
// marks, d/{device}/{hour}, are left by older versions' two-step writes;
// the service finishes them at start.)
func (s *Service) recomputeLocked(b *service.Batch, pending map[string][]byte, dirty []devHour) ([]string, error) {
	st := s.mu.st
	type plotHour struct {
		plot string
		hour int64
	}
	todo := map[plotHour]bool{}
	for _, dh := range dirty {
		for _, p := range s.feeds[dh.dev] {
			todo[plotHour{p, dh.hour}] = true
		}
		if pending == nil {
			b.Delete(st, "d/"+hourKey(dh.dev, dh.hour))
		}
	}
	changed := map[string]bool{}
	revs := map[string]bool{}
	for ph := range todo {
		pi := s.plots[ph.plot]
		h, ok, err := s.plotHour(pi, ph.hour, pending)
		if err != nil {
			return nil, err
		}
		hours := s.hoursOf(ph.plot)
		old, had := hours[ph.hour]
		switch {
		case ok && (!had || old != h):
			hours[ph.hour] = h
			s.mu.latest = max(s.mu.latest, ph.hour)
			b.Set(st, "h/"+hourKey(ph.plot, ph.hour), marshal(recordOf(h)))
		case !ok && had:
			delete(hours, ph.hour)
			b.Delete(st, "h/"+hourKey(ph.plot, ph.hour))
		default:
			continue
		}
		changed[ph.plot] = true
		revs[ph.plot] = true
	}
	for p := range revs {
		rev, err := s.revisionLocked(p)
		if err != nil {
			return nil, err
		}
		b.Set(st, "v/"+p, []byte(fmt.Sprint(rev+1)))
	}
	if err := st.Apply(b); err != nil {
		return nil, fmt.Errorf("vineyard: keep values and hours: %w", err)
	}
	return mapKeys(changed), nil
}

// revisionLocked returns the plot's revision: how many times its weather
// changed. s.mu held.
func (s *Service) revisionLocked(plot string) (int64, error) {
	v, ok, err := s.mu.st.Get("v/" + plot)
	if err != nil || !ok {
		return 0, err
	}
	var n int64
	_, err = fmt.Sscan(string(v), &n)
	return n, err
}

// plotHour computes one hour of a plot's weather from the values the state
// holds: air temperature, humidity and rain from its station (the mean of
// the hour's values; rain is a rate in mm/h, so its mean over the hour is
// the hour's rain in mm), leaf wetness from its leaf sensors (the mean of
// each sensor's values, averaged over the sensors, as a fraction). An hour
// without both a temperature and a humidity value does not exist.
func (s *Service) plotHour(pi *plotInfo, hour int64, pending map[string][]byte) (vineyard.Hour, bool, error) {
	if pi.station == "" {
		return vineyard.Hour{}, false, nil
	}
	m, err := s.means(pi.station, hour, pending)
	if err != nil {
		return vineyard.Hour{}, false, err
	}
	t, okT := m["t"]
	rh, okH := m["h"]
	if !okT || !okH {
		return vineyard.Hour{}, false, nil
	}
	h := vineyard.Hour{Time: time.Unix(hour, 0).In(s.model.Location), TempC: round(t, 3), RHPct: round(min(max(rh, 0), 100), 3), RainMM: round(max(m["r"], 0), 3)}
	var lw float64
	n := 0
	for _, d := range pi.leaf {
		lm, err := s.means(d, hour, pending)
		if err != nil {
			return vineyard.Hour{}, false, err
		}
		if v, ok := lm["l"]; ok {
			lw += min(max(v/100, 0), 1)
			n++
		}
	}
	if n > 0 {
		h.LeafWet, h.HasLeafWet = round(lw/float64(n), 4), true
	}
	return h, true, nil
}

// means returns the mean of each quantity's values of dev in the hour:
// those in the state and those pending, summed in key order (so the same
// values give the same sums whatever their order of arrival).
func (s *Service) means(dev string, hour int64, pending map[string][]byte) (map[string]float64, error) {
	prefix := "r/" + hourKey(dev, hour) + "/"
	vals := map[string][]byte{}
	err := s.mu.st.Scan(prefix, func(key string, v []byte) error {
		vals[key] = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vineyard: read values of %s: %w", dev, err)
	}
	for k, v := range pending {
		if strings.HasPrefix(k, prefix) {
			vals[k] = v
		}
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sum := map[string]float64{}
	n := map[string]int{}
	for _, key := range keys {
		rest := key[len(prefix):]
		if len(rest) < 2 {
			continue
		}
		f, ok := bytesFloat(vals[key])
		if !ok {
			continue
		}
		sum[rest[:1]] += f
		n[rest[:1]]++
	}
	for c, v := range sum {
		sum[c] = v / float64(n[c])
	}
	return sum, nil
}

// refresh assesses a plot and publishes its weather, its risk and its
// alarms.
func (s *Service) refresh(ctx context.Context, plot string) {
	s.mu.Lock()
	env := s.mu.env
	res, rev, err := s.assessLocked(plot)
	s.mu.Unlock()
	if err != nil {
		env.Error(err)
		return
	}
	if res == nil {
		return
	}
	pi := s.plots[plot]
	for _, out := range []struct {
		event string
		v     any
	}{{eventWx, weatherDoc(pi, res, s.name)}, {eventRisk, res.risk}} {
		topic := event.NewTopic(event.DomainVineyard, pi.Site, event.AssetPlot, plot, out.event).String()
		s.publishRetained(ctx, env, topic, pi.Tenant, marshal(out.v))
	}
	s.updateAlarms(ctx, pi, res, rev)
}

// publishRetained publishes payload retained on topic and, with
// TenantTopics (the default), on its copy in tenant's namespace.
func (s *Service) publishRetained(ctx context.Context, env *service.Env, topic, tenant string, payload []byte) {
	topics := []string{topic}
	if (s.cfg.TenantTopics == nil || *s.cfg.TenantTopics) && tenant != "" && !strings.ContainsAny(tenant, "/+#") {
		topics = append(topics, "$tenant/"+tenant+"/"+topic)
	}
	for _, t := range topics {
		if err := env.Bus.Publish(ctx, bus.Message{Topic: t, Payload: payload, QoS: 1, Retain: true, ContentType: "application/json"}); err != nil {
			env.Error(fmt.Errorf("vineyard: publish %s: %w", t, err))
		}
	}
}

// assessLocked runs the models over a plot's hours; nil when it has none.
func (s *Service) assessLocked(plot string) (*plotResult, int64, error) {
	hm := s.mu.hours[plot]
	if len(hm) == 0 {
		delete(s.mu.results, plot)
		return nil, 0, nil
	}
	keys := make([]int64, 0, len(hm))
	for k := range hm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// The season: the models read the hours from 1 January of the latest
	// hour's year (the oospores' degree-days start there).
	lastT := hm[keys[len(keys)-1]].Time
	jan1 := time.Date(lastT.Year(), time.January, 1, 0, 0, 0, 0, s.model.Location).Unix()
	keys = keys[sort.Search(len(keys), func(i int) bool { return keys[i] >= jan1 }):]
	hours := make([]vineyard.Hour, len(keys))
	var gaps []vineyard.Gap
	for i, k := range keys {
		hours[i] = hm[k]
		if i > 0 && k-keys[i-1] > 3600 {
			gaps = append(gaps, vineyard.Gap{After: hours[i-1].Time, Before: hours[i].Time, MissingHours: int((k-keys[i-1])/3600) - 1})
		}
	}
	last := hours[len(hours)-1].Time
	cfg := vineyard.Config{
		WetRH: s.cfg.WetRH,
		Downy: vineyard.DownyConfig{PriorDegreeDays: s.cfg.PriorDegreeDays, ShootCM: s.cfg.ShootCM},
		From:  time.Date(last.Year(), s.budMonth, s.budDay, 0, 0, 0, 0, s.model.Location),
	}
	a, err := vineyard.Assess(vineyard.Weather{Hours: hours, Gaps: gaps}, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("vineyard: assess %s: %w", plot, err)
	}
	rev, err := s.revisionLocked(plot)
	if err != nil {
		return nil, 0, err
	}
	res := &plotResult{assessment: a, hours: hours, derived: vineyard.Derive(hours, s.cfg.WetRH)}
	res.risk = s.riskDoc(s.plots[plot], res)
	s.mu.results[plot] = res
	return res, rev, nil
}

// updateAlarms raises or clears each disease's alarm of the plot. The
// event time of a raise or clear is the start of the plot's latest hour
// plus its weather revision in nanoseconds: each computation is a newer
// observation than the ones before it, so the last one decides, whatever
// order the values came in.
func (s *Service) updateAlarms(ctx context.Context, pi *plotInfo, res *plotResult, rev int64) {
	env := s.mu.env
	at := res.hours[len(res.hours)-1].Time.Add(time.Duration(rev))
	for _, d := range res.risk.Diseases {
		key := alarm.Key{Site: pi.Site, Kind: string(event.AssetPlot), Asset: pi.ID, Type: alarmType(d.Disease)}
		if d.AlarmLevel < s.alarmAt {
			if _, _, err := s.alarms.Clear(ctx, key, at, fmt.Sprintf("%s risk %s since %s", words(d.Disease), d.AlarmLevel, d.Date)); err != nil {
				env.Error(err)
			}
			continue
		}
		var reasons []vineyard.Reason
		for _, day := range d.Days[max(0, len(d.Days)-s.cfg.AlarmDays):] {
			for _, r := range day.Reasons {
				if r.Level >= s.alarmAt {
					reasons = append(reasons, r)
				}
			}
		}
		desc := fmt.Sprintf("%s risk %s on plot %s (%s)", words(d.Disease), d.AlarmLevel, pi.ID, d.AlarmDate)
		if len(reasons) > 0 {
			desc += ": " + reasons[len(reasons)-1].Text
		}
		if len(desc) > 1000 {
			desc = desc[:1000]
		}
		_, _, err := s.alarms.Raise(ctx, alarm.Condition{
			Key: key, Tenant: pi.Tenant, Severity: severity(d.AlarmLevel), Category: "agriculture", SubCategory: "fungus",
			Description: desc, Time: at,
			Data: map[string]any{"disease": d.Disease, "level": d.AlarmLevel, "date": d.AlarmDate, "reasons": reasons},
		})
		if err != nil {
			env.Error(err)
		}
	}
}

// severity maps a risk level to an alarm severity.
func severity(l vineyard.Level) alarm.Severity {
	switch l {
	case vineyard.High:
		return alarm.Major
	case vineyard.Moderate:
		return alarm.Minor
	}
	return alarm.Warning
}

func words(disease string) string {
	b := []byte(disease)
	for i, c := range b {
		if c == '_' {
			b[i] = ' '
		}
	}
	return string(b)
}

// plotsOf returns the plot ids of a tenant (every plot with all).
func (s *Service) visible(plot string, tenant string, all bool) bool {
	pi := s.plots[plot]
	return pi != nil && (all || pi.Tenant == tenant)
}
