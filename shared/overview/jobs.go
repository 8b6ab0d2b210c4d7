package overview

import (
	"net/http"
	"strconv"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// DefaultJobs is how many jobs GET /api/overview/jobs answers without a limit (at most backfill.MaxRecent).
const DefaultJobs = 10

// RecentJobs is GET /api/overview/jobs' answer: the newest write-missing jobs, newest first, each as the job route
// answers it (state; size: devices, chunks, points planned; outcome: points written, chunks done and failed).
type RecentJobs struct {
	Jobs []backfill.Job `json:"jobs"`
}

func (s *Service) jobs(w http.ResponseWriter, r *http.Request) {
	q, err := api.Query(r, "limit")
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	n := DefaultJobs
	if v := q.Get("limit"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > backfill.MaxRecent {
			api.WriteError(w, r, api.InvalidParam("limit", "limit must be an integer from 1 to %d", backfill.MaxRecent))
			return
		}
	}
	jobs, err := s.Jobs.Recent(r.Context(), n, s.Clock.Now())
	if err != nil {
		api.WriteError(w, r, influx.Fail(r.Context(), err, "reading the recent jobs"))
		return
	}
	api.WriteJSON(w, http.StatusOK, RecentJobs{Jobs: jobs})
}
