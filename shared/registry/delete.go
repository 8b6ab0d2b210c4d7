package registry

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// maxDeleteRounds bounds Delete's attempts while concurrent rotations keep changing the generation.
const maxDeleteRounds = 5

// Delete turns the device's item into a tombstone under the generation read, then revokes its InfluxDB
// authorization (direct mode) and, withData, deletes its measurements (clientId=<id>) from the data bucket and the
// hourly aggregates. An unknown device is NotFound; a retry after a half-failed delete still sweeps orphan
// authorizations and deletes the data it was asked to.
func (r *Registry) Delete(ctx context.Context, id string, withData bool) error {
	cur, err := r.Get(ctx, id)
	for round := 0; err == nil; round++ {
		if round == maxDeleteRounds {
			return api.Errorf(api.Conflict, "device %s keeps changing concurrently, try again", id)
		}
		if err := r.revoked(ctx, id); err != nil {
			return err
		}
		tomb := Device{ID: id, Generation: cur.Generation + 1, CreatedAt: cur.CreatedAt, UpdatedAt: r.now(), deleted: true}
		if withData && r.SchedulePurge != nil {
			// queued before the tombstone exists: a pass whose tombstone was never written finds another
			// generation and does nothing
			tomb.purgeAt = r.now().Add(r.PurgeDelay).Unix()
			if err := r.SchedulePurge(ctx, id, tomb.Generation); err != nil {
				return api.Wrap(api.Unavailable, err, "queueing the second data pass")
			}
		}
		werr := r.put(ctx, tomb, "#gen = :g AND attribute_not_exists(#del)", map[string]types.AttributeValue{":g": store.N(cur.Generation)})
		if werr == nil {
			r.release(ctx)
			// fail closed: a token still open is an error (a retry finds the tombstone and sweeps)
			if err := r.revoke(ctx, cur); err != nil {
				return err
			}
			break
		}
		winner, ok := lost(werr)
		if !ok {
			return werr
		}
		winner.ID = id
		if !winner.live() {
			err = &api.Error{Code: api.NotFound, Message: "device " + id + " is not registered"} // a concurrent delete won
			break
		}
		cur = winner
	}
	if err != nil && !api.IsCode(err, api.NotFound) {
		return err
	}
	if serr := r.sweep(ctx, id); serr != nil {
		return serr
	}
	if serr := r.forgetSeries(ctx, id); serr != nil {
		return serr
	}
	if derr := r.deleteData(ctx, id, withData); derr != nil {
		return derr
	}
	return err
}

// forgetSeries removes the device's tag sets the write gateway's series budget keeps (a device registered again
// under the id starts with none) and gives their number back to the fleet's count.
func (r *Registry) forgetSeries(ctx context.Context, id string) error {
	out, err := r.table.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.table.Name, Key: SeriesKey(id),
		ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return store.Classify(err)
	}
	ss, ok := out.Attributes[AttrSeries].(*types.AttributeValueMemberSS)
	if !ok || len(ss.Value) == 0 {
		return nil
	}
	_, err = r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: FleetSeriesKey(),
		UpdateExpression:          aws.String("ADD #n :k"),
		ExpressionAttributeNames:  map[string]string{"#n": AttrFleetSeries},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": store.N(-int64(len(ss.Value)))}})
	return store.Classify(err)
}

// purgeGrace is how long past its due time a pending second pass keeps the id from being registered again. Past it
// (a pass lost or dead-lettered) the id may be registered: a pass arriving later finds another generation and
// deletes nothing.
const purgeGrace = 15 * time.Minute

// PurgeLate is a delete's second data pass, run once the longest credential-cache lifetime has passed: a gateway
// instance that still had the credential cached may have written points after the first pass. It deletes the
// device's points again (every measurement, both buckets) only while the item is still the tombstone of that
// delete (generation), so it never touches the data of a device registered again under the id, then clears the
// pending mark (which lets the id be registered again).
func (r *Registry) PurgeLate(ctx context.Context, id string, generation int64) error {
	it, err := r.table.Get(ctx, Key(id), true)
	if err != nil {
		return err
	}
	d := fromItem(it)
	if it == nil || !d.deleted || d.Generation != generation {
		api.Logger(ctx).InfoContext(ctx, "second data pass skipped: the id changed since its delete", "deviceId", id,
			"generation", generation, "now", d.Generation)
		return nil
	}
	if err := r.deleteData(ctx, id, true); err != nil {
		return err
	}
	_, err = r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: Key(id),
		UpdateExpression:          aws.String("REMOVE #p"),
		ConditionExpression:       aws.String("#gen = :g"),
		ExpressionAttributeNames:  map[string]string{"#p": attrPurgeAt, "#gen": attrGen},
		ExpressionAttributeValues: map[string]types.AttributeValue{":g": store.N(generation)}})
	if err = store.Classify(err); err != nil && store.IsConditionFailed(err) == nil {
		return err
	}
	return nil
}

// deleteData removes every point tagged clientId=<id> when asked to, in every measurement (SchemaExtension's
// included: the predicate names no _measurement): the raw points, then the hourly aggregates the downsampling task
// made of them (in that order, so a task run between the two deletes finds no raw points left to aggregate again).
func (r *Registry) deleteData(ctx context.Context, id string, withData bool) error {
	if !withData {
		return nil
	}
	pred, err := influx.Predicate(schema.TagClientID, id)
	if err != nil {
		return api.Wrap(api.Internal, err, "building the data predicate")
	}
	for _, bucket := range []string{r.cfg.Bucket, r.cfg.BucketDownsampled} {
		if bucket == "" {
			continue
		}
		if err := r.c.Delete(ctx, bucket, influx.AllTimeStart, influx.AllTimeStop, pred); err != nil {
			return api.Wrap(influx.Classify(err), err, "deleting the device's measurements")
		}
	}
	return nil
}
