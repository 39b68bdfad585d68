package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/dispatch"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/provider/fcm"
	"github.com/offline-push/offline-push/shared/provider/honor"
	"github.com/offline-push/offline-push/shared/provider/huawei"
	"github.com/offline-push/offline-push/shared/provider/meizu"
	"github.com/offline-push/offline-push/shared/provider/oppo"
	"github.com/offline-push/offline-push/shared/provider/vivo"
	"github.com/offline-push/offline-push/shared/provider/xiaomi"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/sqsbatch"
)

// senders build each vendor's provider as its functions/dispatch-<vendor>
// main does. They are registered here rather than in shared/app, because
// importing every provider there would link every vendor SDK into every
// function's binary; the local stack is one binary and may link them all.
var senders = map[push.Vendor]func(ctx context.Context, getenv func(string) string, log *slog.Logger) (dispatch.Sender, error){
	push.APNs: func(ctx context.Context, getenv func(string) string, log *slog.Logger) (dispatch.Sender, error) {
		cache, err := app.TokenCache(ctx, getenv)
		if err != nil {
			return nil, err
		}
		return apns.New(cache, time.Now, log), nil
	},
	push.FCM: func(_ context.Context, _ func(string) string, log *slog.Logger) (dispatch.Sender, error) {
		return fcm.New(time.Now, log), nil
	},
	push.Huawei: func(ctx context.Context, getenv func(string) string, log *slog.Logger) (dispatch.Sender, error) {
		cache, err := app.TokenCache(ctx, getenv)
		if err != nil {
			return nil, err
		}
		return huawei.New(cache, time.Now, log), nil
	},
	push.Honor: func(ctx context.Context, getenv func(string) string, log *slog.Logger) (dispatch.Sender, error) {
		cache, err := app.TokenCache(ctx, getenv)
		if err != nil {
			return nil, err
		}
		return honor.New(cache, time.Now, log), nil
	},
	push.Xiaomi: func(_ context.Context, _ func(string) string, log *slog.Logger) (dispatch.Sender, error) {
		return xiaomi.New(time.Now, log), nil
	},
	push.OPPO: func(ctx context.Context, getenv func(string) string, log *slog.Logger) (dispatch.Sender, error) {
		cache, err := app.TokenCache(ctx, getenv)
		if err != nil {
			return nil, err
		}
		return oppo.New(oppo.Options{Cache: cache, Log: log}), nil
	},
	push.Vivo: func(ctx context.Context, getenv func(string) string, log *slog.Logger) (dispatch.Sender, error) {
		cache, err := app.TokenCache(ctx, getenv)
		if err != nil {
			return nil, err
		}
		return vivo.New(vivo.Options{Cache: cache, Log: log}), nil
	},
	push.Meizu: func(_ context.Context, _ func(string) string, log *slog.Logger) (dispatch.Sender, error) {
		return meizu.New(time.Now, log), nil
	},
}

// init registers the dispatch function of every vendor with a provider in
// app.DispatchFunctions, under its template logical id. Their metrics lines
// go to standard error with the logs: standard output carries only "ready"
// and the emulators' receipts (API.md §8).
func init() {
	for v, build := range senders {
		app.DispatchFunctions[app.DispatchFunctionID(v)] = func(ctx context.Context, getenv func(string) string, log *slog.Logger) (app.SQSHandler, error) {
			s, err := build(ctx, getenv, log)
			if err != nil {
				return nil, err
			}
			return app.DispatchTo(ctx, getenv, log, v, s, os.Stderr)
		}
	}
}

// localMaxConcurrency caps the concurrent invocations per event source. In
// AWS the template's MaximumConcurrency can reach the hundreds; here every
// invocation shares one machine and one emulator, so a few suffice.
const localMaxConcurrency = 4

// queueWait is the long poll of each receive, as Lambda's event source
// mapping polls.
const queueWait = 20 * time.Second

// feeder feeds each queue that a registered function takes SQS events from
// to that function's handler, as Lambda's event source mapping does: batch
// size, batching window and concurrency from the template, partial batch
// responses honoured, failed records left to the queue's visibility timeout
// and redrive policy (which moto implements: a record received
// maxReceiveCount times moves to the dead-letter queue at its next receive).
type feeder struct {
	log     *slog.Logger
	pollers []*sqsbatch.Poller
	halt    context.CancelFunc
	wg      sync.WaitGroup
}

// newFeeder builds the handler of every function with SQS events that
// app.DispatchFunctions registers, each once, as a cold start would, and a
// poller per event source.
func newFeeder(ctx context.Context, log *slog.Logger, st *cfn.Stack, env envFactory, client sqsbatch.QueueAPI) (*feeder, error) {
	f := &feeder{log: log}
	ids := make([]string, 0, len(st.Functions))
	for id := range st.Functions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fn := st.Functions[id]
		if len(fn.SQS) == 0 {
			continue
		}
		construct, ok := app.DispatchFunctions[id]
		if !ok {
			log.Warn("function is not registered in app.DispatchFunctions; its queue is not drained", "function", id)
			continue
		}
		h, err := construct(ctx, env(fn), log.With("function", id))
		if err != nil {
			return nil, fmt.Errorf("cold start of %s: %w", id, err)
		}
		for _, ev := range fn.SQS {
			q, ok := st.Queues[ev.Queue]
			if !ok {
				return nil, fmt.Errorf("function %s: queue %s was not provisioned", id, ev.Queue)
			}
			concurrency := localMaxConcurrency
			if ev.MaximumConcurrency > 0 {
				concurrency = min(ev.MaximumConcurrency, localMaxConcurrency)
			}
			f.pollers = append(f.pollers, &sqsbatch.Poller{
				Client:                  client,
				QueueURL:                q.URL,
				QueueARN:                q.ARN,
				Region:                  st.Region,
				BatchSize:               ev.BatchSize,
				BatchingWindow:          ev.MaximumBatchingWindow,
				Concurrency:             concurrency,
				Timeout:                 fn.Timeout,
				ReportBatchItemFailures: slices.Contains(ev.FunctionResponseTypes, "ReportBatchItemFailures"),
				Wait:                    queueWait,
				FunctionARN:             functionARN(st, id),
				Handler:                 h,
				Log:                     log.With("function", id),
			})
		}
	}
	return f, nil
}

// start polls every queue in the background until stop.
func (f *feeder) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.halt = cancel
	for _, p := range f.pollers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := p.Run(ctx); err != nil {
				f.log.Error("queue poller stopped", "queue", p.QueueURL, "err", err)
			}
		}()
		f.log.Info("queue feeding its function", "queue", p.QueueURL, "batchSize", p.BatchSize, "concurrency", p.Concurrency)
	}
}

// stop ends the polls and waits for the invocations in flight, so that
// their records are deleted (or left) before the emulator goes away.
func (f *feeder) stop() {
	if f.halt != nil {
		f.halt()
	}
	f.wg.Wait()
}
