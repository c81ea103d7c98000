package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkYAML validates the config file node by node before viper sees it,
// because viper's decoded maps have lost the line numbers an admin needs. It
// returns the file's values, typed, and reports every problem at once.
func checkYAML(file string, data []byte, ks []key) (source, error) {
	src := source{values: map[string]any{}, origins: map[string]string{}}
	if file == "" {
		return src, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return src, nil // empty file: all defaults
		}
		return source{}, fmt.Errorf("parse config %s: %w", file, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return source{}, fmt.Errorf("parse config %s: %w", file, err)
		}
		return source{}, &Error{Where: where(file, next.Line), Err: errors.New("only one YAML document is allowed")}
	}

	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return src, nil
		}
		root = root.Content[0]
	}
	root = deref(root)
	if isNull(root) {
		return src, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return source{}, &Error{Where: where(file, root.Line), Err: fmt.Errorf("must be a mapping of key: value, got %s", describe(root))}
	}

	byName := map[string]key{}
	for _, k := range ks {
		byName[k.name] = k
	}
	seen := map[string]int{}
	var errs []*Error
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := deref(root.Content[i]), deref(root.Content[i+1])
		name := kn.Value
		k, ok := byName[name]
		if kn.Kind != yaml.ScalarNode || !ok {
			errs = append(errs, &Error{Where: where(file, kn.Line), Key: name, Err: unknownKey(name, ks)})
			continue
		}
		if line, dup := seen[name]; dup {
			errs = append(errs, &Error{Where: where(file, kn.Line), Key: name, Err: fmt.Errorf("duplicate key (first set on line %d)", line)})
			continue
		}
		seen[name] = kn.Line
		val, line, err := k.parseNode(vn)
		if err != nil {
			errs = append(errs, &Error{Where: where(file, line), Key: name, Err: err})
			continue
		}
		src.values[name] = val
		src.origins[name] = "file " + where(file, kn.Line)
	}
	if len(errs) > 0 {
		all := make([]error, len(errs))
		for i, e := range errs {
			all[i] = e
		}
		return source{}, errors.Join(all...)
	}
	return src, nil
}

// parseNode checks a value's YAML type, then its content. It returns the
// line to blame, which for labels may be a nested line.
func (k key) parseNode(n *yaml.Node) (any, int, error) {
	if k.kind == kindLabels {
		return parseLabelNode(n)
	}
	if k.kind == kindRate && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, err := k.parse(n.Value)
		return v, n.Line, err
	}
	if err := wantString(n, k.kind == kindDuration); err != nil {
		return nil, n.Line, err
	}
	v, err := k.parse(n.Value)
	return v, n.Line, err
}

func parseLabelNode(n *yaml.Node) (any, int, error) {
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			return nil, n.Line, errors.New("has no value (write {} for no labels, or remove the line)")
		}
		return nil, n.Line, fmt.Errorf("must be a mapping of label: value, got %s", describe(n))
	}
	labels := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := deref(n.Content[i]), deref(n.Content[i+1])
		if err := wantString(kn, false); err != nil {
			return nil, kn.Line, fmt.Errorf("label key: %w", err)
		}
		if err := wantString(vn, false); err != nil {
			return nil, vn.Line, fmt.Errorf("label %q: %w", kn.Value, err)
		}
		if _, dup := labels[kn.Value]; dup {
			return nil, kn.Line, fmt.Errorf("label %q given twice", kn.Value)
		}
		if err := checkLabel(kn.Value, vn.Value); err != nil {
			return nil, kn.Line, err
		}
		labels[kn.Value] = vn.Value
	}
	return labels, n.Line, nil
}

// wantString rejects values YAML typed as something else: "enforcer: no" or
// "reloadDebounce: 200" are mistakes worth naming, not values to coerce.
func wantString(n *yaml.Node, duration bool) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		return nil
	}
	if isNull(n) {
		return errors.New("has no value (remove the line to use the default)")
	}
	if duration && n.Kind == yaml.ScalarNode {
		return fmt.Errorf("must be a duration such as \"200ms\", got %s", describe(n))
	}
	return fmt.Errorf("must be a string, got %s", describe(n))
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		kind := strings.TrimPrefix(n.ShortTag(), "!!")
		return fmt.Sprintf("%s %s (quote it if a string is meant)", kind, n.Value)
	default:
		return "no value"
	}
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func where(file string, line int) string { return fmt.Sprintf("%s:%d", file, line) }

// unknownKey suggests the real key for a typo or a wrong case.
func unknownKey(name string, ks []key) error {
	best, bestDist := "", 4
	for _, k := range ks {
		if strings.EqualFold(k.name, name) {
			return fmt.Errorf("unknown key (did you mean %q? keys are case-sensitive)", k.name)
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(k.name)); d < bestDist {
			best, bestDist = k.name, d
		}
	}
	if best != "" {
		return fmt.Errorf("unknown key (did you mean %q?)", best)
	}
	return errors.New("unknown key")
}

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
