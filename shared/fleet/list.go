package fleet

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"io"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/clock"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// MaxLimit caps one page of GET /api/devices; DefaultLimit is a page's size when limit is not given.
const (
	MaxLimit     = 1000
	DefaultLimit = 100
)

// Routes of the device list, exactly as declared in template.yaml.
const (
	RouteList   = "GET /api/devices"
	RouteCounts = "GET /api/devices/counts"
)

// Device is one entry of GET /api/devices: the device item (never a credential) and its health.
type Device struct {
	DeviceID        string     `json:"deviceId"`
	CreatedAt       string     `json:"createdAt"`
	UpdatedAt       string     `json:"updatedAt"`
	AuthorizationID string     `json:"authorizationId"`
	LastSeen        *time.Time `json:"lastSeen"` // null: never seen
	Status          string     `json:"status"`
	Lat             *float64   `json:"lat,omitempty"`
	Lon             *float64   `json:"lon,omitempty"`
}

// Service serves the device list and runs the scheduled fleet health.
type Service struct {
	Table  *store.Table
	Health *Health
	Writer *influx.Client // the run's counts go to Health.Bucket; nil: not written
	// Metrics receives the CloudWatch EMF line of the scheduled run (metrics.Stdout in the function).
	Metrics io.Writer
	Clock   clock.Func
	// Digest makes the run read the write gateway's presence digest (package presence) instead of every online
	// device's series: NewService sets it in gateway mode, where every device write passes the gateway.
	Digest bool
}

// NewService is the fleet of the deployment cfg describes: the devices in table, their points in cfg's data bucket
// read (and the run's counts written) through c, judged against cfg's measurement interval.
func NewService(table *store.Table, c *influx.Client, cfg config.Config) *Service {
	s := &Service{Table: table, Health: &Health{Influx: c, Bucket: cfg.Bucket,
		Interval: time.Duration(cfg.MeasurementInterval) * time.Second}, Digest: cfg.Gateway()}
	if c != nil {
		s.Writer = c
	}
	return s
}

// Routes serves the device list (GET /api/devices) and the counts (GET /api/devices/counts).
func (s *Service) Routes() *api.Mux {
	mux := api.NewMux()
	mux.HandleFunc(RouteList, api.Require(api.RoleOperator, s.List))
	mux.HandleFunc(RouteCounts, api.Require(api.RoleOperator, s.Counts))
	return mux
}

// List is GET /api/devices[?limit=N&after=CURSOR&status=S&q=PREFIX&sort=id|lastSeen|-lastSeen]: one page of devices
// read from the table's indexes (its cost follows limit, not the fleet's size), and a Link header (rel="next") to the
// next page while there is one. The filter, the order and the positions are the last fleet-health run's; the page's
// devices' lastSeen is read from InfluxDB for just them, and their status judged from it now. The body is an array.
func (s *Service) List(w http.ResponseWriter, r *http.Request) {
	// the authorizer's decision, acted on (shared/authz): the operator's route
	q, err := pageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	entries, next, err := (&Pager{Table: s.Table}).Page(ctx, q)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := s.Clock.Now()
	fresh, err := s.pageSeen(ctx, now, entries)
	if err != nil {
		// the page stands on the last run's view: the items' lastSeen and status
		api.Logger(ctx).WarnContext(ctx, "reading the page's last points failed", "error", err.Error())
	}
	out := make([]Device, len(entries))
	for i, e := range entries {
		d := Device{DeviceID: e.ID, CreatedAt: rfc3339(e.CreatedAt), UpdatedAt: rfc3339(e.UpdatedAt),
			AuthorizationID: e.AuthorizationID, Status: e.Status, Lat: e.Lat, Lon: e.Lon}
		at := e.LastSeen
		if t, ok := fresh[e.ID]; ok && t.After(at) {
			at = t
		}
		if fresh != nil {
			d.Status = s.Health.Status(at, now)
		}
		if !at.IsZero() {
			t := at.UTC()
			d.LastSeen = &t
		}
		out[i] = d
	}
	if next != nil {
		v := url.Values{"limit": {strconv.Itoa(q.Limit)}, "after": {next.String()}}
		if q.Status != "" {
			v.Set("status", q.Status)
		}
		if q.Prefix != "" {
			v.Set("q", q.Prefix)
		}
		if q.Sort != SortID {
			v.Set("sort", q.Sort)
		}
		w.Header().Set("Link", "</api/devices?"+v.Encode()+`>; rel="next"`)
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// pageSeen reads the last real point of the page's devices: Temperature first (one series per device), then any
// field for the devices without one (a device writing only CO2; a device that never wrote has no series, which the
// index answers without reading data).
func (s *Service) pageSeen(ctx context.Context, now time.Time, entries []Entry) (map[string]time.Time, error) {
	if len(entries) == 0 {
		return map[string]time.Time{}, nil
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	seen, err := s.Health.LastSeen(ctx, now, ids)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			missing = append(missing, id)
		}
	}
	others, err := s.Health.LastSeenAny(ctx, now, missing)
	if err != nil {
		return nil, err
	}
	for id, t := range others {
		seen[id] = t
	}
	return seen, nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// pageParams reads limit (1..MaxLimit, DefaultLimit), status, q (an id prefix), sort and after (the cursor the
// previous page's Link carries); other parameters (`key` included: keys travel only in the Authorization header)
// and repeated ones are refused.
func pageParams(r *http.Request) (PageQuery, error) {
	v, err := api.Query(r, "limit", "after", "status", "q", "sort")
	if err != nil {
		return PageQuery{}, err
	}
	q := PageQuery{Limit: DefaultLimit, Sort: SortID, Status: v.Get("status"), Prefix: v.Get("q")}
	if l, ok := v["limit"]; ok {
		n, err := strconv.Atoi(l[0])
		if err != nil || n < 1 || n > MaxLimit {
			return q, api.InvalidParam("limit", "limit must be an integer in [1, %d]", MaxLimit)
		}
		q.Limit = n
	}
	if _, ok := v["status"]; ok && !validStatus(q.Status) {
		return q, api.InvalidParam("status", "status must be online, late or silent")
	}
	if _, ok := v["q"]; ok && (q.Prefix == "" || !api.ValidDeviceID(q.Prefix)) {
		return q, api.InvalidParam("q", "q must be the start of a device id")
	}
	if s, ok := v["sort"]; ok {
		if s[0] != SortID && s[0] != SortLastSeen && s[0] != SortLastSeenDesc {
			return q, api.InvalidParam("sort", "sort must be id, lastSeen or -lastSeen")
		}
		q.Sort = s[0]
	}
	if a, ok := v["after"]; ok {
		c, ok := ParseCursor(q.Sort, a[0])
		if !ok || (q.Status != "" && c.Status != "" && c.Status != q.Status) {
			return q, api.InvalidParam("after", "after must be the cursor of the previous page's Link")
		}
		q.After = c
	}
	return q, nil
}

// CountsAnswer is GET /api/devices/counts.
type CountsAnswer struct {
	Registered int `json:"registered"`
	Online     int `json:"online"`
	Late       int `json:"late"`
	// Silent is every registered device neither online nor late, those registered since the last run included.
	Silent int `json:"silent"`
	// AsOf is the last fleet-health run's time (null: none ran yet).
	AsOf *time.Time `json:"asOf"`
}

// ReadCounts reads the counter items (one request): the registry's device count and the last run's statuses.
func ReadCounts(ctx context.Context, t *store.Table) (CountsAnswer, error) {
	items, err := t.BatchGet(ctx, []store.Item{store.Key(counterPK, devicesSK), store.Key(counterPK, runSK),
		store.Key(counterPK, StatusKey(Online)), store.Key(counterPK, StatusKey(Late))}, false)
	if err != nil {
		return CountsAnswer{}, err
	}
	var c CountsAnswer
	for _, it := range items {
		n := int(store.Num(it, "n"))
		switch store.Str(it, store.SK) {
		case devicesSK:
			c.Registered = n
		case StatusKey(Online):
			c.Online = n
		case StatusKey(Late):
			c.Late = n
		case runSK:
			if at, err := time.Parse(time.RFC3339Nano, store.Str(it, "at")); err == nil {
				c.AsOf = &at
			}
		}
	}
	c.Silent = max(0, c.Registered-c.Online-c.Late)
	return c, nil
}

// Counts is GET /api/devices/counts (operator): the devices per status, from the counter items.
func (s *Service) Counts(w http.ResponseWriter, r *http.Request) {
	if _, err := api.Query(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	c, err := ReadCounts(r.Context(), s.Table)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, c)
}
