package testenv_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/testenv"
)

// TestStack provisions two stacks into one emulator: each must be complete
// and must share no table, queue or secret prefix with the other.
func TestStack(t *testing.T) {
	moto := testenv.Moto(t)
	a := testenv.Stack(t, moto.Endpoint)
	b := testenv.Stack(t, moto.Endpoint)

	cfg := testenv.AWSConfig(moto.Endpoint)
	ddb := dynamodb.NewFromConfig(cfg)
	q := sqs.NewFromConfig(cfg)
	for _, st := range []*cfn.Stack{a, b} {
		env := st.FunctionEnv("DevicesFunction")
		for _, id := range []string{"StateTable", "RequestTable"} {
			name := st.Tables[id]
			if _, err := ddb.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
				t.Errorf("stack %s: table %s (%s): %v", st.Name, id, name, err)
			}
		}
		if env["STATE_TABLE"] != st.Tables["StateTable"] || env["REQUEST_TABLE"] != st.Tables["RequestTable"] {
			t.Errorf("stack %s: DevicesFunction env %v does not name the stack's tables %v", st.Name, env, st.Tables)
		}
	}
	if _, err := q.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(a.Queues["ApnsQueue"].URL)}); err != nil {
		t.Errorf("ApnsQueue of stack a: %v", err)
	}

	if a.Name == b.Name {
		t.Errorf("both stacks are named %s", a.Name)
	}
	if a.Tables["StateTable"] == b.Tables["StateTable"] || a.Queues["ApnsQueue"].URL == b.Queues["ApnsQueue"].URL {
		t.Errorf("stacks share resources: %v / %v", a.Tables, b.Tables)
	}
	pa, pb := a.FunctionEnv("DevicesFunction")["SECRET_PREFIX"], b.FunctionEnv("DevicesFunction")["SECRET_PREFIX"]
	if pa == "" || pa == pb || pa == "offline-push" {
		t.Errorf("SECRET_PREFIX a=%q b=%q, want two distinct test prefixes", pa, pb)
	}
}
