package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/fleettest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
	"github.com/iot-center/iot-center-serverless/shared/fleet"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// BenchmarkFleetLocalAPI is the fleet story through the local API (every function's bootstrap under the
// emulator, the chunk queue on moto's SQS, the local event source mapping at the template's MaximumConcurrency) on
// the real InfluxDB: 1,000 registered devices (registry records written directly) — the device list with health
// (one page of 1,000), a write-missing answer, the backfill of one day for every device (checked: exactly one point
// per minute per field for every device), the fleet coverage poll — then at 10,000 registered devices the pages the
// dashboard reads (50 devices: the first, a status-filtered one, one by last seen, a page deep in the id order, a
// search), the per-status counts, a write-missing answer, the planning of every device, a poll of that job while
// it runs, and the coverage poll.
func BenchmarkFleetLocalAPI(b *testing.B) {
	srv := influxtest.Shared(b)
	sfx := influxtest.RandomID(3)
	data := "fleet_data_" + sfx
	api := localapitest.Start(b, srv, localapitest.Options{Params: fmt.Sprintf(
		"InfluxBucket=%s InfluxBucketDownsampled=fleet_1h_%s", data, sfx)})
	admin := srv.Client(b)
	ids := fleettest.IDs("fleet", 10000)
	fleettest.Register(b, api.Table, ids[:1000])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		report := func(n int, name string, d time.Duration) {
			b.ReportMetric(float64(d.Microseconds())/1000, fmt.Sprintf("%s_%d_ms", name, n))
			b.Logf("%s at %d devices: %v", name, n, d) // also shown when a later step fails
		}
		// 1,000 devices: the first call meets cold functions (the authorizer's and DevicesFunction's first start)
		report(1000, "device_list_first_call", timedGet(b, api, "/api/devices?limit=1000", 1000))
		report(1000, "device_list", median(b, 5, func() time.Duration { return timedGet(b, api, "/api/devices?limit=1000", 1000) }))
		start := time.Now()
		status, job := api.Call(b, "POST", "/api/write-missing", `{"days": 1}`)
		report(1000, "write_missing_answer", time.Since(start))
		if status != http.StatusAccepted {
			b.Fatalf("write-missing %d %v, want 202", status, job)
		}
		id := job["jobId"].(string)
		report(1000, "write_missing_repeat_answer", median(b, 5, func() time.Duration {
			t0 := time.Now()
			if status, again := api.Call(b, "POST", "/api/write-missing", `{"days": 1}`); status != http.StatusOK || again["jobId"] != id {
				b.Fatalf("repeat write-missing %d %v, want 200 and job %s", status, again, id)
			}
			return time.Since(t0)
		}))
		job = waitJob(b, api, id, func(j map[string]any) bool { return j["state"] != StatePlanning && j["state"] != StateRunning })
		took := time.Since(start)
		if job["state"] != StateDone || job["devicesDone"] != float64(1000) || job["pointsWritten"] != float64(1000*1440) {
			b.Fatalf("job %v, want done with 1,000 devices and 1,440,000 points", job)
		}
		b.ReportMetric(1000*1440/took.Seconds(), "backfill_1000_devices_points/s")
		b.Logf("backfill of 1,000 devices × 1 day: %v (%.0f points/s)", took, 1000*1440/took.Seconds())
		from, _ := time.Parse(time.RFC3339, job["from"].(string))
		to, _ := time.Parse(time.RFC3339, job["to"].(string))
		checkOnePerMinute(b, admin, data, ids[:1000], from, to)
		q := fmt.Sprintf("/api/write-missing?from=%s&to=%s", from.Format(time.RFC3339), to.Format(time.RFC3339))
		report(1000, "coverage_poll", median(b, 5, func() time.Duration { return timedGet(b, api, q, -1) }))
		report(1000, "device_list_with_data", median(b, 5, func() time.Duration { return timedGet(b, api, "/api/devices?limit=1000", 1000) }))

		// 10,000 devices
		fleettest.Register(b, api.Table, ids[1000:])
		// the dashboard's reads (pages of 50): every device is silent (generated points never count)
		for _, pg := range []struct {
			name, path string
			want       int
		}{
			{"device_page", "/api/devices?limit=50", 50},
			{"device_page_status", "/api/devices?limit=50&status=silent", 50},
			{"device_page_last_seen", "/api/devices?limit=50&sort=-lastSeen", 50},
			{"device_page_deep", "/api/devices?limit=50&after=fleet-05000", 50},
			{"device_page_search", "/api/devices?limit=50&q=fleet-0123", 10},
		} {
			report(10000, pg.name, median(b, 5, func() time.Duration { return timedGet(b, api, pg.path, pg.want) }))
		}
		// the store's part of a page: the index queries alone, from this process to the same DynamoDB stand-in
		for _, pq := range []struct {
			name string
			q    fleet.PageQuery
		}{
			{"device_page_store", fleet.PageQuery{Sort: fleet.SortID, Limit: 50}},
			{"device_page_status_store", fleet.PageQuery{Sort: fleet.SortID, Status: fleet.Silent, Limit: 50}},
		} {
			report(10000, pq.name, median(b, 5, func() time.Duration {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				t0 := time.Now()
				got, _, err := (&fleet.Pager{Table: api.Table}).Page(ctx, pq.q)
				if err != nil || len(got) != 50 {
					b.Fatalf("%s: %d devices, %v; want 50", pq.name, len(got), err)
				}
				return time.Since(t0)
			}))
		}
		report(10000, "device_counts", median(b, 5, func() time.Duration {
			d, c := timedObject(b, api, "/api/devices/counts")
			if c["registered"] != float64(10000) || c["silent"] != float64(10000) {
				b.Fatalf("counts %v, want 10,000 registered, all silent", c)
			}
			return d
		}))
		start = time.Now()
		status, job = api.Call(b, "POST", "/api/write-missing", `{"days": 1}`)
		report(10000, "write_missing_answer", time.Since(start))
		if status != http.StatusAccepted {
			b.Fatalf("write-missing at 10,000 devices %d %v, want 202", status, job)
		}
		job = waitJob(b, api, job["jobId"].(string), func(j map[string]any) bool { return j["state"] != StatePlanning })
		report(10000, "plan_all_devices", time.Since(start))
		if job["devices"] != float64(10000) || job["chunks"].(float64) < 9000 {
			b.Fatalf("job at 10,000 devices %v, want 10,000 devices planned, at least 9,000 chunks", job)
		}
		// polled while its chunks are written (as the dashboard polls a running job)
		jobPath := JobsPath + job["jobId"].(string)
		report(10000, "job_poll", median(b, 5, func() time.Duration {
			d, j := timedObject(b, api, jobPath)
			if j["devices"] != float64(10000) {
				b.Fatalf("job poll %v, want the job of 10,000 devices", j)
			}
			return d
		}))
		report(10000, "coverage_poll", median(b, 5, func() time.Duration { return timedGet(b, api, q, -1) }))
	}
}

// median runs f n times and returns the median duration.
func median(b *testing.B, n int, f func() time.Duration) time.Duration {
	b.Helper()
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = f()
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2]
}

// timedGet GETs path with the operator key and returns how long the answer took; want >= 0 is the array length
// the answer must have (a JSON object is expected otherwise).
func timedGet(b *testing.B, api *localapitest.API, path string, want int) time.Duration {
	b.Helper()
	req, _ := http.NewRequest("GET", api.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+api.OperatorKey)
	start := time.Now()
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	el := time.Since(start)
	if resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d %.300s", path, resp.StatusCode, body)
	}
	if want >= 0 {
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil || len(arr) != want {
			b.Fatalf("GET %s: %d items (%v), want %d", path, len(arr), err, want)
		}
	}
	return el
}

// timedObject GETs path with the operator key and returns how long the answer took and the JSON object it is.
func timedObject(b *testing.B, api *localapitest.API, path string) (time.Duration, map[string]any) {
	b.Helper()
	start := time.Now()
	ans, err := api.Send("GET", path, api.OperatorKey, "")
	el := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	var out map[string]any
	if ans.Status != http.StatusOK || json.Unmarshal(ans.Body, &out) != nil {
		b.Fatalf("GET %s: %d %.300s, want 200 and a JSON object", path, ans.Status, ans.Body)
	}
	return el, out
}

// waitJob polls the job route (bounded: 15 minutes) until done says so.
func waitJob(b *testing.B, api *localapitest.API, id string, done func(map[string]any) bool) map[string]any {
	b.Helper()
	deadline := time.Now().Add(15 * time.Minute)
	for {
		status, j := api.Call(b, "GET", JobsPath+id, "")
		if status == 200 && done(j) {
			return j
		}
		if time.Now().After(deadline) {
			b.Fatalf("job %s: %d %v after 15 minutes", id, status, j)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkOnePerMinute asserts every device holds exactly one point per minute per field in [from, to).
func checkOnePerMinute(b *testing.B, c *influx.Client, bucket string, ids []string, from, to time.Time) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	want := int64(to.Sub(from) / time.Minute)
	got := map[string]int64{}
	err := c.QueryRows(ctx, `from(bucket: bucket) |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "environment") |> count()
  |> group(columns: ["clientId", "_field"]) |> sum()`,
		influx.Extern{"bucket": bucket, "start": from, "stop": to}, func(v map[string]any) error {
			got[fmt.Sprint(v["clientId"], "/", v["_field"])] = v["_value"].(int64)
			return nil
		})
	if err != nil {
		b.Fatal(err)
	}
	var bad []string
	for _, id := range ids {
		for _, f := range fields {
			if n := got[id+"/"+f]; n != want {
				bad = append(bad, fmt.Sprintf("%s/%s=%d", id, f, n))
			}
		}
	}
	if len(got) != len(ids)*len(fields) || len(bad) > 0 {
		b.Fatalf("%d device-fields counted (want %d); not exactly %d points: %s", len(got), len(ids)*len(fields), want,
			strings.Join(bad[:min(len(bad), 10)], " "))
	}
}
