package api

import (
	_ "embed"
	"net/http"
)

// openapi is the OpenAPI 3.1 document of the API's routes.
//
//go:embed openapi.json
var openapi []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapi)
}
