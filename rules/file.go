package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rules files: YAML (JSON is YAML too) that a team keeps in git and
// applies with `veritrail rules apply`. A file holds a list of rules, a
// mapping with the list under "rules", or one rule; several documents
// (---) may follow one another. Secrets stay out of git: a string
// ${NAME} is replaced by the environment variable NAME when the file is
// read.

// FileRule is one rule of a rules file.
type FileRule struct {
	// JSON is the rule as the API takes it.
	JSON []byte
	// Name is the rule's name, if it has one.
	Name string
	// Line is where the rule starts in its file.
	Line int
	node *yaml.Node
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ParseFile reads the rules of a rules file. lookup resolves ${NAME}
// references (os.LookupEnv; nil: references are left as they are).
func ParseFile(data []byte, lookup func(string) (string, bool)) ([]*FileRule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*FileRule
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		var items []*yaml.Node
		switch {
		case root.Kind == yaml.SequenceNode:
			items = root.Content
		case root.Kind == yaml.MappingNode && mapValue(root, "rules") != nil:
			list := mapValue(root, "rules")
			if list.Kind != yaml.SequenceNode || len(root.Content) != 2 {
				return nil, fmt.Errorf("line %d: a rules file's mapping holds only \"rules\", a list of rules", root.Line)
			}
			items = list.Content
		case root.Kind == yaml.MappingNode:
			items = []*yaml.Node{root}
		default:
			return nil, fmt.Errorf("line %d: expected a list of rules, or a rule", root.Line)
		}
		for _, it := range items {
			if it.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("line %d: a rule is a mapping of its fields", it.Line)
			}
			v, err := toJSONValue(it, lookup)
			if err != nil {
				return nil, err
			}
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", it.Line, err)
			}
			fr := &FileRule{JSON: b, Line: it.Line, node: it}
			if n := mapValue(it, "name"); n != nil && n.Kind == yaml.ScalarNode {
				fr.Name = n.Value
			}
			out = append(out, fr)
		}
	}
	return out, nil
}

// ReadFile reads a rules file from disk, resolving ${NAME} from the
// environment.
func ReadFile(path string) ([]*FileRule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rs, err := ParseFile(b, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// toJSONValue converts a YAML node to what encoding/json writes as the
// same JSON: mappings with string keys, lists, and scalars by their YAML
// type (so "5m" stays a string and 10 a number).
func toJSONValue(n *yaml.Node, lookup func(string) (string, bool)) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return toJSONValue(n.Alias, lookup)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: keys are plain names", k.Line)
			}
			if k.Value == "<<" { // a merge key: the mapping's fields come first
				base, err := toJSONValue(n.Content[i+1], lookup)
				if err != nil {
					return nil, err
				}
				if bm, ok := base.(map[string]any); ok {
					for bk, bv := range bm {
						if _, set := m[bk]; !set {
							m[bk] = bv
						}
					}
				}
				continue
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: %q is given twice", k.Line, k.Value)
			}
			v, err := toJSONValue(n.Content[i+1], lookup)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toJSONValue(c, lookup)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			return n.Value == "true", nil
		case "!!int":
			v, err := strconv.ParseInt(n.Value, 0, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q is not a whole number", n.Line, n.Value)
			}
			return v, nil
		case "!!float":
			v, err := strconv.ParseFloat(n.Value, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q is not a number", n.Line, n.Value)
			}
			return v, nil
		}
		s := n.Value
		if lookup != nil {
			var missing string
			s = envRef.ReplaceAllStringFunc(s, func(ref string) string {
				name := ref[2 : len(ref)-1]
				v, ok := lookup(name)
				if !ok && missing == "" {
					missing = name
				}
				return v
			})
			if missing != "" {
				return nil, fmt.Errorf("line %d: the environment variable %s is not set", n.Line, missing)
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML", n.Line)
}

// LineOf returns the line of a field of the rule, named as API errors
// name it ("window", "routes[1].url"), or the rule's line when the field
// is not written in the file.
func (f *FileRule) LineOf(field string) int {
	n := f.node
	line := f.Line
	if n == nil {
		return line
	}
	for _, part := range strings.Split(field, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			if v, err := strconv.Atoi(part[i+1 : len(part)-1]); err == nil {
				idx = v
			}
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		var val *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				line, val = n.Content[i].Line, n.Content[i+1]
			}
		}
		if val == nil {
			return line
		}
		n = val
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// CheckSpec checks a rule written in a file as far as it can be without
// the server: its fields and its CEL (as if its author may read content;
// the server checks that, and the routes' destinations).
func CheckSpec(b []byte) error {
	s, err := DecodeSpec(b)
	if err != nil {
		return err
	}
	env, err := newEnv()
	if err != nil {
		return err
	}
	_, err = compile(env, s, true)
	return err
}

// ParseRoutes reads a routes file (the built-in pack's routes): a YAML or
// JSON list of routes, ${NAME} resolved by lookup.
func ParseRoutes(data []byte, lookup func(string) (string, bool)) ([]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("a routes file is a list of routes")
	}
	v, err := toJSONValue(doc.Content[0], lookup)
	if err != nil {
		return nil, err
	}
	return v.([]any), nil
}
