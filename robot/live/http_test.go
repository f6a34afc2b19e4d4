package live

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/internal/openapitest"
	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// pngBytes is a picture as the simulated robot takes it.
func pngBytes(t testing.TB) []byte {
	t.Helper()
	p, err := sim.CheckPicture(robot.CheckEscapeRoute, "b01-escape-route", "blocked", "clear", simStart)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPictureUploads(t *testing.T) {
	b, _ := testBroker(t)
	cfg := testConfig(t)
	cfg.Pictures.MaxBytes = 64 << 10
	cfg.Pictures.MaxTotalBytes = 100 << 10
	cfg.Pictures.Dir = t.TempDir()
	st := service.NewMemoryStore()
	r := startService(t, b, st.State("robot"), cfg, nil)
	srv := httptest.NewServer(r.s.HTTPHandler())
	defer srv.Close()
	png := pngBytes(t)
	big := append(bytes.Clone(png), make([]byte, 70<<10)...)
	other, err := sim.CheckPicture(robot.CheckBollard, "bollard-1", "down", "up", simStart)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		body        []byte
		contentType string
		status      int
	}{
		{"a PNG", png, "image/png", http.StatusCreated},
		{"the same PNG again", png, "image/png", http.StatusOK},
		{"without a type", other, "", http.StatusCreated},
		{"too large", big, "image/png", http.StatusRequestEntityTooLarge},
		{"empty", nil, "image/png", http.StatusUnsupportedMediaType},
		{"text", []byte("hello, this is not a picture"), "image/png", http.StatusUnsupportedMediaType},
		{"JSON said to be JSON", []byte(`{"a": 1}`), "application/json", http.StatusUnsupportedMediaType},
		{"a PNG said to be text", png, "text/plain", http.StatusUnsupportedMediaType},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+APIPrefix+"pictures", bytes.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("%s: %s", resp.Status, body)
			}
			if c.status >= 400 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("error as %s", ct)
				}
				return
			}
			var res UploadResult
			if err := json.Unmarshal(body, &res); err != nil || res.ContentType != "image/png" || res.URL != PicturePath(res.Hash) || res.Size != int64(len(c.body)) {
				t.Errorf("upload result %s (%v)", body, err)
			}
		})
	}
	// The total limit: a third picture would pass 100 KiB.
	third := append(bytes.Clone(png), make([]byte, 60<<10)...)
	for i, want := range []int{http.StatusCreated, http.StatusInsufficientStorage} {
		third[len(third)-1] = byte(i + 1)
		resp, err := http.Post(srv.URL+APIPrefix+"pictures", "image/png", bytes.NewReader(third))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("upload %d: %s, want %d", i, resp.Status, want)
		}
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{PicturePath(sim.PictureRef(png)), 200},
		{APIPrefix + "pictures/" + sim.PictureRef(png), 200},
		{APIPrefix + "pictures/" + strings.Repeat("0", 64), 404},
		{APIPrefix + "pictures/xyz", 400},
		{APIPrefix + "pictures/" + strings.Repeat("A", 64), 400},
		{APIPrefix + "nothing", 404},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %s", c.path, resp.Status)
		}
		if c.status == 200 && (!bytes.Equal(body, png) || resp.Header.Get("Cache-Control") != "private, max-age=31536000, immutable") {
			t.Errorf("GET %s: %d bytes, cache %q", c.path, len(body), resp.Header.Get("Cache-Control"))
		}
	}
	// Kept across a restart, in the directory; 503 while stopped.
	r.stop()
	if resp, err := http.Get(srv.URL + PicturePath(sim.PictureRef(png))); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("while stopped: %v %v", resp.Status, err)
	}
	r = startService(t, b, st.State("robot"), cfg, nil)
	srv2 := httptest.NewServer(r.s.HTTPHandler())
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + PicturePath(sim.PictureRef(png)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, png) {
		t.Errorf("after a restart: %s, %d bytes", resp.Status, len(body))
	}
	if n, total := r.s.cur.Load().pics.usage(); n != 3 || total > cfg.Pictures.MaxTotalBytes {
		t.Errorf("usage after restart: %d pictures, %d bytes", n, total)
	}
}

func TestIncidentActionsOverHTTP(t *testing.T) {
	b, _ := testBroker(t)
	cfg := testConfig(t)
	st := service.NewMemoryStore()
	r := startService(t, b, st.State("robot"), cfg, func() time.Time { return simStart.Add(time.Hour) })
	pub, err := bus.NewLocal(b, "loomi")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	publishAll(t, pub, record(t, 20*time.Minute, nil))
	r.sync(t, pub, "x")
	r.s.SetOptions(Options{
		Tenant: func(req *http.Request) (string, bool) {
			return req.Header.Get("X-Tenant"), req.Header.Get("X-Tenant") == ""
		},
		User: func(req *http.Request) string { return req.Header.Get("X-User") },
	})
	srv := httptest.NewServer(r.s.HTTPHandler())
	defer srv.Close()
	esc, _ := r.s.cur.Load().book.byKey("campus", "b01-escape-route", robot.AnomalyEscapeRouteBlocked)
	off, _ := r.s.cur.Load().book.byKey("campus", "loomi", robot.AnomalyOffCorridor)
	if esc == "" || off == "" {
		t.Fatal("incidents missing")
	}
	do := func(method, path, tenant, user, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+APIPrefix+path, strings.NewReader(body))
		if tenant != "" {
			req.Header.Set("X-Tenant", tenant)
		}
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		name, method, path, tenant, user, body string
		status                                 int
		contains                               string
	}{
		{"operator lists", "GET", "incidents", "", "", "", 200, off},
		{"tenant lists its own", "GET", "incidents", "swhn", "", "", 200, esc},
		{"tenant does not see others", "GET", "incidents/" + off, "swhn", "", "", 404, "not yours"},
		{"bad state", "GET", "incidents?state=sleeping", "", "", "", 400, "state"},
		{"no user", "POST", "incidents/" + esc + "/acknowledge", "swhn", "", "", 401, "authenticated"},
		{"unknown action", "POST", "incidents/" + esc + "/explode", "swhn", "anna", "", 404, "want acknowledge"},
		{"unknown member", "POST", "incidents/" + esc + "/acknowledge", "swhn", "anna", `{"who": "x"}`, 400, "unknown field"},
		{"tenant acts on another's", "POST", "incidents/" + off + "/acknowledge", "swhn", "anna", "", 404, "not yours"},
		{"acknowledge", "POST", "incidents/" + esc + "/acknowledge", "swhn", "anna", `{"note": "seen"}`, 200, `"result":"acknowledged"`},
		{"acknowledge again", "POST", "incidents/" + esc + "/acknowledge", "swhn", "anna", "", 200, `"result":"unchanged"`},
		{"close before resolve", "POST", "incidents/" + esc + "/close", "swhn", "anna", "", 409, "cannot go from acknowledged to closed"},
		{"start", "POST", "incidents/" + esc + "/start", "swhn", "anna", "", 200, `"result":"in_progress"`},
		{"resolve", "POST", "incidents/" + esc + "/resolve", "swhn", "anna", "", 200, `"result":"resolved"`},
		{"reopen", "POST", "incidents/" + esc + "/reopen", "swhn", "anna", "", 200, `"result":"in_progress"`},
		{"cancel", "POST", "incidents/" + esc + "/cancel", "swhn", "anna", "", 200, `"result":"cancelled"`},
		{"nothing after cancel", "POST", "incidents/" + esc + "/start", "swhn", "anna", "", 409, "final"},
		{"closed ones on request", "GET", "incidents?state=cancelled", "", "", "", 200, esc},
		{"progress", "GET", "progress", "", "", "", 200, `"robot":"loomi"`},
		{"routes", "GET", "routes", "", "", "", 200, `"robot":"loomi","site":"campus","corridor_m":`},
		{"routes' waypoints", "GET", "routes", "swhn", "", "", 200, `"waypoints":[{"id":"wp01"`},
		{"routes is read-only", "POST", "routes", "", "", "", 404, "not a route"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(c.method, c.path, c.tenant, c.user, c.body)
			if status != c.status || !strings.Contains(body, c.contains) {
				t.Errorf("%s %s: %d %s, want %d with %q", c.method, c.path, status, body, c.status, c.contains)
			}
			if status == 200 {
				openapitest.Check(t, openAPI, c.method, APIPrefix+c.path, status, "", []byte(body))
			}
		})
	}
	inc, _ := r.s.cur.Load().book.get(esc)
	var actors []string
	for _, a := range inc.Audit {
		actors = append(actors, a.Actor+":"+a.Action)
	}
	if got := strings.Join(actors, " "); got != "robot:open anna:acknowledge anna:start anna:resolve anna:reopen anna:cancel" {
		t.Errorf("audit %s", got)
	}
	// The cancelled incident's retained state is removed once its final
	// state went out; the open one's stays.
	waitFor(t, 10*time.Second, "the cancelled incident's removal", func() bool { return len(r.s.cur.Load().book.gone()) == 0 })
	late, err := bus.NewLocal(b, "late")
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	var mu sync.Mutex
	retained := map[string]bool{}
	done := make(chan struct{})
	late.Subscribe(context.Background(), "robot/campus/incident/+/state", 1, func(_ context.Context, m bus.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.Topic == "robot/campus/incident/marker-late/state" {
			close(done)
			return
		}
		retained[m.Topic] = m.Retain && len(m.Payload) > 0
	})
	late.Publish(context.Background(), bus.Message{Topic: "robot/campus/incident/marker-late/state", QoS: 1})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no marker within 10 s")
	}
	mu.Lock()
	if retained[IncidentTopic("campus", esc)] || !retained[IncidentTopic("campus", off)] {
		t.Errorf("retained incidents: %v", retained)
	}
	mu.Unlock()
	// The alarm followed: cancelled is cleared and acknowledged, so closed.
	if a, ok := r.s.cur.Load().alarms.Get(alarmKey("campus", "loomi", "b01-escape-route", robot.AnomalyEscapeRouteBlocked, robot.CheckEscapeRoute)); ok {
		t.Errorf("alarm still open: %+v", a)
	}
}
