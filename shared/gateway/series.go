package gateway

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Series budgets. A series in InfluxDB is a measurement, a tag set and a field; every new tag set grows InfluxDB's
// index, which is what takes InfluxDB OSS down. So each device may write at most a budget of tag sets per
// measurement, and the fleet at most a budget of tag sets in all: a write that would create one more is refused
// whole.
const (
	DefaultSeriesBudget      = 32
	DefaultFleetSeriesBudget = 100_000
)

// Items of the state table (shared/store's key design; the keys are registry's, whose Delete removes a device's):
//   - DEVICE#<id>/SERIES: `s` (SS) the device's tag sets, each "<measurement>#<16 hex digits of the tag set's
//     FNV-1a hash>"; `budget` (N, optional) the device's own budget per measurement, set by an operator.
//   - COUNTER/SERIES: `n` (N) the tag sets of every device.
const (
	attrSeries = registry.AttrSeries
	attrBudget = "budget"
)

// SeriesKey is the key of a device's series item.
func SeriesKey(device string) store.Item { return registry.SeriesKey(device) }

// FleetSeriesKey is the key of the fleet's tag-set counter.
func FleetSeriesKey() store.Item { return registry.FleetSeriesKey() }

// seriesID is one tag set of a request: its measurement and the hash of its tags (clientId left out: it is the
// device's on every point).
type seriesID struct {
	m    *measurementRules
	hash uint64
}

func (s seriesID) entry() string {
	var b [16]byte
	h := strconv.AppendUint(b[:0], s.hash, 16)
	out := make([]byte, 0, len(s.m.name)+1+16)
	out = append(out, s.m.name...)
	out = append(out, '#')
	for range 16 - len(h) {
		out = append(out, '0')
	}
	return string(append(out, h...))
}

// book keeps each device's known tag sets, read from the state table once per ttl and extended by one conditional
// update when a request brings a new one.
type book struct {
	t       *store.Table
	device  int   // default budget per device and measurement
	fleet   int64 // budget of the fleet
	ttl     time.Duration
	max     int
	now     func() time.Time
	retries int

	mu sync.Mutex
	m  map[string]*known
}

// known is what the book knows of one device.
type known struct {
	set     map[string]struct{}
	perM    map[string]int // tag sets per measurement
	budget  int            // per measurement
	read    time.Time      // when the series item was read
	expires time.Time
}

func newBook(t *store.Table, device int, fleet int64, ttl time.Duration, now func() time.Time) *book {
	return &book{t: t, device: device, fleet: fleet, ttl: ttl, max: 100_000, now: now, retries: 3, m: map[string]*known{}}
}

// admit returns nil when every tag set in ids is one the device already has, or after recording the new ones
// within both budgets; otherwise a refusal naming the budget (nothing recorded).
func (b *book) admit(ctx context.Context, device string, ids []seriesID) error {
	k, fresh, err := b.get(ctx, device, false)
	if err != nil {
		return err
	}
	if len(unknown(k, ids)) == 0 {
		return nil
	}
	// a view read within the last second (the registry's read of this very request, see prime) is good enough to
	// try the conditional update on: a tag set it misses makes the update fail and read again. A refusal rests only
	// on a read of this call (an operator may have raised the budget since).
	loaded := fresh
	recent := fresh || b.now().Sub(k.read) < time.Second
	for attempt := 0; ; attempt++ {
		if !recent {
			if k, err = b.load(ctx, device); err != nil {
				return err
			}
			loaded = true
		}
		add := unknown(k, ids)
		if len(add) == 0 {
			return nil
		}
		if err := b.withinDevice(device, k, add); err != nil {
			if loaded {
				return err
			}
			recent = false
			continue
		}
		err := b.record(ctx, device, k, add)
		if err == nil {
			return nil
		}
		if store.IsConditionFailed(err) == nil || attempt+1 >= b.retries {
			if store.IsConditionFailed(err) != nil {
				return api.Errorf(api.Unavailable, "the device's series changed concurrently, try again")
			}
			return err
		}
		recent = false // another write extended the set since it was read: read again
	}
}

func unknown(k *known, ids []seriesID) []seriesID {
	var out []seriesID
	for _, id := range ids {
		if _, ok := k.set[id.entry()]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// withinDevice checks the device's budget per measurement.
func (b *book) withinDevice(device string, k *known, add []seriesID) error {
	perM := map[string]int{}
	for _, id := range add {
		perM[id.m.name]++
	}
	for m, n := range perM {
		if have := k.perM[m]; have+n > k.budget {
			return api.Errorf(api.Forbidden, "series budget exceeded: device %s has %d tag sets in measurement %s and this request adds %d, its budget is %d per measurement (nothing was written)",
				device, have, m, n, k.budget)
		}
	}
	return nil
}

// record adds the new tag sets: first the fleet's counter (under its budget), then the device's set under the
// condition that it is still the set that was read (sets only grow, so its size says so). If the device's update
// loses, the fleet's count is given back (a failed give-back leaves the count high, never low).
func (b *book) record(ctx context.Context, device string, k *known, add []seriesID) error {
	n := int64(len(add))
	_, err := b.t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &b.t.Name,
		Key:                 FleetSeriesKey(),
		UpdateExpression:    aws.String("ADD n :k"),
		ConditionExpression: aws.String("attribute_not_exists(n) OR n <= :lim"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": store.N(n), ":lim": store.N(b.fleet - n),
		},
	})
	if err = store.Classify(err); err != nil {
		if store.IsConditionFailed(err) != nil {
			return api.Errorf(api.Forbidden, "series budget exceeded: the fleet's budget of %d tag sets is used up, this request adds %d (nothing was written)", b.fleet, n)
		}
		return err
	}
	entries := make([]string, len(add))
	for i, id := range add {
		entries[i] = id.entry()
	}
	cond := "attribute_not_exists(#s)"
	vals := map[string]types.AttributeValue{":new": &types.AttributeValueMemberSS{Value: entries}}
	if len(k.set) > 0 {
		cond = "size(#s) = :have"
		vals[":have"] = store.N(int64(len(k.set)))
	}
	_, err = b.t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &b.t.Name,
		Key:                       SeriesKey(device),
		UpdateExpression:          aws.String("ADD #s :new"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#s": attrSeries},
		ExpressionAttributeValues: vals,
	})
	if err = store.Classify(err); err != nil {
		_, _ = b.t.DB.UpdateItem(context.WithoutCancel(ctx), &dynamodb.UpdateItemInput{
			TableName: &b.t.Name, Key: FleetSeriesKey(), UpdateExpression: aws.String("ADD n :k"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":k": store.N(-n)},
		})
		return err
	}
	// a cached known is never changed (requests read it unlocked): the extended one replaces it
	nk := &known{set: maps.Clone(k.set), perM: maps.Clone(k.perM), budget: k.budget, read: k.read, expires: k.expires}
	for _, e := range entries {
		nk.set[e] = struct{}{}
		nk.perM[e[:lastHash(e)]]++
	}
	b.mu.Lock()
	b.m[device] = nk
	b.mu.Unlock()
	return nil
}

// get returns the device's known tag sets from the cache, or reads them; fresh says they were just read.
func (b *book) get(ctx context.Context, device string, force bool) (*known, bool, error) {
	now := b.now()
	b.mu.Lock()
	k, ok := b.m[device]
	b.mu.Unlock()
	if ok && !force && now.Before(k.expires) {
		return k, false, nil
	}
	k, err := b.load(ctx, device)
	return k, true, err
}

// load reads the device's series item (strongly consistent: the condition of the next update compares with it).
func (b *book) load(ctx context.Context, device string) (*known, error) {
	it, err := b.t.Get(ctx, SeriesKey(device), true)
	if err != nil {
		return nil, err
	}
	var set []string
	if ss, ok := it[attrSeries].(*types.AttributeValueMemberSS); ok {
		set = ss.Value
	}
	return b.keep(device, set, store.Num(it, attrBudget)), nil
}

// prime keeps the series item the registry read with the device's credential (registry.Device.Series), so a
// device's first write costs no read of its own. It may be an eventually consistent read: a tag set it misses
// only makes admit read again before the conditional update.
func (b *book) prime(d registry.Device) {
	if d.Series != nil {
		b.keep(d.ID, d.Series.Set, d.Series.Budget)
	}
}

// keep caches the device's tag-set entries and its own budget (0: the default).
func (b *book) keep(device string, set []string, budget int64) *known {
	now := b.now()
	k := &known{set: make(map[string]struct{}, len(set)), perM: map[string]int{}, budget: b.device, read: now, expires: now.Add(b.ttl)}
	for _, e := range set {
		k.set[e] = struct{}{}
		if i := lastHash(e); i > 0 {
			k.perM[e[:i]]++
		}
	}
	if budget > 0 {
		k.budget = int(budget)
	}
	b.mu.Lock()
	if len(b.m) >= b.max {
		clear(b.m)
	}
	b.m[device] = k
	b.mu.Unlock()
	return k
}

// lastHash is the index of the '#' before an entry's hash (-1 when there is none).
func lastHash(e string) int {
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] == '#' {
			return i
		}
	}
	return -1
}

// fnv64 is FNV-1a, 64 bits: stable across instances and releases (a tag set's entry must not change).
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvAdd(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// tagSetHash hashes a line's sorted tags (clientId included: it is the device's on every point): key, '=', value
// and a 0 byte after each value (line protocol cannot carry a 0 byte, so the encoding is unambiguous).
func tagSetHash(tags []tag) uint64 {
	h := uint64(fnvOffset)
	for _, t := range tags {
		h = fnvAdd(h, t.key)
		h = (h ^ '=') * fnvPrime
		h = fnvAdd(h, t.value)
		h *= fnvPrime // xor with 0
	}
	return h
}
