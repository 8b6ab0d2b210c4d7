package registry

import (
	"context"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Intent is what a caller may do, as its authorizer decided (api.Caller).
type Intent struct {
	// Register: an unregistered device is registered (else Ensure answers NotFound).
	Register bool
	// CreateOnly: the caller may only create (the provisioning key). An existing device, or a concurrent
	// registration this caller lost, is Forbidden: such a caller never receives someone else's credential.
	CreateOnly bool
	// Deletions is the device's deletion count when the request was authorized; -1 skips the check. A
	// registration stops (Conflict) when the device was deleted since: no request authorized before a delete
	// registers the device again.
	Deletions int
}

func deletedSince(id string) error {
	return api.Errorf(api.Conflict, "device %s was deleted after this request was authorized; nothing was registered", id)
}

// createAuthorization creates this caller's entry in the authorization list: the device's InfluxDB
// authorization (direct mode) or an inactive ticket that opens nothing (gateway mode).
func (r *Registry) createAuthorization(ctx context.Context, id, bucketID string) (influx.Authorization, error) {
	if r.cfg.Gateway() {
		return r.c.CreateTicket(ctx, Description(id), bucketID)
	}
	return r.c.CreateBucketAuthorization(ctx, Description(id), bucketID)
}

// candidate says which listed authorizations take part in reconciliation: tickets (gateway mode) or active
// read+write authorizations on the data bucket (direct mode).
func (r *Registry) candidate(bucketID string) func(influx.Authorization) bool {
	if r.cfg.Gateway() {
		return func(a influx.Authorization) bool { return a.IsTicket(bucketID) }
	}
	return func(a influx.Authorization) bool { return a.GrantsReadWrite(bucketID) }
}

// isStale reports whether an authorization is older than StaleAfter (a crashed caller's, if it has no record).
func (r *Registry) isStale(a influx.Authorization) bool {
	return !a.CreatedAt.IsZero() && r.now().Sub(a.CreatedAt) > r.StaleAfter
}

// countFlux counts the registered devices: the distinct device ids among the record points' authId field (one
// point per authorization), not the whole records List folds. The device cap's check at every first registration.
// (schema.tagValues would read only the index, but it keeps answering a deleted device's id.)
const countFlux = `from(bucket: registryBucket)
  |> range(start: 0)
  |> filter(fn: (r) => r._measurement == measurement and r._field == "authId")
  |> group()
  |> distinct(column: "deviceId")
  |> count()`

// registered returns how many devices have a record (a deleted device's records are deleted with it); the read is
// retried and classified like every registry read.
func (r *Registry) registered(ctx context.Context) (int, error) {
	n := 0
	err := r.retried(ctx, func() error {
		n = 0
		return r.c.QueryRows(ctx, countFlux, influx.Extern{"registryBucket": r.cfg.BucketAuth, "measurement": Measurement},
			func(v map[string]any) error {
				c, _ := v["_value"].(int64)
				n += int(c)
				return nil
			})
	})
	return n, err
}
