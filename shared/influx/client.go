// Package influx is the project's one way to InfluxDB 2.x: a client built once per cold start, cached org and
// bucket ids, bucket-scoped authorizations, gzip line-protocol writes with retry, Flux queries whose caller values
// arrive only through the query API's extern field, and deletes.
package influx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/domain"
)

// Client wraps influxdb-client-go for the rest of the code. It is safe for concurrent use; build one per process.
type Client struct {
	c     influxdb2.Client
	http  *http.Client
	url   string
	auth  *tokenTransport
	org   string
	Retry RetryPolicy

	mu      sync.Mutex
	orgID   string
	buckets map[string]string // name -> id
}

// Options tune a Client; the zero value is sensible.
type Options struct {
	HTTPTimeout time.Duration // per request; default 60s (queries are bounded by the ctx deadline anyway)
	Retry       RetryPolicy
	// Refresh, when set, re-reads the token after InfluxDB answers 401 (at most once per RefreshEvery, default
	// DefaultRefreshEvery), and the request is sent once more with a changed token.
	Refresh      TokenSource
	RefreshEvery time.Duration
}

// New builds a Client. token is the function's token; it is only ever sent in the Authorization header.
func New(url, token, org string, opts Options) *Client {
	if opts.HTTPTimeout == 0 {
		opts.HTTPTimeout = 60 * time.Second
	}
	if opts.Retry == (RetryPolicy{}) {
		opts.Retry = DefaultRetry
	}
	url = strings.TrimRight(url, "/")
	// every request, influxdb-client-go's included, goes through auth, which sets the current token
	auth := newTokenTransport(&http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}, token, opts.Refresh, opts.RefreshEvery)
	hc := &http.Client{Timeout: opts.HTTPTimeout, Transport: auth}
	c := influxdb2.NewClientWithOptions(url, token, influxdb2.DefaultOptions().SetHTTPClient(hc))
	return &Client{c: c, http: hc, url: url, auth: auth, org: org, Retry: opts.Retry, buckets: map[string]string{}}
}

// Close releases idle connections.
func (c *Client) Close() { c.c.Close() }

// URL is the server URL the client talks to.
func (c *Client) URL() string { return c.url }

// Org is the organization name.
func (c *Client) Org() string { return c.org }

// Raw exposes the underlying influxdb-client-go client for the few APIs this package does not wrap (tasks,
// dashboards in the setup function).
func (c *Client) Raw() influxdb2.Client { return c.c }

// OrgID looks the organization id up once and caches it.
func (c *Client) OrgID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.orgID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	org, err := c.c.OrganizationsAPI().FindOrganizationByName(ctx, c.org)
	if err != nil {
		return "", fmt.Errorf("influx: finding organization %q: %w", c.org, err)
	}
	c.mu.Lock()
	c.orgID = *org.Id
	c.mu.Unlock()
	return *org.Id, nil
}

// BucketID looks a bucket id up by name once and caches it. A missing bucket is ErrNotFound.
func (c *Client) BucketID(ctx context.Context, name string) (string, error) {
	c.mu.Lock()
	id, ok := c.buckets[name]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	b, err := c.findBucket(ctx, name)
	if err != nil {
		return "", err
	}
	c.cacheBucket(name, *b.Id)
	return *b.Id, nil
}

// findBucket lists the org's buckets by name: an empty list is an unambiguous "not found" (ErrNotFound).
func (c *Client) findBucket(ctx context.Context, name string) (domain.Bucket, error) {
	orgID, err := c.OrgID(ctx)
	if err != nil {
		return domain.Bucket{}, err
	}
	res, err := c.c.APIClient().GetBuckets(ctx, &domain.GetBucketsParams{Name: &name, OrgID: &orgID})
	if err != nil && StatusOf(err) != http.StatusNotFound {
		return domain.Bucket{}, fmt.Errorf("influx: finding bucket %q: %w", name, err)
	}
	if err != nil || res.Buckets == nil || len(*res.Buckets) == 0 || (*res.Buckets)[0].Id == nil {
		return domain.Bucket{}, fmt.Errorf("influx: bucket %q: %w", name, ErrNotFound)
	}
	return (*res.Buckets)[0], nil
}

func (c *Client) cacheBucket(name, id string) {
	c.mu.Lock()
	c.buckets[name] = id
	c.mu.Unlock()
}

// Health reports the server's health: its version when it is up.
func (c *Client) Health(ctx context.Context) (status, version string, err error) {
	h, err := c.c.Health(ctx)
	if err != nil {
		return "", "", fmt.Errorf("influx: health: %w", err)
	}
	if h.Version != nil {
		version = *h.Version
	}
	return string(h.Status), version, nil
}

// ErrNotFound is returned (wrapped) when a bucket, authorization or record does not exist.
var ErrNotFound = errors.New("not found")

// HTTPError is a non-2xx answer from InfluxDB to a request this package made itself.
type HTTPError struct {
	Status     int
	Message    string // InfluxDB's message: logged, never answered to callers
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("influxdb answered %d: %s", e.Status, e.Message)
}

// StatusOf returns the HTTP status InfluxDB answered in err, or 0.
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	var ce *ihttp.Error
	if errors.As(err, &ce) {
		return ce.StatusCode
	}
	// influxdb-client-go's generated API client flattens server errors into "<code>: <message>" strings (or
	// "<status line>: <body>" for non-JSON answers), dropping the status; recover it from the innermost error.
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
	}
	msg := err.Error()
	if code, _, ok := strings.Cut(msg, ": "); ok {
		if s, ok := statusOfCode[domain.ErrorCode(code)]; ok {
			return s
		}
	}
	if len(msg) >= 4 && msg[3] == ' ' {
		if s, err := strconv.Atoi(msg[:3]); err == nil && s >= 100 && s < 600 {
			return s
		}
	}
	return 0
}

var statusOfCode = map[domain.ErrorCode]int{
	domain.ErrorCodeNotFound:            http.StatusNotFound,
	domain.ErrorCodeConflict:            http.StatusConflict,
	domain.ErrorCodeUnauthorized:        http.StatusUnauthorized,
	domain.ErrorCodeForbidden:           http.StatusForbidden,
	domain.ErrorCodeTooManyRequests:     http.StatusTooManyRequests,
	domain.ErrorCodeUnavailable:         http.StatusServiceUnavailable,
	domain.ErrorCodeInvalid:             http.StatusBadRequest,
	domain.ErrorCodeEmptyValue:          http.StatusBadRequest,
	domain.ErrorCodeUnprocessableEntity: http.StatusUnprocessableEntity,
	domain.ErrorCodeRequestTooLarge:     http.StatusRequestEntityTooLarge,
	domain.ErrorCodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	domain.ErrorCodeInternalError:       http.StatusInternalServerError,
}
