package fleet

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Sort orders of the device list.
const (
	SortID = "id" // by id, ascending
	// SortLastSeen is the longest unseen first: silent, then late, then online devices; within a status the oldest
	// recorded lastSeen first (never seen before any).
	SortLastSeen = "lastSeen"
	// SortLastSeenDesc is SortLastSeen reversed: online first, the latest recorded lastSeen first.
	SortLastSeenDesc = "-lastSeen"
)

// statusOrder is the order of the statuses in SortLastSeen.
var statusOrder = []string{Online, Late, Silent}

// PageQuery is one page of the device list.
type PageQuery struct {
	Status string // "" for every status
	Prefix string // ids starting with it ("" for every id)
	Sort   string // SortID or SortLastSeen
	Limit  int    // 1..MaxLimit
	// After is the cursor: the last id of the previous page (SortID), or Cursor.String() of its last device
	// (SortLastSeen).
	After Cursor
}

// Cursor is the position after which a page starts.
type Cursor struct {
	Status string // SortLastSeen: the status phase the key belongs to
	Key    string // the index's sort key: an id (SortID) or a SeenKey (SortLastSeen)
}

func (c Cursor) String() string {
	if c.Status == "" {
		return c.Key
	}
	return c.Status + "~" + c.Key
}

// ParseCursor reads a cursor of the sort order; ok is false for anything malformed.
func ParseCursor(sortBy, s string) (Cursor, bool) {
	if sortBy == SortID {
		return Cursor{Key: s}, api.ValidDeviceID(s)
	}
	status, key, ok := strings.Cut(s, "~")
	if !ok || !validStatus(status) {
		return Cursor{}, false
	}
	seen, id, ok := strings.Cut(key, "#")
	if !ok || !api.ValidDeviceID(id) {
		return Cursor{}, false
	}
	if seen != "0" {
		if _, err := time.Parse(registry.SeenFormat, seen); err != nil {
			return Cursor{}, false
		}
	}
	return Cursor{Status: status, Key: key}, true
}

func validStatus(s string) bool { return s == Online || s == Late || s == Silent }

// Entry is one device of a page, as its index item holds it.
type Entry struct {
	ID, AuthorizationID, Status string
	CreatedAt, UpdatedAt        time.Time
	LastSeen                    time.Time // zero: never seen
	Lat, Lon                    *float64
	key                         string // the index sort key (id or seen)
}

// Pager reads pages of devices from the table's indexes: every page costs at most registry.Shards queries per
// status phase of Limit+1 items each, whatever the fleet's size.
type Pager struct {
	Table *store.Table
}

// idHigh is above every id (the id alphabet ends at 'z'): the upper bound of an id range.
const idHigh = "~"

// Page answers q: at most q.Limit devices and the cursor of the next page (nil when none follows). A page may
// hold fewer than Limit devices while more follow (a prefix search over the lastSeen order filters after reading).
func (p *Pager) Page(ctx context.Context, q PageQuery) ([]Entry, *Cursor, error) {
	if q.Sort == SortID {
		index, pk := registry.IndexByID, registry.AttrShard
		keyOf := func(s int) string { return registry.ShardKey(s) }
		if q.Status != "" {
			index, pk = registry.IndexByStatus, registry.AttrStatusKey
			keyOf = func(s int) string { return registry.StatusKey(q.Status, s) }
		}
		lo, hi := "0", idHigh
		if q.Prefix != "" {
			lo, hi = q.Prefix, q.Prefix+idHigh
		}
		if q.After.Key != "" {
			// '-' is the id alphabet's least character: the next id after `after` is at least after+"-"
			lo = max(lo, q.After.Key+"-")
		}
		if lo > hi {
			return nil, nil, nil
		}
		parts := make([]partQuery, registry.Shards)
		for s := range parts {
			parts[s] = partQuery{index: index, pkAttr: pk, pk: keyOf(s), skAttr: "id", lo: lo, hi: hi, forward: true}
		}
		out, cut, err := p.merge(ctx, parts, q.Limit, func(a, b string) bool { return a < b })
		if err != nil || cut == nil {
			return out, nil, err
		}
		return out, &Cursor{Key: *cut}, nil
	}
	desc := q.Sort == SortLastSeenDesc
	phases := []string{Silent, Late, Online}
	less := func(a, b string) bool { return a < b }
	if desc {
		phases = statusOrder
		less = func(a, b string) bool { return a > b }
	}
	if q.Status != "" {
		phases = []string{q.Status}
	}
	started := q.After.Status == ""
	var out []Entry
	for _, status := range phases {
		started = started || status == q.After.Status
		if !started {
			continue
		}
		past := ""
		if q.After.Status == status {
			past = q.After.Key
		}
		parts := make([]partQuery, registry.Shards)
		for s := range parts {
			parts[s] = partQuery{index: registry.IndexBySeen, pkAttr: registry.AttrStatusKey, pk: registry.StatusKey(status, s),
				skAttr: registry.AttrSeenKey, forward: !desc, past: past, prefix: q.Prefix}
		}
		got, cut, err := p.merge(ctx, parts, q.Limit-len(out), less)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, got...)
		if cut != nil {
			return out, &Cursor{Status: status, Key: *cut}, nil
		}
		if len(out) >= q.Limit {
			if status == phases[len(phases)-1] {
				return out, nil, nil
			}
			// the page is full at a phase's end: the next page starts at the following phase
			last := out[len(out)-1]
			return out, &Cursor{Status: status, Key: last.key}, nil
		}
	}
	return out, nil, nil
}

// partQuery is one index partition's range: ids in [lo, hi] ascending, or seen keys past `past` in the direction
// forward says.
type partQuery struct {
	index, pkAttr, pk, skAttr string
	lo, hi                    string // ids: the sort key's inclusive range
	forward                   bool
	past                      string // seen keys: only keys strictly after it in the query's direction ("": any)
	prefix                    string // seen keys: only ids starting with it (a filter, applied after reading)
}

// projection is what a page reads of an index item (the indexes project these; never a credential).
var projection = []string{"id", registry.AttrStatus, registry.AttrLastSeen, registry.AttrLat, registry.AttrLon, "credId",
	"createdAt", "updatedAt", registry.AttrSeenKey}

// merge reads limit+1 items of every part at once and merges them in the order less. A part that has more than
// it returned bounds the answer: nothing past its last evaluated key can be answered yet, since its next items may
// come before other parts' items. cut is the next page's cursor key (nil: no more).
func (p *Pager) merge(ctx context.Context, parts []partQuery, limit int, less func(a, b string) bool) ([]Entry, *string, error) {
	type result struct {
		items    []Entry
		frontier *string // the last evaluated key when the part has more
		err      error
	}
	res := make([]result, len(parts))
	var wg sync.WaitGroup
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i].items, res[i].frontier, res[i].err = p.query(ctx, parts[i], int32(limit+1))
		}()
	}
	wg.Wait()
	var all []Entry
	var cutoff *string
	for _, r := range res {
		if r.err != nil {
			return nil, nil, r.err
		}
		all = append(all, r.items...)
		if r.frontier != nil && (cutoff == nil || less(*r.frontier, *cutoff)) {
			cutoff = r.frontier
		}
	}
	sort.Slice(all, func(i, j int) bool { return less(all[i].key, all[j].key) })
	n := 0
	for n < len(all) && n <= limit && (cutoff == nil || !less(*cutoff, all[n].key)) {
		n++
	}
	switch {
	case n > limit:
		last := all[limit-1].key
		return all[:limit], &last, nil
	case cutoff != nil && n > 0:
		last := all[n-1].key
		return all[:n], &last, nil
	case cutoff != nil:
		return nil, cutoff, nil
	}
	return all[:n], nil, nil
}

// query reads up to limit items of one partition.
func (p *Pager) query(ctx context.Context, q partQuery, limit int32) ([]Entry, *string, error) {
	names := map[string]string{"#pk": q.pkAttr}
	vals := map[string]types.AttributeValue{":pk": store.S(q.pk)}
	cond := "#pk = :pk"
	in := &dynamodb.QueryInput{TableName: &p.Table.Name, IndexName: aws.String(q.index), Limit: aws.Int32(limit),
		ScanIndexForward: aws.Bool(q.forward)}
	if q.hi != "" || q.past != "" {
		names["#sk"] = q.skAttr
	}
	switch {
	case q.hi != "":
		cond += " AND #sk BETWEEN :lo AND :hi"
		vals[":lo"], vals[":hi"] = store.S(q.lo), store.S(q.hi)
	case q.past != "" && q.forward:
		cond += " AND #sk > :past"
		vals[":past"] = store.S(q.past)
	case q.past != "":
		cond += " AND #sk < :past"
		vals[":past"] = store.S(q.past)
	}
	if q.prefix != "" {
		in.FilterExpression = aws.String("begins_with(#id, :prefix)")
		names["#id"] = "id"
		vals[":prefix"] = store.S(q.prefix)
	}
	proj := make([]string, len(projection))
	for i, a := range projection {
		k := "#p" + string(rune('a'+i))
		names[k] = a
		proj[i] = k
	}
	in.KeyConditionExpression = aws.String(cond)
	in.ProjectionExpression = aws.String(strings.Join(proj, ", "))
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = names, vals
	out, err := p.Table.DB.Query(ctx, in)
	if err != nil {
		return nil, nil, store.Classify(err)
	}
	items := make([]Entry, 0, len(out.Items))
	for _, it := range out.Items {
		e := entryOf(it)
		if q.skAttr == "id" {
			e.key = e.ID
		}
		items = append(items, e)
	}
	if len(out.LastEvaluatedKey) == 0 {
		return items, nil, nil
	}
	f := store.Str(out.LastEvaluatedKey, q.skAttr)
	return items, &f, nil
}

func float(it store.Item, name string) (float64, bool) {
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	return f, err == nil
}

// entryOf reads a device's index item.
func entryOf(it store.Item) Entry {
	e := Entry{ID: store.Str(it, "id"), AuthorizationID: store.Str(it, "credId"), Status: store.Str(it, registry.AttrStatus),
		key: store.Str(it, registry.AttrSeenKey)}
	if e.Status == "" {
		e.Status = Silent
	}
	e.CreatedAt, _ = time.Parse(time.RFC3339Nano, store.Str(it, "createdAt"))
	e.UpdatedAt, _ = time.Parse(time.RFC3339Nano, store.Str(it, "updatedAt"))
	e.LastSeen, _ = time.Parse(registry.SeenFormat, store.Str(it, registry.AttrLastSeen))
	if lat, ok := float(it, registry.AttrLat); ok {
		if lon, ok := float(it, registry.AttrLon); ok {
			e.Lat, e.Lon = &lat, &lon
		}
	}
	return e
}
