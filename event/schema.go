package event

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaBase is the base URI of the event schemas' $id; schema
// {kind}.schema.json has the $id SchemaBase + "{kind}.schema.json".
const SchemaBase = "https://github.com/citymesh/citymesh/event/schema/"

//go:embed schema/*.schema.json
var schemaFiles embed.FS

// Schemas returns the JSON Schema (draft 2020-12) files of the event kinds
// and their common definitions, by file name ("measurement.schema.json",
// "common.schema.json").
func Schemas() fs.FS {
	sub, err := fs.Sub(schemaFiles, "schema")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// SchemaURL returns the $id of kind k's schema.
func SchemaURL(k Kind) string { return SchemaBase + string(k) + ".schema.json" }

var compiled struct {
	once    sync.Once
	schemas map[Kind]*jsonschema.Schema
	err     error
}

func compileSchemas() (map[Kind]*jsonschema.Schema, error) {
	compiled.once.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		entries, err := fs.ReadDir(schemaFiles, "schema")
		if err != nil {
			compiled.err = err
			return
		}
		for _, e := range entries {
			data, err := schemaFiles.ReadFile("schema/" + e.Name())
			if err != nil {
				compiled.err = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			if err != nil {
				compiled.err = fmt.Errorf("event schema %s: %w", e.Name(), err)
				return
			}
			if err := c.AddResource(SchemaBase+e.Name(), doc); err != nil {
				compiled.err = fmt.Errorf("event schema %s: %w", e.Name(), err)
				return
			}
		}
		compiled.schemas = make(map[Kind]*jsonschema.Schema)
		for _, k := range Kinds() {
			s, err := c.Compile(SchemaURL(k))
			if err != nil {
				compiled.err = fmt.Errorf("event schema %s: %w", k, err)
				return
			}
			compiled.schemas[k] = s
		}
	})
	return compiled.schemas, compiled.err
}

// ValidateJSON checks a JSON document against kind k's JSON schema
// (schema/{k}.schema.json, draft 2020-12, formats asserted) with
// github.com/santhosh-tekuri/jsonschema/v6. Tests of every component use
// it on what they publish; a building gateway's integrator can use the
// schema files themselves with any validator. Errors wrap ErrInvalid and
// name the failing location.
func ValidateJSON(k Kind, data []byte) error {
	schemas, err := compileSchemas()
	if err != nil {
		return err
	}
	s := schemas[k]
	if s == nil {
		return fmt.Errorf("event: unknown kind %q", k)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%w: %s: not JSON: %v", ErrInvalid, k, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: data after the JSON document", ErrInvalid, k)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, k, err)
	}
	return nil
}
