package samtpl

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Queue is one AWS::SQS::Queue resource.
type Queue struct {
	LogicalID         string
	VisibilityTimeout int // seconds; SQS's default is 30
	RetentionPeriod   int // seconds; SQS's default is 4 days
	// DeadLetter is the logical id of the redrive policy's target queue ("" when none), MaxReceiveCount its count.
	DeadLetter      string
	MaxReceiveCount int
}

// SQSEvent is an SQS event of a function: the event source mapping Lambda runs for it.
type SQSEvent struct {
	Name               string
	Queue              string // logical id of the queue
	BatchSize          int    // default 10
	MaximumConcurrency int    // ScalingConfig.MaximumConcurrency; 0 when unset (then Lambda scales up to 1,250)
	ReportItemFailures bool   // FunctionResponseTypes has ReportBatchItemFailures
	Enabled            bool
}

// Schedule is a Schedule event: EventBridge invokes the function at a fixed rate.
type Schedule struct {
	Name       string
	Expression string        // rate(...) or cron(...)
	Every      time.Duration // 0 for a cron expression (not run locally)
	Enabled    bool
}

type rawSources struct {
	Resources map[string]struct {
		Type       string `json:"Type"`
		Properties struct {
			VisibilityTimeout      any `json:"VisibilityTimeout"`
			MessageRetentionPeriod any `json:"MessageRetentionPeriod"`
			RedrivePolicy          *struct {
				DeadLetterTargetArn any `json:"deadLetterTargetArn"`
				MaxReceiveCount     any `json:"maxReceiveCount"`
			} `json:"RedrivePolicy"`
			Events map[string]struct {
				Type       string `json:"Type"`
				Properties struct {
					Queue                 any      `json:"Queue"`
					BatchSize             any      `json:"BatchSize"`
					FunctionResponseTypes []string `json:"FunctionResponseTypes"`
					Enabled               *bool    `json:"Enabled"`
					ScalingConfig         *struct {
						MaximumConcurrency any `json:"MaximumConcurrency"`
					} `json:"ScalingConfig"`
					Schedule any `json:"Schedule"`
				} `json:"Properties"`
			} `json:"Events"`
		} `json:"Properties"`
	} `json:"Resources"`
}

// addEventSources reads the queues and the functions' SQS and Schedule events from the resolved resources.
func addEventSources(t *Template, resources map[string]rawResource) error {
	var raw rawSources
	if err := remarshal(map[string]any{"Resources": resources}, &raw); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	t.Queues = map[string]*Queue{}
	for _, id := range slices.Sorted(maps.Keys(raw.Resources)) {
		res := raw.Resources[id]
		if res.Type != "AWS::SQS::Queue" {
			continue
		}
		q := &Queue{LogicalID: id, VisibilityTimeout: 30, RetentionPeriod: 345600}
		p := res.Properties
		q.VisibilityTimeout = intOr(p.VisibilityTimeout, q.VisibilityTimeout)
		q.RetentionPeriod = intOr(p.MessageRetentionPeriod, q.RetentionPeriod)
		if rp := p.RedrivePolicy; rp != nil {
			arn, _ := scalar(rp.DeadLetterTargetArn)
			q.DeadLetter = arn[strings.LastIndexByte(arn, ':')+1:]
			q.MaxReceiveCount = intOr(rp.MaxReceiveCount, 10)
		}
		t.Queues[id] = q
	}
	for _, id := range slices.Sorted(maps.Keys(raw.Resources)) {
		f, ok := t.Functions[id]
		if !ok {
			continue
		}
		events := raw.Resources[id].Properties.Events
		for _, name := range slices.Sorted(maps.Keys(events)) {
			e := events[name]
			enabled := e.Properties.Enabled == nil || *e.Properties.Enabled
			switch e.Type {
			case "SQS":
				arn, _ := scalar(e.Properties.Queue)
				ev := SQSEvent{Name: name, Queue: arn[strings.LastIndexByte(arn, ':')+1:], BatchSize: intOr(e.Properties.BatchSize, 10),
					Enabled: enabled}
				if _, ok := t.Queues[ev.Queue]; !ok {
					return fmt.Errorf("template: %s event %s: queue %q is not an AWS::SQS::Queue of the template", id, name, arn)
				}
				if sc := e.Properties.ScalingConfig; sc != nil {
					ev.MaximumConcurrency = intOr(sc.MaximumConcurrency, 0)
					if ev.MaximumConcurrency < 2 || ev.MaximumConcurrency > 1000 {
						return fmt.Errorf("template: %s event %s: MaximumConcurrency %d is outside 2..1000", id, name, ev.MaximumConcurrency)
					}
				}
				for _, rt := range e.Properties.FunctionResponseTypes {
					ev.ReportItemFailures = ev.ReportItemFailures || rt == "ReportBatchItemFailures"
				}
				f.SQS = append(f.SQS, ev)
				f.InvokedBy = append(f.InvokedBy, "sqs:"+ev.Queue)
			case "Schedule", "ScheduleV2":
				expr, _ := scalar(e.Properties.Schedule)
				every, err := RateEvery(expr)
				if err != nil && !strings.HasPrefix(expr, "cron(") {
					return fmt.Errorf("template: %s event %s: %w", id, name, err)
				}
				f.Schedules = append(f.Schedules, Schedule{Name: name, Expression: expr, Every: every, Enabled: enabled})
				f.InvokedBy = append(f.InvokedBy, "schedule:"+name)
			}
		}
	}
	return nil
}

var rateRE = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// RateEvery reads an EventBridge rate expression: rate(5 minutes).
func RateEvery(expr string) (time.Duration, error) {
	m := rateRE.FindStringSubmatch(expr)
	if m == nil {
		return 0, fmt.Errorf("schedule %q is not a rate(N minutes|hours|days) expression", expr)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("schedule %q: the rate must be a positive integer", expr)
	}
	unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(m[2], "s")]
	return time.Duration(n) * unit, nil
}

func intOr(v any, def int) int {
	s, ok := scalar(v)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}
