// Package registry is the device registry: which devices exist and the credential each one writes with, one item
// per device in the state table (shared/store). Every change is one conditional write whose loser gets the
// winner's item back; README.md has the races and the crash cases.
package registry

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Description is the description of a device's InfluxDB authorization (direct mode); sweeps list by it.
func Description(id string) string { return "IoT Center: " + id }

// Device is one device item.
type Device struct {
	ID string
	// AuthorizationID names the current credential: its InfluxDB authorization (direct mode) or a random id. The
	// authorizer hands it on, so a function can tell a credential rotated out since.
	AuthorizationID string
	// Token is the InfluxDB token (direct mode), or the gateway credential in its creator's answer only. Never
	// listed, never logged.
	Token          config.Secret
	CredentialHash string // gateway mode: hex SHA-256 of the credential
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Generation grows with every registration, rotation and deletion (0: never registered); a NotFound answer
	// carries it too, so a registration over a tombstone names the one it read.
	Generation int64
	Series     *Series // the write gateway's series item, read with the device

	deleted bool
	purgeAt int64 // a tombstone's second data pass is due then (epoch seconds; 0: none pending)
}

// Series is a device's series item: its tag sets and its own budget per measurement (0: the default).
type Series struct {
	Set    []string
	Budget int64
}

const (
	attrID, attrGen, attrCred, attrHash, attrToken     = "id", "generation", "credId", "hash", "token"
	attrCreated, attrUpdated, attrDeleted, attrPurgeAt = "createdAt", "updatedAt", "deleted", "purgeAt"
	devicePrefix                                       = "DEVICE#"
)

// Key is the device item's key.
func Key(id string) store.Item { return store.Key(devicePrefix+id, "DEVICE") }

// The write gateway's series items (Delete removes a device's): its tag sets and the fleet's count of them.
const (
	AttrSeries      = "s"
	AttrFleetSeries = "n"
)

// SeriesKey is the key of a device's series item.
func SeriesKey(id string) store.Item { return store.Key(devicePrefix+id, "SERIES") }

// FleetSeriesKey is the key of the fleet's tag-set counter.
func FleetSeriesKey() store.Item { return store.Key("COUNTER", "SERIES") }

var counterKey = store.Key("COUNTER", "DEVICES")

// Item renders d as a whole device item (the migration writes with it); a live device starts silent.
func Item(d Device) store.Item {
	it := Key(d.ID)
	it[attrID], it[attrGen] = store.S(d.ID), store.N(d.Generation)
	it[attrCreated], it[attrUpdated] = store.S(rfc3339(d.CreatedAt)), store.S(rfc3339(d.UpdatedAt))
	switch {
	case d.deleted:
		it[attrDeleted] = &types.AttributeValueMemberBOOL{Value: true}
		if d.purgeAt > 0 {
			it[attrPurgeAt] = store.N(d.purgeAt)
		}
		return it
	case d.CredentialHash != "":
		it[attrHash] = store.S(d.CredentialHash)
	case !d.Token.Empty():
		it[attrToken] = store.S(d.Token.Reveal())
	}
	it[attrCred] = store.S(d.AuthorizationID)
	newHealth(it, d.ID)
	return it
}

func fromItem(it store.Item) Device {
	d := Device{ID: store.Str(it, attrID), AuthorizationID: store.Str(it, attrCred), CredentialHash: store.Str(it, attrHash),
		Token: config.Secret(store.Str(it, attrToken)), Generation: store.Num(it, attrGen), purgeAt: store.Num(it, attrPurgeAt)}
	d.CreatedAt, _ = time.Parse(time.RFC3339Nano, store.Str(it, attrCreated))
	d.UpdatedAt, _ = time.Parse(time.RFC3339Nano, store.Str(it, attrUpdated))
	_, d.deleted = it[attrDeleted]
	return d
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// live reports whether d is a registered device (not a tombstone, not an absent item).
func (d Device) live() bool { return !d.deleted && d.AuthorizationID != "" }

// Registry reads and changes the device registry. It keeps no state between requests: the table decides races.
type Registry struct {
	c     *influx.Client // direct mode's authorizations and Delete's data; nil is fine in gateway mode without data
	cfg   config.Config
	table *store.Table

	// SchedulePurge queues a delete's second data pass (PurgeLate), due PurgeDelay later; nil: first pass only.
	SchedulePurge func(ctx context.Context, id string, generation int64) error
	PurgeDelay    time.Duration
	// StaleAfter is the age after which an inactive authorization that is no device's current one is a crashed
	// caller's orphan (direct mode).
	StaleAfter time.Duration
	now        func() time.Time
}

// New builds a Registry over the state table and (direct mode, data deletion) InfluxDB.
func New(c *influx.Client, cfg config.Config, table *store.Table) *Registry {
	return &Registry{c: c, cfg: cfg, table: table, StaleAfter: time.Minute, now: time.Now}
}

// SetClock replaces the registry's clock (a benchmark simulating minutes shares one with the write gateway).
func (r *Registry) SetClock(now func() time.Time) { r.now = now }

// Config is the configuration the registry was built with.
func (r *Registry) Config() config.Config { return r.cfg }

// Get reads the device's item consistently; an unregistered or deleted id is *api.Error NotFound, with a Device
// holding only its ID and Generation (and a pending second data pass).
func (r *Registry) Get(ctx context.Context, id string) (Device, error) { return r.read(ctx, id, true) }

// read reads the device's item and its series item in one Query. An eventually consistent read costs half and may
// miss the last second's change: credential checks read so first and consistently on a mismatch.
func (r *Registry) read(ctx context.Context, id string, consistent bool) (Device, error) {
	if err := api.CheckDeviceID(id); err != nil {
		return Device{}, err
	}
	items, err := r.table.Partition(ctx, devicePrefix+id, consistent)
	if err != nil {
		return Device{}, err
	}
	d := fromItem(items["DEVICE"])
	if d.ID = id; !d.live() {
		err := api.Errorf(api.NotFound, "device %s is not registered", id)
		return Device{ID: id, Generation: d.Generation, purgeAt: d.purgeAt}, err
	}
	d.Series = &Series{Budget: store.Num(items["SERIES"], "budget")}
	if ss, ok := items["SERIES"][AttrSeries].(*types.AttributeValueMemberSS); ok {
		d.Series.Set = ss.Value
	}
	return d, nil
}

// List returns every registered device sorted by id (a Scan of the device items), without secrets.
func (r *Registry) List(ctx context.Context) ([]Device, error) {
	in := &dynamodb.ScanInput{TableName: &r.table.Name,
		FilterExpression:     aws.String("begins_with(pk, :p) AND attribute_not_exists(#del)"),
		ProjectionExpression: aws.String("#id, #cred, #gen, #c, #u"),
		ExpressionAttributeNames: map[string]string{"#del": attrDeleted, "#id": attrID, "#cred": attrCred, "#gen": attrGen,
			"#c": attrCreated, "#u": attrUpdated},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": store.S(devicePrefix)}}
	var items []store.Item
	for p := dynamodb.NewScanPaginator(r.table.DB, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, store.Classify(err)
		}
		items = append(items, page.Items...)
	}
	return devices(items), nil
}

// ListOf returns the registered devices among ids, sorted by id, without secrets: a BatchGetItem of their items
// alone, so its cost follows len(ids), not the fleet's size.
func (r *Registry) ListOf(ctx context.Context, ids []string) ([]Device, error) {
	keys, seen := []store.Item{}, map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			keys = append(keys, Key(id))
		}
	}
	items, err := r.table.BatchGet(ctx, keys, false)
	return devices(items), err
}

// devices are the live devices of items, sorted by id, their secrets dropped.
func devices(items []store.Item) []Device {
	var out []Device
	for _, it := range items {
		if d := fromItem(it); d.live() {
			d.Token, d.CredentialHash = "", ""
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Count is the device counter (the cap's): registered devices, give or take a crashed registration.
func (r *Registry) Count(ctx context.Context) (int64, error) {
	it, err := r.table.Get(ctx, counterKey, true)
	return store.Num(it, "n"), err
}

// RevocationKey is the key of the revocation item of t's minute (shared/store/README.md), which the write
// gateway's cache polls.
func RevocationKey(t time.Time) store.Item { return minuteKey("REVOKED", t) }

// RegisteredKey is the key of the registration feed item of t's minute: the fleet-health run adds the ids
// registered then to its positions snapshot without reading the whole fleet.
func RegisteredKey(t time.Time) store.Item { return minuteKey("REGISTERED", t) }

func minuteKey(kind string, t time.Time) store.Item {
	return store.Key(kind+"#"+strconv.FormatInt(t.Unix()/60, 10), kind)
}

// addToMinute adds ids to the minute item kind (RevocationKey, RegisteredKey) of now, kept for a day.
func (r *Registry) addToMinute(ctx context.Context, key func(time.Time) store.Item, ids []string) error {
	now := r.now()
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: key(now),
		UpdateExpression:         aws.String("ADD #ids :ids SET #e = :e"),
		ExpressionAttributeNames: map[string]string{"#ids": "ids", "#e": store.ExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ids": &types.AttributeValueMemberSS{Value: ids},
			":e": store.N((now.Unix()/60+1)*60 + 24*3600)}})
	return store.Classify(err)
}

// revoked records that id's credential changes now; written before the change, so whoever sees the new item can
// see the revocation too.
func (r *Registry) revoked(ctx context.Context, id string) error {
	return r.addToMinute(ctx, RevocationKey, []string{id})
}

// feed adds newly registered ids to the minute's feed. A failure is only logged: the run's daily full pass adds
// them.
func (r *Registry) feed(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := r.addToMinute(ctx, RegisteredKey, ids); err != nil {
		api.Logger(ctx).WarnContext(ctx, "adding devices to the registration feed failed", "devices", len(ids),
			"error", err.Error())
	}
}
