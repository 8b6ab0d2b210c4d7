package registry

import (
	"context"
	"sort"

	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// idsFlux reads the device ids in the registry bucket's index (schema.tagValues: no point is read). The index
// still names a deleted device, so these are only candidates: Page reads their records.
const idsFlux = `import "influxdata/influxdb/schema"
schema.tagValues(bucket: registryBucket, tag: "deviceId", predicate: (r) => r._measurement == measurement, start: 0)`

// maxWindow caps the ids one ListOf of Page reads (its regular expression's size).
const maxWindow = 4096

// Page returns up to limit registered devices with ids after `after` (any id when ""), sorted by id, and whether
// more follow. Its cost follows limit, not the fleet's size: it reads the index's sorted ids (cheap, but they
// include deleted devices) and then the records of just enough of them (ListOf), in windows that double while
// deleted ids leave the page short.
func (r *Registry) Page(ctx context.Context, after string, limit int) ([]Device, bool, error) {
	var ids []string
	err := r.retried(ctx, func() error {
		rc, err := r.c.QueryRaw(ctx, idsFlux, influx.Extern{"registryBucket": r.cfg.BucketAuth, "measurement": Measurement})
		if err != nil {
			return err
		}
		defer rc.Close()
		ids = ids[:0]
		return influx.EachRow(rc, []string{"_value"}, func(row []string) error {
			ids = append(ids, row[0])
			return nil
		})
	})
	if err != nil {
		return nil, false, err
	}
	sort.Strings(ids)
	i := sort.SearchStrings(ids, after)
	if i < len(ids) && ids[i] == after {
		i++
	}
	var out []Device
	window := 0
	for i < len(ids) && len(out) <= limit { // one more than limit says whether more follow
		window = min(max(limit+1-len(out), 2*window), maxWindow)
		cand := ids[i:min(len(ids), i+window)]
		i += len(cand)
		devs, err := r.ListOf(ctx, cand)
		if err != nil {
			return nil, false, err
		}
		out = append(out, devs...) // each window is sorted and after the previous one
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
