package node

import (
	"net/http"
	"strings"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/service"
)

// apiPart is the handler of a part of the node's API under /api/v1/ (the
// twin, the services' health, the alarms, a service), its access check
// around the part's own handler, with the routes that handler serves and
// their OpenAPI document.
type apiPart struct {
	http.Handler
	routes []string
	doc    []byte
}

// Routes returns the part's "METHOD /path" patterns (service.RouteLister).
func (p apiPart) Routes() []string { return p.routes }

// OpenAPI returns the part's OpenAPI document (service.Documented).
func (p apiPart) OpenAPI() []byte { return p.doc }

// describe returns h, the access check around inner, with inner's routes
// (when inner lists them: service.RouteLister) and doc, inner's OpenAPI
// document (nil: none), for the node's one OpenAPI document.
func describe(h, inner http.Handler, doc []byte) http.Handler {
	var routes []string
	if rl, ok := inner.(service.RouteLister); ok {
		routes = rl.Routes()
	}
	return apiPart{Handler: h, routes: routes, doc: doc}
}

// apiParts returns the routes the handlers added to the HTTP listener serve
// under /api/v1/, and the OpenAPI documents of their parts. A handler under
// /api/v1/ that does not list its routes counts as the route of its
// pattern, which no document describes. n.mu is held.
func (n *Node) apiParts() (routes []string, docs [][]byte) {
	seen, seenDoc := map[string]bool{}, map[string]bool{}
	for _, h := range n.mu.handlers {
		_, path, ok := strings.Cut(h.pattern, " ")
		if !ok {
			path = h.pattern
		}
		if !strings.HasPrefix(strings.TrimLeft(path, " "), api.Prefix+"/") {
			continue
		}
		p, ok := h.h.(apiPart)
		if !ok || p.routes == nil {
			routes = append(routes, h.pattern)
			continue
		}
		for _, rt := range p.routes {
			if !seen[rt] {
				seen[rt] = true
				routes = append(routes, rt)
			}
		}
		if len(p.doc) > 0 && !seenDoc[string(p.doc)] {
			seenDoc[string(p.doc)] = true
			docs = append(docs, p.doc)
		}
	}
	return routes, docs
}

// APIRoutes returns every route the node's HTTP listener serves under
// /api/v1/ ("METHOD /path" http.ServeMux patterns): the API's own
// (package api) and those of the twin, the services and the alarms
// mounted on it. Each is described by the node's OpenAPI document, GET
// /api/v1/openapi.json.
func (n *Node) APIRoutes() []string {
	var out []string
	for _, rt := range api.Routes(api.Options{}) {
		out = append(out, rt.Pattern)
	}
	n.mu.Lock()
	routes, _ := n.apiParts()
	n.mu.Unlock()
	return append(out, routes...)
}
