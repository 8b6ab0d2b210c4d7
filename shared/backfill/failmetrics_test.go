package backfill

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
)

// sumOf adds up one metric over the EMF lines.
func sumOf(t *testing.T, out, name string) float64 {
	t.Helper()
	var n float64
	if out == "" {
		return 0
	}
	for _, l := range emf(t, out) {
		if v, ok := l[name].(float64); ok {
			n += v
			if l["Function"] != "BackfillWorker" {
				t.Errorf("%s without the Function dimension: %v", name, l)
			}
		}
	}
	return n
}

// TestFailureMetrics: the worker's invocation succeeds even when its tasks fail (they are reported per message),
// so Lambda's Errors metric never sees them; TasksRetried and ChunksFailed (EMF) do, for BackfillFailuresAlarm.
func TestFailureMetrics(t *testing.T) {
	srv := influxtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("tasks left for a retry", func(t *testing.T) {
		var out bytes.Buffer
		r := &Runner{Worker: &Worker{Metrics: &out}}
		resp, err := r.HandleSQS(ctx, events.SQSEvent{Records: []events.SQSMessage{
			{MessageId: "a", Body: "not json"},
			{MessageId: "b", Body: `{"kind":"dance"}`},
		}})
		if err != nil || len(resp.BatchItemFailures) != 2 {
			t.Fatalf("got %v %+v, want two failed items and no error", err, resp)
		}
		if got := sumOf(t, out.String(), "TasksRetried"); got != 2 {
			t.Errorf("TasksRetried %v, want 2:\n%s", got, out.String())
		}
	})

	t.Run("chunks past the deadline", func(t *testing.T) {
		var out bytes.Buffer
		c := srv.Client(t)
		bucket := srv.NewBucket(t, "failmetrics")
		now := fixedNow
		j := newJob(requestKey(bucket, []string{"d1"}, 1), []string{"d1"}, LastDays(now, 1), now.Add(-time.Hour), time.Minute)
		r := &Runner{Worker: &Worker{Influx: c, Bucket: bucket, Gen: home, Metrics: &out},
			Jobs: &JobStore{Table: testenv.StateTable(t, nil)}, Clock: func() time.Time { return now }}
		min := now.Unix() / 60
		task := Task{Kind: KindChunk, Job: j.ref(), Chunks: []ChunkRef{
			{DeviceID: "d1", Window: Range{min - 120, min - 60}, Seq: 0, Of: 2},
			{DeviceID: "d1", Window: Range{min - 60, min}, Seq: 1, Of: 2}}}
		if err := r.Run(ctx, task); err != nil {
			t.Fatal(err)
		}
		if got := sumOf(t, out.String(), "ChunksFailed"); got != 2 {
			t.Errorf("ChunksFailed %v, want 2:\n%s", got, out.String())
		}
	})

	t.Run("success counts nothing", func(t *testing.T) {
		var out bytes.Buffer
		r := &Runner{Worker: &Worker{Metrics: &out}}
		if _, err := r.HandleSQS(ctx, events.SQSEvent{}); err != nil {
			t.Fatal(err)
		}
		if got := sumOf(t, out.String(), "TasksRetried"); got != 0 {
			t.Errorf("TasksRetried %v on an empty batch, want none", got)
		}
	})
}
