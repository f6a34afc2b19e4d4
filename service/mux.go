package service

import (
	_ "embed"
	"net/http"
	"strings"
)

// Mux is an http.ServeMux that remembers the routes it was given: a
// handler built on it tells the node which routes it serves
// (RouteLister), and the node's OpenAPI test checks each against the
// node's document. Patterns without a method (a catch-all answering 404)
// are served but are not routes.
type Mux struct {
	mux    http.ServeMux
	routes []string
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// Handle registers h for pattern, as http.ServeMux.Handle does.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h)
	if method, _, ok := strings.Cut(pattern, " "); ok && method != "" && method == strings.ToUpper(method) {
		m.routes = append(m.routes, pattern)
	}
}

// HandleFunc registers f for pattern, as http.ServeMux.HandleFunc does.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// ServeHTTP serves r by the route that matches it.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// Routes returns the "METHOD /path" patterns registered, in order.
func (m *Mux) Routes() []string { return append([]string(nil), m.routes...) }

// RouteLister is implemented by an HTTP handler that lists its routes:
// the "METHOD /path" http.ServeMux patterns it serves.
type RouteLister interface {
	Routes() []string
}

// Documented is implemented by a service whose HTTP API is described by
// an OpenAPI 3.1 document (JSON): its paths, with the whole path, and the
// components they use. It may refer to the components of the node's own
// document (api.OpenAPI: the security schemes, #/components/schemas/Problem
// and #/components/responses/Problem). The node merges the documents of
// its parts into the one it serves at GET /api/v1/openapi.json.
type Documented interface {
	OpenAPI() []byte
}

// openAPI documents GET /api/v1/services.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the services' health route,
// GET /api/v1/services (Runner.Handler).
func OpenAPI() []byte { return openAPI }
