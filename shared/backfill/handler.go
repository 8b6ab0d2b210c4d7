package backfill

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/clock"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Service answers the write-missing routes: it records jobs (the work runs from the chunk queue, see runner.go),
// reports them, and reports coverage.
type Service struct {
	Devices    *registry.Registry
	Planner    *Planner
	Jobs       *JobStore
	Queue      Queue
	MaxDevices int           // cap on an explicit device list
	JobTimeout time.Duration // a job's deadline after its creation; DefaultJobTimeout when 0
	Clock      clock.Func
}

// DefaultDays is the seed's window: the last seven days.
const DefaultDays = 7

// DefaultJobTimeout bounds a job: what is unwritten then is reported as failed (asking again resumes).
const DefaultJobTimeout = 30 * time.Minute

// JobsPath is the job route's prefix; the Location of a new job is JobsPath + id.
const JobsPath = "/api/write-missing/jobs/"

// NewService plans over the data in cfg.Bucket and the devices of reg, keeps jobs in table and queues their tasks
// on queue (nil: the POST routes answer 501, as under sam local); jobTimeout 0 is DefaultJobTimeout.
func NewService(reg *registry.Registry, c *influx.Client, cfg config.Config, table *store.Table, queue Queue,
	jobTimeout time.Duration) *Service {
	return &Service{Devices: reg, Planner: &Planner{Influx: c, Bucket: cfg.Bucket}, Jobs: &JobStore{Table: table},
		Queue: queue, MaxDevices: cfg.MaxDevices, JobTimeout: jobTimeout}
}

// Routes serves the write-missing routes (paths as in template.yaml), every one the operator's.
func (s *Service) Routes() *api.Mux {
	mux := api.NewMux()
	mux.HandleFunc("POST /api/devices/{deviceId}/write-missing", api.Require(api.RoleOperator, s.planDevice))
	mux.HandleFunc("POST /api/write-missing", api.Require(api.RoleOperator, s.planAll))
	mux.HandleFunc("GET /api/devices/{deviceId}/write-missing", api.Require(api.RoleOperator, s.coverageDevice))
	mux.HandleFunc("GET /api/write-missing", api.Require(api.RoleOperator, s.coverageAll))
	mux.HandleFunc("GET "+JobsPath+"{jobId}", api.Require(api.RoleOperator, s.getJob))
	mux.HandleFunc("POST "+JobsPath+"{jobId}/cancel", api.Require(api.RoleOperator, s.cancelJob))
	return mux
}

// planBody is the optional body of the plan routes.
type planBody struct {
	Days    *int      `json:"days"`
	Devices *[]string `json:"devices"`
}

func (b planBody) days() (int, error) {
	if b.Days == nil {
		return DefaultDays, nil
	}
	if *b.Days < 1 || *b.Days > MaxDays {
		return 0, api.InvalidParam("days", "days must be an integer in [1, %d]", MaxDays)
	}
	return *b.Days, nil
}

func (s *Service) planDevice(w http.ResponseWriter, r *http.Request) {
	r, id, err := api.DeviceID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	body, days, err := planInput(r)
	if err == nil && body.Devices != nil {
		err = api.InvalidParam("devices", "devices is only accepted by POST /api/write-missing")
	}
	if err == nil && s.Queue == nil {
		err = errNoQueue // before the device lookup: the answer is the same whatever the device
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if _, err := s.Devices.Get(r.Context(), id); err != nil {
		api.WriteError(w, r, err)
		return
	}
	s.startJob(w, r, []string{id}, days)
}

// planInput reads what both plan routes take: no query parameter, an optional JSON body, its days.
func planInput(r *http.Request) (planBody, int, error) {
	var body planBody
	if _, err := api.Query(r); err != nil {
		return body, 0, err
	}
	if err := api.DecodeJSON(r, &body); err != nil {
		return body, 0, err
	}
	days, err := body.days()
	return body, days, err
}

func (s *Service) planAll(w http.ResponseWriter, r *http.Request) {
	body, days, err := planInput(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var ids []string // nil: every registered device, resolved by the plan task (not here: this answer stays fast)
	if body.Devices != nil {
		if ids, err = s.checkDevices(r.Context(), *body.Devices); err != nil {
			api.WriteError(w, r, err)
			return
		}
	}
	s.startJob(w, r, ids, days)
}

// checkDevices validates an explicit device list: valid ids, at most MaxDevices (and what one task carries), every
// one registered (else 404 naming the first unknown one, before anything is recorded), duplicates dropped. One
// registry query that reads the listed devices' records only: the answer does not grow with the fleet.
func (s *Service) checkDevices(ctx context.Context, list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, api.InvalidParam("devices", "devices must not be empty (omit it for every registered device)")
	}
	limit := MaxBatchDevices
	if s.MaxDevices > 0 {
		limit = min(limit, s.MaxDevices)
	}
	if len(list) > limit {
		return nil, api.InvalidParam("devices", "at most %d devices (omit devices for every registered device)", limit)
	}
	seen := make(map[string]bool, len(list))
	ids := make([]string, 0, len(list))
	for _, id := range list {
		if err := api.CheckDeviceID(id); err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	registered, err := deviceIDs(ctx, s.Devices, ids)
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(registered))
	for _, id := range registered {
		known[id] = true
	}
	for _, id := range ids {
		if !known[id] {
			return nil, &api.Error{Code: api.NotFound, Message: "device " + id + " is not registered",
				Param: "devices", Extra: map[string]any{"deviceId": id}}
		}
	}
	return ids, nil
}

// startJob answers with the job for (devices, days): 202 and a new job, or 200 and the job already running for the
// same request. Either way Location names the job route.
func (s *Service) startJob(w http.ResponseWriter, r *http.Request, ids []string, days int) {
	ctx := r.Context()
	if s.Queue == nil {
		api.WriteError(w, r, errNoQueue) // nothing recorded: no job would ever run
		return
	}
	j, created, err := s.ensureJob(ctx, ids, days)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
		api.Logger(ctx).InfoContext(ctx, "write-missing job created", slog.String("jobId", j.ID),
			slog.Int("devices", j.Devices), slog.Bool("allDevices", j.AllDevices))
	}
	w.Header().Set("Location", JobsPath+j.ID)
	api.WriteJSON(w, status, j)
}

var errNoQueue = api.Errorf(api.NotImplemented, "write-missing needs the chunk queue (SQS), which this deployment "+
	"does not have: sam local start-api runs no queue (use make run, or deploy); coverage and job routes still work")

// claimRounds bounds how often ensureJob tries to take a request's claim before giving up (503, try again).
const claimRounds = 3

// ensureJob returns the active job for the request, or creates one. Concurrent callers agree through the request's
// claim (jobs.go): the job is written first, then one conditional put makes it the claim's job; the callers that
// lose read the winner's job and answer it.
func (s *Service) ensureJob(ctx context.Context, ids []string, days int) (Job, bool, error) {
	key := requestKey(s.Planner.Bucket, ids, days)
	timeout := s.JobTimeout
	if timeout <= 0 {
		timeout = DefaultJobTimeout
	}
	for round := 0; round < claimRounds; round++ {
		now := s.Clock.Now()
		held, err := s.Jobs.claimed(ctx, key)
		if err != nil {
			return Job{}, false, err
		}
		if held != "" {
			j, err := s.Jobs.Get(ctx, held, now)
			if err == nil && j.active() {
				return j, false, nil
			}
			if err != nil && !api.IsCode(err, api.NotFound) {
				return Job{}, false, err
			}
			// ended, past its deadline or expired: replaced below, unless another caller replaces it first
		}
		j := newJob(key, ids, LastDays(now, days), now, timeout)
		if err := s.Jobs.create(ctx, j); err != nil {
			return Job{}, false, err
		}
		if winner, err := s.Jobs.claim(ctx, key, j, held); err != nil || winner != "" {
			if err != nil {
				return Job{}, false, err
			}
			continue // a concurrent caller won: read its job (the one written here is never referred to)
		}
		if err := s.Jobs.list(ctx, j); err != nil {
			// the job runs all the same; it is only missing from the overview's recent jobs
			api.Logger(ctx).WarnContext(ctx, "listing a job", slog.String("jobId", j.ID), slog.String("error", err.Error()))
		}
		t := Task{Kind: KindPlan, Job: j.ref(), All: ids == nil, Devices: ids}
		if err := s.Queue.Send(ctx, []Task{t}); err != nil {
			// end the job so that asking again starts afresh (it reads failed; its claim is then replaced)
			if eerr := s.Jobs.end(ctx, j.ID, now); eerr != nil {
				api.Logger(ctx).WarnContext(ctx, "ending an unqueued job", slog.String("jobId", j.ID), slog.String("error", eerr.Error()))
			}
			return Job{}, false, api.Wrap(api.Unavailable, err, "queueing the job")
		}
		return j, true, nil
	}
	return Job{}, false, api.Errorf(api.Unavailable, "the write-missing request changed concurrently, try again")
}

// jobInput is a job route's input: no query parameters, a well-formed job id.
func jobInput(r *http.Request) (string, error) {
	if _, err := api.Query(r); err != nil {
		return "", err
	}
	id := r.PathValue("jobId")
	return id, CheckJobID(id)
}

// getJob is GET /api/write-missing/jobs/{jobId}.
func (s *Service) getJob(w http.ResponseWriter, r *http.Request) {
	id, err := jobInput(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	j, err := s.Jobs.Get(r.Context(), id, s.Clock.Now())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, j)
}

// cancelJob is POST /api/write-missing/jobs/{jobId}/cancel: the job stops (its queued tasks write nothing), what it
// wrote stays; the answer is the job (state cancelled), 409 when it had ended already.
func (s *Service) cancelJob(w http.ResponseWriter, r *http.Request) {
	id, err := jobInput(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	j, err := s.Jobs.Cancel(r.Context(), id, s.Clock.Now())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.Logger(r.Context()).InfoContext(r.Context(), "write-missing job cancelled", slog.String("jobId", id),
		slog.Int64("pointsWritten", j.PointsWritten))
	api.WriteJSON(w, http.StatusOK, j)
}
