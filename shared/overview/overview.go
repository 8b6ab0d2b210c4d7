// Package overview is the fleet overview's API (the dashboard's home page): the status counts now and over a
// range (measurement `fleet`, written by each fleet-health run), the silent devices longest-silent first, the
// newest write-missing jobs, and every device's position as one compact gzipped columnar answer (the positions snapshot in the control-plane
// table, shared/positions). Every answer is bounded or paged except the positions, which are compact instead.
package overview

import (
	"context"
	"strconv"
	"strings"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/clock"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/positions"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Routes (template.yaml's OverviewFunction events).
const (
	RouteCounts    = "GET /api/overview"
	RouteSilent    = "GET /api/overview/silent"
	RoutePositions = "GET /api/overview/positions"
	RouteJobs      = "GET /api/overview/jobs"
)

// Fields of schema.FleetMeasurement, which each fleet-health run writes to the data bucket (one point, no tags): the
// counts by status, the registered devices, and the points the fleet wrote per minute.
var Fields = []string{"online", "late", "silent", "registered", "pointsPerMinute"}

// Snapshots reads the positions snapshot (positions.Read over the table; a test may count or slow it).
type Snapshots func(ctx context.Context) (positions.Snapshot, error)

// Service serves the overview routes.
type Service struct {
	Influx *influx.Client
	Bucket string // the data bucket, where schema.FleetMeasurement is
	Read   Snapshots
	Jobs   *backfill.JobStore
	Clock  clock.Func

	answers answers
}

// NewService is the overview of the fleet whose counts are in bucket (read through q) and positions in t.
func NewService(q *influx.Client, bucket string, t *store.Table) *Service {
	c := &snapshots{t: t}
	return &Service{Influx: q, Bucket: bucket, Read: c.read, Jobs: &backfill.JobStore{Table: t}}
}

// Routes serves the overview; every route is the operator's.
func (s *Service) Routes() *api.Mux {
	mux := api.NewMux()
	mux.HandleFunc(RouteCounts, api.Require(api.RoleOperator, s.counts))
	mux.HandleFunc(RouteSilent, api.Require(api.RoleOperator, s.silent))
	mux.HandleFunc(RoutePositions, api.Require(api.RoleOperator, s.positions))
	mux.HandleFunc(RouteJobs, api.Require(api.RoleOperator, s.jobs))
	return mux
}

// cursor is a silent-page position: the last device's lastSeen (epoch seconds, 0: never) and id.
type cursor struct {
	seen int64
	id   string
}

func (c cursor) String() string { return strconv.FormatInt(c.seen, 10) + ":" + c.id }

func parseCursor(v string) (cursor, error) {
	bad := api.InvalidParam("after", "after must be a cursor from a previous page's next")
	secs, id, ok := strings.Cut(v, ":")
	if !ok || len(secs) == 0 || len(secs) > 10 || !api.ValidDeviceID(id) {
		return cursor{}, bad
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n < 0 || n > 1<<32 {
		return cursor{}, bad
	}
	return cursor{n, id}, nil
}
