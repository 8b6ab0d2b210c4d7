package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Queue carries tasks to the worker: an SQS queue whose event source mapping runs BackfillWorkerFunction with
// BatchSize 1 and ScalingConfig.MaximumConcurrency (the bound on InfluxDB's write pressure), a redrive policy
// moving a task that keeps failing to the dead-letter queue.
type Queue interface {
	Send(ctx context.Context, tasks []Task) error
	// Retry makes a received message visible again after delay (a backoff before its next attempt).
	Retry(ctx context.Context, receiptHandle string, delay time.Duration) error
}

// SQSAPI is the part of the aws-sdk-go-v2 SQS client the queue needs.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var (
	_ SQSAPI = (*sqs.Client)(nil)
	_ Queue  = (*SQSQueue)(nil)
)

// SQSQueue sends tasks to an SQS queue. Locally AWS_ENDPOINT_URL_SQS points the same client at moto's server.
type SQSQueue struct {
	Client SQSAPI
	URL    string
}

// ErrNoQueue: CHUNK_QUEUE_URL is not a queue URL. `sam local start-api` resolves `!Ref ChunkQueue` to the bare
// logical id "ChunkQueue" and runs no queue; the planner then answers write-missing requests 501 (Service.Queue nil).
var ErrNoQueue = errors.New("CHUNK_QUEUE_URL is not an SQS queue URL (sam local creates no queue)")

// ChunkQueue is the SQS queue at url (CHUNK_QUEUE_URL, required) through the default AWS configuration, which
// honours AWS_ENDPOINT_URL_SQS (moto's server locally): the planner's and the worker's one way to build it.
func ChunkQueue(ctx context.Context, url string) (*SQSQueue, error) {
	if url == "" {
		return nil, errors.New("CHUNK_QUEUE_URL is required (the chunk queue's URL)")
	}
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("%w: %q", ErrNoQueue, url)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return &SQSQueue{Client: sqs.NewFromConfig(cfg), URL: url}, nil
}

// sendParallel bounds the SendMessageBatch calls in flight (10 messages each).
const sendParallel = 4

// Send queues the tasks, ten per SendMessageBatch call; an entry SQS refuses is sent once more before failing.
func (q *SQSQueue) Send(ctx context.Context, tasks []Task) error {
	batches := (len(tasks) + 9) / 10
	return forEach(ctx, batches, sendParallel, func(ctx context.Context, b int) error {
		part := tasks[b*10 : min(len(tasks), (b+1)*10)]
		entries := make([]types.SendMessageBatchRequestEntry, len(part))
		for i, t := range part {
			body, err := json.Marshal(t)
			if err != nil {
				return err
			}
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
		}
		for attempt := 0; len(entries) > 0; attempt++ {
			out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
			if err != nil {
				return fmt.Errorf("backfill: sending tasks: %w", err)
			}
			if len(out.Failed) == 0 {
				return nil
			}
			if attempt == 1 {
				return fmt.Errorf("backfill: SQS refused %d tasks: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
			}
			failed := map[string]bool{}
			for _, f := range out.Failed {
				failed[aws.ToString(f.Id)] = true
			}
			var again []types.SendMessageBatchRequestEntry
			for _, e := range entries {
				if failed[aws.ToString(e.Id)] {
					again = append(again, e)
				}
			}
			entries = again
		}
		return nil
	})
}

// Retry sets the message's visibility timeout to delay: SQS hands it to the worker again after that.
func (q *SQSQueue) Retry(ctx context.Context, receiptHandle string, delay time.Duration) error {
	_, err := q.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q.URL),
		ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: int32(min(max(delay, 0), 12*time.Hour) / time.Second)})
	return err
}
