package api

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/auth"
)

// TestLoginOverTLS: over TLS the session cookie is Secure, and the login's
// Origin must be the https origin of the request's host.
func TestLoginOverTLS(t *testing.T) {
	f := auth.NewPasswordFile(filepath.Join(t.TempDir(), "passwd"))
	hash, err := auth.HashPassword([]byte("pw"), auth.HashParams{Bcrypt: true, Cost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Set("ops", hash, []string{"admin"}, ""); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, rt := range Routes(Options{Auth: &Authenticator{Chain: &auth.Chain{Backends: []auth.Authenticator{f}}, Sessions: NewSessions(0, 0)}}) {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	srv := httptest.NewTLSServer(Headers(mux))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	for _, c := range []struct {
		origin string
		want   int
	}{{"http://" + host, 403}, {"https://evil.example", 403}, {"https://" + host, 201}, {"", 201}} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/session", strings.NewReader(`{"username":"ops","password":"pw"}`))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("origin %q: %d, want %d", c.origin, resp.StatusCode, c.want)
		}
		if c.want == 201 {
			sc := resp.Header.Get("Set-Cookie")
			if !strings.Contains(sc, "; Secure") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
				t.Errorf("Set-Cookie over TLS: %q", sc)
			}
		}
	}
}
