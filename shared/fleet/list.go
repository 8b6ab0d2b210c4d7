package fleet

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// MaxLimit caps one page of GET /api/devices.
const MaxLimit = 1000

// Device is one entry of GET /api/devices: the registry record (never a token) and its health.
type Device struct {
	DeviceID        string     `json:"deviceId"`
	CreatedAt       string     `json:"createdAt"`
	UpdatedAt       string     `json:"updatedAt"`
	AuthorizationID string     `json:"authorizationId"`
	LastSeen        *time.Time `json:"lastSeen"` // null: no point within Lookback
	Status          string     `json:"status"`
}

// Service serves the device list and the scheduled health metric.
type Service struct {
	Registry Lister
	Health   *Health
	// Metrics receives the CloudWatch EMF line of the scheduled check (metrics.Stdout in the function).
	Metrics io.Writer
	Now     func() time.Time
}

// NewService is the fleet of the deployment cfg describes: the devices in reg, their last points in cfg's data
// bucket read through q, judged against cfg's measurement interval.
func NewService(reg Lister, q influx.Querier, cfg config.Config) *Service {
	return &Service{Registry: reg, Health: &Health{Influx: q, Bucket: cfg.Bucket,
		Interval: time.Duration(cfg.MeasurementInterval) * time.Second}}
}

// Routes serves the device list (GET /api/devices).
func (s *Service) Routes() *api.Mux {
	mux := api.NewMux()
	mux.HandleFunc(registry.RouteList, s.List)
	return mux
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Devices lists every registered device with its health, whatever the fleet size: the registry's list and, at the
// same time, the recent points (one table); when many devices wrote recently, the last points of the others only
// (by id when they are few), else every device's last point, also beside the list.
func (s *Service) Devices(ctx context.Context) ([]Device, error) {
	return s.devices(ctx, nil)
}

// devices lists the registered devices sorted by id with their health. page, when given, reads the devices of a
// page instead of the whole registry, and only the page's devices are looked up (a page of 100 reads 100 series,
// not the fleet's: at 10,000 devices that is most of the answer's time); the two queries then run one after the
// other.
func (s *Service) devices(ctx context.Context, page func(ctx context.Context) ([]registry.Device, error)) ([]Device, error) {
	now := s.now()
	type seenResult struct {
		m        map[string]time.Time
		complete bool // every device's last point, not only the recent ones
		err      error
	}
	ch := make(chan seenResult, 1)
	list := page
	if page == nil {
		go func() {
			recent, err := s.Health.Recent(ctx, now)
			if err != nil || len(recent) >= s.Health.lookupMax() {
				ch <- seenResult{m: recent, err: err} // many wrote recently: the rest is looked up after the list
				return
			}
			// few wrote recently: a small fleet or a silent one, whose every last point is read now, beside the
			// registry's list (cheap for a small fleet, needed for a silent one)
			all, err := s.Health.LastSeen(ctx, now, nil)
			ch <- seenResult{m: all, complete: true, err: err}
		}()
		list = s.Registry.List
	}
	devs, err := list(ctx)
	if err != nil {
		if page == nil {
			<-ch
		}
		return nil, err
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
	if page == nil {
		if r := <-ch; r.err != nil || r.complete {
			ch <- r
		} else {
			ids := make([]string, len(devs))
			for i, d := range devs {
				ids[i] = d.ID
			}
			m, err := s.Health.Rest(ctx, now, r.m, ids)
			ch <- seenResult{m: m, err: err}
		}
	} else {
		var ids []string // nil: every device (a page longer than MaxLimit, i.e. `after` without limit)
		if len(devs) <= MaxLimit {
			ids = make([]string, len(devs))
			for i, d := range devs {
				ids[i] = d.ID
			}
		}
		m, err := s.Health.LastSeen(ctx, now, ids)
		ch <- seenResult{m: m, err: err}
	}
	seen := <-ch
	if seen.err == nil {
		ids := make([]string, len(devs))
		for i, d := range devs {
			ids[i] = d.ID
		}
		if seen.m == nil {
			seen.m = map[string]time.Time{}
		}
		seen.err = s.Health.Others(ctx, now, seen.m, ids)
	}
	if seen.err != nil {
		return nil, api.Wrap(api.Unavailable, seen.err, "reading the devices' last points")
	}
	out := make([]Device, len(devs))
	for i, d := range devs {
		out[i] = device(d, seen.m[d.ID], s.Health.Status(seen.m[d.ID], now))
	}
	return out, nil
}

func device(d registry.Device, seen time.Time, status string) Device {
	out := Device{DeviceID: d.ID, CreatedAt: rfc3339(d.CreatedAt), UpdatedAt: rfc3339(d.UpdatedAt),
		AuthorizationID: d.AuthorizationID, Status: status}
	if !seen.IsZero() {
		t := seen.UTC()
		out.LastSeen = &t
	}
	return out
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// List is GET /api/devices[?limit=N&after=ID]: the devices sorted by id, with lastSeen and status. Without limit
// it answers every device (as before paging existed); with it, at most limit devices after the id `after`, and a
// Link header (rel="next") to the next page while there is one. The body stays an array.
func (s *Service) List(w http.ResponseWriter, r *http.Request) {
	// the authorizer's decision, acted on (shared/authz): the operator's route
	if err := api.RequireRole(api.CallerOf(r.Context()), api.RoleOperator); err != nil {
		api.WriteError(w, r, err)
		return
	}
	limit, after, err := pageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	more := false
	var page func(ctx context.Context) ([]registry.Device, error)
	switch {
	case limit > 0:
		// the registry's page: its cost follows limit, not the fleet's size
		page = func(ctx context.Context) ([]registry.Device, error) {
			devs, m, err := s.Registry.Page(ctx, after, limit)
			more = m
			return devs, err
		}
	case after != "":
		page = func(ctx context.Context) ([]registry.Device, error) {
			devs, err := s.Registry.List(ctx)
			return devs[sort.Search(len(devs), func(i int) bool { return devs[i].ID > after }):], err
		}
	}
	devs, err := s.devices(r.Context(), page)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if more {
		next := url.Values{"limit": {strconv.Itoa(limit)}, "after": {devs[len(devs)-1].DeviceID}}
		w.Header().Set("Link", "</api/devices?"+next.Encode()+`>; rel="next"`)
	}
	api.WriteJSON(w, http.StatusOK, devs)
}

// pageParams reads limit (1..MaxLimit) and after (a device id); other parameters (`key` included: keys travel only
// in the Authorization header) and repeated ones are refused.
func pageParams(r *http.Request) (int, string, error) {
	q, err := api.Query(r, "limit", "after")
	if err != nil {
		return 0, "", err
	}
	limit := 0
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxLimit {
			return 0, "", api.InvalidParam("limit", "limit must be an integer in [1, %d]", MaxLimit)
		}
		limit = n
	}
	after := q.Get("after")
	if _, ok := q["after"]; ok {
		if err := api.CheckDeviceID(after); err != nil {
			return 0, "", api.InvalidParam("after", "after must be a device id")
		}
	}
	return limit, after, nil
}

// Counts is the fleet's health in numbers.
type Counts struct {
	Registered, Online, Late, Silent int
}

// Check counts the devices by status and emits them as CloudWatch EMF metrics (SilentDevices is the one the
// alarm watches). The scheduled function runs it.
func (s *Service) Check(ctx context.Context) (Counts, error) {
	devs, err := s.Devices(ctx)
	if err != nil {
		return Counts{}, err
	}
	c := Counts{Registered: len(devs)}
	for _, d := range devs {
		switch d.Status {
		case Online:
			c.Online++
		case Late:
			c.Late++
		default:
			c.Silent++
		}
	}
	if s.Metrics != nil {
		metrics.EmitAll(ctx, s.Metrics, nil,
			metrics.Metric{Name: "SilentDevices", Value: float64(c.Silent), Unit: metrics.Count},
			metrics.Metric{Name: "LateDevices", Value: float64(c.Late), Unit: metrics.Count},
			metrics.Metric{Name: "OnlineDevices", Value: float64(c.Online), Unit: metrics.Count},
			metrics.Metric{Name: "RegisteredDevices", Value: float64(c.Registered), Unit: metrics.Count})
	}
	api.Logger(ctx).InfoContext(ctx, "fleet health", "registered", c.Registered, "online", c.Online, "late", c.Late,
		"silent", c.Silent)
	return c, nil
}
