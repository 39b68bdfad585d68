package cfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Options name one provisioned copy of the template.
type Options struct {
	// StackName prefixes every physical name: {StackName}-{LogicalId}. Tests
	// use a unique one each so that they can share one emulator.
	StackName string
	// Params override parameter defaults; each value is checked against the
	// parameter's AllowedValues, AllowedPattern and bounds.
	Params map[string]string
}

// Queue is a provisioned SQS queue.
type Queue struct {
	Name string
	URL  string
	ARN  string
}

// Stack describes one provisioned copy of the template: the physical names
// of its tables and queues, and its functions with their resolved
// environment, routes, schedules and event sources.
type Stack struct {
	Name      string
	Region    string
	AccountID string
	// Parameters holds every parameter's value, defaults applied.
	Parameters map[string]string
	// Tables maps a table's logical id to its physical name.
	Tables map[string]string
	// Queues maps a queue's logical id to the provisioned queue.
	Queues map[string]Queue
	// Functions maps a function's logical id to its description.
	Functions map[string]Function
}

// FunctionEnv returns a copy of the resolved environment of the function
// with that logical id (STATE_TABLE, REQUEST_TABLE, SECRET_PREFIX, …), or nil
// when the template has no such function.
func (s *Stack) FunctionEnv(logicalID string) map[string]string {
	f, ok := s.Functions[logicalID]
	if !ok {
		return nil
	}
	env := make(map[string]string, len(f.Env))
	for k, v := range f.Env {
		env[k] = v
	}
	return env
}

const (
	// defaultRegion applies when the AWS config names none.
	defaultRegion = "us-east-1"
	// emulatorAccountID is the account moto_server answers as; it stands in
	// for AWS::AccountId, which no emulator call reports cheaply.
	emulatorAccountID = "123456789012"
	// maxQueueName is SQS's limit on a queue name.
	maxQueueName = 80
)

var stackNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)

// Provision creates every AWS::DynamoDB::Table (keys, indexes, streams, TTL)
// and AWS::SQS::Queue (attributes, redrive policy resolved to the
// dead-letter queue's ARN) of the template through cfg, named
// {StackName}-{LogicalId}, creating each resource after those it refers to.
// Resources that already exist are kept: a table as it is (only its TTL is
// brought in line), a queue with its attributes updated, so provisioning
// twice is harmless. Properties that change nothing locally (point-in-time
// recovery, encryption keys of tables, tags) are not applied.
func Provision(ctx context.Context, cfg aws.Config, t *Template, opt Options) (*Stack, error) {
	if !stackNameRE.MatchString(opt.StackName) {
		return nil, fmt.Errorf("provision: stack name %q must match %s", opt.StackName, stackNameRE)
	}
	params, err := resolveParams(t, opt.Params)
	if err != nil {
		return nil, fmt.Errorf("provision %s: %w", opt.StackName, err)
	}
	region := cfg.Region
	if region == "" {
		region = defaultRegion
	}
	p := &provisioner{
		t:    t,
		ddb:  dynamodb.NewFromConfig(cfg),
		sqs:  sqs.NewFromConfig(cfg),
		ctx:  ctx,
		name: opt.StackName,
		stack: &Stack{
			Name: opt.StackName, Region: region, AccountID: emulatorAccountID,
			Parameters: params,
			Tables:     map[string]string{},
			Queues:     map[string]Queue{},
			Functions:  map[string]Function{},
		},
		tableARN: map[string]string{},
		streams:  map[string]string{},
	}
	p.e = &evaluator{
		t: t, params: params,
		pseudo:     pseudoParams(opt.StackName, region),
		conditions: map[string]bool{}, inProgress: map[string]bool{},
		ref: p.ref, getAtt: p.getAtt,
	}
	if err := p.provision(); err != nil {
		return nil, fmt.Errorf("provision %s: %w", opt.StackName, err)
	}
	return p.stack, nil
}

func pseudoParams(stackName, region string) map[string]string {
	return map[string]string{
		"AWS::Region":           region,
		"AWS::AccountId":        emulatorAccountID,
		"AWS::Partition":        "aws",
		"AWS::URLSuffix":        "amazonaws.com",
		"AWS::StackName":        stackName,
		"AWS::StackId":          "arn:aws:cloudformation:" + region + ":" + emulatorAccountID + ":stack/" + stackName + "/local",
		"AWS::NotificationARNs": "",
	}
}

type provisioner struct {
	t     *Template
	e     *evaluator
	ddb   *dynamodb.Client
	sqs   *sqs.Client
	ctx   context.Context
	name  string
	stack *Stack
	// tableARN and streams hold the attributes of created tables.
	tableARN map[string]string
	streams  map[string]string
}

func (p *provisioner) physicalName(id string) string { return p.name + "-" + id }

func (p *provisioner) provision() error {
	var ids []string
	for _, typ := range []string{TypeTable, TypeQueue} {
		for _, id := range p.t.ResourcesOfType(typ) {
			ok, err := p.e.resourceEnabled(p.t.Resources[id])
			if err != nil {
				return err
			}
			if ok {
				ids = append(ids, id)
			}
		}
	}
	order, err := creationOrder(p.t, ids)
	if err != nil {
		return err
	}
	for _, id := range order {
		r := p.t.Resources[id]
		var err error
		switch r.Type {
		case TypeTable:
			err = p.table(r)
		case TypeQueue:
			err = p.queue(r)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	queueByARN := map[string]string{}
	for id, q := range p.stack.Queues {
		queueByARN[q.ARN] = id
	}
	for _, id := range p.t.ResourcesOfType(TypeFunction) {
		r := p.t.Resources[id]
		ok, err := p.e.resourceEnabled(r)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		f, err := p.e.function(r, queueByARN)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		p.stack.Functions[id] = f
	}
	return nil
}

// creationOrder sorts ids so that each comes after the ids it refers to
// (a queue after its dead-letter queue), alphabetically otherwise.
func creationOrder(t *Template, ids []string) ([]string, error) {
	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	deps := map[string][]string{}
	for _, id := range ids {
		for _, d := range refsIn(t, t.Resources[id].Properties) {
			if wanted[d] && d != id {
				deps[id] = append(deps[id], d)
			}
		}
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(id string) error
	visit = func(id string) error {
		switch state[id] {
		case 1:
			return fmt.Errorf("resources refer to each other in a cycle through %s", id)
		case 2:
			return nil
		}
		state[id] = 1
		for _, d := range deps[id] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[id] = 2
		order = append(order, id)
		return nil
	}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	for _, id := range sorted {
		if err := visit(id); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ref answers Ref for a resource: a table's name, a queue's URL, and for
// resources the local stack does not create, the name they would get.
func (p *provisioner) ref(id string) (string, error) {
	switch p.t.Resources[id].Type {
	case TypeTable:
		if name, ok := p.stack.Tables[id]; ok {
			return name, nil
		}
	case TypeQueue:
		if q, ok := p.stack.Queues[id]; ok {
			return q.URL, nil
		}
	default:
		return p.physicalName(id), nil
	}
	return "", fmt.Errorf("%s is referred to before it exists", id)
}

func (p *provisioner) getAtt(id, attr string) (string, error) {
	r := p.t.Resources[id]
	switch r.Type {
	case TypeTable:
		switch attr {
		case "Arn":
			if arn, ok := p.tableARN[id]; ok {
				return arn, nil
			}
		case "StreamArn":
			if arn, ok := p.streams[id]; ok {
				return arn, nil
			}
			if _, ok := p.tableARN[id]; ok {
				return "", fmt.Errorf("table %s has no stream", id)
			}
		default:
			return "", fmt.Errorf("attribute %s.%s is not supported", id, attr)
		}
	case TypeQueue:
		q, ok := p.stack.Queues[id]
		if !ok {
			break
		}
		switch attr {
		case "Arn":
			return q.ARN, nil
		case "QueueName":
			return q.Name, nil
		case "QueueUrl":
			return q.URL, nil
		}
		return "", fmt.Errorf("attribute %s.%s is not supported", id, attr)
	case TypeFunction:
		if attr == "Arn" {
			return "arn:aws:lambda:" + p.stack.Region + ":" + emulatorAccountID + ":function:" + p.physicalName(id), nil
		}
		return "", fmt.Errorf("attribute %s.%s is not supported", id, attr)
	default:
		return "", fmt.Errorf("attributes of %s (%s) are not supported", id, r.Type)
	}
	return "", fmt.Errorf("%s is referred to before it exists", id)
}

// flexInt and flexBool accept a JSON number or boolean also when a Ref made
// it a string, as CloudFormation does.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := strconv.ParseInt(s, 10, 64)
		*n = flexInt(v)
		return err
	}
	var v int64
	err := json.Unmarshal(b, &v)
	*n = flexInt(v)
	return err
}

type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := strconv.ParseBool(s)
		*f = flexBool(v)
		return err
	}
	var v bool
	err := json.Unmarshal(b, &v)
	*f = flexBool(v)
	return err
}

type keyElement struct {
	AttributeName string
	KeyType       string
}

type throughput struct {
	ReadCapacityUnits  flexInt
	WriteCapacityUnits flexInt
}

type indexProps struct {
	IndexName  string
	KeySchema  []keyElement
	Projection struct {
		ProjectionType   string
		NonKeyAttributes []string
	}
	ProvisionedThroughput *throughput
}

type tableProps struct {
	BillingMode          string
	AttributeDefinitions []struct {
		AttributeName string
		AttributeType string
	}
	KeySchema               []keyElement
	GlobalSecondaryIndexes  []indexProps
	LocalSecondaryIndexes   []indexProps
	ProvisionedThroughput   *throughput
	StreamSpecification     *struct{ StreamViewType string }
	TimeToLiveSpecification *struct {
		AttributeName string
		Enabled       flexBool
	}
}

// decodeProps evaluates a resource's properties and decodes them into dst.
func (p *provisioner) decodeProps(r Resource, dst any) (map[string]any, error) {
	v, err := p.e.eval(r.Properties)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode properties: %w", err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	return m, nil
}

func keySchema(ks []keyElement) []ddbtypes.KeySchemaElement {
	out := make([]ddbtypes.KeySchemaElement, len(ks))
	for i, k := range ks {
		out[i] = ddbtypes.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: ddbtypes.KeyType(k.KeyType)}
	}
	return out
}

func (t *throughput) sdk() *ddbtypes.ProvisionedThroughput {
	if t == nil {
		return nil
	}
	return &ddbtypes.ProvisionedThroughput{
		ReadCapacityUnits:  aws.Int64(int64(t.ReadCapacityUnits)),
		WriteCapacityUnits: aws.Int64(int64(t.WriteCapacityUnits)),
	}
}

func projection(ip indexProps) *ddbtypes.Projection {
	pr := &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionType(ip.Projection.ProjectionType)}
	if len(ip.Projection.NonKeyAttributes) > 0 {
		pr.NonKeyAttributes = ip.Projection.NonKeyAttributes
	}
	return pr
}

func (p *provisioner) table(r Resource) error {
	var tp tableProps
	if _, err := p.decodeProps(r, &tp); err != nil {
		return err
	}
	name := p.physicalName(r.LogicalID)
	in := &dynamodb.CreateTableInput{
		TableName:             aws.String(name),
		KeySchema:             keySchema(tp.KeySchema),
		ProvisionedThroughput: tp.ProvisionedThroughput.sdk(),
	}
	if tp.BillingMode != "" {
		in.BillingMode = ddbtypes.BillingMode(tp.BillingMode)
	}
	for _, a := range tp.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName), AttributeType: ddbtypes.ScalarAttributeType(a.AttributeType),
		})
	}
	for _, g := range tp.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{
			IndexName: aws.String(g.IndexName), KeySchema: keySchema(g.KeySchema),
			Projection: projection(g), ProvisionedThroughput: g.ProvisionedThroughput.sdk(),
		})
	}
	for _, l := range tp.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, ddbtypes.LocalSecondaryIndex{
			IndexName: aws.String(l.IndexName), KeySchema: keySchema(l.KeySchema), Projection: projection(l),
		})
	}
	if s := tp.StreamSpecification; s != nil {
		in.StreamSpecification = &ddbtypes.StreamSpecification{
			StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewType(s.StreamViewType),
		}
	}
	if _, err := p.ddb.CreateTable(p.ctx, in); err != nil {
		var inUse *ddbtypes.ResourceInUseException
		if !errors.As(err, &inUse) {
			return fmt.Errorf("create table %s: %w", name, err)
		}
	}
	desc, err := p.waitActive(name)
	if err != nil {
		return err
	}
	p.stack.Tables[r.LogicalID] = name
	p.tableARN[r.LogicalID] = aws.ToString(desc.TableArn)
	if desc.LatestStreamArn != nil {
		p.streams[r.LogicalID] = *desc.LatestStreamArn
	}
	if ttl := tp.TimeToLiveSpecification; ttl != nil && bool(ttl.Enabled) {
		return p.enableTTL(name, ttl.AttributeName)
	}
	return nil
}

// waitActive polls until the table is ACTIVE: at once on an emulator, within
// seconds on AWS.
func (p *provisioner) waitActive(name string) (*ddbtypes.TableDescription, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Minute)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		out, err := p.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("describe table %s: %w", name, err)
		}
		if out.Table.TableStatus == ddbtypes.TableStatusActive {
			return out.Table, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("table %s is still %s: %w", name, out.Table.TableStatus, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (p *provisioner) enableTTL(name, attr string) error {
	cur, err := p.ddb.DescribeTimeToLive(p.ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", name, err)
	}
	if d := cur.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == attr &&
		(d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled || d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = p.ddb.UpdateTimeToLive(p.ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	return nil
}

// queueAttributes are the AWS::SQS::Queue properties that are also queue
// attributes of the same name; QueueName and Tags are not.
var queueAttributes = []string{
	"ContentBasedDeduplication", "DeduplicationScope", "DelaySeconds", "FifoQueue",
	"FifoThroughputLimit", "KmsDataKeyReusePeriodSeconds", "KmsMasterKeyId",
	"MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
	"RedriveAllowPolicy", "RedrivePolicy", "SqsManagedSseEnabled", "VisibilityTimeout",
}

func (p *provisioner) queue(r Resource) error {
	v, err := p.e.eval(r.Properties)
	if err != nil {
		return err
	}
	props, _ := v.(map[string]any)
	attrs := map[string]string{}
	for _, k := range queueAttributes {
		val, ok := props[k]
		if !ok {
			continue
		}
		if m, isMap := val.(map[string]any); isMap {
			b, err := json.Marshal(m)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			attrs[k] = string(b)
			continue
		}
		s, err := scalarString(val)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		attrs[k] = s
	}
	name := p.physicalName(r.LogicalID)
	if fifo, _ := strconv.ParseBool(attrs["FifoQueue"]); fifo {
		name += ".fifo"
	}
	if len(name) > maxQueueName {
		return fmt.Errorf("queue name %s is longer than %d characters; use a shorter stack name", name, maxQueueName)
	}
	var url string
	out, err := p.sqs.CreateQueue(p.ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	var exists *sqstypes.QueueNameExists
	switch {
	case err == nil:
		url = aws.ToString(out.QueueUrl)
	case errors.As(err, &exists):
		// The queue exists with other attributes: bring them in line.
		got, err := p.sqs.GetQueueUrl(p.ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("get URL of queue %s: %w", name, err)
		}
		url = aws.ToString(got.QueueUrl)
		delete(attrs, "FifoQueue") // immutable, and part of the name
		if _, err := p.sqs.SetQueueAttributes(p.ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: attrs}); err != nil {
			return fmt.Errorf("update queue %s: %w", name, err)
		}
	default:
		return fmt.Errorf("create queue %s: %w", name, err)
	}
	got, err := p.sqs.GetQueueAttributes(p.ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("get ARN of queue %s: %w", name, err)
	}
	p.stack.Queues[r.LogicalID] = Queue{Name: name, URL: url, ARN: got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]}
	return nil
}
