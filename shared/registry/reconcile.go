package registry

import (
	"context"
	"errors"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// maxRounds bounds how often one call restarts reconciliation after revoking a crashed caller's orphan.
const maxRounds = 4

// Register registers id (idempotently) with no authorizer context (tests, tools): Ensure with Register set.
func (r *Registry) Register(ctx context.Context, id string) (d Device, created bool, err error) {
	return r.Ensure(ctx, id, Intent{Register: true, Deletions: -1})
}

// Ensure returns the device's working record, registering an unregistered device when in.Register. In direct mode
// a broken authorization (gone, or no longer read+write on the data bucket) is replaced (self-healing); in gateway
// mode the credential does not depend on InfluxDB authorizations. created is true only for the one caller whose
// authorization won a first registration; only that caller's Device carries a gateway credential.
func (r *Registry) Ensure(ctx context.Context, id string, in Intent) (Device, bool, error) {
	d, err := r.Get(ctx, id)
	switch {
	case err == nil && in.CreateOnly:
		return Device{}, false, api.Errorf(api.Forbidden, "device %s is already registered", id)
	case err == nil && r.cfg.Gateway():
		return d, false, nil
	case err == nil:
		ok, err := r.works(ctx, d.AuthorizationID)
		if err != nil {
			return Device{}, false, err
		}
		if ok {
			return d, false, nil
		}
		api.Logger(ctx).WarnContext(ctx, "device authorization missing or no longer valid: replacing it",
			"authorizationId", d.AuthorizationID)
		nd, _, err := r.replace(ctx, id, &d, in)
		return nd, false, err // a replacement, not a registration
	case !api.IsCode(err, api.NotFound):
		return Device{}, false, err
	case !in.Register:
		return Device{}, false, err
	case in.Deletions >= 0 && d.Deletions != in.Deletions:
		return Device{}, false, deletedSince(id)
	}
	n, err := r.registered(ctx)
	if err != nil {
		return Device{}, false, err
	}
	if n >= r.cfg.MaxDevices {
		return Device{}, false, api.Errorf(api.TooMany, "the device limit (%d) is reached", r.cfg.MaxDevices)
	}
	return r.replace(ctx, id, nil, in)
}

// Rotate replaces the device's credential: a new authorization (direct) or ticket and credential (gateway) first,
// the record updated, the old one revoked (an old InfluxDB token then gets 401). Concurrent rotations agree on one
// winner; won is false for the others (in gateway mode they never see the new credential). deletions as in Intent.
func (r *Registry) Rotate(ctx context.Context, id string, deletions int) (d Device, won bool, err error) {
	old, err := r.Get(ctx, id)
	if err != nil {
		return Device{}, false, err
	}
	if deletions >= 0 && old.Deletions != deletions {
		return Device{}, false, deletedSince(id)
	}
	return r.replace(ctx, id, &old, Intent{Register: true, Deletions: deletions})
}

// works reports whether the authorization exists, is active and grants read+write on the data bucket.
func (r *Registry) works(ctx context.Context, authID string) (bool, error) {
	bucketID, err := r.dataBucketID(ctx)
	if err != nil {
		return false, err
	}
	a, err := r.c.GetAuthorization(ctx, authID)
	if errors.Is(err, influx.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, api.Wrap(classify(err), err, "reading an authorization")
	}
	return a.GrantsReadWrite(bucketID), nil
}

func (r *Registry) dataBucketID(ctx context.Context) (string, error) {
	id, err := r.c.BucketID(ctx, r.cfg.Bucket)
	if err != nil {
		// a missing data bucket is a deployment fault (503 like a missing registry bucket), not a missing device
		return "", api.Wrap(classify(err), err, "finding the data bucket (has setup run?)")
	}
	return id, nil
}

// replace gives the device a new credential through the reconciliation in the package comment. old is the
// record being replaced (nil for a first registration). won is true for the one caller whose authorization won.
func (r *Registry) replace(ctx context.Context, id string, old *Device, in Intent) (Device, bool, error) {
	bucketID, err := r.dataBucketID(ctx)
	if err != nil {
		return Device{}, false, err
	}
	replaced, after := "", time.Time{}
	if old != nil {
		replaced, after = old.AuthorizationID, old.at
	}
	for round := 0; round < maxRounds; round++ {
		mine, err := r.createAuthorization(ctx, id, bucketID)
		if err != nil {
			return Device{}, false, api.Wrap(classify(err), err, "creating an authorization")
		}
		winner, before, ok := mine, map[string]bool{}, true
		if old != nil {
			// a replacement lists the device's authorizations: the winner revokes the replaced one and leftovers
			auths, err := r.c.FindAuthorizations(ctx, Description(id))
			if err != nil {
				r.revoke(ctx, mine.ID)
				return Device{}, false, api.Wrap(classify(err), err, "listing authorizations")
			}
			winner, before, ok = pick(auths, replaced, after, r.candidate(bucketID))
		}
		// A first registration goes straight to the claim, which alone decides (the list's order cannot, see
		// claim.go): InfluxDB lists every authorization of the organization, so listing cost each registration
		// time linear in the fleet (29% of InfluxDB's time in BenchmarkRegistration1000). What the list also
		// found, an authorization left by a caller that crashed before claiming, is revoked by the device's next
		// rotation or delete; one that crashed after claiming is met through its claim below.
		if ok && winner.ID == mine.ID {
			// the oldest in our view; the claim decides (see claim.go). It is taken after our authorization
			// exists: a delete that recorded its tombstone later lists and revokes it (and win notices), one that
			// recorded it earlier is seen by the claim's check.
			slot, err := r.claim(ctx, bucketID, id, old, in, mine, before)
			if err == nil {
				d, won, err := r.win(ctx, id, old, mine, before)
				if err != nil {
					r.unclaim(ctx, slot)
				}
				return d, won, err
			}
			r.revoke(ctx, mine.ID)
			var held *claimHeld
			switch {
			case !errors.As(err, &held):
				return Device{}, false, err
			case held.existing != nil && in.CreateOnly:
				return Device{}, false, api.Errorf(api.Forbidden, "device %s is already registered", id)
			case held.existing != nil:
				return *held.existing, false, nil
			case held.holder.ID == "" || r.isStale(held.holder):
				// its holder is gone (or crashed long ago) without a record: free the slot, try again
				api.Logger(ctx).WarnContext(ctx, "removing an orphan registration claim", "claim", held.label.Name)
				r.unclaim(ctx, held.label)
				if held.holder.ID != "" {
					r.revoke(ctx, held.holder.ID)
				}
				continue
			}
			winner = held.holder
		} else {
			// lost (or revoked under us by a concurrent delete): take ours back and wait for the winner's record
			r.revoke(ctx, mine.ID)
			if !ok {
				return Device{}, false, api.Errorf(api.Conflict, "device %s changed concurrently, try again", id)
			}
		}
		if in.CreateOnly && !r.isStale(winner) {
			return Device{}, false, api.Errorf(api.Forbidden, "device %s is being registered by another caller", id)
		}
		d, stale, err := r.await(ctx, id, winner, before)
		if errors.Is(err, errReconcileAgain) {
			continue
		}
		if err == nil && !stale && in.CreateOnly {
			return Device{}, false, api.Errorf(api.Forbidden, "device %s is already registered", id)
		}
		if err != nil || !stale {
			return d, false, err
		}
		api.Logger(ctx).WarnContext(ctx, "revoking an orphan authorization (its caller never wrote a record)",
			"authorizationId", winner.ID)
		r.revoke(ctx, winner.ID)
	}
	return Device{}, false, api.Errorf(api.Unavailable, "registration of %s did not settle, try again", id)
}

// pick returns the winner among auths (oldest first): the oldest candidate that is newer than the replaced one,
// and the ids ordered before it (to be revoked by the winner). When the replaced authorization is already gone,
// "newer" means created after after (the replaced record's time).
func pick(auths []influx.Authorization, replaced string, after time.Time, candidate func(influx.Authorization) bool) (winner influx.Authorization, before map[string]bool, ok bool) {
	start := 0
	for i, a := range auths {
		if a.ID == replaced || (!after.IsZero() && !a.CreatedAt.After(after)) {
			start = i + 1
		}
	}
	before = map[string]bool{}
	if replaced != "" {
		before[replaced] = true
	}
	for i, a := range auths {
		if i >= start && candidate(a) {
			return a, before, true
		}
		before[a.ID] = true
	}
	return influx.Authorization{}, before, false
}

// win stores the winner's record, revokes what it replaces and checks nothing revoked it meanwhile.
func (r *Registry) win(ctx context.Context, id string, old *Device, mine influx.Authorization, before map[string]bool) (Device, bool, error) {
	now := r.now().UTC()
	d := Device{ID: id, AuthorizationID: mine.ID, Token: config.Secret(mine.Token), CreatedAt: now, UpdatedAt: now}
	if r.cfg.Gateway() {
		d.Token, d.CredentialHash = newCredential(id)
	}
	if old != nil && !old.CreatedAt.IsZero() {
		d.CreatedAt = old.CreatedAt
	}
	at := mine.CreatedAt
	if at.IsZero() {
		at = now
	}
	if err := r.write(ctx, d, at); err != nil {
		r.revoke(ctx, mine.ID)
		return Device{}, false, err
	}
	for aid := range before {
		if err := r.c.DeleteAuthorization(ctx, aid); err != nil {
			// the device works with the new token; the leftover is revoked by the next reconciliation or delete
			api.Logger(ctx).ErrorContext(ctx, "revoking a replaced authorization failed",
				"authorizationId", aid, "error", err.Error())
		}
	}
	if _, err := r.c.GetAuthorization(ctx, mine.ID); err == nil {
		return d, true, nil
	} else if !errors.Is(err, influx.ErrNotFound) {
		return Device{}, false, api.Wrap(classify(err), err, "checking the new authorization")
	}
	// a concurrent delete (or a newer rotation) revoked ours: remove our record point, answer what is current
	if err := r.deleteRecord(ctx, id, mine.ID); err != nil {
		return Device{}, false, err
	}
	cur, err := r.Get(ctx, id)
	if err == nil && cur.AuthorizationID != mine.ID {
		return cur, false, nil
	}
	return Device{}, false, api.Errorf(api.Conflict, "device %s was deleted or changed concurrently", id)
}

// await waits (bounded) for the record naming winner (or a newer one). stale is true when winner has no record
// and is older than StaleAfter: a crashed caller's orphan.
func (r *Registry) await(ctx context.Context, id string, winner influx.Authorization, before map[string]bool) (Device, bool, error) {
	delay := r.WaitDelay
	for n := 0; n < r.WaitAttempts; n++ {
		d, err := r.Get(ctx, id)
		if err == nil && !before[d.AuthorizationID] {
			return d, false, nil
		}
		if err != nil && !api.IsCode(err, api.NotFound) {
			return Device{}, false, err
		}
		if r.isStale(winner) {
			return Device{}, true, nil
		}
		if n > 0 {
			// a concurrent delete may have revoked the winner: then its record never comes
			if _, err := r.c.GetAuthorization(ctx, winner.ID); errors.Is(err, influx.ErrNotFound) {
				d, err := r.Get(ctx, id)
				switch {
				case err == nil && !before[d.AuthorizationID]:
					return d, false, nil
				case err == nil:
					// The record still names what we replace: the winner we waited for was revoked without a
					// record. That happens when its creator had read an older record, so in its view another
					// authorization won and it revoked its own. No record will come: reconcile again.
					return Device{}, false, errReconcileAgain
				case api.IsCode(err, api.NotFound):
					return Device{}, false, api.Errorf(api.Conflict, "device %s was deleted or changed concurrently", id)
				default:
					return Device{}, false, err
				}
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Device{}, false, api.Wrap(api.Timeout, ctx.Err(), "waiting for a concurrent registration")
		case <-t.C:
		}
		delay = min(delay*3/2, 500*time.Millisecond)
	}
	return Device{}, false, api.Errorf(api.Unavailable, "a concurrent registration of %s is still in progress, try again", id)
}

// errReconcileAgain tells replace to start another round: the winner it waited for will never write a record.
var errReconcileAgain = errors.New("registry: reconcile again")

// revoke deletes an authorization this call created or found orphaned; failure is logged, the next
// reconciliation or delete retries it.
func (r *Registry) revoke(ctx context.Context, authID string) {
	if err := r.c.DeleteAuthorization(ctx, authID); err != nil {
		api.Logger(ctx).ErrorContext(ctx, "revoking an authorization failed", "authorizationId", authID, "error", err.Error())
	}
}
