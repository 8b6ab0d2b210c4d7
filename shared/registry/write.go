package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Intent is what a caller may do, as its authorizer decided (api.Caller).
type Intent struct {
	// Register: an unregistered device is registered (else Ensure answers NotFound).
	Register bool
	// CreateOnly: the caller may only create (the provisioning key). An existing device, or a concurrent
	// registration this caller lost, is Forbidden: such a caller never receives someone else's credential.
	CreateOnly bool
	// Generation is the device's generation when the request was authorized; -1 skips the check. A registration
	// stops (Conflict) when the device changed since: no request authorized before a delete registers it again.
	Generation int64
}

func deletedSince(id string) error {
	return api.Errorf(api.Conflict, "device %s was deleted after this request was authorized; nothing was registered", id)
}

// Register registers id (idempotently) with no authorizer context (tests, tools): Ensure with Register set.
func (r *Registry) Register(ctx context.Context, id string) (d Device, created bool, err error) {
	return r.Ensure(ctx, id, Intent{Register: true, Generation: -1})
}

// Ensure returns the device's working record, registering an unregistered device when in.Register. In direct mode
// a broken authorization (gone, no longer read+write on the data bucket) is replaced, and the current one left
// inactive by a crashed winner is activated. created is true only for the one caller whose write registered the
// device; only that caller's Device carries a gateway credential.
func (r *Registry) Ensure(ctx context.Context, id string, in Intent) (Device, bool, error) {
	cur, err := r.Get(ctx, id)
	switch {
	case err == nil && in.CreateOnly:
		return Device{}, false, api.Errorf(api.Forbidden, "device %s is already registered", id)
	case err == nil:
		d, _, err := r.heal(ctx, cur)
		return d, false, err
	case !api.IsCode(err, api.NotFound) || !in.Register:
		return Device{}, false, err
	case in.Generation >= 0 && cur.Generation != in.Generation:
		return Device{}, false, deletedSince(id)
	case cur.purgeAt > 0 && r.now().Before(time.Unix(cur.purgeAt, 0).Add(purgeGrace)):
		return Device{}, false, api.Errorf(api.Conflict, "device %s was deleted with its data; what its old credential wrote late is removed at %s: register it again after that",
			id, time.Unix(cur.purgeAt, 0).UTC().Format(time.RFC3339))
	}
	return r.create(ctx, cur, in)
}

// create is a first registration (or one after a deletion: prev is the tombstone read).
func (r *Registry) create(ctx context.Context, prev Device, in Intent) (Device, bool, error) {
	id := prev.ID
	if err := r.reserve(ctx); err != nil {
		return Device{}, false, err
	}
	d, err := r.newCredential(ctx, Device{ID: id, Generation: prev.Generation + 1})
	if err != nil {
		r.release(ctx)
		return Device{}, false, err
	}
	d.CreatedAt = d.UpdatedAt
	cond := "attribute_not_exists(pk)"
	vals := map[string]types.AttributeValue{}
	if prev.Generation > 0 {
		cond = "#gen = :g AND attribute_exists(#del)"
		vals[":g"] = store.N(prev.Generation)
	}
	err = r.put(ctx, d, cond, vals)
	if err == nil {
		r.feed(ctx, []string{id})
		return d, true, r.activate(ctx, d)
	}
	r.release(ctx)
	_ = r.revoke(ctx, d)
	winner, ok := lost(err)
	switch {
	case !ok:
		return Device{}, false, err
	case !winner.live():
		// deleted again between our read and our write
		return Device{}, false, deletedSince(id)
	case in.CreateOnly:
		return Device{}, false, api.Errorf(api.Forbidden, "device %s was registered by another caller", id)
	}
	winner.ID = id
	return winner, false, r.activate(ctx, winner)
}

// Rotate gives the device a new credential under the generation read: the old one stops working (an old InfluxDB
// token gets 401, the gateway refuses an old credential within its revocation window). Of concurrent rotations of
// one generation one wins; won is false for the others, which get the winner's record (in gateway mode without
// its credential).
func (r *Registry) Rotate(ctx context.Context, id string) (Device, bool, error) {
	cur, err := r.Get(ctx, id)
	if err != nil {
		return Device{}, false, err
	}
	return r.replace(ctx, cur)
}

// replace writes a new credential for cur under cur's generation.
func (r *Registry) replace(ctx context.Context, cur Device) (Device, bool, error) {
	d, err := r.newCredential(ctx, Device{ID: cur.ID, Generation: cur.Generation + 1, CreatedAt: cur.CreatedAt})
	if err != nil {
		return Device{}, false, err
	}
	if err := r.revoked(ctx, cur.ID); err != nil {
		_ = r.revoke(ctx, d)
		return Device{}, false, err
	}
	err = r.update(ctx, d, "#gen = :g AND attribute_not_exists(#del)", map[string]types.AttributeValue{":g": store.N(cur.Generation)})
	if err == nil {
		if err := r.activate(ctx, d); err != nil {
			return Device{}, false, err
		}
		_ = r.revoke(ctx, cur)
		_ = r.sweep(ctx, d.ID)
		return d, true, nil
	}
	_ = r.revoke(ctx, d)
	winner, ok := lost(err)
	switch {
	case !ok:
		return Device{}, false, err
	case !winner.live():
		return Device{}, false, api.Errorf(api.Conflict, "device %s was deleted concurrently", cur.ID)
	}
	winner.ID = cur.ID
	if r.cfg.Gateway() {
		winner.Token = ""
	}
	return winner, false, r.activate(ctx, winner)
}

// put writes d's item under cond (#gen and #del name the generation and deleted attributes); a lost condition is
// *store.ConditionFailed holding the item that won.
func (r *Registry) put(ctx context.Context, d Device, cond string, vals map[string]types.AttributeValue) error {
	in := &dynamodb.PutItemInput{TableName: &r.table.Name, Item: Item(d), ConditionExpression: aws.String(cond),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
	if len(vals) > 0 {
		in.ExpressionAttributeNames = map[string]string{"#gen": attrGen, "#del": attrDeleted}
		in.ExpressionAttributeValues = vals
	}
	_, err := r.table.DB.PutItem(ctx, in)
	return store.Classify(err)
}

// update writes d's generation, credential and updatedAt onto the existing item under cond (#gen and #del name the
// generation and deleted attributes), keeping what it does not name: the device's health, which the fleet-health run
// keeps. A lost condition is *store.ConditionFailed holding the item that won.
func (r *Registry) update(ctx context.Context, d Device, cond string, vals map[string]types.AttributeValue) error {
	names := map[string]string{"#gen": attrGen, "#del": attrDeleted, "#cred": attrCred, "#u": attrUpdated, "#hash": attrHash, "#token": attrToken}
	v := map[string]types.AttributeValue{":ng": store.N(d.Generation), ":cred": store.S(d.AuthorizationID), ":u": store.S(rfc3339(d.UpdatedAt))}
	for k, x := range vals {
		v[k] = x
	}
	expr := "SET #gen = :ng, #cred = :cred, #u = :u"
	if d.CredentialHash != "" {
		expr += ", #hash = :secret REMOVE #token"
		v[":secret"] = store.S(d.CredentialHash)
	} else {
		expr += ", #token = :secret REMOVE #hash"
		v[":secret"] = store.S(d.Token.Reveal())
	}
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: Key(d.ID),
		UpdateExpression: aws.String(expr), ConditionExpression: aws.String(cond), ExpressionAttributeNames: names,
		ExpressionAttributeValues: v, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	return store.Classify(err)
}

// reserve takes one place under the device cap: the counter grows by one only while below MaxDevices.
func (r *Registry) reserve(ctx context.Context) error {
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: counterKey,
		UpdateExpression:          aws.String("ADD n :one"),
		ConditionExpression:       aws.String("attribute_not_exists(n) OR n < :max"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": store.N(1), ":max": store.N(int64(r.cfg.MaxDevices))}})
	err = store.Classify(err)
	if _, full := lost(err); full {
		return api.Errorf(api.TooMany, "the device limit (%d) is reached", r.cfg.MaxDevices)
	}
	return err
}

// release gives a place back (a registration that lost or failed, a deletion). A failure is logged: the counter
// then over-counts by one, which errs on the cap's safe side.
func (r *Registry) release(ctx context.Context) {
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: counterKey,
		UpdateExpression:          aws.String("ADD n :minus"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":minus": store.N(-1)}})
	if err != nil {
		api.Logger(ctx).ErrorContext(ctx, "releasing a place in the device counter failed", "error", store.Classify(err).Error())
	}
}

// newCredential fills d with a new credential: in gateway mode a random credential (only its hash is stored) and
// id; in direct mode a new, inactive InfluxDB authorization.
func (r *Registry) newCredential(ctx context.Context, d Device) (Device, error) {
	d.UpdatedAt = r.now().UTC()
	if r.cfg.Gateway() {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		d.AuthorizationID = "g" + hex.EncodeToString(b)
		d.Token, d.CredentialHash = newCredential(d.ID)
		return d, nil
	}
	bucketID, err := r.dataBucketID(ctx)
	if err != nil {
		return Device{}, err
	}
	a, err := r.c.CreateInactiveAuthorization(ctx, Description(d.ID), bucketID)
	if err != nil {
		return Device{}, api.Wrap(influx.Classify(err), err, "creating the device's authorization")
	}
	d.AuthorizationID, d.Token = a.ID, config.Secret(a.Token)
	return d, nil
}

// activate makes the won authorization work (direct mode); idempotent, so a loser may activate the winner's too.
func (r *Registry) activate(ctx context.Context, d Device) error {
	if r.cfg.Gateway() {
		return nil
	}
	if err := r.c.ActivateAuthorization(ctx, d.AuthorizationID); err != nil {
		return api.Wrap(influx.Classify(err), err, "activating the device's authorization")
	}
	return nil
}

// revoke deletes d's InfluxDB authorization (direct mode): a lost race's, a replaced or a deleted one. A failure
// is logged and returned; callers that may go on (an inactive leftover opens nothing, the next sweep revokes it)
// ignore it.
func (r *Registry) revoke(ctx context.Context, d Device) error {
	if r.cfg.Gateway() || d.AuthorizationID == "" {
		return nil
	}
	if err := r.c.DeleteAuthorization(ctx, d.AuthorizationID); err != nil {
		api.Logger(ctx).ErrorContext(ctx, "revoking an authorization failed", "authorizationId", d.AuthorizationID, "error", err.Error())
		return api.Wrap(influx.Classify(err), err, "revoking the device's authorization")
	}
	return nil
}

// sweep revokes the device's InfluxDB authorizations that are not the current item's and either active (a
// replaced or deleted one whose revocation failed) or inactive for longer than StaleAfter (a crashed caller's).
// It lists before it reads the item: an authorization activated before the list was current before the read, so
// no winner's is revoked. Listing reads the organization's authorizations: rotations and deletions only.
func (r *Registry) sweep(ctx context.Context, id string) error {
	if r.cfg.Gateway() || r.c == nil {
		return nil
	}
	auths, err := r.c.FindAuthorizations(ctx, Description(id))
	if err != nil {
		api.Logger(ctx).ErrorContext(ctx, "listing the device's authorizations failed", "error", err.Error())
		return api.Wrap(influx.Classify(err), err, "listing the device's authorizations")
	}
	if len(auths) == 0 {
		return nil
	}
	cur, err := r.Get(ctx, id)
	if err != nil && !api.IsCode(err, api.NotFound) {
		return err
	}
	for _, a := range auths {
		stale := !a.CreatedAt.IsZero() && r.now().Sub(a.CreatedAt) > r.StaleAfter
		if a.ID != cur.AuthorizationID && (a.Active || stale) {
			if err := r.revoke(ctx, Device{AuthorizationID: a.ID}); err != nil {
				return err
			}
		}
	}
	return nil
}

// heal returns the device as is in gateway mode; in direct mode it checks the authorization: activated when it is
// inactive and the item younger than StaleAfter (a winner about to activate it, or crashed before), replaced when
// it is gone, inactive for longer (deactivated in InfluxDB) or no longer read+write on the data bucket.
// mine is false when a concurrent caller's replacement won (then d is the winner's).
func (r *Registry) heal(ctx context.Context, d Device) (nd Device, mine bool, err error) {
	if r.cfg.Gateway() {
		return d, true, nil
	}
	bucketID, err := r.dataBucketID(ctx)
	if err != nil {
		return Device{}, false, err
	}
	a, err := r.c.GetAuthorization(ctx, d.AuthorizationID)
	switch {
	case err == nil && !a.Active && r.now().Sub(d.UpdatedAt) <= r.StaleAfter:
		a.Active = true
		if a.GrantsReadWrite(bucketID) {
			return d, true, r.activate(ctx, d)
		}
	case err == nil && a.GrantsReadWrite(bucketID):
		return d, true, nil
	case err != nil && !errors.Is(err, influx.ErrNotFound):
		return Device{}, false, api.Wrap(influx.Classify(err), err, "reading the device's authorization")
	}
	api.Logger(ctx).WarnContext(ctx, "device authorization missing or no longer valid: replacing it", "authorizationId", d.AuthorizationID)
	return r.replace(ctx, d)
}

func (r *Registry) dataBucketID(ctx context.Context) (string, error) {
	id, err := r.c.BucketID(ctx, r.cfg.Bucket)
	if err != nil {
		// a missing data bucket is a deployment fault (503), not a missing device
		code := influx.Classify(err)
		if code == api.NotFound {
			code = api.Unavailable
		}
		return "", api.Wrap(code, err, "finding the data bucket (has setup run?)")
	}
	return id, nil
}
