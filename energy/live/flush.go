package live

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
)

// exchange files the exchange records (r.mu held) of a gateway's meter_exchange status
// event. The record's time is the old meter's final reading; the new
// meter's start reading follows it (a second later), so the exchange is
// filed an instant after the record's time: readings at or after it are
// the new meter's (energy.Exchange).
func (r *run) exchange(e *event.Status) error {
	meter, at, recs, err := ParseExchangeDetail(e.Detail)
	if err != nil {
		return fmt.Errorf("energy: gateway %s: %w", e.Asset, err)
	}
	site, ok := r.s.meters[meter]
	if !ok {
		return nil
	}
	when := at.Add(time.Nanosecond).UTC()
	var b service.Batch
	type rec struct {
		k energy.RegisterKey
		e energy.Exchange
	}
	var add []rec
	for _, x := range recs {
		o, err := energy.ParseOBIS(x.OBIS)
		if err != nil {
			return fmt.Errorf("energy: meter exchange of %s: %w", meter, err)
		}
		k := energy.RegisterKey{Meter: meter, OBIS: o}
		ex := energy.Exchange{Time: when, OldFinal: x.OldFinal, NewStart: x.NewStart}
		dup := false
		for _, y := range r.exch[k] {
			dup = dup || (y.Time.Equal(ex.Time) && y.OldFinal == ex.OldFinal && y.NewStart == ex.NewStart)
		}
		if dup {
			continue
		}
		b.Set(r.env.State, "x/"+meter+"/"+o.String()+"/"+strconv.FormatInt(when.UnixNano(), 10), encodeExchange(ex))
		add = append(add, rec{k, ex})
	}
	if b.Len() == 0 {
		return nil
	}
	if err := r.env.State.Apply(&b); err != nil {
		return fmt.Errorf("energy: storing a meter exchange: %w", err)
	}
	for _, a := range add {
		r.exch[a.k] = append(r.exch[a.k], a.e)
		for key, pr := range r.periods[site] {
			if pr.rb.AddExchange(a.k, a.e) {
				pr.changed[a.k.Meter] = true
				r.deb.Put(site+"|"+key, struct{}{})
			}
		}
	}
	return nil
}

// ExchangeRecord is one register's meter exchange record.
type ExchangeRecord struct {
	OBIS               string
	OldFinal, NewStart float64
}

// ParseExchangeDetail reads the detail of a building gateway's
// meter_exchange status event (docs/events.md):
//
//	meter ht-b01-main exchanged at 2026-05-12T09:40:00+02:00: 6-0:1.0.0 old_final=11459455.9 new_start=5
//
// with one "OBIS old_final=X new_start=Y" per register, separated by "; ".
func ParseExchangeDetail(s string) (meter string, at time.Time, recs []ExchangeRecord, err error) {
	bad := func(why string) error { return fmt.Errorf("meter exchange %q: %s", s, why) }
	rest, ok := strings.CutPrefix(s, "meter ")
	if !ok {
		return "", at, nil, bad(`does not start with "meter "`)
	}
	meter, rest, ok = strings.Cut(rest, " exchanged at ")
	if !ok || meter == "" {
		return "", at, nil, bad(`no "METER exchanged at"`)
	}
	ts, rest, ok := strings.Cut(rest, ": ")
	if !ok {
		return "", at, nil, bad("no registers")
	}
	if at, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return "", at, nil, bad("time: " + err.Error())
	}
	for part := range strings.SplitSeq(rest, "; ") {
		f := strings.Fields(part)
		if len(f) != 3 {
			return "", at, nil, bad(fmt.Sprintf("register %q: want OBIS old_final=X new_start=Y", part))
		}
		rec := ExchangeRecord{OBIS: f[0]}
		for i, name := range []string{"old_final=", "new_start="} {
			v, ok := strings.CutPrefix(f[i+1], name)
			x, perr := strconv.ParseFloat(v, 64)
			if !ok || perr != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
				return "", at, nil, bad(fmt.Sprintf("%q is not %sNUMBER", f[i+1], name))
			}
			if i == 0 {
				rec.OldFinal = x
			} else {
				rec.NewStart = x
			}
		}
		recs = append(recs, rec)
	}
	return meter, at, recs, nil
}

// flush computes the invoices, ESG figures and anomalies of one site's
// month (key "site|YYYY-MM") and publishes what changed; a month that is
// complete is closed.
func (r *run) flush(ctx context.Context, key string) {
	site, pkey, _ := strings.Cut(key, "|")
	r.mu.Lock()
	pr := r.periods[site][pkey]
	if pr == nil {
		r.mu.Unlock()
		return
	}
	invs, warn, err := pr.rb.Invoices()
	if err != nil {
		r.mu.Unlock()
		r.env.Error(fmt.Errorf("energy: %s %s: %w", site, pkey, err))
		return
	}
	esg, esgErr := r.esg(site, pr)
	changed := pr.changed
	pr.changed = map[string]bool{}
	var conds []anomaly
	if r.alarm != nil {
		conds = r.anomalies(site, changed)
	}
	final := r.complete(site, pr)
	newest := true
	for k := range r.periods[site] {
		if k > pkey {
			newest = false
		}
	}
	latest := pr.latest
	if final {
		delete(r.periods[site], pkey)
		r.markClosed(site, pkey)
	}
	r.mu.Unlock()

	status := StatusRunning
	if final {
		status = StatusFinal
	}
	evs := make([]InvoiceEvent, len(invs))
	for i, inv := range invs {
		evs[i] = InvoiceEvent{Site: site, Period: pkey, Status: status, Updated: latest, Invoice: inv, Warnings: warn}
	}
	if final {
		var fesg *ESGEvent
		if esgErr == nil {
			esg.Status = StatusFinal
			fesg = &esg
		}
		if err := r.storeFinal(site, pkey, evs, fesg); err != nil {
			r.env.Error(err)
			// Keep it open: the next reading or the grace check retries.
			r.mu.Lock()
			r.periods[site][pkey] = pr
			delete(r.closed[site], pkey)
			r.mu.Unlock()
			return
		}
		r.prune()
	}
	// The API shows the month's invoices and ESG figures of this flush
	// at once, before they are published: a reader who sees its invoices
	// sees its ESG figures too.
	var vesg *ESGEvent
	if esgErr != nil {
		r.env.Degraded("ESG: " + esgErr.Error())
	} else {
		esg.Status = status
		vesg = &esg
	}
	r.s.setView(evs, vesg)
	for _, ev := range evs {
		var names []string
		if final {
			names = append(names, EventFinalInvoice)
		}
		if newest {
			names = append(names, EventInvoice)
		}
		for _, name := range names {
			topic := InvoiceTopic(site, ev.Invoice.Tenant, name)
			r.publish(ctx, topic, ev)
			if t := ev.Invoice.Tenant; (r.s.cfg.TenantTopics == nil || *r.s.cfg.TenantTopics) && t != "" && !strings.ContainsAny(t, "/+#") {
				r.publish(ctx, TenantNamespace+ev.Invoice.Tenant+"/"+topic, ev)
			}
		}
	}
	if vesg != nil && newest {
		r.publish(ctx, ESGTopic(site), esg)
	}
	for _, c := range conds {
		r.applyAnomaly(ctx, c)
	}
}

// complete reports whether month pr of site can close: every billed meter
// has read at or after its end, or its grace ended.
func (r *run) complete(site string, pr *period) bool {
	if !r.env.Now().Before(pr.to.Add(r.s.cfg.Grace)) {
		return true
	}
	for _, m := range r.s.sites[site].Meters {
		if r.latest[m.ID].Before(pr.to) {
			return false
		}
	}
	return true
}

// checkGrace flushes the months whose grace ended, so that they close.
func (r *run) checkGrace() {
	now := r.env.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for site, ps := range r.periods {
		for key, pr := range ps {
			if !now.Before(pr.to.Add(r.s.cfg.Grace)) {
				r.deb.Put(site+"|"+key, struct{}{})
			}
		}
	}
}

// storeFinal keeps a closed month's final invoices and ESG figures.
func (r *run) storeFinal(site, pkey string, evs []InvoiceEvent, esg *ESGEvent) error {
	var b service.Batch
	if esg != nil {
		data, err := json.Marshal(esg)
		if err != nil {
			return fmt.Errorf("energy: final ESG: %w", err)
		}
		b.Set(r.env.State, "esg/"+site+"/"+pkey, data)
	}
	for _, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("energy: final invoice: %w", err)
		}
		b.Set(r.env.State, "final/"+site+"/"+pkey+"/"+ev.Invoice.Tenant, data)
	}
	b.Set(r.env.State, "closed/"+site+"/"+pkey, []byte{1})
	if err := r.env.State.Apply(&b); err != nil {
		return fmt.Errorf("energy: storing the final invoices of %s %s: %w", site, pkey, err)
	}
	return nil
}

// prune deletes the stored readings that no open month needs: the days
// that end a day or more before the oldest open month of their site (or,
// with none open, before the newest closed month's end).
func (r *run) prune() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b service.Batch
	for k, days := range r.days {
		site := r.s.meters[k.Meter]
		var keep time.Time
		for _, pr := range r.periods[site] {
			if keep.IsZero() || pr.from.Before(keep) {
				keep = pr.from
			}
		}
		if keep.IsZero() {
			for p := range r.closed[site] {
				from, err := time.ParseInLocation("2006-01", p, r.s.loc)
				if err == nil && from.AddDate(0, 1, 0).After(keep) {
					keep = from.AddDate(0, 1, 0)
				}
			}
		}
		limit := keep.Add(-24 * time.Hour)
		// The anomaly window reaches further back.
		if w := r.latest[k.Meter].Add(-time.Duration(r.s.cfg.Anomalies.WindowDays+1) * 24 * time.Hour); w.Before(limit) {
			limit = w
		}
		for d := range days {
			dt, _ := time.Parse(time.DateOnly, d)
			if dt.Add(24 * time.Hour).Before(limit) {
				delete(days, d)
				b.Delete(r.env.State, dayKey(k, d))
			}
		}
	}
	if b.Len() > 0 {
		if err := r.env.State.Apply(&b); err != nil {
			r.env.Error(fmt.Errorf("energy: pruning readings: %w", err))
		}
	}
}

// esg computes site's ESG figures for month pr.
func (r *run) esg(site string, pr *period) (ESGEvent, error) {
	ev := ESGEvent{Site: site, Period: pr.key, Updated: pr.latest}
	all, err := energy.UsesFromSeries(pr.rb.Series(), pr.rb.Site())
	if err != nil {
		return ev, err
	}
	// Water is not energy; a carrier the factor set has no factor for is
	// left out with a note rather than failing the whole report.
	var uses []energy.CarrierUse
	var notes []string
	for _, u := range all {
		if u.Carrier == energy.Water {
			continue
		}
		if _, err := energy.ESG([]energy.CarrierUse{u}, r.s.factors, pr.from.Year(), nil); err != nil {
			notes = append(notes, fmt.Sprintf("%s (%.3f kWh) left out: %v", u.Carrier, u.KWh, err))
			continue
		}
		uses = append(uses, u)
	}
	rep, err := energy.ESG(uses, r.s.factors, pr.from.Year(), nil)
	if err != nil {
		return ev, err
	}
	rep.Notes = append(rep.Notes, notes...)
	if uses == nil {
		uses = []energy.CarrierUse{}
	}
	ev.Uses, ev.ESGReport = uses, rep
	return ev, nil
}

// Event names of the derived events.
const (
	EventInvoice      = "invoice"
	EventFinalInvoice = "final-invoice"
	EventESG          = "esg"
)

// TenantNamespace is the first level of every tenant's namespace on the
// broker: its clients see $tenant/{tenant}/x as x (docs/security.md).
const TenantNamespace = "$tenant/"

// InvoiceTopic returns energy/{site}/tenant/{tenant}/{name}.
func InvoiceTopic(site, tenant, name string) string {
	return "energy/" + site + "/tenant/" + tenant + "/" + name
}

// ESGTopic returns energy/{site}/site/{site}/esg.
func ESGTopic(site string) string { return "energy/" + site + "/site/" + site + "/" + EventESG }

// publish publishes v retained with QoS 1 on topic unless it is what was
// published there last.
func (r *run) publish(ctx context.Context, topic string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		r.env.Error(fmt.Errorf("energy: %s: %w", topic, err))
		return
	}
	r.mu.Lock()
	same := bytes.Equal(r.lastSent[topic], data)
	r.mu.Unlock()
	if same {
		return
	}
	if err := r.env.Bus.Publish(ctx, bus.Message{Topic: topic, Payload: data, QoS: 1, Retain: true, ContentType: "application/json"}); err != nil {
		r.env.Error(fmt.Errorf("energy: publish %s: %w", topic, err))
		return
	}
	r.mu.Lock()
	r.lastSent[topic] = data
	r.mu.Unlock()
}

// anomaly is a condition found on one meter: raise (on) or clear it.
type anomaly struct {
	key  alarm.Key
	on   bool
	at   time.Time
	desc string
	data any
	sev  alarm.Severity
}

// windowSeries returns the series of meter m's billed register over the
// anomaly window (window_days) up to its newest reading, across months.
func (r *run) windowSeries(m energy.Meter) (energy.Series, error) {
	k := r.s.billed[m.ID]
	from := r.latest[m.ID].Add(-time.Duration(r.s.cfg.Anomalies.WindowDays) * 24 * time.Hour).UnixNano()
	var rs []energy.Reading
	for d, ps := range r.days[k] {
		dt, _ := time.Parse(time.DateOnly, d)
		if dt.Add(24*time.Hour).UnixNano() <= from {
			continue
		}
		for _, p := range ps {
			if p.t >= from {
				rs = append(rs, energy.Reading{Time: time.Unix(0, p.t).UTC(), Meter: k.Meter, OBIS: k.OBIS, Value: p.v})
			}
		}
	}
	reg := m.Register()
	reg.Exchanges = append(slices.Clone(reg.Exchanges), r.exch[k]...)
	s, err := energy.Consume(rs, reg, r.s.options())
	if err != nil {
		return s, fmt.Errorf("energy: anomalies of %s: %w", m.ID, err)
	}
	return s, nil
}

// anomalies evaluates the anomaly rules on the meters of site that
// received readings (over the anomaly window, across months), and returns
// the alarms whose state changes.
func (r *run) anomalies(site string, changed map[string]bool) []anomaly {
	cfg := r.s.cfg.Anomalies
	var out []anomaly
	set := func(meter, typ string, on bool, at time.Time, sev alarm.Severity, desc string, data any) {
		k := alarm.Key{Site: site, Kind: string(event.AssetMeter), Asset: meter, Type: typ}
		if r.active[k] == on {
			return
		}
		r.active[k] = on
		out = append(out, anomaly{key: k, on: on, at: at, desc: desc, data: data, sev: sev})
	}
	for _, m := range r.s.sites[site].Meters {
		if !changed[m.ID] {
			continue
		}
		s, err := r.windowSeries(m)
		if err != nil {
			r.env.Error(err)
			continue
		}
		if len(s.Intervals) == 0 {
			continue
		}
		carrier := m.Carrier
		last := s.Intervals[len(s.Intervals)-1].Start
		switch carrier {
		case energy.Water:
			flows, sus := energy.WaterLeaks(s, r.s.loc, energy.LeakRule{Threshold: cfg.LeakThreshold, Nights: cfg.LeakNights})
			if len(flows) == 0 {
				break
			}
			lf := flows[len(flows)-1]
			switch {
			case len(sus) > 0 && sus[len(sus)-1].To == lf.Date:
				ls := sus[len(sus)-1]
				set(s.Meter, AlarmWaterLeak, true, last, alarm.Major,
					fmt.Sprintf("water flows all night for %d nights (lowest night flow %.3f m³/h): a leak?", ls.Nights, ls.MinMNF), ls)
			case !lf.NonZero:
				set(s.Meter, AlarmWaterLeak, false, last, "", "the night flow fell to zero", nil)
			}
		case energy.Electricity:
			nl := energy.NightBaseLoad(s, r.s.loc, energy.NightRule{})
			if len(nl) > 0 {
				n := nl[len(nl)-1]
				if n.Flag {
					set(s.Meter, AlarmNightBaseLoad, true, last, alarm.Minor,
						fmt.Sprintf("night base load %.2f kW above the usual %.2f kW", n.Base, n.Median), n)
				} else {
					set(s.Meter, AlarmNightBaseLoad, false, last, "", "night base load back to usual", nil)
				}
			}
		}
		if b, err := energy.FitHourOfWeek(s, r.s.loc, cfg.TrainDays, energy.DeviationRule{Rel: cfg.Rel, Abs: cfg.Abs, MinPeriods: cfg.MinPeriods}); err == nil {
			lastHour := last.Truncate(time.Hour).UTC()
			on := false
			var dev energy.Deviation
			if n := len(b.Deviations); n > 0 {
				dev = b.Deviations[n-1]
				if to, err := time.Parse(time.RFC3339, dev.To); err == nil && !to.Before(lastHour.Add(-time.Hour)) {
					on = true
				}
			}
			if on {
				set(s.Meter, AlarmDeviation, true, last, alarm.Warning,
					fmt.Sprintf("consumption %.2f against a baseline of %.2f for %d hours", dev.Measured, dev.Baseline, dev.Periods), dev)
			} else {
				set(s.Meter, AlarmDeviation, false, last, "", "consumption back at its baseline", nil)
			}
		}
	}
	return out
}

func (r *run) applyAnomaly(ctx context.Context, a anomaly) {
	var err error
	if a.on {
		_, _, err = r.alarm.Raise(ctx, alarm.Condition{Key: a.key, Severity: a.sev, Category: "energy", Tenant: r.s.tenants[a.key.Asset], Description: a.desc, Data: a.data, Time: a.at})
	} else {
		_, _, err = r.alarm.Clear(ctx, a.key, a.at, a.desc)
	}
	if err != nil {
		r.env.Error(fmt.Errorf("energy: alarm %s: %w", a.key, err))
	}
}

// setView keeps the invoices and ESG figures (nil: none) of one flush for
// the API, in one step.
func (s *Service) setView(evs []InvoiceEvent, esg *ESGEvent) {
	s.view.Lock()
	defer s.view.Unlock()
	for _, ev := range evs {
		s.setInvoiceLocked(ev)
	}
	if esg != nil {
		s.setESGLocked(*esg)
	}
}

// setInvoice keeps ev for the API.
func (s *Service) setInvoice(ev InvoiceEvent) {
	s.view.Lock()
	defer s.view.Unlock()
	s.setInvoiceLocked(ev)
}

// setInvoiceLocked keeps ev for the API (s.view held).
func (s *Service) setInvoiceLocked(ev InvoiceEvent) {
	if s.view.invoices[ev.Site] == nil {
		s.view.invoices[ev.Site] = map[string]map[string]InvoiceEvent{}
	}
	if s.view.invoices[ev.Site][ev.Period] == nil {
		s.view.invoices[ev.Site][ev.Period] = map[string]InvoiceEvent{}
	}
	s.view.invoices[ev.Site][ev.Period][ev.Invoice.Tenant] = ev
}

// setESG keeps ev for the API.
func (s *Service) setESG(ev ESGEvent) {
	s.view.Lock()
	defer s.view.Unlock()
	s.setESGLocked(ev)
}

// setESGLocked keeps ev for the API (s.view held).
func (s *Service) setESGLocked(ev ESGEvent) {
	if s.view.esg[ev.Site] == nil {
		s.view.esg[ev.Site] = map[string]ESGEvent{}
	}
	s.view.esg[ev.Site][ev.Period] = ev
}
