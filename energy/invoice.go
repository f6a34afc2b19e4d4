package energy

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// InvoiceOptions sets the billing period [From, To) and how consumption is
// computed from readings.
type InvoiceOptions struct {
	From, To    time.Time
	Consumption Options
}

// Line is one invoice line. Amount is Quantity × UnitPrice rounded to the
// cent (half away from zero); Quantity is shown as it was used. A standing
// charge prorated by months shows its quantity rounded to 4 places, while
// Amount uses the exact fraction days/days-in-month.
type Line struct {
	Kind        string          `json:"kind"` // energy, standing, heating
	Description string          `json:"description"`
	Carrier     Carrier         `json:"carrier,omitempty"`
	Band        string          `json:"band,omitempty"`
	Quantity    decimal.Decimal `json:"quantity"`
	Unit        string          `json:"unit"`
	UnitPrice   decimal.Decimal `json:"unit_price"`
	Amount      decimal.Decimal `json:"amount"`
}

// Invoice is one tenant's bill for a period. Net is the sum of the line
// amounts, VAT is Net × VATPercent/100 rounded to the cent, Gross is Net+VAT.
type Invoice struct {
	Tenant     string          `json:"tenant"`
	Name       string          `json:"name,omitempty"`
	From       time.Time       `json:"from"`
	To         time.Time       `json:"to"`
	Currency   string          `json:"currency"`
	Lines      []Line          `json:"lines"`
	Net        decimal.Decimal `json:"net"`
	VATPercent decimal.Decimal `json:"vat_percent"`
	VAT        decimal.Decimal `json:"vat"`
	Gross      decimal.Decimal `json:"gross"`
	// Estimated is set when some billed consumption was interpolated or
	// some metered data was missing; Notes say which.
	Estimated bool     `json:"estimated"`
	Notes     []string `json:"notes,omitempty"`
}

// meterBill is what billing needs from one meter over the period: the
// consumption per tariff band (in billing units) and its quality.
type meterBill struct {
	bands []float64 // per band of the carrier's tariff; one entry when no tariff
	total float64
	notes []string
	est   bool
}

// Billing computes invoices for a site. Build it with NewBilling.
type Billing struct {
	site    Site
	tariffs Tariffs
	opt     InvoiceOptions
}

// NewBilling checks its inputs and returns a Billing.
func NewBilling(site Site, tariffs Tariffs, opt InvoiceOptions) (*Billing, error) {
	// Check fills in the meters; the billing works on meters of its own, so
	// that the caller's site is neither written nor shared (several
	// billings of one site may run at once).
	site.Meters = slices.Clone(site.Meters)
	for i := range site.Meters {
		site.Meters[i].Registers = slices.Clone(site.Meters[i].Registers)
	}
	if err := site.Check(); err != nil {
		return nil, err
	}
	// Check prepares the tariffs in place: on a copy of the billing's own,
	// since the caller's bands and heating are shared with its Tariffs.
	tariffs = tariffs.Clone()
	if err := tariffs.Check(); err != nil {
		return nil, err
	}
	if !opt.From.Before(opt.To) {
		return nil, fmt.Errorf("invoice: period from %s must be before to %s", opt.From.Format(time.RFC3339), opt.To.Format(time.RFC3339))
	}
	if len(site.Tenants) == 0 {
		return nil, fmt.Errorf("invoice: site has no tenants")
	}
	if h := tariffs.Heating; h != nil {
		for _, id := range h.Tenants {
			if site.tenant(id) == nil {
				return nil, fmt.Errorf("invoice: heating tenant %s is not in the site's tenants", id)
			}
		}
	}
	return &Billing{site: site, tariffs: tariffs, opt: opt}, nil
}

// Invoices computes every tenant's invoice from readings in one batch. The
// second result lists site-level warnings (negative remainders of shared
// meters, carriers without a tariff, readings of unknown meters).
func Invoices(readings []Reading, site Site, tariffs Tariffs, opt InvoiceOptions) ([]Invoice, []string, error) {
	b, err := NewBilling(site, tariffs, opt)
	if err != nil {
		return nil, nil, err
	}
	byMeter := map[string][]Reading{}
	unknown := 0
	regs := b.site.Registers()
	billed := b.site.billedRegisters()
	for _, r := range readings {
		if _, ok := regs[r.Key()]; !ok {
			unknown++
			continue
		}
		if billed[r.Key()] {
			byMeter[r.Meter] = append(byMeter[r.Meter], r)
		}
	}
	bills := map[string]meterBill{}
	for _, m := range b.site.Meters {
		mb, _, err := b.meterBill(m, byMeter[m.ID])
		if err != nil {
			return nil, nil, err
		}
		bills[m.ID] = mb
	}
	inv, warn, err := b.assemble(bills)
	if err != nil {
		return nil, nil, err
	}
	if unknown > 0 {
		warn = append(warn, fmt.Sprintf("%d readings of registers not in the site file were ignored", unknown))
	}
	return inv, warn, nil
}

// meterBill bills meter m's billed register from its readings rs (which
// it may reorder) and returns the register's series too.
func (b *Billing) meterBill(m Meter, rs []Reading) (meterBill, Series, error) {
	s, err := consumeOwned(rs, m.Register(), b.opt.Consumption)
	if err != nil {
		return meterBill{}, s, fmt.Errorf("invoice: meter %s: %w", m.ID, err)
	}
	tf := b.tariffs.tariff(m.Carrier)
	nb := 1
	if tf != nil {
		nb = len(tf.Bands)
	}
	mb := meterBill{bands: make([]float64, nb)}
	f := m.factor()
	var firstStart, lastEnd time.Time
	step := b.opt.Consumption.interval()
	for _, iv := range s.Intervals {
		if iv.Start.Before(b.opt.From) || !iv.Start.Before(b.opt.To) {
			continue
		}
		if firstStart.IsZero() {
			firstStart = iv.Start
		}
		lastEnd = iv.Start.Add(step)
		k := 0
		if tf != nil {
			k = tf.band(iv.Start.In(b.tariffs.loc))
		}
		mb.bands[k] += iv.Value * f
		mb.total += iv.Value * f
		if iv.Estimated || !iv.Complete {
			mb.est = true
		}
	}
	if math.IsInf(mb.total, 0) {
		return meterBill{}, s, fmt.Errorf("invoice: meter %s: consumption times factor %v overflows", m.ID, f)
	}
	if mb.est {
		mb.notes = append(mb.notes, fmt.Sprintf("meter %s: some consumption is interpolated between readings or intervals are incomplete", m.ID))
	}
	if firstStart.IsZero() {
		mb.est = true
		mb.notes = append(mb.notes, fmt.Sprintf("meter %s: no consumption data in the period", m.ID))
	} else if firstStart.After(b.opt.From) || lastEnd.Before(b.opt.To) {
		mb.est = true
		mb.notes = append(mb.notes, fmt.Sprintf("meter %s: data covers only %s to %s", m.ID, firstStart.Format(time.RFC3339), lastEnd.Format(time.RFC3339)))
	}
	for _, g := range s.Gaps {
		if g.Filled || !g.From.Before(b.opt.To) || !g.To.After(b.opt.From) {
			continue
		}
		mb.est = true
		mb.notes = append(mb.notes, fmt.Sprintf("meter %s: gap %s to %s (%.3f %s) not billed; fill gaps to apportion it as an estimate",
			m.ID, g.From.Format(time.RFC3339), g.To.Format(time.RFC3339), g.Delta, s.Unit))
	}
	for _, e := range s.Events {
		mb.notes = append(mb.notes, fmt.Sprintf("meter %s: %s at %s: %s", m.ID, e.Kind, e.Time.Format(time.RFC3339), e.Detail))
	}
	return mb, s, nil
}

// assemble turns per-meter band sums into invoices. It fails only when a
// tenant's summed consumption is not a finite number.
func (b *Billing) assemble(bills map[string]meterBill) ([]Invoice, []string, error) {
	var warn []string
	type share struct {
		bands []float64
		notes []string
		est   bool
	}
	// energy[tenant][carrier] = band sums
	energy := map[string]map[Carrier]*share{}
	add := func(tenant string, c Carrier, bands []float64, scale float64, notes []string, est bool) {
		if energy[tenant] == nil {
			energy[tenant] = map[Carrier]*share{}
		}
		sh := energy[tenant][c]
		if sh == nil {
			sh = &share{bands: make([]float64, len(bands))}
			energy[tenant][c] = sh
		}
		for i, v := range bands {
			sh.bands[i] += v * scale
		}
		sh.notes = append(sh.notes, notes...)
		sh.est = sh.est || est
	}
	heatCarrier := Carrier("")
	if b.tariffs.Heating != nil {
		heatCarrier = b.tariffs.Heating.Carrier
	}
	noTariff := map[Carrier]bool{}
	for _, t := range b.site.Tenants {
		for _, id := range t.Meters {
			m := b.site.meter(id)
			mb := bills[id]
			add(t.ID, m.Carrier, mb.bands, 1, mb.notes, mb.est)
		}
	}
	for _, a := range b.site.Shared {
		main := b.site.meter(a.Meter)
		mb := bills[a.Meter]
		rem := append([]float64(nil), mb.bands...)
		notes := append([]string(nil), mb.notes...)
		est := mb.est
		for _, sub := range a.SubMeters {
			sb := bills[sub]
			for i := range rem {
				rem[i] -= sb.bands[i]
			}
			notes = append(notes, sb.notes...)
			est = est || sb.est
		}
		for i, v := range rem {
			if v < 0 {
				warn = append(warn, fmt.Sprintf("shared meter %s: main minus sub-meters is negative (%.3f) in band %d; nothing allocated for it, check the meters", a.Meter, v, i+1))
				rem[i] = 0
			}
		}
		var area float64
		for _, tid := range a.Tenants {
			area += a.area(b.site.tenant(tid))
		}
		for _, tid := range a.Tenants {
			ta := a.area(b.site.tenant(tid))
			n := append([]string{fmt.Sprintf("shared meter %s (minus sub-meters) by area: %.2f of %.2f m²", a.Meter, ta, area)}, notes...)
			add(tid, main.Carrier, rem, ta/area, n, est)
		}
	}
	// Heating split, HeizkostenV §7.
	var heating map[string]HeatingShare
	if h := b.tariffs.Heating; h != nil {
		users := make([]HeatingUser, 0, len(b.site.Tenants))
		inHeating := map[string]bool{}
		for _, id := range h.Tenants {
			inHeating[id] = true
		}
		for _, t := range b.site.Tenants {
			if len(h.Tenants) > 0 && !inHeating[t.ID] {
				continue
			}
			// §7 (1): the consumption part goes by each user's measured
			// consumption, i.e. the user's own heat meters; a shared main
			// meter's remainder (allocated by area) is not measured use.
			var e float64
			for _, id := range t.Meters {
				if b.site.meter(id).Carrier == h.Carrier {
					e += bills[id].total
				}
			}
			users = append(users, HeatingUser{ID: t.ID, Consumption: e, AreaM2: t.AreaM2})
		}
		shares, err := SplitHeatingCost(h.Cost, h.ConsumptionShare, users)
		if err != nil {
			warn = append(warn, fmt.Sprintf("heating cost not split: %v", err))
		} else {
			heating = map[string]HeatingShare{}
			for _, s := range shares {
				heating[s.ID] = s
			}
		}
	}
	rate := b.tariffs.vat()
	out := make([]Invoice, 0, len(b.site.Tenants))
	for _, t := range b.site.Tenants {
		inv := Invoice{Tenant: t.ID, Name: t.Name, From: b.opt.From.UTC(), To: b.opt.To.UTC(), Currency: b.tariffs.Currency, VATPercent: rate, Lines: []Line{}}
		carriers := make([]Carrier, 0, len(energy[t.ID]))
		for c := range energy[t.ID] {
			carriers = append(carriers, c)
		}
		sort.Slice(carriers, func(i, j int) bool { return carriers[i] < carriers[j] })
		for _, c := range carriers {
			sh := energy[t.ID][c]
			inv.Notes = append(inv.Notes, sh.notes...)
			inv.Estimated = inv.Estimated || sh.est
			if c == heatCarrier && heating != nil {
				continue // billed through the heating-cost split
			}
			tf := b.tariffs.tariff(c)
			if tf == nil {
				noTariff[c] = true
				continue
			}
			unit := tf.Unit
			if unit == "" {
				unit = "kWh"
			}
			for i, band := range tf.Bands {
				if math.IsNaN(sh.bands[i]) || math.IsInf(sh.bands[i], 0) {
					return nil, nil, fmt.Errorf("invoice: tenant %s: %s consumption in band %s is %v", t.ID, c, band.Name, sh.bands[i])
				}
				qty := decimal.NewFromFloat(sh.bands[i]).Round(3)
				if qty.IsZero() {
					continue
				}
				inv.Lines = append(inv.Lines, Line{Kind: "energy", Description: fmt.Sprintf("%s %s", c, band.Name), Carrier: c, Band: band.Name,
					Quantity: qty, Unit: unit, UnitPrice: band.Price, Amount: qty.Mul(band.Price).Round(2)})
			}
		}
		for _, id := range t.Meters {
			m := b.site.meter(id)
			tf := b.tariffs.tariff(m.Carrier)
			if tf == nil || tf.Standing == nil || (m.Carrier == heatCarrier && heating != nil) {
				continue
			}
			qty, exact, unit := b.standingQuantity(tf.Standing.Per)
			inv.Lines = append(inv.Lines, Line{Kind: "standing", Description: "standing charge meter " + id, Carrier: m.Carrier,
				Quantity: qty, Unit: unit, UnitPrice: tf.Standing.Amount, Amount: exact.Mul(tf.Standing.Amount).Round(2)})
		}
		if hs, ok := heating[t.ID]; ok {
			inv.Lines = append(inv.Lines,
				Line{Kind: "heating", Description: "heating costs by consumption (HeizkostenV §7)", Quantity: decimal.NewFromInt(1), Unit: "share", UnitPrice: hs.ByConsumption, Amount: hs.ByConsumption},
				Line{Kind: "heating", Description: "heating costs by area (HeizkostenV §7)", Quantity: decimal.NewFromInt(1), Unit: "share", UnitPrice: hs.ByArea, Amount: hs.ByArea})
		}
		inv.Net = decimal.Zero
		for _, l := range inv.Lines {
			inv.Net = inv.Net.Add(l.Amount)
		}
		inv.VAT = inv.Net.Mul(rate).Div(decimal.NewFromInt(100)).Round(2)
		inv.Gross = inv.Net.Add(inv.VAT)
		out = append(out, inv)
	}
	cs := make([]string, 0, len(noTariff))
	for c := range noTariff {
		cs = append(cs, string(c))
	}
	sort.Strings(cs)
	for _, c := range cs {
		warn = append(warn, fmt.Sprintf("carrier %s has no tariff; its consumption is not billed", c))
	}
	return out, warn, nil
}

// standingQuantity returns the number of days, or of calendar months with
// partial months as days/days-in-month, in the period: shown is rounded to 4
// places for the invoice line, exact is what the amount is computed from (so
// a large monthly charge is not off by the rounding of the fraction).
func (b *Billing) standingQuantity(per string) (shown, exact decimal.Decimal, unit string) {
	loc := b.tariffs.loc
	if per == "day" {
		d := decimal.NewFromInt(int64(calendarDays(b.opt.From, b.opt.To, loc)))
		return d, d, "days"
	}
	f := b.opt.From.In(loc)
	t := b.opt.To.In(loc)
	cur := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, time.UTC)
	end := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	months := decimal.Zero
	for cur.Before(end) {
		mStart := time.Date(cur.Year(), cur.Month(), 1, 0, 0, 0, 0, time.UTC)
		mEnd := mStart.AddDate(0, 1, 0)
		stop := mEnd
		if end.Before(stop) {
			stop = end
		}
		days := int64(stop.Sub(cur).Hours() / 24)
		dim := int64(mEnd.Sub(mStart).Hours() / 24)
		months = months.Add(decimal.NewFromInt(days).DivRound(decimal.NewFromInt(dim), 20))
		cur = stop
	}
	return months.Round(4), months, "months"
}

// RunningBilling updates invoices reading by reading, for real-time billing.
// Add files a reading under its meter; Invoices recomputes only the meters
// that received readings (or exchange records) since the last call and
// reassembles the invoices. Feeding the readings one at a time, in any
// order, gives the same invoices as the batch function Invoices on a site
// whose meters carry the same exchanges.
type RunningBilling struct {
	b        *Billing
	regs     map[RegisterKey]Register
	billed   map[RegisterKey]bool
	readings map[string][]Reading
	bills    map[string]meterBill
	series   map[string]Series
	dirty    map[string]bool
	unknown  int
}

// NewRunningBilling starts real-time billing for a site and period.
func NewRunningBilling(site Site, tariffs Tariffs, opt InvoiceOptions) (*RunningBilling, error) {
	b, err := NewBilling(site, tariffs, opt)
	if err != nil {
		return nil, err
	}
	rb := &RunningBilling{b: b, regs: b.site.Registers(), billed: b.site.billedRegisters(), readings: map[string][]Reading{},
		bills: map[string]meterBill{}, series: map[string]Series{}, dirty: map[string]bool{}}
	for _, m := range b.site.Meters {
		rb.dirty[m.ID] = true
	}
	return rb, nil
}

// Add records one reading. Readings of registers not in the site are
// counted and ignored; readings of a meter's further (unbilled) registers
// are ignored.
func (rb *RunningBilling) Add(r Reading) {
	if _, ok := rb.regs[r.Key()]; !ok {
		rb.unknown++
		return
	}
	if !rb.billed[r.Key()] {
		return
	}
	rs := rb.readings[r.Meter]
	i := sort.Search(len(rs), func(i int) bool {
		return rs[i].Time.After(r.Time) || (rs[i].Time.Equal(r.Time) && rs[i].Value >= r.Value)
	})
	rs = append(rs, Reading{})
	copy(rs[i+1:], rs[i:])
	rs[i] = r
	rb.readings[r.Meter] = rs
	rb.dirty[r.Meter] = true
}

// AddExchange records a meter exchange of register key: of the meter's
// billed register, or of one of its further registers. The same exchange
// added twice counts once. It reports whether key is a register of the
// site.
func (rb *RunningBilling) AddExchange(key RegisterKey, e Exchange) bool {
	reg, ok := rb.regs[key]
	if !ok {
		return false
	}
	same := func(x Exchange) bool {
		return x.Time.Equal(e.Time) && x.OldFinal == e.OldFinal && x.NewStart == e.NewStart
	}
	if slices.ContainsFunc(reg.Exchanges, same) {
		return true
	}
	reg.Exchanges = append(slices.Clip(reg.Exchanges), e)
	rb.regs[key] = reg
	if rb.billed[key] {
		m := rb.b.site.meter(key.Meter)
		m.Exchanges = append(slices.Clip(m.Exchanges), e)
		rb.dirty[key.Meter] = true
	}
	return true
}

// Series returns the series of each meter's billed register as of the last
// call of Invoices, in the order of the site's meters.
func (rb *RunningBilling) Series() []Series {
	out := make([]Series, 0, len(rb.series))
	for _, m := range rb.b.site.Meters {
		if s, ok := rb.series[m.ID]; ok {
			out = append(out, s)
		}
	}
	return out
}

// Site returns the site billed, with the exchanges added so far.
func (rb *RunningBilling) Site() Site { return rb.b.site }

// Invoices returns the invoices for the readings added so far.
func (rb *RunningBilling) Invoices() ([]Invoice, []string, error) {
	for _, m := range rb.b.site.Meters {
		if !rb.dirty[m.ID] {
			continue
		}
		rs := append([]Reading(nil), rb.readings[m.ID]...)
		mb, s, err := rb.b.meterBill(m, rs)
		if err != nil {
			return nil, nil, err
		}
		rb.bills[m.ID] = mb
		rb.series[m.ID] = s
		delete(rb.dirty, m.ID)
	}
	inv, warn, err := rb.b.assemble(rb.bills)
	if err != nil {
		return nil, nil, err
	}
	if rb.unknown > 0 {
		warn = append(warn, fmt.Sprintf("%d readings of registers not in the site file were ignored", rb.unknown))
	}
	return inv, warn, nil
}

// MarshalJSON writes the amount with two decimals ("20.40"), the quantity
// and unit price as they are.
func (l Line) MarshalJSON() ([]byte, error) {
	type plain Line
	return json.Marshal(struct {
		plain
		Amount string `json:"amount"`
	}{plain(l), l.Amount.StringFixed(2)})
}

// MarshalJSON writes net, VAT and gross with two decimals.
func (inv Invoice) MarshalJSON() ([]byte, error) {
	type plain Invoice
	return json.Marshal(struct {
		plain
		Net   string `json:"net"`
		VAT   string `json:"vat"`
		Gross string `json:"gross"`
	}{plain(inv), inv.Net.StringFixed(2), inv.VAT.StringFixed(2), inv.Gross.StringFixed(2)})
}
