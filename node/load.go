package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the YAML configuration file path over Default: keys the file
// does not have keep their defaults. Unknown keys and values of the wrong
// kind are errors, described in the file's terms (key and line); Load does
// not call Validate.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg := Default()
	if err := cfg.decode(raw); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load for a configuration in memory.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	if err := cfg.decode(data); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// decode reads YAML data over c.
func (c *Config) decode(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	lines := strings.Split(string(data), "\n")
	if hint := mosquittoHint(lines); hint != "" {
		return errors.New(hint)
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			msgs = append(msgs, describeTypeError(e, lines))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return describeSyntaxError(err, lines)
}

var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	duplicateRE    = regexp.MustCompile(`^line (\d+): mapping key "(.+)" already defined at line (\d+)$`)
	wrongKindRE    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `.*`)? into (\\S+)$")
	syntaxLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// describeTypeError turns one of yaml.v3's unmarshal errors into a sentence
// about the configuration's keys.
func describeTypeError(msg string, lines []string) string {
	if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
		line, key, typ := m[1], m[2], m[3]
		where := ""
		var known []string
		if si := sections[typ]; si != nil {
			known = si.keys
			if paths := nonEmpty(si.paths); len(paths) > 0 {
				where = " in " + strings.Join(paths, " or ")
			}
		}
		s := fmt.Sprintf("unknown key %s%s at line %s", key, where, line)
		if alt := closest(key, known); alt != "" {
			s += " (did you mean " + alt + "?)"
		} else if home := homeOf(key); home != "" {
			s += " (it belongs in " + home + ")"
		}
		return s
	}
	if m := duplicateRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is set twice, at lines %s and %s", m[2], m[3], m[1])
	}
	if m := wrongKindRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		got, want := m[2], describeType(m[3])
		key, value := keyValueAt(lines, n)
		if got == "map" || got == "seq" {
			if !strings.HasPrefix(value, "{") && !strings.HasPrefix(value, "[") {
				// A block section starts on the line after its key.
				key, n = parentKey(lines, n)
			}
		}
		switch {
		case key != "" && (got == "map" || got == "seq"):
			return fmt.Sprintf("%s at line %d: want %s, not %s", key, n, want, describeTag(got))
		case key != "" && want == "a list" && value != "":
			return fmt.Sprintf("%s at line %d: %s is not a list (write [%s])", key, n, value, value)
		case key != "":
			return fmt.Sprintf("%s at line %d: %s is not %s", key, n, value, want)
		}
		return fmt.Sprintf("line %d: want %s, not %s", n, want, describeTag(got))
	}
	return msg
}

// parserProblems are the problems yaml.v3's parser (rather than its
// scanner) reports; it reports their lines counted from 0, and none for the
// first line.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'", "did not find expected '-' indicator",
	"did not find expected <document start>", "did not find expected key", "did not find expected node content",
	"found incompatible YAML document", "found undefined tag handle",
}

// describeSyntaxError explains a YAML syntax error.
func describeSyntaxError(err error, lines []string) error {
	msg := err.Error()
	n, problem := 0, strings.TrimPrefix(msg, "yaml: ")
	if m := syntaxLineRE.FindStringSubmatch(msg); m != nil {
		n, _ = strconv.Atoi(m[1])
		problem = m[2]
	}
	if slices.Contains(parserProblems, problem) {
		n++
	}
	if n == 0 {
		return fmt.Errorf("not valid YAML: %s", problem)
	}
	s := fmt.Sprintf("line %d is not valid YAML: %s", n, problem)
	for i := max(n-2, 0); i < min(n+1, len(lines)); i++ {
		if strings.Contains(lines[i], "\t") {
			s += fmt.Sprintf(" (line %d has a tab: YAML indents with spaces only)", i+1)
			break
		}
	}
	return errors.New(s)
}

// keyValueAt returns the key and the value written on line n (1-based) of a
// YAML file, "" if the line is not key: value.
func keyValueAt(lines []string, n int) (key, value string) {
	if n < 1 || n > len(lines) {
		return "", ""
	}
	l := strings.TrimSpace(lines[n-1])
	l = strings.TrimSpace(strings.TrimPrefix(l, "- "))
	k, v, ok := strings.Cut(l, ":")
	if !ok || strings.ContainsAny(k, " \"'") {
		return "", ""
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	return k, strings.TrimSpace(v)
}

// parentKey returns the key whose block value starts at line n (1-based):
// the nearest line above it that is less indented, and that line's number.
func parentKey(lines []string, n int) (string, int) {
	if n < 1 || n > len(lines) {
		return "", n
	}
	indent := len(lines[n-1]) - len(strings.TrimLeft(lines[n-1], " -"))
	for i := n - 1; i >= 1; i-- {
		l := lines[i-1]
		t := strings.TrimLeft(l, " -")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(l)-len(t) < indent {
			if k, _ := keyValueAt(lines, i); k != "" {
				return k, i
			}
			break
		}
	}
	return "", n
}

// describeType says in words what a Go type of the configuration takes.
func describeType(t string) string {
	switch t {
	case "int", "int64", "int32":
		return "a whole number"
	case "uint32":
		return "a whole number from 0 to 4294967295"
	case "uint16":
		return "a whole number from 0 to 65535"
	case "uint8":
		return "a whole number from 0 to 255"
	case "float64", "float32":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a single value"
	case "time.Duration":
		return "a duration with a unit, such as 10s, 1m or 1h30m"
	}
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping of key: value lines"
	}
	return "a section of key: value lines"
}

// describeTag says in words what a YAML node of tag holds.
func describeTag(tag string) string {
	switch tag {
	case "map":
		return "a section"
	case "seq":
		return "a list"
	case "str":
		return "text"
	case "int", "float":
		return "a number"
	case "bool":
		return "true or false"
	}
	return tag
}

func nonEmpty(paths []string) []string {
	var out []string
	for _, p := range paths {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// closest returns the known key that key is most likely a misspelling of,
// or "".
func closest(key string, known []string) string {
	best, bestDist := "", 3 // a typo of one or two letters
	if len(key) >= 8 {
		bestDist = 4 // or three, in a long key
	}
	for _, k := range known {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return best
	}
	for _, k := range known {
		if strings.HasPrefix(key, k+"_") || strings.HasSuffix(key, "_"+k) {
			return k
		}
	}
	return ""
}

// homeOf returns the section where key is a known key, if it is one
// elsewhere: "limits" for max_inflight written at the top level.
func homeOf(key string) string {
	for _, si := range sections {
		if slices.Contains(si.keys, key) {
			if paths := nonEmpty(si.paths); len(paths) == 1 {
				return paths[0]
			} else if len(paths) == 0 {
				return "the top level"
			}
		}
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// mosquittoDirectives are configuration directives of Mosquitto
// (mosquitto.conf(5)), each with where its setting lives in citymesh's
// configuration.
var mosquittoDirectives = map[string]string{
	"listener":                     "mqtt, mqtts, ws or wss (host:port)",
	"port":                         "mqtt (host:port)",
	"bind_address":                 "mqtt (host:port)",
	"protocol":                     "ws or wss",
	"allow_anonymous":              "auth.allow_anonymous",
	"password_file":                "auth.password_file",
	"acl_file":                     "acl (rules in the configuration file)",
	"persistence":                  "store",
	"persistence_location":         "data",
	"cafile":                       "tls.client_ca",
	"certfile":                     "tls.cert",
	"keyfile":                      "tls.key",
	"require_certificate":          "tls.client_auth",
	"tls_version":                  "tls.min_version",
	"log_dest":                     "log",
	"log_type":                     "log",
	"max_inflight_messages":        "limits.max_inflight",
	"max_queued_messages":          "limits.max_queued_messages",
	"max_queued_bytes":             "limits.max_queued_bytes",
	"max_packet_size":              "limits.max_packet_size",
	"max_keepalive":                "limits.max_keep_alive_seconds",
	"max_connections":              "limits.max_connections",
	"persistent_client_expiration": "limits.max_session_expiry_seconds",
	"sys_interval":                 "sys_interval_seconds",
	"per_listener_settings":        "",
	"include_dir":                  "",
	"pid_file":                     "",
	"user":                         "",
	"connection":                   "mesh.bridges",
	"address":                      "mesh.bridges (url)",
	"topic":                        "mesh.bridges (topics)",
}

// mosquittoHint returns an explanation when lines look like a
// mosquitto.conf (directives followed by values, no YAML keys), or "".
func mosquittoHint(lines []string) string {
	var found []string
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		word, _, _ := strings.Cut(l, " ")
		if strings.HasSuffix(word, ":") {
			return "" // a YAML key
		}
		if where, ok := mosquittoDirectives[word]; ok {
			if where != "" && len(found) < 6 {
				found = append(found, fmt.Sprintf("%s (line %d) is %s", word, i+1, where))
			} else if where == "" && len(found) == 0 {
				found = append(found, "")
			}
		}
	}
	if len(found) == 0 {
		return ""
	}
	s := "this looks like a mosquitto.conf; citymesh reads YAML (docs/citymesh.example.yaml is a commented example)"
	if found = slices.DeleteFunc(found, func(f string) bool { return f == "" }); len(found) > 0 {
		s += ": " + strings.Join(found, ", ")
	}
	return s
}
