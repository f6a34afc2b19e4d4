package energy

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// decodeYAML decodes one YAML document from r into v, refusing keys that v
// does not have. Errors start with what ("site yaml", ...); an empty input
// is "what: empty file".
func decodeYAML(r io.Reader, what string, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: empty file", what)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
