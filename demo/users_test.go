package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/node"
)

// TestDemoUsers: with Users the demo makes an administrator, an operator,
// a user per tenant and the first tenant's administrator, prints them with
// their passwords, and its HTTP APIs want them: no credentials or a wrong
// password is 401, the administrator reads the whole twin, a tenant's user
// its tenant's part and its own invoice only. The simulated devices, MQTT
// clients without credentials, still publish.
func TestDemoUsers(t *testing.T) {
	opts := options(t)
	opts.Users = true
	opts.Store = "memory"
	d, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Start(ctx); err != nil {
		d.Close()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	}()
	users := d.Users()
	roles := map[string]int{}
	pw := map[string]string{}
	for _, u := range users {
		roles[u.Role]++
		pw[u.Name] = u.Password
		if len(u.Password) < 16 {
			t.Errorf("%s's password %q is short", u.Name, u.Password)
		}
	}
	tenants := len(d.Model().Tenants)
	if roles[api.RoleAdmin] != 1 || roles[api.RoleOperator] != 1 || roles[api.RoleTenantAdmin] != 1 || roles[api.RoleTenantUser] != tenants {
		t.Fatalf("roles %v for %d tenants", roles, tenants)
	}
	var banner strings.Builder
	if err := d.WriteBanner(&banner); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if !strings.Contains(banner.String(), u.Name) || !strings.Contains(banner.String(), u.Password) {
			t.Errorf("the banner lacks %s and its password:\n%s", u.Name, banner.String())
		}
	}
	if !strings.Contains(banner.String(), "curl -s -u admin:"+pw["admin"]) {
		t.Errorf("the banner's curl commands lack the administrator's credentials:\n%s", banner.String())
	}

	base := "http://" + d.Addr(node.ListenerHTTP).String()
	get := func(user, pass, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	type summary struct {
		Points int `json:"points"`
	}
	points := func(user string) int {
		t.Helper()
		code, body := get(user, pw[user], "/api/v1/twin/")
		var s summary
		if code != 200 || json.Unmarshal([]byte(body), &s) != nil {
			t.Fatalf("twin as %s: %d %s", user, code, body)
		}
		return s.Points
	}
	if code, _ := get("", "", "/api/v1/twin/"); code != 401 {
		t.Errorf("twin without credentials: %d, want 401", code)
	}
	if code, _ := get("admin", "wrong", "/api/v1/twin/"); code != 401 {
		t.Errorf("twin with a wrong password: %d, want 401", code)
	}
	all, own := points("admin"), points("campus-service")
	if own == 0 || own >= all {
		t.Errorf("the twin's points: administrator %d, campus-service %d", all, own)
	}
	// Invoices: the tenant's own, never another's.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("library", pw["library"], "/api/v1/energy/invoices")
		if code != 200 {
			t.Fatalf("invoices as library: %d %s", code, body)
		}
		if strings.Contains(body, `"tenant":"campus-service"`) {
			t.Fatalf("library sees campus-service's invoice: %s", body)
		}
		code, body = get("campus-service", pw["campus-service"], "/api/v1/energy/invoices")
		if code == 200 && strings.Contains(body, `"tenant":"campus-service"`) {
			if strings.Contains(body, `"tenant":"library"`) {
				t.Fatalf("campus-service sees library's invoice: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("campus-service's invoice did not come: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The devices publish without credentials: the twin fills.
	waitDemo(t, "points with values", func() bool {
		_, body := get("admin", pw["admin"], "/api/v1/twin/")
		return strings.Contains(body, `"points_with_value":`) && !strings.Contains(body, `"points_with_value":0,`)
	}, func() string { _, b := get("admin", pw["admin"], "/api/v1/twin/"); return b })
}
