package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Dispatcher hands one chunk to a worker.
type Dispatcher interface {
	Dispatch(ctx context.Context, c Chunk) error
}

// Invoker is the part of the aws-sdk-go-v2 Lambda client the dispatcher needs.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var (
	_ Invoker    = (*lambda.Client)(nil)
	_ Dispatcher = (*LambdaDispatcher)(nil)
)

// LambdaDispatcher invokes the worker function asynchronously (InvocationType Event): Lambda queues the chunk and
// answers 202 at once, retries a failing chunk and sends the one that still fails to the on-failure destination.
// Locally AWS_ENDPOINT_URL_LAMBDA points the same client at the local API's Invoke endpoint.
type LambdaDispatcher struct {
	Client   Invoker
	Function string // name or ARN of the worker
}

// Dispatch queues one chunk.
func (d *LambdaDispatcher) Dispatch(ctx context.Context, c Chunk) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return err
	}
	out, err := d.Client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(d.Function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("backfill: invoking %s: %w", d.Function, err)
	}
	if out.StatusCode != 202 {
		return fmt.Errorf("backfill: invoking %s answered %d, want 202", d.Function, out.StatusCode)
	}
	return nil
}

// dispatchParallel is how many invokes the planner has in flight: enough to queue a 30-day, many-device plan well
// within the planner's timeout, few enough not to trip the Invoke API's request throttle.
const dispatchParallel = 8

// dispatchAll dispatches every chunk, a few at a time, and returns how many were queued and the first error.
func dispatchAll(ctx context.Context, d Dispatcher, chunks []Chunk) (int, error) {
	var done atomic.Int64
	err := forEach(ctx, len(chunks), dispatchParallel, func(ctx context.Context, i int) error {
		if err := d.Dispatch(ctx, chunks[i]); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	if int(done.Load()) == len(chunks) {
		err = nil // every chunk was queued: a cancellation after the last invoke changes nothing
	}
	return int(done.Load()), err
}
