package alarm

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema is the JSON Schema (draft 2020-12) of an alarm as published on its
// topic: alarm.schema.json, also printed in docs/events.md.
//
//go:embed alarm.schema.json
var Schema []byte

// SchemaURL is the schema's $id.
const SchemaURL = "https://github.com/citymesh/citymesh/alarm/alarm.schema.json"

var compiled struct {
	once sync.Once
	s    *jsonschema.Schema
	err  error
}

// ValidateJSON checks a published alarm against Schema (formats asserted).
func ValidateJSON(data []byte) error {
	compiled.once.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
		if err == nil {
			err = c.AddResource(SchemaURL, doc)
		}
		if err == nil {
			compiled.s, err = c.Compile(SchemaURL)
		}
		compiled.err = err
	})
	if compiled.err != nil {
		return fmt.Errorf("alarm schema: %w", compiled.err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := compiled.s.Validate(doc); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
