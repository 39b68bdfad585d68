package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/cfn"
)

var rateRE = regexp.MustCompile(`^rate\(\s*(\d+)\s+(second|minute|hour|day)s?\s*\)$`)

// parseRate reads an EventBridge rate expression, "rate(5 minutes)". Seconds
// are accepted too, which EventBridge does not, so that a local run can be
// made to tick fast. cron() expressions are not supported.
func parseRate(expr string) (time.Duration, error) {
	m := rateRE.FindStringSubmatch(expr)
	if m == nil {
		return 0, fmt.Errorf("schedule %q is not rate(N unit) with unit second, minute, hour or day", expr)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("schedule %q: the rate must be a positive integer", expr)
	}
	unit := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, nil
}

// scheduler runs each scheduled function registered in
// app.ScheduledFunctions on its template schedule, one run at a time per
// schedule, as EventBridge invokes it: the first run one period after start.
type scheduler struct {
	log   *slog.Logger
	stack *cfn.Stack
	jobs  []job
	wg    sync.WaitGroup
	halt  context.CancelFunc
}

type job struct {
	function string
	expr     string
	every    time.Duration
	handler  app.ScheduledHandler
}

// newScheduler builds the handler of every registered scheduled function,
// once, as a cold start would.
func newScheduler(ctx context.Context, log *slog.Logger, st *cfn.Stack, env envFactory) (*scheduler, error) {
	s := &scheduler{log: log, stack: st}
	ids := make([]string, 0, len(st.Functions))
	for id := range st.Functions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := st.Functions[id]
		if len(f.Schedules) == 0 {
			continue
		}
		construct, ok := app.ScheduledFunctions[id]
		if !ok {
			log.Warn("function is not registered in app.ScheduledFunctions; its schedule does not run", "function", id)
			continue
		}
		h, err := construct(ctx, env(f), log.With("function", id))
		if err != nil {
			return nil, fmt.Errorf("cold start of %s: %w", id, err)
		}
		for _, expr := range f.Schedules {
			every, err := parseRate(expr)
			if err != nil {
				return nil, fmt.Errorf("function %s: %w", id, err)
			}
			s.jobs = append(s.jobs, job{function: id, expr: expr, every: every, handler: h})
		}
	}
	return s, nil
}

// start runs the schedules in the background until stop.
func (s *scheduler) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.halt = cancel
	for _, j := range s.jobs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.loop(ctx, j)
		}()
		s.log.Info("schedule running", "function", j.function, "schedule", j.expr)
	}
}

// stop ends the schedules and waits for runs in progress.
func (s *scheduler) stop() {
	if s.halt != nil {
		s.halt()
	}
	s.wg.Wait()
}

func (s *scheduler) loop(ctx context.Context, j job) {
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.run(ctx, j, now)
		}
	}
}

// run invokes one scheduled function with the event EventBridge sends and
// within the function's timeout.
func (s *scheduler) run(ctx context.Context, j job, now time.Time) {
	f := s.stack.Functions[j.function]
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	id := requestID()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID: id, InvokedFunctionArn: functionARN(s.stack, j.function),
	})
	ev := events.EventBridgeEvent{
		Version:    "0",
		ID:         requestID(),
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  s.stack.AccountID,
		Time:       now.UTC(),
		Region:     s.stack.Region,
		Resources:  []string{"arn:aws:events:" + s.stack.Region + ":" + s.stack.AccountID + ":rule/" + s.stack.Name + "-" + j.function},
		Detail:     json.RawMessage("{}"),
	}
	start := time.Now()
	out, err := invokeScheduled(ctx, j.handler, ev)
	log := s.log.With("function", j.function, "requestId", id, "ms", time.Since(start).Milliseconds())
	if err != nil {
		log.Error("scheduled run failed", "err", err)
		return
	}
	log.Info("scheduled run", "result", out)
}

func invokeScheduled(ctx context.Context, h app.ScheduledHandler, ev events.EventBridgeEvent) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, ev)
}
