package service

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Checker is implemented by a configuration that checks itself after it
// was decoded (required fields, ranges); Build calls it.
type Checker interface {
	Check() error
}

// factory builds a service from its configuration section, or from a
// configuration value.
type factory struct {
	summary   string
	build     func(name string, section *yaml.Node) (Service, error)
	buildFrom func(name string, config any) (Service, error)
}

var registry struct {
	sync.RWMutex
	m map[string]factory
}

// Register makes a kind of service known under kind, so that the node
// configuration's services section and `citymesh run KIND` can build it:
// build receives the service's name (the section's key, or kind) and its
// configuration, decoded from the section into a C (strictly: an unknown
// key is an error) and checked by C's Check method when it has one. A
// section that is absent or empty gives C's zero value. Register is meant
// for init functions; it panics if kind is taken.
func Register[C any](kind, summary string, build func(name string, c C) (Service, error)) {
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = make(map[string]factory)
	}
	if _, dup := registry.m[kind]; dup {
		panic("service: kind " + kind + " registered twice")
	}
	finish := func(name string, c C) (Service, error) {
		if ch, ok := any(&c).(Checker); ok {
			if err := ch.Check(); err != nil {
				return nil, &ConfigError{Service: name, Kind: kind, Err: err}
			}
		}
		s, err := build(name, c)
		if err != nil {
			return nil, fmt.Errorf("service %s (%s): %w", name, kind, err)
		}
		return s, nil
	}
	registry.m[kind] = factory{
		summary: summary,
		build: func(name string, section *yaml.Node) (Service, error) {
			var c C
			if err := decodeStrict(section, &c); err != nil {
				return nil, &ConfigError{Service: name, Kind: kind, Err: err}
			}
			return finish(name, c)
		},
		buildFrom: func(name string, config any) (Service, error) {
			var c C
			switch v := config.(type) {
			case C:
				c = v
			case *C:
				c = *v
			case nil:
			default:
				var n yaml.Node
				if err := n.Encode(config); err != nil {
					return nil, &ConfigError{Service: name, Kind: kind, Err: err}
				}
				if err := decodeStrict(&n, &c); err != nil {
					return nil, &ConfigError{Service: name, Kind: kind, Err: err}
				}
			}
			return finish(name, c)
		},
	}
}

// ConfigError is Build's error for a configuration section that does not
// decode (an unknown key, a value of the wrong type) or does not pass its
// Check.
type ConfigError struct {
	// Service and Kind are the service's name and kind.
	Service, Kind string
	// Err is the mistake.
	Err error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("service %s (%s): config: %v", e.Service, e.Kind, e.Err)
}

// Unwrap returns the mistake.
func (e *ConfigError) Unwrap() error { return e.Err }

// ErrUnknownKind is matched by errors.Is for Build's error on a kind that no
// package registered.
var ErrUnknownKind = errors.New("unknown kind of service")

// Build builds the service called name of kind kind from its configuration
// section (nil for none), as registered with Register.
func Build(kind, name string, section *yaml.Node) (Service, error) {
	registry.RLock()
	f, ok := registry.m[kind]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("service %s: %w %q (known: %v)", name, ErrUnknownKind, kind, Kinds())
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return f.build(name, section)
}

// BuildFrom builds the service called name of kind kind from a
// configuration value: a value of the kind's configuration type (or a
// pointer to one) is taken as it is, with the fields YAML does not carry (a
// campus model given for embedding); nil is the zero configuration;
// anything else is encoded to YAML and decoded strictly, as a section.
// citymesh demo builds its services from the kinds' demo configurations
// (RegisterDemo) with it.
func BuildFrom(kind, name string, config any) (Service, error) {
	registry.RLock()
	f, ok := registry.m[kind]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("service %s: %w %q (known: %v)", name, ErrUnknownKind, kind, Kinds())
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return f.buildFrom(name, config)
}

// Kinds returns the registered kinds of service, sorted.
func Kinds() []string {
	registry.RLock()
	defer registry.RUnlock()
	ks := make([]string, 0, len(registry.m))
	for k := range registry.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Summary returns the one-line description kind was registered with.
func Summary(kind string) string {
	registry.RLock()
	defer registry.RUnlock()
	return registry.m[kind].summary
}

// Section is one entry of a configuration's services section:
//
//	services:
//	  energy:                # the service's name
//	    kind: energy         # optional: the name is the kind
//	    config: {...}        # the kind's configuration
type Section struct {
	Kind   string    `yaml:"kind"`
	Config yaml.Node `yaml:"config"`
}

// BuildAll builds every service of a services section, in name order.
func BuildAll(sections map[string]Section) ([]Service, error) {
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Service
	for _, n := range names {
		sec := sections[n]
		kind := sec.Kind
		if kind == "" {
			kind = n
		}
		s, err := Build(kind, n, &sec.Config)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// decodeStrict decodes section into v, refusing keys v does not have
// (yaml.Node.Decode has no such option: the node is encoded again and read
// by a decoder that has).
func decodeStrict(section *yaml.Node, v any) error {
	if section == nil || section.Kind == 0 {
		return nil
	}
	if section.Kind == yaml.ScalarNode && section.Tag == "!!null" {
		return nil
	}
	raw, err := yaml.Marshal(section)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	err = dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	// The decoder saw the section encoded again: its line numbers are the
	// copy's. An unknown key is reported at its line in the file.
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := unknownFieldRE.FindStringSubmatch(e); m != nil {
			line := "?"
			if k := findKey(section, m[1]); k != nil {
				line = strconv.Itoa(k.Line)
			}
			e = fmt.Sprintf("unknown key %s at line %s", m[1], line)
		} else if _, rest, ok := strings.Cut(e, ": "); ok && strings.HasPrefix(e, "line ") {
			e = rest
		}
		msgs = append(msgs, e)
	}
	return errors.New(strings.Join(msgs, "; "))
}

var unknownFieldRE = regexp.MustCompile(`^line \d+: field (.+) not found in type \S+$`)

// findKey returns the first mapping key named key under n, depth first.
func findKey(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i]
			}
		}
	}
	for _, c := range n.Content {
		if k := findKey(c, key); k != nil {
			return k
		}
	}
	return nil
}

// CheckName checks that name is an id: 1 to 64 ASCII letters, digits, '.',
// '_' and '-', starting with a letter or digit.
func CheckName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("service name %q: want 1 to 64 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("service name %q: want letters, digits, '.', '_' and '-', starting with a letter or digit", name)
		}
	}
	return nil
}
