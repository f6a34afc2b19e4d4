package twin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin/history"
)

// retained returns the topics of the non-empty retained messages that
// match filter on b, as a new subscriber gets them.
func retained(t *testing.T, b *broker.Broker, filter string) []string {
	t.Helper()
	lb, err := bus.NewLocal(b, "")
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	var mu sync.Mutex
	var topics []string
	done := make(chan struct{})
	var once sync.Once
	marker := strings.TrimSuffix(filter, "#") + "_marker/x/y"
	err = lb.Subscribe(context.Background(), filter, 1, func(_ context.Context, m bus.Message) {
		if m.Topic == marker {
			once.Do(func() { close(done) })
			return
		}
		if m.Retain && len(m.Payload) > 0 {
			mu.Lock()
			topics = append(topics, m.Topic)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Publish(context.Background(), bus.Message{Topic: marker, QoS: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the marker did not arrive")
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(topics)
	return topics
}

// TestServiceTenantTopicsAndErasure: with TenantTopics each asset of a
// tenant is also retained in its tenant's namespace; EraseTenant clears its
// points' values, its pending samples and both retained snapshots, and
// leaves the other tenants' alone.
func TestServiceTenantTopicsAndErasure(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	tb, err := bus.NewLocal(b, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	s, err := NewService(Options{Model: small(t), Bus: tb, PublishEvery: 20 * time.Millisecond, TenantTopics: true, Sink: &failingSink{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-s.Ready()

	pub := func(topic event.Topic, e event.Event) {
		m, err := event.NewMessage(topic, e)
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	pub(roomTopic("b01-0.01"), event.NewMeasurement("b01-0.01", t0, building, event.Value{Point: "b01-0.01/temperature", Value: 21.5, Unit: event.Celsius}))
	st := event.NewStatus("soil-probe-01", t0, event.Source{Type: event.SourceService, Service: "citymesh-connector"}, event.Online, event.ReasonUplink)
	st.Battery = &event.Value{Point: "soil-probe-01/battery", Value: 3.58, Unit: event.Volt}
	pub(event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-01", event.EventStatus), st)
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Published < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("published %d snapshots, want 4", s.Stats().Published)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"twin/#", []string{"twin/campus/room/b01-0.01", "twin/wartberg/device/soil-probe-01"}},
		{"$tenant/campus-service/twin/#", []string{"$tenant/campus-service/twin/campus/room/b01-0.01"}},
		{"$tenant/wartberg-growers/twin/#", []string{"$tenant/wartberg-growers/twin/wartberg/device/soil-probe-01"}},
	} {
		if got := retained(t, b, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("before: %s: %v, want %v", tc.filter, got, tc.want)
		}
	}

	er, err := s.EraseTenant(ctx, "wartberg-growers")
	if err != nil {
		t.Fatal(err)
	}
	if er.Assets != 9 || er.Points != 1 || er.Pending != 1 {
		t.Errorf("erasure %+v, want 9 assets, 1 point, 1 pending sample", er)
	}
	if p, _ := s.State().Point("soil-probe-01/battery"); p.Value != nil {
		t.Errorf("the erased point still has %v", *p.Value)
	}
	if p, _ := s.State().Point("b01-0.01/temperature"); p.Value == nil {
		t.Error("the other tenant's point lost its value")
	}
	if a, _ := s.State().Asset("soil-probe-01", t0); !a.Liveness.LastSeen.IsZero() {
		t.Errorf("the erased asset's liveness: %+v", a.Liveness)
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"twin/#", []string{"twin/campus/room/b01-0.01"}},
		{"$tenant/campus-service/twin/#", []string{"$tenant/campus-service/twin/campus/room/b01-0.01"}},
		{"$tenant/wartberg-growers/twin/#", nil},
	} {
		if got := retained(t, b, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("after: %s: %v, want %v", tc.filter, got, tc.want)
		}
	}
	var sb strings.Builder
	if err := s.ExportTenant(ctx, "wartberg-growers", &sb); err != nil {
		t.Fatal(err)
	}
	if strings.Count(sb.String(), `{"kind":"asset","snapshot":{"asset":`) != 9 || strings.Contains(sb.String(), `"points":[{`) {
		t.Errorf("export after the erasure: %s", sb.String())
	}
	if _, err := s.EraseTenant(ctx, ""); err == nil {
		t.Error("EraseTenant of the empty tenant succeeded")
	}
}

// failingSink refuses every batch, so that samples stay pending.
type failingSink struct{}

func (failingSink) Append(context.Context, []history.Sample) error { return errors.New("down") }

// fakeTenants is a TenantAdmin that records its calls.
type fakeTenants struct {
	exported, erased []string
	fail             bool
}

func (f *fakeTenants) ExportTenant(_ context.Context, tenant string, w io.Writer) error {
	f.exported = append(f.exported, tenant)
	io.WriteString(w, `{"kind":"asset"}`+"\n")
	if f.fail {
		return errors.New("disk on fire")
	}
	return nil
}

func (f *fakeTenants) EraseTenant(_ context.Context, tenant string) (Erasure, error) {
	f.erased = append(f.erased, tenant)
	return Erasure{Assets: 2, Points: 3, History: true}, nil
}

// TestTenantRoutes: export and erasure answer administrators only, check
// the tenant id, and cut a failing export short.
func TestTenantRoutes(t *testing.T) {
	admin := func(r *http.Request) bool { return r.Header.Get("X-Admin") == "yes" }
	tests := []struct {
		name, method, target string
		tenants              bool
		adminHook            bool
		asAdmin              bool
		code                 int
		body                 string
	}{
		{"not served", "GET", "/api/v1/twin/tenants/uni/export", false, true, true, 404, "not served"},
		{"no admin hook", "GET", "/api/v1/twin/tenants/uni/export", true, false, true, 403, "administrators"},
		{"not an admin", "DELETE", "/api/v1/twin/tenants/uni", true, true, false, 403, "administrators"},
		{"bad tenant", "GET", "/api/v1/twin/tenants/a+b/export", true, true, true, 400, "tenant"},
		{"export", "GET", "/api/v1/twin/tenants/uni/export", true, true, true, 200, `{"kind":"asset"}`},
		{"erase", "DELETE", "/api/v1/twin/tenants/uni", true, true, true, 200, `{"tenant":"uni","assets":2,"points":3,"pending_samples":0,"history":true}`},
		{"erase by GET", "GET", "/api/v1/twin/tenants/uni", true, true, true, 404, "no such resource"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := HandlerOptions{}
			ft := &fakeTenants{}
			if tc.tenants {
				o.Tenants = ft
			}
			if tc.adminHook {
				o.Admin = admin
			}
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.asAdmin {
				req.Header.Set("X-Admin", "yes")
			}
			rec := httptest.NewRecorder()
			Handler(NewState(small(t)), o).ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tc.code, tc.body)
			}
			if tc.code != 200 && (len(ft.exported) > 0 || len(ft.erased) > 0) {
				t.Fatalf("refused, but called: %+v", ft)
			}
		})
	}
	t.Run("failing export is cut short", func(t *testing.T) {
		srv := httptest.NewServer(Handler(NewState(small(t)), HandlerOptions{Tenants: &fakeTenants{fail: true}, Admin: admin}))
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/twin/tenants/uni/export", nil)
		req.Header.Set("X-Admin", "yes")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Error("the failed export read as complete")
		}
	})
}

// TestTee: every sink gets every batch; a failing one fails the Append.
func TestTee(t *testing.T) {
	a, b := &memorySink{}, &memorySink{}
	sink := history.Tee(a, b)
	if err := sink.Append(context.Background(), []history.Sample{{Point: "p"}, {Point: "q"}}); err != nil {
		t.Fatal(err)
	}
	if a.len() != 2 || b.len() != 2 {
		t.Errorf("sinks got %d and %d samples, want 2 each", a.len(), b.len())
	}
	if err := history.Tee(a, failingSink{}).Append(context.Background(), []history.Sample{{Point: "p"}}); err == nil {
		t.Error("a failing sink did not fail the tee")
	}
	if history.Tee(a) != history.Sink(a) {
		t.Error("a tee of one sink is not that sink")
	}
}

// TestExportAndEraseMixedAsset: an asset of one tenant holding a point of
// another (a campus points: override) is exported to each tenant with its
// own points only; erasing the point's tenant keeps the asset's other
// values and publishes the asset again without the erased point.
func TestExportAndEraseMixedAsset(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"campus.yaml", "geometry.geojson", "loomi-route.yaml"} {
		b, err := os.ReadFile(filepath.Join("../examples/campus/small", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "campus.yaml" {
			b = append(b, "\npoints:\n  - {id: b01-0.01/co2, tenant: wartberg-growers}\n"...)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := campus.Load(filepath.Join(dir, "campus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	tb, err := bus.NewLocal(b, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	s, err := NewService(Options{Model: m, Bus: tb, PublishEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tp, ev := msg(t, roomTopic("b01-0.01"), event.NewMeasurement("b01-0.01", t0, building,
		event.Value{Point: "b01-0.01/temperature", Value: 21.5, Unit: event.Celsius},
		event.Value{Point: "b01-0.01/co2", Value: 612, Unit: event.PartsPerMillion}))
	if _, err := s.State().Apply(tp, ev, t0, nil); err != nil {
		t.Fatal(err)
	}
	export := func(tenant string) string {
		var sb strings.Builder
		if err := s.ExportTenant(ctx, tenant, &sb); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	for _, tc := range []struct {
		tenant       string
		want, absent string
	}{
		{"wartberg-growers", `"id":"b01-0.01/co2"`, `"id":"b01-0.01/temperature"`},
		{"campus-service", `"id":"b01-0.01/temperature"`, `"id":"b01-0.01/co2"`},
	} {
		got := export(tc.tenant)
		if !strings.Contains(got, tc.want) || strings.Contains(got, tc.absent) {
			t.Errorf("export of %s: has %s: %v, has %s: %v", tc.tenant, tc.want, strings.Contains(got, tc.want), tc.absent, strings.Contains(got, tc.absent))
		}
	}
	s.State().takeDirty(nil)
	er, err := s.EraseTenant(ctx, "wartberg-growers")
	if err != nil {
		t.Fatal(err)
	}
	if er.Points != 1 {
		t.Errorf("erased %d points, want 1", er.Points)
	}
	if p, _ := s.State().Point("b01-0.01/co2"); p.Value != nil {
		t.Error("the erased point keeps its value")
	}
	if p, _ := s.State().Point("b01-0.01/temperature"); p.Value == nil {
		t.Error("the asset's other point lost its value")
	}
	if d := s.State().takeDirty(nil); !slices.Contains(d, s.State().byAsset["b01-0.01"]) {
		t.Error("the mixed asset is not published again")
	}
}
