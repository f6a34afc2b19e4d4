package live

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// responseSchema returns the schema the service's OpenAPI document gives
// for method on path (relative to APIPrefix, a query left out) answered
// with status, its path parameters matched by position; nil, failing the
// test, when the document has none.
func responseSchema(t *testing.T, method, path string, status int) *jsonschema.Schema {
	t.Helper()
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")
	var tmpl string
	switch {
	case len(segs) == 1:
		tmpl = segs[0]
	case segs[0] == "incidents" && len(segs) == 2:
		tmpl = "incidents/{id}"
	case segs[0] == "incidents" && len(segs) == 3:
		tmpl = "incidents/{id}/{action}"
	case segs[0] == "pictures" && len(segs) == 2:
		tmpl = "pictures/{hash}"
	default:
		t.Fatalf("no path template for %s", path)
	}
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	loc := "openapi.json#/paths/" + esc(APIPrefix+tmpl) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status) +
		"/content/" + esc("application/json") + "/schema"
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPI))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		t.Fatalf("%s %s %d: the document has no schema: %v", method, path, status, err)
	}
	return sch
}

// checkDocumented fails the test unless body is valid against the
// documented response schema of method on path with status.
func checkDocumented(t *testing.T, method, path string, status int, body string) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: not JSON: %v", method, path, err)
	}
	if err := responseSchema(t, method, path, status).Validate(inst); err != nil {
		t.Errorf("%s %s %d: the answer does not match the OpenAPI document: %v", method, path, status, err)
	}
}
