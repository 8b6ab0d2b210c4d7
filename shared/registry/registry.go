// Package registry is the device registry: which devices exist and the InfluxDB authorization (and its token) each
// one writes with. The registry lives in the registry bucket (cfg.BucketAuth), which device tokens cannot read,
// because InfluxDB never hands a token back after the authorization is created (Cloud redacts it, OSS 2.9+ hashes it).
//
// # Storage
//
// One series per authorization: measurement "deviceauth", tags deviceId and authId, string fields authId, token,
// createdAt, updatedAt (RFC 3339). Every point carries all four fields and is written at the authorization's own
// createdAt (InfluxDB's clock), so a newer authorization's record always supersedes an older one (reads take the
// latest point of the device across its series), whatever the Lambda clocks say. A series per authorization, not
// per device, because InfluxDB OSS drops a series from its index when a delete leaves it empty, and a point
// written to that same series at that moment becomes invisible: a winner removing its own revoked record must
// never touch the series a concurrent winner is writing. Reads use a fixed Flux text with the id passed through influx.Extern; deletes use the delete API
// with influx.Predicate.
//
// # Concurrency (no shared memory, no lock service)
//
// Several Lambda instances may register, rotate or delete the same device at once. The only shared, linearizable
// state is InfluxDB's authorization list, so it decides:
//
//  1. A caller that needs a new authorization (first registration, self-healing, rotation) creates its own,
//     described "IoT Center: <id>", then lists the authorizations with that description, oldest first
//     (createdAt, then id: the same order for every caller).
//  2. The candidates are the active authorizations granting read+write on the data bucket, excluding the one being
//     replaced and anything older than it. The winner is the oldest candidate. Because a caller lists only after
//     its own authorization exists, every older authorization is already visible to it: at most one caller sees
//     itself as the oldest, so there is exactly one winner.
//  3. Only the winner writes the record, then revokes every other authorization of the device older than itself
//     (the replaced one and leftovers). Losers revoke their own authorization and wait (bounded) for the record
//     naming the winner, and return it: every caller gets the same token.
//  4. After writing, the winner checks its authorization still exists; if a concurrent delete (or a newer
//     rotation) revoked it, it removes its own record series and answers the current state instead.
//
// An authorization with the description but no record that is older than StaleAfter (longer than any function
// timeout) is a crashed caller's orphan: whoever sees it revokes it. The device cap is checked before a first
// registration creates anything; concurrent first registrations may overshoot it by their number (documented).
package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Measurement holds the registry records in the registry bucket.
const Measurement = "deviceauth"

// Description is the description of a device's authorization; reconciliation lists by it.
func Description(id string) string { return "IoT Center: " + id }

// Device is one registry record.
type Device struct {
	ID              string
	AuthorizationID string
	Token           config.Secret // the device's InfluxDB token (never listed, never logged)
	CreatedAt       time.Time
	UpdatedAt       time.Time

	// at is the record point's time: its authorization's createdAt on InfluxDB's clock (reconciliation uses it).
	at time.Time
}

// Registry reads and changes the device registry. It keeps no state between requests beyond the influx client's
// id caches, so any number of instances may run at once (see the package comment).
type Registry struct {
	c   *influx.Client
	cfg config.Config

	// StaleAfter is the age after which an authorization without a record is treated as a crashed caller's orphan.
	StaleAfter time.Duration
	// WaitAttempts and WaitDelay bound how long a losing caller waits for the winner's record.
	WaitAttempts int
	WaitDelay    time.Duration
	now          func() time.Time
}

// New builds a Registry over the registry bucket cfg.BucketAuth and the data bucket cfg.Bucket.
func New(c *influx.Client, cfg config.Config) *Registry {
	return &Registry{c: c, cfg: cfg, StaleAfter: time.Minute, WaitAttempts: 20, WaitDelay: 50 * time.Millisecond, now: time.Now}
}

// Config is the configuration the registry was built with.
func (r *Registry) Config() config.Config { return r.cfg }

const getFlux = `from(bucket: registryBucket)
  |> range(start: 0)
  |> filter(fn: (r) => r._measurement == measurement and r.deviceId == deviceId)
  |> group(columns: ["deviceId", "_field"])
  |> sort(columns: ["_time"])
  |> last()`

const listFlux = `from(bucket: registryBucket)
  |> range(start: 0)
  |> filter(fn: (r) => r._measurement == measurement and r._field != "token")
  |> group(columns: ["deviceId", "_field"])
  |> sort(columns: ["_time"])
  |> last()`

// Get returns the device's record; an unregistered id is *api.Error{Code: api.NotFound}.
func (r *Registry) Get(ctx context.Context, id string) (Device, error) {
	if err := api.CheckDeviceID(id); err != nil {
		return Device{}, err
	}
	recs, err := r.read(ctx, getFlux, influx.Extern{"registryBucket": r.cfg.BucketAuth, "measurement": Measurement, "deviceId": id})
	if err != nil {
		return Device{}, err
	}
	d, ok := recs[id]
	if !ok || d.AuthorizationID == "" || d.Token.Empty() {
		return Device{}, &api.Error{Code: api.NotFound, Message: "device " + id + " is not registered"}
	}
	return d, nil
}

// DeviceToken is Get's token only (what the authorizer compares a device's bearer token with).
func (r *Registry) DeviceToken(ctx context.Context, id string) (config.Secret, error) {
	d, err := r.Get(ctx, id)
	return d.Token, err
}

// List returns every registered device sorted by id. Tokens are not read (Token is empty).
func (r *Registry) List(ctx context.Context) ([]Device, error) {
	recs, err := r.read(ctx, listFlux, influx.Extern{"registryBucket": r.cfg.BucketAuth, "measurement": Measurement})
	if err != nil {
		return nil, err
	}
	out := make([]Device, 0, len(recs))
	for _, d := range recs {
		if d.AuthorizationID != "" {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// readAttempts bounds how often read runs its query. InfluxDB OSS can fail a read that races a delete of the same
// series (a Flux "panic: unreachable" error table inside a 200 answer) — and the registry deletes record points
// while other instances read them, by design. Reads are idempotent, so a failed one is simply run again.
const readAttempts = 3

// read runs a registry query and folds its per-field rows into records by device id.
func (r *Registry) read(ctx context.Context, flux string, ext influx.Extern) (map[string]Device, error) {
	var err error
	for n := 0; n < readAttempts; n++ {
		if n > 0 {
			t := time.NewTimer(time.Duration(n) * 50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, api.Wrap(api.Timeout, ctx.Err(), "reading the device registry")
			case <-t.C:
			}
		}
		var recs map[string]Device
		recs, err = r.readOnce(ctx, flux, ext)
		if err == nil {
			return recs, nil
		}
		if errors.Is(err, influx.ErrNotFound) || influx.StatusOf(err) == 404 {
			// the registry bucket does not exist yet: nothing is registered
			return map[string]Device{}, nil
		}
		if !transientRead(err) {
			break
		}
	}
	return nil, api.Wrap(influx.Classify(err), err, "reading the device registry")
}

// transientRead says whether a failed read may succeed when run again: not a refusal (4xx other than 429), not
// the caller's deadline.
func transientRead(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	s := influx.StatusOf(err)
	return s == 0 || s == 429 || s >= 500
}

func (r *Registry) readOnce(ctx context.Context, flux string, ext influx.Extern) (map[string]Device, error) {
	recs := map[string]Device{}
	err := r.c.QueryRows(ctx, flux, ext, func(v map[string]any) error {
		id, _ := v["deviceId"].(string)
		field, _ := v["_field"].(string)
		val, _ := v["_value"].(string)
		if id == "" {
			return nil
		}
		d := recs[id]
		d.ID = id
		if t, ok := v["_time"].(time.Time); ok && t.After(d.at) {
			d.at = t
		}
		switch field {
		case "authId":
			d.AuthorizationID = val
		case "token":
			d.Token = config.Secret(val)
		case "createdAt":
			d.CreatedAt, _ = time.Parse(time.RFC3339Nano, val)
		case "updatedAt":
			d.UpdatedAt, _ = time.Parse(time.RFC3339Nano, val)
		}
		recs[id] = d
		return nil
	})
	return recs, err
}

// write stores d as the device's record at time at (the authorization's createdAt).
func (r *Registry) write(ctx context.Context, d Device, at time.Time) error {
	if err := r.c.WriteLines(ctx, r.cfg.BucketAuth, RecordLine(d, at)); err != nil {
		// the line holds the token: the error must not (influx errors carry only InfluxDB's message)
		return api.Wrap(influx.Classify(err), err, "writing the device registry")
	}
	return nil
}

// RecordLine renders d as its record point at time at (the authorization's createdAt). Benchmarks of 10,000
// registered devices write records with it directly.
func RecordLine(d Device, at time.Time) []byte {
	var b strings.Builder
	// the id matches api.CheckDeviceID's alphabet, which needs no tag escaping
	fmt.Fprintf(&b, "%s,authId=%s,deviceId=%s authId=%s,token=%s,createdAt=%s,updatedAt=%s %d\n", Measurement,
		d.AuthorizationID, d.ID, quote(d.AuthorizationID), quote(d.Token.Reveal()), quote(d.CreatedAt.UTC().Format(time.RFC3339Nano)),
		quote(d.UpdatedAt.UTC().Format(time.RFC3339Nano)), at.UnixNano())
	return []byte(b.String())
}

// deleteRecord removes the device's record points: all of them when authID is "", else only that
// authorization's series.
func (r *Registry) deleteRecord(ctx context.Context, id, authID string) error {
	kv := []string{"_measurement", Measurement, "deviceId", id}
	if authID != "" {
		kv = append(kv, "authId", authID)
	}
	pred, err := influx.Predicate(kv...)
	if err != nil {
		return api.Wrap(api.Internal, err, "building the registry predicate")
	}
	if err := r.c.Delete(ctx, r.cfg.BucketAuth, influx.AllTimeStart, influx.AllTimeStop, pred); err != nil {
		return api.Wrap(influx.Classify(err), err, "deleting the registry record")
	}
	return nil
}

// quote renders a line-protocol string field value.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
