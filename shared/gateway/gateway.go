// Package gateway is the device write gateway: `POST /api/v2/write`, InfluxDB's own write API as every client
// library calls it, in front of InfluxDB. It authenticates the device credential itself (one read of the device's
// item in the state table, then cached; rotations and deletions learned from the registry's revocation items,
// auth.go), checks every line against the schema before anything is written (all
// or nothing per request), sets the clientId tag to the authenticated device, and writes with a token of its own.
// Answers are InfluxDB's: 204, or {"code": …, "message": …} with the status the client libraries expect.
package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Route is the gateway's route, as declared in template.yaml.
const Route = "POST /api/v2/write"

// maxFuture is how far ahead of the gateway's clock a timestamp may be.
const maxFuture = 10 * time.Minute

// Options configure a Service; zero values take the defaults noted.
type Options struct {
	Org, Bucket string         // the only org and bucket devices may write to
	Schema      *schema.Schema // default schema.Default()
	// Retention is used when the gateway's token may not read the bucket's retention (a write-only token).
	Retention time.Duration
	// AuthCacheTTL is how long an accepted credential is reused while no revocation names its device (default
	// DefaultAuthCacheTTL, at most MaxAuthCacheTTL); RevocationCheck is how often the revocation items are read
	// (default DefaultRevocationCheck, at most RevocationWindow).
	AuthCacheTTL, RevocationCheck time.Duration
	// Rate (writes per second per device, per instance; < 0 disables) and Burst; defaults 10 and 50.
	Rate  float64
	Burst int
	// PointRate (points per second per device, per instance; < 0 disables) and PointBurst (at least MaxPoints, so
	// one full request passes); defaults DefaultPointRate and 3 × MaxPoints (a reconnecting device flushes a few).
	PointRate  float64
	PointBurst int
	// MaxPoints caps the points of one request (default DefaultMaxPoints).
	MaxPoints int
	// Series is the state table holding each device's tag sets; nil: no series budgets. SeriesBudget is the
	// budget of tag sets per device and measurement (default DefaultSeriesBudget; a device's own item may set
	// another), FleetSeriesBudget that of every device together (default DefaultFleetSeriesBudget).
	Series            *store.Table
	SeriesBudget      int
	FleetSeriesBudget int64
	// MaxBody and MaxDecodedBody cap the body as sent and decompressed (defaults MaxBody, and MaxPoints times the
	// longest line the schema allows, at most MaxDecodedBody).
	MaxBody, MaxDecodedBody int64
	// Presence records every accepted write into the presence digest, flushed to Bucket after a device's write
	// (nil: no digest; the fleet-health run then reads the devices' series).
	Presence *presence.Recorder
	// Metrics receives EMF lines (metrics.Stdout in the function; nil: none).
	Metrics io.Writer
	Now     func() time.Time
}

// Service serves Route.
type Service struct {
	creds  Credentials
	store  *influx.Client
	o      Options
	rules  rules
	cache  *authCache
	limit  *limiter // requests per device
	points *limiter // points per device
	book   *book    // series budgets (nil: none)

	retMu     sync.Mutex
	retention *time.Duration // read once, then cached
}

// NewService builds the gateway: credentials checked with creds, revocations read from the state table (nil: none are
// read, and an accepted credential is reused for RevocationWindow only); an invalid schema is an error (a
// cold-start failure).
func NewService(creds Credentials, revocations *store.Table, st *influx.Client, o Options) (*Service, error) {
	if o.Schema == nil {
		o.Schema = schema.Default()
	}
	r, err := compile(o.Schema)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AuthCacheTTL == 0 {
		o.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if o.RevocationCheck <= 0 {
		o.RevocationCheck = DefaultRevocationCheck
	}
	if o.Rate == 0 {
		o.Rate, o.Burst = 10, 50
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = DefaultMaxPoints
	}
	if o.PointRate == 0 {
		o.PointRate, o.PointBurst = DefaultPointRate, 3*o.MaxPoints
	}
	o.PointBurst = max(o.PointBurst, o.MaxPoints)
	if o.MaxBody <= 0 {
		o.MaxBody = MaxBody
	}
	if o.MaxDecodedBody <= 0 {
		o.MaxDecodedBody = min(MaxDecodedBody, int64(o.MaxPoints)*int64(r.maxLine))
	}
	g := &Service{creds: creds, store: st, o: o, rules: r,
		cache:  newAuthCache(revocations, o.AuthCacheTTL, min(o.RevocationCheck, RevocationWindow), 100_000, o.Now),
		limit:  newLimiter(o.Rate, o.Burst, 100_000, o.Now),
		points: newLimiter(o.PointRate, o.PointBurst, 100_000, o.Now)}
	if o.Series != nil {
		if o.SeriesBudget <= 0 {
			o.SeriesBudget = DefaultSeriesBudget
		}
		if o.FleetSeriesBudget <= 0 {
			o.FleetSeriesBudget = DefaultFleetSeriesBudget
		}
		g.o = o
		g.book = newBook(o.Series, o.SeriesBudget, o.FleetSeriesBudget, o.AuthCacheTTL, o.Now)
		g.cache.verified = g.book.prime
	}
	return g, nil
}

// Per-request and per-device point limits (the InfluxDB client libraries write batches of 5,000 by default).
const (
	DefaultMaxPoints = 5000
	DefaultPointRate = 1000
)

// Routes serves Route; anything else is InfluxDB's 404.
func (g *Service) Routes() *api.Mux {
	mux := api.NewMux()
	mux.Handle(Route, g)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_ = writeError(w, r, api.Errorf(api.NotFound, "path not found"))
	})
	return mux
}

// answerMargin is kept between the request's work and the invocation's deadline, so a slow registry or InfluxDB
// becomes a 503 the client libraries retry rather than a Lambda timeout (API Gateway's 503 without a body).
const answerMargin = time.Second

func (g *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if dl, ok := r.Context().Deadline(); ok {
		ctx, cancel := context.WithDeadline(r.Context(), dl.Add(-answerMargin))
		defer cancel()
		r = r.WithContext(ctx)
	}
	r, n, err := g.serve(w, r)
	ctx := r.Context()
	if err != nil {
		status := writeError(w, r, err)
		g.emit(ctx, metrics.Metric{Name: "GatewayWritesRefused", Value: 1, Unit: metrics.Count}, strconv.Itoa(status))
		return
	}
	api.Logger(ctx).InfoContext(ctx, "points written", slog.Int("points", n))
	g.emit(ctx, metrics.Metric{Name: "GatewayPointsWritten", Value: float64(n), Unit: metrics.Count}, "204")
	w.WriteHeader(http.StatusNoContent)
}

// serve authenticates, rate-limits and writes; it returns the request with the device in its logger.
func (g *Service) serve(w http.ResponseWriter, r *http.Request) (*http.Request, int, error) {
	now := g.o.Now()
	dev, err := g.authenticate(r)
	if err != nil {
		return r, 0, err
	}
	r = api.WithDevice(r, dev)
	if ok, wait := g.limit.take(dev, 1); !ok {
		retryAfter(w, wait)
		return r, 0, api.Errorf(api.TooMany, "write rate limit of %g writes per second reached for device %s", g.o.Rate, dev)
	}
	n, err := g.write(w, r, dev, now)
	return r, n, err
}

func retryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(max(1, (wait+time.Second-1)/time.Second))))
}

// emit writes one EMF metric by answer status (never by device: a dimension per device would be a metric each).
func (g *Service) emit(ctx context.Context, m metrics.Metric, status string) {
	if g.o.Metrics != nil {
		metrics.EmitAll(ctx, g.o.Metrics, []metrics.Dim{{Name: "Status", Value: status}}, m)
	}
}

func (g *Service) authenticate(r *http.Request) (string, error) {
	cred, ok := credential(r)
	if !ok {
		return "", unauthorized()
	}
	return g.cache.authenticate(r.Context(), g.creds, cred)
}

// write checks the request's target and every line, then writes all of its points or none.
func (g *Service) write(w http.ResponseWriter, r *http.Request, dev string, now time.Time) (int, error) {
	ctx := r.Context()
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, api.Errorf(api.Invalid, "the query string is malformed")
	}
	if err := g.target(ctx, q); err != nil {
		return 0, err
	}
	prec, err := precision(q.Get("precision"))
	if err != nil {
		return 0, err
	}
	body, err := readBody(r, g.o.MaxBody, g.o.MaxDecodedBody)
	if err != nil {
		return 0, err
	}
	ret, err := g.bucketRetention(ctx)
	if err != nil {
		return 0, err
	}
	b := batch{device: dev, precision: prec, now: now, newest: now.Add(maxFuture)}
	if ret > 0 {
		b.oldest = now.Add(-ret)
	}
	c := checker{rules: g.rules, b: b, maxPoints: g.o.MaxPoints, countSeries: g.book != nil}
	lp, n, err := c.check(body)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, api.Errorf(api.Invalid, "writing requires points")
	}
	if g.book != nil {
		// before the write: a tag set beyond a budget refuses the request whole. Tag sets recorded for a request
		// that then fails still count (the device sends the same points again).
		if err := g.book.admit(ctx, dev, c.seriesIDs()); err != nil {
			return 0, err
		}
	}
	// counted once the points are known to be valid: a refused body costs the device nothing
	if ok, wait := g.points.take(dev, float64(n)); !ok {
		retryAfter(w, wait)
		return 0, api.Errorf(api.TooMany, "write rate limit of %g points per second reached for device %s (this request has %d points)",
			g.o.PointRate, dev, n)
	}
	if err := g.store.WritePlain(ctx, g.o.Bucket, lp); err != nil {
		return 0, classify(err, "writing points")
	}
	if g.o.Presence != nil {
		g.o.Presence.Note(dev, c.note, now)
		g.flushDigest(ctx, now)
	}
	return n, nil
}

// flushDigest writes the pending presence digest when a flush is due: on the request path, since a frozen Lambda
// instance runs no timer. A failure only logs (the device's points are written); the entries wait for a later flush.
func (g *Service) flushDigest(ctx context.Context, now time.Time) {
	f := g.o.Presence.Take(now)
	if f == nil {
		return
	}
	if f.Dropped > 0 {
		api.Logger(ctx).WarnContext(ctx, "presence digest full: devices left out until their next write",
			slog.Int64("dropped", f.Dropped))
	}
	err := g.store.WritePlain(ctx, g.o.Bucket, f.Lines)
	f.Done(err)
	if err != nil {
		api.Logger(ctx).WarnContext(ctx, "presence digest not written; kept for a later flush",
			slog.Int("devices", f.Devices), slog.String("error", err.Error()))
	}
}

// target checks org/orgID and bucket: anything but the configured ones is InfluxDB's 404.
func (g *Service) target(ctx context.Context, q url.Values) error {
	switch org, orgID := q.Get("org"), q.Get("orgID"); {
	case org != "":
		if org != g.o.Org {
			return api.Errorf(api.NotFound, "organization name %s not found", clip([]byte(org), 64))
		}
	case orgID != "":
		if id, err := g.store.OrgID(ctx); err != nil || id != orgID {
			return g.lookupMiss(err, "organization %s not found", orgID)
		}
	default:
		return api.Errorf(api.Invalid, "Please provide either orgID or org")
	}
	bucket := q.Get("bucket")
	if bucket == "" {
		return api.Errorf(api.Invalid, "Please provide bucket")
	}
	if bucket != g.o.Bucket {
		// a bucket may also be named by its id
		if id, err := g.store.BucketID(ctx, g.o.Bucket); err != nil || id != bucket {
			return g.lookupMiss(err, "bucket %s not found", bucket)
		}
	}
	return nil
}

// lookupMiss is the 404 for an org or bucket id that is not the configured one; an InfluxDB outage during the
// lookup is a 503, not a 404.
func (g *Service) lookupMiss(err error, format, v string) error {
	if err != nil && !refusedLookup(err) {
		return classify(err, "looking up an id")
	}
	return api.Errorf(api.NotFound, format, clip([]byte(v), 64))
}

// refusedLookup: InfluxDB refused to look the id up (the gateway's token may only write) or it does not exist.
func refusedLookup(err error) bool {
	s := influx.StatusOf(err)
	return errors.Is(err, influx.ErrNotFound) || s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusNotFound
}

// bucketRetention reads the data bucket's retention once; a token that may not read it falls back to the
// configured one.
func (g *Service) bucketRetention(ctx context.Context) (time.Duration, error) {
	g.retMu.Lock()
	defer g.retMu.Unlock()
	if g.retention != nil {
		return *g.retention, nil
	}
	ret, err := g.store.BucketRetention(ctx, g.o.Bucket)
	if err != nil {
		if !refusedLookup(err) {
			return 0, classify(err, "reading the bucket's retention")
		}
		api.Logger(ctx).InfoContext(ctx, "bucket retention not readable with the gateway's token; using the configured one",
			slog.Duration("retention", g.o.Retention))
		ret = g.o.Retention
	}
	g.retention = &ret
	return ret, nil
}

// precision maps InfluxDB's precision parameter.
func precision(p string) (lineprotocol.Precision, error) {
	switch p {
	case "", "ns":
		return lineprotocol.Nanosecond, nil
	case "us":
		return lineprotocol.Microsecond, nil
	case "ms":
		return lineprotocol.Millisecond, nil
	case "s":
		return lineprotocol.Second, nil
	}
	return 0, api.Errorf(api.Invalid, "invalid precision; valid precision units are ns, us, ms, and s")
}

// classify turns an InfluxDB failure into the gateway's answer: InfluxDB's own refusals of the data pass through
// (writeError); otherwise influx.Classify decides (an outage or overload is 503 with Retry-After), except that a
// missing data bucket or org is a deployment fault, not the device's 404.
func classify(err error, what string) error {
	if passedThrough[influx.StatusOf(err)] {
		return err
	}
	code := influx.Classify(err)
	if code == api.NotFound {
		code = api.Internal
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == code {
		return err
	}
	return api.Wrap(code, err, "%s", what)
}
