package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMergeOpenAPI: documents merge into one, their paths, components and
// tags together and the first's info kept; a path in two documents, a
// component two define differently and a document that is not JSON are
// errors; a component two define alike is kept once.
func TestMergeOpenAPI(t *testing.T) {
	base := `{"openapi":"3.1.0","info":{"title":"base"},"paths":{"/a":{"get":{}}},"components":{"schemas":{"Problem":{"type":"object"}}}}`
	for _, c := range []struct {
		name  string
		parts []string
		err   string
		paths []string
	}{
		{"one", nil, "", []string{"/a"}},
		{"two parts", []string{`{"paths":{"/b":{"get":{}}},"tags":[{"name":"b"}]}`, `{"paths":{"/c":{"post":{}}},"components":{"schemas":{"C":{}}}}`}, "", []string{"/a", "/b", "/c"}},
		{"a shared component alike", []string{`{"paths":{"/b":{}},"components":{"schemas":{"Problem":{"type":"object"}}}}`}, "", []string{"/a", "/b"}},
		{"a path twice", []string{`{"paths":{"/a":{"post":{}}}}`}, "path /a is documented twice", nil},
		{"a component that differs", []string{`{"paths":{"/b":{}},"components":{"schemas":{"Problem":{"type":"string"}}}}`}, "components.schemas.Problem differs", nil},
		{"not JSON", []string{`{"paths":`}, "OpenAPI document 1", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			docs := [][]byte{[]byte(base)}
			for _, p := range c.parts {
				docs = append(docs, []byte(p))
			}
			b, err := MergeOpenAPI(docs...)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Info       struct{ Title string }
				Paths      map[string]any
				Components struct{ Schemas map[string]any }
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Info.Title != "base" || len(doc.Paths) != len(c.paths) || doc.Components.Schemas["Problem"] == nil {
				t.Errorf("merged %s", b)
			}
			for _, p := range c.paths {
				if doc.Paths[p] == nil {
					t.Errorf("no path %s in %s", p, b)
				}
			}
		})
	}
}
