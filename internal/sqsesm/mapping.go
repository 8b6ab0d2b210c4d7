package sqsesm

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Invoke runs one invocation of the function with an SQS event: its answer, or failed true for a function error
// (an error return: the function could not be run at all).
type Invoke func(ctx context.Context, event []byte) (answer []byte, failed bool, err error)

// Event is an SQS event source mapping's settings.
type Event struct {
	BatchSize          int
	MaximumConcurrency int  // ScalingConfig.MaximumConcurrency; 0 when unset
	ReportItemFailures bool // FunctionResponseTypes has ReportBatchItemFailures
}

// SQSClient is the part of the SQS client a mapping needs.
type SQSClient interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var _ SQSClient = (*sqs.Client)(nil)

// DefaultConcurrency is the local number of pollers of a mapping without ScalingConfig (Lambda starts with five).
const DefaultConcurrency = 5

// Mapping is an SQS event source mapping, as Lambda runs it: pollers receive up to BatchSize messages, invoke the
// function with them, and delete what succeeded. A function error leaves the whole batch (with
// ReportBatchItemFailures, the listed messages) on the queue: it comes back after its visibility timeout, and the
// queue's redrive policy moves it to the dead-letter queue after maxReceiveCount receives. At most
// MaximumConcurrency invocations run at once.
type Mapping struct {
	Function string
	Event    Event
	Queue    Queue
	Client   SQSClient
	Invoke   Invoke
	Log      *slog.Logger
	// Idle is the pause after an empty receive (moto answers at once).
	Idle time.Duration

	inFlight, maxInFlight, invocations atomic.Int64
}

// Concurrency is how many invocations the mapping runs at once.
func (m *Mapping) Concurrency() int {
	if m.Event.MaximumConcurrency > 0 {
		return m.Event.MaximumConcurrency
	}
	return DefaultConcurrency
}

// Stats reports the invocations so far and the most that ran at once.
func (m *Mapping) Stats() (invocations, maxInFlight int64) {
	return m.invocations.Load(), m.maxInFlight.Load()
}

// Run polls until ctx ends.
func (m *Mapping) Run(ctx context.Context) {
	if m.Idle <= 0 {
		m.Idle = 200 * time.Millisecond
	}
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	for i := 0; i < m.Concurrency(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if !m.pollOnce(ctx) {
					select {
					case <-ctx.Done():
					case <-time.After(m.Idle):
					}
				}
			}
		}()
	}
	wg.Wait()
}

// pollOnce receives one batch and runs it; false when there was nothing to run.
func (m *Mapping) pollOnce(ctx context.Context) bool {
	out, err := m.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(m.Queue.URL),
		MaxNumberOfMessages:         int32(min(max(m.Event.BatchSize, 1), 10)),
		WaitTimeSeconds:             1,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		if ctx.Err() == nil {
			m.Log.Warn("event source mapping: receive failed", "function", m.Function, "queue", m.Queue.URL, "error", err.Error())
		}
		return false
	}
	if len(out.Messages) == 0 {
		return false
	}
	payload, err := json.Marshal(m.event(out.Messages))
	if err != nil {
		return false
	}
	n := m.inFlight.Add(1)
	for {
		old := m.maxInFlight.Load()
		if n <= old || m.maxInFlight.CompareAndSwap(old, n) {
			break
		}
	}
	m.invocations.Add(1)
	answer, failedFn, err := m.Invoke(ctx, payload)
	m.inFlight.Add(-1)
	if err != nil || failedFn {
		if ctx.Err() == nil {
			m.Log.Warn("event source mapping: function failed, batch left on the queue", "function", m.Function,
				"messages", len(out.Messages))
		}
		return true
	}
	failed := m.failedItems(answer, out.Messages)
	var del []types.DeleteMessageBatchRequestEntry
	for i, msg := range out.Messages {
		if !failed[aws.ToString(msg.MessageId)] {
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: msg.ReceiptHandle})
		}
	}
	if len(del) > 0 {
		if _, err := m.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(m.Queue.URL), Entries: del}); err != nil && ctx.Err() == nil {
			m.Log.Warn("event source mapping: delete failed (the messages come back)", "function", m.Function, "error", err.Error())
		}
	}
	return true
}

// failedItems reads a ReportBatchItemFailures answer; without that setting a successful invocation succeeds for
// every message. An answer that cannot be read fails the whole batch, as Lambda treats it.
func (m *Mapping) failedItems(payload []byte, msgs []types.Message) map[string]bool {
	failed := map[string]bool{}
	if !m.Event.ReportItemFailures || len(payload) == 0 || string(payload) == "null" {
		return failed
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(payload, &resp); err != nil {
		for _, msg := range msgs {
			failed[aws.ToString(msg.MessageId)] = true
		}
		return failed
	}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	return failed
}

// sqsRecord is one record of Lambda's SQS event.
type sqsRecord struct {
	MessageID         string            `json:"messageId"`
	ReceiptHandle     string            `json:"receiptHandle"`
	Body              string            `json:"body"`
	Attributes        map[string]string `json:"attributes"`
	MessageAttributes map[string]any    `json:"messageAttributes"`
	MD5OfBody         string            `json:"md5OfBody"`
	EventSource       string            `json:"eventSource"`
	EventSourceARN    string            `json:"eventSourceARN"`
	AWSRegion         string            `json:"awsRegion"`
}

func (m *Mapping) event(msgs []types.Message) map[string]any {
	recs := make([]sqsRecord, len(msgs))
	for i, msg := range msgs {
		recs[i] = sqsRecord{MessageID: aws.ToString(msg.MessageId), ReceiptHandle: aws.ToString(msg.ReceiptHandle),
			Body: aws.ToString(msg.Body), Attributes: msg.Attributes, MessageAttributes: map[string]any{},
			MD5OfBody: aws.ToString(msg.MD5OfBody), EventSource: "aws:sqs", EventSourceARN: m.Queue.ARN, AWSRegion: Region}
	}
	return map[string]any{"Records": recs}
}
