package cfn

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sample exercises every short form, Globals merging and event kinds that
// the reader supports.
const sample = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  Prefix:
    Type: String
    Default: demo
    AllowedPattern: "[a-z]+"
  Timeout:
    Type: Number
    Default: 30
    AllowedValues: [10, 30]
  Days:
    Type: Number
    Default: 5
    MinValue: 1
    MaxValue: 9
  Names:
    Type: CommaDelimitedList
    Default: "a, b ,c"
  Stage:
    Type: String
    Default: dev
Mappings:
  Visibility:
    "10": {Seconds: 60}
    "30": {Seconds: 180}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition NotProd, !Equals [a, a]]
  Either: !Or [!Condition IsProd, !Condition Both]
Globals:
  Function:
    Timeout: 20
    Layers: [g]
    Environment:
      Variables:
        TABLE: !Ref Table
        PREFIX: !Ref Prefix
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {}
  ProdOnly:
    Type: AWS::DynamoDB::Table
    Condition: IsProd
    Properties: {}
  Dlq:
    Type: AWS::SQS::Queue
  Q:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: !FindInMap [Visibility, !Ref Timeout, Seconds]
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 5
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 60
      Layers: [l]
      Environment:
        Variables:
          QUEUE: !Ref Q
          ARN: !Sub "${Q.Arn}/x/${AWS::Region}/${!Literal}"
          JOINED: !Join ["-", [!Ref Prefix, !Select [1, !Ref Names]]]
          SPLIT: !Select [2, !Split [",", "x,y,z"]]
          CHOSEN: !If [IsProd, prod-value, !Ref Stage]
          GONE: !If [IsProd, x, !Ref AWS::NoValue]
          B64: !Base64 hi
          BOTH: !If [Either, yes, no]
          LONG: {"Fn::Sub": ["${A}-${Prefix}", {A: !Ref Timeout}]}
      Events:
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(2 minutes)
        Off:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
            Enabled: false
        Drain:
          Type: SQS
          Properties:
            Queue: !GetAtt Q.Arn
            BatchSize: 7
            MaximumBatchingWindowInSeconds: 2
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 4
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get:
          Type: HttpApi
          Properties:
            Path: /v1/things/{id}
            Method: get
        Fallback:
          Type: HttpApi
`

// fakeEvaluator resolves resources to recognizable fake values.
func fakeEvaluator(t *testing.T, tmpl *Template, params map[string]string) *evaluator {
	t.Helper()
	p, err := resolveParams(tmpl, params)
	if err != nil {
		t.Fatal(err)
	}
	return &evaluator{
		t: tmpl, params: p, pseudo: pseudoParams("s", "eu-west-1"),
		conditions: map[string]bool{}, inProgress: map[string]bool{},
		ref: func(id string) (string, error) { return "ref:" + id, nil },
		getAtt: func(id, attr string) (string, error) {
			return "arn:" + id + "." + attr, nil
		},
	}
}

func TestEvalFunction(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	e := fakeEvaluator(t, tmpl, map[string]string{"Prefix": "abc"})
	got, err := e.function(tmpl.Resources["WorkerFunction"], map[string]string{"arn:Q.Arn": "Q"})
	if err != nil {
		t.Fatal(err)
	}
	want := Function{
		LogicalID: "WorkerFunction",
		Dir:       "functions/worker",
		Env: map[string]string{
			"TABLE":  "ref:Table",
			"PREFIX": "abc",
			"QUEUE":  "ref:Q",
			"ARN":    "arn:Q.Arn/x/eu-west-1/${Literal}",
			"JOINED": "abc-b",
			"SPLIT":  "z",
			"CHOSEN": "dev",
			"B64":    "aGk=",
			"BOTH":   "yes",
			"LONG":   "30-abc",
		},
		Timeout:    60 * time.Second,
		MemorySize: defaultMemorySize,
		Schedules:  []string{"rate(2 minutes)"},
		SQS: []SQSEvent{{
			Queue: "Q", BatchSize: 7, MaximumBatchingWindow: 2 * time.Second,
			FunctionResponseTypes: []string{"ReportBatchItemFailures"}, MaximumConcurrency: 4,
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("function (-want +got):\n%s", diff)
	}
}

func TestEvalSubVariableIsNotAResource(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	// ${Var} names neither a parameter nor a resource: a real evaluator
	// refuses it rather than inventing a value.
	e := fakeEvaluator(t, tmpl, nil)
	_, err = e.eval(map[string]any{"Fn::Sub": "${Var}"})
	if err == nil || !strings.Contains(err.Error(), "Var") {
		t.Errorf("eval ${Var}: got error %v, want one naming Var", err)
	}
}

func TestEvalQueueProperties(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		timeout string
		want    int
	}{{"10", 60}, {"30", 180}} {
		e := fakeEvaluator(t, tmpl, map[string]string{"Timeout": tc.timeout})
		got, err := e.eval(tmpl.Resources["Q"].Properties)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"VisibilityTimeout": tc.want,
			"RedrivePolicy":     map[string]any{"deadLetterTargetArn": "arn:Dlq.Arn", "maxReceiveCount": 5},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Timeout=%s: queue properties (-want +got):\n%s", tc.timeout, diff)
		}
	}
}

func TestHTTPRoutes(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.HTTPRoutes(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"GET /v1/things/{id}": "ApiFunction", "$default": "ApiFunction"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

func TestHTTPRoutesDuplicate(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Resources["WorkerFunction"].Properties["Events"] = map[string]any{"Again": map[string]any{
		"Type": "HttpApi", "Properties": map[string]any{"Path": "/v1/things/{id}", "Method": "GET"},
	}}
	if _, err := tmpl.HTTPRoutes(nil); err == nil || !strings.Contains(err.Error(), "served by both") {
		t.Errorf("HTTPRoutes with a duplicate route: got %v, want a 'served by both' error", err)
	}
}

func TestGlobalsMerge(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	got := tmpl.functionProps(tmpl.Resources["WorkerFunction"])
	// Scalars: the function wins. Lists: globals first. Maps: merged.
	if got["Timeout"] != 60 {
		t.Errorf("Timeout = %v, want the function's 60", got["Timeout"])
	}
	if diff := cmp.Diff([]any{"g", "l"}, got["Layers"]); diff != "" {
		t.Errorf("Layers (-want +got):\n%s", diff)
	}
	vars := got["Environment"].(map[string]any)["Variables"].(map[string]any)
	for _, k := range []string{"TABLE", "PREFIX", "QUEUE"} {
		if _, ok := vars[k]; !ok {
			t.Errorf("merged Environment.Variables lacks %s: %v", k, vars)
		}
	}
	api := tmpl.functionProps(tmpl.Resources["ApiFunction"])
	if api["Timeout"] != 20 {
		t.Errorf("ApiFunction Timeout = %v, want the global 20", api["Timeout"])
	}
}

func TestResourceConditions(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stage string
		want  bool
	}{{"dev", false}, {"prod", true}} {
		e := fakeEvaluator(t, tmpl, map[string]string{"Stage": tc.stage})
		got, err := e.resourceEnabled(tmpl.Resources["ProdOnly"])
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Stage=%s: ProdOnly enabled = %v, want %v", tc.stage, got, tc.want)
		}
	}
}

func TestResolveParams(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		params  map[string]string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"allowed value", map[string]string{"Timeout": "10"}, ""},
		{"value not allowed", map[string]string{"Timeout": "11"}, "not one of"},
		{"pattern", map[string]string{"Prefix": "ABC"}, "does not match"},
		{"below minimum", map[string]string{"Days": "0"}, "below"},
		{"above maximum", map[string]string{"Days": "10"}, "above"},
		{"not a number", map[string]string{"Days": "x"}, "not a number"},
		{"undeclared", map[string]string{"Nope": "1"}, "not declared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolveParams(tmpl, tc.params)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCreationOrder(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	got, err := creationOrder(tmpl, []string{"Q", "Table", "Dlq"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Dlq", "Q", "Table"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}

	cyclic, err := Parse([]byte(`
Resources:
  A: {Type: AWS::SQS::Queue, Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt B.Arn}}}
  B: {Type: AWS::SQS::Queue, Properties: {RedrivePolicy: {deadLetterTargetArn: !Sub "${A.Arn}"}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creationOrder(cyclic, []string{"A", "B"}); err == nil {
		t.Error("creationOrder of a cycle: got no error")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, wantErr string
	}{
		{"empty", "", "empty template"},
		{"no resources", "Parameters: {}", "Resources"},
		{"resource without type", "Resources: {A: {Properties: {}}}", "no Type"},
		{"parameter without type", "Parameters: {P: {Default: 1}}\nResources: {A: {Type: X}}", "no Type"},
		{"bad getatt", "Resources: {A: {Type: X, Properties: {V: !GetAtt nodot}}}", "Resource.Attribute"},
		{"not yaml", "Resources: [", "parse YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestUnsupportedIntrinsic(t *testing.T) {
	tmpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	e := fakeEvaluator(t, tmpl, nil)
	if _, err := e.eval(map[string]any{"Fn::ImportValue": "x"}); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("Fn::ImportValue: got %v, want 'not supported'", err)
	}
}

func TestFunctionDir(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"DevicesFunction", "functions/devices"},
		{"CleanupFunction", "functions/cleanup"},
		{"DispatchApnsFunction", "functions/dispatch-apns"},
		{"Ingest", "functions/ingest"},
	} {
		if got := FunctionDir(tc.id); got != tc.want {
			t.Errorf("FunctionDir(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}
