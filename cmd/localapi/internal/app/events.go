package app

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/eventsrc"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/sqsesm"
)

// eventSources are the template's queues (on moto's SQS server, or the one AWS_ENDPOINT_URL_SQS names), their
// event source mappings and the schedules.
type eventSources struct {
	endpoint string
	queues   map[string]sqsesm.Queue
	moto     *devstack.Moto
	mappings []*sqsesm.Mapping
	wg       sync.WaitGroup
}

// prepareEventSources creates the template's queues and points the functions' queue references at them: a Ref
// to a queue resolves to its logical id in the template (as with sam local); here it becomes the queue's URL, as
// in AWS.
func prepareEventSources(ctx context.Context, tpl *samtpl.Template, getenv func(string) string, log *slog.Logger, motoOut io.Writer) (*eventSources, error) {
	ev := &eventSources{}
	if len(tpl.Queues) == 0 {
		return ev, nil
	}
	ev.endpoint = getenv("AWS_ENDPOINT_URL_SQS")
	if ev.endpoint == "" {
		m, err := devstack.LaunchMoto(ctx, motoOut)
		if err != nil {
			return nil, err
		}
		ev.moto, ev.endpoint = m, m.URL
		log.Info("moto SQS server running (stands in for SQS)", "url", m.URL)
	}
	specs := map[string]sqsesm.QueueSpec{}
	for id, q := range tpl.Queues {
		specs[id] = sqsesm.QueueSpec{VisibilityTimeout: q.VisibilityTimeout, RetentionPeriod: q.RetentionPeriod,
			DeadLetter: q.DeadLetter, MaxReceiveCount: q.MaxReceiveCount}
	}
	queues, err := sqsesm.CreateQueues(ctx, sqsesm.NewSQSClient(ev.endpoint), specs)
	if err != nil {
		ev.stop()
		return nil, err
	}
	ev.queues = queues
	for _, f := range tpl.Functions {
		for k, v := range f.Env {
			if q, ok := queues[v]; ok {
				f.Env[k] = q.URL
			}
		}
	}
	return ev, nil
}

// environ adds the SQS endpoint to the environment the functions' variables are taken from.
func (ev *eventSources) environ(environ []string) []string {
	if ev.endpoint == "" {
		return environ
	}
	return append(append([]string(nil), environ...), "AWS_ENDPOINT_URL_SQS="+ev.endpoint)
}

// poolSize gives a function run by an event source mapping as many emulators as the mapping's concurrency (so
// the local bound is the template's MaximumConcurrency), unless -pool-for sets it.
func poolSize(f *samtpl.Function, size int, explicit bool) int {
	if explicit {
		return size
	}
	for _, e := range f.SQS {
		c := e.MaximumConcurrency
		if c == 0 {
			c = sqsesm.DefaultConcurrency
		}
		size = max(size, min(c, 64))
	}
	return size
}

// start runs the mappings and schedules until ctx ends.
func (ev *eventSources) start(ctx context.Context, tpl *samtpl.Template, inv eventsrc.Invoker, log *slog.Logger) {
	for _, id := range tpl.IDs() {
		f := tpl.Functions[id]
		for _, e := range f.SQS {
			if !e.Enabled {
				continue
			}
			m := &sqsesm.Mapping{Function: id, Queue: ev.queues[e.Queue], Client: sqsesm.NewSQSClient(ev.endpoint), Log: log,
				Event:  sqsesm.Event{BatchSize: e.BatchSize, MaximumConcurrency: e.MaximumConcurrency, ReportItemFailures: e.ReportItemFailures},
				Invoke: invokeOf(inv, id)}
			ev.mappings = append(ev.mappings, m)
			ev.wg.Add(1)
			go func() { defer ev.wg.Done(); m.Run(ctx) }()
			log.Info("event source mapping", "function", id, "queue", e.Queue, "batchSize", e.BatchSize, "maximumConcurrency", m.Concurrency())
		}
		for _, s := range f.Schedules {
			if s.Every == 0 {
				log.Warn("cron schedules are not run locally (rate expressions are)", "function", id, "schedule", s.Expression)
				continue
			}
			sc := &eventsrc.Schedule{Function: id, Event: s, Invoker: inv, Log: log, First: 5 * time.Second}
			ev.wg.Add(1)
			go func() { defer ev.wg.Done(); sc.Run(ctx) }()
			log.Info("schedule", "function", id, "expression", s.Expression)
		}
	}
}

// stop waits for the pollers (after the start ctx ended) and stops moto.
func (ev *eventSources) stop() {
	ev.wg.Wait()
	ev.moto.Stop()
}

// invokeOf adapts the emulator pools to a mapping.
func invokeOf(inv eventsrc.Invoker, function string) sqsesm.Invoke {
	return func(ctx context.Context, event []byte) ([]byte, bool, error) {
		res, err := inv.Invoke(ctx, function, event)
		return res.Payload, res.FunctionError != "", err
	}
}
