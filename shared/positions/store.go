package positions

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Item keys of the snapshot in the control-plane table.
const (
	PK      = "POSITIONS"
	MetaSK  = "META"
	partSK  = "PART#"
	dataKey = "data"
	// PartDevices is how many devices one part holds: a gzipped part stays far below DynamoDB's 400 KB item limit.
	PartDevices = 10000
	// maxParts bounds what Read reads (MaxDevices / PartDevices, rounded up).
	maxParts = (MaxDevices + PartDevices - 1) / PartDevices
)

// PartSK is the sort key of part i.
func PartSK(i int) string { return fmt.Sprintf("%s%04d", partSK, i) }

// Write stores s as parts of PartDevices devices, then the META item naming how many parts are current (a reader
// ignores parts past it, the leftovers of a larger fleet). Parts are written before META, so a reader sees the
// new META only with every part it names; between two writes it may see old and new parts mixed.
func Write(ctx context.Context, t *store.Table, s Snapshot) error {
	parts := (len(s.Devices) + PartDevices - 1) / PartDevices
	for i := 0; i < parts; i++ {
		end := min((i+1)*PartDevices, len(s.Devices))
		b, err := Encode(Snapshot{UpdatedAt: s.UpdatedAt, Devices: s.Devices[i*PartDevices : end]})
		if err != nil {
			return err
		}
		it := store.Key(PK, PartSK(i))
		it[dataKey] = &types.AttributeValueMemberB{Value: Gzip(b)}
		if err := t.Put(ctx, it, "", nil); err != nil {
			return err
		}
	}
	meta := store.Key(PK, MetaSK)
	meta["parts"], meta["devices"] = store.N(int64(parts)), store.N(int64(len(s.Devices)))
	meta["updatedAt"] = store.N(s.UpdatedAt.UnixMilli())
	return t.Put(ctx, meta, "", nil)
}

// Read returns the stored snapshot (no devices and a zero UpdatedAt before the first Write): one Query over the
// POSITIONS items, paged by DynamoDB's 1 MB pages, bounded by maxParts.
func Read(ctx context.Context, t *store.Table) (Snapshot, error) {
	var (
		meta  store.Item
		parts = map[string][]byte{}
		start store.Item
	)
	for page := 0; page <= maxParts; page++ {
		out, err := t.DB.Query(ctx, &dynamodb.QueryInput{TableName: &t.Name,
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: store.Item{":pk": store.S(PK)}, ExclusiveStartKey: start})
		if err != nil {
			return Snapshot{}, store.Classify(err)
		}
		for _, it := range out.Items {
			sk := store.Str(it, store.SK)
			if sk == MetaSK {
				meta = it
			} else if b, ok := it[dataKey].(*types.AttributeValueMemberB); ok && len(parts) < maxParts {
				parts[sk] = b.Value
			}
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}
	if meta == nil {
		return Snapshot{}, nil
	}
	s := Snapshot{UpdatedAt: time.UnixMilli(store.Num(meta, "updatedAt")).UTC()}
	n := int(store.Num(meta, "parts"))
	if n < 0 || n > maxParts {
		return Snapshot{}, fmt.Errorf("positions: META names %d parts", n)
	}
	for i := 0; i < n; i++ {
		z, ok := parts[PartSK(i)]
		if !ok {
			return Snapshot{}, fmt.Errorf("positions: part %d of %d missing", i, n)
		}
		b, err := Gunzip(z)
		if err != nil {
			return Snapshot{}, err
		}
		p, err := Decode(b)
		if err != nil {
			return Snapshot{}, fmt.Errorf("positions: part %d: %w", i, err)
		}
		s.Devices = append(s.Devices, p.Devices...)
	}
	return s, nil
}

// Updated reads only the META item: when the stored snapshot was written (false before the first Write). A reader
// that keeps the last snapshot it read needs nothing more while this stays the same.
func Updated(ctx context.Context, t *store.Table) (time.Time, bool, error) {
	it, err := t.Get(ctx, store.Key(PK, MetaSK), false)
	if err != nil || it == nil {
		return time.Time{}, false, err
	}
	return time.UnixMilli(store.Num(it, "updatedAt")).UTC(), true, nil
}
