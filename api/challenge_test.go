package api_test

import (
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/citymesh/citymesh/api"
)

// TestChallenge: a 401 challenges Basic and Bearer, but a page's script
// (Sec-Fetch-Mode cors, same-origin, no-cors) only Bearer, so that the
// browser shows no password dialog of its own over the dashboard.
func TestChallenge(t *testing.T) {
	for _, c := range []struct {
		mode string
		want []string
	}{
		{"", []string{`Basic realm="citymesh", charset="UTF-8"`, `Bearer realm="citymesh"`}},
		{"navigate", []string{`Basic realm="citymesh", charset="UTF-8"`, `Bearer realm="citymesh"`}},
		{"cors", []string{`Bearer realm="citymesh"`}},
		{"same-origin", []string{`Bearer realm="citymesh"`}},
		{"no-cors", []string{`Bearer realm="citymesh"`}},
	} {
		r := httptest.NewRequest("GET", "/api/v1/session", nil)
		if c.mode != "" {
			r.Header.Set("Sec-Fetch-Mode", c.mode)
		}
		w := httptest.NewRecorder()
		api.Challenge(w, r)
		if got := w.Header().Values("WWW-Authenticate"); !slices.Equal(got, c.want) {
			t.Errorf("Sec-Fetch-Mode %q: WWW-Authenticate %q, want %q", c.mode, got, c.want)
		}
	}
}
