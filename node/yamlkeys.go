package node

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// The configuration's keys are its yaml tags; these helpers walk a Config by
// them, so that validation, reload and error messages name settings as the
// file does.

// yamlField is a field of a struct as its YAML form sees it.
type yamlField struct {
	key   string
	index []int // for reflect.Value.FieldByIndex, through inline structs
}

// yamlFields returns the keys of struct type t, with the fields of inline
// structs in their place, in declaration order.
func yamlFields(t reflect.Type) []yamlField {
	var out []yamlField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for _, sub := range yamlFields(f.Type) {
				out = append(out, yamlField{key: sub.key, index: append([]int{i}, sub.index...)})
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // as yaml.v3 names untagged fields
		}
		out = append(out, yamlField{key: name, index: []int{i}})
	}
	return out
}

// section reports whether values of type t are YAML sections (mappings
// whose keys are walked) rather than values.
func section(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walkYAML calls fn for every value (not section) under v, a struct, with
// its key path below path. Nil sections are skipped.
func walkYAML(v reflect.Value, path string, fn func(key string, v reflect.Value)) {
	for _, f := range yamlFields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		key := join(path, f.key)
		if section(fv.Type()) {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			walkYAML(fv, key, fn)
			continue
		}
		fn(key, fv)
	}
}

// changedKeys returns the key paths whose values differ between a and b,
// two values of the same struct type, in declaration order. A section that
// is present in one and absent in the other is one change.
func changedKeys(a, b reflect.Value, path string, out []string) []string {
	for _, f := range yamlFields(a.Type()) {
		fa, fb := a.FieldByIndex(f.index), b.FieldByIndex(f.index)
		key := join(path, f.key)
		if section(fa.Type()) {
			if fa.Kind() == reflect.Pointer {
				if fa.IsNil() || fb.IsNil() {
					if fa.IsNil() != fb.IsNil() {
						out = append(out, key)
					}
					continue
				}
				fa, fb = fa.Elem(), fb.Elem()
			}
			out = changedKeys(fa, fb, key, out)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			out = append(out, key)
		}
	}
	return out
}

// sectionInfo is what error messages know of one section type of the
// configuration: where it appears and its keys.
type sectionInfo struct {
	paths []string
	keys  []string
}

// sections maps the type names yaml.v3 uses in its messages ("node.Config",
// "broker.Options") to the sections of Config of that type.
var sections = func() map[string]*sectionInfo {
	m := make(map[string]*sectionInfo)
	var visit func(t reflect.Type, path string)
	visit = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			if t.Kind() == reflect.Map {
				path += ".NAME" // the services section: services.NAME
			}
			t = t.Elem()
		}
		// A yaml.Node holds a section decoded later (a service's config),
		// not keys of the configuration.
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[yaml.Node]() {
			return
		}
		si := m[t.String()]
		if si == nil {
			si = &sectionInfo{}
			for _, f := range yamlFields(t) {
				si.keys = append(si.keys, f.key)
			}
			m[t.String()] = si
		}
		si.paths = append(si.paths, path)
		for _, f := range yamlFields(t) {
			visit(t.FieldByIndex(f.index).Type, join(path, f.key))
		}
	}
	visit(reflect.TypeFor[Config](), "")
	return m
}()
