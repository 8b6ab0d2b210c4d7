package backfill

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// Devices is what the feature needs from the device registry.
type Devices interface {
	// Exists returns nil for a registered device and an *api.Error NotFound otherwise.
	Exists(ctx context.Context, id string) error
	// IDs lists the registered devices, sorted.
	IDs(ctx context.Context) ([]string, error)
}

// Service plans backfills and reports coverage.
type Service struct {
	Devices      Devices
	Planner      *Planner
	Dispatcher   Dispatcher
	ChunkMinutes int
	MaxDevices   int              // cap on the devices of one POST /api/write-missing
	Now          func() time.Time // time.Now when nil
}

// DefaultDays is the seed's window: the last seven days.
const DefaultDays = 7

// queryParallel bounds the per-device queries one request runs at once (InfluxDB shares its cores with writes).
const queryParallel = 4

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler routes the four write-missing routes (paths as in template.yaml).
func (s *Service) Handler() *api.Mux {
	mux := api.NewMux()
	mux.HandleFunc("POST /api/devices/{deviceId}/write-missing", s.planDevice)
	mux.HandleFunc("POST /api/write-missing", s.planAll)
	mux.HandleFunc("GET /api/devices/{deviceId}/write-missing", s.coverageDevice)
	mux.HandleFunc("GET /api/write-missing", s.coverageAll)
	return mux
}

// planBody is the optional body of the plan routes.
type planBody struct {
	Days    *int      `json:"days"`
	Devices *[]string `json:"devices"`
}

func (b planBody) window(now time.Time) (Window, error) {
	days := DefaultDays
	if b.Days != nil {
		days = *b.Days
		if days < 1 || days > MaxDays {
			return Window{}, api.InvalidParam("days", "days must be an integer in [1, %d]", MaxDays)
		}
	}
	return LastDays(now, days), nil
}

// DevicePlan is one device's part of a plan.
type DevicePlan struct {
	DeviceID string `json:"deviceId"`
	Missing  int64  `json:"missing"`
	Chunks   int    `json:"chunks"`
	chunks   []Chunk
}

func (s *Service) planDevice(w http.ResponseWriter, r *http.Request) {
	id, err := api.DeviceID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	r = api.WithDevice(r, id)
	if _, err := query(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var body planBody
	if err := api.DecodeJSON(r, &body); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if body.Devices != nil {
		api.WriteError(w, r, api.InvalidParam("devices", "devices is only accepted by POST /api/write-missing"))
		return
	}
	win, err := body.window(s.now())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	if err := s.Devices.Exists(ctx, id); err != nil {
		api.WriteError(w, r, err)
		return
	}
	plans, err := s.plan(ctx, []string{id}, win)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if _, err := s.dispatch(ctx, plans); err != nil {
		api.WriteError(w, r, err)
		return
	}
	p := plans[0]
	status := http.StatusAccepted
	if p.Missing == 0 {
		status = http.StatusOK
	}
	api.WriteJSON(w, status, map[string]any{
		"deviceId": id, "from": win.From, "to": win.To, "missing": p.Missing, "chunks": p.Chunks,
	})
}

func (s *Service) planAll(w http.ResponseWriter, r *http.Request) {
	if _, err := query(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var body planBody
	if err := api.DecodeJSON(r, &body); err != nil {
		api.WriteError(w, r, err)
		return
	}
	win, err := body.window(s.now())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	ids, err := s.selectDevices(ctx, body.Devices)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	plans, err := s.plan(ctx, ids, win)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if _, err := s.dispatch(ctx, plans); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var missing int64
	var chunks int
	for _, p := range plans {
		missing += p.Missing
		chunks += p.Chunks
	}
	status := http.StatusAccepted
	if missing == 0 {
		status = http.StatusOK
	}
	if plans == nil {
		plans = []DevicePlan{}
	}
	api.WriteJSON(w, status, map[string]any{
		"from": win.From, "to": win.To, "missing": missing, "chunks": chunks, "devices": plans,
	})
}

// selectDevices validates an explicit device list (every id registered, else 404 naming the first unknown one,
// before anything is dispatched) or lists every registered device.
func (s *Service) selectDevices(ctx context.Context, list *[]string) ([]string, error) {
	if list == nil {
		ids, err := s.Devices.IDs(ctx)
		if err != nil {
			return nil, err
		}
		if s.MaxDevices > 0 && len(ids) > s.MaxDevices {
			ids = ids[:s.MaxDevices]
		}
		return ids, nil
	}
	if len(*list) == 0 {
		return nil, api.InvalidParam("devices", "devices must not be empty (omit it for every registered device)")
	}
	if s.MaxDevices > 0 && len(*list) > s.MaxDevices {
		return nil, api.InvalidParam("devices", "at most %d devices", s.MaxDevices)
	}
	seen := make(map[string]bool, len(*list))
	var ids []string
	for _, id := range *list {
		if err := api.CheckDeviceID(id); err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		if err := s.Devices.Exists(ctx, id); err != nil {
			if api.IsCode(err, api.NotFound) {
				return nil, &api.Error{Code: api.NotFound, Message: "device " + id + " is not registered",
					Param: "devices", Extra: map[string]any{"deviceId": id}}
			}
			return nil, err
		}
	}
	return ids, nil
}

// plan runs one gap query per device (a few at a time) and splits the gaps into chunks.
func (s *Service) plan(ctx context.Context, ids []string, win Window) ([]DevicePlan, error) {
	plans := make([]DevicePlan, len(ids))
	err := forEach(ctx, len(ids), queryParallel, func(ctx context.Context, i int) error {
		chunks, missing, err := s.Planner.Chunks(ctx, ids[i], win, s.ChunkMinutes)
		if err != nil {
			return err
		}
		plans[i] = DevicePlan{DeviceID: ids[i], Missing: missing, Chunks: len(chunks), chunks: chunks}
		return nil
	})
	if err != nil {
		return nil, influxErr(err)
	}
	return plans, nil
}

// dispatch queues every chunk of the plans. A failure part-way answers 503: the chunks already queued are
// harmless (writes are idempotent) and the client simply asks again.
func (s *Service) dispatch(ctx context.Context, plans []DevicePlan) (int, error) {
	var all []Chunk
	for _, p := range plans {
		all = append(all, p.chunks...)
	}
	if len(all) == 0 {
		return 0, nil
	}
	n, err := dispatchAll(ctx, s.Dispatcher, all)
	if err != nil {
		return n, api.Wrap(api.Unavailable, err, "dispatching chunks (%d of %d queued)", n, len(all))
	}
	api.Logger(ctx).InfoContext(ctx, "backfill dispatched", slog.Int("chunks", n), slog.Int("devices", len(plans)))
	return n, nil
}

// Coverage is how much of a window holds data.
type Coverage struct {
	DeviceID string    `json:"deviceId,omitempty"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Expected int64     `json:"expected"`
	Present  int64     `json:"present"`
	Missing  int64     `json:"missing"`
	Percent  float64   `json:"percent"`
}

func newCoverage(id string, win Window, expected, present int64) Coverage {
	pct := 100.0
	if expected > 0 {
		// floor to two decimals: 99.999% must not read as 100
		pct = math.Floor(float64(present)*10000/float64(expected)) / 100
	}
	return Coverage{DeviceID: id, From: win.From, To: win.To, Expected: expected, Present: present,
		Missing: expected - present, Percent: pct}
}

func (s *Service) coverageWindow(r *http.Request) (Window, error) {
	q, err := query(r, "from", "to")
	if err != nil {
		return Window{}, err
	}
	return ParseWindow(q.Get("from"), q.Get("to"), LastDays(s.now(), DefaultDays))
}

// query parses the query string and refuses parameters the route does not take (the authorizer's `key` is always
// allowed) and parameters given twice.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, api.InvalidParam("query", "the query string is malformed")
	}
	for k, vs := range q {
		ok := k == "key"
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			if len(k) > 32 || !api.ValidDeviceID(k) {
				return nil, api.InvalidParam("query", "unknown query parameter")
			}
			return nil, api.InvalidParam(k, "unknown query parameter %s", k)
		}
		if len(vs) != 1 {
			return nil, api.InvalidParam(k, "%s must be given once", k)
		}
	}
	return q, nil
}

func (s *Service) coverageDevice(w http.ResponseWriter, r *http.Request) {
	id, err := api.DeviceID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	r = api.WithDevice(r, id)
	win, err := s.coverageWindow(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	if err := s.Devices.Exists(ctx, id); err != nil {
		api.WriteError(w, r, err)
		return
	}
	covs, err := s.coverage(ctx, []string{id}, win)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, covs[0])
}

func (s *Service) coverageAll(w http.ResponseWriter, r *http.Request) {
	win, err := s.coverageWindow(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	ids, err := s.selectDevices(ctx, nil)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	covs, err := s.coverage(ctx, ids, win)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var expected, present int64
	for _, c := range covs {
		expected += c.Expected
		present += c.Present
	}
	total := newCoverage("", win, expected, present)
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"from": total.From, "to": total.To, "expected": total.Expected, "present": total.Present,
		"missing": total.Missing, "percent": total.Percent, "devices": covs,
	})
}

// coverage reads each device's present minutes from InfluxDB itself, so it reflects what really landed.
func (s *Service) coverage(ctx context.Context, ids []string, win Window) ([]Coverage, error) {
	covs := make([]Coverage, len(ids))
	err := forEach(ctx, len(ids), queryParallel, func(ctx context.Context, i int) error {
		present, err := s.Planner.Present(ctx, ids[i], win)
		if err != nil {
			return err
		}
		var n int64
		for _, p := range present {
			if p {
				n++
			}
		}
		covs[i] = newCoverage(ids[i], win, win.Minutes(), n)
		return nil
	})
	if err != nil {
		return nil, influxErr(err)
	}
	return covs, nil
}

// influxErr classifies a failed InfluxDB query for the caller (influx.Classify); an *api.Error passes unchanged.
func influxErr(err error) error {
	var e *api.Error
	if errors.As(err, &e) {
		return err
	}
	return api.Wrap(influx.Classify(err), err, "querying InfluxDB")
}

// forEach runs fn(i) for i in [0, n), parallel at a time, stopping at the first error.
func forEach(ctx context.Context, n, parallel int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, parallel)
	)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		}(i)
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err() // the parent was cancelled (our own cancel runs only on error or after return)
	}
	return first
}

// Registry is the part of the device registry (registry.Registry) RegistryDevices reads.
type Registry interface {
	Get(ctx context.Context, id string) (registry.Device, error)
	List(ctx context.Context) ([]registry.Device, error)
}

var (
	_ Registry = (*registry.Registry)(nil)
	_ Devices  = RegistryDevices{}
)

// RegistryDevices answers Devices from the device registry.
type RegistryDevices struct{ R Registry }

// Exists returns nil for a registered device, the registry's NotFound otherwise.
func (d RegistryDevices) Exists(ctx context.Context, id string) error {
	_, err := d.R.Get(ctx, id)
	return err
}

// IDs lists the registered device ids, sorted.
func (d RegistryDevices) IDs(ctx context.Context) ([]string, error) {
	list, err := d.R.List(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, dev := range list {
		ids[i] = dev.ID
	}
	return ids, nil
}
