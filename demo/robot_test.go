package demo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/internal/pahotest"
	"github.com/citymesh/citymesh/node"
	robotlive "github.com/citymesh/citymesh/robot/live"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// TestDemoRobot: the demo runs the robot service over the campus's robot
// and route (its demo configuration). With the escape route of b01 blocked
// from the start, within seconds of wall time (the robot patrols every two
// simulated hours from midnight: at 1800× the 08:00 patrol after the 07:00
// start comes 2 s after it): the
// service is listed running, an independent MQTT client sees the retained
// progress of the robot and the incident's state, the robot API lists the
// incident (owned by the robot's tenant: the campus does not know the
// escape route) with a picture whose bytes the robot service serves itself
// (no redirect, the hash matches), and the alarm API has the incident's
// alarm with its tenant.
func TestDemoRobot(t *testing.T) {
	opts := options(t)
	fs, err := sim.NewFaultSet([]sim.Fault{{Kind: sim.FaultCheckFails, Asset: "b01-escape", Start: start, Duration: 6 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	opts.Faults = fs
	d, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := time.Now()
	if err := d.Start(ctx); err != nil {
		d.Close()
		t.Fatal(err)
	}
	defer d.Close()
	startTook := time.Since(started)
	base := "http://" + d.Addr(node.ListenerHTTP).String()

	// The service runs.
	var health string
	waitDemo(t, "the robot service to run", func() bool {
		var l service.ServiceList
		code, body := robotGet(t, base+node.ServicesPrefix, &l)
		health = body
		for _, h := range l.Services {
			if h.Name == robotlive.Kind {
				return code == 200 && h.Status == service.StatusRunning
			}
		}
		return false
	}, func() string { return health })

	// Its retained results, as an independent MQTT client sees them.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	col := pahotest.Subscribe(t, sctx, d.Addr(node.ListenerMQTT).String(), pahotest.Options{ClientID: "robot-watcher"},
		robotlive.ProgressTopic("+", "+"), robotlive.IncidentTopic("+", "+"))
	defer col.Close()
	var inc robotlive.Incident
	var progress bool
	waitDemo(t, "the robot's progress and the blocked escape route's incident with a picture, retained", func() bool {
		for _, p := range col.Messages() {
			switch {
			case p.Topic == robotlive.ProgressTopic("campus", "loomi"):
				progress = true
			case strings.HasSuffix(p.Topic, "/state"):
				var i robotlive.Incident
				if json.Unmarshal(p.Payload, &i) == nil && i.Check == "b01-escape" && len(i.Pictures) > 0 {
					inc = i
				}
			}
		}
		return progress && inc.ID != ""
	}, func() string { return "no progress or incident yet" })
	t.Logf("the incident with its picture %v after the start (Start took %v; simulated %s)", time.Since(started).Round(time.Millisecond),
		startTook.Round(time.Millisecond), d.Stats().SimTime.In(sim.Berlin).Format(time.TimeOnly))
	if inc.Tenant != "campus-service" || inc.Site != "campus" || inc.Robot != "loomi" || string(inc.Kind) != "escape_route_blocked" {
		t.Errorf("incident: %+v", inc)
	}

	// The robot API lists it.
	var list struct {
		Incidents []robotlive.Incident `json:"incidents"`
	}
	if code, body := robotGet(t, base+robotlive.APIPrefix+"incidents", &list); code != 200 || len(list.Incidents) == 0 {
		t.Fatalf("GET incidents: %d %s", code, body)
	}

	// Its picture, from the robot service itself.
	pic := inc.Pictures[len(inc.Pictures)-1]
	if !strings.HasPrefix(pic.URL, robotlive.APIPrefix+"pictures/") {
		t.Fatalf("picture URL %s is not the robot service's", pic.URL)
	}
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(base + pic.URL)
	if err != nil {
		t.Fatal(err)
	}
	png, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(png)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || "sha256:"+hex.EncodeToString(sum[:]) != pic.Hash {
		t.Errorf("GET %s: %d %s, %d bytes of hash %x, want %s", pic.URL, resp.StatusCode, resp.Header.Get("Content-Type"), len(png), sum, pic.Hash)
	}

	// Its alarm, with the tenant.
	var alarms alarm.List
	waitDemo(t, "the incident's alarm", func() bool {
		robotGet(t, base+alarm.APIPrefix+"?originator=robot", &alarms)
		for _, a := range alarms.Alarms {
			if a.Key.Type == "escape-route-blocked" && a.Key.Asset == "b01-escape-route" {
				return a.Tenant == "campus-service"
			}
		}
		return false
	}, func() string { b, _ := json.Marshal(alarms); return string(b) })

	cancel()
	if err := d.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("close: %v", err)
	}
}

// robotGet gets u and decodes its JSON body into v, returning the status
// and the body.
func robotGet(t *testing.T, u string, v any) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, v)
	return resp.StatusCode, string(b)
}
