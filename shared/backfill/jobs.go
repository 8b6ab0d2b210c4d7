package backfill

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Job states as the job route answers them.
const (
	StatePlanning  = "planning"
	StateRunning   = "running"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled" // queued tasks then write nothing; what was written stays
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
	planned int // planning batches counted
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

// requestKey is a request's identity: bucket, window length, sorted device set ("*": all). Same key, same job.
func requestKey(scope string, devices []string, days int) string {
	set := "*"
	if devices != nil {
		set = strings.Join(slices.Sorted(slices.Values(devices)), "\n")
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "scope=%s\ndays=%d\n%s\n", scope, days, set))
	return hex.EncodeToString(sum[:])
}

func newJob(key string, devices []string, win Window, now time.Time, timeout time.Duration) Job {
	created, r := now.UTC().Truncate(time.Millisecond), make([]byte, 6)
	_, _ = rand.Read(r)
	return Job{ID: key[:16] + "-" + hex.EncodeToString(r), State: StatePlanning, Window: win, Devices: len(devices),
		CreatedAt: created, UpdatedAt: created, Deadline: created.Add(timeout), AllDevices: devices == nil, batches: -1}
}

// JobStore keeps jobs in the state table (JOB#, JOBREQ# and JOBS items in shared/store/README.md).
type JobStore struct{ Table *store.Table }

// expiry is a job's TTL, 7 days past its deadline, on the wall clock (the table's) whatever clock made the job.
func expiry(j Job) types.AttributeValue {
	return store.Expiry(time.Now(), j.Deadline.Sub(j.CreatedAt)+7*24*time.Hour)
}

func jobKey(id string) store.Item               { return store.Key("JOB#"+id, "JOB") }
func claimKey(key string) store.Item            { return store.Key("JOBREQ#"+key, "JOBREQ") }
func ms(t time.Time) types.AttributeValue       { return store.N(t.UnixMilli()) }
func msOf(it store.Item, name string) time.Time { return time.UnixMilli(store.Num(it, name)).UTC() }

// create writes a new job's item (listed in the recent jobs once it wins its request's claim).
func (s *JobStore) create(ctx context.Context, j Job) error {
	it := jobKey(j.ID)
	it["from"], it["to"], it["deadline"], it["created"] = ms(j.From), ms(j.To), ms(j.Deadline), ms(j.CreatedAt)
	it["updated"], it["batches"], it["devices"] = ms(j.CreatedAt), store.N(-1), store.N(int64(j.Devices))
	it["all"], it[store.ExpiresAt] = &types.AttributeValueMemberBOOL{Value: j.AllDevices}, expiry(j)
	return s.Table.Put(ctx, it, "attribute_not_exists(pk)", nil)
}

// list adds a job to the recent-jobs index: only the claim's winner, so racing requests list one job.
func (s *JobStore) list(ctx context.Context, j Job) error {
	rec := store.Key(recentPK, fmt.Sprintf("%013d#%s", j.CreatedAt.UnixMilli(), j.ID))
	rec["job"], rec[store.ExpiresAt] = store.S(j.ID), expiry(j)
	return s.Table.Put(ctx, rec, "", nil)
}

// claim makes j the job of request key if the claim is free: absent, expired, or still naming replaces (a job the
// caller read as ended or past its deadline). It returns "" when j won, else the id of the job holding the claim.
func (s *JobStore) claim(ctx context.Context, key string, j Job, replaces string) (string, error) {
	it := claimKey(key)
	it["job"], it[store.ExpiresAt] = store.S(j.ID), expiry(j)
	err := s.Table.Put(ctx, it, "attribute_not_exists(pk) OR #expiresAt <= :now OR #job = :old",
		store.Item{":now": store.N(time.Now().Unix()), ":old": store.S(replaces)})
	if cf := store.IsConditionFailed(err); cf != nil {
		return store.Str(cf.Item, "job"), nil
	}
	return "", err
}

// claimed returns the job id holding the claim of request key ("" for none).
func (s *JobStore) claimed(ctx context.Context, key string) (string, error) {
	it, err := s.Table.Get(ctx, claimKey(key), true)
	return store.Str(it, "job"), err
}

// Get reads a job (one consistent read; unknown or expired: api.NotFound). Counters are capped at the plan: a batch
// replanned after a partial write can count a device's chunks and points above it.
func (s *JobStore) Get(ctx context.Context, id string, now time.Time) (Job, error) {
	if err := CheckJobID(id); err != nil {
		return Job{}, err
	}
	it, err := s.Table.Get(ctx, jobKey(id), true)
	if err != nil {
		return Job{}, err
	} else if it == nil {
		return Job{}, &api.Error{Code: api.NotFound, Message: "job " + id + " not found", Param: "jobId"}
	}
	return jobOf(it, now), nil
}

// jobOf is a job item as a Job, its state derived at now.
func jobOf(it store.Item, now time.Time) Job {
	n := func(name string) int { return int(store.Num(it, name)) }
	all, _ := it["all"].(*types.AttributeValueMemberBOOL)
	j := Job{ID: strings.TrimPrefix(store.Str(it, store.PK), "JOB#"), Window: Window{From: msOf(it, "from"), To: msOf(it, "to")}, Devices: n("devices"),
		Chunks: n("chunks"), PointsPlanned: store.Num(it, "pointsPlanned"), CreatedAt: msOf(it, "created"),
		UpdatedAt: msOf(it, "updated"), Deadline: msOf(it, "deadline"), AllDevices: all != nil && all.Value,
		batches: n("batches"), planned: n("planned")}
	j.ChunksFailed = min(n("chunksFailed"), j.Chunks)
	j.ChunksDone, j.DevicesDone = min(n("chunksDone"), j.Chunks-j.ChunksFailed), min(n("devicesDone"), j.Devices)
	j.PointsWritten = min(store.Num(it, "pointsWritten"), j.PointsPlanned)
	if at := msOf(it, "cancelled"); it["cancelled"] != nil {
		j.CancelledAt = &at
	}
	j.State = state(&j, now)
	return j
}

// update changes a live job item (an absent one has no expiresAt) if cond holds; false when cond failed.
func (s *JobStore) update(ctx context.Context, id, expr, cond string, at time.Time, vals store.Item) (bool, error) {
	vals[":updated"], vals[":now"] = ms(at), store.N(time.Now().Unix())
	err := s.Table.Update(ctx, jobKey(id), "SET #updated = :updated"+expr, "#expiresAt > :now AND "+cond, vals)
	if store.IsConditionFailed(err) != nil {
		return false, nil
	}
	return err == nil, err
}

// end moves a job's deadline to now (a job that could not be queued): it reads failed, and its claim is free.
func (s *JobStore) end(ctx context.Context, id string, now time.Time) error {
	_, err := s.update(ctx, id, ", #deadline = :d", "#deadline > :d", now, store.Item{":d": ms(now)})
	return err
}

// Cancel marks a running job cancelled, once; its queued tasks then write nothing. An ended job is a Conflict.
func (s *JobStore) Cancel(ctx context.Context, id string, now time.Time) (Job, error) {
	j, err := s.Get(ctx, id, now)
	if err == nil && j.active() {
		_, err = s.update(ctx, id, ", #cancelled = :c", "attribute_not_exists(#cancelled)", now, store.Item{":c": ms(now)})
		if err == nil {
			return s.Get(ctx, id, now)
		}
	} else if err == nil && j.State != StateCancelled {
		err = &api.Error{Code: api.Conflict, Message: "job " + id + " has ended (" + j.State + ")", Param: "jobId"}
	}
	return j, err
}

// recordPlan records the job's device count and planning batches (a repeated plan task changes nothing).
func (s *JobStore) recordPlan(ctx context.Context, j JobRef, devices, batches int, at time.Time) error {
	_, err := s.update(ctx, j.ID, ", #devices = :d, #batches = :b", "#batches < :zero", at,
		store.Item{":d": store.N(int64(devices)), ":b": store.N(int64(batches)), ":zero": store.N(0)})
	return err
}

// tally is what one task counts: a planning batch (-1 for none) with its chunks and points, and devices' outcomes
// by index in the job's device list (a device's chunks all travel in one task).
type tally struct {
	batch, chunks, points int64
	devices               map[int64]outcome
}

type outcome struct{ done, failed, points int64 }

// count adds a task's tally once per batch and device (SQS delivers at least once): the write adding the counters
// sets bit 2b (batch b) and 2d+1 (device d) of the job's bitmap "seen", if the bitmap is still the one read.
func (s *JobStore) count(ctx context.Context, j JobRef, t tally, at time.Time) error {
	for round := range 10 {
		it, err := s.Table.Get(ctx, jobKey(j.ID), true)
		if err != nil || it == nil {
			return err // a job gone (expired) counts nothing
		}
		seen, cond, vals := new(big.Int), "attribute_not_exists(#seen)", store.Item{}
		if old, ok := it["seen"].(*types.AttributeValueMemberB); ok {
			seen, cond, vals[":old"] = seen.SetBytes(old.Value), "#seen = :old", old
		}
		add := map[string]int64{}
		mark := func(bit int64) bool { was := seen.Bit(int(bit)); seen.SetBit(seen, int(bit), 1); return was == 0 }
		if t.batch >= 0 && t.batch < store.Num(it, "batches") && mark(2*t.batch) {
			add["planned"], add["chunks"], add["pointsPlanned"] = 1, t.chunks, t.points
		}
		for d, o := range t.devices {
			if d < store.Num(it, "devices") && mark(2*d+1) {
				add["chunksDone"], add["chunksFailed"] = add["chunksDone"]+o.done, add["chunksFailed"]+o.failed
				add["pointsWritten"] += o.points
				add["devicesDone"] += max(1-o.failed, 0) // a device counts done when none of its chunks failed
			}
		}
		if len(add) == 0 {
			return nil // counted already, or not of this job
		}
		adds := make([]string, 0, len(add))
		for c, n := range add {
			adds, vals[":"+c] = append(adds, "#"+c+" :"+c), store.N(n)
		}
		vals[":seen"] = &types.AttributeValueMemberB{Value: seen.Bytes()}
		if ok, err := s.update(ctx, j.ID, ", #seen = :seen ADD "+strings.Join(adds, ", "), cond, at, vals); ok || err != nil {
			return err
		}
		select { // another task counted first: read again after a short random pause
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(mrand.Int64N(int64(5*time.Millisecond) << min(round, 5)))):
		}
	}
	return api.Errorf(api.StoreUnavailable, "job %s changed concurrently 10 times", j.ID)
}

// state derives the job's state from its counters: planning until every batch is counted, then running until every
// chunk has an outcome. Past the deadline whatever is unwritten counts as failed (asking again plans it).
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

const (
	recentPK  = "JOBS"
	MaxRecent = 50 // bounds Recent's n
)

// Recent returns the newest jobs, at most n (1..MaxRecent): one Query of the index, then the live jobs' items in one
// eventually consistent BatchGetItem (an expired or deleted job is skipped; progress may lag a second).
func (s *JobStore) Recent(ctx context.Context, n int, now time.Time) ([]Job, error) {
	n = max(1, min(n, MaxRecent))
	out, err := s.Table.DB.Query(ctx, &dynamodb.QueryInput{TableName: &s.Table.Name,
		KeyConditionExpression: aws.String("pk = :pk"), ExpressionAttributeValues: store.Item{":pk": store.S(recentPK)},
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(2 * n))})
	if err != nil {
		return nil, store.Classify(err)
	}
	keys := make([]store.Item, len(out.Items))
	for i, rec := range out.Items {
		keys[i] = jobKey(store.Str(rec, "job"))
	}
	items, err := s.Table.BatchGet(ctx, keys, false)
	jobs := make([]Job, len(items))
	for i, it := range items {
		jobs[i] = jobOf(it, now)
	}
	// BatchGetItem answers in no order: newest first, as the index sorts (creation time, then id)
	slices.SortFunc(jobs, func(a, b Job) int { return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID)) })
	return jobs[:min(n, len(jobs))], err
}
