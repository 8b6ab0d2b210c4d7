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
