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
	"crypto/rand"
	"encoding/hex"
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

// Tombstones holds one point per device deletion (tags deviceId and delId): their number is the device's
// deletion count, which registrations compare with the count their authorizer saw (see Ensure).
const Tombstones = "devicedeleted"

// Device is one registry record.
type Device struct {
	ID string
	// AuthorizationID identifies the device's current credential: its InfluxDB authorization (direct mode) or
	// its ticket (gateway mode). The authorizer hands it to the function, which checks it against the record.
	AuthorizationID string
	// Token is the device's InfluxDB token (direct mode), or its gateway credential only in the answer of the call
	// that created it (gateway mode stores just CredentialHash). Never listed, never logged.
	Token          config.Secret
	CredentialHash string // gateway mode: hex SHA-256 of the device credential
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Deletions is how many times the id has been deleted (set also when Get answers NotFound).
	Deletions int

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

// getFlux reads the device's latest record fields and its tombstones (one row per deletion) in one query.
const getFlux = `data = from(bucket: registryBucket)
  |> range(start: 0)
  |> filter(fn: (r) => r.deviceId == deviceId)
rec = data
  |> filter(fn: (r) => r._measurement == measurement)
  |> group(columns: ["deviceId", "_field"])
  |> sort(columns: ["_time"])
  |> last()
del = data
  |> filter(fn: (r) => r._measurement == tombstones and r._field == "at")
union(tables: [rec, del])`

// listFlux reads the two fields List answers from every record point (of the devices matching the regular
// expression `devices` when some), as one table. filter |> group() is pushed down to the storage engine (one pass
// over the series, no per-series table); group+sort+last in the Flux engine took about ten times longer at 10,000
// devices. A series (one authorization) holds one point, written once at the authorization's createdAt, so this
// reads no more than a last() would; listOnce keeps each device's newest.
func listFlux(some bool) string {
	devices := ""
	if some {
		devices = " and r.deviceId =~ devices"
	}
	return `from(bucket: registryBucket)
  |> range(start: 0)
  |> filter(fn: (r) => r._measurement == measurement and (r._field == "createdAt" or r._field == "updatedAt")` + devices + `)
  |> group()
  |> keep(columns: ["deviceId", "authId", "_time", "_field", "_value"])`
}

// Get returns the device's record (one query); an unregistered id is *api.Error{Code: api.NotFound}, with the
// returned Device carrying only ID and Deletions.
func (r *Registry) Get(ctx context.Context, id string) (Device, error) {
	if err := api.CheckDeviceID(id); err != nil {
		return Device{}, err
	}
	recs, err := r.read(ctx, getFlux, influx.Extern{"registryBucket": r.cfg.BucketAuth, "measurement": Measurement,
		"tombstones": Tombstones, "deviceId": id})
	if err != nil {
		return Device{}, err
	}
	d := recs[id]
	if d.AuthorizationID == "" || (d.Token.Empty() && d.CredentialHash == "") {
		return Device{ID: id, Deletions: d.Deletions}, &api.Error{Code: api.NotFound, Message: "device " + id + " is not registered"}
	}
	return d, nil
}

// List returns every registered device sorted by id (one query). Tokens and hashes are not read.
func (r *Registry) List(ctx context.Context) ([]Device, error) { return r.list(ctx, nil) }

// ListOf returns the registered devices among ids (valid device ids), sorted by id: one query that reads only
// their records, so its cost follows len(ids), not the fleet's size.
func (r *Registry) ListOf(ctx context.Context, ids []string) ([]Device, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return r.list(ctx, ids)
}

func (r *Registry) list(ctx context.Context, ids []string) ([]Device, error) {
	ext := influx.Extern{"registryBucket": r.cfg.BucketAuth, "measurement": Measurement}
	if ids != nil {
		ext["devices"] = influx.OneOf(ids)
	}
	var recs map[string]Device
	err := r.retried(ctx, func() error {
		var err error
		recs, err = r.listOnce(ctx, listFlux(ids != nil), ext)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Device, 0, len(recs))
	for _, d := range recs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// listOnce folds listFlux's rows into each device's newest record: the point with the latest time across the
// device's series (ties to the greater authId, so a tie never mixes two records' fields), as Get reads it.
func (r *Registry) listOnce(ctx context.Context, flux string, ext influx.Extern) (map[string]Device, error) {
	rc, err := r.c.QueryRaw(ctx, flux, ext)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	recs := map[string]Device{}
	err = influx.EachRow(rc, []string{"deviceId", "authId", "_time", "_field", "_value"}, func(row []string) error {
		id, auth := row[0], row[1]
		at, err := time.Parse(time.RFC3339Nano, row[2])
		if err != nil || id == "" || auth == "" {
			return fmt.Errorf("registry: malformed record row")
		}
		d, ok := recs[id]
		switch {
		case !ok || at.After(d.at) || (at.Equal(d.at) && auth > d.AuthorizationID):
			d = Device{ID: id, AuthorizationID: auth, at: at} // a newer record supersedes what was read
		case !at.Equal(d.at) || auth != d.AuthorizationID:
			return nil // an older record's field
		}
		v, _ := time.Parse(time.RFC3339Nano, row[4])
		switch row[3] {
		case "createdAt":
			d.CreatedAt = v
		case "updatedAt":
			d.UpdatedAt = v
		}
		recs[id] = d
		return nil
	})
	return recs, err
}

// readAttempts bounds how often read runs its query. InfluxDB OSS can fail a read that races a delete of the same
// series (a Flux "panic: unreachable" error table inside a 200 answer) — and the registry deletes record points
// while other instances read them, by design. Reads are idempotent, so a failed one is simply run again.
const readAttempts = 3

// read runs a registry query and folds its per-field rows into records by device id.
func (r *Registry) read(ctx context.Context, flux string, ext influx.Extern) (map[string]Device, error) {
	var recs map[string]Device
	err := r.retried(ctx, func() error {
		var err error
		recs, err = r.readOnce(ctx, flux, ext)
		return err
	})
	return recs, err
}

// retried runs a registry read up to readAttempts times while it fails transiently, and classifies its failure.
func (r *Registry) retried(ctx context.Context, once func() error) error {
	var err error
	for n := 0; n < readAttempts; n++ {
		if n > 0 {
			t := time.NewTimer(time.Duration(n) * 50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return api.Wrap(api.Timeout, ctx.Err(), "reading the device registry")
			case <-t.C:
			}
		}
		if err = once(); err == nil {
			return nil
		}
		if errors.Is(err, influx.ErrNotFound) || influx.StatusOf(err) == 404 {
			// Fail closed: a missing registry bucket is not "nothing registered" (every id would look new, and
			// reconciliation would revoke real devices' authorizations as orphans).
			return api.Wrap(api.Unavailable, err, "the device registry bucket is missing (has setup run?)")
		}
		if !transientRead(err) {
			break
		}
	}
	return api.Wrap(classify(err), err, "reading the device registry")
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
		if m, _ := v["_measurement"].(string); m == Tombstones {
			d.Deletions++
			recs[id] = d
			return nil
		}
		if t, ok := v["_time"].(time.Time); ok && t.After(d.at) {
			d.at = t
		}
		switch field {
		case "authId":
			d.AuthorizationID = val
		case "token":
			d.Token = config.Secret(val)
		case "credHash":
			d.CredentialHash = val
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
		return api.Wrap(classify(err), err, "writing the device registry")
	}
	return nil
}

// RecordLine renders d as its record point at time at (the authorization's createdAt). Benchmarks of 10,000
// registered devices write records with it directly.
func RecordLine(d Device, at time.Time) []byte {
	var b strings.Builder
	// the id matches api.CheckDeviceID's alphabet, which needs no tag escaping
	// both secret fields always: reads take each field's latest value across the device's series, so an empty
	// one must hide an older series' value (a device switched between direct and gateway mode)
	tok := d.Token.Reveal()
	if d.CredentialHash != "" {
		tok = "" // gateway mode: the credential itself is never stored
	}
	fmt.Fprintf(&b, "%s,authId=%s,deviceId=%s authId=%s,token=%s,credHash=%s,createdAt=%s,updatedAt=%s %d\n", Measurement,
		d.AuthorizationID, d.ID, quote(d.AuthorizationID), quote(tok), quote(d.CredentialHash),
		quote(d.CreatedAt.UTC().Format(time.RFC3339Nano)), quote(d.UpdatedAt.UTC().Format(time.RFC3339Nano)), at.UnixNano())
	return []byte(b.String())
}

// tombstone records one deletion of the device (a series of its own, so no two deletions overwrite each other).
func (r *Registry) tombstone(ctx context.Context, id string) error {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	now := r.now().UTC()
	line := fmt.Sprintf("%s,deviceId=%s,delId=%s at=%s %d\n", Tombstones, id, hex.EncodeToString(b),
		quote(now.Format(time.RFC3339Nano)), now.UnixNano())
	if err := r.c.WriteLines(ctx, r.cfg.BucketAuth, []byte(line)); err != nil {
		return api.Wrap(classify(err), err, "recording the deletion in the device registry")
	}
	return nil
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
		return api.Wrap(classify(err), err, "deleting the registry record")
	}
	return nil
}

// quote renders a line-protocol string field value.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// classify is influx.Classify with the registry's one difference: a missing bucket (404) is Unavailable. The
// registry fails closed: a missing registry bucket is never "nothing registered".
func classify(err error) api.Code {
	if c := influx.Classify(err); c != api.NotFound {
		return c
	}
	return api.Unavailable
}
