package fleet

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// reconcileFeed applies the registrations, deletions and re-registrations since the last run to prev (and drops
// deleted devices from win): the ids of the minutes' registration and revocation items, whose device items are read.
// changed reports whether prev gained, lost or changed a device.
func (s *Service) reconcileFeed(ctx context.Context, since, now time.Time, prev map[string]Position, win map[string]*Seen) (bool, error) {
	var keys []store.Item
	for m := since.Unix()/60 - 1; m <= now.Unix()/60; m++ {
		keys = append(keys, registry.RevocationKey(time.Unix(m*60, 0)), registry.RegisteredKey(time.Unix(m*60, 0)))
	}
	items, err := s.Table.BatchGet(ctx, keys, false)
	if err != nil {
		return false, err
	}
	ids := map[string]bool{}
	for _, it := range items {
		ss, ok := it["ids"].(*types.AttributeValueMemberSS)
		if !ok {
			continue
		}
		fed := strings.HasPrefix(store.Str(it, store.PK), "REGISTERED#")
		for _, id := range ss.Value {
			// a registration the snapshot holds already needs no read; a revocation (deleted? registered again?) does
			if _, known := prev[id]; !fed || !known {
				ids[id] = true
			}
		}
	}
	if len(ids) == 0 {
		return false, nil
	}
	dkeys := make([]store.Item, 0, len(ids))
	for id := range ids {
		dkeys = append(dkeys, deviceKey(id))
	}
	devs, err := s.Table.BatchGet(ctx, dkeys, true)
	if err != nil {
		return false, err
	}
	live := map[string]Position{}
	for _, it := range devs {
		if _, del := it["deleted"]; !del {
			p := positionOf(it)
			live[p.ID] = p
		}
	}
	return applyMembership(ids, live, prev, win), nil
}

// positionOf reads a device item's health.
func positionOf(it store.Item) Position {
	e := entryOf(it)
	p := Position{ID: e.ID, Status: e.Status, LastSeen: e.LastSeen, Lat: math.NaN(), Lon: math.NaN()}
	if e.Lat != nil {
		p.Lat, p.Lon = *e.Lat, *e.Lon
	}
	return p
}

// reconcileAll reads every live device's status from the id index (after a long gap, or on the first run).
func (s *Service) reconcileAll(ctx context.Context, prev map[string]Position, win map[string]*Seen) (bool, error) {
	live := map[string]Position{}
	for shard := range registry.Shards {
		in := &dynamodb.QueryInput{TableName: &s.Table.Name, IndexName: aws.String(registry.IndexByID),
			KeyConditionExpression: aws.String("#sh = :sh"),
			ProjectionExpression:   aws.String("#id, #status, #ls, #lat, #lon"),
			ExpressionAttributeNames: map[string]string{"#sh": registry.AttrShard, "#id": "id", "#status": registry.AttrStatus,
				"#ls": registry.AttrLastSeen, "#lat": registry.AttrLat, "#lon": registry.AttrLon},
			ExpressionAttributeValues: map[string]types.AttributeValue{":sh": store.S(registry.ShardKey(shard))}}
		p := dynamodb.NewQueryPaginator(s.Table.DB, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return false, store.Classify(err)
			}
			for _, it := range page.Items {
				p := positionOf(it)
				live[p.ID] = p
			}
		}
	}
	ids := map[string]bool{}
	for id := range prev {
		ids[id] = true
	}
	for id := range win {
		ids[id] = true
	}
	for id := range live {
		ids[id] = true
	}
	return applyMembership(ids, live, prev, win), nil
}

// applyMembership brings prev in line with the device items of ids (live: the registered ones): a device gone is
// dropped from prev and win, a device prev lacks (a new one) or whose item's status differs (deleted and registered
// again) is taken from its item.
func applyMembership(ids map[string]bool, live map[string]Position, prev map[string]Position, win map[string]*Seen) bool {
	changed := false
	for id := range ids {
		item, ok := live[id]
		p, inPrev := prev[id]
		switch {
		case !ok:
			delete(win, id)
			if inPrev {
				delete(prev, id)
				changed = true
			}
		case !inPrev || item.Status != p.Status:
			prev[id] = item
			changed = true
		}
	}
	return changed
}
