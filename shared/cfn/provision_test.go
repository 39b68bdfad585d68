package cfn_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// moto is the emulator every test of this package shares.
var moto *testenv.Server

func TestMain(m *testing.M) {
	s, err := testenv.StartMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	moto = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop moto:", err)
	}
	os.Exit(code)
}

// stackName gives each test its own stack, so tests never share tables.
func stackName() string {
	var b [4]byte
	rand.Read(b[:])
	return "cfn-" + hex.EncodeToString(b[:])
}

func provision(t *testing.T, name string, params map[string]string) *cfn.Stack {
	t.Helper()
	st, err := cfn.Provision(t.Context(), testenv.AWSConfig(moto.Endpoint), loadTemplate(t), cfn.Options{StackName: name, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func queueAttrs(t *testing.T, c *sqs.Client, url string) map[string]string {
	t.Helper()
	out, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes
}

// TestProvision creates the real template twice under one name: the second
// run must succeed and describe the same stack, and the resources must carry
// the schema of shared/dynamo/doc.go and the queue settings of the template.
func TestProvision(t *testing.T) {
	name := stackName()
	first := provision(t, name, nil)
	second := provision(t, name, nil)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second provisioning differs (-first +second):\n%s", diff)
	}

	cfg := testenv.AWSConfig(moto.Endpoint)
	ddb := dynamodb.NewFromConfig(cfg)
	t.Run("tables", func(t *testing.T) {
		if diff := cmp.Diff(map[string]string{"StateTable": name + "-StateTable", "RequestTable": name + "-RequestTable"}, first.Tables); diff != "" {
			t.Errorf("tables (-want +got):\n%s", diff)
		}
		for _, id := range []string{"StateTable", "RequestTable"} {
			ttl, err := ddb.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(first.Tables[id])})
			if err != nil {
				t.Fatal(err)
			}
			d := ttl.TimeToLiveDescription
			if d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "ttl" {
				t.Errorf("%s TTL = %s on %q, want ENABLED on \"ttl\"", id, d.TimeToLiveStatus, aws.ToString(d.AttributeName))
			}
		}
		out, err := ddb.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(first.Tables["StateTable"])})
		if err != nil {
			t.Fatal(err)
		}
		type key struct{ Name, Type string }
		keys := func(ks []ddbtypes.KeySchemaElement) []key {
			var out []key
			for _, k := range ks {
				out = append(out, key{aws.ToString(k.AttributeName), string(k.KeyType)})
			}
			return out
		}
		if diff := cmp.Diff([]key{{"pk", "HASH"}, {"sk", "RANGE"}}, keys(out.Table.KeySchema)); diff != "" {
			t.Errorf("StateTable key (-want +got):\n%s", diff)
		}
		if out.Table.BillingModeSummary == nil || out.Table.BillingModeSummary.BillingMode != ddbtypes.BillingModePayPerRequest {
			t.Errorf("StateTable billing = %+v, want PAY_PER_REQUEST", out.Table.BillingModeSummary)
		}
		if len(out.Table.GlobalSecondaryIndexes) != 1 {
			t.Fatalf("StateTable has %d GSIs, want 1", len(out.Table.GlobalSecondaryIndexes))
		}
		gsi := out.Table.GlobalSecondaryIndexes[0]
		if aws.ToString(gsi.IndexName) != "ExpiryIndex" || gsi.Projection.ProjectionType != ddbtypes.ProjectionTypeKeysOnly {
			t.Errorf("GSI = %s projecting %s, want ExpiryIndex projecting KEYS_ONLY", aws.ToString(gsi.IndexName), gsi.Projection.ProjectionType)
		}
		if diff := cmp.Diff([]key{{"xs", "HASH"}, {"xu", "RANGE"}}, keys(gsi.KeySchema)); diff != "" {
			t.Errorf("ExpiryIndex key (-want +got):\n%s", diff)
		}
		types := map[string]string{}
		for _, a := range out.Table.AttributeDefinitions {
			types[aws.ToString(a.AttributeName)] = string(a.AttributeType)
		}
		if diff := cmp.Diff(map[string]string{"pk": "S", "sk": "S", "xs": "S", "xu": "N"}, types); diff != "" {
			t.Errorf("attribute types (-want +got):\n%s", diff)
		}
	})

	c := sqs.NewFromConfig(cfg)
	t.Run("queues", func(t *testing.T) {
		if len(first.Queues) != 2*len(push.Vendors) {
			t.Errorf("got %d queues, want %d (a queue and a dead-letter queue per vendor)", len(first.Queues), 2*len(push.Vendors))
		}
		for _, v := range push.Vendors {
			id := strings.ToUpper(string(v[:1])) + string(v[1:]) + "Queue"
			dlqID := strings.TrimSuffix(id, "Queue") + "DeadLetterQueue"
			q, dlq := first.Queues[id], first.Queues[dlqID]
			if q.Name != name+"-"+id || q.URL == "" || !strings.HasSuffix(q.ARN, ":"+q.Name) {
				t.Errorf("%s = %+v, want name %s-%s with URL and ARN", id, q, name, id)
				continue
			}
			attrs := queueAttrs(t, c, q.URL)
			if got := attrs["VisibilityTimeout"]; got != "180" {
				t.Errorf("%s VisibilityTimeout = %s, want 180 (6 × 30 s)", id, got)
			}
			var redrive struct {
				DeadLetterTargetArn string `json:"deadLetterTargetArn"`
				MaxReceiveCount     any    `json:"maxReceiveCount"`
			}
			if err := json.Unmarshal([]byte(attrs["RedrivePolicy"]), &redrive); err != nil {
				t.Fatalf("%s RedrivePolicy %q: %v", id, attrs["RedrivePolicy"], err)
			}
			if redrive.DeadLetterTargetArn != dlq.ARN || fmt.Sprint(redrive.MaxReceiveCount) != "5" {
				t.Errorf("%s redrive = %+v, want to %s after 5 receives", id, redrive, dlq.ARN)
			}
			if got := queueAttrs(t, c, dlq.URL)["MessageRetentionPeriod"]; got != "1209600" {
				t.Errorf("%s MessageRetentionPeriod = %s, want 1209600 (14 days)", dlqID, got)
			}
		}
	})

	t.Run("functions", func(t *testing.T) {
		common := map[string]string{
			"STATE_TABLE":   name + "-StateTable",
			"REQUEST_TABLE": name + "-RequestTable",
			"SECRET_PREFIX": "offline-push",
		}
		cleanupEnv := map[string]string{"TOKEN_MAX_AGE_DAYS": "270"}
		for k, v := range common {
			cleanupEnv[k] = v
		}
		for _, tc := range []struct {
			id        string
			dir       string
			env       map[string]string
			timeout   time.Duration
			schedules []string
		}{
			{"DevicesFunction", "functions/devices", common, 25 * time.Second, nil},
			{"SettingsFunction", "functions/settings", common, 25 * time.Second, nil},
			{"CleanupFunction", "functions/cleanup", cleanupEnv, 60 * time.Second, []string{"rate(1 minute)"}},
		} {
			f, ok := first.Functions[tc.id]
			if !ok {
				t.Errorf("no function %s", tc.id)
				continue
			}
			if diff := cmp.Diff(tc.env, first.FunctionEnv(tc.id)); diff != "" {
				t.Errorf("%s env (-want +got):\n%s", tc.id, diff)
			}
			if f.Dir != tc.dir || f.Timeout != tc.timeout || f.MemorySize != 256 {
				t.Errorf("%s: dir %s, timeout %v, memory %d; want %s, %v, 256", tc.id, f.Dir, f.Timeout, f.MemorySize, tc.dir, tc.timeout)
			}
			if diff := cmp.Diff(tc.schedules, f.Schedules); diff != "" {
				t.Errorf("%s schedules (-want +got):\n%s", tc.id, diff)
			}
		}
		// Every function the template declares must have a main where the
		// Makefile's naming rule looks for it, or sam build would fail.
		path, err := cfn.FindTemplate(".")
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Dir(path)
		for id, f := range first.Functions {
			if _, err := os.Stat(filepath.Join(root, f.Dir, "main.go")); err != nil {
				t.Errorf("%s: no main.go in %s: %v", id, f.Dir, err)
			}
		}
		if env := first.FunctionEnv("NoSuchFunction"); env != nil {
			t.Errorf("FunctionEnv of an unknown function = %v, want nil", env)
		}
	})
}

// TestProvisionParams provisions with overrides and then again with other
// values under the same name: existing queues take the new attributes.
func TestProvisionParams(t *testing.T) {
	name := stackName()
	c := sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	for _, tc := range []struct {
		timeout, visibility, schedule, prefix string
	}{
		{"10", "60", "rate(5 minutes)", "p1"},
		{"120", "720", "rate(1 hour)", "p2"},
	} {
		st := provision(t, name, map[string]string{
			"DispatchTimeoutSeconds": tc.timeout, "CleanupSchedule": tc.schedule, "SecretPrefix": tc.prefix,
		})
		if got := queueAttrs(t, c, st.Queues["FcmQueue"].URL)["VisibilityTimeout"]; got != tc.visibility {
			t.Errorf("DispatchTimeoutSeconds=%s: VisibilityTimeout = %s, want %s", tc.timeout, got, tc.visibility)
		}
		if diff := cmp.Diff([]string{tc.schedule}, st.Functions["CleanupFunction"].Schedules); diff != "" {
			t.Errorf("schedules (-want +got):\n%s", diff)
		}
		if got := st.FunctionEnv("SettingsFunction")["SECRET_PREFIX"]; got != tc.prefix {
			t.Errorf("SECRET_PREFIX = %q, want %q", got, tc.prefix)
		}
		if got := st.Parameters["DispatchTimeoutSeconds"]; got != tc.timeout {
			t.Errorf("Parameters[DispatchTimeoutSeconds] = %q, want %q", got, tc.timeout)
		}
	}
}

func TestProvisionRejects(t *testing.T) {
	tmpl := loadTemplate(t)
	for _, tc := range []struct {
		name    string
		opt     cfn.Options
		wantErr string
	}{
		{"timeout not allowed", cfn.Options{StackName: "ok", Params: map[string]string{"DispatchTimeoutSeconds": "7"}}, "not one of"},
		{"unknown parameter", cfn.Options{StackName: "ok", Params: map[string]string{"Nope": "1"}}, "not declared"},
		{"bad stack name", cfn.Options{StackName: "1-bad_name"}, "stack name"},
		{"queue name too long", cfn.Options{StackName: "s" + strings.Repeat("x", 70)}, "longer than 80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			_, err := cfn.Provision(ctx, testenv.AWSConfig(moto.Endpoint), tmpl, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// BenchmarkProvision measures one fresh stack: what testenv.Stack costs
// every test that calls it.
func BenchmarkProvision(b *testing.B) {
	path, err := cfn.FindTemplate(".")
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := cfn.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	cfg := testenv.AWSConfig(moto.Endpoint)
	for b.Loop() {
		if _, err := cfn.Provision(b.Context(), cfg, tmpl, cfn.Options{StackName: stackName()}); err != nil {
			b.Fatal(err)
		}
	}
}
