package campus

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The campus file's YAML shape (docs/campus.md). Each struct lists the
// keys allowed at its level; checkFields refuses others, with their line.

type fileDoc struct {
	Campus       string                   `yaml:"campus"`
	Name         string                   `yaml:"name"`
	Timezone     string                   `yaml:"timezone"`
	Sites        []siteFile               `yaml:"sites"`
	Tenants      []tenantFile             `yaml:"tenants"`
	Applications []applicationFile        `yaml:"applications"`
	Gateways     []gatewayFile            `yaml:"gateways"`
	RoomTypes    map[string]roomTypeFile  `yaml:"room_types"`
	MeterTypes   map[string]meterTypeFile `yaml:"meter_types"`
	Buildings    []buildingFile           `yaml:"buildings"`
	Meters       []meterFile              `yaml:"meters"`
	Plots        []plotFile               `yaml:"plots"`
	Devices      []deviceFile             `yaml:"devices"`
	Robots       []robotFile              `yaml:"robots"`
	Points       []pointFile              `yaml:"points"`
}

type siteFile struct {
	ID       string    `yaml:"id"`
	Name     string    `yaml:"name"`
	Kind     string    `yaml:"kind"`
	Location []float64 `yaml:"location"`
	RadiusM  float64   `yaml:"radius_m"`
}

type tenantFile struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

type applicationFile struct {
	ID          string `yaml:"id"`
	Server      string `yaml:"server"`
	Application string `yaml:"application"`
	Tenant      string `yaml:"tenant"`
	Address     string `yaml:"address"`
}

type gatewayFile struct {
	ID       string    `yaml:"id"`
	Name     string    `yaml:"name"`
	Kind     string    `yaml:"kind"`
	Site     string    `yaml:"site"`
	EUI      string    `yaml:"eui"`
	Building string    `yaml:"building"`
	Location []float64 `yaml:"location"`
}

type roomTypeFile struct {
	Description string              `yaml:"description"`
	Points      []templatePointFile `yaml:"points"`
}

type templatePointFile struct {
	Key      string `yaml:"key"`
	Quantity string `yaml:"quantity"`
	Unit     string `yaml:"unit"`
	Name     string `yaml:"name"`
}

type meterTypeFile struct {
	Description string         `yaml:"description"`
	Registers   []registerFile `yaml:"registers"`
}

type registerFile struct {
	OBIS   string  `yaml:"obis"`
	Unit   string  `yaml:"unit"`
	Digits int     `yaml:"digits"`
	Max    float64 `yaml:"max"`
}

type buildingFile struct {
	ID        string     `yaml:"id"`
	Name      string     `yaml:"name"`
	Site      string     `yaml:"site"`
	Tenant    string     `yaml:"tenant"`
	Floors    int        `yaml:"floors"`
	Basements int        `yaml:"basements"`
	Footprint yaml.Node  `yaml:"footprint"`
	Rooms     []roomFile `yaml:"rooms"`
}

type roomFile struct {
	ID       string    `yaml:"id"`
	Name     string    `yaml:"name"`
	Floor    *int      `yaml:"floor"`
	Count    int       `yaml:"count"`
	First    int       `yaml:"first"`
	Type     string    `yaml:"type"`
	Tenant   string    `yaml:"tenant"`
	AreaM2   float64   `yaml:"area_m2"`
	Location []float64 `yaml:"location"`
}

type meterFile struct {
	ID        string         `yaml:"id"`
	Name      string         `yaml:"name"`
	Type      string         `yaml:"type"`
	Building  string         `yaml:"building"`
	Tenant    string         `yaml:"tenant"`
	Parent    string         `yaml:"parent"`
	Registers []registerFile `yaml:"registers"`
	Location  []float64      `yaml:"location"`
}

type plotFile struct {
	ID      string    `yaml:"id"`
	Name    string    `yaml:"name"`
	Site    string    `yaml:"site"`
	Tenant  string    `yaml:"tenant"`
	Variety string    `yaml:"variety"`
	Area    yaml.Node `yaml:"area"`
}

type deviceFile struct {
	ID          string    `yaml:"id"`
	Name        string    `yaml:"name"`
	Type        string    `yaml:"type"`
	DevEUI      string    `yaml:"dev_eui"`
	Application string    `yaml:"application"`
	NetworkID   string    `yaml:"network_id"`
	Plot        string    `yaml:"plot"`
	Site        string    `yaml:"site"`
	Tenant      string    `yaml:"tenant"`
	Location    []float64 `yaml:"location"`
	Interval    string    `yaml:"interval"`
}

type robotFile struct {
	ID       string    `yaml:"id"`
	Name     string    `yaml:"name"`
	Site     string    `yaml:"site"`
	Tenant   string    `yaml:"tenant"`
	Location []float64 `yaml:"location"`
	Route    yaml.Node `yaml:"route"`
}

type pointFile struct {
	ID       string    `yaml:"id"`
	Asset    string    `yaml:"asset"`
	Quantity string    `yaml:"quantity"`
	Unit     string    `yaml:"unit"`
	Name     string    `yaml:"name"`
	Tenant   string    `yaml:"tenant"`
	Location []float64 `yaml:"location"`
	Remove   bool      `yaml:"remove"`
}

var (
	yamlNodeType = reflect.TypeFor[yaml.Node]()
	fileDocType  = reflect.TypeFor[fileDoc]()
)

// checkFields walks n against type t and reports every mapping key t does
// not have, with its position. Types it cannot check (scalars, yaml.Node)
// are left to the decoder.
func checkFields(n *yaml.Node, t reflect.Type, path string, report func(n *yaml.Node, path string, err error, msg string)) {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == yamlNodeType {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			f, ok := fieldByTag(t, key)
			if !ok {
				report(n.Content[i], join(path, key), ErrUnknownField, fmt.Sprintf("unknown field %q (known: %s)", key, strings.Join(tags(t), ", ")))
				continue
			}
			checkFields(n.Content[i+1], f.Type, join(path, key), report)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), report)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkFields(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), report)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tags(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// mapValue returns the value node of key in mapping n, nil if absent.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// seqItem returns item i of the sequence under key in mapping n.
func seqItem(n *yaml.Node, key string, i int) *yaml.Node {
	s := mapValue(n, key)
	if s == nil || s.Kind != yaml.SequenceNode || i >= len(s.Content) {
		return nil
	}
	return s.Content[i]
}

var typeErrorLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeErrors turns the decoder's type errors ("line 12: cannot unmarshal
// !!str `x` into int") into positioned errors.
func typeErrors(file string, te *yaml.TypeError) Errors {
	var out Errors
	for _, msg := range te.Errors {
		e := &Error{File: file, Err: ErrSyntax, Msg: msg}
		if m := typeErrorLine.FindStringSubmatch(msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		out = append(out, e)
	}
	return out
}
