package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

var berlin = func() *time.Location { l, _ := time.LoadLocation("Europe/Berlin"); return l }()

// startBroker starts an in-process broker on a TCP port and returns it and
// its address.
func startBroker(t testing.TB) (*broker.Broker, string) {
	t.Helper()
	b := broker.New(broker.Options{SysInterval: -1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); b.Close(); <-done })
	return b, ln.Addr().String()
}

func loadCampus(t testing.TB, path string) *campus.Model {
	t.Helper()
	m, err := campus.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loadTariff(t testing.TB) energy.Tariffs {
	t.Helper()
	f, err := os.Open("campus-tariff.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tf, err := energy.ReadTariffYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

// simulate plays the campus's building gateways from start to until with
// faults and returns their meter readings and gateway status messages, in
// the order the gateways sent them.
func simulate(t testing.TB, m *campus.Model, start, until time.Time, faults ...sim.Fault) []bus.Message {
	t.Helper()
	fs, err := sim.NewFaultSet(faults)
	if err != nil {
		t.Fatal(err)
	}
	out := &sim.MemoryOutput{}
	p, err := sim.NewPlayer(sim.PlayerConfig{Campus: m, Seed: 7, Start: start, Until: until, Faults: fs, Outputs: sim.Outputs{Building: out}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var msgs []bus.Message
	for _, r := range out.Messages() {
		if r.Will || !(strings.HasSuffix(r.Topic, "/reading") || strings.Contains(r.Topic, "/gateway/")) {
			continue
		}
		msgs = append(msgs, bus.Message{Topic: r.Topic, Payload: r.Payload, QoS: 1, Retain: r.Retain})
	}
	return msgs
}

// batchInputs turns messages into what `citymesh model invoice` reads: the
// readings (CSV time,meter,obis,value) and the site file with the exchange
// records (filed an instant after the old meter's final reading, as the
// service does).
func batchInputs(t testing.TB, msgs []bus.Message, site energy.Site) ([]energy.Reading, energy.Site) {
	t.Helper()
	var rs []energy.Reading
	site.Meters = append([]energy.Meter(nil), site.Meters...)
	for _, m := range msgs {
		tp, e, err := event.ReadMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		switch e := e.(type) {
		case *event.Measurement:
			for _, v := range e.Values {
				o, err := energy.ParseOBIS(v.OBIS)
				if err != nil {
					t.Fatal(err)
				}
				rs = append(rs, energy.Reading{Time: e.Time, Meter: tp.Asset, OBIS: o, Value: v.Value})
			}
		case *event.Status:
			if e.Reason != sim.ReasonMeterExchange {
				continue
			}
			meter, at, recs, err := live.ParseExchangeDetail(e.Detail)
			if err != nil {
				t.Fatal(err)
			}
			for i := range site.Meters {
				if site.Meters[i].ID != meter {
					continue
				}
				for _, r := range recs {
					if r.OBIS == site.Meters[i].OBIS {
						ex := energy.Exchange{Time: at.Add(time.Nanosecond), OldFinal: r.OldFinal, NewStart: r.NewStart}
						site.Meters[i].Exchanges = append(append([]energy.Exchange(nil), site.Meters[i].Exchanges...), ex)
					}
				}
			}
		}
	}
	return rs, site
}

// batchInvoices is `citymesh model invoice -from FROM -to TO` on the
// messages: the same library path, energy.Invoices.
func batchInvoices(t testing.TB, msgs []bus.Message, site energy.Site, tf energy.Tariffs, from, to time.Time) string {
	t.Helper()
	rs, s := batchInputs(t, msgs, site)
	inv, _, err := energy.Invoices(rs, s, tf, energy.InvoiceOptions{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(inv)
	return string(b)
}

// liveService is the energy service run over the broker with a state that
// outlives its runs.
type liveService struct {
	t     testing.TB
	b     *broker.Broker
	svc   *live.Service
	store *service.Store
	env   *service.Env
	now   func() time.Time
	stop  func()
}

// newLive starts the service with a clock at now and its state in memory.
func newLive(t testing.TB, b *broker.Broker, cfg live.Config, now time.Time) *liveService {
	t.Helper()
	return newLiveOn(t, b, cfg, now, service.NewMemoryStore())
}

// rebuild makes a new Service from the same configuration, as a new
// process would, for the next start.
func (ls *liveService) rebuild(cfg live.Config) {
	ls.t.Helper()
	svc, err := live.New("energy", cfg)
	if err != nil {
		ls.t.Fatal(err)
	}
	ls.svc = svc
}

// newLiveOn starts the service with its state in store.
func newLiveOn(t testing.TB, b *broker.Broker, cfg live.Config, now time.Time, store *service.Store) *liveService {
	t.Helper()
	svc, err := live.New("energy", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ls := &liveService{t: t, b: b, svc: svc, store: store, now: func() time.Time { return now }}
	ls.start()
	t.Cleanup(func() { ls.stop() })
	return ls
}

var runs int

func (ls *liveService) start() {
	ls.t.Helper()
	runs++
	bc, err := bus.NewLocal(ls.b, fmt.Sprintf("svc-energy-%d", runs))
	if err != nil {
		ls.t.Fatal(err)
	}
	env := service.NewTestEnv("energy", bc, ls.store.State("energy"), ls.now)
	ls.env = env
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ls.svc.Run(ctx, env) }()
	deadline := time.Now().Add(10 * time.Second)
	for env.Health().Status != service.StatusRunning {
		if time.Now().After(deadline) {
			ls.t.Fatalf("service not running: %+v", env.Health())
		}
		time.Sleep(2 * time.Millisecond)
	}
	var once sync.Once
	ls.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				ls.t.Errorf("Run: %v", err)
			}
			bc.Close()
		})
	}
}

// invoices returns the service's invoices of period over its API.
func (ls *liveService) invoices(period string) string {
	rec := httptest.NewRecorder()
	ls.svc.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/energy/invoices?period="+period, nil))
	var l live.InvoiceList
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
		ls.t.Fatal(err)
	}
	invs := make([]json.RawMessage, len(l.Invoices))
	for i, ev := range l.Invoices {
		invs[i], _ = json.Marshal(ev.Invoice)
	}
	b, _ := json.Marshal(invs)
	return string(b)
}

// waitInvoices waits until the service's invoices of period are want.
func (ls *liveService) waitInvoices(period, want string, within time.Duration) {
	ls.t.Helper()
	deadline := time.Now().Add(within)
	var got string
	for time.Now().Before(deadline) {
		if got = ls.invoices(period); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ls.t.Fatalf("invoices of %s (service health %+v)\n got %s\nwant %s", period, ls.env.Health(), got, want)
}

func publishAll(t testing.TB, b *broker.Broker, id string, msgs []bus.Message) {
	t.Helper()
	pub, err := bus.NewLocal(b, id)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, m := range msgs {
		if err := pub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLiveInvoiceEqualsModel: the service's running invoices equal
// `citymesh model invoice` on the same readings to the cent — for the
// simulator's small campus with a meter exchange, a meter reset,
// duplicates and readings out of order on the wire; then again with every
// message shuffled, a fifth of them delivered twice, and the service
// restarted in the middle.
func TestLiveInvoiceEqualsModel(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	tf := loadTariff(t)
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin)
	to := from.AddDate(0, 1, 0)
	until := from.Add(3 * 24 * time.Hour)
	msgs := simulate(t, m, from, until,
		sim.Fault{Kind: sim.FaultMeterExchange, Asset: "ht-b01-main", Start: from.Add(33*time.Hour + 40*time.Minute), NewStart: 5},
		sim.Fault{Kind: sim.FaultMeterReset, Asset: "el-b01-f1", Start: from.Add(20*time.Hour + 10*time.Minute)},
		sim.Fault{Kind: sim.FaultDuplicate, Asset: "el-b01-main", Start: from, Duration: 24 * time.Hour, Every: 3},
		sim.Fault{Kind: sim.FaultOutOfOrder, Asset: "el-b01-f2", Start: from.Add(30 * time.Hour), Duration: 12 * time.Hour, Every: 2},
	)
	want := batchInvoices(t, msgs, sites["campus"], tf, from, to)
	if !strings.Contains(want, "exchange") || !strings.Contains(want, "reset") {
		t.Fatalf("the model's invoice shows no exchange and reset: %s", want)
	}
	cfg := live.Config{Sites: sites, Tariffs: &tf, Debounce: 5 * time.Millisecond}

	t.Run("in order", func(t *testing.T) {
		b, _ := startBroker(t)
		ls := newLive(t, b, cfg, until)
		publishAll(t, b, "gateways", msgs)
		ls.waitInvoices("2026-05", want, 20*time.Second)
	})

	t.Run("shuffled, duplicated, restarted", func(t *testing.T) {
		b, addr := startBroker(t)
		ls := newLive(t, b, cfg, until)
		mixed := append([]bus.Message(nil), msgs...)
		rng := rand.New(rand.NewPCG(3, 4))
		for _, i := range rng.Perm(len(msgs))[:len(msgs)/5] {
			mixed = append(mixed, msgs[i])
		}
		rng.Shuffle(len(mixed), func(i, j int) { mixed[i], mixed[j] = mixed[j], mixed[i] })
		half := len(mixed) / 2
		publishAll(t, b, "gateways-1", mixed[:half])
		ls.waitInvoices("2026-05", batchInvoices(t, mixed[:half], sites["campus"], tf, from, to), 20*time.Second)
		ls.stop()
		ls.rebuild(cfg) // a new process on the same state
		ls.start()
		publishAll(t, b, "gateways-2", mixed[half:])
		ls.waitInvoices("2026-05", want, 20*time.Second)

		// An independent MQTT client sees the retained running invoice.
		got := retained(t, addr, live.InvoiceTopic("campus", "campus-service", live.EventInvoice))
		var ev live.InvoiceEvent
		if err := json.Unmarshal(got, &ev); err != nil {
			t.Fatal(err)
		}
		inv, _ := json.Marshal([]energy.Invoice{ev.Invoice})
		if string(inv) != want || ev.Status != live.StatusRunning || ev.Period != "2026-05" {
			t.Errorf("retained invoice %s (%s %s), want %s", inv, ev.Status, ev.Period, want)
		}
	})
}

// updated returns the oldest Updated of the service's invoices of period.
func (ls *liveService) updated(period string) time.Time {
	rec := httptest.NewRecorder()
	ls.svc.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/energy/invoices?period="+period, nil))
	var l live.InvoiceList
	json.Unmarshal(rec.Body.Bytes(), &l)
	var u time.Time
	for i, ev := range l.Invoices {
		if i == 0 || ev.Updated.Before(u) {
			u = ev.Updated
		}
	}
	return u
}

// withPayload returns m with another payload.
func withPayload(m bus.Message, payload string) bus.Message {
	m.Payload = []byte(payload)
	return m
}

// TestExchangeLeavesInvoiceUnchanged: the simulator's meter exchanges (old
// final reading, the gateway's exchange record, new start reading) leave
// the live invoice as it is without them, up to the register's resolution:
// the old meter's final reading is rounded to its last digit like every
// reading (0.1 kWh on the heat meter, 0.01 kWh on electricity), so the
// quantity may differ by that and the amount by a cent. Without the
// records the same readings are resets and the invoice changes.
func TestExchangeLeavesInvoiceUnchanged(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin)
	until := from.Add(2 * 24 * time.Hour)
	type line struct{ qty, amount float64 }
	// One tariff for the three services, each still running while the
	// next starts: none writes into it.
	tf := loadTariff(t)
	lines := func(msgs []bus.Message) map[string]line {
		b, _ := startBroker(t)
		ls := newLive(t, b, live.Config{Sites: sites, Tariffs: &tf, Debounce: 5 * time.Millisecond}, until)
		publishAll(t, b, "gw", msgs)
		ls.waitUpdated("2026-05", until.Add(-15*time.Minute), 10*time.Second)
		var l live.InvoiceList
		rec := httptest.NewRecorder()
		ls.svc.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/energy/invoices", nil))
		json.Unmarshal(rec.Body.Bytes(), &l)
		out := map[string]line{}
		for _, ev := range l.Invoices {
			for _, ln := range ev.Invoice.Lines {
				q, _ := ln.Quantity.Float64()
				a, _ := ln.Amount.Float64()
				out[ev.Invoice.Tenant+" "+ln.Description] = line{q, a}
			}
			g, _ := ev.Invoice.Gross.Float64()
			out[ev.Invoice.Tenant+" gross"] = line{0, g}
		}
		return out
	}
	plain := simulate(t, m, from, until)
	exchanged := simulate(t, m, from, until,
		sim.Fault{Kind: sim.FaultMeterExchange, Asset: "ht-b01-main", Start: from.Add(33*time.Hour + 40*time.Minute), NewStart: 5},
		sim.Fault{Kind: sim.FaultMeterExchange, Asset: "el-b01-f2", Start: from.Add(20*time.Hour + 25*time.Minute), NewStart: 12.5})
	if len(exchanged) <= len(plain) {
		t.Fatalf("the exchanges sent nothing: %d messages, %d without", len(exchanged), len(plain))
	}
	want, got := lines(plain), lines(exchanged)
	res := map[string]float64{"campus-service district_heating heat": 0.1, "campus-service electricity HT": 0.01, "campus-service electricity NT": 0.01}
	for k, w := range want {
		g, ok := got[k]
		if !ok || math.Abs(g.qty-w.qty) > res[k]+1e-9 || math.Abs(g.amount-w.amount) > 0.0100001+0.0200001*boolf(k == "campus-service gross") {
			t.Errorf("%s: %+v with the exchanges, %+v without", k, g, w)
		}
	}
	var noRecord []bus.Message
	for _, msg := range exchanged {
		if !strings.Contains(msg.Topic, "/gateway/") {
			noRecord = append(noRecord, msg)
		}
	}
	if bare := lines(noRecord); bare["campus-service district_heating heat"].qty-want["campus-service district_heating heat"].qty < 1 {
		t.Errorf("without the exchange records the new start is not counted as a reset: %+v, want more than %+v", bare, want)
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestServicesShareTariffs: energy services made and run at once from one
// configuration share its Tariffs. Making a service and each month's
// billing check the tariffs, which writes their defaults and bands'
// windows: each works on a copy of its own, so under -race none writes
// what a running one reads, the caller's Tariffs stays as it was, and two
// services bill the same readings alike.
func TestServicesShareTariffs(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin)
	until := from.Add(24 * time.Hour)
	tf := loadTariff(t)
	before := fmt.Sprintf("%#v", tf.Tariffs)
	cfg := live.Config{Sites: sites, Tariffs: &tf, Debounce: 5 * time.Millisecond}
	b, _ := startBroker(t)
	msgs := simulate(t, m, from, until)
	one := newLive(t, b, cfg, until)
	// Services are made while the first bills its readings.
	made := make(chan *live.Service, 1)
	go func() {
		var svc *live.Service
		for range 10 {
			s, err := live.New("energy", cfg)
			if err != nil {
				t.Error(err)
				break
			}
			svc = s
		}
		made <- svc
	}()
	publishAll(t, b, "gw", msgs)
	svc := <-made
	if svc == nil {
		t.FailNow()
	}
	// The last service made bills the same readings on a broker of its
	// own: on the first broker it would meet the meters' retained latest
	// readings before the day's, and drop those as older.
	b2, _ := startBroker(t)
	two := &liveService{t: t, b: b2, svc: svc, store: service.NewMemoryStore(), now: func() time.Time { return until }}
	two.start()
	t.Cleanup(func() { two.stop() })
	publishAll(t, b2, "gw2", msgs)
	one.waitUpdated("2026-05", until.Add(-15*time.Minute), 10*time.Second)
	two.waitUpdated("2026-05", until.Add(-15*time.Minute), 10*time.Second)
	if a, b := one.invoices("2026-05"), two.invoices("2026-05"); a != b || a == "[]" {
		t.Errorf("the services bill alike:\n%s\n%s", a, b)
	}
	if after := fmt.Sprintf("%#v", tf.Tariffs); after != before {
		t.Errorf("the shared Tariffs changed:\n%s\nwas\n%s", after, before)
	}
}
