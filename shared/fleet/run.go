package fleet

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/positions"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Counter items (pk COUNTER): the devices per status, as the last fleet-health run counted them, and that run's time.
const (
	counterPK    = "COUNTER"
	statusPrefix = "STATUS#"
	runSK        = "HEALTHRUN"
	devicesSK    = "DEVICES" // the registry's device count (the cap's)
	// moveDegrees is how far a device must move (in latitude or longitude) for its item to be rewritten: about 100 m.
	moveDegrees = 0.001
	// runEvery is the run's schedule (template.yaml): each run reads the next slice of positions.
	runEvery = 5 * time.Minute
	// revocationGap is the longest gap between runs that revocation items cover (their TTL); past it a run reads
	// every device's status from the index.
	revocationGap = 23 * time.Hour
	writers       = 16
)

// StatusKey is the counter item's sort key of a status.
func StatusKey(status string) string { return statusPrefix + status }

// Counts is the fleet's health in numbers, and what the run cost.
type Counts struct {
	Registered, Online, Late, Silent int
	PointsPerMinute                  float64
	// StoreWrites is the run's write requests to the table; Changed the devices whose item it rewrote.
	StoreWrites, Changed int
	At                   time.Time
}

// Check is the fleet-health run: it reads the devices that wrote within the last lateAfter intervals (from their
// series, or from the write gateway's presence digest when s.Digest is set), compares them with the positions
// snapshot (the previous run's view), writes only the devices whose status changed or that moved, the counters that
// changed and, when anything changed, the snapshot. Then it writes the counts to InfluxDB (measurement "fleet") and
// as CloudWatch EMF metrics.
func (s *Service) Check(ctx context.Context) (Counts, error) {
	now := s.Clock.Now().UTC()
	c := Counts{At: now}
	counters, err := s.Table.BatchGet(ctx, []store.Item{store.Key(counterPK, devicesSK), store.Key(counterPK, runSK),
		store.Key(counterPK, StatusKey(Online)), store.Key(counterPK, StatusKey(Late)), store.Key(counterPK, StatusKey(Silent))}, true)
	if err != nil {
		return c, err
	}
	stored := map[string]int64{}
	var lastRun time.Time
	for _, it := range counters {
		sk := store.Str(it, store.SK)
		stored[sk] = store.Num(it, "n")
		if sk == runSK {
			lastRun, _ = time.Parse(time.RFC3339Nano, store.Str(it, "at"))
		}
	}
	snap, err := positions.Read(ctx, s.Table)
	if err != nil {
		return c, api.Wrap(api.CodeOf(err), err, "reading the positions snapshot")
	}
	// the online devices; on a first run also the late ones (later, a device becomes late by going quiet)
	var win map[string]*Seen
	if s.Digest {
		win, c.PointsPerMinute, err = s.Health.RecentDigest(ctx, now, lastRun.IsZero())
	} else {
		win, c.PointsPerMinute, err = s.recentSeries(ctx, now, lastRun.IsZero())
	}
	if err != nil {
		return c, err
	}
	prev := make(map[string]Position, len(snap.Devices))
	for _, d := range snap.Devices {
		prev[d.ID] = Position{ID: d.ID, Lat: d.Lat, Lon: d.Lon, Status: positions.StatusName(d.Status), LastSeen: d.LastSeen}
	}
	membership := false
	if lastRun.IsZero() || now.Sub(lastRun) > revocationGap || lastRun.YearDay() != now.YearDay() {
		// once a day, and after a gap the feed items no longer cover: every device from the index
		membership, err = s.reconcileAll(ctx, prev, win)
	} else {
		membership, err = s.reconcileFeed(ctx, lastRun, now, prev, win)
	}
	if err != nil {
		return c, err
	}

	next := make(map[string]Position, len(prev)+len(win))
	var down []string
	for id, p := range prev {
		if _, ok := win[id]; ok {
			continue
		}
		if p.Status == Silent {
			next[id] = p
		} else {
			down = append(down, id)
		}
	}
	sort.Strings(down)
	last, err := s.Health.LastSeenAny(ctx, now, down)
	if err != nil {
		return c, api.Wrap(api.Unavailable, err, "reading the last points of the devices going quiet")
	}
	for _, id := range down {
		p := prev[id]
		if t, ok := last[id]; ok && t.After(p.LastSeen) {
			p.LastSeen = t
		}
		p.Status = s.Health.Status(p.LastSeen, now)
		next[id] = p
	}
	// the devices coming online without a position read this run: their last one, by id
	var unplaced []string
	for id, w := range win {
		if p, had := prev[id]; (!had || p.Status != Online) && math.IsNaN(w.Lat) {
			unplaced = append(unplaced, id)
		}
	}
	sort.Strings(unplaced)
	placed, err := s.Health.PositionsOf(ctx, now, unplaced)
	if err != nil {
		return c, api.Wrap(api.Unavailable, err, "reading the positions of the devices coming online")
	}
	for id, p := range placed {
		win[id].Lat, win[id].Lon = p.Lat, p.Lon
	}
	for id, w := range win {
		p, had := prev[id]
		if !had {
			p = Position{ID: id, Lat: math.NaN(), Lon: math.NaN()}
		}
		p.LastSeen, p.Status = w.At, s.Health.Status(w.At, now)
		if !math.IsNaN(w.Lat) && !math.IsNaN(w.Lon) && moved(p, w) {
			p.Lat, p.Lon = w.Lat, w.Lon
		}
		next[id] = p
	}

	// the devices whose item changes: a status change or a move (the snapshot mirrors the items' positions)
	var changed []Position
	for id, n := range next {
		p, had := prev[id]
		if !had || p.Status != n.Status || !samePos(p, n) {
			changed = append(changed, n)
		}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].ID < changed[j].ID })
	gone, writes, err := s.writeDevices(ctx, changed)
	c.StoreWrites += writes
	if err != nil {
		return c, err
	}
	for _, id := range gone {
		delete(next, id)
	}
	c.Changed = len(changed) - len(gone)

	devs := make([]positions.Device, 0, len(next))
	for _, p := range next {
		switch p.Status {
		case Online:
			c.Online++
		case Late:
			c.Late++
		}
		if w, ok := win[p.ID]; ok {
			p.LastSeen = w.At // the map's hover shows the freshest time the run knows
		}
		devs = append(devs, positions.Device{ID: p.ID, Lat: p.Lat, Lon: p.Lon, Status: positions.StatusCode(p.Status), LastSeen: p.LastSeen})
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
	c.Registered = int(stored[devicesSK])
	c.Silent = max(0, c.Registered-c.Online-c.Late)
	if c.Changed > 0 || membership || snap.UpdatedAt.IsZero() {
		if err := positions.Write(ctx, s.Table, positions.Snapshot{UpdatedAt: now, Devices: devs}); err != nil {
			return c, api.Wrap(api.CodeOf(err), err, "writing the positions snapshot")
		}
		c.StoreWrites += (len(devs)+positions.PartDevices-1)/positions.PartDevices + 1
	}
	for status, n := range map[string]int{Online: c.Online, Late: c.Late, Silent: c.Silent} {
		if stored[StatusKey(status)] == int64(n) && !lastRun.IsZero() {
			continue
		}
		it := store.Key(counterPK, StatusKey(status))
		it["n"], it["updatedAt"] = store.N(int64(n)), store.S(now.Format(time.RFC3339Nano))
		if err := s.Table.Put(ctx, it, "", nil); err != nil {
			return c, err
		}
		c.StoreWrites++
	}
	run := store.Key(counterPK, runSK)
	run["at"] = store.S(now.Format(time.RFC3339Nano))
	if err := s.Table.Put(ctx, run, "", nil); err != nil {
		return c, err
	}
	c.StoreWrites++

	if s.Writer != nil {
		line := fmt.Sprintf("%s online=%di,late=%di,silent=%di,registered=%di,pointsPerMinute=%s %d\n", schema.FleetMeasurement,
			c.Online, c.Late, c.Silent, c.Registered, strconv.FormatFloat(c.PointsPerMinute, 'f', -1, 64), now.UnixNano())
		if err := s.Writer.WriteLines(ctx, s.Health.Bucket, []byte(line)); err != nil {
			return c, api.Wrap(api.Unavailable, err, "writing the fleet's counts")
		}
	}
	if s.Metrics != nil {
		metrics.EmitAll(ctx, s.Metrics, nil,
			metrics.Metric{Name: "SilentDevices", Value: float64(c.Silent), Unit: metrics.Count},
			metrics.Metric{Name: "LateDevices", Value: float64(c.Late), Unit: metrics.Count},
			metrics.Metric{Name: "OnlineDevices", Value: float64(c.Online), Unit: metrics.Count},
			metrics.Metric{Name: "RegisteredDevices", Value: float64(c.Registered), Unit: metrics.Count})
	}
	api.Logger(ctx).InfoContext(ctx, "fleet health", "registered", c.Registered, "online", c.Online, "late", c.Late,
		"silent", c.Silent, "changed", c.Changed, "storeWrites", c.StoreWrites, "pointsPerMinute", c.PointsPerMinute)
	return c, nil
}

// recentSeries reads the window's devices from their series (direct mode), with the positions of one slice of them.
func (s *Service) recentSeries(ctx context.Context, now time.Time, wide bool) (map[string]*Seen, float64, error) {
	recent, ppm, err := s.Health.Recent(ctx, now, wide)
	if err != nil {
		return nil, 0, api.Wrap(api.Unavailable, err, "reading the devices' recent points")
	}
	pos, err := s.Health.Positions(ctx, now, int(now.Unix()/int64(runEvery/time.Second))%positionSlices)
	if err != nil {
		return nil, 0, api.Wrap(api.Unavailable, err, "reading the devices' positions")
	}
	win := make(map[string]*Seen, len(recent))
	for id, t := range recent {
		w := &Seen{At: t, Lat: math.NaN(), Lon: math.NaN()}
		if p, ok := pos[id]; ok {
			w.Lat, w.Lon = p.Lat, p.Lon
		}
		win[id] = w
	}
	return win, ppm, nil
}

func moved(p Position, w *Seen) bool {
	return !p.HasPos() || math.Abs(p.Lat-w.Lat) > moveDegrees || math.Abs(p.Lon-w.Lon) > moveDegrees
}

func samePos(a, b Position) bool {
	if a.HasPos() != b.HasPos() {
		return false
	}
	return !a.HasPos() || (a.Lat == b.Lat && a.Lon == b.Lon)
}

// writeDevices writes each changed device's health to its item, writers at a time. An id that is not (or no
// longer) a registered device fails the write's condition and is returned in gone.
func (s *Service) writeDevices(ctx context.Context, changed []Position) (gone []string, writes int, err error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		n     atomic.Int64
		first error
	)
	work := make(chan Position)
	for range min(writers, len(changed)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				err := s.writeDevice(ctx, p)
				n.Add(1)
				mu.Lock()
				switch {
				case store.IsConditionFailed(err) != nil:
					gone = append(gone, p.ID)
				case err != nil && first == nil:
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range changed {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		work <- p
	}
	close(work)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = api.Wrap(api.Timeout, ctx.Err(), "writing the devices' health")
	}
	return gone, int(n.Load()), first
}

// writeDevice sets one device's status, lastSeen, position and index keys, only on a registered device's item.
func (s *Service) writeDevice(ctx context.Context, p Position) error {
	shard := registry.Shard(p.ID)
	names := map[string]string{"#id": "id", "#del": "deleted", "#status": registry.AttrStatus, "#st": registry.AttrStatusKey,
		"#seen": registry.AttrSeenKey, "#sh": registry.AttrShard}
	vals := map[string]types.AttributeValue{":status": store.S(p.Status), ":st": store.S(registry.StatusKey(p.Status, shard)),
		":seen": store.S(registry.SeenKey(p.LastSeen, p.ID)), ":sh": store.S(registry.ShardKey(shard))}
	set := "SET #status = :status, #st = :st, #seen = :seen, #sh = :sh"
	if !p.LastSeen.IsZero() {
		set += ", #ls = :ls"
		names["#ls"] = registry.AttrLastSeen
		vals[":ls"] = store.S(p.LastSeen.UTC().Format(registry.SeenFormat))
	}
	if p.HasPos() {
		set += ", #lat = :lat, #lon = :lon"
		names["#lat"], names["#lon"] = registry.AttrLat, registry.AttrLon
		vals[":lat"] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(p.Lat, 'f', -1, 64)}
		vals[":lon"] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(p.Lon, 'f', -1, 64)}
	}
	_, err := s.Table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table.Name, Key: deviceKey(p.ID),
		UpdateExpression: aws.String(set), ConditionExpression: aws.String("attribute_exists(#id) AND attribute_not_exists(#del)"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: vals})
	return store.Classify(err)
}

func deviceKey(id string) store.Item { return store.Key("DEVICE#"+id, "DEVICE") }

// Position is one device as the run keeps it (the snapshot's device, with its status by name).
type Position struct {
	ID       string
	Lat, Lon float64 // NaN: no position known
	Status   string
	LastSeen time.Time // zero: never
}

// HasPos reports whether the device's position is known.
func (p Position) HasPos() bool { return !math.IsNaN(p.Lat) && !math.IsNaN(p.Lon) }
