package cfn_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/httpapi"
)

func loadTemplate(t *testing.T) *cfn.Template {
	t.Helper()
	path, err := cfn.FindTemplate(".")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := cfn.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// TestRoutesMatchRouteTable keeps template.yaml and httpapi.Routes from
// drifting: every route of the table is an HttpApi event of the function its
// Function column names, the devices function also takes $default, and the
// template has no other route.
func TestRoutesMatchRouteTable(t *testing.T) {
	tmpl := loadTemplate(t)
	byDir := map[string]string{}
	for _, id := range tmpl.ResourcesOfType(cfn.TypeFunction) {
		byDir[cfn.FunctionDir(id)] = id
	}
	want := map[string]string{"$default": byDir["functions/devices"]}
	for _, r := range httpapi.Routes {
		fn, ok := byDir["functions/"+r.Function]
		if !ok {
			t.Errorf("route %s %s: the template has no function for %q", r.Method, r.Pattern, r.Function)
			continue
		}
		want[r.Method+" "+r.Pattern] = fn
	}
	got, err := tmpl.HTTPRoutes(nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("template routes (-route table +template):\n%s", diff)
	}
}

// TestVisibilityTimeouts checks the mapping that stands in for arithmetic:
// each allowed DispatchTimeoutSeconds has a row, and the row is 6 times it.
func TestVisibilityTimeouts(t *testing.T) {
	tmpl := loadTemplate(t)
	p, ok := tmpl.Parameters["DispatchTimeoutSeconds"]
	if !ok {
		t.Fatal("no parameter DispatchTimeoutSeconds")
	}
	rows := tmpl.Mappings["VisibilityTimeouts"]
	if len(rows) != len(p.AllowedValues) {
		t.Errorf("VisibilityTimeouts has %d rows, DispatchTimeoutSeconds allows %d values", len(rows), len(p.AllowedValues))
	}
	for _, v := range p.AllowedValues {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("allowed value %q: %v", v, err)
		}
		got := fmt.Sprint(rows[v]["Seconds"])
		if want := strconv.Itoa(6 * n); got != want {
			t.Errorf("VisibilityTimeouts[%s].Seconds = %s, want %s", v, got, want)
		}
	}
}
