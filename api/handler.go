package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/service"
)

// Prefix is where the API's routes live.
const Prefix = "/api/v1"

// Options configure the API's handler.
type Options struct {
	// Auth authenticates requests; its Sessions hold the browsers'
	// sessions (the session routes answer 404 without them).
	Auth *Authenticator
	// Open marks a node without authentication and access control: every
	// request is served as an administrator's.
	Open bool
	// Broker is the node's broker, for the broker's routes (which answer
	// 503 without it).
	Broker *broker.Broker
	// Authorizer is the broker's access control, which decides what a
	// user may publish; nil: everything.
	Authorizer auth.Authorizer
	// Listeners lists the node's listeners, for GET
	// /api/v1/broker/listeners; nil: none.
	Listeners func() []Listener
	// Mesh serves the mesh's status as JSON at GET /api/v1/mesh (and the
	// node at GET /api/mesh); nil: the node is in no mesh (404).
	Mesh http.Handler
	// Documents are the OpenAPI 3.1 documents of the other parts the
	// node serves under /api/v1/ (the twin, the services, the alarms),
	// merged with the API's own into the one document of GET
	// /api/v1/openapi.json (MergeOpenAPI).
	Documents [][]byte
}

// Listener describes one of the node's listeners.
type Listener struct {
	// Name is the listener's name (mqtt, mqtts, ws, wss, http).
	Name string `json:"name"`
	// Address is where it listens.
	Address string `json:"address"`
	// TLS says whether its connections use TLS.
	TLS bool `json:"tls"`
	// Clients is the number of the network clients connected through it
	// (filled in by the API).
	Clients int `json:"clients"`
}

// Route is one route of the API: an http.ServeMux pattern and its
// handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes returns the API's routes, for the node's HTTP listener.
func Routes(o Options) []Route {
	s := &server{o: o}
	return []Route{
		{"POST " + Prefix + "/session", http.HandlerFunc(s.login)},
		{"GET " + Prefix + "/session", http.HandlerFunc(s.whoami)},
		{"DELETE " + Prefix + "/session", http.HandlerFunc(s.logout)},
		{"GET " + Prefix + "/broker/summary", s.operator(s.summary)},
		{"GET " + Prefix + "/broker/clients", s.operator(s.clients)},
		{"GET " + Prefix + "/broker/clients/{id}", s.operator(s.client)},
		{"DELETE " + Prefix + "/broker/clients/{id}", s.operator(s.disconnect)},
		{"GET " + Prefix + "/broker/retained", s.operator(s.retained)},
		{"DELETE " + Prefix + "/broker/retained/{topic...}", s.operator(s.clearRetained)},
		{"POST " + Prefix + "/broker/publish", s.operator(s.publish)},
		{"GET " + Prefix + "/broker/sessions", s.operator(s.sessions)},
		{"GET " + Prefix + "/broker/sessions/{id}", s.operator(s.session)},
		{"GET " + Prefix + "/broker/listeners", s.operator(s.listeners)},
		{"GET " + Prefix + "/mesh", s.operator(s.mesh)},
		{"GET " + Prefix + "/openapi.json", s.openAPI()},
	}
}

type server struct{ o Options }

// sessionInfo is the body of the session routes.
type sessionInfo struct {
	User   string    `json:"user"`
	Tenant string    `json:"tenant,omitempty"`
	Roles  []string  `json:"roles"`
	CSRF   string    `json:"csrf_token,omitempty"`
	Method string    `json:"method"`
	Since  time.Time `json:"since,omitzero"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// Challenge sets the WWW-Authenticate challenges of a 401 answer to r
// (RFC 9110 §11.6.1): Bearer always, and Basic unless r comes from a
// page's script (Sec-Fetch-Mode other than navigate, as browsers send it:
// https://www.w3.org/TR/fetch-metadata/). A Basic challenge makes a browser
// ask for a user name and password in a dialog of its own, over the
// dashboard, instead of letting the page go to its sign-in page; headless
// browsers wait for an answer that never comes.
func Challenge(w http.ResponseWriter, r *http.Request) {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode == "" || mode == "navigate" {
		w.Header().Set("WWW-Authenticate", `Basic realm="citymesh", charset="UTF-8"`)
	}
	w.Header().Add("WWW-Authenticate", `Bearer realm="citymesh"`)
}

func unauthorized(w http.ResponseWriter, r *http.Request) {
	Challenge(w, r)
	service.WriteProblem(w, r, http.StatusUnauthorized, "authentication required: a session (POST /api/v1/session), HTTP Basic with a broker user, or a Bearer JWT")
}

// Refuse answers err of Authenticate: 429 with Retry-After for a
// LoginBackoff, 403 for ErrCSRF, 401 otherwise, as problem details.
func Refuse(w http.ResponseWriter, r *http.Request, err error) {
	if lb, ok := errors.AsType[*LoginBackoff](err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(lb.seconds()))
		service.WriteProblem(w, r, http.StatusTooManyRequests, lb.Error())
		return
	}
	if errors.Is(err, ErrCSRF) {
		service.WriteProblem(w, r, http.StatusForbidden, "a request that changes state with the session cookie must carry the session's "+CSRFHeader+" header")
		return
	}
	unauthorized(w, r)
}

// login opens a session: POST {"username", "password"}.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	if s.o.Auth == nil || s.o.Auth.Sessions == nil || s.o.Auth.Chain == nil {
		service.WriteProblem(w, r, http.StatusConflict, "this node has no users to log in as: it serves everyone without a login")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		service.WriteProblem(w, r, http.StatusUnsupportedMediaType, "the login is a JSON object: Content-Type: application/json")
		return
	}
	if !sameOrigin(r) {
		service.WriteProblem(w, r, http.StatusForbidden, "login from another origin")
		return
	}
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Username == "" {
		service.WriteProblem(w, r, http.StatusBadRequest, "the login is {\"username\": ..., \"password\": ...}")
		return
	}
	// The broker's login back-off (broker.Limits.LoginFailures): an
	// address that failed too often waits, over MQTT and here alike; the
	// broker's audit log records every login and refusal.
	b := s.o.Broker
	if b != nil {
		if wait := b.LoginWait(r.RemoteAddr); wait > 0 {
			b.LoginRefused(r.RemoteAddr, "http", body.Username)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			service.WriteProblem(w, r, http.StatusTooManyRequests, "too many failed logins from this address: try again in "+
				strconv.Itoa(int(math.Ceil(wait.Seconds())))+" s")
			return
		}
	}
	id, err := s.o.Auth.Login(r, body.Username, body.Password)
	if err != nil {
		if b != nil {
			b.LoginFailed(r.RemoteAddr, "http", body.Username)
		}
		service.WriteProblem(w, r, http.StatusUnauthorized, "wrong user name or password")
		return
	}
	if b != nil {
		b.LoginSucceeded(r.RemoteAddr, "http", id.User)
	}
	// A session replaces the one the browser had.
	if c, err := r.Cookie(CookieName); err == nil {
		s.o.Auth.Sessions.Delete(c.Value)
	}
	x := s.o.Auth.Sessions.Create(id)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: x.ID, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusCreated, info(id, "session", x))
}

func info(id *auth.Identity, method string, x *Session) sessionInfo {
	si := sessionInfo{User: id.User, Tenant: id.Tenant, Roles: Roles(id), Method: method}
	if x != nil {
		si.CSRF, si.Since = x.CSRF, x.Created
	}
	return si
}

// whoami says who the request is from; a session's answer carries its
// CSRF token.
func (s *server) whoami(w http.ResponseWriter, r *http.Request) {
	if s.o.Open {
		writeJSON(w, http.StatusOK, sessionInfo{User: "anonymous", Roles: []string{RoleAdmin}, Method: "open"})
		return
	}
	if s.o.Auth == nil {
		unauthorized(w, r)
		return
	}
	if r.Header.Get("Authorization") == "" {
		if x, ok := s.o.Auth.session(r); ok {
			writeJSON(w, http.StatusOK, info(x.Identity, "session", &x))
			return
		}
	}
	id, err := s.o.Auth.Authenticate(r)
	if err != nil {
		Refuse(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info(id, id.Method, nil))
}

// logout ends the request's session and clears the cookie. It needs the
// CSRF token, as every state-changing request with the cookie.
func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if s.o.Auth == nil || s.o.Auth.Sessions == nil {
		service.WriteProblem(w, r, http.StatusNotFound, "this node has no sessions")
		return
	}
	x, ok := s.o.Auth.session(r)
	if !ok {
		unauthorized(w, r)
		return
	}
	if _, err := s.o.Auth.Authenticate(r); err != nil {
		Refuse(w, r, err)
		return
	}
	s.o.Auth.Sessions.Delete(x.ID)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// identityKey is the context key of a request's identity.
type identityKey struct{}

// identityOf is whom the broker's routes serve; nil on an open node.
func identityOf(r *http.Request) *auth.Identity {
	id, _ := r.Context().Value(identityKey{}).(*auth.Identity)
	return id
}

// userOf names the caller, for the logs.
func userOf(r *http.Request) string {
	if id := identityOf(r); id != nil && id.User != "" {
		return id.User
	}
	return "an operator"
}

// operator lets administrators and operators (without a tenant) through
// to the broker's routes.
func (s *server) operator(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.o.Broker == nil {
			service.WriteProblem(w, r, http.StatusServiceUnavailable, "no broker")
			return
		}
		if !s.o.Open {
			if s.o.Auth == nil {
				unauthorized(w, r)
				return
			}
			id, err := s.o.Auth.Authenticate(r)
			if err != nil {
				Refuse(w, r, err)
				return
			}
			roles := Roles(id)
			if !slices.Contains(roles, RoleAdmin) && !slices.Contains(roles, RoleOperator) {
				service.WriteProblem(w, r, http.StatusForbidden, "only administrators and operators use the broker's API")
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		}
		h.ServeHTTP(w, r)
	})
}

// summary is the body of GET /api/v1/broker/summary.
type summary struct {
	UptimeSeconds     float64 `json:"uptime_seconds"`
	Clients           int     `json:"clients"`
	Sessions          int     `json:"sessions"`
	Subscriptions     int     `json:"subscriptions"`
	Retained          int     `json:"retained"`
	MessagesIn        uint64  `json:"messages_in"`
	MessagesOut       uint64  `json:"messages_out"`
	MessagesInPerSec  float64 `json:"messages_in_per_second"`
	MessagesOutPerSec float64 `json:"messages_out_per_second"`
}

// summary answers the broker's counters; the rates are the averages since
// the broker started (a dashboard polling it derives the current rates
// from the counters).
func (s *server) summary(w http.ResponseWriter, r *http.Request) {
	st := s.o.Broker.Stats()
	up := st.Uptime.Seconds()
	sm := summary{UptimeSeconds: up, Clients: st.Clients, Sessions: st.Sessions, Subscriptions: st.Subscriptions,
		Retained: st.Retained, MessagesIn: st.MessagesIn, MessagesOut: st.MessagesOut}
	if up > 0 {
		sm.MessagesInPerSec, sm.MessagesOutPerSec = float64(st.MessagesIn)/up, float64(st.MessagesOut)/up
	}
	writeJSON(w, http.StatusOK, sm)
}

// CSP is the Content-Security-Policy of everything the node serves.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Headers adds the browsers' security headers to every answer of h:
// Content-Security-Policy, X-Content-Type-Options, Referrer-Policy,
// X-Frame-Options, and Cache-Control: no-store under /api/.
func Headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

func encodeBase64(p []byte) string { return base64.StdEncoding.EncodeToString(p) }
