package live_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/internal/openapitest"
	"github.com/citymesh/citymesh/service"
)

// TestMonthCloses: when every meter has read at the month's end, the
// month closes: its final invoice equals the model's for the month, is
// published retained on final-invoice and kept (also across a restart),
// and a late reading of the closed month changes nothing. The API serves
// the months and ESG figures, scoped to a tenant, and answers bad input
// with problem details.
func TestMonthCloses(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	tf := loadTariff(t)
	april := time.Date(2026, 4, 1, 0, 0, 0, 0, berlin)
	may := april.AddDate(0, 1, 0)
	start, until := may.Add(-6*time.Hour), may.Add(3*time.Hour)
	msgs := simulate(t, m, start, until)
	want := batchInvoices(t, msgs, sites["campus"], tf, april, may)
	b, addr := startBroker(t)
	tenant := ""
	cfg := live.Config{Sites: sites, Tariffs: &tf, Debounce: 5 * time.Millisecond,
		Tenant: func(*http.Request) (string, bool) { return tenant, tenant == "" }}
	ls := newLive(t, b, cfg, until)
	publishAll(t, b, "gw", msgs)
	ls.waitInvoices("2026-04", want, 10*time.Second)
	ls.waitUpdated("2026-05", until.Add(-15*time.Minute), 10*time.Second)

	var ev live.InvoiceEvent
	if err := json.Unmarshal(retained(t, addr, live.InvoiceTopic("campus", "campus-service", live.EventFinalInvoice)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Status != live.StatusFinal || ev.Period != "2026-04" {
		t.Errorf("final invoice event: %s %s", ev.Status, ev.Period)
	}
	if err := json.Unmarshal(retained(t, addr, live.InvoiceTopic("campus", "campus-service", live.EventInvoice)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Status != live.StatusRunning || ev.Period != "2026-05" {
		t.Errorf("running invoice event: %s %s, want running 2026-05", ev.Status, ev.Period)
	}

	// A restart keeps the final invoice; a late April reading (a value
	// never seen) changes nothing.
	ls.stop()
	ls.rebuild(cfg)
	ls.start()
	first := 0
	for !strings.HasSuffix(msgs[first].Topic, "/reading") {
		first++
	}
	late := strings.Replace(string(msgs[first].Payload), `"value":`, `"value":1`, 1)
	before := ls.svc.Stats()
	publishAll(t, b, "gw-late", append(msgs[:0:0], withPayload(msgs[first], late)))
	for deadline := time.Now().Add(5 * time.Second); ls.svc.Stats().Late == before.Late; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the late reading was not counted as late: %+v", ls.svc.Stats())
		}
	}
	ls.waitInvoices("2026-04", want, 5*time.Second)
	ls.waitUpdated("2026-05", until.Add(-15*time.Minute), 5*time.Second)
	if s := ls.invoices("2026-05"); strings.Contains(s, "conflict") {
		t.Errorf("the late April reading reached May: %s", s)
	}

	get := func(path string) (int, string, string) {
		rec := httptest.NewRecorder()
		ls.svc.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
	}
	code, _, body := get("/api/v1/energy/invoices/campus-service")
	var l live.InvoiceList
	json.Unmarshal([]byte(body), &l)
	if code != 200 || len(l.Invoices) != 2 || l.Invoices[0].Status != live.StatusFinal || l.Invoices[1].Status != live.StatusRunning {
		t.Errorf("invoices of the tenant: %d %s", code, body)
	}
	openapitest.Check(t, ls.svc.OpenAPI(), "GET", "/api/v1/energy/invoices/campus-service", code, "", []byte(body))
	code, _, body = get("/api/v1/energy/esg")
	openapitest.Check(t, ls.svc.OpenAPI(), "GET", "/api/v1/energy/esg", code, "", []byte(body))
	code2, _, body2 := get("/api/v1/energy/invoices")
	openapitest.Check(t, ls.svc.OpenAPI(), "GET", "/api/v1/energy/invoices", code2, "", []byte(body2))
	var e live.ESGList
	json.Unmarshal([]byte(body), &e)
	if code != 200 || len(e.ESG) != 2 || e.ESG[0].Period != "2026-04" || e.ESG[0].Status != live.StatusFinal || !(e.ESG[1].TotalMWh > 0) {
		t.Errorf("esg: %d %s", code, body)
	}
	for _, c := range []struct {
		tenant, path string
		code         int
		problem      bool
		has          string
	}{
		{"", "/api/v1/energy/invoices?period=2026-13", 400, true, "YYYY-MM"},
		{"", "/api/v1/energy/invoices?site=a/b", 400, true, "bad site"},
		{"", "/api/v1/energy/invoices/nobody", 404, true, "unknown tenant"},
		{"", "/api/v1/energy/invoices/bad%20id", 400, true, "bad tenant"},
		{"", "/api/v1/energy/nothing", 404, true, "not found"},
		{"", "/api/v1/energy/invoices?period=2026-04", 200, false, `"status":"final"`},
		{"campus-service", "/api/v1/energy/invoices", 200, false, `"period":"2026-05"`},
		{"library", "/api/v1/energy/invoices", 200, false, `{"invoices":[]}`},
		{"library", "/api/v1/energy/invoices/campus-service", 404, true, "unknown tenant"},
		{"campus-service", "/api/v1/energy/esg", 200, false, `"period":"2026-05"`},
		{"library", "/api/v1/energy/esg", 200, false, `{"esg":[]}`},
	} {
		tenant = c.tenant
		code, ct, body := get(c.path)
		if code != c.code || (ct == "application/problem+json") != c.problem || !strings.Contains(body, c.has) {
			t.Errorf("%s as %q: %d %s %s", c.path, c.tenant, code, ct, body)
		}
	}
	tenant = ""
	rec := httptest.NewRecorder()
	ls.svc.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/energy/invoices", nil))
	if rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound {
		t.Errorf("POST invoices: %d", rec.Code)
	}
}

// TestMonthClosesAfterGrace: a month whose meters never read in the next
// month closes when its grace has passed: its final invoice equals the
// model's on the readings there are. The readings are in before the
// grace passes: readings that come after it are late by design, and how
// many of a backlog delivered then are billed before the month closes
// depends on how fast the service takes them in.
func TestMonthClosesAfterGrace(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	tf := loadTariff(t)
	april := time.Date(2026, 4, 1, 0, 0, 0, 0, berlin)
	may := april.AddDate(0, 1, 0)
	msgs := between(simulate(t, m, may.Add(-6*time.Hour), may), time.Time{}, may) // no reading at midnight
	want := batchInvoices(t, msgs, sites["campus"], tf, april, may)
	for _, c := range []struct {
		now   time.Time
		final bool
	}{{may.Add(71 * time.Hour), false}, {may.Add(72 * time.Hour), true}} {
		b, _ := startBroker(t)
		ls := newLive(t, b, live.Config{Sites: sites, Tariffs: &tf, Debounce: 5 * time.Millisecond, Grace: 72 * time.Hour}, may.Add(time.Hour))
		publishAll(t, b, "gw", msgs)
		ls.waitInvoices("2026-04", want, 10*time.Second)
		// The service runs again at c.now: the month is flushed at its
		// start.
		ls.stop()
		ls.now = func() time.Time { return c.now }
		ls.start()
		final := func() bool {
			rec := httptest.NewRecorder()
			ls.svc.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/energy/invoices?period=2026-04", nil))
			return strings.Contains(rec.Body.String(), `"status":"final"`)
		}
		for deadline := time.Now().Add(5 * time.Second); c.final && !final() && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		}
		ls.waitInvoices("2026-04", want, 5*time.Second)
		if got := final(); got != c.final {
			t.Errorf("at %v: final %v, want %v", c.now, got, c.final)
		}
		ls.stop()
	}
}

// heldBus holds the publishing of invoices until hold is closed, counting
// the publishes waiting.
type heldBus struct {
	bus.Bus
	hold chan struct{}
	held atomic.Int32
}

func (h *heldBus) Publish(ctx context.Context, m bus.Message) error {
	if strings.Contains(m.Topic, "/tenant/") {
		h.held.Add(1)
		select {
		case <-h.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.Bus.Publish(ctx, m)
}

// TestAPIShowsAFlushWhole: the API shows the invoices and ESG figures a
// month's update computed together, before they are published: while the
// publishing of the invoices is held up, every tenant's invoice and the
// site's ESG figures of the same readings are served already. (A reader
// who saw the month's invoices could otherwise miss its ESG figures: they
// came after the invoices' publishing, which takes long on a busy
// machine.)
func TestAPIShowsAFlushWhole(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	tf := loadTariff(t)
	may := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin)
	msgs := simulate(t, m, may, may.Add(2*time.Hour))
	b, _ := startBroker(t)
	bc, err := bus.NewLocal(b, "svc-energy-held")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	hb := &heldBus{Bus: bc, hold: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(hb.hold)
		}
	}
	defer release()
	svc, err := live.New("energy", live.Config{Sites: sites, Tariffs: &tf, Debounce: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	env := service.NewTestEnv("energy", hb, service.NewMemoryStore().State("energy"), func() time.Time { return may.Add(2 * time.Hour) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, env) }()
	defer func() {
		release()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); env.Health().Status != service.StatusRunning; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("service not running: %+v", env.Health())
		}
	}
	publishAll(t, b, "gw", msgs)
	for deadline := time.Now().Add(10 * time.Second); hb.held.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no invoice was published within 10 s")
		}
	}
	get := func(path string, v any) {
		rec := httptest.NewRecorder()
		svc.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, rec.Body)
		}
	}
	// The update is held in its publishing: what the API shows is all
	// of it, or it shows nothing of it yet.
	var invs live.InvoiceList
	var esg live.ESGList
	tenants := len(sites["campus"].Tenants)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		get("/api/v1/energy/invoices?period=2026-05", &invs)
		get("/api/v1/energy/esg?period=2026-05", &esg)
		if len(invs.Invoices) == tenants && len(esg.ESG) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("while the invoices are being published the API shows %d invoices of %d tenants and %d ESG figures", len(invs.Invoices), tenants, len(esg.ESG))
		}
	}
	for _, ev := range invs.Invoices {
		if !ev.Updated.Equal(esg.ESG[0].Updated) {
			t.Errorf("invoice of %s updated %v, ESG figures %v: not the same readings", ev.Invoice.Tenant, ev.Updated, esg.ESG[0].Updated)
		}
	}
}
