package service

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/citymesh/citymesh/campus"
)

// APIPrefix is where the HTTP APIs of services live: a service of kind
// KIND serves its routes under APIPrefix+KIND+"/" (/api/v1/energy/…).
const APIPrefix = "/api/v1/"

// HTTPService is a Service with an HTTP API. Its handler serves whole
// paths under /api/v1/{kind}/ (its routes carry the prefix, as the twin's
// do); citymesh serve mounts it on the node's HTTP listener and citymesh
// run KIND on its own, behind the same access check as the twin API (the
// broker's users, HTTP Basic or a Bearer JWT). HTTPHandler is called once,
// after SetAccess when the service has it, before the service runs: the
// handler must answer (with 503 where it needs the running service) also
// while the service starts or restarts.
type HTTPService interface {
	Service
	HTTPHandler() http.Handler
}

// Access is what a service's HTTP API may know of a request's caller. The
// functions read what the access check, which runs before the handler,
// stored in the request; they are never nil when given through SetAccess.
type Access struct {
	// Tenant says whom a request is for, as twin.HandlerOptions.Tenant
	// does: a tenant's user sees only its tenant's data (tenant set, all
	// false); an administrator or an operator without a tenant sees all
	// (all true; the node lets operators' requests through only when they
	// read: GET, HEAD). tenant "" with all false sees nothing.
	Tenant func(r *http.Request) (tenant string, all bool)
	// User is the name of the user who makes the request, for audit
	// trails (who acknowledged an incident); "anonymous" on a node
	// without authentication.
	User func(r *http.Request) string
}

// AccessSetter is implemented by an HTTPService whose API serves tenants'
// users. The node calls SetAccess before HTTPHandler. The API of an
// HTTPService that is not an AccessSetter is served to administrators only
// (callers whose Tenant says all): a tenant's user gets 403, so that a
// handler that does not scope by tenant never shows one tenant another's
// data.
type AccessSetter interface {
	SetAccess(a Access)
}

// AllAccess is the Access of a node without authentication: every request
// sees all, as "anonymous". Tests of a service's handler use it.
var AllAccess = Access{
	Tenant: func(*http.Request) (string, bool) { return "", true },
	User:   func(*http.Request) string { return "anonymous" },
}

// Problem is an RFC 9457 problem details object, the body of every error
// answer of the services' HTTP APIs (Content-Type application/problem+json).
type Problem struct {
	// Type is a URI naming the kind of problem; "about:blank" (the
	// default) when the status says it all.
	Type string `json:"type,omitempty"`
	// Title is the short summary of the kind of problem: the status text
	// for about:blank.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence, for people.
	Detail string `json:"detail,omitempty"`
	// Instance is the request's path.
	Instance string `json:"instance,omitempty"`
}

// WriteProblem answers r with an RFC 9457 problem of status code and
// detail, titled with the status text.
func WriteProblem(w http.ResponseWriter, r *http.Request, code int, detail string) {
	p := Problem{Type: "about:blank", Title: http.StatusText(code), Status: code, Detail: detail}
	if r != nil {
		p.Instance = r.URL.Path
	}
	b, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

var demos struct {
	sync.RWMutex
	m map[string]func(*campus.Model) any
}

// RegisterDemo gives kind a configuration for citymesh demo: fn returns
// the configuration of a service of kind over the demo's campus model m —
// a value of the kind's configuration type (which may carry m itself, in
// a field YAML does not), or anything that encodes as its YAML — built
// with BuildFrom. citymesh demo runs one service of every registered kind:
// with this configuration, or with the zero one when the kind has none.
// Call it from the init function that calls Register.
func RegisterDemo(kind string, fn func(m *campus.Model) any) {
	demos.Lock()
	defer demos.Unlock()
	if demos.m == nil {
		demos.m = make(map[string]func(*campus.Model) any)
	}
	demos.m[kind] = fn
}

// DemoConfig returns the demo configuration of kind over m, and whether
// kind has one.
func DemoConfig(kind string, m *campus.Model) (any, bool) {
	demos.RLock()
	fn := demos.m[kind]
	demos.RUnlock()
	if fn == nil {
		return nil, false
	}
	return fn(m), true
}
