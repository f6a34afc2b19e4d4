package live

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
)

// TestIncidentCommandsOverMQTT sends commands as operators' consoles do:
// on the incident's command topics, in a tenant's namespace (the topics a
// tenant's client publishes to once the broker has prefixed them), and on
// the alarm command topics of the incidents' alarms; bad ones are answered
// with an error on the response topic.
func TestIncidentCommandsOverMQTT(t *testing.T) {
	b, _ := testBroker(t)
	cfg := testConfig(t)
	cfg.TenantCommands = true
	st := service.NewMemoryStore()
	r := startService(t, b, st.State("robot"), cfg, func() time.Time { return simStart.Add(time.Hour) })
	pub, err := bus.NewLocal(b, "consoles")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	publishAll(t, pub, record(t, 20*time.Minute, nil))
	r.sync(t, pub, "x")
	bk := r.s.cur.Load().book
	esc, _ := bk.byKey("campus", "b01-escape-route", robot.AnomalyEscapeRouteBlocked)
	off, _ := bk.byKey("campus", "loomi", robot.AnomalyOffCorridor)

	var mu sync.Mutex
	replies := map[string]Reply{}
	for _, f := range []string{"replies/#", "$tenant/+/replies/#"} {
		err := pub.Subscribe(context.Background(), f, 1, func(_ context.Context, m bus.Message) {
			var rep Reply
			if err := json.Unmarshal(m.Payload, &rep); err != nil {
				t.Errorf("reply %s: %v", m.Payload, err)
			}
			mu.Lock()
			replies[m.Topic] = rep
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	send := func(topic, body, replyTo string, retain bool) {
		t.Helper()
		if err := pub.Publish(context.Background(), bus.Message{Topic: topic, Payload: []byte(body), QoS: 1, Retain: retain, ResponseTopic: replyTo}); err != nil {
			t.Fatal(err)
		}
	}
	reply := func(topic string) Reply {
		t.Helper()
		var rep Reply
		waitFor(t, 10*time.Second, "reply on "+topic, func() bool {
			mu.Lock()
			defer mu.Unlock()
			var ok bool
			rep, ok = replies[topic]
			return ok
		})
		return rep
	}
	inc := "robot/campus/incident/"
	for i, c := range []struct {
		name, topic, body string
		tenant            string // the reply's namespace
		ok                bool
		want              string // result, or a part of the error
	}{
		{"bad body", inc + esc + "/acknowledge", `{"by": `, "", false, "command body"},
		{"unknown member", inc + esc + "/acknowledge", `{"by": "anna", "comment": "x"}`, "", false, "unknown field"},
		{"nobody", inc + esc + "/acknowledge", `{}`, "", false, "needs who"},
		{"unknown action", inc + esc + "/explode", `{"by": "anna"}`, "", false, "unknown action"},
		{"no such incident", inc + "inc-0000000000000000/acknowledge", `{"by": "anna"}`, "", false, "no such incident"},
		{"wrong site", "robot/wartberg/incident/" + esc + "/acknowledge", `{"by": "anna"}`, "", false, "no such incident"},
		{"another tenant's incident", "$tenant/other/" + inc + esc + "/acknowledge", `{"by": "olga"}`, "other", false, "no such incident"},
		{"a tenant's incident unowned", "$tenant/swhn/" + inc + off + "/acknowledge", `{"by": "anna"}`, "swhn", false, "no such incident"},
		{"the owner acknowledges", "$tenant/swhn/" + inc + esc + "/acknowledge", `{"by": "anna", "note": "seen"}`, "swhn", true, "acknowledged"},
		{"alarm ack of an acknowledged incident", "alarm/campus/escape-route/b01-escape-route/escape-route-blocked/ack", `{"by": "ops"}`, "", true, "unchanged"},
		{"alarm clear resolves", "alarm/campus/robot/loomi/off-corridor/clear", `{"by": "ben", "note": "GPS"}`, "", true, "resolved"},
		{"alarm of no incident", "alarm/campus/room/b09-1.01/setpoint-out-of-range/ack", `{"by": "ben"}`, "", false, "no such incident"},
		{"operator starts", inc + esc + "/start", `{"by": "carl"}`, "", true, "in_progress"},
		{"close before resolve", inc + esc + "/close", `{"by": "carl"}`, "", false, "cannot go from in_progress to closed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := "replies/c" + string(rune('a'+i))
			send(c.topic, c.body, rt, false)
			if c.tenant != "" {
				rt = "$tenant/" + c.tenant + "/" + rt
			}
			rep := reply(rt)
			got := rep.Result
			if !rep.OK {
				got = rep.Error
			}
			if rep.OK != c.ok || !strings.Contains(got, c.want) {
				t.Errorf("reply %+v, want ok=%v with %q", rep, c.ok, c.want)
			}
		})
	}
	// A retained command is carried out when it is published, and not
	// again when the retained copy is delivered at the service's restart.
	send(inc+esc+"/resolve", `{"by": "mallory"}`, "replies/retained", true)
	if rep := reply("replies/retained"); !rep.OK || rep.Result != "resolved" {
		t.Errorf("reply %+v", rep)
	}
	mu.Lock()
	delete(replies, "replies/retained")
	mu.Unlock()
	r.stop()
	r = startService(t, b, st.State("robot"), cfg, nil)
	r.sync(t, pub, "y")
	mu.Lock()
	_, answered := replies["replies/retained"]
	mu.Unlock()
	if answered {
		t.Error("a retained command was carried out again at the restart")
	}
	bk = r.s.cur.Load().book
	got, _ := bk.get(esc)
	var trail []string
	for _, a := range got.Audit {
		trail = append(trail, a.Actor+":"+a.Action)
	}
	if s := strings.Join(trail, " "); s != "robot:open anna:acknowledge carl:start mallory:resolve" {
		t.Errorf("audit %s", s)
	}
	if o, _ := bk.get(off); o.State != robot.StateResolved || o.Audit[len(o.Audit)-1].Actor != "ben" {
		t.Errorf("corridor incident %+v", o)
	}
	send(inc+esc+"/resolve", "", "", true) // remove the retained command
}

// failingBus refuses subscriptions to one filter.
type failingBus struct {
	bus.Bus
	filter string
}

func (f failingBus) Subscribe(ctx context.Context, filter string, qos byte, h bus.Handler) error {
	if filter == f.filter {
		return errors.New("not authorized")
	}
	return f.Bus.Subscribe(ctx, filter, qos, h)
}

// TestRunFailsWhenItCannotSubscribe: a subscription refused (a remote
// service without the right to a tenant's namespace) is Run's error, and
// Run returns, its goroutines ended, while its context is still live.
func TestRunFailsWhenItCannotSubscribe(t *testing.T) {
	b, _ := testBroker(t)
	cfg := testConfig(t)
	cfg.TenantCommands = true
	s, err := New("robot", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := bus.NewLocal(b, "svc-robot")
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	env := service.NewTestEnv("robot", failingBus{lb, "$tenant/+/" + incidentFilter}, service.NewMemoryStore().State("robot"), nil)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), env) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not authorized") {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
