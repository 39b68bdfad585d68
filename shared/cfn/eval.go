package cfn

import (
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// noValue is what Ref AWS::NoValue evaluates to: the enclosing key or list
// element disappears, as in CloudFormation.
type noValue struct{}

// evaluator resolves intrinsic functions against parameter values, pseudo
// parameters, mappings, conditions and whatever the caller knows about the
// resources (their physical names and attributes).
type evaluator struct {
	t          *Template
	params     map[string]string
	pseudo     map[string]string
	conditions map[string]bool
	inProgress map[string]bool
	// ref returns what Ref gives for a resource; getAtt an attribute of one.
	ref    func(logicalID string) (string, error)
	getAtt func(logicalID, attr string) (string, error)
}

// resolveParams merges defaults and overrides and checks each value against
// the parameter's constraints, as CloudFormation does at deploy time.
func resolveParams(t *Template, overrides map[string]string) (map[string]string, error) {
	for name := range overrides {
		if _, ok := t.Parameters[name]; !ok {
			return nil, fmt.Errorf("parameter %s is not declared in the template", name)
		}
	}
	out := make(map[string]string, len(t.Parameters))
	for name, p := range t.Parameters {
		v, ok := overrides[name]
		if !ok {
			if !p.HasDefault {
				return nil, fmt.Errorf("parameter %s has no default and no value", name)
			}
			v = p.Default
		}
		if err := p.check(v); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

func (p Parameter) check(v string) error {
	if len(p.AllowedValues) > 0 {
		found := false
		for _, a := range p.AllowedValues {
			if a == v {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("value %q is not one of %v", v, p.AllowedValues)
		}
	}
	if p.AllowedPattern != "" {
		re, err := regexp.Compile(`^(?:` + p.AllowedPattern + `)$`)
		if err != nil {
			return fmt.Errorf("AllowedPattern: %w", err)
		}
		if !re.MatchString(v) {
			return fmt.Errorf("value %q does not match %s", v, p.AllowedPattern)
		}
	}
	if p.Type == "Number" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("value %q is not a number", v)
		}
		if p.MinValue != nil && f < *p.MinValue {
			return fmt.Errorf("value %s is below %v", v, *p.MinValue)
		}
		if p.MaxValue != nil && f > *p.MaxValue {
			return fmt.Errorf("value %s is above %v", v, *p.MaxValue)
		}
	}
	return nil
}

// eval returns v with every intrinsic function replaced by its value.
func (e *evaluator) eval(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return e.call(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			r, err := e.eval(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, drop := r.(noValue); !drop {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, val := range x {
			r, err := e.eval(val)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if _, drop := r.(noValue); !drop {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

// evalString evaluates v and requires a scalar result, rendered as a string.
func (e *evaluator) evalString(v any) (string, error) {
	r, err := e.eval(v)
	if err != nil {
		return "", err
	}
	return scalarString(r)
}

func (e *evaluator) call(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Ref takes a name, got %T", arg)
		}
		return e.refValue(name)
	case "Condition":
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Condition takes a name, got %T", arg)
		}
		return e.condition(name)
	case "Fn::GetAtt":
		var res, attr string
		switch a := arg.(type) {
		case string:
			res, attr, _ = strings.Cut(a, ".")
		case []any:
			if len(a) != 2 {
				return nil, fmt.Errorf("Fn::GetAtt takes [resource, attribute]")
			}
			var err error
			if res, err = e.evalString(a[0]); err != nil {
				return nil, err
			}
			if attr, err = e.evalString(a[1]); err != nil {
				return nil, err
			}
		}
		if res == "" || attr == "" {
			return nil, fmt.Errorf("Fn::GetAtt takes [resource, attribute]")
		}
		if _, ok := e.t.Resources[res]; !ok {
			return nil, fmt.Errorf("Fn::GetAtt: no resource %s", res)
		}
		return e.getAtt(res, attr)
	case "Fn::Sub":
		return e.sub(arg)
	case "Fn::FindInMap":
		args, err := e.list(fn, arg, 3)
		if err != nil {
			return nil, err
		}
		keys := make([]string, 3)
		for i, a := range args {
			if keys[i], err = scalarString(a); err != nil {
				return nil, fmt.Errorf("Fn::FindInMap: %w", err)
			}
		}
		v, ok := e.t.Mappings[keys[0]][keys[1]][keys[2]]
		if !ok {
			return nil, fmt.Errorf("Fn::FindInMap: no entry %s.%s.%s", keys[0], keys[1], keys[2])
		}
		return e.eval(v)
	case "Fn::Join":
		args, err := e.list(fn, arg, 2)
		if err != nil {
			return nil, err
		}
		sep, err := scalarString(args[0])
		if err != nil {
			return nil, fmt.Errorf("Fn::Join delimiter: %w", err)
		}
		items, ok := args[1].([]any)
		if !ok {
			return nil, fmt.Errorf("Fn::Join takes a list to join")
		}
		parts := make([]string, len(items))
		for i, it := range items {
			if parts[i], err = scalarString(it); err != nil {
				return nil, fmt.Errorf("Fn::Join [%d]: %w", i, err)
			}
		}
		return strings.Join(parts, sep), nil
	case "Fn::Select":
		args, err := e.list(fn, arg, 2)
		if err != nil {
			return nil, err
		}
		s, err := scalarString(args[0])
		if err != nil {
			return nil, fmt.Errorf("Fn::Select index: %w", err)
		}
		i, err := strconv.Atoi(s)
		items, ok := args[1].([]any)
		if err != nil || !ok || i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Fn::Select: index %q out of range", s)
		}
		return items[i], nil
	case "Fn::Split":
		args, err := e.list(fn, arg, 2)
		if err != nil {
			return nil, err
		}
		sep, err1 := scalarString(args[0])
		s, err2 := scalarString(args[1])
		if err1 != nil || err2 != nil || sep == "" {
			return nil, fmt.Errorf("Fn::Split takes [delimiter, string]")
		}
		var out []any
		for _, p := range strings.Split(s, sep) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Base64":
		s, err := e.evalString(arg)
		if err != nil {
			return nil, fmt.Errorf("Fn::Base64: %w", err)
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "Fn::If":
		raw, ok := arg.([]any)
		if !ok || len(raw) != 3 {
			return nil, fmt.Errorf("Fn::If takes [condition, then, else]")
		}
		name, ok := raw[0].(string)
		if !ok {
			return nil, fmt.Errorf("Fn::If takes a condition name")
		}
		c, err := e.condition(name)
		if err != nil {
			return nil, err
		}
		// Only the chosen branch is evaluated, as in CloudFormation.
		if c {
			return e.eval(raw[1])
		}
		return e.eval(raw[2])
	case "Fn::Equals":
		args, err := e.list(fn, arg, 2)
		if err != nil {
			return nil, err
		}
		a, err1 := scalarString(args[0])
		b, err2 := scalarString(args[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("Fn::Equals compares scalars")
		}
		return a == b, nil
	case "Fn::Not", "Fn::And", "Fn::Or":
		args, err := e.list(fn, arg, -1)
		if err != nil {
			return nil, err
		}
		bools := make([]bool, len(args))
		for i, a := range args {
			b, ok := a.(bool)
			if !ok {
				return nil, fmt.Errorf("%s takes conditions, got %T", fn, a)
			}
			bools[i] = b
		}
		switch fn {
		case "Fn::Not":
			if len(bools) != 1 {
				return nil, fmt.Errorf("Fn::Not takes one condition")
			}
			return !bools[0], nil
		case "Fn::And":
			for _, b := range bools {
				if !b {
					return false, nil
				}
			}
			return true, nil
		default:
			for _, b := range bools {
				if b {
					return true, nil
				}
			}
			return false, nil
		}
	}
	return nil, fmt.Errorf("intrinsic function %s is not supported", fn)
}

// list evaluates the argument list of fn and checks its length (n < 0: any).
func (e *evaluator) list(fn string, arg any, n int) ([]any, error) {
	v, err := e.eval(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	args, ok := v.([]any)
	if !ok || (n >= 0 && len(args) != n) {
		return nil, fmt.Errorf("%s takes a list of %d arguments", fn, n)
	}
	return args, nil
}

func (e *evaluator) refValue(name string) (any, error) {
	if name == "AWS::NoValue" {
		return noValue{}, nil
	}
	if v, ok := e.params[name]; ok {
		if strings.HasPrefix(e.t.Parameters[name].Type, "List<") || e.t.Parameters[name].Type == "CommaDelimitedList" {
			var out []any
			for _, p := range strings.Split(v, ",") {
				out = append(out, strings.TrimSpace(p))
			}
			return out, nil
		}
		return v, nil
	}
	if v, ok := e.pseudo[name]; ok {
		return v, nil
	}
	if _, ok := e.t.Resources[name]; ok {
		return e.ref(name)
	}
	return nil, fmt.Errorf("Ref: %s is neither a parameter nor a resource", name)
}

func (e *evaluator) condition(name string) (bool, error) {
	if c, ok := e.conditions[name]; ok {
		return c, nil
	}
	def, ok := e.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	if e.inProgress[name] {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	e.inProgress[name] = true
	defer delete(e.inProgress, name)
	v, err := e.eval(def)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s is not a boolean", name)
	}
	e.conditions[name] = b
	return b, nil
}

// sub implements Fn::Sub: "${Name}" is a Ref (or a variable of the second
// form's map), "${Res.Attr}" a GetAtt, "${!Literal}" the text "${Literal}".
func (e *evaluator) sub(arg any) (any, error) {
	var text string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		text = a
	case []any:
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Sub takes a string or [string, variables]")
		}
		var ok bool
		if text, ok = a[0].(string); !ok {
			return nil, fmt.Errorf("Fn::Sub takes a string")
		}
		m, ok := a[1].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("Fn::Sub variables must be a mapping")
		}
		vars = m
	default:
		return nil, fmt.Errorf("Fn::Sub takes a string or [string, variables]")
	}
	var b strings.Builder
	for {
		i := strings.Index(text, "${")
		if i < 0 {
			b.WriteString(text)
			return b.String(), nil
		}
		b.WriteString(text[:i])
		j := strings.Index(text[i:], "}")
		if j < 0 {
			return nil, fmt.Errorf("Fn::Sub: unterminated ${ in %q", text)
		}
		name := text[i+2 : i+j]
		text = text[i+j+1:]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		var s string
		var err error
		switch v, ok := vars[name]; {
		case ok:
			s, err = e.evalString(v)
		case strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::"):
			res, attr, _ := strings.Cut(name, ".")
			s, err = e.evalString(map[string]any{"Fn::GetAtt": []any{res, attr}})
		default:
			s, err = e.evalString(map[string]any{"Ref": name})
		}
		if err != nil {
			return nil, fmt.Errorf("Fn::Sub ${%s}: %w", name, err)
		}
		b.WriteString(s)
	}
}

// refsIn lists the resources that v refers to through Ref, Fn::GetAtt or
// Fn::Sub, so that resources can be created after those they depend on.
func refsIn(t *Template, v any) []string {
	seen := map[string]bool{}
	var walk func(any)
	addSub := func(text string) {
		for {
			i := strings.Index(text, "${")
			if i < 0 {
				return
			}
			j := strings.Index(text[i:], "}")
			if j < 0 {
				return
			}
			name := text[i+2 : i+j]
			text = text[i+j+1:]
			if res, _, _ := strings.Cut(name, "."); !strings.HasPrefix(name, "!") {
				if _, ok := t.Resources[res]; ok {
					seen[res] = true
				}
			}
		}
	}
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, arg := range x {
				switch k {
				case "Ref":
					if s, ok := arg.(string); ok {
						if _, ok := t.Resources[s]; ok {
							seen[s] = true
						}
					}
				case "Fn::GetAtt":
					switch a := arg.(type) {
					case []any:
						if len(a) > 0 {
							if s, ok := a[0].(string); ok {
								seen[s] = true
							}
						}
					case string:
						s, _, _ := strings.Cut(a, ".")
						seen[s] = true
					}
				case "Fn::Sub":
					switch a := arg.(type) {
					case string:
						addSub(a)
					case []any:
						if len(a) > 0 {
							if s, ok := a[0].(string); ok {
								addSub(s)
							}
						}
						if len(a) > 1 {
							walk(a[1])
						}
					}
				default:
					walk(arg)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// toInt reads an evaluated scalar as an integer.
func toInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case float64:
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int(x), nil
	case string:
		return strconv.Atoi(x)
	}
	return 0, fmt.Errorf("want an integer, got %T", v)
}

// toBool reads an evaluated scalar as a boolean ("true"/"false" included).
func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return strconv.ParseBool(x)
	}
	return false, fmt.Errorf("want a boolean, got %T", v)
}
