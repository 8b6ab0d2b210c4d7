// Package registry is the device registry: which devices exist and the credential each one writes with, one item
// per device in the control-plane table (shared/store). Registration, rotation and deletion are each one
// conditional write whose loser gets the winner's item back; the device cap is a counter updated under a condition;
// a deletion leaves a tombstone with the next generation. In direct mode the device's InfluxDB authorization is
// created inactive and activated only by the winner. README.md has the details and the crash cases.
package registry

import (
	"context"
	"errors"
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
	// AuthorizationID identifies the device's current credential: its InfluxDB authorization (direct mode) or a
	// random id (gateway mode). The authorizer hands it to the function, which checks it against the item.
	AuthorizationID string
	// Token is the device's InfluxDB token (direct mode), or its gateway credential only in the answer of the call
	// that created it (gateway mode stores just CredentialHash). Never listed, never logged.
	Token          config.Secret
	CredentialHash string // gateway mode: hex SHA-256 of the device credential
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Generation grows by one with every registration, rotation and deletion of the id; 0: never registered. It is
	// set also when Get answers NotFound (a deleted device's tombstone keeps it).
	Generation int64
	// Series is the write gateway's series item, when it was read together with the device (Verify): one read
	// primes both the credential and the series budget.
	Series *Series

	deleted bool
	purgeAt int64 // a tombstone's second data pass is due then (epoch seconds; 0: none pending)
}

// Series is a device's series item: its tag-set entries and its own budget per measurement (0: the default).
type Series struct {
	Set    []string
	Budget int64
}

// Attribute names of the device item.
const (
	attrID, attrGen, attrCred, attrHash, attrToken = "id", "generation", "credId", "hash", "token"
	attrCreated, attrUpdated, attrDeleted          = "createdAt", "updatedAt", "deleted"
	attrPurgeAt                                    = "purgeAt"
	devicePrefix                                   = "DEVICE#"
)

// Key is the device item's key.
func Key(id string) store.Item { return store.Key(devicePrefix+id, "DEVICE") }

// The write gateway's series items (shared/gateway keeps them; Delete removes a device's): the device's tag sets
// (AttrSeries, a string set) and the fleet's count of them (AttrFleetSeries).
const (
	AttrSeries      = "s"
	AttrFleetSeries = "n"
)

// SeriesKey is the key of a device's series item.
func SeriesKey(id string) store.Item { return store.Key(devicePrefix+id, "SERIES") }

// FleetSeriesKey is the key of the fleet's tag-set counter.
func FleetSeriesKey() store.Item { return store.Key("COUNTER", "SERIES") }

// Item renders d as a new device item (the migration writes items with it): a live device starts silent, in the
// device list's indexes (health.go).
func Item(d Device) store.Item {
	it := Key(d.ID)
	it[attrID] = store.S(d.ID)
	it[attrGen] = store.N(d.Generation)
	it[attrCreated] = store.S(rfc3339(d.CreatedAt))
	it[attrUpdated] = store.S(rfc3339(d.UpdatedAt))
	if d.deleted {
		it[attrDeleted] = &types.AttributeValueMemberBOOL{Value: true}
		if d.purgeAt > 0 {
			it[attrPurgeAt] = store.N(d.purgeAt)
		}
		return it
	}
	newHealth(it, d.ID)
	it[attrCred] = store.S(d.AuthorizationID)
	if d.CredentialHash != "" {
		it[attrHash] = store.S(d.CredentialHash)
	} else if !d.Token.Empty() {
		it[attrToken] = store.S(d.Token.Reveal())
	}
	return it
}

func fromItem(it store.Item) Device {
	d := Device{ID: store.Str(it, attrID), AuthorizationID: store.Str(it, attrCred), Token: config.Secret(store.Str(it, attrToken)),
		CredentialHash: store.Str(it, attrHash), Generation: store.Num(it, attrGen)}
	d.CreatedAt, _ = time.Parse(time.RFC3339Nano, store.Str(it, attrCreated))
	d.UpdatedAt, _ = time.Parse(time.RFC3339Nano, store.Str(it, attrUpdated))
	if b, ok := it[attrDeleted].(*types.AttributeValueMemberBOOL); ok && b.Value {
		d.deleted = true
		d.purgeAt = store.Num(it, attrPurgeAt)
	}
	return d
}

// live reports whether d is a registered device (not a tombstone, not an absent item).
func (d Device) live() bool { return !d.deleted && d.AuthorizationID != "" }

// Registry reads and changes the device registry. It keeps no state between requests, so any number of instances
// may run at once (see the package comment).
type Registry struct {
	c     *influx.Client // direct mode's authorizations and Delete's data; nil is fine in gateway mode without data
	cfg   config.Config
	table *store.Table

	// SchedulePurge queues the second data pass of a delete with data (see PurgeLate), due PurgeDelay later; nil:
	// none (the first pass only).
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

func notFound(d Device) (Device, error) {
	return Device{ID: d.ID, Generation: d.Generation, purgeAt: d.purgeAt}, &api.Error{Code: api.NotFound, Message: "device " + d.ID + " is not registered"}
}

// Get reads the device's item with a consistent read; an unregistered (or deleted) id is *api.Error NotFound,
// with the returned Device carrying only ID and Generation (and a pending second data pass).
func (r *Registry) Get(ctx context.Context, id string) (Device, error) {
	return r.Lookup(ctx, id, true)
}

// Lookup reads the device's item: an eventually consistent read costs half a consistent one and may miss a change
// of the last second, so callers that compare a credential read eventually first and consistently on a mismatch.
func (r *Registry) Lookup(ctx context.Context, id string, consistent bool) (Device, error) {
	if err := api.CheckDeviceID(id); err != nil {
		return Device{}, err
	}
	it, err := r.table.Get(ctx, Key(id), consistent)
	if err != nil {
		return Device{}, err
	}
	d := fromItem(it)
	d.ID = id
	if !d.live() {
		return notFound(d)
	}
	return d, nil
}

// lookupWithSeries reads the device's item and its series item in one Query (see Lookup for consistent).
func (r *Registry) lookupWithSeries(ctx context.Context, id string, consistent bool) (Device, error) {
	if err := api.CheckDeviceID(id); err != nil {
		return Device{}, err
	}
	items, err := r.table.Partition(ctx, devicePrefix+id, consistent)
	if err != nil {
		return Device{}, err
	}
	d := fromItem(items["DEVICE"])
	d.ID = id
	if !d.live() {
		return notFound(d)
	}
	d.Series = &Series{Budget: store.Num(items["SERIES"], "budget")}
	if ss, ok := items["SERIES"][AttrSeries].(*types.AttributeValueMemberSS); ok {
		d.Series.Set = ss.Value
	}
	return d, nil
}

// List returns every registered device sorted by id (a Scan of the table's device items). Tokens and hashes are
// not read.
func (r *Registry) List(ctx context.Context) ([]Device, error) {
	in := &dynamodb.ScanInput{TableName: &r.table.Name,
		FilterExpression:          aws.String("begins_with(pk, :p) AND attribute_not_exists(#del)"),
		ProjectionExpression:      aws.String("#id, #cred, #gen, #c, #u"),
		ExpressionAttributeNames:  map[string]string{"#del": attrDeleted, "#id": attrID, "#cred": attrCred, "#gen": attrGen, "#c": attrCreated, "#u": attrUpdated},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": store.S(devicePrefix)}}
	var out []Device
	p := dynamodb.NewScanPaginator(r.table.DB, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, store.Classify(err)
		}
		for _, it := range page.Items {
			if d := fromItem(it); d.live() {
				out = append(out, d)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ListOf returns the registered devices among ids (valid device ids), sorted by id: BatchGetItem of just their
// items, so its cost follows len(ids), not the fleet's size. Tokens and hashes are not read.
func (r *Registry) ListOf(ctx context.Context, ids []string) ([]Device, error) {
	var out []Device
	seen := map[string]bool{}
	for start := 0; start < len(ids); start += 100 { // BatchGetItem's limit
		keys := []store.Item{}
		for _, id := range ids[start:min(len(ids), start+100)] {
			if !seen[id] {
				seen[id] = true
				keys = append(keys, Key(id))
			}
		}
		req := map[string]types.KeysAndAttributes{r.table.Name: {Keys: keys,
			ProjectionExpression:     aws.String("#id, #cred, #gen, #c, #u, #del"),
			ExpressionAttributeNames: map[string]string{"#del": attrDeleted, "#id": attrID, "#cred": attrCred, "#gen": attrGen, "#c": attrCreated, "#u": attrUpdated}}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == 8 {
				return nil, api.Errorf(api.StoreUnavailable, "the device store kept some keys unprocessed")
			}
			res, err := r.table.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, store.Classify(err)
			}
			for _, it := range res.Responses[r.table.Name] {
				if d := fromItem(it); d.live() {
					out = append(out, d)
				}
			}
			req = res.UnprocessedKeys
			if len(req) > 0 && sleep(ctx, time.Duration(attempt+1)*50*time.Millisecond) != nil {
				return nil, api.Wrap(api.Timeout, ctx.Err(), "reading the device store")
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Count is the device counter (the cap's): registered devices, give or take a crashed registration.
func (r *Registry) Count(ctx context.Context) (int64, error) {
	it, err := r.table.Get(ctx, counterKey, true)
	return store.Num(it, "n"), err
}

var counterKey = store.Key("COUNTER", "DEVICES")

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RevocationKey is the key of the revocation item of the minute t falls in (shared/store/README.md): the write
// gateway's cache reads it.
func RevocationKey(t time.Time) store.Item {
	return store.Key("REVOKED#"+strconv.FormatInt(t.Unix()/60, 10), "REVOKED")
}

// revoked records that id's credential changes now: the minute's revocation item gains the id. Written before the
// change, so whoever sees the new device item can see the revocation too.
func (r *Registry) revoked(ctx context.Context, id string) error {
	now := r.now()
	end := (now.Unix()/60 + 1) * 60
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: RevocationKey(now),
		UpdateExpression:         aws.String("ADD #ids :id SET #e = :e"),
		ExpressionAttributeNames: map[string]string{"#ids": "ids", "#e": store.ExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberSS{Value: []string{id}},
			":e": store.N(end + 24*3600)}})
	return store.Classify(err)
}

// errStore says whether err is the store's (not a lost condition).
func lost(err error) (Device, bool) {
	var cf *store.ConditionFailed
	if errors.As(err, &cf) {
		return fromItem(cf.Item), true
	}
	return Device{}, false
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
