package node_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/node"
	robotlive "github.com/citymesh/citymesh/robot/live"
	"github.com/citymesh/citymesh/service"
)

// robotSection is a services section with the robot service on the small
// campus's route: the escape route of b01 belongs to campus-service, its
// foyer lighting (for the test) to wartberg-growers.
const robotSection = `robot:
  config:
    robots: [{id: loomi, site: campus, route: ../examples/campus/small/loomi-route.yaml}]
    owners: {b01-escape-route: campus-service, b01-foyer-lighting: wartberg-growers}
`

// publishRobotChecks publishes, as an independent MQTT client logged in as
// ops, Loomi's failed checks of b01's escape route and foyer lighting.
func publishRobotChecks(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	c := pahoLogin(t, ctx, addr, "loomi", "ops", nil)
	defer c.Disconnect(&paho.Disconnect{})
	at := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC) // a Tuesday: the foyer's lights should be on
	topic := event.NewTopic(event.DomainRobot, "campus", event.AssetRobot, "loomi", event.EventCheck)
	for _, ck := range []struct{ id, kind, target, observed string }{
		{"b01-escape", "escape_route", "b01-escape-route", "blocked"},
		{"b01-light", "lighting", "b01-foyer-lighting", "off"},
	} {
		e := &event.Check{Header: event.Header{Time: at, Asset: "loomi", Source: event.Source{Type: event.SourceRobot}}, Point: "loomi/check/" + ck.id,
			Route: "loomi-night-patrol", Waypoint: "wp02", Check: ck.id, CheckKind: ck.kind, Target: ck.target, Observed: ck.observed}
		msg, err := event.NewMessage(topic, e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Publish(ctx, &paho.Publish{Topic: msg.Topic, Payload: msg.Payload, QoS: 1,
			Properties: &paho.PublishProperties{ContentType: msg.ContentType}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNodeRobotAccess: the robot service in a node with the broker's
// password-file users serves its API to tenants' users scoped to their
// tenant (SetAccess): each sees and acts on its own tenant's incidents
// only (another tenant's is 404; a user without tenant gets 403), the
// acting user is recorded, uploads are the operators', unauthenticated
// requests get 401; the incidents' alarms carry their tenant.
func TestNodeRobotAccess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := twinConfig(t, true)
	if err := yaml.Unmarshal([]byte(robotSection), &cfg.Services); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, cfg, nil)
	addr, base := n.Addr(node.ListenerMQTT).String(), "http://"+n.Addr(node.ListenerHTTP).String()
	waitServicesRunning(t, n)
	publishRobotChecks(t, ctx, addr)

	type list struct {
		Incidents []robotlive.Incident `json:"incidents"`
	}
	var all list
	waitFor(t, 10*time.Second, "both incidents in the robot API", func() bool {
		code, body := twinGet(t, "GET", base+robotlive.APIPrefix+"incidents", "ops")
		all = list{}
		json.Unmarshal(body, &all)
		return code == 200 && len(all.Incidents) == 2
	})
	ids := map[string]string{} // tenant → its incident
	for _, inc := range all.Incidents {
		ids[inc.Tenant] = inc.ID
	}
	escape, light := ids["campus-service"], ids["wartberg-growers"]
	if escape == "" || light == "" {
		t.Fatalf("incidents' tenants: %+v", all.Incidents)
	}

	for _, tc := range []struct {
		name, user string
		code       int
		want       []string
	}{
		{"no credentials", "", 401, nil},
		{"wrong password", "wrong", 401, nil},
		{"user without tenant: the node refuses", "plain", 403, nil},
		{"campus-service's user", "cs", 200, []string{escape}},
		{"grower", "grower", 200, []string{light}},
		{"administrator", "ops", 200, []string{escape, light}},
	} {
		t.Run("list/"+tc.name, func(t *testing.T) {
			code, ctype, body := httpDo(t, "GET", base+robotlive.APIPrefix+"incidents?state=all", tc.user, "")
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			if code != 200 {
				if ctype != "application/problem+json" {
					t.Errorf("content type %q", ctype)
				}
				return
			}
			var l list
			if err := json.Unmarshal(body, &l); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, inc := range l.Incidents {
				got = append(got, inc.ID)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("incidents %v, want %v", got, want)
			}
		})
	}

	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
	for _, s := range []struct {
		name, method, path, user, body string
		code                           int
	}{
		{"get own", "GET", "incidents/" + escape, "cs", "", 200},
		{"get another tenant's", "GET", "incidents/" + light, "cs", "", 404},
		{"get without tenant", "GET", "incidents/" + escape, "plain", "", 403},
		{"acknowledge another tenant's", "POST", "incidents/" + light + "/acknowledge", "cs", "", 404},
		{"acknowledge without credentials", "POST", "incidents/" + escape + "/acknowledge", "", "", 401},
		{"acknowledge own", "POST", "incidents/" + escape + "/acknowledge", "cs", `{"note": "on my way"}`, 200},
		{"progress", "GET", "progress", "grower", "", 200},
		{"a tenant uploads a picture", "POST", "pictures", "cs", png, 403},
		{"an operator uploads a picture", "POST", "pictures", "ops", png, 201},
	} {
		t.Run(s.name, func(t *testing.T) {
			code, ctype, body := httpDo(t, s.method, base+robotlive.APIPrefix+s.path, s.user, s.body)
			if code != s.code {
				t.Fatalf("%s %s as %q: %d %s, want %d", s.method, s.path, s.user, code, body, s.code)
			}
			if code >= 400 && ctype != "application/problem+json" {
				t.Errorf("content type %q, want application/problem+json", ctype)
			}
		})
	}
	// The acknowledgement names the authenticated user, in the incident
	// and on its alarm.
	code, body := twinGet(t, "GET", base+robotlive.APIPrefix+"incidents/"+escape, "cs")
	var inc robotlive.Incident
	json.Unmarshal(body, &inc)
	if last := inc.Audit[len(inc.Audit)-1]; code != 200 || last.Actor != "cs" || last.Note != "on my way" {
		t.Errorf("incident after the acknowledgement: %d %s", code, body)
	}

	// The alarms carry the incidents' tenants: each tenant's user sees its
	// own in the alarm API.
	for _, tc := range []struct{ user, tenant, asset string }{
		{"cs", "campus-service", "b01-escape-route"},
		{"grower", "wartberg-growers", "b01-foyer-lighting"},
	} {
		var got []alarm.Alarm
		waitFor(t, 10*time.Second, tc.user+"'s robot alarm", func() bool {
			_, got, _ = alarmList(t, base, tc.user, "?originator=robot")
			return len(got) == 1
		})
		if a := got[0]; a.Tenant != tc.tenant || a.Key.Asset != tc.asset {
			t.Errorf("%s's alarm: %+v", tc.user, a)
		}
		if tc.user == "cs" && (!got[0].Acknowledged || got[0].AcknowledgedBy != "cs") {
			t.Errorf("the acknowledged incident's alarm: %+v", got[0])
		}
	}
	var sl service.ServiceList
	_, b := twinGet(t, "GET", base+node.ServicesPrefix, "ops")
	json.Unmarshal(b, &sl)
	if len(sl.Services) != 1 || sl.Services[0].Name != robotlive.Kind || sl.Services[0].Status != service.StatusRunning {
		t.Errorf("services: %s", b)
	}
}
