package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
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
	Register bool // an unregistered device is registered (else Ensure answers NotFound)
	// CreateOnly (the provisioning key): an existing device, or a registration lost to another caller, is
	// Forbidden, so such a caller never receives someone else's credential.
	CreateOnly bool
	// Generation is the device's when the request was authorized (-1: unchecked); a registration stops (Conflict)
	// when it changed since, so no request authorized before a delete registers the device again.
	Generation int64
}

func deletedSince(id string) error {
	return api.Errorf(api.Conflict, "device %s was deleted after this request was authorized; nothing was registered", id)
}

// Register registers id (idempotently) with no authorizer context (tests, tools).
func (r *Registry) Register(ctx context.Context, id string) (d Device, created bool, err error) {
	return r.Ensure(ctx, id, Intent{Register: true, Generation: -1})
}

// Ensure returns the device's working record, registering an unregistered device when in.Register, and healing a
// broken authorization in direct mode. created is true only for the one caller whose write registered the device;
// only its Device carries a gateway credential.
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
		return Device{}, false, api.Errorf(api.Conflict, "device %s was deleted with its data; what its old "+
			"credential wrote late is removed at %s: register it again after that", id,
			time.Unix(cur.purgeAt, 0).UTC().Format(time.RFC3339))
	}
	if n, err := r.reserve(ctx, 1); err != nil || n == 0 {
		return Device{}, false, full(r.cfg.MaxDevices, err)
	}
	d, won, err := r.register(ctx, cur)
	if won {
		r.feed(ctx, []string{id})
		return d, true, err
	}
	r.release(ctx, 1)
	switch {
	case err != nil:
		return Device{}, false, err
	case !d.live(): // deleted again between our read and our write
		return Device{}, false, deletedSince(id)
	case in.CreateOnly:
		return Device{}, false, api.Errorf(api.Forbidden, "device %s was registered by another caller", id)
	}
	return d, false, r.activate(ctx, d)
}

// register writes a new device over prev (the absent item or the tombstone read). won: d is the new device, its
// authorization activated; else d is the item that won instead, and this caller's authorization is revoked.
func (r *Registry) register(ctx context.Context, prev Device) (d Device, won bool, err error) {
	d, err = r.newCredential(ctx, Device{ID: prev.ID, Generation: prev.Generation + 1})
	if err != nil {
		return Device{}, false, err
	}
	d.CreatedAt = d.UpdatedAt
	if err = r.put(ctx, d, prev); err == nil {
		return d, true, r.activate(ctx, d)
	}
	_ = r.revoke(ctx, d)
	winner, ok := lost(err)
	if !ok {
		return Device{}, false, err
	}
	winner.ID = prev.ID
	return winner, false, nil
}

// Rotate gives the device a new credential: the old one stops working (InfluxDB answers 401 to an old token, the
// gateway refuses an old credential within its revocation window). Of concurrent rotations one wins; the others
// get won false and the winner's record (in gateway mode without its credential).
func (r *Registry) Rotate(ctx context.Context, id string) (Device, bool, error) {
	cur, err := r.Get(ctx, id)
	if err != nil {
		return Device{}, false, err
	}
	return r.replace(ctx, cur)
}

// replace writes a new credential for cur under cur's generation, the id first in the minute's revocations.
func (r *Registry) replace(ctx context.Context, cur Device) (Device, bool, error) {
	d, err := r.newCredential(ctx, Device{ID: cur.ID, Generation: cur.Generation + 1, CreatedAt: cur.CreatedAt})
	if err != nil {
		return Device{}, false, err
	}
	if err = r.revoked(ctx, cur.ID); err == nil {
		err = r.update(ctx, d, cur)
	}
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

// expect is the condition that the item is still prev: absent, prev's tombstone, or prev's live generation.
func expect(prev Device) (cond string, names map[string]string, vals map[string]types.AttributeValue) {
	if prev.Generation == 0 {
		return "attribute_not_exists(pk)", nil, nil
	}
	cond = "#gen = :g AND attribute_exists(#del)"
	if prev.live() {
		cond = "#gen = :g AND attribute_not_exists(#del)"
	}
	vals = map[string]types.AttributeValue{":g": store.N(prev.Generation)}
	return cond, map[string]string{"#gen": attrGen, "#del": attrDeleted}, vals
}

// put writes d's whole item (a registration, a tombstone) while the item is still prev; a lost condition is
// *store.ConditionFailed holding the item that won.
func (r *Registry) put(ctx context.Context, d, prev Device) error {
	cond, names, vals := expect(prev)
	_, err := r.table.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &r.table.Name, Item: Item(d),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
		ReturnValuesOnConditionCheckFailure: allOld})
	return store.Classify(err)
}

// update writes d's generation and credential onto the live item prev, keeping the rest: the device's health,
// which the fleet-health run keeps. A lost condition is as put's.
func (r *Registry) update(ctx context.Context, d, prev Device) error {
	cond, names, vals := expect(prev)
	set, drop, secret := attrToken, attrHash, d.Token.Reveal()
	if d.CredentialHash != "" {
		set, drop, secret = attrHash, attrToken, d.CredentialHash
	}
	maps.Copy(names, map[string]string{"#cred": attrCred, "#u": attrUpdated, "#set": set, "#drop": drop})
	maps.Copy(vals, map[string]types.AttributeValue{":ng": store.N(d.Generation), ":cred": store.S(d.AuthorizationID),
		":u": store.S(rfc3339(d.UpdatedAt)), ":s": store.S(secret)})
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: Key(d.ID),
		UpdateExpression:    aws.String("SET #gen = :ng, #cred = :cred, #u = :u, #set = :s REMOVE #drop"),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
		ReturnValuesOnConditionCheckFailure: allOld})
	return store.Classify(err)
}

const allOld = types.ReturnValuesOnConditionCheckFailureAllOld

// lost returns the winner's item when err is a lost condition.
func lost(err error) (Device, bool) {
	var cf *store.ConditionFailed
	if errors.As(err, &cf) {
		return fromItem(cf.Item), true
	}
	return Device{}, false
}

// reserve takes up to n places under the device cap in one conditional update: all n when they fit, else the
// places left (read from the failed condition's item). It returns how many it took.
func (r *Registry) reserve(ctx context.Context, n int) (int, error) {
	limit := int64(r.cfg.MaxDevices)
	want := min(int64(n), limit)
	for attempt := 0; attempt < 4 && want > 0; attempt++ {
		_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: counterKey,
			UpdateExpression: aws.String("ADD n :k"), ConditionExpression: aws.String("attribute_not_exists(n) OR n <= :room"),
			ExpressionAttributeValues:           map[string]types.AttributeValue{":k": store.N(want), ":room": store.N(limit - want)},
			ReturnValuesOnConditionCheckFailure: allOld})
		err = store.Classify(err)
		cf := store.IsConditionFailed(err)
		if cf == nil {
			return int(want), err
		}
		want = min(want, limit-store.Num(cf.Item, "n"))
	}
	if want <= 0 {
		return 0, nil
	}
	return 0, api.Errorf(api.Conflict, "the device count kept changing concurrently; retry")
}

// full is reserve's answer when it took no place.
func full(limit int, err error) error {
	if err != nil {
		return err
	}
	return api.Errorf(api.TooMany, "the device limit (%d) is reached", limit)
}

// release gives n places back (registrations that lost or failed, a deletion). A failure is only logged: the
// counter then over-counts, the cap's safe side.
func (r *Registry) release(ctx context.Context, n int) {
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: counterKey,
		UpdateExpression:          aws.String("ADD n :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": store.N(int64(-n))}})
	if err != nil {
		api.Logger(ctx).ErrorContext(ctx, "releasing places in the device counter failed", "places", n,
			"error", store.Classify(err).Error())
	}
}

// newCredential fills d with a new credential: in gateway mode a random one (only its hash is stored), in direct
// mode an InfluxDB authorization that stays inactive until its write wins.
func (r *Registry) newCredential(ctx context.Context, d Device) (Device, error) {
	d.UpdatedAt = r.now().UTC()
	if r.cfg.Gateway() {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		d.AuthorizationID = "g" + hex.EncodeToString(b)
		d.Token, d.CredentialHash = newCredential(d.ID)
		return d, nil
	}
	a, err := r.c.CreateInactiveAuthorization(ctx, Description(d.ID), r.cfg.Bucket)
	d.AuthorizationID, d.Token = a.ID, config.Secret(a.Token)
	return d, influx.Fail(ctx, err, "creating the device's authorization")
}

// activate makes the won authorization work (direct mode); idempotent, so a loser may activate the winner's.
func (r *Registry) activate(ctx context.Context, d Device) error {
	if r.cfg.Gateway() {
		return nil
	}
	return influx.Fail(ctx, r.c.ActivateAuthorization(ctx, d.AuthorizationID), "activating the device's authorization")
}

// revoke deletes d's InfluxDB authorization (direct mode). Callers that may go on ignore a failure: an inactive
// leftover opens nothing and the next sweep revokes it.
func (r *Registry) revoke(ctx context.Context, d Device) error {
	if r.cfg.Gateway() || d.AuthorizationID == "" {
		return nil
	}
	err := r.c.DeleteAuthorization(ctx, d.AuthorizationID)
	if err != nil {
		api.Logger(ctx).ErrorContext(ctx, "revoking an authorization failed", "authorizationId", d.AuthorizationID,
			"error", err.Error())
	}
	return influx.Fail(ctx, err, "revoking the device's authorization")
}

// sweep revokes the device's InfluxDB authorizations that are not the current item's and either active (a
// revocation that failed) or inactive for longer than StaleAfter (a crashed caller's). It lists before it reads
// the item, so no winner's is revoked.
func (r *Registry) sweep(ctx context.Context, id string) error {
	if r.cfg.Gateway() || r.c == nil {
		return nil
	}
	auths, err := r.c.FindAuthorizations(ctx, Description(id))
	if err != nil {
		api.Logger(ctx).ErrorContext(ctx, "listing the device's authorizations failed", "error", err.Error())
		return influx.Fail(ctx, err, "listing the device's authorizations")
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

// heal checks a direct-mode device's authorization: one inactive within StaleAfter of the item's write is a winner's
// about to be (or crashed before being) activated, and is activated; one gone, inactive for longer or no longer
// read+write on the data bucket is replaced. mine is false when a concurrent replacement won (d is the winner's).
func (r *Registry) heal(ctx context.Context, d Device) (nd Device, mine bool, err error) {
	if r.cfg.Gateway() {
		return d, true, nil
	}
	a, err := r.c.GetAuthorization(ctx, d.AuthorizationID)
	if err != nil && !errors.Is(err, influx.ErrNotFound) {
		return Device{}, false, influx.Fail(ctx, err, "reading the device's authorization")
	}
	young := err == nil && !a.Active && r.now().Sub(d.UpdatedAt) <= r.StaleAfter
	a.Active = a.Active || young
	switch ok, err := r.c.Grants(ctx, a, r.cfg.Bucket); {
	case err != nil:
		return Device{}, false, err
	case ok && young:
		return d, true, r.activate(ctx, d)
	case ok:
		return d, true, nil
	}
	api.Logger(ctx).WarnContext(ctx, "device authorization missing or no longer valid: replacing it",
		"authorizationId", d.AuthorizationID)
	return r.replace(ctx, d)
}
