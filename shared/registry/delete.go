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

// Delete turns the device's item into a tombstone, revokes its authorization (direct mode), forgets its series
// and, withData, deletes its points. An unknown device is NotFound, but a retry after a half-failed delete still
// sweeps and deletes the data it was asked to.
func (r *Registry) Delete(ctx context.Context, id string, withData bool) error {
	err := r.tombstone(ctx, id, withData)
	if err != nil && !api.IsCode(err, api.NotFound) {
		return err
	}
	if serr := r.sweep(ctx, id); serr != nil {
		return serr
	}
	if serr := r.forgetSeries(ctx, id); serr != nil {
		return serr
	}
	if withData {
		if derr := r.deleteData(ctx, id); derr != nil {
			return derr
		}
	}
	return err
}

// tombstone puts the tombstone under the generation read, reading again (a bounded number of rounds) while
// concurrent rotations land first.
func (r *Registry) tombstone(ctx context.Context, id string, withData bool) error {
	cur, err := r.Get(ctx, id)
	for round := 0; err == nil; round++ {
		if round == 5 {
			return api.Errorf(api.Conflict, "device %s keeps changing concurrently, try again", id)
		}
		if err := r.revoked(ctx, id); err != nil {
			return err
		}
		tomb := Device{ID: id, Generation: cur.Generation + 1, CreatedAt: cur.CreatedAt, UpdatedAt: r.now(), deleted: true}
		if withData && r.SchedulePurge != nil {
			// queued first: a pass whose tombstone was never written finds another generation and does nothing
			tomb.purgeAt = r.now().Add(r.PurgeDelay).Unix()
			if err := r.SchedulePurge(ctx, id, tomb.Generation); err != nil {
				return api.Wrap(api.Unavailable, err, "queueing the second data pass")
			}
		}
		werr := r.put(ctx, tomb, cur)
		if werr == nil {
			r.release(ctx, 1)
			return r.revoke(ctx, cur) // fail closed: a retry finds the tombstone and sweeps
		}
		winner, ok := lost(werr)
		if !ok {
			return werr
		}
		if !winner.live() { // a concurrent delete won
			return &api.Error{Code: api.NotFound, Message: "device " + id + " is not registered"}
		}
		winner.ID = id
		cur = winner
	}
	return err
}

// forgetSeries removes the device's tag sets that the write gateway's series budget keeps (a device registered
// again starts with none) and gives their number back to the fleet's count.
func (r *Registry) forgetSeries(ctx context.Context, id string) error {
	out, err := r.table.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.table.Name, Key: SeriesKey(id),
		ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return store.Classify(err)
	}
	ss, ok := out.Attributes[AttrSeries].(*types.AttributeValueMemberSS)
	if !ok {
		return nil
	}
	_, err = r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: FleetSeriesKey(),
		UpdateExpression: aws.String("ADD #n :k"), ExpressionAttributeNames: map[string]string{"#n": AttrFleetSeries},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": store.N(-int64(len(ss.Value)))}})
	return store.Classify(err)
}

// purgeGrace is how long past its due time a pending second pass keeps the id from being registered again; past it
// (a pass lost or dead-lettered) a late pass finds another generation and deletes nothing.
const purgeGrace = 15 * time.Minute

// PurgeLate is a delete's second data pass, once every credential cache has dropped the deleted credential: the
// device's points written after the first pass go too. It runs only while the item is still the tombstone of that
// delete (generation), so a device registered again keeps its data, then clears the pending mark.
func (r *Registry) PurgeLate(ctx context.Context, id string, generation int64) error {
	it, err := r.table.Get(ctx, Key(id), true)
	if err != nil {
		return err
	}
	if d := fromItem(it); it == nil || !d.deleted || d.Generation != generation {
		api.Logger(ctx).InfoContext(ctx, "second data pass skipped: the id changed since its delete", "deviceId", id,
			"generation", generation, "now", d.Generation)
		return nil
	}
	if err := r.deleteData(ctx, id); err != nil {
		return err
	}
	_, err = r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: Key(id),
		UpdateExpression: aws.String("REMOVE #p"), ConditionExpression: aws.String("#gen = :g"),
		ExpressionAttributeNames:  map[string]string{"#p": attrPurgeAt, "#gen": attrGen},
		ExpressionAttributeValues: map[string]types.AttributeValue{":g": store.N(generation)}})
	if err = store.Classify(err); store.IsConditionFailed(err) != nil {
		return nil
	}
	return err
}

// deleteData removes every point tagged clientId=<id>, in every measurement (the predicate names none): the raw
// points first, so the hourly task finds none left to aggregate again, then the hourly aggregates.
func (r *Registry) deleteData(ctx context.Context, id string) error {
	pred, err := influx.Predicate(schema.TagClientID, id)
	if err != nil {
		return api.Wrap(api.Internal, err, "building the data predicate")
	}
	for _, bucket := range []string{r.cfg.Bucket, r.cfg.BucketDownsampled} {
		if bucket != "" {
			err := r.c.Delete(ctx, bucket, influx.AllTimeStart, influx.AllTimeStop, pred)
			if err != nil {
				return influx.Fail(ctx, err, "deleting the device's measurements")
			}
		}
	}
	return nil
}
