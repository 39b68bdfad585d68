package httpapi_test

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/push"
)

// openAPIPath is the public contract for tools, kept at the repository root.
const openAPIPath = "../../openapi.yaml"

// The parts of an OpenAPI 3.0 document the agreement test reads.
type openAPIDoc struct {
	OpenAPI    string                          `yaml:"openapi"`
	Security   []map[string][]string           `yaml:"security"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type string `yaml:"type"`
			In   string `yaml:"in"`
			Name string `yaml:"name"`
		} `yaml:"securitySchemes"`
		Parameters map[string]openAPIParam `yaml:"parameters"`
		Schemas    map[string]struct {
			Enum []string `yaml:"enum"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

type openAPIParam struct {
	Ref      string `yaml:"$ref"`
	Name     string `yaml:"name"`
	In       string `yaml:"in"`
	Required bool   `yaml:"required"`
}

type openAPIOperation struct {
	OperationID string                 `yaml:"operationId"`
	Security    *[]map[string][]string `yaml:"security"`
	MaxBody     int64                  `yaml:"x-max-body-bytes"`
	Parameters  []openAPIParam         `yaml:"parameters"`
	Responses   map[string]yaml.Node   `yaml:"responses"`
}

// httpMethods are the keys of an OpenAPI path item that name operations;
// the others (parameters, summary, …) describe the path itself.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadOpenAPI reads openapi.yaml and returns the document and its operations
// keyed by "METHOD pattern".
func loadOpenAPI(t *testing.T) (*openAPIDoc, map[string]openAPIOperation, map[string][]openAPIParam) {
	t.Helper()
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatalf("read %s: %v", openAPIPath, err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s: %v", openAPIPath, err)
	}
	ops := map[string]openAPIOperation{}
	pathParams := map[string][]openAPIParam{}
	for pattern, item := range doc.Paths {
		for key, node := range item {
			switch {
			case key == "parameters":
				var ps []openAPIParam
				if err := node.Decode(&ps); err != nil {
					t.Fatalf("%s parameters: %v", pattern, err)
				}
				pathParams[pattern] = ps
			case slices.Contains(httpMethods, key):
				var op openAPIOperation
				if err := node.Decode(&op); err != nil {
					t.Fatalf("%s %s: %v", key, pattern, err)
				}
				ops[strings.ToUpper(key)+" "+pattern] = op
			}
		}
	}
	return &doc, ops, pathParams
}

func routeKey(r httpapi.Route) string { return r.Method + " " + r.Pattern }

// TestOpenAPIMatchesRoutes keeps openapi.yaml and the route table from
// drifting apart: the same paths and methods, the same names, body limits,
// path parameters and authentication.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, ops, pathParams := loadOpenAPI(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}

	var want, got []string
	for _, r := range httpapi.Routes {
		want = append(want, routeKey(r))
	}
	for k := range ops {
		got = append(got, k)
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("openapi.yaml operations differ from httpapi.Routes (-routes +openapi):\n%s", diff)
	}

	paramRE := regexp.MustCompile(`\{([^}]+)\}`)
	for _, r := range httpapi.Routes {
		t.Run(r.Name, func(t *testing.T) {
			op := ops[routeKey(r)]
			if op.OperationID != r.Name {
				t.Errorf("operationId = %q, want the route name %q", op.OperationID, r.Name)
			}
			if op.MaxBody != r.MaxBody {
				t.Errorf("x-max-body-bytes = %d, want %d", op.MaxBody, r.MaxBody)
			}

			var wantParams []string
			for _, m := range paramRE.FindAllStringSubmatch(r.Pattern, -1) {
				wantParams = append(wantParams, m[1])
			}
			var gotParams []string
			for _, p := range append(slices.Clone(pathParams[r.Pattern]), op.Parameters...) {
				if p.Ref != "" {
					name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
					c, found := doc.Components.Parameters[name]
					if !ok || !found {
						t.Errorf("parameter $ref %q resolves to nothing", p.Ref)
						continue
					}
					p = c
				}
				if p.In != "path" {
					continue
				}
				if !p.Required {
					t.Errorf("path parameter %q is not marked required", p.Name)
				}
				gotParams = append(gotParams, p.Name)
			}
			sort.Strings(wantParams)
			sort.Strings(gotParams)
			if diff := cmp.Diff(wantParams, gotParams); diff != "" {
				t.Errorf("path parameters (-pattern +openapi):\n%s", diff)
			}

			switch {
			case r.Public && (op.Security == nil || len(*op.Security) != 0):
				t.Errorf("public route: security = %v, want [] (no signature)", op.Security)
			case !r.Public && op.Security != nil:
				t.Errorf("signed route overrides the document's security with %v", *op.Security)
			}

			statuses := []string{"404", "405", "413", "500"}
			if !r.Public {
				statuses = append(statuses, "401")
			}
			if len(wantParams) > 0 {
				statuses = append(statuses, "400") // a bad path id
			}
			for _, s := range statuses {
				if _, ok := op.Responses[s]; !ok {
					t.Errorf("status %s is not documented", s)
				}
			}
		})
	}
}

// TestOpenAPISecuritySchemes checks that the three signature headers of
// API.md §2 are the document's default security requirement.
func TestOpenAPISecuritySchemes(t *testing.T) {
	doc, _, _ := loadOpenAPI(t)
	headers := map[string]string{}
	for _, req := range doc.Security {
		for name := range req {
			s, ok := doc.Components.SecuritySchemes[name]
			if !ok {
				t.Errorf("security names the undefined scheme %q", name)
				continue
			}
			if s.Type != "apiKey" || s.In != "header" {
				t.Errorf("scheme %q is %s in %s, want apiKey in header", name, s.Type, s.In)
			}
			headers[s.Name] = name
		}
	}
	var got []string
	for h := range headers {
		got = append(got, h)
	}
	sort.Strings(got)
	want := []string{httpapi.HeaderNonce, httpapi.HeaderSignature, httpapi.HeaderTimestamp}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signature headers (-want +got):\n%s", diff)
	}
}

// TestOpenAPIEnums checks the closed sets that the document spells out
// against the ones the code holds.
func TestOpenAPIEnums(t *testing.T) {
	doc, _, _ := loadOpenAPI(t)
	schemas := doc.Components.Schemas

	var vendors []string
	for _, v := range push.Vendors {
		vendors = append(vendors, string(v))
	}
	codes := []string{
		httpapi.CodeInvalidArgument, httpapi.CodeUnknownCert, httpapi.CodeUnauthenticated, httpapi.CodeNotFound,
		httpapi.CodeMethodNotAllowed, httpapi.CodeConflict, httpapi.CodePayloadTooLarge, httpapi.CodeInternal,
	}
	tests := []struct {
		schema string
		want   []string
	}{
		{"Vendor", vendors},
		{"Platform", []string{"ios", "android", "pc", "mac", "web", "other"}},
		{"RemindType", []string{string(push.RemindAll), string(push.RemindAt), string(push.RemindNone)}},
		{"MultiDevicePolicy", []string{string(push.AnyOffline), string(push.AllOffline)}},
		{"ConversationType", []string{string(push.Peer), string(push.Group), string(push.Chatroom)}},
		{"Environment", []string{string(push.Production), string(push.Sandbox)}},
	}
	for _, tt := range tests {
		s, ok := schemas[tt.schema]
		if !ok {
			t.Errorf("schema %s is missing", tt.schema)
			continue
		}
		if diff := cmp.Diff(tt.want, s.Enum); diff != "" {
			t.Errorf("schema %s enum (-code +openapi):\n%s", tt.schema, diff)
		}
	}

	// The error codes sit in a nested schema; read it by path.
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var nested struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Error struct {
							Properties struct {
								Code struct {
									Enum []string `yaml:"enum"`
								} `yaml:"code"`
							} `yaml:"properties"`
						} `yaml:"error"`
					} `yaml:"properties"`
				} `yaml:"Error"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &nested); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(codes, nested.Components.Schemas.Error.Properties.Error.Properties.Code.Enum); diff != "" {
		t.Errorf("error codes (-httpapi +openapi):\n%s", diff)
	}

	// Reason codes belong to the messages route; once it is documented its
	// enum must be exactly push.Reasons, in order.
	if s, ok := schemas["Reason"]; ok {
		var reasons []string
		for _, r := range push.Reasons {
			reasons = append(reasons, string(r))
		}
		if diff := cmp.Diff(reasons, s.Enum); diff != "" {
			t.Errorf("reason codes (-push.Reasons +openapi):\n%s", diff)
		}
	}
}
