package registry

import (
	"context"
	"sync"

	"github.com/iot-center/iot-center-serverless/shared/api"
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
	Token           string `json:"token,omitempty"` // the created device's credential or InfluxDB token
	Error           string `json:"error,omitempty"`
}

// bulkWorkers bounds the conditional writes (and, in direct mode, authorizations) in flight.
const bulkWorkers = 8

// BulkRegister registers the ids (valid and distinct) not registered yet, one conditional write each, moving the
// device counter once for the batch; near the cap, the ids past the places left are limit (or existing). An id
// registered already is existing, never with a credential. Results follow ids' order.
func (r *Registry) BulkRegister(ctx context.Context, ids []string) ([]BulkResult, error) {
	places, err := r.reserve(ctx, len(ids))
	if err != nil {
		return nil, err
	}
	out := make([]BulkResult, len(ids))
	for i, id := range ids {
		out[i] = BulkResult{DeviceID: id, Outcome: BulkFailed}
		if i >= places {
			out[i].Outcome = BulkLimit
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, bulkWorkers)
	for i := 0; i < places && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = r.bulkOne(ctx, ids[i])
		}()
	}
	wg.Wait()
	var created []string
	for _, res := range out[:places] {
		if res.Outcome == BulkCreated {
			created = append(created, res.DeviceID)
		}
	}
	if unused := places - len(created); unused > 0 {
		r.release(ctx, unused)
	}
	r.feed(ctx, created)
	if places == len(ids) {
		return out, nil
	}
	live, err := r.ListOf(ctx, ids[places:]) // past the places left, a registered id is existing, not refused
	if err != nil {
		return nil, err
	}
	existing := map[string]bool{}
	for _, d := range live {
		existing[d.ID] = true
	}
	for i := places; i < len(out); i++ {
		if existing[out[i].DeviceID] {
			out[i].Outcome = BulkExisting
		}
	}
	return out, nil
}

// bulkOne registers one id, over a deletion's tombstone once.
func (r *Registry) bulkOne(ctx context.Context, id string) BulkResult {
	prev := Device{ID: id}
	for range 2 {
		d, won, err := r.register(ctx, prev)
		switch {
		case err != nil:
			return BulkResult{DeviceID: id, Outcome: BulkFailed, Error: failure(ctx, id, err)}
		case won:
			return BulkResult{DeviceID: id, Outcome: BulkCreated, AuthorizationID: d.AuthorizationID, Token: d.Token.Reveal()}
		case d.live():
			return BulkResult{DeviceID: id, Outcome: BulkExisting}
		}
		prev = d // a tombstone
	}
	return BulkResult{DeviceID: id, Outcome: BulkFailed, Error: "the device changed concurrently; retry"}
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
