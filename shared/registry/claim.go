package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Claims settle who writes a record. The authorization list orders callers by createdAt, but InfluxDB stamps
// createdAt before the authorization is committed, so two concurrent creations can commit in the other order and
// two callers can each see themselves as the oldest (measured: 3 "winners" among 20 provisioning calls). A label
// name is unique in the organization and InfluxDB checks that in the transaction that stores it: creating the
// label "iotc:<data bucket id>:<id>:<slot>" is a create-if-absent (the bucket id scopes it to one deployment, as
// the authorizations are scoped by the bucket they grant). The slot names what is being decided: the first registration
// after the device's n-th deletion ("g<n>"), or the replacement of one record ("r<authorizationId>"). Exactly one
// caller claims a slot; only it writes the record. Claims of a device are removed when it is deleted.

// claimPrefix starts the names of a device's claim labels.
func claimPrefix(bucketID, id string) string { return "iotc:" + bucketID + ":" + id + ":" }

func claimName(bucketID, id string, old *Device, deletions int) string {
	if old == nil {
		return fmt.Sprintf("%sg%d", claimPrefix(bucketID, id), deletions)
	}
	return claimPrefix(bucketID, id) + "r" + old.AuthorizationID
}

// claimHeld says the slot is not ours: existing is the device's record when one that this call would replace
// already exists; otherwise the slot's label and the authorization (ticket) of the caller holding it (zero when
// that authorization is gone).
type claimHeld struct {
	existing *Device
	label    influx.Label
	holder   influx.Authorization
}

func (*claimHeld) Error() string { return "registry: the slot is claimed by another caller" }

// claim checks that the device was not deleted since the caller's decision and that nothing newer was recorded,
// then claims the slot for mine. It returns the slot's label, or *claimHeld, or another error.
func (r *Registry) claim(ctx context.Context, bucketID, id string, old *Device, in Intent, mine influx.Authorization, before map[string]bool) (influx.Label, error) {
	cur, err := r.Get(ctx, id)
	switch {
	case err != nil && !api.IsCode(err, api.NotFound):
		return influx.Label{}, err
	case (in.Deletions >= 0 && cur.Deletions != in.Deletions) || (old != nil && err != nil):
		return influx.Label{}, deletedSince(id)
	case err == nil && (old == nil || !before[cur.AuthorizationID]):
		return influx.Label{}, &claimHeld{existing: &cur}
	}
	name := claimName(bucketID, id, old, cur.Deletions)
	l, err := r.c.CreateLabel(ctx, name, map[string]string{"ticket": mine.ID})
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, influx.ErrConflict) {
		return influx.Label{}, api.Wrap(classify(err), err, "claiming the registration")
	}
	held := &claimHeld{}
	// by its exact name: InfluxDB filters, so a losing caller reads one label, not every claim of the fleet
	held.label, _, err = r.c.FindLabel(ctx, name)
	if err != nil {
		return influx.Label{}, api.Wrap(classify(err), err, "reading a registration claim")
	}
	if t := held.label.Properties["ticket"]; t != "" {
		a, err := r.c.GetAuthorization(ctx, t)
		if err != nil && !errors.Is(err, influx.ErrNotFound) {
			return influx.Label{}, api.Wrap(classify(err), err, "reading a registration claim's authorization")
		}
		held.holder = a
	}
	return influx.Label{}, held
}

// unclaim removes a claim label (its caller failed, or its holder is gone); failure is logged.
func (r *Registry) unclaim(ctx context.Context, l influx.Label) {
	if l.ID == "" {
		return
	}
	if err := r.c.DeleteLabel(ctx, l.ID); err != nil {
		api.Logger(ctx).ErrorContext(ctx, "removing a registration claim failed", "error", err.Error())
	}
}

// unclaimAll removes every claim label of the device (Delete); failure is logged: stale claims of a deleted
// generation block nothing, they are only clutter.
func (r *Registry) unclaimAll(ctx context.Context, id string) {
	bucketID, err := r.dataBucketID(ctx)
	if err != nil {
		api.Logger(ctx).ErrorContext(ctx, "listing registration claims failed", "error", err.Error())
		return
	}
	ls, err := r.c.FindLabels(ctx, claimPrefix(bucketID, id))
	if err != nil {
		api.Logger(ctx).ErrorContext(ctx, "listing registration claims failed", "error", err.Error())
		return
	}
	for _, l := range ls {
		r.unclaim(ctx, l)
	}
}
