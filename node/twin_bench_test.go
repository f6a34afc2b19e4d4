package node_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/node"
)

// BenchmarkTwinHTTPAccess measures what the access check adds to a request
// of the twin's HTTP APIs: none (an open node), HTTP Basic with a password
// file user (bcrypt, its check cached as for MQTT logins), and a Bearer
// HS256 JWT (verified on every request).
func BenchmarkTwinHTTPAccess(b *testing.B) {
	cfg := auth.Config{PasswordFile: twinUsers(b), JWT: &auth.JWTConfig{Secret: twinSecret}}
	chain, _, err := cfg.Build()
	if err != nil {
		b.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	token := bearer(b, jwt.MapClaims{"sub": "grower-app", "tenant": "wartberg-growers", "exp": time.Now().Add(time.Hour).Unix()})
	for _, bc := range []struct {
		name   string
		access *node.TwinAccess
		auth   func(*http.Request)
	}{
		{"open", node.NewTwinAccess(nil, false), func(*http.Request) {}},
		{"basic", node.NewTwinAccess(chain, false), func(r *http.Request) { r.SetBasicAuth("cs", "pw") }},
		{"bearer", node.NewTwinAccess(chain, false), func(r *http.Request) { r.Header.Set("Authorization", token) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := bc.access.Wrap(ok)
			req := httptest.NewRequest("GET", "/api/v1/twin/points", nil)
			bc.auth(req)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
