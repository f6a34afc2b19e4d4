package ngsild

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// contextDoc is the citymesh @context: the entity types and attribute
// names this API uses beyond the NGSI-LD core, each mapped to the Smart
// Data Models IRI that defines it, or to urn:citymesh:term: for names of
// citymesh's own (docs/twin.md, NGSI-LD).
//
//go:embed citymesh.jsonld
var contextDoc []byte

func serveContext(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/ld+json")
	w.Write(contextDoc)
}

// terms maps the IRIs of the citymesh @context (and of the NGSI-LD core
// terms this API uses) back to their terms.
var terms = sync.OnceValue(func() map[string]string {
	var doc struct {
		Context []json.RawMessage `json:"@context"`
	}
	m := map[string]string{"https://uri.etsi.org/ngsi-ld/location": "location"}
	if err := json.Unmarshal(contextDoc, &doc); err != nil || len(doc.Context) == 0 {
		panic("ngsild: citymesh.jsonld: " + err.Error())
	}
	var defs map[string]json.RawMessage
	if err := json.Unmarshal(doc.Context[0], &defs); err != nil {
		panic("ngsild: citymesh.jsonld: " + err.Error())
	}
	for term, def := range defs {
		var iri string
		if json.Unmarshal(def, &iri) != nil {
			var d struct {
				ID string `json:"@id"`
			}
			json.Unmarshal(def, &d)
			iri = d.ID
		}
		if iri != "" && !strings.HasSuffix(iri, ":") {
			m[iri] = term
		}
	}
	return m
})

// compact returns the term of an IRI (an expanded type or attribute name),
// as a client that expands names with the citymesh @context sends them.
func compact(iri string) (string, bool) {
	t, ok := terms()[iri]
	return t, ok
}
