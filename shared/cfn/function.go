package cfn

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
)

// Function is what the local stack needs to run one AWS::Serverless::Function
// of the template, with SAM's Globals applied and intrinsics resolved.
type Function struct {
	LogicalID string
	// Dir is the main package of the function relative to the module root,
	// by the naming rule of FunctionDir (the Makefile builds the same one).
	Dir string
	// Env is the function's resolved environment (Globals merged).
	Env        map[string]string
	Timeout    time.Duration
	MemorySize int
	// HTTPRoutes are the HTTP API route keys the function serves:
	// "PUT /v1/apps/{app}/users/{user}/devices/{device}", or "$default".
	HTTPRoutes []string
	// Schedules are the schedule expressions of its Schedule events, e.g.
	// "rate(1 minute)"; disabled schedules are left out.
	Schedules []string
	// SQS are its SQS event sources.
	SQS []SQSEvent
}

// SQSEvent is an SQS event source of a function, as the local stack's poller
// must emulate it.
type SQSEvent struct {
	// Queue is the logical id of the queue.
	Queue                 string
	BatchSize             int
	MaximumBatchingWindow time.Duration
	// FunctionResponseTypes holds "ReportBatchItemFailures" when the
	// function reports partial batch failures.
	FunctionResponseTypes []string
	// MaximumConcurrency is ScalingConfig.MaximumConcurrency, 0 when unset.
	MaximumConcurrency int
}

// SAM's defaults for properties a function leaves out.
const (
	defaultTimeout    = 3 * time.Second
	defaultMemorySize = 128
	defaultBatchSize  = 10
)

// FunctionDir returns the main package of a function by the project's naming
// rule: the logical id without its "Function" suffix, CamelCase turned into
// kebab-case, under functions/. DevicesFunction → functions/devices,
// DispatchApnsFunction → functions/dispatch-apns. The Makefile's
// build-<LogicalId> targets apply the same rule.
func FunctionDir(logicalID string) string {
	name := strings.TrimSuffix(logicalID, "Function")
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return "functions/" + b.String()
}

// functionProps returns the function's properties with SAM's Globals.Function
// merged in: the function's own scalars win, maps merge key by key, lists
// are concatenated (globals first).
func (t *Template) functionProps(r Resource) map[string]any {
	g, _ := t.Globals["Function"].(map[string]any)
	merged, _ := mergeGlobals(g, r.Properties).(map[string]any)
	if merged == nil {
		merged = map[string]any{}
	}
	return merged
}

func mergeGlobals(global, local any) any {
	if global == nil {
		return local
	}
	if local == nil {
		return global
	}
	gm, gok := global.(map[string]any)
	lm, lok := local.(map[string]any)
	if gok && lok && !isIntrinsic(gm) && !isIntrinsic(lm) {
		out := make(map[string]any, len(gm)+len(lm))
		for k, v := range gm {
			out[k] = v
		}
		for k, v := range lm {
			out[k] = mergeGlobals(gm[k], v)
		}
		return out
	}
	gl, gok := global.([]any)
	ll, lok := local.([]any)
	if gok && lok {
		return append(append([]any{}, gl...), ll...)
	}
	return local
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// HTTPRoutes returns every HTTP API route key of the template and the logical
// id of the function that serves it. It needs no AWS and resolves only the
// events' Path and Method, so tests can compare the template with the route
// table cheaply. Two functions claiming one route key is an error.
func (t *Template) HTTPRoutes(params map[string]string) (map[string]string, error) {
	e, err := t.offlineEvaluator(params)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, id := range t.ResourcesOfType(TypeFunction) {
		ok, err := e.resourceEnabled(t.Resources[id])
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		routes, err := e.httpRoutes(t.functionProps(t.Resources[id]))
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", id, err)
		}
		for _, rk := range routes {
			if other, dup := out[rk]; dup {
				return nil, fmt.Errorf("route %q is served by both %s and %s", rk, other, id)
			}
			out[rk] = id
		}
	}
	return out, nil
}

// offlineEvaluator evaluates what needs no deployed resource.
func (t *Template) offlineEvaluator(params map[string]string) (*evaluator, error) {
	p, err := resolveParams(t, params)
	if err != nil {
		return nil, err
	}
	noResources := func(id string) (string, error) {
		return "", fmt.Errorf("resource %s is not known before provisioning", id)
	}
	return &evaluator{
		t: t, params: p, pseudo: pseudoParams("offline", defaultRegion),
		conditions: map[string]bool{}, inProgress: map[string]bool{},
		ref:    noResources,
		getAtt: func(id, _ string) (string, error) { return noResources(id) },
	}, nil
}

// resourceEnabled evaluates a resource's Condition.
func (e *evaluator) resourceEnabled(r Resource) (bool, error) {
	if r.Condition == "" {
		return true, nil
	}
	ok, err := e.condition(r.Condition)
	if err != nil {
		return false, fmt.Errorf("resource %s: %w", r.LogicalID, err)
	}
	return ok, nil
}

// events returns the function's events sorted by name, each as its type and
// unevaluated properties.
func events(props map[string]any) ([]string, map[string]map[string]any, error) {
	raw, _ := props["Events"].(map[string]any)
	names := make([]string, 0, len(raw))
	out := make(map[string]map[string]any, len(raw))
	for name, v := range raw {
		ev, ok := v.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("event %s is not a mapping", name)
		}
		names = append(names, name)
		out[name] = ev
	}
	sort.Strings(names)
	return names, out, nil
}

func (e *evaluator) httpRoutes(props map[string]any) ([]string, error) {
	names, evs, err := events(props)
	if err != nil {
		return nil, err
	}
	var routes []string
	for _, name := range names {
		if evs[name]["Type"] != "HttpApi" {
			continue
		}
		p, _ := evs[name]["Properties"].(map[string]any)
		path, method := "$default", "ANY"
		if v, ok := p["Path"]; ok {
			if path, err = e.evalString(v); err != nil {
				return nil, fmt.Errorf("event %s Path: %w", name, err)
			}
		}
		if v, ok := p["Method"]; ok {
			if method, err = e.evalString(v); err != nil {
				return nil, fmt.Errorf("event %s Method: %w", name, err)
			}
		}
		method = strings.ToUpper(method)
		if path == "$default" {
			if method != "ANY" {
				return nil, fmt.Errorf("event %s: the $default route takes Method ANY", name)
			}
			routes = append(routes, "$default")
			continue
		}
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("event %s: path %q does not start with /", name, path)
		}
		routes = append(routes, method+" "+path)
	}
	return routes, nil
}

// function resolves one function of the template; e must know the
// provisioned resources, since the environment refers to them.
func (e *evaluator) function(r Resource, queueByARN map[string]string) (Function, error) {
	props := e.t.functionProps(r)
	f := Function{
		LogicalID:  r.LogicalID,
		Dir:        FunctionDir(r.LogicalID),
		Env:        map[string]string{},
		Timeout:    defaultTimeout,
		MemorySize: defaultMemorySize,
	}
	if env, ok := props["Environment"].(map[string]any); ok {
		vars, err := e.eval(env["Variables"])
		if err != nil {
			return Function{}, fmt.Errorf("Environment: %w", err)
		}
		m, _ := vars.(map[string]any)
		for k, v := range m {
			s, err := scalarString(v)
			if err != nil {
				return Function{}, fmt.Errorf("Environment %s: %w", k, err)
			}
			f.Env[k] = s
		}
	}
	if v, ok := props["Timeout"]; ok {
		n, err := e.evalInt(v)
		if err != nil {
			return Function{}, fmt.Errorf("Timeout: %w", err)
		}
		f.Timeout = time.Duration(n) * time.Second
	}
	if v, ok := props["MemorySize"]; ok {
		n, err := e.evalInt(v)
		if err != nil {
			return Function{}, fmt.Errorf("MemorySize: %w", err)
		}
		f.MemorySize = n
	}
	routes, err := e.httpRoutes(props)
	if err != nil {
		return Function{}, err
	}
	f.HTTPRoutes = routes

	names, evs, err := events(props)
	if err != nil {
		return Function{}, err
	}
	for _, name := range names {
		typ, _ := evs[name]["Type"].(string)
		if typ != "Schedule" && typ != "ScheduleV2" && typ != "SQS" {
			continue
		}
		raw, _ := evs[name]["Properties"].(map[string]any)
		pv, err := e.eval(raw)
		if err != nil {
			return Function{}, fmt.Errorf("event %s: %w", name, err)
		}
		p, _ := pv.(map[string]any)
		switch typ {
		case "Schedule", "ScheduleV2":
			key := "Schedule"
			if typ == "ScheduleV2" {
				key = "ScheduleExpression"
			}
			expr, err := scalarString(p[key])
			if err != nil {
				return Function{}, fmt.Errorf("event %s %s: %w", name, key, err)
			}
			if enabled, err := scheduleEnabled(p); err != nil {
				return Function{}, fmt.Errorf("event %s: %w", name, err)
			} else if enabled {
				f.Schedules = append(f.Schedules, expr)
			}
		case "SQS":
			ev, err := sqsEvent(p, queueByARN)
			if err != nil {
				return Function{}, fmt.Errorf("event %s: %w", name, err)
			}
			f.SQS = append(f.SQS, ev)
		}
	}
	return f, nil
}

func (e *evaluator) evalInt(v any) (int, error) {
	r, err := e.eval(v)
	if err != nil {
		return 0, err
	}
	return toInt(r)
}

func scheduleEnabled(p map[string]any) (bool, error) {
	if v, ok := p["Enabled"]; ok {
		return toBool(v)
	}
	if v, ok := p["State"]; ok {
		return v == "ENABLED", nil
	}
	return true, nil
}

func sqsEvent(p map[string]any, queueByARN map[string]string) (SQSEvent, error) {
	arn, err := scalarString(p["Queue"])
	if err != nil {
		return SQSEvent{}, fmt.Errorf("Queue: %w", err)
	}
	ev := SQSEvent{Queue: queueByARN[arn], BatchSize: defaultBatchSize}
	if ev.Queue == "" {
		return SQSEvent{}, fmt.Errorf("queue %s is not a queue of this template", arn)
	}
	if v, ok := p["BatchSize"]; ok {
		if ev.BatchSize, err = toInt(v); err != nil {
			return SQSEvent{}, fmt.Errorf("BatchSize: %w", err)
		}
	}
	if v, ok := p["MaximumBatchingWindowInSeconds"]; ok {
		n, err := toInt(v)
		if err != nil {
			return SQSEvent{}, fmt.Errorf("MaximumBatchingWindowInSeconds: %w", err)
		}
		ev.MaximumBatchingWindow = time.Duration(n) * time.Second
	}
	if v, ok := p["FunctionResponseTypes"].([]any); ok {
		for _, t := range v {
			s, err := scalarString(t)
			if err != nil {
				return SQSEvent{}, fmt.Errorf("FunctionResponseTypes: %w", err)
			}
			ev.FunctionResponseTypes = append(ev.FunctionResponseTypes, s)
		}
	}
	if sc, ok := p["ScalingConfig"].(map[string]any); ok {
		if v, ok := sc["MaximumConcurrency"]; ok {
			if ev.MaximumConcurrency, err = toInt(v); err != nil {
				return SQSEvent{}, fmt.Errorf("ScalingConfig.MaximumConcurrency: %w", err)
			}
		}
	}
	return ev, nil
}
