// Package cfn reads the SAM template (template.yaml) so that the local stack
// and the tests create exactly the tables and queues that a deployment
// creates, and run each function with the environment the template gives it.
//
// It understands the subset of CloudFormation and SAM that the project uses:
// parameters with defaults, overrides and their constraints, pseudo
// parameters, Mappings, Conditions, the intrinsic functions Ref, Fn::Sub,
// Fn::GetAtt, Fn::FindInMap, Fn::Join, Fn::Select, Fn::Split, Fn::Base64,
// Fn::If, Fn::Equals, Fn::Not, Fn::And and Fn::Or in both their long and
// short (!Tag) forms, and SAM's Globals for functions. Anything else is an
// error when it is evaluated, never a silent guess.
package cfn

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Resource types the package gives meaning to.
const (
	TypeTable    = "AWS::DynamoDB::Table"
	TypeQueue    = "AWS::SQS::Queue"
	TypeFunction = "AWS::Serverless::Function"
)

// Template is a parsed template. Values keep the template's structure:
// map[string]any, []any, string, int, float64, bool and nil, with every short
// form intrinsic (!Ref x) turned into its long form (map{"Ref": x}).
type Template struct {
	// Path is the file the template was read from.
	Path       string
	Parameters map[string]Parameter
	// Mappings is Mappings[map][topKey][secondKey].
	Mappings   map[string]map[string]map[string]any
	Conditions map[string]any
	// Globals is SAM's Globals section, e.g. Globals["Function"].
	Globals   map[string]any
	Resources map[string]Resource
}

// Parameter is one template parameter with the constraints that the local
// stack enforces on overrides as CloudFormation would.
type Parameter struct {
	Type           string
	Default        string
	HasDefault     bool
	AllowedValues  []string
	AllowedPattern string
	MinValue       *float64
	MaxValue       *float64
}

// Resource is one entry of the Resources section.
type Resource struct {
	LogicalID  string
	Type       string
	Condition  string
	Properties map[string]any
	Metadata   map[string]any
}

// Load reads and parses the template at path. It checks the structure of the
// sections it uses; intrinsic functions are evaluated later, by Provision.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// FindTemplate returns the template.yaml of the module that holds dir: it
// walks up from dir to the first directory with a go.mod. Tests and the local
// stack use it so that they work from any package directory.
func FindTemplate(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find template: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "template.yaml"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find template: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Parse parses a template from YAML (or JSON, which is YAML too).
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("empty template")
	}
	v, err := toValue(doc.Content[0])
	if err != nil {
		return nil, err
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the template is not a mapping")
	}
	t := &Template{
		Parameters: map[string]Parameter{},
		Mappings:   map[string]map[string]map[string]any{},
		Conditions: map[string]any{},
		Globals:    map[string]any{},
		Resources:  map[string]Resource{},
	}
	if err := t.parseParameters(top["Parameters"]); err != nil {
		return nil, err
	}
	if err := t.parseMappings(top["Mappings"]); err != nil {
		return nil, err
	}
	if c, ok := top["Conditions"]; ok {
		m, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("Conditions is not a mapping")
		}
		t.Conditions = m
	}
	if g, ok := top["Globals"]; ok {
		m, ok := g.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("Globals is not a mapping")
		}
		t.Globals = m
	}
	if err := t.parseResources(top["Resources"]); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Template) parseParameters(v any) error {
	if v == nil {
		return nil
	}
	params, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("Parameters is not a mapping")
	}
	for name, raw := range params {
		def, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("parameter %s is not a mapping", name)
		}
		p := Parameter{}
		p.Type, _ = def["Type"].(string)
		if p.Type == "" {
			return fmt.Errorf("parameter %s has no Type", name)
		}
		if d, ok := def["Default"]; ok {
			s, err := scalarString(d)
			if err != nil {
				return fmt.Errorf("parameter %s Default: %w", name, err)
			}
			p.Default, p.HasDefault = s, true
		}
		if av, ok := def["AllowedValues"]; ok {
			list, ok := av.([]any)
			if !ok {
				return fmt.Errorf("parameter %s AllowedValues is not a list", name)
			}
			for _, e := range list {
				s, err := scalarString(e)
				if err != nil {
					return fmt.Errorf("parameter %s AllowedValues: %w", name, err)
				}
				p.AllowedValues = append(p.AllowedValues, s)
			}
		}
		p.AllowedPattern, _ = def["AllowedPattern"].(string)
		for key, dst := range map[string]**float64{"MinValue": &p.MinValue, "MaxValue": &p.MaxValue} {
			if raw, ok := def[key]; ok {
				s, err := scalarString(raw)
				if err != nil {
					return fmt.Errorf("parameter %s %s: %w", name, key, err)
				}
				f, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return fmt.Errorf("parameter %s %s: %w", name, key, err)
				}
				*dst = &f
			}
		}
		t.Parameters[name] = p
	}
	return nil
}

func (t *Template) parseMappings(v any) error {
	if v == nil {
		return nil
	}
	maps, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("Mappings is not a mapping")
	}
	for name, raw := range maps {
		top, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("mapping %s is not a mapping", name)
		}
		t.Mappings[name] = map[string]map[string]any{}
		for k1, raw2 := range top {
			second, ok := raw2.(map[string]any)
			if !ok {
				return fmt.Errorf("mapping %s.%s is not a mapping", name, k1)
			}
			t.Mappings[name][k1] = second
		}
	}
	return nil
}

func (t *Template) parseResources(v any) error {
	res, ok := v.(map[string]any)
	if !ok || len(res) == 0 {
		return fmt.Errorf("Resources is missing or not a mapping")
	}
	for id, raw := range res {
		def, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("resource %s is not a mapping", id)
		}
		r := Resource{LogicalID: id}
		r.Type, _ = def["Type"].(string)
		if r.Type == "" {
			return fmt.Errorf("resource %s has no Type", id)
		}
		r.Condition, _ = def["Condition"].(string)
		if p, ok := def["Properties"]; ok {
			if r.Properties, ok = p.(map[string]any); !ok {
				return fmt.Errorf("resource %s Properties is not a mapping", id)
			}
		}
		if m, ok := def["Metadata"]; ok {
			if r.Metadata, ok = m.(map[string]any); !ok {
				return fmt.Errorf("resource %s Metadata is not a mapping", id)
			}
		}
		t.Resources[id] = r
	}
	return nil
}

// ResourcesOfType returns the logical ids of the resources of one type, sorted.
func (t *Template) ResourcesOfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// toValue turns a YAML node into plain values, rewriting CloudFormation's
// short-form tags into the long form so that the evaluator sees one shape.
func toValue(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return toValue(n.Alias)
	}
	tag := n.Tag
	if strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		return shortForm(n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a mapping key must be a scalar", k.Line)
			}
			if k.Value == "<<" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not supported in templates", k.Line)
			}
			v, err := toValue(val)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toValue(c)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// shortForm rewrites a tagged node: !Ref x → {"Ref": x}, !GetAtt a.b →
// {"Fn::GetAtt": [a, b]}, !Condition c → {"Condition": c}, !Other v →
// {"Fn::Other": v}.
func shortForm(n *yaml.Node) (any, error) {
	name := strings.TrimPrefix(n.Tag, "!")
	plain := *n
	plain.Tag = ""
	if n.Kind == yaml.ScalarNode {
		plain.Tag = "!!str"
	}
	inner, err := toValue(&plain)
	if err != nil {
		return nil, err
	}
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: inner}, nil
	case "GetAtt":
		if s, ok := inner.(string); ok {
			res, attr, ok := strings.Cut(s, ".")
			if !ok {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, s)
			}
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
	}
	return map[string]any{"Fn::" + name: inner}, nil
}

// scalarString renders a scalar the way CloudFormation passes it around:
// every parameter value and every Ref result is a string.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("want a scalar, got %T", v)
}
