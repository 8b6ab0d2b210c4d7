package registry

import (
	"context"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Device health on the device item: kept by the fleet-health run (shared/fleet), read by the device list and the
// overview. A new device starts silent (it has not written yet); the run writes only status changes and moves.
const (
	AttrStatus   = "status"   // S: StatusOnline, StatusLate or StatusSilent
	AttrLastSeen = "lastSeen" // S (SeenFormat, UTC): the last real write known at the last status change or move
	AttrLat      = "lat"      // N: the last position (absent: none known)
	AttrLon      = "lon"      // N

	// AttrShard is IndexByID's partition key: "<shard>", fixed for the id (one partition would take every write of
	// a bulk registration).
	AttrShard = "sh"
	// AttrStatusKey is IndexByStatus' and IndexBySeen's partition key, "<status>#<shard>": three statuses alone
	// would make three hot partitions.
	AttrStatusKey = "st"
	// AttrSeenKey is IndexBySeen's sort key, "<lastSeen>#<id>" ("0#<id>" when never seen): unique, so it pages.
	AttrSeenKey = "seen"
)

// Statuses of a device (shared/fleet judges them).
const (
	StatusOnline = "online"
	StatusLate   = "late"
	StatusSilent = "silent"
)

// The table's global secondary indexes over device items (template.yaml's StateTable). Tombstones carry none of
// their keys, so deleted devices are in none.
const (
	IndexByID     = "byId"     // sh, id
	IndexByStatus = "byStatus" // st, id
	IndexBySeen   = "bySeen"   // st, seen
)

// Shards is how many partitions each index key is spread over. Changing it re-keys every device item.
const Shards = 4

// SeenFormat is lastSeen's layout: fixed width, so the text sorts as the time does.
const SeenFormat = "2006-01-02T15:04:05Z"

// Shard is the id's index shard.
func Shard(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % Shards)
}

// ShardKey is the value of AttrShard for shard s.
func ShardKey(s int) string { return strconv.Itoa(s) }

// StatusKey is the value of AttrStatusKey for a device of that status in shard s.
func StatusKey(status string, s int) string { return status + "#" + strconv.Itoa(s) }

// SeenKey is the value of AttrSeenKey: lastSeen (zero: never) and the id.
func SeenKey(lastSeen time.Time, id string) string {
	if lastSeen.IsZero() {
		return "0#" + id
	}
	return lastSeen.UTC().Format(SeenFormat) + "#" + id
}

// newHealth adds a new device's health to its item: silent, never seen, in the indexes.
func newHealth(it store.Item, id string) {
	s := Shard(id)
	it[AttrStatus] = store.S(StatusSilent)
	it[AttrShard] = store.S(ShardKey(s))
	it[AttrStatusKey] = store.S(StatusKey(StatusSilent, s))
	it[AttrSeenKey] = store.S(SeenKey(time.Time{}, id))
}

// RegisteredKey is the key of the registration feed item of the minute t falls in: pk REGISTERED#<unix minute>, sk
// REGISTERED, ids (SS) the devices registered in that minute, expiresAt a day later. The fleet-health run adds them
// to the positions snapshot without reading the whole fleet.
func RegisteredKey(t time.Time) store.Item {
	return store.Key("REGISTERED#"+strconv.FormatInt(t.Unix()/60, 10), "REGISTERED")
}

// feed adds newly registered ids to the minute's registration feed item (RegisteredKey), which the fleet-health
// run reads to add them to the positions snapshot. A failure is logged: the run's daily full pass adds them.
func (r *Registry) feed(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	now := r.now()
	_, err := r.table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table.Name, Key: RegisteredKey(now),
		UpdateExpression:         aws.String("ADD #ids :ids SET #e = :e"),
		ExpressionAttributeNames: map[string]string{"#ids": "ids", "#e": store.ExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ids": &types.AttributeValueMemberSS{Value: ids},
			":e": &types.AttributeValueMemberN{Value: strconv.FormatInt((now.Unix()/60+1)*60+24*3600, 10)}}})
	if err != nil {
		api.Logger(ctx).WarnContext(ctx, "adding devices to the registration feed failed", "devices", len(ids),
			"error", store.Classify(err).Error())
	}
}
