package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/push"
)

// stackName is the name the local stack provisions its resources under
// (scripts/localstack), so that this tool finds the same queues.
const stackName = "offline-push-local"

// quietPoll is how often the queues are polled while waiting for quiet.
const quietPoll = 500 * time.Millisecond

// queues are the vendor queues and their dead-letter queues of the stack.
type queues struct {
	sqs  *sqs.Client
	main map[string]string // logical id → URL
	dead map[string]string
}

// findQueues provisions the template as the local stack does (a no-op for
// what exists) to learn the physical queue URLs and the secret prefix.
func findQueues(ctx context.Context, cfg aws.Config, root string) (*queues, *cfn.Stack, error) {
	path, err := cfn.FindTemplate(root)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := cfn.Load(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := cfn.Provision(ctx, cfg, tmpl, cfn.Options{StackName: stackName})
	if err != nil {
		return nil, nil, err
	}
	q := &queues{sqs: sqs.NewFromConfig(cfg), main: map[string]string{}, dead: map[string]string{}}
	for id, qu := range st.Queues {
		if strings.Contains(id, "DeadLetter") {
			q.dead[id] = qu.URL
		} else {
			q.main[id] = qu.URL
		}
	}
	return q, st, nil
}

// setVisibility sets the visibility timeout of every vendor queue.
func (q *queues) setVisibility(ctx context.Context, d time.Duration) error {
	for id, url := range q.main {
		_, err := q.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
			QueueUrl:   aws.String(url),
			Attributes: map[string]string{string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(d / time.Second))},
		})
		if err != nil {
			return fmt.Errorf("set the visibility timeout of %s: %w", id, err)
		}
		got, err := q.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(url),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
		})
		if err != nil {
			return fmt.Errorf("read the visibility timeout of %s: %w", id, err)
		}
		if v := got.Attributes[string(types.QueueAttributeNameVisibilityTimeout)]; v != strconv.Itoa(int(d/time.Second)) {
			return fmt.Errorf("the visibility timeout of %s is %s s after setting it to %s", id, v, d)
		}
	}
	return nil
}

// backlog is what the vendor queues hold.
type backlog struct {
	Visible, InFlight, Delayed int
}

func (b backlog) empty() bool { return b.Visible == 0 && b.InFlight == 0 && b.Delayed == 0 }

// backlog sums the approximate counts of every vendor queue.
func (q *queues) backlog(ctx context.Context) (backlog, error) {
	var b backlog
	for id, url := range q.main {
		out, err := q.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(url),
			AttributeNames: []types.QueueAttributeName{
				types.QueueAttributeNameApproximateNumberOfMessages,
				types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
				types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
			},
		})
		if err != nil {
			return b, fmt.Errorf("read the backlog of %s: %w", id, err)
		}
		n := func(a types.QueueAttributeName) int {
			v, _ := strconv.Atoi(out.Attributes[string(a)])
			return v
		}
		b.Visible += n(types.QueueAttributeNameApproximateNumberOfMessages)
		b.InFlight += n(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
		b.Delayed += n(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)
	}
	return b, nil
}

// waitQuiet polls the vendor queues until they hold nothing (visible, in
// flight or delayed) on two polls in a row, or the deadline passes. A
// record being dispatched is in flight until it is deleted, and retries
// are written before that, so an empty backlog means dispatch is done.
// Progress goes to progress every so often.
func (q *queues) waitQuiet(ctx context.Context, deadline time.Duration, progress io.Writer) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	emptyRuns := 0
	lastReport := start
	for {
		b, err := q.backlog(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			return time.Since(start), err
		case err == nil && b.empty():
			emptyRuns++
			if emptyRuns == 2 {
				return time.Since(start), nil
			}
		default:
			emptyRuns = 0
		}
		if time.Since(lastReport) >= 15*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(progress, "waiting for the queues to drain: %d visible, %d in flight, %d delayed (%s)\n",
				b.Visible, b.InFlight, b.Delayed, time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("the vendor queues still held %d visible, %d in flight and %d delayed messages after %s",
				b.Visible, b.InFlight, b.Delayed, deadline)
		case <-tick.C:
		}
	}
}

// deadLetters reads every message of the dead-letter queues without
// deleting it (they stay for an operator), hidden for the rest of the run
// so that none is read twice, and returns the targets of the envelopes of
// this run's messages (those whose id starts with prefix).
func (q *queues) deadLetters(ctx context.Context, prefix string) ([]target, int, error) {
	var out []target
	unreadable := 0
	ids := make([]string, 0, len(q.dead))
	for id := range q.dead {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		// Bounded: a queue holds at most what this run and earlier runs
		// against the same emulator put there.
		for range 10000 {
			res, err := q.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl:            aws.String(q.dead[id]),
				MaxNumberOfMessages: 10,
				VisibilityTimeout:   3600,
			})
			if err != nil {
				return nil, 0, fmt.Errorf("read %s: %w", id, err)
			}
			if len(res.Messages) == 0 {
				break
			}
			for _, m := range res.Messages {
				env, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
				if err != nil {
					unreadable++
					continue
				}
				if !strings.HasPrefix(env.MessageID, prefix) {
					continue
				}
				for _, t := range env.Targets {
					out = append(out, target{MessageID: env.MessageID, User: t.UserID, Device: t.DeviceID, Vendor: env.Vendor})
				}
			}
		}
	}
	return out, unreadable, nil
}

// secretKeys are the members of vendor credentials that hold secrets
// (README, "Vendor credentials"); their values must never reach a log.
var secretKeys = map[string]bool{
	"appSecret": true, "clientSecret": true, "masterSecret": true,
	"privateKey": true, "private_key": true, "certificatePassword": true,
	"p12": true,
}

// vendorSecrets reads the vendor credentials the local stack stored (the
// keys it generated included) and returns the strings a log must never
// hold: each secret value, and for a PEM block each line of its body, since
// a log would show the block with escaped line breaks.
func vendorSecrets(ctx context.Context, cfg aws.Config, prefix, app string, certs []string) ([]string, error) {
	sm := secretsmanager.NewFromConfig(cfg)
	var out []string
	for _, cert := range certs {
		res, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(prefix + "/" + app + "/vendors/" + cert)})
		if err != nil {
			return nil, fmt.Errorf("read the credentials %s: %w", cert, err)
		}
		var v any
		if err := json.Unmarshal([]byte(aws.ToString(res.SecretString)), &v); err != nil {
			return nil, fmt.Errorf("credentials %s are not JSON: %w", cert, err)
		}
		out = append(out, secretStrings(v, false)...)
	}
	return out, nil
}

// minNeedle is the shortest secret string searched for; shorter ones would
// match by chance.
const minNeedle = 12

// secretStrings collects the secret strings of a decoded credential.
func secretStrings(v any, secret bool) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			out = append(out, secretStrings(x, secret || secretKeys[k])...)
		}
	case []any:
		for _, x := range v {
			out = append(out, secretStrings(x, secret)...)
		}
	case string:
		if !secret {
			break
		}
		if !strings.Contains(v, "-----BEGIN") {
			if len(v) >= minNeedle {
				out = append(out, v)
			}
			break
		}
		for _, line := range strings.Split(v, "\n") {
			line = strings.TrimSpace(line)
			if len(line) >= minNeedle && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	return out
}
