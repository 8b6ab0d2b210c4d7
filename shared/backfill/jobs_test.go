package backfill

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestPlanFromCounts(t *testing.T) {
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	m := func(s string) int64 { return at(s).Unix() / 60 }
	h := func(s string) int64 { return at(s).Unix() / 3600 }
	win := Window{From: at("2026-11-19T22:30:00Z"), To: at("2026-11-20T02:10:00Z")}
	tests := []struct {
		name    string
		counts  map[int64]int64
		chunk   int
		windows []Range
		missing int64
	}{
		{"empty: one window per UTC day", nil, 1440,
			[]Range{{m("2026-11-19T22:30:00Z"), m("2026-11-20T00:00:00Z")}, {m("2026-11-20T00:00:00Z"), m("2026-11-20T02:10:00Z")}}, 220},
		{"complete", map[int64]int64{h("2026-11-19T22:00:00Z"): 30, h("2026-11-19T23:00:00Z"): 60, h("2026-11-20T00:00:00Z"): 60,
			h("2026-11-20T01:00:00Z"): 60, h("2026-11-20T02:00:00Z"): 10}, 1440, nil, 0},
		{"one gap, trimmed to its hour", map[int64]int64{h("2026-11-19T22:00:00Z"): 30, h("2026-11-19T23:00:00Z"): 60, h("2026-11-20T00:00:00Z"): 60,
			h("2026-11-20T01:00:00Z"): 59, h("2026-11-20T02:00:00Z"): 10}, 1440, []Range{{m("2026-11-20T01:00:00Z"), m("2026-11-20T02:00:00Z")}}, 1},
		{"two gaps a complete hour apart: one window over the three", map[int64]int64{h("2026-11-19T22:00:00Z"): 30, h("2026-11-19T23:00:00Z"): 60,
			h("2026-11-20T00:00:00Z"): 0, h("2026-11-20T01:00:00Z"): 60, h("2026-11-20T02:00:00Z"): 0}, 1440,
			[]Range{{m("2026-11-20T00:00:00Z"), m("2026-11-20T02:10:00Z")}}, 70},
		{"more points than minutes is complete", map[int64]int64{h("2026-11-19T22:00:00Z"): 90, h("2026-11-19T23:00:00Z"): 120, h("2026-11-20T00:00:00Z"): 60,
			h("2026-11-20T01:00:00Z"): 60, h("2026-11-20T02:00:00Z"): 10}, 1440, nil, 0},
		{"hour grid", nil, 90, // 90 minutes round down to whole hours
			[]Range{{m("2026-11-19T22:30:00Z"), m("2026-11-19T23:00:00Z")}, {m("2026-11-19T23:00:00Z"), m("2026-11-20T00:00:00Z")},
				{m("2026-11-20T00:00:00Z"), m("2026-11-20T01:00:00Z")}, {m("2026-11-20T01:00:00Z"), m("2026-11-20T02:00:00Z")},
				{m("2026-11-20T02:00:00Z"), m("2026-11-20T02:10:00Z")}}, 220},
		{"sub-hour grid", map[int64]int64{h("2026-11-19T22:00:00Z"): 30, h("2026-11-19T23:00:00Z"): 60, h("2026-11-20T00:00:00Z"): 60,
			h("2026-11-20T01:00:00Z"): 60}, 30, []Range{{m("2026-11-20T02:00:00Z"), m("2026-11-20T02:10:00Z")}}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planFromCounts("d", win, tt.counts, tt.chunk)
			if !reflect.DeepEqual(got.Windows, tt.windows) || got.Missing != tt.missing {
				t.Errorf("got windows %v missing %d, want %v missing %d", got.Windows, got.Missing, tt.windows, tt.missing)
			}
		})
	}
}

func TestJobIDAndKey(t *testing.T) {
	key := requestKey("reg", []string{"b", "a"}, 7)
	if key != requestKey("reg", []string{"a", "b"}, 7) {
		t.Error("the key depends on the order of the devices")
	}
	for _, other := range []string{requestKey("reg", []string{"a"}, 7), requestKey("reg", []string{"a", "b"}, 6),
		requestKey("reg", nil, 7), requestKey("other", []string{"a", "b"}, 7)} {
		if other == key {
			t.Errorf("different requests share the key %s", key)
		}
	}
	j := newJob(key, nil, LastDays(fixedNow, 7), fixedNow, time.Minute)
	if err := CheckJobID(j.ID); err != nil {
		t.Fatalf("CheckJobID(%s): %v", j.ID, err)
	}
	if other := newJob(key, nil, LastDays(fixedNow, 7), fixedNow, time.Minute); other.ID == j.ID {
		t.Errorf("two jobs created in the same millisecond share the id %s", j.ID)
	}
	for _, bad := range []string{"", "x", strings.Repeat("a", 16), "0123456789abcdef-", "0123456789ABCDEF-0123456789ab",
		"0123456789abcdef-0123456789a", "../../etc", "0123456789abcdef-0123456789ab\n", "0123456789abcdef-0123456789ab-1"} {
		if CheckJobID(bad) == nil {
			t.Errorf("CheckJobID(%q) accepted it", bad)
		}
	}
}

func TestJobState(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name                     string
		batches, planned, chunks int
		done, failed             int
		deadline                 time.Duration
		want                     string
		wantFailed               int
	}{
		{"listing devices", -1, 0, 0, 0, 0, time.Minute, StatePlanning, 0},
		{"batches pending", 3, 2, 10, 4, 0, time.Minute, StatePlanning, 0},
		{"running", 3, 3, 10, 4, 0, time.Minute, StateRunning, 0},
		{"done", 3, 3, 10, 10, 0, time.Minute, StateDone, 0},
		{"no devices", 0, 0, 0, 0, 0, time.Minute, StateDone, 0},
		{"some failed", 3, 3, 10, 8, 2, time.Minute, StateFailed, 2},
		{"past the deadline: the rest failed", 3, 3, 10, 6, 0, -time.Second, StateFailed, 4},
		{"past the deadline while planning", 3, 1, 4, 0, 0, -time.Second, StateFailed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := Job{batches: tt.batches, planned: tt.planned, Chunks: tt.chunks, ChunksDone: tt.done, ChunksFailed: tt.failed,
				Deadline: now.Add(tt.deadline)}
			if got := state(&j, now); got != tt.want || j.ChunksFailed != tt.wantFailed {
				t.Errorf("state %s, %d failed; want %s, %d failed", got, j.ChunksFailed, tt.want, tt.wantFailed)
			}
		})
	}
}

func TestTaskValidate(t *testing.T) {
	created := time.Date(2026, 11, 20, 12, 0, 30, 0, time.UTC)
	job := newJob(strings.Repeat("ab", 32), nil, Window{From: created.Add(-24 * time.Hour).Truncate(time.Minute),
		To: created.Truncate(time.Minute)}, created, time.Hour).ref()
	win := Range{job.From.Unix() / 60, job.To.Unix() / 60}
	tests := []struct {
		name string
		t    Task
		ok   bool
	}{
		{"plan all", Task{Kind: KindPlan, Job: job, All: true}, true},
		{"plan list", Task{Kind: KindPlan, Job: job, Devices: []string{"a", "b"}}, true},
		{"batch", Task{Kind: KindBatch, Job: job, Devices: []string{"a"}, Batch: 2, First: 200}, true},
		{"chunk", Task{Kind: KindChunk, Job: job, Chunks: []ChunkRef{{DeviceID: "a", Window: win, Seq: 5, Of: 2}}}, true},
		{"unknown kind", Task{Kind: "drop", Job: job}, false},
		{"bad job id", Task{Kind: KindPlan, Job: JobRef{ID: "x", Window: job.Window, Deadline: job.Deadline}, All: true}, false},
		{"deadline before the window's end", Task{Kind: KindPlan, Job: JobRef{ID: job.ID, Window: job.Window,
			Deadline: job.To.Add(-time.Second)}, All: true}, false},
		{"window over 30 days", Task{Kind: KindPlan, Job: JobRef{ID: job.ID,
			Window: Window{From: job.To.Add(-31 * 24 * time.Hour), To: job.To}, Deadline: job.Deadline}, All: true}, false},
		{"all and a list", Task{Kind: KindPlan, Job: job, All: true, Devices: []string{"a"}}, false},
		{"empty batch", Task{Kind: KindBatch, Job: job}, false},
		{"bad device in batch", Task{Kind: KindBatch, Job: job, Devices: []string{"a b"}}, false},
		{"too many devices", Task{Kind: KindBatch, Job: job, Devices: make([]string, MaxBatchDevices+1)}, false},
		{"chunk outside the job", Task{Kind: KindChunk, Job: job, Chunks: []ChunkRef{{DeviceID: "a", Window: Range{win[0] - 1, win[1]}, Of: 1}}}, false},
		{"chunk empty window", Task{Kind: KindChunk, Job: job, Chunks: []ChunkRef{{DeviceID: "a", Window: Range{win[0], win[0]}, Of: 1}}}, false},
		{"chunk bad device", Task{Kind: KindChunk, Job: job, Chunks: []ChunkRef{{DeviceID: "", Window: win, Of: 1}}}, false},
		{"chunk of 0", Task{Kind: KindChunk, Job: job, Chunks: []ChunkRef{{DeviceID: "a", Window: win, Of: 0}}}, false},
		{"no chunks", Task{Kind: KindChunk, Job: job}, false},
		{"chunk negative seq", Task{Kind: KindChunk, Job: job, Chunks: []ChunkRef{{DeviceID: "a", Window: win, Seq: -1, Of: 1}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.t.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestConcurrentPostsMakeOneJob: many simultaneous POSTs for the same request (through separate Service instances,
// as separate Lambda instances would be) all answer the same job; exactly one of them created it (202), the job
// plans and writes once, and a POST while it runs joins it.
func TestConcurrentPostsMakeOneJob(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{instances: 2})
	a, b := f.register(t, "dup"), f.register(t, "dup")
	body := `{"devices": ["` + a + `", "` + b + `"], "days": 2}`
	const callers = 12
	type answer struct {
		status int
		job    Job
	}
	answers := make([]answer, callers)
	testenv.Together(callers, func(i int) {
		status, j, _ := f.post(t, "/api/write-missing", body)
		answers[i] = answer{status, j}
	})
	created, ids := 0, map[string]bool{}
	for _, an := range answers {
		switch an.status {
		case http.StatusAccepted:
			created++
		case http.StatusOK:
		default:
			t.Fatalf("a concurrent POST answered %d", an.status)
		}
		ids[an.job.ID] = true
	}
	if created != 1 || len(ids) != 1 {
		t.Fatalf("%d jobs created, %d distinct job ids among %d answers; want exactly one job", created, len(ids), callers)
	}
	var id string
	for k := range ids {
		id = k
	}
	// a later POST while it runs, or just after it ended: the same job or (ended) a new one; never a second
	// concurrent one
	job := f.wait(t, id)
	if job.Devices != 2 || job.DevicesDone != 2 || job.PointsWritten != 2*2*1440 {
		t.Errorf("job %+v, want 2 devices done and 5,760 points", job)
	}
	// the work ran once: one plan task, one batch task (3 devices per batch here), one chunk task per device (a task
	// of one minute's budget here: each device's chunks in a task of their own)
	if n, _ := f.mapping.Stats(); n != int64(2+job.Devices) {
		t.Errorf("%d tasks ran, want %d (plan, batch and one chunk task per device): duplicated work", n, 2+job.Devices)
	}
	if got := f.countFields(t, a, LastDays(fixedNow, 2))["CO2"]; got != 2*1440 {
		t.Errorf("device %s has %d CO2 points, want %d", a, got, 2*1440)
	}
}

// TestSecondPostJoinsRunningJob: with no worker running, the job stays in progress; a second POST answers 200 and
// the same job, and queues nothing more.
func TestSecondPostJoinsRunningJob(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{paused: true})
	id := f.register(t, "join")
	status, first, loc := f.post(t, "/api/devices/"+id+"/write-missing", "")
	if status != http.StatusAccepted || loc != JobsPath+first.ID {
		t.Fatalf("first POST %d %+v %q, want 202 and the job's Location", status, first, loc)
	}
	depth := f.queueDepth(t)
	status, second, loc2 := f.post(t, "/api/devices/"+id+"/write-missing", `{"days": 7}`)
	if status != http.StatusOK || second.ID != first.ID || loc2 != loc {
		t.Errorf("second POST %d %+v, want 200 and job %s", status, second, first.ID)
	}
	if d := f.queueDepth(t); d != depth {
		t.Errorf("the second POST queued %d tasks, want none", d-depth)
	}
	// another window length is another request
	if status, other, _ := f.post(t, "/api/devices/"+id+"/write-missing", `{"days": 1}`); status != http.StatusAccepted || other.ID == first.ID {
		t.Errorf("POST for 1 day: %d %+v, want a new job", status, other)
	}
}

// TestExpiredJobReplacedOnce: the request's claim names a job past its deadline; 12 racing POSTs replace it with
// exactly one new job (one conditional write wins), which every POST answers.
func TestExpiredJobReplacedOnce(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{paused: true})
	id := f.register(t, "expired")
	ctx := t.Context()
	key := requestKey(f.cfg.Bucket, []string{id}, 2)
	old := newJob(key, []string{id}, LastDays(fixedNow, 2), fixedNow.Add(-time.Hour), time.Minute)
	if err := f.jobs.create(ctx, old); err != nil {
		t.Fatal(err)
	}
	if winner, err := f.jobs.claim(ctx, key, old, ""); err != nil || winner != "" {
		t.Fatalf("claiming for the old job: winner %q, %v", winner, err)
	}
	const callers = 12
	statuses, ids := make([]int, callers), make([]string, callers)
	testenv.Together(callers, func(i int) {
		var j Job
		statuses[i], j, _ = f.post(t, "/api/write-missing", `{"devices": ["`+id+`"], "days": 2}`)
		ids[i] = j.ID
	})
	created := 0
	for i := range statuses {
		if statuses[i] == http.StatusAccepted {
			created++
		}
		if ids[i] != ids[0] || ids[i] == old.ID || (statuses[i] != http.StatusOK && statuses[i] != http.StatusAccepted) {
			t.Errorf("POST %d answered %d job %q; want 200/202 and one new job (all: %v %v)", i, statuses[i], ids[i], statuses, ids)
		}
	}
	if created != 1 {
		t.Errorf("%d POSTs created a job, want exactly 1", created)
	}
	if n := f.queueDepth(t); n != 1 {
		t.Errorf("%d tasks queued, want the new job's plan task only", n)
	}
	// the overview's recent jobs: the winner only, not the jobs the losing POSTs wrote
	if recent, err := f.jobs.Recent(ctx, MaxRecent, fixedNow); err != nil || len(recent) != 1 || recent[0].ID != ids[0] {
		t.Errorf("recent jobs %+v (%v), want only the new job %s", recent, err, ids[0])
	}
}

// TestExpiredClaimIsFree: a request's claim past its TTL (DynamoDB deletes expired items only within days) is free
// for a new job, as an absent one is: the POST creates a job instead of losing to the expired claim.
func TestExpiredClaimIsFree(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{paused: true})
	id := f.register(t, "staleclaim")
	stale := "0123456789abcdef-0123456789ab"
	it := claimKey(requestKey(f.cfg.Bucket, []string{id}, 2))
	it["job"], it[store.ExpiresAt] = store.S(stale), store.N(time.Now().Add(-time.Hour).Unix())
	if err := f.jobs.Table.Put(t.Context(), it, "", nil); err != nil {
		t.Fatal(err)
	}
	status, j, _ := f.post(t, "/api/devices/"+id+"/write-missing", `{"days": 2}`)
	if status != http.StatusAccepted || j.ID == "" || j.ID == stale {
		t.Fatalf("POST over an expired claim: %d %+v, want 202 and a new job", status, j)
	}
	if held, err := f.jobs.claimed(t.Context(), requestKey(f.cfg.Bucket, []string{id}, 2)); err != nil || held != j.ID {
		t.Errorf("the claim names %q (%v), want the new job %s", held, err, j.ID)
	}
}

// storedJob writes a job over every device, created at created, its id made from seed (two hex digits).
func storedJob(t *testing.T, jobs *JobStore, seed string, created time.Time) Job {
	t.Helper()
	j := newJob(strings.Repeat(seed, 32), nil, LastDays(fixedNow, 2), created, time.Hour)
	if err := jobs.create(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	if err := jobs.list(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestTaskCountedTwiceCountsOnce: SQS delivers at least once; a plan, batch or chunk task counted again changes
// nothing, and no counter passes the plan's. Against the DynamoDB stand-in alone.
func TestTaskCountedTwiceCountsOnce(t *testing.T) {
	jobs, ctx := &JobStore{Table: testenv.StateTable(t, nil)}, t.Context()
	j := storedJob(t, jobs, "cd", fixedNow)
	steps := []struct {
		name string
		run  func() error
	}{
		{"plan: 3 devices, 2 batches", func() error { return jobs.recordPlan(ctx, j.ref(), 3, 2, fixedNow) }},
		{"plan again (another list)", func() error { return jobs.recordPlan(ctx, j.ref(), 5, 3, fixedNow) }},
		{"batch 0: device 0 complete, device 1 with 2 chunks", func() error {
			return jobs.count(ctx, j.ref(), tally{batch: 0, chunks: 2, points: 100, devices: map[int64]outcome{0: {}}}, fixedNow)
		}},
		{"batch 1: device 2 with 1 chunk", func() error {
			return jobs.count(ctx, j.ref(), tally{batch: 1, chunks: 1, points: 50}, fixedNow)
		}},
		{"batch 1 again", func() error {
			return jobs.count(ctx, j.ref(), tally{batch: 1, chunks: 1, points: 50}, fixedNow)
		}},
		{"batch 5 (not this job's)", func() error {
			return jobs.count(ctx, j.ref(), tally{batch: 5, chunks: 9, points: 9}, fixedNow)
		}},
		{"device 1 written", func() error {
			return jobs.count(ctx, j.ref(), tally{batch: -1, devices: map[int64]outcome{1: {done: 2, points: 100}}}, fixedNow)
		}},
		{"device 1 again", func() error {
			return jobs.count(ctx, j.ref(), tally{batch: -1, devices: map[int64]outcome{1: {done: 2, points: 100}}}, fixedNow)
		}},
		{"device 2 from a replanned batch: more than planned", func() error {
			return jobs.count(ctx, j.ref(), tally{batch: -1, devices: map[int64]outcome{2: {done: 3, points: 80}}}, fixedNow)
		}},
		{"device 7 (no such index)", func() error {
			return jobs.count(ctx, j.ref(), tally{batch: -1, devices: map[int64]outcome{7: {done: 1, points: 1}}}, fixedNow)
		}},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	got, err := jobs.Get(ctx, j.ID, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	want := Job{State: StateDone, Devices: 3, DevicesDone: 3, Chunks: 3, ChunksDone: 3, PointsPlanned: 150, PointsWritten: 150}
	if got.State != want.State || got.Devices != want.Devices || got.DevicesDone != want.DevicesDone || got.Chunks != want.Chunks ||
		got.ChunksDone != want.ChunksDone || got.ChunksFailed != 0 || got.PointsPlanned != want.PointsPlanned ||
		got.PointsWritten != want.PointsWritten {
		t.Errorf("job %+v, want %+v", got, want)
	}
}

// TestRacingCountsCountOnce: 12 tasks, each delivered twice, count at once; every device counts once (the losers of
// the conditional write read the job again), and a failed chunk is shown even when another device counted above
// its plan. Against the DynamoDB stand-in alone.
func TestRacingCountsCountOnce(t *testing.T) {
	const devices = 12
	jobs, ctx := &JobStore{Table: testenv.StateTable(t, nil)}, t.Context()
	j := storedJob(t, jobs, "ef", fixedNow)
	if err := jobs.recordPlan(ctx, j.ref(), devices, 1, fixedNow); err != nil {
		t.Fatal(err)
	}
	if err := jobs.count(ctx, j.ref(), tally{batch: 0, chunks: devices, points: 10 * devices}, fixedNow); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 2*devices)
	testenv.Together(2*devices, func(i int) {
		o := outcome{done: 1, points: 10}
		switch d := i % devices; d {
		case 0:
			o = outcome{failed: 1}
		case 1:
			o = outcome{done: 2, points: 20} // a replanned batch's count: above the plan
		}
		errs[i] = jobs.count(ctx, j.ref(), tally{batch: -1, devices: map[int64]outcome{int64(i % devices): o}}, fixedNow)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("count %d: %v", i, err)
		}
	}
	got, err := jobs.Get(ctx, j.ID, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateFailed || got.DevicesDone != devices-1 || got.ChunksDone != devices-1 || got.ChunksFailed != 1 ||
		got.PointsWritten != 10*devices {
		t.Errorf("job %s: %d devices done, %d chunks done, %d failed, %d points; want failed: %d, %d, 1, %d", got.State,
			got.DevicesDone, got.ChunksDone, got.ChunksFailed, got.PointsWritten, devices-1, devices-1, 10*devices)
	}
}

// TestStoreDownMidRun stops the state table's endpoint: a POST answers 503 JSON with Retry-After and records
// nothing; stopped again while the job's chunks run, the tasks fail, are retried after their backoff, and the job
// completes once the endpoint is back, every point written once.
func TestStoreDownMidRun(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{instances: 2})
	id := f.register(t, "storedown")
	f.storeDown.Store(true)
	req := httptest.NewRequest("POST", "/api/devices/"+id+"/write-missing", strings.NewReader(`{"days": 2}`))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req.WithContext(t.Context()))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("POST with the store down: %d %v %q, want 503 JSON with Retry-After", rec.Code, rec.Header(), rec.Body.String())
	}
	if n := f.queueDepth(t); n != 0 {
		t.Errorf("%d tasks queued with the store down, want none", n)
	}
	f.storeDown.Store(false)
	var once sync.Once
	f.before = func(int64) { // the first chunk task finds the store gone; it comes back 2 s later
		once.Do(func() {
			f.storeDown.Store(true)
			time.AfterFunc(2*time.Second, func() { f.storeDown.Store(false) })
		})
	}
	status, job, _ := f.post(t, "/api/devices/"+id+"/write-missing", `{"days": 2}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST with the store back: %d", status)
	}
	job = f.wait(t, job.ID)
	if job.PointsWritten != 2*1440 || job.DevicesDone != 1 || len(f.errs.get()) == 0 {
		t.Errorf("job %+v, task errors %v; want 2,880 points written after failed attempts", job, f.errs.get())
	}
	if got := f.countFields(t, id, LastDays(fixedNow, 2))["CO2"]; got != 2*1440 {
		t.Errorf("%d CO2 points, want 2,880", got)
	}
}

// TestInFlightBound: the event source mapping never runs more than MaximumConcurrency tasks at once, and with
// enough chunks it reaches that bound.
func TestInFlightBound(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{instances: 2, chunkMinutes: 120})
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, `"`+f.register(t, "bound")+`"`)
	}
	status, job, _ := f.post(t, "/api/write-missing", `{"days": 1, "devices": [`+strings.Join(ids, ",")+`]}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST %d", status)
	}
	job = f.wait(t, job.ID)
	n, most := f.mapping.Stats()
	if most != 2 {
		t.Errorf("at most %d tasks ran at once, want exactly the bound 2 (%d tasks, %d chunks)", most, n, job.Chunks)
	}
	if job.Chunks < 4*12 {
		t.Errorf("%d chunks, want at least 48 (2-hour chunks over a day, 4 devices)", job.Chunks)
	}
}

// TestDeadlinePassedChunksFail: chunks arriving after their job's deadline are recorded as failed, not written;
// nothing reaches the dead-letter queue, and asking again (a new job) writes them.
func TestDeadlinePassedChunksFail(t *testing.T) {
	clock := struct {
		sync.Mutex
		t time.Time
	}{t: fixedNow}
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.t }
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{now: now, jobTimeout: time.Minute})
	id := f.register(t, "late")
	// the first chunk moves the clock past the deadline: it and every later one are recorded as failed
	f.before = func(n int64) {
		clock.Lock()
		clock.t = fixedNow.Add(2 * time.Minute)
		clock.Unlock()
	}
	status, job, _ := f.post(t, "/api/devices/"+id+"/write-missing", `{"days": 2}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST %d", status)
	}
	// failed as soon as the deadline passed; the planning record and the failed chunks' records follow
	for k := 0; k < 100; k++ {
		if job = f.waitEnd(t, job.ID); job.Chunks > 0 && job.ChunksFailed == job.Chunks {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if job.State != StateFailed || job.ChunksFailed != job.Chunks || job.ChunksDone != 0 || job.PointsWritten != 0 {
		t.Errorf("job %+v, want failed with every chunk failed", job)
	}
	if n := f.dlqDepth(t); n != 0 {
		t.Errorf("%d tasks dead-lettered, want none", n)
	}
	// asking again: a new job, which (clock steady now) writes everything
	f.before = nil
	status, again, _ := f.post(t, "/api/devices/"+id+"/write-missing", `{"days": 2}`)
	if status != http.StatusAccepted || again.ID == job.ID {
		t.Fatalf("second POST %d %+v, want a new job", status, again)
	}
	if again = f.wait(t, again.ID); again.PointsWritten != 2*1440 {
		t.Errorf("second job %+v, want 2,880 points written", again)
	}
}

func TestBatchSize(t *testing.T) {
	day := func(n int) Window {
		return Window{From: fixedNow.Add(-time.Duration(n) * 24 * time.Hour), To: fixedNow}
	}
	for _, tt := range []struct {
		name       string
		configured int
		w          Window
		want       int
	}{
		{"configured wins", 3, day(30), 3},
		{"1 day: the largest batch", 0, day(1), MaxBatchDevices},
		{"3 days", 0, day(3), 1000},
		{"7 days", 0, day(7), 428},
		{"30 days: the smallest", 0, day(30), DefaultBatchDevices},
		{"an hour", 0, Window{From: fixedNow.Add(-time.Hour), To: fixedNow}, MaxBatchDevices},
		{"under an hour", 0, Window{From: fixedNow.Add(-time.Minute), To: fixedNow}, MaxBatchDevices},
	} {
		if got := BatchSize(tt.configured, tt.w); got != tt.want {
			t.Errorf("%s: BatchSize(%d, %v) = %d, want %d", tt.name, tt.configured, tt.w.To.Sub(tt.w.From), got, tt.want)
		}
	}
}

// TestCancelStopsJob: POST …/cancel while a job runs stops it: the chunk tasks still queued write nothing, what
// was written before stays and is reported (pointsWritten equals the points in InfluxDB), the job reads cancelled;
// a second cancel answers the same job; asking again starts a new job, which writes the rest. Cancelling an ended
// job is a 409, an unknown one a 404, a malformed id a 400.
func TestCancelStopsJob(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{instances: 1})
	ids := []string{f.register(t, "cancel-a"), f.register(t, "cancel-b"), f.register(t, "cancel-c")}
	var jobID atomic.Value
	// a device's chunks travel in one task: the second device's task arrives after the cancel
	f.before = func(n int64) {
		if n != 2 {
			return
		}
		status, body := f.do(t, "POST", JobsPath+jobID.Load().(string)+"/cancel", "")
		if status != http.StatusOK || body["state"] != StateCancelled {
			f.errs.add(fmt.Errorf("cancel: %d %v, want 200 and state cancelled", status, body))
		}
	}
	body := `{"days": 1, "devices": ["` + strings.Join(ids, `", "`) + `"]}`
	status, job, _ := f.post(t, "/api/write-missing", body)
	if status != http.StatusAccepted {
		t.Fatalf("POST %d", status)
	}
	jobID.Store(job.ID)
	job = f.waitEnd(t, job.ID)
	for k := 0; k < 300 && (f.queueDepth(t) > 0 || f.inFlight.Load() > 0); k++ { // bounded: the queue drains
		time.Sleep(100 * time.Millisecond)
	}
	if errs := f.errs.get(); len(errs) > 0 {
		t.Fatalf("task or cancel errors: %v", errs)
	}
	job = f.waitEnd(t, job.ID)
	w := LastDays(fixedNow, 1)
	var points int64
	written := 0
	for _, id := range ids {
		if n := f.countFields(t, id, w)["Temperature"]; n > 0 {
			points += n
			written++
		}
	}
	if job.State != StateCancelled || job.CancelledAt == nil || job.DevicesDone != 1 || written != 1 || job.PointsWritten != 1440 {
		t.Errorf("job %+v (%d devices with points), want cancelled with one device's 1,440 points written", job, written)
	}
	if points != job.PointsWritten {
		t.Errorf("InfluxDB holds %d points of the devices, the job reports %d written", points, job.PointsWritten)
	}
	if status, body := f.do(t, "POST", JobsPath+job.ID+"/cancel", ""); status != http.StatusOK || body["state"] != StateCancelled {
		t.Errorf("second cancel: %d %v, want 200 cancelled", status, body)
	}
	f.before = nil
	status, again, _ := f.post(t, "/api/write-missing", body)
	if status != http.StatusAccepted || again.ID == job.ID {
		t.Fatalf("POST after the cancel: %d %+v, want a new job", status, again)
	}
	if again = f.wait(t, again.ID); again.PointsWritten != 2*1440 {
		t.Errorf("the new job %+v, want the other two devices' 2,880 minutes written", again)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{JobsPath + again.ID + "/cancel", http.StatusConflict},
		{JobsPath + "0123456789abcdef-0123456789ab/cancel", http.StatusNotFound},
		{JobsPath + "not-a-job/cancel", http.StatusBadRequest},
	} {
		if status, body := f.do(t, "POST", tc.path, ""); status != tc.status {
			t.Errorf("POST %s: %d %v, want %d", tc.path, status, body, tc.status)
		}
	}
}

// TestRecentJobs: the index lists the newest jobs first, at most n, skipping a job whose item is gone.
func TestRecentJobs(t *testing.T) {
	jobs, ctx := &JobStore{Table: testenv.StateTable(t, nil)}, t.Context()
	if got, err := jobs.Recent(ctx, 5, fixedNow); err != nil || len(got) != 0 {
		t.Fatalf("no jobs: Recent = %v, %v; want none", got, err)
	}
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, storedJob(t, jobs, fmt.Sprintf("%02d", i), fixedNow.Add(time.Duration(i)*time.Minute)).ID)
	}
	if _, err := jobs.Table.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &jobs.Table.Name, Key: jobKey(ids[2])}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want []string
	}{{2, []string{ids[3], ids[1]}}, {10, []string{ids[3], ids[1], ids[0]}}, {0, []string{ids[3]}}} {
		got, err := jobs.Recent(ctx, tc.n, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []string
		for _, j := range got {
			gotIDs = append(gotIDs, j.ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(tc.want) {
			t.Errorf("Recent(%d) = %v, want %v", tc.n, gotIDs, tc.want)
		}
	}
}
