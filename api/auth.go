package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/auth"
)

// CookieName is the name of the session cookie.
const CookieName = "citymesh_session"

// CSRFHeader is the header a cookie-authenticated state-changing request
// carries with its session's token.
const CSRFHeader = "X-CSRF-Token"

// Errors of Authenticator.Authenticate.
var (
	// ErrNoCredentials: the request has no credentials, wrong ones or
	// an expired session (401).
	ErrNoCredentials = errors.New("authentication required")
	// ErrCSRF: a state-changing request authenticated by the session
	// cookie lacks its session's X-CSRF-Token (403).
	ErrCSRF = errors.New("missing or wrong " + CSRFHeader + " header")
)

// Authenticator is the one rule by which the node's HTTP APIs know who
// calls: the session cookie of a browser, HTTP Basic with a broker user,
// or "Authorization: Bearer" with a JWT, each of the latter checked as
// the broker checks an MQTT login (auth.Chain).
type Authenticator struct {
	// Chain is the broker's authentication chain; nil: none configured.
	Chain *auth.Chain
	// Sessions holds the browsers' sessions; nil: no session cookie.
	Sessions *Sessions
	// Listener is the listener name the chain is told of.
	Listener string
	// Guard, when set, is the login back-off HTTP Basic credentials go
	// through, as the session login and MQTT CONNECTs do (the node's
	// broker): an address that failed too often waits (ErrLoginBackoff).
	Guard LoginGuard
}

// LoginGuard is the back-off of failed logins per address
// (*broker.Broker is one): how long remote waits, the failures and
// refusals to count and audit, and the successes that forgive.
type LoginGuard interface {
	LoginWait(remote string) time.Duration
	LoginFailed(remote, via, user string)
	LoginRefused(remote, via, user string)
	LoginForgive(remote string)
}

// LoginBackoff is the error of a login refused because its address failed
// too often: the request may be retried after Wait (429).
type LoginBackoff struct{ Wait time.Duration }

func (e *LoginBackoff) Error() string {
	return "too many failed logins from this address: try again in " + strconv.Itoa(e.seconds()) + " s"
}

// seconds is Wait rounded up to whole seconds, at least 1.
func (e *LoginBackoff) seconds() int { return max(1, int(math.Ceil(e.Wait.Seconds()))) }

// unsafe reports whether method changes state.
func unsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// Authenticate returns whom r is from. A request with an Authorization
// header is checked by its credentials alone; one without, by its session
// cookie, and then, when it changes state (not GET, HEAD, OPTIONS), its
// X-CSRF-Token header must be the session's token (ErrCSRF).
func (a *Authenticator) Authenticate(r *http.Request) (*auth.Identity, error) {
	if user, pass, ok := r.BasicAuth(); ok {
		g := a.Guard
		if g != nil {
			if wait := g.LoginWait(r.RemoteAddr); wait > 0 {
				g.LoginRefused(r.RemoteAddr, "http-basic", user)
				return nil, &LoginBackoff{Wait: wait}
			}
		}
		id, err := a.Login(r, user, pass)
		if g != nil {
			if err != nil {
				g.LoginFailed(r.RemoteAddr, "http-basic", user)
			} else {
				g.LoginForgive(r.RemoteAddr)
			}
		}
		return id, err
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return a.check(r.Context(), r, &auth.ConnectRequest{Password: []byte(strings.TrimSpace(h[7:])), HasPassword: true})
	}
	if r.Header.Get("Authorization") != "" || a.Sessions == nil {
		return nil, ErrNoCredentials
	}
	s, ok := a.session(r)
	if !ok {
		return nil, ErrNoCredentials
	}
	if unsafe(r.Method) && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.CSRF)) != 1 {
		return nil, ErrCSRF
	}
	return s.Identity, nil
}

// Session returns the live session of r's cookie, if it has one: what
// logs a browser's MQTT over WebSocket in.
func (a *Authenticator) Session(r *http.Request) (Session, bool) { return a.session(r) }

// session returns the live session of r's cookie.
func (a *Authenticator) session(r *http.Request) (Session, bool) {
	if a.Sessions == nil {
		return Session{}, false
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return Session{}, false
	}
	return a.Sessions.Get(c.Value)
}

// Login checks a user name and password with the chain.
func (a *Authenticator) Login(r *http.Request, user, pass string) (*auth.Identity, error) {
	return a.check(r.Context(), r, &auth.ConnectRequest{Username: user, HasUsername: true, Password: []byte(pass), HasPassword: true})
}

func (a *Authenticator) check(ctx context.Context, r *http.Request, req *auth.ConnectRequest) (*auth.Identity, error) {
	if a.Chain == nil {
		return nil, ErrNoCredentials
	}
	req.ClientID, req.Listener = "http", a.Listener
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.Remote = net.TCPAddrFromAddrPort(ap)
	}
	id, err := a.Chain.Authenticate(ctx, req)
	if err != nil || id.Anonymous() {
		return nil, ErrNoCredentials
	}
	return id, nil
}

// Roles of a user on the HTTP API, from its groups and tenant.
const (
	// RoleAdmin is a member of group admin without a tenant: everything.
	RoleAdmin = "admin"
	// RoleOperator is a member of group operator without a tenant: the
	// broker's routes (reading, publishing, disconnecting clients) and
	// every tenant's data, but no tenant export or erasure.
	RoleOperator = "operator"
	// RoleTenantAdmin is a member of group admin with a tenant: its
	// tenant's operator (its tenant's data, export and erasure).
	RoleTenantAdmin = "tenant-admin"
	// RoleTenantUser is a user with a tenant: its tenant's data.
	RoleTenantUser = "tenant-user"
)

// Roles returns id's roles (none for a user with neither tenant nor
// admin or operator group: the APIs refuse it).
func Roles(id *auth.Identity) []string {
	roles := []string{}
	if id == nil {
		return roles
	}
	if id.Tenant != "" {
		if id.Admin {
			roles = append(roles, RoleTenantAdmin)
		}
		return append(roles, RoleTenantUser)
	}
	if id.Admin {
		roles = append(roles, RoleAdmin)
	}
	for _, g := range id.Groups {
		if g == RoleOperator {
			roles = append(roles, RoleOperator)
			break
		}
	}
	return roles
}

// sameOrigin reports whether r's Origin header, when present, is the
// node's own origin: the scheme of the request's connection and its Host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}
