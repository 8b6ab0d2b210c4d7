package backfill

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Job states as the job route answers them.
const (
	StatePlanning = "planning"
	StateRunning  = "running"
	StateDone     = "done"
	StateFailed   = "failed"
)

// Job is one write-missing request and its progress. Progress is never a counter updated in place (InfluxDB has no
// atomic increment): every planning batch and every chunk writes its own record point, and the job route sums them
// (see progress.go).
type Job struct {
	ID    string `json:"jobId"`
	State string `json:"state"`
	Window
	Devices       int       `json:"devices"`
	DevicesDone   int       `json:"devicesDone"`
	Chunks        int       `json:"chunks"`
	ChunksDone    int       `json:"chunksDone"`
	ChunksFailed  int       `json:"chunksFailed"`
	PointsPlanned int64     `json:"pointsPlanned"`
	PointsWritten int64     `json:"pointsWritten"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	Deadline      time.Time `json:"deadline"`
	// AllDevices is true when the job covers every registered device (no device list was given).
	AllDevices bool `json:"allDevices"`

	batches int // planning batches, known once the device list is read (-1 before)
	planned int // planning batches recorded
}

// jobIDRE is the shape of a job id: 16 hex digits of the request's key, "-", the creation time in base-36
// milliseconds (the records' time base, so a job's records are found without an index), "-", 4 random hex digits
// (two jobs of one request never share an id, even created in the same millisecond).
var jobIDRE = regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-z]{1,12}-[0-9a-f]{4}$`)

// CheckJobID validates a job id from the network.
func CheckJobID(id string) error {
	if !jobIDRE.MatchString(id) {
		return api.InvalidParam("jobId", "jobId is not a job id")
	}
	if _, err := jobCreated(id); err != nil {
		return api.InvalidParam("jobId", "jobId is not a job id")
	}
	return nil
}

// jobCreated reads the creation time encoded in a job id.
func jobCreated(id string) (time.Time, error) {
	parts := strings.Split(id, "-")
	if len(parts) != 3 {
		return time.Time{}, fmt.Errorf("backfill: bad job id")
	}
	enc := parts[1]
	ms, err := strconv.ParseInt(enc, 36, 64)
	if err != nil || ms < 0 || ms > minuteMax*60_000 {
		return time.Time{}, fmt.Errorf("backfill: bad job id")
	}
	return time.UnixMilli(ms).UTC(), nil
}

// requestKey is the identity of a request for deduplication: the registry bucket (the deployment), the device set
// (sorted; "*" for every device) and the window's length. Two requests with the same key while a job runs are the
// same job, even when a minute passed between them (the running job's window is then a minute older; the next
// request after it covers the rest).
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

func newJobID(key string, created time.Time) string {
	var r [2]byte
	_, _ = rand.Read(r[:])
	return key[:16] + "-" + strconv.FormatInt(created.UnixMilli(), 36) + "-" + hex.EncodeToString(r[:])
}

// Record measurements in the registry bucket (which device tokens cannot read).
const (
	jobMeasurement   = "wm_job"
	planMeasurement  = "wm_plan"
	chunkMeasurement = "wm_chunk"
)

// JobStore keeps jobs in InfluxDB: the request's claim as a label (label names are unique per organization,
// checked and created in one transaction of InfluxDB's metadata store: the linearizable tie-break), the job and its
// progress as points in the registry bucket.
type JobStore struct {
	Influx JobInflux
	Bucket string // the registry bucket
}

// JobInflux is the part of influx.Client the job store needs.
type JobInflux interface {
	WriteLines(ctx context.Context, bucket string, lp []byte) error
	QueryRaw(ctx context.Context, flux string, extern influx.Extern) (io.ReadCloser, error)
	CreateLabel(ctx context.Context, name string, props map[string]string) (influx.Label, error)
	FindLabel(ctx context.Context, name string) (influx.Label, bool, error)
	DeleteLabel(ctx context.Context, id string) error
}

var _ JobInflux = (*influx.Client)(nil)

// claimPrefix names the claim labels; the rest is the request key.
const claimPrefix = "iot-center-write-missing-"

// claim is a request key's label: which job holds it.
type claim struct {
	LabelID string
	Job     Job // id, window, deadline, creation time, scope (the label's properties)
}

func claimProps(j Job) map[string]string {
	return map[string]string{"jobId": j.ID, "from": rfc(j.From), "to": rfc(j.To), "deadline": rfc(j.Deadline),
		"createdAt": rfc(j.CreatedAt), "all": strconv.FormatBool(j.AllDevices)}
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func claimFrom(l influx.Label) (claim, bool) {
	p := l.Properties
	j := Job{ID: p["jobId"], State: StatePlanning, AllDevices: p["all"] == "true"}
	var errs [4]error
	j.From, errs[0] = time.Parse(time.RFC3339Nano, p["from"])
	j.To, errs[1] = time.Parse(time.RFC3339Nano, p["to"])
	j.Deadline, errs[2] = time.Parse(time.RFC3339Nano, p["deadline"])
	j.CreatedAt, errs[3] = time.Parse(time.RFC3339Nano, p["createdAt"])
	for _, err := range errs {
		if err != nil {
			return claim{}, false
		}
	}
	if CheckJobID(j.ID) != nil {
		return claim{}, false
	}
	j.UpdatedAt = j.CreatedAt
	return claim{LabelID: l.ID, Job: j}, true
}

// findClaim returns the label holding key, if any.
func (s *JobStore) findClaim(ctx context.Context, key string) (claim, bool, error) {
	l, found, err := s.Influx.FindLabel(ctx, claimPrefix+key)
	if err != nil || !found {
		return claim{}, false, err
	}
	c, ok := claimFrom(l)
	if !ok {
		// not ours to read (damaged): treat as a leftover the caller replaces
		return claim{LabelID: l.ID}, true, nil
	}
	return c, true, nil
}

// errClaimed says another caller holds the key.
var errClaimed = fmt.Errorf("backfill: the request is already claimed")

// createClaim creates the key's label for j: exactly one of concurrent callers succeeds, the others get errClaimed.
func (s *JobStore) createClaim(ctx context.Context, key string, j Job) (string, error) {
	l, err := s.Influx.CreateLabel(ctx, claimPrefix+key, claimProps(j))
	if errors.Is(err, influx.ErrConflict) {
		return "", errClaimed
	}
	if err != nil {
		return "", err
	}
	if l.ID == "" {
		return "", fmt.Errorf("backfill: InfluxDB created the claim label without an id")
	}
	return l.ID, nil
}

// deleteClaim removes a label by id (a stale claim, or one whose job ended); a label already gone is fine. By id, not
// by name: a caller that read a stale claim never removes the fresh one a concurrent caller created meanwhile.
func (s *JobStore) deleteClaim(ctx context.Context, labelID string) error {
	return s.Influx.DeleteLabel(ctx, labelID)
}

// writeJob stores the job's own record (at its creation time, so later field writes merge into the same point).
func (s *JobStore) writeJob(ctx context.Context, j Job) error {
	line := fmt.Sprintf("%s,jobId=%s from=%q,to=%q,deadline=%q,all=%t,requested=%di %d\n", jobMeasurement, j.ID,
		rfc(j.From), rfc(j.To), rfc(j.Deadline), j.AllDevices, j.Devices, j.CreatedAt.UnixNano())
	return s.Influx.WriteLines(ctx, s.Bucket, []byte(line))
}

// recordDevices adds the planned device count and the number of planning batches to the job's record.
func (s *JobStore) recordDevices(ctx context.Context, j JobRef, devices, batches int) error {
	line := fmt.Sprintf("%s,jobId=%s devices=%di,batches=%di %d\n", jobMeasurement, j.ID, devices, batches, j.Created.UnixNano())
	return s.Influx.WriteLines(ctx, s.Bucket, []byte(line))
}

// recordBatch stores one planning batch's totals. complete counts the batch's devices with nothing missing.
func (s *JobStore) recordBatch(ctx context.Context, j JobRef, batch, devices, complete, chunks int, points int64, at time.Time) error {
	line := fmt.Sprintf("%s,jobId=%s devices=%di,complete=%di,chunks=%di,points=%di,at=%di %d\n", planMeasurement, j.ID,
		devices, complete, chunks, points, at.UnixMilli(), j.Created.UnixNano()+int64(batch))
	return s.Influx.WriteLines(ctx, s.Bucket, []byte(line))
}

// chunkOutcome is what a chunk did: the points it wrote, or that it failed.
type chunkOutcome struct {
	ref    ChunkRef
	points int64
	failed bool
}

// recordChunks stores chunks' outcomes, one point each, in one write. Every point carries every field, so a chunk
// done after an earlier failure record (or the reverse) leaves one consistent point. share is 1/of: a device's
// shares sum to 1 when all its chunks are done (progress.go counts devices that way).
func (s *JobStore) recordChunks(ctx context.Context, j JobRef, outs []chunkOutcome, at time.Time) error {
	if len(outs) == 0 {
		return nil
	}
	var b strings.Builder
	for _, o := range outs {
		f, share := 0, 1/float64(max(o.ref.Of, 1))
		if o.failed {
			f, share = 1, 0
		}
		fmt.Fprintf(&b, "%s,deviceId=%s,jobId=%s points=%di,failed=%di,share=%s,at=%di %d\n", chunkMeasurement, o.ref.DeviceID,
			j.ID, o.points, f, strconv.FormatFloat(share, 'g', -1, 64), at.UnixMilli(), j.Created.UnixNano()+o.ref.Seq)
	}
	return s.Influx.WriteLines(ctx, s.Bucket, []byte(b.String()))
}

// newJob builds a job for key created now.
func newJob(key string, devices []string, win Window, now time.Time, timeout time.Duration) Job {
	created := now.UTC().Truncate(time.Millisecond)
	return Job{ID: newJobID(key, created), State: StatePlanning, Window: win, Devices: len(devices),
		CreatedAt: created, UpdatedAt: created, Deadline: created.Add(timeout), AllDevices: devices == nil}
}
