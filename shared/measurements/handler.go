package measurements

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// DefaultTimeout caps a query when QUERY_TIMEOUT is not set.
const DefaultTimeout = 12 * time.Second

// MaxResponseBytes keeps an answer under Lambda's 6 MB synchronous response limit (with room for the envelope).
// Only raw reads of many fields over the longest allowed range come near it.
const MaxResponseBytes = 5_500_000

// deadlineMargin is kept from the invocation deadline to answer 504 before Lambda kills the invocation.
const deadlineMargin = 500 * time.Millisecond

// Service serves the query function's routes.
type Service struct {
	q        *influx.Client
	devices  *registry.Registry
	bucket   string
	bucketDs string // hourly aggregates; "" reads raw data only
	timeout  time.Duration
	now      func() time.Time
}

// Option tunes a Service.
type Option func(*Service)

// WithClock replaces time.Now (tests pin "now" to known data).
func WithClock(now func() time.Time) Option { return func(h *Service) { h.now = now } }

// WithDownsampled answers windows of whole hours from the hourly aggregates in bucket (see downsampled.go).
func WithDownsampled(bucket string) Option { return func(h *Service) { h.bucketDs = bucket } }

// NewService builds the service. bucket is the measurements bucket; timeout caps every query (0 = DefaultTimeout).
func NewService(q *influx.Client, devices *registry.Registry, bucket string, timeout time.Duration, opts ...Option) *Service {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	h := &Service{q: q, devices: devices, bucket: bucket, timeout: timeout, now: time.Now}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Routes returns the mux with the template.yaml paths of QueryFunction.
func (h *Service) Routes() *api.Mux {
	mux := api.NewMux()
	// a device reads its own data only: api.Caller.MayRead checks the id and credential against its record
	mux.HandleFunc("GET /api/devices/{deviceId}/measurements", api.Require(api.RoleDevice, h.Measurements))
	mux.HandleFunc("GET /api/devices/{deviceId}/summary", api.Require(api.RoleDevice, h.Summary))
	mux.NotFound("no such route")
	return mux
}

// Measurements answers GET /api/devices/{deviceId}/measurements.
func (h *Service) Measurements(w http.ResponseWriter, r *http.Request) {
	r, id, err := api.DeviceID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	q, err := ParseRequest(id, r.URL.Query(), h.now())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	csvOut := wantsCSV(r)
	ctx, cancel := h.queryContext(r.Context())
	defer cancel()
	t, err := whileLookingUp(ctx, h, id, "querying measurements", func(ctx context.Context) (*Table, error) { return h.table(ctx, q) })
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var body []byte
	if csvOut {
		body = renderCSV(t)
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		m := meta{DeviceID: id, Start: q.Start, Stop: q.Stop, Every: "raw"}
		if !q.Raw() {
			m.Every, m.Fn = formatDuration(q.Every), q.Fn
		}
		body = renderJSON(m, t)
		w.Header().Set("Content-Type", "application/json")
	}
	if len(body) > MaxResponseBytes {
		api.WriteError(w, r, api.InvalidParam("every", "the answer (%d bytes) would exceed the Lambda response limit: ask fewer fields, a shorter range or a longer window", len(body)))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	api.Logger(ctx).InfoContext(ctx, "measurements", slog.Int("rows", len(t.Times)), slog.String("every", formatEvery(q)),
		slog.Bool("downsampled", h.useDownsampled(q)), slog.Bool("csv", csvOut))
}

func formatEvery(q Request) string {
	if q.Raw() {
		return "raw"
	}
	return formatDuration(q.Every)
}

// table runs the measurements query and streams its CSV into columns.
func (h *Service) table(ctx context.Context, q Request) (*Table, error) {
	if h.useDownsampled(q) {
		return h.downsampledTable(ctx, q)
	}
	flux, ext := measurementsQuery(h.bucket, q)
	rc, err := h.q.QueryRaw(ctx, flux, ext)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readTable(rc, q.Fields)
}

// Summary answers GET /api/devices/{deviceId}/summary.
func (h *Service) Summary(w http.ResponseWriter, r *http.Request) {
	r, id, err := api.DeviceID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	q, err := ParseSummaryRequest(id, r.URL.Query(), h.now())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx, cancel := h.queryContext(r.Context())
	defer cancel()
	s, err := whileLookingUp(ctx, h, id, "querying the summary", func(ctx context.Context) (*Summary, error) { return h.summary(ctx, q) })
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, s)
}

func (h *Service) summary(ctx context.Context, q SummaryRequest) (*Summary, error) {
	flux, ext := summaryQuery(h.bucket, q)
	rc, err := h.q.QueryRaw(ctx, flux, ext)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readSummary(rc, q)
}

// whileLookingUp runs query while the registry is asked whether the device exists (one round trip less): the
// result is used only when the device is registered; otherwise the query is cancelled and the lookup's error
// (404 for an unregistered id) is returned. Errors come back classified for api.WriteError.
func whileLookingUp[T any](ctx context.Context, h *Service, id, doing string, query func(context.Context) (T, error)) (T, error) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var res T
	var qerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer recoverTo(&qerr) // api.Handler's recover does not reach this goroutine
		res, qerr = query(qctx)
	}()
	d, err := h.devices.Get(ctx, id)
	if err == nil {
		err = api.CallerOf(ctx).MayRead(id, d.AuthorizationID)
	}
	if err != nil {
		cancel()
		<-done
		var zero T
		return zero, influx.Fail(ctx, err, "looking the device up")
	}
	<-done
	if qerr != nil {
		return res, influx.Fail(ctx, qerr, doing)
	}
	return res, nil
}

// recoverTo turns a panic in a helper goroutine into an error (a 500), instead of a crashed invocation.
func recoverTo(err *error) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("measurements: panic: %v", v)
	}
}

// queryContext bounds the work by the configured cap and by the invocation deadline (less a margin to answer).
func (h *Service) queryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := h.timeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-deadlineMargin)
	}
	return context.WithTimeout(ctx, max(d, 0))
}

// wantsCSV reports whether content negotiation (every Accept value, q-values included) picks text/csv over the
// default JSON.
func wantsCSV(r *http.Request) bool {
	return api.NegotiateType(r.Header, "application/json", "text/csv") == "text/csv"
}
