// Package openapitest checks, in tests, that a service's HTTP answers
// have the shapes its OpenAPI 3.1 document gives them: the document's
// response schemas are JSON Schema 2020-12, validated with the validator
// citymesh already uses for its events.
package openapitest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Template returns the path template of doc that path (without its query)
// matches: each "{name}" segment stands for one non-empty segment; of
// several matches, the one with the most literal segments. It reports
// false when none matches.
func Template(doc []byte, path string) (string, bool) {
	var d struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return "", false
	}
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")
	best, bestLit := "", -1
	for tmpl := range d.Paths {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		lit, ok := 0, true
		for i, s := range ts {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				ok = ok && segs[i] != ""
			case s == segs[i]:
				lit++
			default:
				ok = false
			}
		}
		if ok && lit > bestLit {
			best, bestLit = tmpl, lit
		}
	}
	return best, bestLit >= 0
}

// Check fails the test unless body is valid against the schema doc gives
// the answer of method on path (a concrete path, matched by Template)
// with status and content type ctype ("application/json" when "").
func Check(t testing.TB, doc []byte, method, path string, status int, ctype string, body []byte) {
	t.Helper()
	if ctype == "" {
		ctype = "application/json"
	}
	tmpl, ok := Template(doc, path)
	if !ok {
		t.Errorf("%s %s: no path of the OpenAPI document matches", method, path)
		return
	}
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	loc := "openapi.json#/paths/" + esc(tmpl) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status) +
		"/content/" + esc(ctype) + "/schema"
	d, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("openapi.json", d); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		t.Errorf("%s %s (%s) %d %s: the document gives no schema: %v", method, path, tmpl, status, ctype, err)
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s %s: the answer is not JSON: %v", method, path, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %s %d: the answer does not match the OpenAPI document: %v", method, path, status, err)
	}
}
