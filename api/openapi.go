package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sync"

	"github.com/citymesh/citymesh/service"
)

// openapi is the OpenAPI 3.1 document of the API's own routes: sessions,
// the broker's routes and the mesh. It also holds the components every
// part's document may refer to: the security schemes, the Problem schema
// and the Problem response.
//
//go:embed openapi.json
var openapi []byte

// OpenAPI returns the OpenAPI 3.1 document of the API's own routes.
func OpenAPI() []byte { return openapi }

// MergeOpenAPI merges OpenAPI 3.1 documents into one: the first gives the
// info and the top-level security; the paths of all are put together, as
// are their components and tags. A path in two documents, or a component
// of one name that two documents define differently, is an error: each
// route and each schema has one home.
func MergeOpenAPI(docs ...[]byte) ([]byte, error) {
	var out map[string]any
	for i, d := range docs {
		var doc map[string]any
		if err := json.Unmarshal(d, &doc); err != nil {
			return nil, fmt.Errorf("api: OpenAPI document %d: %w", i, err)
		}
		if out == nil {
			out = doc
			if out["paths"] == nil {
				out["paths"] = map[string]any{}
			}
			continue
		}
		paths, _ := out["paths"].(map[string]any)
		p, _ := doc["paths"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(p)) {
			if _, dup := paths[k]; dup {
				return nil, fmt.Errorf("api: OpenAPI document %d: path %s is documented twice", i, k)
			}
			paths[k] = p[k]
		}
		if c, ok := doc["components"].(map[string]any); ok {
			oc, _ := out["components"].(map[string]any)
			if oc == nil {
				oc = map[string]any{}
				out["components"] = oc
			}
			for _, kind := range slices.Sorted(maps.Keys(c)) {
				m, _ := c[kind].(map[string]any)
				om, _ := oc[kind].(map[string]any)
				if om == nil {
					om = map[string]any{}
					oc[kind] = om
				}
				for _, name := range slices.Sorted(maps.Keys(m)) {
					if old, dup := om[name]; dup && !reflect.DeepEqual(old, m[name]) {
						return nil, fmt.Errorf("api: OpenAPI document %d: components.%s.%s differs from another document's", i, kind, name)
					}
					om[name] = m[name]
				}
			}
		}
		if t, ok := doc["tags"].([]any); ok {
			ot, _ := out["tags"].([]any)
			out["tags"] = append(ot, t...)
		}
	}
	return json.MarshalIndent(out, "", "  ")
}

// openAPI serves the merged document of the API and o.Documents, merged
// once, at the first request.
func (s *server) openAPI() http.Handler {
	merged := sync.OnceValues(func() ([]byte, error) {
		return MergeOpenAPI(append([][]byte{openapi}, s.o.Documents...)...)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := merged()
		if err != nil {
			service.WriteProblem(w, r, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
}
