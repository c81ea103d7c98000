package policy

import (
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder maps a yaml.Node tree onto the spec types strictly: it knows every
// field by its yaml tag, rejects unknown keys, duplicate keys, wrong scalar
// types and aliases, and records the line of each key. yaml.v3's own Decode
// stops at the first problem and cannot say which line a later validation
// error belongs to, so the walk is done here.
type decoder struct {
	errs *errs
}

type positioner interface {
	setPos(line int, keys, empty map[string]int)
}

var positionerType = reflect.TypeFor[positioner]()

// fieldIndex lists the yaml keys of a struct type, following inline structs.
func fieldIndex(t reflect.Type) map[string][]int {
	out := make(map[string][]int)
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, ok := f.Tag.Lookup("yaml")
			if !ok || tag == "-" {
				continue
			}
			idx := append(append([]int(nil), prefix...), i)
			name, opts, _ := strings.Cut(tag, ",")
			if opts == "inline" {
				walk(f.Type, idx)
				continue
			}
			out[name] = idx
		}
	}
	walk(t, nil)
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		d.errs.add(n.Line, path, "YAML aliases are not supported in policies")
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// An empty value means "not set"; an empty mapping still has a
		// line for errors about what it lacks.
		if v.Kind() == reflect.Struct && v.CanAddr() && v.Addr().Type().Implements(positionerType) {
			v.Addr().Interface().(positioner).setPos(n.Line, nil, nil)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errs.add(n.Line, path, "must be a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.errs.add(n.Line, path, "must be a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errs.add(n.Line, path, "must be an integer, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.errs.add(n.Line, path, "must be an integer, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		b, ok := parseBool(n)
		if !ok {
			d.errs.add(n.Line, path, "must be true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	default:
		panic("policy: unsupported spec field type " + v.Type().String())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(n.Line, path, "must be a mapping, got %s", describe(n))
		return
	}
	fields := fieldIndex(v.Type())
	keys := make(map[string]int, len(n.Content)/2)
	empty := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.errs.add(k.Line, path, "keys must be strings, got %s", describe(k))
			continue
		}
		fp := join(path, k.Value)
		prev, dup := keys[k.Value]
		if !dup {
			prev, dup = empty[k.Value]
		}
		if dup {
			d.errs.add(k.Line, fp, "duplicate key (first on line %d)", prev)
			continue
		}
		if val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null" {
			empty[k.Value] = k.Line
		} else {
			keys[k.Value] = k.Line
		}
		idx, ok := fields[k.Value]
		if !ok {
			d.errs.add(k.Line, fp, "unknown field (known fields: %s)", knownFields(fields))
			continue
		}
		d.decode(val, v.FieldByIndex(idx), fp)
	}
	if v.CanAddr() && v.Addr().Type().Implements(positionerType) {
		v.Addr().Interface().(positioner).setPos(n.Line, keys, empty)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(n.Line, path, "must be a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errs.add(k.Line, path, "keys must be strings, got %s", describe(k))
			continue
		}
		fp := join(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.errs.add(k.Line, fp, "duplicate key (first on line %d)", prev)
			continue
		}
		seen[k.Value] = k.Line
		// Label values like "true" or 8080 are strings to Kubernetes; accept
		// any scalar rather than forcing users to quote them.
		if val.Kind != yaml.ScalarNode || val.ShortTag() == "!!null" {
			d.errs.add(val.Line, fp, "must be a string, got %s", describe(val))
			continue
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
}

// parseBool takes YAML 1.2 booleans, and also the YAML 1.1 spellings (yes,
// no, on, off) that Kubernetes tooling accepts, so copied policies load.
func parseBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on":
		return true, n.ShortTag() == "!!bool" || n.ShortTag() == "!!str" && n.Style == 0
	case "false", "no", "off":
		return false, n.ShortTag() == "!!bool" || n.ShortTag() == "!!str" && n.Style == 0
	}
	return false, false
}

func knownFields(fields map[string][]int) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!null":
		return "nothing"
	default:
		return n.Value
	}
}
