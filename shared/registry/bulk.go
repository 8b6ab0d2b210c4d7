package registry

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Outcomes of one id of a bulk registration.
const (
	BulkCreated  = "created"  // registered by this request: the answer holds its credential, shown this once
	BulkExisting = "existing" // already registered: no credential (rotate it if it was lost)
	BulkLimit    = "limit"    // not registered: the device cap is reached
	BulkFailed   = "failed"   // not registered: the store or InfluxDB failed (retrying the request is safe)
)

// BulkResult is one id's outcome.
type BulkResult struct {
	DeviceID        string `json:"deviceId"`
	Outcome         string `json:"outcome"`
	AuthorizationID string `json:"authorizationId,omitempty"`
	// Token is the created device's credential (gateway mode) or InfluxDB token (direct mode).
	Token string `json:"token,omitempty"`
	Error string `json:"error,omitempty"`
}

// bulkWorkers bounds the conditional writes (and, in direct mode, authorizations) in flight.
const bulkWorkers = 8

// BulkRegister registers every id of ids (valid, distinct device ids, at most MaxBulk: the caller checks) that
// is not registered yet: one conditional write per id, the device counter moved once for the whole batch (and
// given back once for the ids that were not created). An id already registered is reported existing, never with a
// credential. Near the cap, the ids past the places left are reported limit (or existing). Results follow ids'
// order.
func (r *Registry) BulkRegister(ctx context.Context, ids []string) ([]BulkResult, error) {
	out := make([]BulkResult, len(ids))
	for i, id := range ids {
		out[i] = BulkResult{DeviceID: id, Outcome: BulkFailed}
	}
	places, err := r.reserveMany(ctx, len(ids))
	if err != nil {
		return nil, err
	}
	for i := places; i < len(ids); i++ {
		out[i].Outcome = BulkLimit
	}
	var (
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range min(bulkWorkers, places) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = r.bulkOne(ctx, ids[i])
			}
		}()
	}
	for i := range places {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if places < len(ids) {
		// past the places left: an id that is registered already is existing, not refused
		if err := r.markExisting(ctx, out[places:]); err != nil {
			return nil, err
		}
	}
	var created []string
	for _, res := range out[:places] {
		if res.Outcome == BulkCreated {
			created = append(created, res.DeviceID)
		}
	}
	if unused := places - len(created); unused > 0 {
		r.releaseMany(ctx, unused)
	}
	r.feed(ctx, created)
	return out, nil
}

// markExisting reports the ids of out that are registered as existing (one BatchGetItem per 100).
func (r *Registry) markExisting(ctx context.Context, out []BulkResult) error {
	ids := make([]string, len(out))
	for i, res := range out {
		ids[i] = res.DeviceID
	}
	live, err := r.ListOf(ctx, ids)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, d := range live {
		have[d.ID] = true
	}
	for i := range out {
		if have[out[i].DeviceID] {
			out[i].Outcome = BulkExisting
		}
	}
	return nil
}

// bulkOne registers one id: a put under attribute_not_exists(pk), or, over a deletion's tombstone, under its
// generation.
func (r *Registry) bulkOne(ctx context.Context, id string) BulkResult {
	res := BulkResult{DeviceID: id, Outcome: BulkFailed}
	prev := Device{ID: id}
	for attempt := 0; attempt < 2; attempt++ {
		d, err := r.newCredential(ctx, Device{ID: id, Generation: prev.Generation + 1})
		if err != nil {
			res.Error = failure(ctx, id, err)
			return res
		}
		d.CreatedAt = d.UpdatedAt
		cond, vals := "attribute_not_exists(pk)", map[string]types.AttributeValue{}
		if prev.Generation > 0 {
			cond = "#gen = :g AND attribute_exists(#del)"
			vals[":g"] = store.N(prev.Generation)
		}
		err = r.put(ctx, d, cond, vals)
		if err == nil {
			if err := r.activate(ctx, d); err != nil {
				res.Error = failure(ctx, id, err)
				return res
			}
			return BulkResult{DeviceID: id, Outcome: BulkCreated, AuthorizationID: d.AuthorizationID, Token: d.Token.Reveal()}
		}
		_ = r.revoke(ctx, d)
		winner, ok := lost(err)
		switch {
		case !ok:
			res.Error = failure(ctx, id, err)
			return res
		case winner.live():
			return BulkResult{DeviceID: id, Outcome: BulkExisting}
		}
		prev = winner // a tombstone: register over it, once
	}
	res.Error = "the device changed concurrently; retry"
	return res
}

// reserveMany takes up to n places under the device cap in one conditional update: all n when they fit, else the
// places left (read from the failed condition's item and taken under "n is unchanged"). It returns how many.
func (r *Registry) reserveMany(ctx context.Context, n int) (int, error) {
	max := int64(r.cfg.MaxDevices)
	want := min(int64(n), max)
	for attempt := 0; attempt < 4 && want > 0; attempt++ {
		cond := "attribute_not_exists(n) OR n <= :room"
		vals := map[string]types.AttributeValue{":k": store.N(want), ":room": store.N(max - want)}
		_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: counterKey,
			UpdateExpression: aws.String("ADD n :k"), ConditionExpression: aws.String(cond), ExpressionAttributeValues: vals,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
		err = store.Classify(err)
		cf := store.IsConditionFailed(err)
		if cf == nil {
			if err != nil {
				return 0, err
			}
			return int(want), nil
		}
		want = min(want, max-store.Num(cf.Item, "n"))
	}
	if want <= 0 {
		return 0, nil
	}
	return 0, api.Errorf(api.Conflict, "the device count kept changing concurrently; retry")
}

// releaseMany gives n places back (ids that already existed or failed). A failure is logged: the counter then
// over-counts, which errs on the cap's safe side.
func (r *Registry) releaseMany(ctx context.Context, n int) {
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: counterKey,
		UpdateExpression:          aws.String("ADD n :minus"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":minus": store.N(int64(-n))}})
	if err != nil {
		api.Logger(ctx).ErrorContext(ctx, "releasing places in the device counter failed", "places", n, "error", store.Classify(err).Error())
	}
}

// failure logs why an id failed and returns what the caller may read of it (never a cause's text).
func failure(ctx context.Context, id string, err error) string {
	api.Logger(ctx).ErrorContext(ctx, "bulk registration of a device failed", "deviceId", id, "error", err.Error())
	switch api.CodeOf(err) {
	case api.StoreUnavailable:
		return "the device store is unavailable, try again later"
	case api.Unavailable:
		return "InfluxDB is unavailable, try again later"
	case api.Timeout:
		return "timed out"
	}
	return "internal error"
}
