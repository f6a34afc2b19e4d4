package api

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/citymesh/citymesh/auth"
)

// TestSessionsExpire: a session ends after its idle time without a
// request, or at its maximum age however busy, or on Delete.
func TestSessionsExpire(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := NewSessions(time.Hour, 4*time.Hour)
	s.now = func() time.Time { return now }
	a := s.Create(&auth.Identity{User: "a"})
	b := s.Create(&auth.Identity{User: "b"})
	if a.ID == b.ID || a.CSRF == b.CSRF || a.ID == a.CSRF || len(a.ID) < 40 {
		t.Fatalf("ids and tokens not distinct random values: %+v %+v", a, b)
	}
	// a is used once, then left; b is used every 50 minutes.
	for _, step := range []struct {
		after        time.Duration
		getA         bool
		wantA, wantB bool
	}{
		{50 * time.Minute, true, true, true},
		{50 * time.Minute, false, false, true},
		{50 * time.Minute, true, false, true}, // a idle 100 minutes: gone
		{50 * time.Minute, false, false, true},
		{41 * time.Minute, false, false, false}, // b older than 4 hours
	} {
		now = now.Add(step.after)
		if step.getA {
			if _, ok := s.Get(a.ID); ok != step.wantA {
				t.Fatalf("at %v: a = %v, want %v", now, ok, step.wantA)
			}
		}
		if _, ok := s.Get(b.ID); ok != step.wantB {
			t.Fatalf("at %v: b = %v, want %v", now, ok, step.wantB)
		}
	}
	c := s.Create(&auth.Identity{User: "c"})
	if s.Len() != 1 {
		t.Errorf("expired sessions not swept: %d", s.Len())
	}
	s.Delete(c.ID)
	if _, ok := s.Get(c.ID); ok {
		t.Error("session after Delete")
	}
}

// TestAuthenticatorCSRF: with the session cookie, only the safe methods
// go without the session's token.
func TestAuthenticatorCSRF(t *testing.T) {
	s := NewSessions(0, 0)
	x := s.Create(&auth.Identity{User: "ops", Admin: true})
	a := &Authenticator{Sessions: s}
	for _, c := range []struct {
		method, token string
		want          error
	}{
		{"GET", "", nil}, {"HEAD", "", nil}, {"OPTIONS", "", nil},
		{"POST", "", ErrCSRF}, {"PUT", "wrong", ErrCSRF}, {"PATCH", x.ID, ErrCSRF}, {"DELETE", "", ErrCSRF},
		{"POST", x.CSRF, nil}, {"DELETE", x.CSRF, nil},
	} {
		r := httptest.NewRequest(c.method, "/api/v1/x", nil)
		r.Header.Set("Cookie", CookieName+"="+x.ID)
		if c.token != "" {
			r.Header.Set(CSRFHeader, c.token)
		}
		id, err := a.Authenticate(r)
		if err != c.want || (err == nil && id.User != "ops") {
			t.Errorf("%s with token %q: %v %v, want %v", c.method, c.token, id, err, c.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := a.Authenticate(r); err != ErrNoCredentials {
		t.Errorf("no cookie: %v", err)
	}
}

// TestRoles: the roles of users by their groups and tenant.
func TestRoles(t *testing.T) {
	for _, c := range []struct {
		id   auth.Identity
		want []string
	}{
		{auth.Identity{Admin: true, Groups: []string{"admin"}}, []string{RoleAdmin}},
		{auth.Identity{Groups: []string{"operator"}}, []string{RoleOperator}},
		{auth.Identity{Tenant: "t", Groups: []string{"operator"}}, []string{RoleTenantUser}},
		{auth.Identity{Tenant: "t", Admin: true}, []string{RoleTenantAdmin, RoleTenantUser}},
		{auth.Identity{Tenant: "t"}, []string{RoleTenantUser}},
		{auth.Identity{Groups: []string{"x"}}, []string{}},
	} {
		if got := Roles(&c.id); !slices.Equal(got, c.want) {
			t.Errorf("%+v: %v, want %v", c.id, got, c.want)
		}
	}
}

// TestSessionsOnEnd: the OnEnd functions hear of every session that ends,
// by logout or found expired (by Get, or swept by Create), once, and of
// no other.
func TestSessionsOnEnd(t *testing.T) {
	s := NewSessions(time.Minute, time.Hour)
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	var ended []string
	s.OnEnd(func(sid string) { ended = append(ended, sid) })
	a, b, c := s.Create(&auth.Identity{User: "a"}), s.Create(&auth.Identity{User: "b"}), s.Create(&auth.Identity{User: "c"})
	s.Delete(a.ID)
	s.Delete(a.ID)      // again: nothing more ends
	s.Delete("unknown") // never was
	if !slices.Equal(ended, []string{a.ID}) {
		t.Fatalf("after logout: ended %v, want [a]", ended)
	}
	now = now.Add(2 * time.Minute) // b and c idle too long
	if _, ok := s.Get(b.ID); ok {
		t.Fatal("b still live")
	}
	if !slices.Equal(ended, []string{a.ID, b.ID}) {
		t.Fatalf("after b expired: ended %v", ended)
	}
	s.Create(&auth.Identity{User: "d"}) // sweeps c
	if !slices.Equal(ended, []string{a.ID, b.ID, c.ID}) {
		t.Fatalf("after the sweep: ended %v", ended)
	}
}
