package energy

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// DefaultVATPercent is the German standard VAT rate, § 12 (1) UStG.
var DefaultVATPercent = decimal.NewFromInt(19)

// Tariffs is a price sheet: one tariff per carrier, a VAT rate and an
// optional central-heating cost to split under HeizkostenV §7.
type Tariffs struct {
	Currency string `yaml:"currency"`
	// VATPercent is the VAT rate in percent; nil means DefaultVATPercent.
	VATPercent *decimal.Decimal `yaml:"vat_percent"`
	// TimeZone names the IANA zone in which tariff windows are read
	// (default Europe/Berlin).
	TimeZone string   `yaml:"timezone"`
	Tariffs  []Tariff `yaml:"tariffs"`
	Heating  *Heating `yaml:"heating"`

	loc *time.Location
}

// Tariff prices one carrier: time-of-use energy bands and a standing charge
// per metering point.
type Tariff struct {
	Carrier Carrier `yaml:"carrier"`
	// Unit is the billing unit of the energy price (default: the
	// register's unit, e.g. kWh).
	Unit     string          `yaml:"unit"`
	Bands    []Band          `yaml:"bands"`
	Standing *StandingCharge `yaml:"standing_charge"`
}

// Band is one time-of-use price. An interval belongs to the first band whose
// window contains the interval's start in local time; a band without days and
// hours is the catch-all and must come last.
type Band struct {
	Name string `yaml:"name"`
	// Price is the net price per billing unit (e.g. EUR/kWh).
	Price decimal.Decimal `yaml:"price"`
	// Days are the weekdays of the window (mon..sun); empty means every day.
	Days []string `yaml:"days"`
	// From and To are local clock times "HH:MM"; To may be "24:00". From
	// after To wraps over midnight. Both empty means the whole day.
	From string `yaml:"from"`
	To   string `yaml:"to"`

	days     [7]bool
	anyDay   bool
	from, to int // minutes of the day
	allDay   bool
}

// StandingCharge is a fixed net charge per metering point, per day or per
// calendar month (a partial month is prorated by its days).
type StandingCharge struct {
	Amount decimal.Decimal `yaml:"amount"`
	Per    string          `yaml:"per"` // "day" or "month"
}

// Heating is a central-heating operating cost to split between tenants,
// HeizkostenV §7 (1): ConsumptionShare of it by measured heat consumption
// (between 0.5 and 0.7), the rest by area.
type Heating struct {
	Cost             decimal.Decimal `yaml:"cost"`
	ConsumptionShare decimal.Decimal `yaml:"consumption_share"`
	// Carrier of the tenants' heat meters (default district_heating).
	Carrier Carrier `yaml:"carrier"`
	// Tenants lists the users of the heating system (default: all
	// tenants of the site).
	Tenants []string `yaml:"tenants"`
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ReadTariffYAML reads and checks a tariff file.
func ReadTariffYAML(r io.Reader) (Tariffs, error) {
	var t Tariffs
	if err := decodeYAML(r, "tariff yaml", &t); err != nil {
		return t, err
	}
	if err := t.Check(); err != nil {
		return t, err
	}
	return t, nil
}

// Clone returns a deep copy of t, which shares no tariff, band, standing
// charge, heating or VAT rate with t: checking the copy writes nothing that
// t's users read.
func (t *Tariffs) Clone() Tariffs {
	c := *t
	if t.VATPercent != nil {
		v := *t.VATPercent
		c.VATPercent = &v
	}
	c.Tariffs = slices.Clone(t.Tariffs)
	for i := range c.Tariffs {
		tf := &c.Tariffs[i]
		tf.Bands = slices.Clone(tf.Bands)
		for j := range tf.Bands {
			tf.Bands[j].Days = slices.Clone(tf.Bands[j].Days)
		}
		if tf.Standing != nil {
			st := *tf.Standing
			tf.Standing = &st
		}
	}
	if t.Heating != nil {
		h := *t.Heating
		h.Tenants = slices.Clone(h.Tenants)
		c.Heating = &h
	}
	return c
}

// Check validates the tariffs and prepares them: it fills in the
// defaults (currency, time zone, the heating's carrier) and the bands'
// windows, writing into t, its tariffs' bands and its heating. Call it
// once, before t is shared (ReadTariffYAML calls it). NewBilling and
// NewRunningBilling check a copy of their own (Clone), so one Tariffs,
// checked or not, may be shared by any number of billings at once.
func (t *Tariffs) Check() error {
	if t.Currency == "" {
		t.Currency = "EUR"
	}
	if t.TimeZone == "" {
		t.TimeZone = "Europe/Berlin"
	}
	loc, err := time.LoadLocation(t.TimeZone)
	if err != nil {
		return fmt.Errorf("tariff: timezone %q: %w", t.TimeZone, err)
	}
	t.loc = loc
	if t.VATPercent != nil && (t.VATPercent.IsNegative() || t.VATPercent.GreaterThan(decimal.NewFromInt(100))) {
		return fmt.Errorf("tariff: vat_percent %s is not 0..100", t.VATPercent)
	}
	seen := map[Carrier]bool{}
	for ti := range t.Tariffs {
		tf := &t.Tariffs[ti]
		if tf.Carrier == "" {
			return fmt.Errorf("tariff %d: carrier is empty", ti+1)
		}
		if seen[tf.Carrier] {
			return fmt.Errorf("tariff %s: carrier listed twice", tf.Carrier)
		}
		seen[tf.Carrier] = true
		if len(tf.Bands) == 0 {
			return fmt.Errorf("tariff %s: no bands", tf.Carrier)
		}
		for bi := range tf.Bands {
			if err := tf.Bands[bi].prepare(); err != nil {
				return fmt.Errorf("tariff %s: band %d (%s): %w", tf.Carrier, bi+1, tf.Bands[bi].Name, err)
			}
		}
		lastBand := tf.Bands[len(tf.Bands)-1]
		if !lastBand.anyDay || !lastBand.allDay {
			return fmt.Errorf("tariff %s: the last band (%s) must have no days and no hours, so every interval has a price", tf.Carrier, lastBand.Name)
		}
		if st := tf.Standing; st != nil {
			if st.Per != "day" && st.Per != "month" {
				return fmt.Errorf("tariff %s: standing_charge per %q: want day or month", tf.Carrier, st.Per)
			}
			if st.Amount.IsNegative() {
				return fmt.Errorf("tariff %s: standing_charge amount %s is negative", tf.Carrier, st.Amount)
			}
		}
	}
	if h := t.Heating; h != nil {
		if h.Carrier == "" {
			h.Carrier = Heat
		}
		if err := checkHeatingShare(h.ConsumptionShare); err != nil {
			return fmt.Errorf("tariff: heating: %w", err)
		}
		if h.Cost.IsNegative() {
			return fmt.Errorf("tariff: heating: cost %s is negative", h.Cost)
		}
	}
	return nil
}

func (b *Band) prepare() error {
	if b.Name == "" {
		return fmt.Errorf("name is empty")
	}
	if b.Price.IsNegative() {
		return fmt.Errorf("price %s is negative", b.Price)
	}
	b.anyDay = len(b.Days) == 0
	b.days = [7]bool{}
	for _, d := range b.Days {
		name := strings.ToLower(strings.TrimSpace(d))
		if len(name) > 3 {
			name = name[:3]
		}
		wd, ok := weekdayNames[name]
		if !ok {
			return fmt.Errorf("day %q: want mon, tue, wed, thu, fri, sat or sun", d)
		}
		b.days[wd] = true
	}
	if b.From == "" && b.To == "" {
		b.allDay = true
		return nil
	}
	var err error
	if b.from, err = clockMinutes(b.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if b.to, err = clockMinutes(b.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if b.from == b.to {
		return fmt.Errorf("from %s equals to %s; leave both empty for the whole day", b.From, b.To)
	}
	b.allDay = false
	return nil
}

func clockMinutes(s string) (int, error) {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || len(s) != 5 {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	if h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q: not a clock time 00:00..24:00", s)
	}
	return h*60 + m, nil
}

// contains reports whether local time t lies in the band's window.
func (b *Band) contains(t time.Time) bool {
	if !b.anyDay && !b.days[t.Weekday()] {
		return false
	}
	if b.allDay {
		return true
	}
	m := t.Hour()*60 + t.Minute()
	if b.from < b.to {
		return m >= b.from && m < b.to
	}
	return m >= b.from || m < b.to
}

// band returns the index of the band an interval starting at t falls into.
func (tf *Tariff) band(t time.Time) int {
	for i := range tf.Bands {
		if tf.Bands[i].contains(t) {
			return i
		}
	}
	return len(tf.Bands) - 1
}

func (t *Tariffs) tariff(c Carrier) *Tariff {
	for i := range t.Tariffs {
		if t.Tariffs[i].Carrier == c {
			return &t.Tariffs[i]
		}
	}
	return nil
}

func (t *Tariffs) vat() decimal.Decimal {
	if t.VATPercent == nil {
		return DefaultVATPercent
	}
	return *t.VATPercent
}
