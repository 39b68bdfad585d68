package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cfn"
)

// templateRoutes is the route table of the real template.yaml.
func templateRoutes(t *testing.T) *routeTable {
	t.Helper()
	path, err := cfn.FindTemplate(".")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := cfn.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	byFunction, err := tmpl.HTTPRoutes(nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &cfn.Stack{Functions: map[string]cfn.Function{}}
	for key, id := range byFunction {
		f := st.Functions[id]
		f.LogicalID = id
		f.HTTPRoutes = append(f.HTTPRoutes, key)
		st.Functions[id] = f
	}
	rt, err := newRouteTable(st)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestLookupTemplateRoutes(t *testing.T) {
	rt := templateRoutes(t)
	for _, tc := range []struct {
		method, path string
		want         match
	}{
		{"GET", "/v1/health", match{routeKey: "GET /v1/health", function: "DevicesFunction", params: map[string]string{}}},
		{"PUT", "/v1/apps/demo/users/u1/devices/d1", match{
			routeKey: "PUT /v1/apps/{app}/users/{user}/devices/{device}", function: "DevicesFunction",
			params: map[string]string{"app": "demo", "user": "u1", "device": "d1"},
		}},
		{"PATCH", "/v1/apps/demo/users/a%40b/conversations/group/g~1/settings", match{
			routeKey: "PATCH /v1/apps/{app}/users/{user}/conversations/{type}/{conversation}/settings", function: "SettingsFunction",
			params: map[string]string{"app": "demo", "user": "a@b", "type": "group", "conversation": "g~1"},
		}},
		{"POST", "/v1/apps/demo/users/u1/conversations/batch-get", match{
			routeKey: "POST /v1/apps/{app}/users/{user}/conversations/batch-get", function: "SettingsFunction",
			params: map[string]string{"app": "demo", "user": "u1"},
		}},
		// A known path with a method no route has, an unknown path, an
		// empty segment and a trailing slash all go to $default, whose
		// router answers 405 or 404.
		{"GET", "/v1/apps/demo/users/u1/devices/d1", match{routeKey: "$default", function: "DevicesFunction"}},
		{"GET", "/v2/nothing", match{routeKey: "$default", function: "DevicesFunction"}},
		{"GET", "/v1/apps/demo/users//devices", match{routeKey: "$default", function: "DevicesFunction"}},
		{"GET", "/v1/health/", match{routeKey: "$default", function: "DevicesFunction"}},
	} {
		got, ok := rt.lookup(tc.method, tc.path)
		if !ok {
			t.Errorf("%s %s: no match, want %+v", tc.method, tc.path, tc.want)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(match{})); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", tc.method, tc.path, diff)
		}
	}
}

func TestLookupSpecificity(t *testing.T) {
	st := &cfn.Stack{Functions: map[string]cfn.Function{
		"Param":   {HTTPRoutes: []string{"GET /a/{x}"}},
		"Literal": {HTTPRoutes: []string{"GET /a/b"}},
		"Any":     {HTTPRoutes: []string{"ANY /a/b", "ANY /c"}},
		"Greedy":  {HTTPRoutes: []string{"GET /g/{rest+}", "GET /g/x/y"}},
	}}
	rt, err := newRouteTable(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		wantKey      string
		wantParams   map[string]string
	}{
		{"GET", "/a/b", "GET /a/b", map[string]string{}},  // literal over {x}, exact method over ANY
		{"POST", "/a/b", "ANY /a/b", map[string]string{}}, // only ANY takes POST
		{"GET", "/a/z", "GET /a/{x}", map[string]string{"x": "z"}},
		{"DELETE", "/c", "ANY /c", map[string]string{}},
		{"GET", "/g/x/y", "GET /g/x/y", map[string]string{}}, // literal over greedy
		{"GET", "/g/x/y/z", "GET /g/{rest+}", map[string]string{"rest": "x/y/z"}},
	} {
		got, ok := rt.lookup(tc.method, tc.path)
		if !ok || got.routeKey != tc.wantKey || !cmp.Equal(got.params, tc.wantParams) {
			t.Errorf("%s %s = %+v (matched %v), want %s %v", tc.method, tc.path, got, ok, tc.wantKey, tc.wantParams)
		}
	}
	// Without a $default route an unmatched request matches nothing: API
	// Gateway answers 404 itself.
	if got, ok := rt.lookup("GET", "/nothing"); ok {
		t.Errorf("GET /nothing matched %+v, want no match", got)
	}
}

func TestRouteTableErrors(t *testing.T) {
	for name, fns := range map[string]map[string]cfn.Function{
		"two defaults": {"A": {HTTPRoutes: []string{"$default"}}, "B": {HTTPRoutes: []string{"$default"}}},
		"bad key":      {"A": {HTTPRoutes: []string{"GET v1/x"}}},
	} {
		if _, err := newRouteTable(&cfn.Stack{Functions: fns}); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}
