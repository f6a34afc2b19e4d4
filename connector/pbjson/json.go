package pbjson

import "encoding/json"

// jsonString unquotes a JSON string.
func jsonString(b []byte, s *string) error { return json.Unmarshal(b, s) }
