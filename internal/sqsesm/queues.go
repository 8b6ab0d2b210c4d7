// Package sqsesm is a local SQS event source mapping, the part of the Lambda service that polls a queue and invokes a
// function with its messages, over moto's SQS server (a stand-in for SQS, which cannot run here). The local API
// (cmd/localapi) runs the template's mappings with it; tests run the worker in-process with it.
package sqsesm

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Region is the region of local queues (their ARNs and events).
const Region = "us-east-1"

// NewSQSClient is an SQS client for endpoint with fake credentials (they never leave this machine).
func NewSQSClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// Queue is a created queue.
type Queue struct {
	URL, ARN string
}

// QueueSpec is a queue to create (an AWS::SQS::Queue's properties).
type QueueSpec struct {
	VisibilityTimeout int // seconds
	RetentionPeriod   int // seconds
	// DeadLetter names the redrive policy's target queue ("" when none), MaxReceiveCount its count.
	DeadLetter      string
	MaxReceiveCount int
}

// CreateQueues creates the template's queues (named by logical id; dead-letter targets first, so a redrive policy
// can name their ARN) and returns them by logical id. Creating an existing queue with the same attributes is a no-op.
func CreateQueues(ctx context.Context, c *sqs.Client, queues map[string]QueueSpec) (map[string]Queue, error) {
	out := map[string]Queue{}
	var create func(id string, depth int) error
	create = func(id string, depth int) error {
		if _, ok := out[id]; ok {
			return nil
		}
		q, ok := queues[id]
		if !ok || depth > len(queues) {
			return fmt.Errorf("queue %s: not a queue of the template (or a redrive cycle)", id)
		}
		attrs := map[string]string{
			string(types.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(q.VisibilityTimeout),
			string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(q.RetentionPeriod),
		}
		if q.DeadLetter != "" {
			if err := create(q.DeadLetter, depth+1); err != nil {
				return err
			}
			rp, _ := json.Marshal(map[string]string{"deadLetterTargetArn": out[q.DeadLetter].ARN,
				"maxReceiveCount": strconv.Itoa(q.MaxReceiveCount)})
			attrs[string(types.QueueAttributeNameRedrivePolicy)] = string(rp)
		}
		res, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(id), Attributes: attrs})
		if err != nil {
			return fmt.Errorf("creating queue %s: %w", id, err)
		}
		got, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: res.QueueUrl,
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
		if err != nil {
			return fmt.Errorf("reading queue %s: %w", id, err)
		}
		out[id] = Queue{URL: aws.ToString(res.QueueUrl), ARN: got.Attributes[string(types.QueueAttributeNameQueueArn)]}
		return nil
	}
	for id := range queues {
		if err := create(id, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}
