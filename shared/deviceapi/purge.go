package deviceapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// PurgeTask is the message of a delete's second data pass (the purge queue's body).
type PurgeTask struct {
	DeviceID   string `json:"deviceId"`
	Generation int64  `json:"generation"`
}

// MaxPurgeDelay is SQS's longest message delay.
const MaxPurgeDelay = 15 * time.Minute

// ErrNoPurgeQueue: PURGE_QUEUE_URL is not a queue URL (`sam local` resolves `!Ref PurgeQueue` to the logical id
// and runs no queue): deletes then make the first data pass only.
var ErrNoPurgeQueue = errors.New("PURGE_QUEUE_URL is not an SQS queue URL")

// PurgeQueue returns a SchedulePurge that sends the task to the SQS queue at url with delay (the default AWS
// configuration, which honours AWS_ENDPOINT_URL_SQS: moto's server locally).
func PurgeQueue(ctx context.Context, url string, delay time.Duration) (func(context.Context, string, int64) error, error) {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("%w: %q", ErrNoPurgeQueue, url)
	}
	if delay < 0 || delay > MaxPurgeDelay {
		return nil, fmt.Errorf("purge delay %s is not in [0, %s]", delay, MaxPurgeDelay)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	client := sqs.NewFromConfig(cfg)
	return func(ctx context.Context, id string, generation int64) error {
		body, err := json.Marshal(PurgeTask{DeviceID: id, Generation: generation})
		if err != nil {
			return err
		}
		_, err = client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body)),
			DelaySeconds: int32(delay / time.Second)})
		return err
	}, nil
}

// HandlePurge runs the purge queue's tasks (PurgeFunction), each registry.PurgeLate: a failed one is reported so
// SQS delivers it again (and finally dead-letters it); a malformed one is dropped with a log line.
func (s *Service) HandlePurge(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var out events.SQSEventResponse
	for _, m := range ev.Records {
		var t PurgeTask
		if err := json.Unmarshal([]byte(m.Body), &t); err != nil || api.CheckDeviceID(t.DeviceID) != nil || t.Generation < 1 {
			api.BaseLogger().ErrorContext(ctx, "malformed purge task dropped", slog.String("messageId", m.MessageId))
			continue
		}
		if err := s.reg.PurgeLate(ctx, t.DeviceID, t.Generation); err != nil {
			api.BaseLogger().ErrorContext(ctx, "second data pass failed", slog.String("deviceId", t.DeviceID), slog.String("error", err.Error()))
			out.BatchItemFailures = append(out.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			continue
		}
		api.BaseLogger().InfoContext(ctx, "second data pass done", slog.String("deviceId", t.DeviceID), slog.Int64("generation", t.Generation))
	}
	return out, nil
}
