package testenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// TestProxy runs every proxy case against one moto: starting it is the
// slowest part of the package's tests.
func TestProxy(t *testing.T) {
	moto := Moto(t)
	tests := []struct {
		name string
		run  func(t *testing.T, endpoint string)
	}{
		{"Counts", testCounts},
		{"Throttle", testThrottle},
		{"ThrottleShapes", testThrottleShapes},
		{"SeedRepeats", testSeedRepeats},
		{"UnprocessedKeys", testUnprocessedKeys},
		{"UnprocessedItems", testUnprocessedItems},
		{"PartialBatch", testPartialBatch},
		{"FailAfter", testFailAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, moto.Endpoint) })
	}
}

// tableSeq makes table and queue names unique within the shared moto.
var tableSeq atomic.Int64

// createTable creates a pk/sk table directly in moto, not through a proxy.
func createTable(t *testing.T, endpoint string) string {
	t.Helper()
	name := fmt.Sprintf("proxy-test-%d", tableSeq.Add(1))
	db := dynamodb.NewFromConfig(AWSConfig(endpoint))
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	return name
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

func item(pk, sk, v string) map[string]types.AttributeValue {
	it := key(pk, sk)
	it["v"] = &types.AttributeValueMemberS{Value: v}
	return it
}

// putItems writes n items u0…u(n-1) directly in moto.
func putItems(t *testing.T, endpoint, table string, n int) {
	t.Helper()
	db := dynamodb.NewFromConfig(AWSConfig(endpoint))
	for i := range n {
		_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{
			TableName: aws.String(table),
			Item:      item("u"+strconv.Itoa(i), "tokens", "v"+strconv.Itoa(i)),
		})
		if err != nil {
			t.Fatalf("PutItem: %v", err)
		}
	}
}

// scanCount returns how many items moto holds in table, read directly.
func scanCount(t *testing.T, endpoint, table string) int {
	t.Helper()
	out, err := dynamodb.NewFromConfig(AWSConfig(endpoint)).Scan(context.Background(),
		&dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return int(out.Count)
}

// oneAttempt makes a client give up at the first error, to see the proxy's
// answers undisguised by retries.
func oneAttempt(o *dynamodb.Options) {
	o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 })
}

func testCounts(t *testing.T, endpoint string) {
	ctx := context.Background()
	table := createTable(t, endpoint)
	p := NewProxy(t, endpoint, ProxyOptions{})
	db := dynamodb.NewFromConfig(AWSConfig(p.URL))

	for i := range 2 {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("u"+strconv.Itoa(i), "tokens", "x")}); err != nil {
			t.Fatalf("PutItem: %v", err)
		}
	}
	for _, pk := range []string{"u0", "missing"} {
		if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(pk, "tokens")}); err != nil {
			t.Fatalf("GetItem: %v", err)
		}
	}
	bg, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		table: {Keys: []map[string]types.AttributeValue{key("u0", "tokens"), key("u1", "tokens"), key("missing", "tokens")}},
	}})
	if err != nil {
		t.Fatalf("BatchGetItem: %v", err)
	}
	if got := len(bg.Responses[table]); got != 2 {
		t.Errorf("BatchGetItem returned %d items, want 2", got)
	}
	_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(table), Item: item("u2", "tokens", "x")}},
		{Update: &types.Update{TableName: aws.String(table), Key: key("u0", "tokens"),
			UpdateExpression:          aws.String("SET v = :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "y"}}}},
	}})
	if err != nil {
		t.Fatalf("TransactWriteItems: %v", err)
	}
	if _, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "u2"}},
	}); err != nil {
		t.Fatalf("Query: %v", err)
	}
	// A failed write writes nothing.
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("u0", "tokens", "z"),
		ConditionExpression: aws.String("attribute_not_exists(pk)")}, oneAttempt)
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("conditional PutItem on an existing item = %v, want ConditionalCheckFailedException", err)
	}
	// Requests without X-Amz-Target are forwarded and counted apart.
	resp, err := http.Get(p.URL + "/moto-api/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	want := map[string]OpCount{
		"PutItem":            {Requests: 3, ItemsWritten: 2},
		"GetItem":            {Requests: 2, ItemsRead: 1},
		"BatchGetItem":       {Requests: 1, ItemsRead: 2},
		"TransactWriteItems": {Requests: 1, ItemsWritten: 2},
		"Query":              {Requests: 1, ItemsRead: 1},
		"other":              {Requests: 1},
	}
	if diff := cmp.Diff(want, p.Counts()); diff != "" {
		t.Errorf("Counts() (-want +got):\n%s", diff)
	}

	p.Reset()
	if got := p.Counts(); len(got) != 0 {
		t.Errorf("Counts() after Reset = %v, want none", got)
	}
}

func testThrottle(t *testing.T, endpoint string) {
	ctx := context.Background()
	table := createTable(t, endpoint)
	p := NewProxy(t, endpoint, ProxyOptions{ThrottleRate: 0.3, Seed: 1})
	db := dynamodb.NewFromConfig(AWSConfig(p.URL))
	const n = 100
	for i := range n {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("u"+strconv.Itoa(i), "tokens", "x")})
		if err != nil {
			t.Fatalf("PutItem %d through a throttling proxy: %v", i, err)
		}
	}
	got := p.Counts()["PutItem"]
	if got.Requests != n || got.ItemsWritten != n {
		t.Errorf("PutItem counts = %+v, want %d requests and items written: each call reaches moto once", got, n)
	}
	if got.Faults == 0 {
		t.Errorf("PutItem faults = 0, want some at ThrottleRate 0.3")
	}
	t.Logf("%d PutItem calls, %d throttled", n, got.Faults)
	if got := scanCount(t, endpoint, table); got != n {
		t.Errorf("moto holds %d items, want %d", got, n)
	}
}

// testThrottleShapes checks that each service's SDK client classifies the
// proxy's throttling answer as a retryable throttle, and recovers from it.
func testThrottleShapes(t *testing.T, endpoint string) {
	ctx := context.Background()
	table := createTable(t, endpoint)
	direct := AWSConfig(endpoint)
	q, err := sqs.NewFromConfig(direct).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("throttle-%d", tableSeq.Add(1)))})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	secret := fmt.Sprintf("throttle-%d", tableSeq.Add(1))
	if _, err := secretsmanager.NewFromConfig(direct).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(secret), SecretString: aws.String("s3cr3t"),
	}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}

	tests := []struct {
		name     string
		op       string
		wantCode string
		call     func(cfg aws.Config) error
	}{
		{"DynamoDB", "GetItem", "ThrottlingException", func(cfg aws.Config) error {
			_, err := dynamodb.NewFromConfig(cfg).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("u0", "tokens")})
			return err
		}},
		{"SQS", "SendMessage", "RequestThrottled", func(cfg aws.Config) error {
			_, err := sqs.NewFromConfig(cfg).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("hello")})
			return err
		}},
		{"SecretsManager", "GetSecretValue", "ThrottlingException", func(cfg aws.Config) error {
			_, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret)})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProxy(t, endpoint, ProxyOptions{ThrottleRate: 1})
			once := AWSConfig(p.URL)
			once.Retryer = func() aws.Retryer { return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 }) }
			err := tt.call(once)
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.wantCode {
				t.Fatalf("%s through a proxy that throttles everything = %v, want API error %s", tt.op, err, tt.wantCode)
			}
			if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
				t.Errorf("the SDK does not classify %v as a throttle", err)
			}
			if !retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool() {
				t.Errorf("the SDK does not classify %v as retryable", err)
			}

			p.SetOptions(ProxyOptions{ThrottleRate: 0.5, Seed: 7})
			for i := range 10 {
				if err := tt.call(AWSConfig(p.URL)); err != nil {
					t.Fatalf("%s %d at ThrottleRate 0.5: %v", tt.op, i, err)
				}
			}
			if got := p.Counts()[tt.op]; got.Requests != 10 || got.Faults == 0 {
				t.Errorf("%s counts = %+v, want 10 requests and some faults", tt.op, got)
			}
		})
	}
}

// testSeedRepeats checks that the same seed throttles the same calls.
func testSeedRepeats(t *testing.T, endpoint string) {
	ctx := context.Background()
	table := createTable(t, endpoint)
	opt := ProxyOptions{ThrottleRate: 0.5, Seed: 42}
	p := NewProxy(t, endpoint, opt)
	db := dynamodb.NewFromConfig(AWSConfig(p.URL))
	pattern := func() []bool {
		var failed []bool
		for range 40 {
			_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("u0", "tokens")}, oneAttempt)
			failed = append(failed, err != nil)
		}
		return failed
	}
	first := pattern()
	p.SetOptions(opt)
	second := pattern()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("throttled calls differ between two runs with seed %d (-first +second):\n%s", opt.Seed, diff)
	}
	if !slices.Contains(first, true) || !slices.Contains(first, false) {
		t.Errorf("pattern %v, want some calls throttled and some not", first)
	}
}

func testUnprocessedKeys(t *testing.T, endpoint string) {
	ctx := context.Background()
	table := createTable(t, endpoint)
	const n = 20
	putItems(t, endpoint, table, n)
	p := NewProxy(t, endpoint, ProxyOptions{UnprocessedRate: 0.5, Seed: 3})
	db := dynamodb.NewFromConfig(AWSConfig(p.URL))

	keys := make([]map[string]types.AttributeValue, n)
	for i := range keys {
		keys[i] = key("u"+strconv.Itoa(i), "tokens")
	}
	request := map[string]types.KeysAndAttributes{table: {
		Keys:                     keys,
		ProjectionExpression:     aws.String("#v"),
		ExpressionAttributeNames: map[string]string{"#v": "v"},
		ConsistentRead:           aws.Bool(true),
	}}
	out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: request})
	if err != nil {
		t.Fatalf("BatchGetItem: %v", err)
	}
	left := out.UnprocessedKeys[table]
	if len(left.Keys) == 0 {
		t.Fatalf("BatchGetItem at UnprocessedRate 0.5 returned no UnprocessedKeys")
	}
	if got, want := len(out.Responses[table])+len(left.Keys), n; got != want {
		t.Errorf("items returned + keys unprocessed = %d, want %d", got, want)
	}
	if aws.ToString(left.ProjectionExpression) != "#v" || left.ExpressionAttributeNames["#v"] != "v" || !aws.ToBool(left.ConsistentRead) {
		t.Errorf("UnprocessedKeys lost the request's projection or consistency: %+v", left)
	}

	// The caller's retry loop reads everything in the end.
	got := map[string]bool{}
	collect := func(out *dynamodb.BatchGetItemOutput) {
		for _, it := range out.Responses[table] {
			got[it["v"].(*types.AttributeValueMemberS).Value] = true
		}
	}
	collect(out)
	for rounds := 0; len(out.UnprocessedKeys) > 0; rounds++ {
		if rounds == 100 {
			t.Fatalf("still %d unprocessed keys after 100 rounds", len(out.UnprocessedKeys[table].Keys))
		}
		if out, err = db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: out.UnprocessedKeys}); err != nil {
			t.Fatalf("BatchGetItem retry: %v", err)
		}
		collect(out)
	}
	if len(got) != n {
		t.Errorf("read %d distinct items after retries, want %d", len(got), n)
	}
	c := p.Counts()["BatchGetItem"]
	if c.ItemsRead != n || c.Faults == 0 {
		t.Errorf("BatchGetItem counts = %+v, want %d items read and some faults", c, n)
	}

	// Even at rate 1, each call makes progress.
	p.SetOptions(ProxyOptions{UnprocessedRate: 1})
	out, err = db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: request})
	if err != nil {
		t.Fatalf("BatchGetItem at rate 1: %v", err)
	}
	if got, left := len(out.Responses[table]), len(out.UnprocessedKeys[table].Keys); got != 1 || left != n-1 {
		t.Errorf("BatchGetItem at rate 1 read %d and left %d, want 1 and %d", got, left, n-1)
	}
}

func testUnprocessedItems(t *testing.T, endpoint string) {
	ctx := context.Background()
	table := createTable(t, endpoint)
	p := NewProxy(t, endpoint, ProxyOptions{UnprocessedRate: 0.5, Seed: 5})
	db := dynamodb.NewFromConfig(AWSConfig(p.URL))
	const n = 25
	writes := make([]types.WriteRequest, n)
	for i := range writes {
		writes[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: item("u"+strconv.Itoa(i), "tokens", "x")}}
	}
	out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: writes}})
	if err != nil {
		t.Fatalf("BatchWriteItem: %v", err)
	}
	left := len(out.UnprocessedItems[table])
	if left == 0 || left == n {
		t.Fatalf("BatchWriteItem at UnprocessedRate 0.5 left %d of %d unprocessed, want some but not all", left, n)
	}
	if got := scanCount(t, endpoint, table); got != n-left {
		t.Errorf("moto holds %d items, want the %d processed", got, n-left)
	}
	for rounds := 0; len(out.UnprocessedItems) > 0; rounds++ {
		if rounds == 100 {
			t.Fatalf("still unprocessed items after 100 rounds")
		}
		if out, err = db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: out.UnprocessedItems}); err != nil {
			t.Fatalf("BatchWriteItem retry: %v", err)
		}
	}
	if got := scanCount(t, endpoint, table); got != n {
		t.Errorf("moto holds %d items after retries, want %d", got, n)
	}
	if c := p.Counts()["BatchWriteItem"]; c.ItemsWritten != n || c.Faults == 0 {
		t.Errorf("BatchWriteItem counts = %+v, want %d items written and some faults", c, n)
	}
}

func testPartialBatch(t *testing.T, endpoint string) {
	ctx := context.Background()
	direct := sqs.NewFromConfig(AWSConfig(endpoint))
	q, err := direct.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("partial-%d", tableSeq.Add(1)))})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	p := NewProxy(t, endpoint, ProxyOptions{PartialBatchRate: 0.5, Seed: 9})
	client := sqs.NewFromConfig(AWSConfig(p.URL))

	entries := make([]sqstypes.SendMessageBatchRequestEntry, 10)
	for i := range entries {
		id := "e" + strconv.Itoa(i)
		entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String("body-" + id)}
	}
	out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries})
	if err != nil {
		t.Fatalf("SendMessageBatch: %v", err)
	}
	if len(out.Failed) == 0 || len(out.Successful) == 0 {
		t.Fatalf("SendMessageBatch at PartialBatchRate 0.5: %d failed, %d sent; want some of each", len(out.Failed), len(out.Successful))
	}
	var wantBodies []string
	for _, s := range out.Successful {
		wantBodies = append(wantBodies, "body-"+aws.ToString(s.Id))
	}
	for _, f := range out.Failed {
		if f.SenderFault || aws.ToString(f.Code) != "InternalError" {
			t.Errorf("failed entry %+v, want SenderFault false and Code InternalError", f)
		}
	}
	if got := len(out.Failed) + len(out.Successful); got != len(entries) {
		t.Errorf("failed + sent = %d, want %d", got, len(entries))
	}

	// What arrived is exactly what was reported sent.
	var gotBodies []string
	deadline := time.Now().Add(10 * time.Second)
	for len(gotBodies) < len(wantBodies) && time.Now().Before(deadline) {
		r, err := direct.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		for _, m := range r.Messages {
			gotBodies = append(gotBodies, aws.ToString(m.Body))
		}
	}
	slices.Sort(gotBodies)
	slices.Sort(wantBodies)
	if diff := cmp.Diff(wantBodies, gotBodies); diff != "" {
		t.Errorf("messages in the queue (-want +got):\n%s", diff)
	}
	if c := p.Counts()["SendMessageBatch"]; c.Requests != 1 || c.ItemsWritten != len(wantBodies) || c.Faults != 1 {
		t.Errorf("SendMessageBatch counts = %+v, want 1 request, %d written, 1 fault", c, len(wantBodies))
	}

	// At rate 1 nothing is forwarded.
	p.SetOptions(ProxyOptions{PartialBatchRate: 1})
	p.Reset()
	out, err = client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries})
	if err != nil {
		t.Fatalf("SendMessageBatch at rate 1: %v", err)
	}
	if len(out.Failed) != len(entries) || len(out.Successful) != 0 {
		t.Errorf("SendMessageBatch at rate 1: %d failed, %d sent; want all failed", len(out.Failed), len(out.Successful))
	}
	if diff := cmp.Diff(map[string]OpCount{"SendMessageBatch": {Faults: 1}}, p.Counts()); diff != "" {
		t.Errorf("Counts() at rate 1 (-want +got):\n%s", diff)
	}
}

func testFailAfter(t *testing.T, endpoint string) {
	ctx := context.Background()
	table := createTable(t, endpoint)
	p := NewProxy(t, endpoint, ProxyOptions{FailAfter: map[string]int{"PutItem": 3}})
	db := dynamodb.NewFromConfig(AWSConfig(p.URL))
	put := func(i int) error {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("u"+strconv.Itoa(i), "tokens", "x")})
		return err
	}
	for i := range 3 {
		if err := put(i); err != nil {
			t.Fatalf("PutItem %d of the 3 allowed: %v", i, err)
		}
	}
	err := put(3)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InternalFailure" {
		t.Fatalf("PutItem after FailAfter = %v, want InternalFailure", err)
	}
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("u0", "tokens")}); err != nil {
		t.Errorf("GetItem, not limited by FailAfter: %v", err)
	}
	want := map[string]OpCount{
		"PutItem": {Requests: 3, ItemsWritten: 3, Faults: retryMaxAttempts},
		"GetItem": {Requests: 1, ItemsRead: 1},
	}
	if diff := cmp.Diff(want, p.Counts()); diff != "" {
		t.Errorf("Counts() (-want +got):\n%s", diff)
	}
	if got := scanCount(t, endpoint, table); got != 3 {
		t.Errorf("moto holds %d items, want 3", got)
	}

	// Resuming: the tally restarts with new options.
	p.SetOptions(ProxyOptions{FailAfter: map[string]int{"PutItem": 1}})
	if err := put(3); err != nil {
		t.Errorf("PutItem after SetOptions: %v", err)
	}
	if err := put(4); err == nil {
		t.Errorf("second PutItem after SetOptions with FailAfter 1 succeeded, want an error")
	}
}

// TestProxyPassesUnreadableBodies sends bodies the proxy cannot read even
// though faults are on: they must reach the target byte for byte, and its
// answer come back, never a crash of the proxy. (moto itself answers most of
// them with a 500, so the target here is a recorder.)
func TestProxyPassesUnreadableBodies(t *testing.T) {
	var mu sync.Mutex
	var received []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"__type":"com.amazon.coral.service#SerializationException"}`))
	}))
	defer target.Close()
	p := NewProxy(t, target.URL, ProxyOptions{UnprocessedRate: 1, PartialBatchRate: 1})
	tests := []struct {
		target, body string
	}{
		{"DynamoDB_20120810.BatchGetItem", "{not json"},
		{"DynamoDB_20120810.BatchGetItem", `{"RequestItems": 5}`},
		{"DynamoDB_20120810.BatchGetItem", `{"RequestItems": {"t": {"Keys": "no"}}}`},
		{"DynamoDB_20120810.BatchGetItem", `{"RequestItems": {"t": {"Keys": []}}}`},
		{"DynamoDB_20120810.BatchGetItem", `null`},
		{"DynamoDB_20120810.BatchWriteItem", `{"RequestItems": []}`},
		{"DynamoDB_20120810.BatchWriteItem", `{"RequestItems": {"t": []}}`},
		{"AmazonSQS.SendMessageBatch", `{"Entries": [1, 2]}`},
		{"AmazonSQS.SendMessageBatch", `{"Entries": []}`},
		{"AmazonSQS.SendMessageBatch", ``},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodPost, p.URL, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", tt.target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %q: %v", tt.target, tt.body, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %q: status %d, want the target's 400", tt.target, tt.body, resp.StatusCode)
		}
	}
	var want []string
	for _, tt := range tests {
		want = append(want, tt.body)
	}
	if diff := cmp.Diff(want, received); diff != "" {
		t.Errorf("bodies received by the target (-want +got):\n%s", diff)
	}
}

// TestProxySerialize checks that with Serialize no two requests are ever in
// the target at once, even when 20 arrive together. The target holds each
// request until all the others are queued in the proxy, so any overlap the
// proxy allowed would be seen; without Serialize, the same target sees all
// 20 at once.
func TestProxySerialize(t *testing.T) {
	const n = 20
	tests := []struct {
		serialize bool
		want      int64
	}{
		{serialize: true, want: 1},
		{serialize: false, want: n},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("Serialize=%v", tt.serialize), func(t *testing.T) {
			var p *Proxy
			var inFlight, maxInFlight, served atomic.Int64
			holdUntil := func(ready func() bool) bool {
				deadline := time.NewTimer(10 * time.Second)
				defer deadline.Stop()
				poll := time.NewTicker(time.Millisecond)
				defer poll.Stop()
				for !ready() {
					select {
					case <-deadline.C:
						return false
					case <-poll.C:
					}
				}
				return true
			}
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cur := inFlight.Add(1)
				for m := maxInFlight.Load(); cur > m && !maxInFlight.CompareAndSwap(m, cur); m = maxInFlight.Load() {
				}
				var ok bool
				if tt.serialize {
					ok = holdUntil(func() bool { return p.waiting.Load() == n-served.Load()-1 })
				} else {
					ok = holdUntil(func() bool { return maxInFlight.Load() == n })
				}
				inFlight.Add(-1)
				served.Add(1)
				if !ok {
					http.Error(w, "the expected requests never arrived", http.StatusGatewayTimeout)
					return
				}
				w.Write([]byte("{}"))
			}))
			defer target.Close()
			p = NewProxy(t, target.URL, ProxyOptions{Serialize: tt.serialize})

			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodPost, p.URL, bytes.NewReader([]byte("{}")))
					req.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs <- err
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("status %d", resp.StatusCode)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if got := maxInFlight.Load(); got != tt.want {
				t.Errorf("at most %d requests in the target at once, want %d", got, tt.want)
			}
			if got := p.Counts()["GetItem"].Requests; got != n {
				t.Errorf("GetItem requests = %d, want %d", got, n)
			}
		})
	}
}

// TestProxyCompressedAnswer checks that a gzip answer carrying DynamoDB's
// CRC32 header reaches the SDK decompressed with a checksum that matches.
func TestProxyCompressedAnswer(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(`{"Item":{"pk":{"S":"u0"},"sk":{"S":"tokens"}}}`))
		zw.Close()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(b.Bytes())), 10))
		w.Write(b.Bytes())
	}))
	defer target.Close()
	p := NewProxy(t, target.URL, ProxyOptions{})
	out, err := dynamodb.NewFromConfig(AWSConfig(p.URL)).GetItem(context.Background(),
		&dynamodb.GetItemInput{TableName: aws.String("t"), Key: key("u0", "tokens")}, oneAttempt)
	if err != nil {
		t.Fatalf("GetItem through the proxy: %v", err)
	}
	if got := out.Item["pk"].(*types.AttributeValueMemberS).Value; got != "u0" {
		t.Errorf("Item pk = %q, want u0", got)
	}
	if got := p.Counts()["GetItem"]; got.ItemsRead != 1 {
		t.Errorf("GetItem counts = %+v, want 1 item read", got)
	}
}
