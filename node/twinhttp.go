package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/twin"
	"github.com/citymesh/citymesh/twin/history"
	"github.com/citymesh/citymesh/twin/ngsild"
)

// HistoryPrefix is where a twin's Prometheus HTTP API is served:
// /prometheus/api/v1/query and so on.
const HistoryPrefix = "/prometheus"

// TwinAccess decides who reads a twin's HTTP APIs, with the broker's
// users, by the node's one authentication rule (api.Authenticator): a
// browser's session cookie (its state-changing requests with the
// session's X-CSRF-Token), HTTP Basic authentication with a user of the
// password file, or "Authorization: Bearer" with a JWT, each checked as
// the broker checks an MQTT login (auth.Chain). An administrator (group
// admin) sees everything and may export and erase tenants; a user with a
// tenant sees only its tenant's points, assets and series (an
// administrator with a tenant is its tenant's operator: its tenant's data,
// export and erasure); any other user is refused (403).
// A request without credentials, or with wrong ones, gets 401, even when the
// broker lets anonymous clients in (allow_anonymous): what an anonymous
// MQTT client may read is topic ACL rules, which do not translate to the
// twin's data. Only a node without any authentication back end and without
// access control (everyone may read everything over MQTT too) serves every
// request in full, as an administrator's.
type TwinAccess struct {
	authn *api.Authenticator
	open  bool // neither authentication nor access control
}

// NewTwinAccess returns the access of a twin served with the broker's
// authentication chain (nil when none is configured); controlled says
// whether the broker has access control (an ACL).
func NewTwinAccess(chain *auth.Chain, controlled bool) *TwinAccess {
	return &TwinAccess{authn: &api.Authenticator{Chain: chain, Listener: ListenerHTTP}, open: chain == nil && !controlled}
}

// newHTTPAccess is NewTwinAccess that also takes browsers' sessions.
func newHTTPAccess(chain *auth.Chain, controlled bool, sessions *api.Sessions) *TwinAccess {
	a := NewTwinAccess(chain, controlled)
	a.authn.Sessions = sessions
	return a
}

// identityKey is the context key of a request's identity.
type identityKey struct{}

// requestIdentity returns the identity a request was authenticated as, nil
// on an open twin.
func requestIdentity(r *http.Request) *auth.Identity {
	id, _ := r.Context().Value(identityKey{}).(*auth.Identity)
	return id
}

// authenticate checks a request's credentials.
func (a *TwinAccess) authenticate(r *http.Request) (*auth.Identity, error) {
	return a.authn.Authenticate(r)
}

// Wrap returns h behind the access check: it answers 401 and 403 itself,
// and passes the request's identity on to the tenant hooks.
func (a *TwinAccess) Wrap(h http.Handler) http.Handler {
	if a.open {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.authenticate(r)
		if errors.Is(err, api.ErrCSRF) {
			writeJSONError(w, http.StatusForbidden, err.Error())
			return
		}
		if err != nil {
			api.Challenge(w, r)
			writeJSONError(w, http.StatusUnauthorized, "authentication required: HTTP Basic with a broker user, or a Bearer JWT")
			return
		}
		if !id.Admin && id.Tenant == "" {
			writeJSONError(w, http.StatusForbidden, "only administrators and tenants' users read the twin")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// wrapProblem is Wrap for the services' and the alarm APIs: the same
// check, its refusals as RFC 9457 problem details; adminOnly refuses
// tenants' users too (403).
func (a *TwinAccess) wrapProblem(h http.Handler, adminOnly bool) http.Handler {
	if a.open {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.authenticate(r)
		if errors.Is(err, api.ErrCSRF) {
			api.Refuse(w, r, err)
			return
		}
		if err != nil {
			api.Challenge(w, r)
			service.WriteProblem(w, r, http.StatusUnauthorized, "authentication required: HTTP Basic with a broker user, or a Bearer JWT")
			return
		}
		switch {
		case adminOnly && (!id.Admin || id.Tenant != ""):
			service.WriteProblem(w, r, http.StatusForbidden, "only administrators use this API")
			return
		case !id.Admin && id.Tenant == "":
			service.WriteProblem(w, r, http.StatusForbidden, "only administrators and tenants' users use this API")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// user is the name of the user a request was authenticated as;
// "anonymous" on an open node.
func (a *TwinAccess) user(r *http.Request) string {
	if id := requestIdentity(r); id != nil && id.User != "" {
		return id.User
	}
	return "anonymous"
}

// ServiceAccess returns the hooks a service's HTTP API is given
// (service.AccessSetter): the tenant of a request as the twin API sees it,
// and the user's name.
func (a *TwinAccess) ServiceAccess() service.Access {
	return service.Access{Tenant: a.tenant, User: a.user}
}

// writeJSONError answers {"error": msg} with code.
func writeJSONError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// tenant is the twin API's tenant hook: an administrator without a tenant
// (or anyone on an open twin) sees all, anyone with a tenant its tenant.
// An administrator who belongs to a tenant is that tenant's operator, as on
// the broker, where it stays inside its tenant's namespace.
func (a *TwinAccess) tenant(r *http.Request) (string, bool) {
	id := requestIdentity(r)
	if id == nil {
		return "", a.open
	}
	if id.Tenant != "" {
		return id.Tenant, false
	}
	return "", id.Admin
}

// admin is the twin API's administrator hook: administrators export and
// erase any tenant, a tenant's operator its own.
func (a *TwinAccess) admin(r *http.Request) bool {
	id := requestIdentity(r)
	if id == nil {
		return a.open
	}
	return id.Admin && (id.Tenant == "" || id.Tenant == r.PathValue("tenant"))
}

// scope is the Prometheus API's tenant hook: every selector of a request
// with a tenant also matches tenant="<its tenant>".
func (a *TwinAccess) scope(r *http.Request) (string, error) {
	id := requestIdentity(r)
	switch {
	case id == nil && a.open:
		return "", nil
	case id != nil && id.Tenant != "":
		return id.Tenant, nil
	case id != nil && id.Admin:
		return "", nil
	}
	return "", errors.New("only administrators and tenants' users read the history")
}

// Mount adds the twin's HTTP APIs through handle (Node.Handle, or a
// ServeMux's): the twin API at /api/v1/twin/ (with the administrators'
// tenant export and erasure) and, with the history on, the Prometheus HTTP
// API at /prometheus/, both behind access.
func (t *Twin) Mount(handle func(pattern string, h http.Handler) error, access *TwinAccess) error {
	o := twin.HandlerOptions{Tenant: access.tenant, Admin: access.admin,
		Tenants: twin.TenantData{Service: t.svc, History: t.hist}, History: t.hist}
	if err := handle(twin.APIPrefix, access.Wrap(twin.Handler(t.svc.State(), o))); err != nil {
		return err
	}
	// The NGSI-LD API reads the same state and history, its temporal API
	// answering OperationNotSupported without a history.
	if err := handle(ngsild.Prefix, access.Wrap(ngsild.Handler(t.svc.State(), t.hist, ngsild.Options{Tenant: access.tenant}))); err != nil {
		return err
	}
	if t.hist == nil {
		return nil
	}
	api := history.NewAPI(t.hist, history.APIOptions{Prefix: HistoryPrefix, Scope: access.scope})
	return handle(HistoryPrefix+"/", access.Wrap(api))
}
