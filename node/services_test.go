package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
)

// toyConfig is the configuration of the toy service of these tests.
type toyConfig struct {
	// Types are the alarm types its manager owns (none: every type).
	Types []string `yaml:"types"`
}

// toy is a service registered for these tests only: it raises and clears
// alarms on the commands published to toy/{name}/raise and toy/{name}/clear
// ({"site":..,"kind":..,"asset":..,"type":..,"severity":..,"tenant":..,
// "time":..}), and its HTTP API at /api/v1/toy/whoami answers what the
// access hooks say of the caller, /api/v1/toy/now its clock.
type toy struct {
	name   string
	c      toyConfig
	access service.Access
	now    atomic.Pointer[func() time.Time] // Env.Now of the run
}

type toyCommand struct {
	alarm.Key
	Severity alarm.Severity `json:"severity"`
	Tenant   string         `json:"tenant"`
	Time     time.Time      `json:"time"`
}

func init() {
	service.Register("toy", "raises the alarms it is told to (a test service)", func(name string, c toyConfig) (service.Service, error) {
		return &toy{name: name, c: c}, nil
	})
}

func (s *toy) Name() string               { return s.name }
func (s *toy) SetAccess(a service.Access) { s.access = a }
func (s *toy) HTTPHandler() http.Handler  { return http.HandlerFunc(s.whoami) }
func (s *toy) whoami(w http.ResponseWriter, r *http.Request) {
	if now := s.now.Load(); now != nil && r.URL.Path == "/api/v1/toy/now" {
		json.NewEncoder(w).Encode(map[string]any{"now": (*now)()})
		return
	}
	if r.URL.Path != "/api/v1/toy/whoami" {
		service.WriteProblem(w, r, http.StatusNotFound, "no such resource")
		return
	}
	tenant, all := s.access.Tenant(r)
	json.NewEncoder(w).Encode(map[string]any{"tenant": tenant, "all": all, "user": s.access.User(r)})
}

func (s *toy) Run(ctx context.Context, env *service.Env) error {
	s.now.Store(&env.Now)
	m, err := alarm.NewManager(alarm.Options{Bus: env.Bus, State: env.State.Sub("alarm"), Originator: s.name,
		Types: s.c.Types, Logger: env.Log, Now: env.Now})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { m.Run(ctx) })
	select {
	case <-m.Ready():
	case <-ctx.Done():
		return nil
	}
	err = env.Bus.Subscribe(ctx, "toy/"+s.name+"/+", 1, func(ctx context.Context, msg bus.Message) {
		var c toyCommand
		if err := json.Unmarshal(msg.Payload, &c); err != nil {
			env.Error(err)
			return
		}
		var err error
		if strings.HasSuffix(msg.Topic, "/clear") {
			_, _, err = m.Clear(ctx, c.Key, c.Time, "condition over")
		} else {
			_, _, err = m.Raise(ctx, alarm.Condition{Key: c.Key, Severity: c.Severity, Tenant: c.Tenant, Time: c.Time})
		}
		env.Error(err)
	})
	if err != nil {
		return err
	}
	env.Running()
	<-ctx.Done()
	return nil
}

// toySections is a services section of two toy services: toy-a owns the
// co2-high alarms, toy-b every type.
func toySections(t *testing.T) map[string]service.Section {
	t.Helper()
	var s map[string]service.Section
	if err := yaml.Unmarshal([]byte("toy-a:\n  kind: toy\n  config:\n    types: [co2-high]\ntoy-b:\n  kind: toy\n"), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitServicesRunning waits until every service of n is running.
func waitServicesRunning(t *testing.T, n *node.Node) {
	t.Helper()
	waitFor(t, 10*time.Second, "the services to run", func() bool {
		for _, h := range n.Services().Runner().Health() {
			if h.Status != service.StatusRunning {
				return false
			}
		}
		return true
	})
}

// raiseToy publishes a command to a toy service as an independent MQTT
// client logged in as ops.
func raiseToy(t *testing.T, ctx context.Context, addr, svc, verb string, c toyCommand) {
	t.Helper()
	cl := pahoLogin(t, ctx, addr, "toy-commander", "ops", nil)
	defer cl.Disconnect(&paho.Disconnect{})
	b, _ := json.Marshal(c)
	if _, err := cl.Publish(ctx, &paho.Publish{Topic: "toy/" + svc + "/" + verb, Payload: b, QoS: 1}); err != nil {
		t.Fatal(err)
	}
}

// alarmList gets GET /api/v1/alarms?query as user.
func alarmList(t *testing.T, base, user, query string) (int, []alarm.Alarm, string) {
	t.Helper()
	code, body := twinGet(t, "GET", base+"/api/v1/alarms"+query, user)
	var l alarm.List
	if code == 200 {
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatalf("alarm list: %v: %s", err, body)
		}
	}
	return code, l.Alarms, string(body)
}

// httpDo does a request with a body as user, returning status, content type
// and body.
func httpDo(t *testing.T, method, u, user, body string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, "pw")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), []byte(b.String())
}

// TestNodeServicesAlarms: a node with a services section of two toy
// services and the broker's users: alarms the services raise (on events
// from an independent MQTT client) are listed by /api/v1/alarms, each
// tenant's user sees and acts on its tenant's alarms only, acknowledgements
// and clears carry the acting user into the audit trail through the
// command topics, errors are problem details, and /api/v1/services and the
// toy's own API answer behind the same access.
func TestNodeServicesAlarms(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := twinConfig(t, true)
	cfg.Services = toySections(t)
	n := startNode(t, cfg, nil)
	addr, base := n.Addr(node.ListenerMQTT).String(), "http://"+n.Addr(node.ListenerHTTP).String()
	waitServicesRunning(t, n)

	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	co2 := alarm.Key{Site: "campus", Kind: "room", Asset: "b01-0.01", Type: "co2-high"}
	batt := alarm.Key{Site: "wartberg", Kind: "device", Asset: "soil-probe-01", Type: "battery-low"}
	// co2's tenant comes from the campus model, batt's from the alarm.
	raiseToy(t, ctx, addr, "toy-a", "raise", toyCommand{Key: co2, Severity: alarm.Major, Time: at})
	raiseToy(t, ctx, addr, "toy-b", "raise", toyCommand{Key: batt, Severity: alarm.Warning, Tenant: "wartberg-growers", Time: at})
	var all []alarm.Alarm
	waitFor(t, 10*time.Second, "both alarms in the alarm API", func() bool {
		_, all, _ = alarmList(t, base, "ops", "")
		return len(all) == 2
	})
	if all[0].Key != co2 || all[0].Tenant != "campus-service" || all[1].Key != batt || all[1].Tenant != "wartberg-growers" {
		t.Fatalf("alarms: %+v", all)
	}
	co2ID, battID := all[0].ID, all[1].ID

	for _, tc := range []struct {
		name, user, query string
		code              int
		want              []string // alarm ids
	}{
		{"no credentials", "", "", 401, nil},
		{"wrong password", "wrong", "", 401, nil},
		{"user without tenant", "plain", "", 403, nil},
		{"administrator", "ops", "", 200, []string{co2ID, battID}},
		{"campus-service's user", "cs", "", 200, []string{co2ID}},
		{"grower", "grower", "", 200, []string{battID}},
		{"a tenant asking for another's", "cs", "?tenant=wartberg-growers", 200, nil},
		{"administrator, one tenant", "ops", "?tenant=wartberg-growers", 200, []string{battID}},
		{"severity", "ops", "?severity=critical,major", 200, []string{co2ID}},
		{"site and type", "ops", "?site=wartberg&type=battery-low&status=active&acknowledged=false", 200, []string{battID}},
		{"bad status", "ops", "?status=open", 400, nil},
		{"bad severity", "ops", "?severity=huge", 400, nil},
		{"bad acknowledged", "ops", "?acknowledged=maybe", 400, nil},
		{"unknown parameter", "ops", "?sevrity=major", 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, list, body := alarmList(t, base, tc.user, tc.query)
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			if code != 200 {
				var p service.Problem
				if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != code || p.Title == "" {
					t.Errorf("not a problem details body: %s", body)
				}
				return
			}
			var ids []string
			for _, a := range list {
				ids = append(ids, a.ID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("ids %v, want %v", ids, tc.want)
			}
		})
	}

	type step struct {
		name, method, path, user, body string
		code                           int
		check                          func(t *testing.T, r alarm.CommandResult)
	}
	for _, s := range []step{
		{"get own", "GET", "/api/v1/alarms/" + co2ID, "cs", "", 200, nil},
		{"get another tenant's", "GET", "/api/v1/alarms/" + battID, "cs", "", 404, nil},
		{"get unknown", "GET", "/api/v1/alarms/alarm:campus:room:x:co2-high:1", "ops", "", 404, nil},
		{"ack another tenant's", "POST", "/api/v1/alarms/" + battID + "/ack", "cs", "", 404, nil},
		{"unknown command", "POST", "/api/v1/alarms/" + co2ID + "/close", "cs", "", 404, nil},
		{"GET a command", "GET", "/api/v1/alarms/" + co2ID + "/ack", "cs", "", 405, nil},
		{"body with by", "POST", "/api/v1/alarms/" + co2ID + "/ack", "cs", `{"by": "someone-else"}`, 400, nil},
		{"ack own", "POST", "/api/v1/alarms/" + co2ID + "/ack", "cs", `{"comment": "window opened"}`, 200, func(t *testing.T, r alarm.CommandResult) {
			if r.Result != alarm.Acknowledged || !r.Alarm.Acknowledged || r.Alarm.AcknowledgedBy != "cs" {
				t.Errorf("after ack: %+v", r)
			}
			last := r.Alarm.Audit[len(r.Alarm.Audit)-1]
			if last.By != "cs" || last.Comment != "window opened" || last.Action != alarm.ActionAcknowledged {
				t.Errorf("audit: %+v", r.Alarm.Audit)
			}
		}},
		{"ack again", "POST", "/api/v1/alarms/" + co2ID + "/ack", "cs", "", 200, func(t *testing.T, r alarm.CommandResult) {
			if r.Result != alarm.Unchanged {
				t.Errorf("second ack: %+v", r)
			}
		}},
		// toy-b owns every type: toy-a leaves the command to it; and
		// toy-b answers "no open alarm" for co2-high, which the board
		// does not take for an answer while toy-a's comes.
		{"grower clears own", "POST", "/api/v1/alarms/" + battID + "/clear", "grower", "", 200, func(t *testing.T, r alarm.CommandResult) {
			if r.Result != alarm.ClearedNow || r.Alarm.Status != alarm.Cleared || r.Alarm.ClearedBy != "grower" {
				t.Errorf("after clear: %+v", r)
			}
		}},
		{"administrator clears the acknowledged one: closed", "POST", "/api/v1/alarms/" + co2ID + "/clear", "ops", "", 200, func(t *testing.T, r alarm.CommandResult) {
			if !r.Alarm.Closed() || r.Alarm.ClearedBy != "ops" {
				t.Errorf("after clear: %+v", r)
			}
		}},
		{"closed is gone", "GET", "/api/v1/alarms/" + co2ID, "ops", "", 404, nil},
		{"ack closed", "POST", "/api/v1/alarms/" + co2ID + "/ack", "ops", "", 404, nil},
	} {
		t.Run(s.name, func(t *testing.T) {
			code, ctype, body := httpDo(t, s.method, base+s.path, s.user, s.body)
			if code != s.code {
				t.Fatalf("%s %s as %s: %d %s, want %d", s.method, s.path, s.user, code, body, s.code)
			}
			if code >= 400 {
				if ctype != "application/problem+json" {
					t.Errorf("content type %q, want application/problem+json", ctype)
				}
				return
			}
			if s.check != nil {
				var r alarm.CommandResult
				if err := json.Unmarshal(body, &r); err != nil {
					t.Fatal(err)
				}
				s.check(t, r)
			}
		})
	}
	// The retained alarm on the bus says who cleared it, as an independent
	// MQTT client reads it.
	got := make(chan *paho.Publish, 4)
	sub := pahoLogin(t, ctx, addr, "alarm-reader", "ops", func(p *paho.Publish) { got <- p })
	defer sub.Disconnect(&paho.Disconnect{})
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "alarm/+/+/+/+", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		var a alarm.Alarm
		json.Unmarshal(p.Payload, &a)
		if p.Topic != batt.Topic("alarm") || a.ClearedBy != "grower" {
			t.Errorf("retained %s: %s", p.Topic, p.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no retained alarm")
	}

	// The services' health, and the toy's own API with the access hooks.
	code, body := twinGet(t, "GET", base+"/api/v1/services", "ops")
	var sl service.ServiceList
	json.Unmarshal(body, &sl)
	if code != 200 || len(sl.Services) != 2 || sl.Services[0].Name != "toy-a" || sl.Services[0].Status != service.StatusRunning {
		t.Errorf("/api/v1/services: %d %s", code, body)
	}
	if code, _ := twinGet(t, "GET", base+"/api/v1/services", ""); code != 401 {
		t.Errorf("/api/v1/services without credentials: %d", code)
	}
	for _, tc := range []struct{ user, want string }{
		{"cs", `{"all":false,"tenant":"campus-service","user":"cs"}`},
		{"ops", `{"all":true,"tenant":"","user":"ops"}`},
	} {
		code, body := twinGet(t, "GET", base+"/api/v1/toy/whoami", tc.user)
		if code != 200 || strings.TrimSpace(string(body)) != tc.want {
			t.Errorf("whoami as %s: %d %s, want %s", tc.user, code, body, tc.want)
		}
	}
	if mf, err := n.Registry().Gather(); err == nil {
		found := false
		for _, f := range mf {
			found = found || f.GetName() == "citymesh_service_events_received_total"
		}
		if !found {
			t.Error("the runner's metrics are not registered")
		}
	}
}

// TestNodeServicesState: the services' state is in data/services and
// survives a restart of the node: the manager's alarm numbering and its
// open alarm (a raise after the restart updates alarm …:1).
func TestNodeServicesState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := testConfig(t)
	cfg.WS = "off"
	cfg.Services = toySections(t)
	key := alarm.Key{Site: "campus", Kind: "room", Asset: "b01-0.01", Type: "co2-high"}
	at := time.Now().Add(-time.Hour).UTC()
	for i := range 2 {
		n, err := node.New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		base := "http://" + n.Addr(node.ListenerHTTP).String()
		waitServicesRunning(t, n)
		raiseToy(t, ctx, n.Addr(node.ListenerMQTT).String(), "toy-a", "raise", toyCommand{Key: key, Severity: alarm.Major, Time: at.Add(time.Duration(i) * time.Minute)})
		var list []alarm.Alarm
		waitFor(t, 10*time.Second, fmt.Sprintf("count %d", i+1), func() bool {
			_, list, _ = alarmList(t, base, "", "")
			return len(list) == 1 && list[0].Count == i+1
		})
		if !strings.HasSuffix(list[0].ID, ":1") {
			t.Errorf("run %d: id %s", i, list[0].ID)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Data, "services")); err != nil {
		t.Errorf("the services' state: %v", err)
	}
}

// TestServicesConfigErrors: mistakes in the services section are errors
// that name the setting, and the line of an unknown key in the file.
func TestServicesConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		field, msg string
	}{
		{"unknown kind", "services:\n  heating:\n    config: {}\n", "services.heating", "unknown kind of service \"heating\""},
		{"unknown explicit kind", "services:\n  h1:\n    kind: heating\n", "services.h1.kind", "unknown kind"},
		{"bad name", "services:\n  -h1:\n    kind: toy\n", "services.-h1", "service name"},
		{"unknown key", "log: info\nservices:\n  t1:\n    kind: toy\n    config:\n      tipes: [x]\n", "services.t1.config", "unknown key tipes at line 10"},
		{"wrong type", "services:\n  t1:\n    kind: toy\n    config:\n      types: 3\n", "services.t1.config", "cannot unmarshal"},
		{"unknown key of a service", "services:\n  t1:\n    kind: toy\n    conf: {}\n", "", "unknown key conf in services.NAME at line 8 (did you mean config?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := node.Parse([]byte("mqtt: 127.0.0.1:0\nws: \"off\"\nhttp: \"off\"\nstore: memory\n" + tc.yaml))
			if err == nil {
				_, err = node.New(cfg, slog.New(slog.DiscardHandler))
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want %q in it", err, tc.msg)
			}
			if tc.field == "" {
				return
			}
			var fe *node.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("error %v: want a FieldError of %s", err, tc.field)
			}
		})
	}
}

// TestReloadServicesNeedRestart: Reload names each service whose section
// changed (not one only reformatted) as needing a restart.
func TestReloadServicesNeedRestart(t *testing.T) {
	base := "mqtt: 127.0.0.1:0\nws: \"off\"\nhttp: \"off\"\nstore: memory\n"
	cfg, err := node.Parse([]byte(base + "services:\n  toy-a:\n    kind: toy\n    config: {types: [co2-high]}\n  toy-b: {kind: toy}\n"))
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, cfg, nil)
	next, err := node.Parse([]byte(base + "services:\n  toy-a:\n    kind: toy\n    config:\n      types:\n        - co2-high\n  toy-c: {kind: toy}\n"))
	if err != nil {
		t.Fatal(err)
	}
	notApplied, err := n.Reload(&next)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"services.toy-b", "services.toy-c"}; !slices.Equal(notApplied, want) {
		t.Errorf("not applied %v, want %v", notApplied, want)
	}
}

// plain is a service registered for these tests only whose HTTP API takes
// no access hooks (no SetAccess).
type plain struct{ name string }

func (s *plain) Name() string { return s.name }
func (s *plain) Run(ctx context.Context, env *service.Env) error {
	env.Running()
	<-ctx.Done()
	return nil
}
func (s *plain) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("everything\n")) })
}

func init() {
	service.Register("plain", "an HTTP API without access hooks (a test service)", func(name string, _ struct{}) (service.Service, error) {
		return &plain{name: name}, nil
	})
}

// TestNodeServiceAPIAdminOnly: the API of a service that takes no access
// hooks is served to administrators only, so that it never shows a tenant
// another tenant's data.
func TestNodeServiceAPIAdminOnly(t *testing.T) {
	cfg := twinConfig(t, true)
	cfg.Services = map[string]service.Section{"plain": {}}
	n := startNode(t, cfg, nil)
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	for _, tc := range []struct {
		user string
		code int
	}{{"", 401}, {"plain", 403}, {"cs", 403}, {"ops", 200}} {
		code, ctype, body := httpDo(t, "GET", base+"/api/v1/plain/x", tc.user, "")
		if code != tc.code {
			t.Errorf("as %q: %d %s, want %d", tc.user, code, body, tc.code)
		}
		if code != 200 && ctype != "application/problem+json" {
			t.Errorf("as %q: content type %s", tc.user, ctype)
		}
	}
}

// TestNodeAddService: a program adds a service it built itself to a node
// with a services section: it runs, its API is mounted; without a section,
// or after Start, AddService refuses.
func TestNodeAddService(t *testing.T) {
	cfg := testConfig(t)
	cfg.WS, cfg.Store = "off", "memory"
	bare, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	s, err := service.BuildFrom("toy", "mine", toyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bare.AddService("toy", s); err == nil {
		t.Error("AddService without a services section: no error")
	}
	cfg.Services = map[string]service.Section{}
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.AddService("toy", s); err != nil {
		t.Fatal(err)
	}
	if err := n.AddService("toy", s); err == nil {
		t.Error("the same service added twice: no error")
	}
	simulated := time.Date(2026, 5, 12, 7, 0, 0, 0, time.UTC)
	if err := n.SetServicesClock(func() time.Time { return simulated }); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitServicesRunning(t, n)
	if h := n.Services().Runner().Health(); len(h) != 1 || h[0].Name != "mine" {
		t.Errorf("health: %+v", h)
	}
	code, body := twinGet(t, "GET", "http://"+n.Addr(node.ListenerHTTP).String()+"/api/v1/toy/whoami", "")
	if code != 200 || !strings.Contains(string(body), `"user":"anonymous"`) {
		t.Errorf("the added service's API: %d %s", code, body)
	}
	if code, body := twinGet(t, "GET", "http://"+n.Addr(node.ListenerHTTP).String()+"/api/v1/toy/now", ""); code != 200 || !strings.Contains(string(body), `"now":"2026-05-12T07:00:00Z"`) {
		t.Errorf("the added service's clock: %d %s, want the one set", code, body)
	}
	if err := n.SetServicesClock(time.Now); err == nil {
		t.Error("SetServicesClock after Start: no error")
	}
	s2, _ := service.BuildFrom("toy", "late", nil)
	if err := n.AddService("toy", s2); err == nil {
		t.Error("AddService after Start: no error")
	}
}

// TestAlarmsAcrossTheMesh: a service at an edge node raises an alarm; the
// alarm API of the core node, linked to it by the mesh, lists it, and an
// acknowledgement through the core's API reaches the service at the edge
// (its command and the MQTT 5 reply cross the link both ways).
func TestAlarmsAcrossTheMesh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	coreCfg := testConfig(t)
	coreCfg.WS = "off"
	coreCfg.Mesh = mesh.Config{Node: "core-1", Role: "core", Accept: mesh.AcceptConfig{Edges: []string{"*"}}}
	coreCfg.Services = map[string]service.Section{}
	core := startNode(t, coreCfg, nil)
	base := "http://" + core.Addr(node.ListenerHTTP).String()

	edgeCfg := testConfig(t)
	edgeCfg.WS, edgeCfg.HTTP = "off", "off"
	edgeCfg.Mesh = mesh.Config{Node: "campus-b1", Role: "edge",
		Upstream: []mesh.PeerConfig{{Name: "core-1", URL: "mqtt://" + core.Addr(node.ListenerMQTT).String()}}}
	edgeCfg.Services = toySections(t)
	edge := startNode(t, edgeCfg, nil)
	waitServicesRunning(t, edge)

	// The core's interest in the alarms reaches the edge a moment after
	// the link is up: raise (each time a newer observation) until the
	// alarm arrives.
	key := alarm.Key{Site: "campus", Kind: "room", Asset: "b01-0.01", Type: "co2-high"}
	at := time.Now().Add(-time.Hour).UTC()
	var list []alarm.Alarm
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			t.Fatal("the edge's alarm never reached the core's alarm API")
		}
		raiseToy(t, ctx, edge.Addr(node.ListenerMQTT).String(), "toy-a", "raise", toyCommand{Key: key, Severity: alarm.Major, Time: at.Add(time.Duration(i) * time.Second)})
		_, list, _ = alarmList(t, base, "", "")
		if len(list) == 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if list[0].Originator != "toy-a" {
		t.Fatalf("alarm %+v", list[0])
	}
	// The command crosses to the edge and the reply comes back; the
	// interest in the command topics may lag too: a 504 is tried again.
	for {
		code, _, body := httpDo(t, "POST", base+"/api/v1/alarms/"+list[0].ID+"/ack", "", `{"comment": "from the core"}`)
		if code == 200 {
			var r alarm.CommandResult
			json.Unmarshal(body, &r)
			if !r.Alarm.Acknowledged || r.Alarm.AcknowledgedBy != "anonymous" {
				t.Errorf("after ack: %s", body)
			}
			break
		}
		if code != http.StatusGatewayTimeout || ctx.Err() != nil {
			t.Fatalf("ack across the mesh: %d %s", code, body)
		}
	}
}
