package registry

import (
	"context"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// maxDeleteRounds bounds Delete's remove-records-then-revoke rounds under concurrent registrations.
const maxDeleteRounds = 5

// Delete revokes every authorization of the device and removes its record; withData also deletes its
// measurements (clientId=<id>) from the data bucket, after the revocation so no new point arrives. An unknown device
// is NotFound; its orphan authorizations are still revoked and, with withData, its leftover measurements deleted
// (so a retry after a half-failed delete finishes the job).
//
// Each round removes the records first and then revokes what the authorization list shows, until a list comes back
// empty: a concurrent creator whose authorization is older than that last (empty) list was revoked, and one whose
// authorization is newer wrote its record after the last removal, so the end state is either nothing or one
// authorization with its record (that creator's registration, which happened after this delete).
func (r *Registry) Delete(ctx context.Context, id string, withData bool) error {
	_, err := r.Get(ctx, id)
	if err != nil && !api.IsCode(err, api.NotFound) {
		return err
	}
	known := err == nil
	notFound := &api.Error{Code: api.NotFound, Message: "device " + id + " is not registered"}
	if !known {
		auths, err := r.c.FindAuthorizations(ctx, Description(id))
		if err != nil {
			return api.Wrap(classify(err), err, "listing authorizations")
		}
		if len(auths) == 0 {
			// a retry after a delete that failed half-way still removes the data it was asked to
			if err := r.deleteData(ctx, id, withData); err != nil {
				return err
			}
			return notFound
		}
	}
	// first the tombstone: a registration authorized before this delete sees it (or is revoked below), so it
	// cannot register the device again; if it cannot be written, nothing is revoked
	if err := r.tombstone(ctx, id); err != nil {
		return err
	}
	for round := 0; ; round++ {
		if round == maxDeleteRounds {
			return api.Errorf(api.Conflict, "device %s keeps being registered concurrently, try again", id)
		}
		if err := r.deleteRecord(ctx, id, ""); err != nil {
			return err
		}
		auths, err := r.c.FindAuthorizations(ctx, Description(id))
		if err != nil {
			return api.Wrap(classify(err), err, "listing authorizations")
		}
		if len(auths) == 0 {
			break
		}
		for _, a := range auths {
			if err := r.c.DeleteAuthorization(ctx, a.ID); err != nil {
				return api.Wrap(classify(err), err, "revoking an authorization")
			}
		}
	}
	r.unclaimAll(ctx, id)
	if err := r.deleteData(ctx, id, withData); err != nil {
		return err
	}
	if !known {
		return notFound
	}
	return nil
}

// deleteData removes the device's measurements (clientId=<id>) when asked to: the raw points, then the hourly
// aggregates the downsampling task made of them (in that order, so a task run between the two deletes finds no raw
// points left to aggregate again).
func (r *Registry) deleteData(ctx context.Context, id string, withData bool) error {
	if !withData {
		return nil
	}
	for _, t := range []struct{ bucket, measurement string }{
		{r.cfg.Bucket, schema.Measurement},
		{r.cfg.BucketDownsampled, schema.DownsampledMeasurement},
	} {
		if t.bucket == "" {
			continue
		}
		pred, err := influx.Predicate("_measurement", t.measurement, schema.TagClientID, id)
		if err != nil {
			return api.Wrap(api.Internal, err, "building the data predicate")
		}
		if err := r.c.Delete(ctx, t.bucket, influx.AllTimeStart, influx.AllTimeStop, pred); err != nil {
			return api.Wrap(classify(err), err, "deleting the device's measurements")
		}
	}
	return nil
}
