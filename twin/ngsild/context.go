package ngsild

import (
	_ "embed"
	"net/http"
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
