package backfill

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"regexp"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Job states as the job route answers them.
const (
	StatePlanning = "planning"
	StateRunning  = "running"
	StateDone     = "done"
	StateFailed   = "failed"
	// StateCancelled: the operator cancelled the job; tasks still queued then write nothing, and what was written
	// before stays (pointsWritten says how much).
	StateCancelled = "cancelled"
)

// Job is one write-missing request and its progress, read from the job's one item.
type Job struct {
	ID    string `json:"jobId"`
	State string `json:"state"`
	Window
	Devices       int        `json:"devices"`
	DevicesDone   int        `json:"devicesDone"`
	Chunks        int        `json:"chunks"`
	ChunksDone    int        `json:"chunksDone"`
	ChunksFailed  int        `json:"chunksFailed"`
	PointsPlanned int64      `json:"pointsPlanned"`
	PointsWritten int64      `json:"pointsWritten"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	Deadline      time.Time  `json:"deadline"`
	AllDevices    bool       `json:"allDevices"` // every registered device (no device list was given)
	CancelledAt   *time.Time `json:"cancelledAt,omitempty"`

	batches int // planning batches, known once the device list is read (-1 before)
	planned int // planning batches recorded
}

// jobIDRE is a job id: 16 hex digits of the request's key, then 12 random ones.
var jobIDRE = regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]{12}$`)

// CheckJobID validates a job id from the network.
func CheckJobID(id string) error {
	if !jobIDRE.MatchString(id) {
		return api.InvalidParam("jobId", "jobId is not a job id")
	}
	return nil
}

// requestKey is a request's identity: the data bucket (the deployment), the sorted device set ("*": every device)
// and the window's length. Requests with the same key while a job runs join it.
func requestKey(scope string, devices []string, days int) string {
	h := sha256.New()
	fmt.Fprintf(h, "scope=%s\ndays=%d\n", scope, days)
	if devices == nil {
		h.Write([]byte("*\n"))
	}
	sorted := append([]string(nil), devices...)
	sort.Strings(sorted)
	for _, d := range sorted {
		h.Write([]byte(d + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newJob builds a job for key created now.
func newJob(key string, devices []string, win Window, now time.Time, timeout time.Duration) Job {
	created, r := now.UTC().Truncate(time.Millisecond), make([]byte, 6)
	_, _ = rand.Read(r)
	return Job{ID: key[:16] + "-" + hex.EncodeToString(r), State: StatePlanning, Window: win, Devices: len(devices),
		CreatedAt: created, UpdatedAt: created, Deadline: created.Add(timeout), AllDevices: devices == nil, batches: -1}
}

// JobStore keeps jobs in the control-plane table: the job item (JOB#<id>: window, deadline, counters, and bitmaps
// of the batches and devices counted, so that a task delivered twice counts once) and each request's claim
// (JOBREQ#<key>: the job serving it), taken by one conditional put.
type JobStore struct{ Table *store.Table }

// jobRetention is how long a job stays readable after its deadline (then the table's TTL deletes it).
const jobRetention = 7 * 24 * time.Hour

// expiry is a job's TTL on the wall clock (the table's), whatever clock the job's times came from.
func expiry(j Job) types.AttributeValue {
	return store.Expiry(time.Now(), j.Deadline.Sub(j.CreatedAt)+jobRetention)
}

func jobKey(id string) store.Item               { return store.Key("JOB#"+id, "JOB") }
func claimKey(key string) store.Item            { return store.Key("JOBREQ#"+key, "JOBREQ") }
func ms(t time.Time) types.AttributeValue       { return store.N(t.UnixMilli()) }
func msOf(it store.Item, name string) time.Time { return time.UnixMilli(store.Num(it, name)).UTC() }
func blob(b []byte) types.AttributeValue        { return &types.AttributeValueMemberB{Value: b} }
func has(b []byte, i int64) bool                { return i/8 < int64(len(b)) && b[i/8]&(1<<(i%8)) != 0 }
func bits(it store.Item, name string) []byte {
	b, _ := it[name].(*types.AttributeValueMemberB)
	if b == nil {
		return nil
	}
	return b.Value
}

// create writes a new job's item (a new id: the condition only guards against a clash).
func (s *JobStore) create(ctx context.Context, j Job) error {
	it := jobKey(j.ID)
	for k, v := range map[string]types.AttributeValue{"from": ms(j.From), "to": ms(j.To), "deadline": ms(j.Deadline),
		"created": ms(j.CreatedAt), "updated": ms(j.CreatedAt), "requested": store.N(int64(j.Devices)), "ver": store.N(0),
		"all": &types.AttributeValueMemberBOOL{Value: j.AllDevices}, store.ExpiresAt: expiry(j)} {
		it[k] = v
	}
	_, err := s.Table.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table.Name, Item: it,
		ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if err != nil {
		return store.Classify(err)
	}
	// then its entry in the recent-jobs index (a job without one is only missing from the overview's list)
	rec := recentKey(j)
	rec["job"], rec[store.ExpiresAt] = store.S(j.ID), expiry(j)
	_, err = s.Table.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table.Name, Item: rec})
	return store.Classify(err)
}

// claim makes j the job of request key if the claim is free: absent, or still naming replaces (a job the caller
// read as ended or past its deadline). It returns "" when j won, else the id of the job holding the claim.
func (s *JobStore) claim(ctx context.Context, key string, j Job, replaces string) (string, error) {
	it := claimKey(key)
	it["job"], it[store.ExpiresAt] = store.S(j.ID), expiry(j)
	_, err := s.Table.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table.Name, Item: it,
		ConditionExpression: aws.String("attribute_not_exists(pk) OR #job = :old"), ExpressionAttributeNames: map[string]string{
			"#job": "job"}, ExpressionAttributeValues: store.Item{":old": store.S(replaces)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	if cf := store.IsConditionFailed(store.Classify(err)); cf != nil {
		return store.Str(cf.Item, "job"), nil
	}
	return "", store.Classify(err)
}

// claimed returns the job id holding the claim of request key ("" for none).
func (s *JobStore) claimed(ctx context.Context, key string) (string, error) {
	it, err := s.Table.Get(ctx, claimKey(key), true)
	return store.Str(it, "job"), err
}

// end moves a job's deadline to now (a job that could not be queued): it reads failed, and its claim is free.
func (s *JobStore) end(ctx context.Context, id string, now time.Time) error {
	return s.update(ctx, id, now, func(store.Item) *change {
		return &change{set: map[string]types.AttributeValue{"deadline": ms(now)}}
	})
}

// Get reads a job (one consistent read of its item); an unknown or expired job is api.NotFound.
func (s *JobStore) Get(ctx context.Context, id string, now time.Time) (Job, error) {
	if err := CheckJobID(id); err != nil {
		return Job{}, err
	}
	it, err := s.get(ctx, id)
	if err != nil {
		return Job{}, err
	}
	n := func(name string) int { return int(store.Num(it, name)) }
	all, _ := it["all"].(*types.AttributeValueMemberBOOL)
	j := Job{ID: id, Window: Window{From: msOf(it, "from"), To: msOf(it, "to")}, Devices: n("requested"),
		DevicesDone: n("devicesDone"), Chunks: n("chunks"), ChunksDone: n("chunksDone"), ChunksFailed: n("chunksFailed"),
		PointsPlanned: store.Num(it, "pointsPlanned"), PointsWritten: store.Num(it, "pointsWritten"),
		CreatedAt: msOf(it, "created"), UpdatedAt: msOf(it, "updated"), Deadline: msOf(it, "deadline"),
		AllDevices: all != nil && all.Value, batches: -1, planned: n("planned")}
	if _, ok := it["batches"]; ok {
		j.Devices, j.batches = n("devices"), n("batches")
	}
	if _, ok := it["cancelled"]; ok {
		at := msOf(it, "cancelled")
		j.CancelledAt = &at
	}
	j.State = state(&j, now)
	return j, nil
}

func (s *JobStore) get(ctx context.Context, id string) (store.Item, error) {
	it, err := s.Table.Get(ctx, jobKey(id), true)
	if err == nil && it == nil {
		err = &api.Error{Code: api.NotFound, Message: "job " + id + " not found", Param: "jobId"}
	}
	return it, err
}

// change is what a task adds to its job's item: attributes set, counters added.
type change struct {
	set map[string]types.AttributeValue
	add map[string]int64
}

// updateRounds bounds the optimistic retries of one update (every task of a job updates its one item).
const updateRounds = 10

// update applies fn's change to the job's item under optimistic concurrency: read consistently, write only if the
// item's version is still the one read. fn returns nil when there is nothing to do (counted already).
func (s *JobStore) update(ctx context.Context, id string, at time.Time, fn func(it store.Item) *change) error {
	for round := 0; round < updateRounds; round++ {
		it, err := s.get(ctx, id)
		if api.IsCode(err, api.NotFound) {
			return nil // the job is gone (expired): nothing to count
		} else if err != nil {
			return err
		}
		c := fn(it)
		if c == nil {
			return nil
		}
		names, vals := map[string]string{"#ver": "ver", "#updated": "updated"}, store.Item{":ver": it["ver"], ":updated": ms(at)}
		expr := []string{"SET #updated = :updated", " ADD #ver :one"}
		vals[":one"] = store.N(1)
		for a, v := range c.set {
			names["#"+a], vals[":"+a], expr[0] = a, v, expr[0]+", #"+a+" = :"+a
		}
		for a, n := range c.add {
			names["#"+a], vals[":"+a], expr[1] = a, store.N(n), expr[1]+", #"+a+" :"+a
		}
		_, err = s.Table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table.Name, Key: jobKey(id),
			UpdateExpression: aws.String(expr[0] + expr[1]), ConditionExpression: aws.String("#ver = :ver"),
			ExpressionAttributeNames: names, ExpressionAttributeValues: vals})
		if store.IsConditionFailed(store.Classify(err)) == nil {
			return store.Classify(err)
		}
		select { // another task changed the item first: read it again after a short random pause
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(mrand.Int64N(int64(5*time.Millisecond) << min(round, 5)))):
		}
	}
	return api.Errorf(api.StoreUnavailable, "job %s changed concurrently %d times", id, updateRounds)
}

// Cancel marks a running job cancelled (once: a repeated cancel answers the same job). The tasks still queued read
// the mark and write nothing; a task already writing finishes its own points. A job that has ended is a Conflict.
func (s *JobStore) Cancel(ctx context.Context, id string, now time.Time) (Job, error) {
	j, err := s.Get(ctx, id, now)
	if err != nil || j.State == StateCancelled {
		return j, err
	}
	if !j.active() {
		return j, &api.Error{Code: api.Conflict, Message: "job " + id + " has ended (" + j.State + ")", Param: "jobId"}
	}
	err = s.update(ctx, id, now, func(it store.Item) *change {
		if _, ok := it["cancelled"]; ok {
			return nil
		}
		return &change{set: map[string]types.AttributeValue{"cancelled": ms(now)}}
	})
	if err != nil {
		return Job{}, err
	}
	return s.Get(ctx, id, now)
}

// cancelled reports whether a job was cancelled (a job gone from the table is not).
func (s *JobStore) cancelled(ctx context.Context, id string) (bool, error) {
	it, err := s.Table.Get(ctx, jobKey(id), true)
	if err != nil {
		return false, err
	}
	_, ok := it["cancelled"]
	return ok, nil
}

// recordPlan records the job's device count and planning batches (a repeated plan task changes nothing).
func (s *JobStore) recordPlan(ctx context.Context, j JobRef, devices, batches int, at time.Time) error {
	return s.update(ctx, j.ID, at, func(it store.Item) *change {
		if _, ok := it["batches"]; ok {
			return nil
		}
		return &change{set: map[string]types.AttributeValue{"devices": store.N(int64(devices)), "batches": store.N(int64(batches))}}
	})
}

// tally is what one task counts: a planning batch (its number, -1 for none; its chunks and points) and the outcome
// of devices (by index in the job's device list; a device's chunks all travel in one task).
type tally struct {
	batch          int64
	chunks, points int64
	devices        map[int64]outcome
}

type outcome struct{ done, failed, points int64 }

// count adds a task's tally to its job, each batch and each device once (the bitmaps say which are counted), the
// device outcomes capped to the plan's totals (a batch replanned after a partial write could count a device twice).
func (s *JobStore) count(ctx context.Context, j JobRef, t tally, at time.Time) error {
	return s.update(ctx, j.ID, at, func(it store.Item) *change {
		c := &change{set: map[string]types.AttributeValue{}, add: map[string]int64{}}
		if batches := bits(it, "batchesSeen"); t.batch >= 0 {
			if t.batch >= store.Num(it, "batches") || has(batches, t.batch) {
				return nil // counted already, or not a batch of this job
			}
			c.set["batchesSeen"] = blob(mark(batches, t.batch))
			c.add["planned"], c.add["chunks"], c.add["pointsPlanned"] = 1, t.chunks, t.points
		}
		seen, done, failed, points, devices := bits(it, "devicesSeen"), int64(0), int64(0), int64(0), int64(0)
		for d, o := range t.devices {
			if d < store.Num(it, "devices") && !has(seen, d) {
				seen, done, failed, points = mark(seen, d), done+o.done, failed+o.failed, points+o.points
				c.set["devicesSeen"] = blob(seen)
				if o.failed == 0 {
					devices++
				}
			}
		}
		if len(c.set) == 0 {
			return nil
		}
		n := func(a string) int64 { return store.Num(it, a) + c.add[a] }
		room := max(n("chunks")-n("chunksDone")-n("chunksFailed"), 0)
		c.add["chunksDone"], c.add["chunksFailed"] = min(done, room), min(failed, room-min(done, room))
		c.add["pointsWritten"] = min(points, max(n("pointsPlanned")-n("pointsWritten"), 0))
		c.add["devicesDone"] = min(devices, max(n("devices")-n("devicesDone"), 0))
		return c
	})
}

// mark sets bit i of a bitmap (grown as needed).
func mark(b []byte, i int64) []byte {
	for int64(len(b)) <= i/8 {
		b = append(b, 0)
	}
	b[i/8] |= 1 << (i % 8)
	return b
}

// state derives the job's state from its counters: planning until every batch is counted, then running until every
// chunk has an outcome. Past the deadline whatever is unwritten counts as failed (the chunks still queued record
// themselves as failed when they arrive; asking again plans what is still missing).
func state(j *Job, now time.Time) string {
	planned := j.batches >= 0 && j.planned >= j.batches
	switch {
	case planned && j.ChunksDone >= j.Chunks && j.ChunksFailed == 0:
		return StateDone
	case j.CancelledAt != nil:
		return StateCancelled
	case planned && j.ChunksDone+j.ChunksFailed >= j.Chunks:
		return StateFailed
	case !now.Before(j.Deadline):
		if planned {
			j.ChunksFailed = j.Chunks - j.ChunksDone
		}
		return StateFailed
	case planned:
		return StateRunning
	}
	return StatePlanning
}

// active reports whether a job may still change (a second request for the same key joins it).
func (j Job) active() bool { return j.State == StatePlanning || j.State == StateRunning }
