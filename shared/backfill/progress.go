package backfill

import (
	"context"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// progressFlux reads a job and sums its progress records in one request. Each part reads its own
// from |> range |> filter, so that its aggregate is pushed down to the storage engine (last, sum, count, max; the
// per-device sum is a grouped aggregate) and the answer is a handful of rows whatever the fleet size. (One shared
// from |> range feeding every part is not pushed down: InfluxDB then streams every record point of the job's hour
// through the Flux engine, the registry's own records included: 22 s for a job at 10,000 devices.) A device is
// done when the shares (1/its chunk count) of its done chunks sum to 1.
const progressFlux = `rec = (m, f) => from(bucket: bucket) |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == m and r.jobId == jobId) |> filter(fn: f)
str = (tables=<-, part) => tables |> map(fn: (r) => ({_field: r._field, _value: string(v: r._value), part: part}))
job = rec(m: "` + jobMeasurement + `", f: (r) => true) |> last() |> str(part: "job")
planSums = rec(m: "` + planMeasurement + `", f: (r) => r._field != "at") |> sum() |> str(part: "plan")
planCount = rec(m: "` + planMeasurement + `", f: (r) => r._field == "chunks") |> count() |> str(part: "batches")
chunkSums = rec(m: "` + chunkMeasurement + `", f: (r) => r._field == "points" or r._field == "failed")
  |> group(columns: ["_field"]) |> sum() |> str(part: "chunk")
chunkCount = rec(m: "` + chunkMeasurement + `", f: (r) => r._field == "failed") |> group() |> count()
  |> map(fn: (r) => ({_field: "recorded", _value: string(v: r._value), part: "chunk"}))
devicesDone = rec(m: "` + chunkMeasurement + `", f: (r) => r._field == "share") |> group(columns: ["deviceId"]) |> sum()
  |> filter(fn: (r) => r._value > 0.999999999) |> group() |> count(column: "_value")
  |> map(fn: (r) => ({_field: "devicesDone", _value: string(v: r._value), part: "chunk"}))
updated = from(bucket: bucket) |> range(start: start, stop: stop)
  |> filter(fn: (r) => (r._measurement == "` + planMeasurement + `" or r._measurement == "` + chunkMeasurement + `") and r.jobId == jobId and r._field == "at")
  |> group() |> max() |> map(fn: (r) => ({_field: "updated", _value: string(v: r._value), part: "chunk"}))
union(tables: [job, planSums, planCount, chunkSums, chunkCount, devicesDone, updated]) |> group()`

// recordSpan bounds a job's record times after its creation (chunk sequence numbers are nanoseconds).
const recordSpan = time.Hour

// Get reads a job and its progress; an unknown job is api.NotFound.
func (s *JobStore) Get(ctx context.Context, id string, now time.Time) (Job, error) {
	if err := CheckJobID(id); err != nil {
		return Job{}, err
	}
	created, _ := jobCreated(id)
	rc, err := s.Influx.QueryRaw(ctx, progressFlux, influx.Extern{"bucket": s.Bucket, "jobId": id,
		"start": created, "stop": created.Add(recordSpan)})
	if err != nil {
		return Job{}, influxErr(err)
	}
	defer rc.Close()
	vals := map[string]string{}
	err = influx.EachRow(rc, []string{"part", "_field", "_value"}, func(row []string) error {
		vals[row[0]+"."+row[1]] = row[2]
		return nil
	})
	if err != nil {
		return Job{}, influxErr(err)
	}
	// The job's own fields come in one write, but InfluxDB keeps each field as a series of its own, so a read racing
	// that write can see some of them: a record without all of them is "not written yet", never a job with a zero
	// deadline (which would look past it, and a concurrent POST would then replace the job it should join).
	for _, f := range []string{"job.from", "job.to", "job.deadline"} {
		if _, ok := vals[f]; !ok {
			return Job{}, &api.Error{Code: api.NotFound, Message: "job " + id + " not found", Param: "jobId"}
		}
	}
	j := Job{ID: id, CreatedAt: created, UpdatedAt: created, AllDevices: vals["job.all"] == "true"}
	j.From, _ = time.Parse(time.RFC3339Nano, vals["job.from"])
	j.To, _ = time.Parse(time.RFC3339Nano, vals["job.to"])
	j.Deadline, _ = time.Parse(time.RFC3339Nano, vals["job.deadline"])
	num := func(k string) int64 {
		// sums of integer fields come back as integers; a float rendering (e.g. "3") parses the same way
		v, err := strconv.ParseInt(vals[k], 10, 64)
		if err != nil {
			f, _ := strconv.ParseFloat(vals[k], 64)
			return int64(f)
		}
		return v
	}
	j.batches = -1 // not yet known: the device list is still being read
	if _, ok := vals["job.batches"]; ok {
		j.batches = int(num("job.batches"))
	}
	j.planned = int(num("batches.chunks"))
	j.Devices = int(num("job.devices"))
	if _, ok := vals["job.devices"]; !ok {
		j.Devices = int(num("job.requested"))
	}
	j.Chunks = int(num("plan.chunks"))
	j.PointsPlanned = num("plan.points")
	j.PointsWritten = num("chunk.points")
	failed := int(num("chunk.failed"))
	j.ChunksDone = int(num("chunk.recorded")) - failed
	j.ChunksFailed = failed
	j.DevicesDone = int(num("plan.complete")) + int(num("chunk.devicesDone"))
	if ms := num("chunk.updated"); ms > 0 {
		j.UpdatedAt = time.UnixMilli(ms).UTC()
	}
	j.State = state(&j, now)
	return j, nil
}

// state derives the job's state from its records: planning until every batch is planned, then running until every
// chunk has an outcome. Past the deadline whatever is unwritten counts as failed (the chunks still queued record
// themselves as failed when they arrive; asking again plans what is still missing).
func state(j *Job, now time.Time) string {
	planned := j.batches >= 0 && j.planned >= j.batches
	past := !now.Before(j.Deadline)
	switch {
	case planned && j.ChunksDone >= j.Chunks && j.ChunksFailed == 0:
		return StateDone
	case planned && j.ChunksDone+j.ChunksFailed >= j.Chunks:
		return StateFailed
	case past:
		if planned {
			j.ChunksFailed = j.Chunks - j.ChunksDone
		}
		return StateFailed
	case planned:
		return StateRunning
	default:
		return StatePlanning
	}
}

// active reports whether a job may still change (a second request for the same key joins it).
func (j Job) active() bool { return j.State == StatePlanning || j.State == StateRunning }
