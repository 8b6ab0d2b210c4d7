package fleet

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// batchGet reads keys (any number), retrying unprocessed keys a bounded number of times.
func batchGet(ctx context.Context, t *store.Table, keys []store.Item, consistent bool) ([]store.Item, error) {
	var out []store.Item
	for start := 0; start < len(keys); start += 100 {
		req := map[string]types.KeysAndAttributes{t.Name: {Keys: keys[start:min(len(keys), start+100)],
			ConsistentRead: aws.Bool(consistent)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == 8 {
				return nil, api.Errorf(api.StoreUnavailable, "the device store kept some keys unprocessed")
			}
			res, err := t.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, store.Classify(err)
			}
			for _, it := range res.Responses[t.Name] {
				if !store.Expired(it, time.Now()) {
					out = append(out, it)
				}
			}
			req = res.UnprocessedKeys
			if len(req) > 0 {
				if err := sleep(ctx, time.Duration(attempt+1)*50*time.Millisecond); err != nil {
					return nil, api.Wrap(api.Timeout, err, "reading the device store")
				}
			}
		}
	}
	return out, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
