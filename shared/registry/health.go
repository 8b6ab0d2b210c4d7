package registry

import (
	"hash/fnv"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Device health on the device item, kept by the fleet-health run (shared/fleet) and read by the device list and
// the overview. Index keys are spread over Shards, or a bulk registration would write one hot partition.
const (
	AttrStatus    = "status"   // S: StatusOnline, StatusLate or StatusSilent
	AttrLastSeen  = "lastSeen" // S (SeenFormat, UTC): the last write known at the last status change or move
	AttrLat       = "lat"      // N: the last position (absent: none known)
	AttrLon       = "lon"      // N
	AttrShard     = "sh"       // IndexByID's partition key: the id's shard
	AttrStatusKey = "st"       // IndexByStatus' and IndexBySeen's partition key: "<status>#<shard>"
	AttrSeenKey   = "seen"     // IndexBySeen's sort key: "<lastSeen>#<id>" ("0#<id>": never seen), unique
)

// Statuses of a device (shared/fleet judges them).
const (
	StatusOnline = "online"
	StatusLate   = "late"
	StatusSilent = "silent"
)

// The table's indexes over device items (template.yaml's StateTable); tombstones are in none.
const (
	IndexByID     = "byId"     // sh, id
	IndexByStatus = "byStatus" // st, id
	IndexBySeen   = "bySeen"   // st, seen
)

// Shards is how many partitions each index key is spread over; changing it re-keys every device item.
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
	it[AttrStatus], it[AttrShard] = store.S(StatusSilent), store.S(ShardKey(s))
	it[AttrStatusKey], it[AttrSeenKey] = store.S(StatusKey(StatusSilent, s)), store.S(SeenKey(time.Time{}, id))
}
