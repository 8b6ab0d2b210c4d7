package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// RetryPolicy bounds how a write retries: 429/503 wait for Retry-After (capped), other transient failures back off
// exponentially; after MaxAttempts the last error is returned.
type RetryPolicy struct {
	MaxAttempts   int
	BaseDelay     time.Duration
	MaxDelay      time.Duration
	MaxRetryAfter time.Duration
}

// DefaultRetry fits a Lambda invocation of a couple of minutes.
var DefaultRetry = RetryPolicy{MaxAttempts: 8, BaseDelay: 200 * time.Millisecond, MaxDelay: 10 * time.Second, MaxRetryAfter: 30 * time.Second}

// delay returns the wait before attempt n+1 after err.
func (p RetryPolicy) delay(n int, err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) && he.RetryAfter > 0 {
		return min(he.RetryAfter, p.MaxRetryAfter)
	}
	d := p.BaseDelay << n
	if d <= 0 || d > p.MaxDelay {
		d = p.MaxDelay
	}
	return d
}

// retryable says whether a failed write may succeed if sent again unchanged.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status == http.StatusTooManyRequests || he.Status >= 500
	}
	return true // connection refused/reset: the server may be restarting
}

var gzPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }}

// Gzip compresses line protocol for WriteGzip.
func Gzip(lp []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(lp) / 4)
	zw := gzPool.Get().(*gzip.Writer)
	zw.Reset(&buf)
	_, _ = zw.Write(lp)
	_ = zw.Close()
	gzPool.Put(zw)
	return buf.Bytes()
}

// WriteLines writes line protocol (nanosecond precision) to bucket, gzip-compressed, retrying per c.Retry.
// Line protocol writes are idempotent (same series and time overwrite), so a retry never duplicates points.
func (c *Client) WriteLines(ctx context.Context, bucket string, lp []byte) error {
	return c.WriteGzip(ctx, bucket, Gzip(lp))
}

// WriteGzip writes an already gzip-compressed line-protocol body.
func (c *Client) WriteGzip(ctx context.Context, bucket string, gz []byte) error {
	return c.write(ctx, bucket, "gzip", gz)
}

// WritePlain writes line protocol (nanosecond precision) uncompressed: for a caller whose CPU is scarcer than the
// network between it and InfluxDB (the write gateway: compressing a 1 MB batch costs a small Lambda more than
// sending it).
func (c *Client) WritePlain(ctx context.Context, bucket string, lp []byte) error {
	return c.write(ctx, bucket, "", lp)
}

func (c *Client) write(ctx context.Context, bucket, encoding string, body []byte) error {
	u := c.url + "/api/v2/write?" + url.Values{"org": {c.org}, "bucket": {bucket}, "precision": {"ns"}}.Encode()
	var err error
	for n := 0; n < max(1, c.Retry.MaxAttempts); n++ {
		if n > 0 {
			t := time.NewTimer(c.Retry.delay(n-1, err))
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("influx: write to %s: %w (last error: %v)", bucket, ctx.Err(), err)
			case <-t.C:
			}
		}
		err = c.post(ctx, u, "text/plain; charset=utf-8", encoding, body)
		if err == nil || !retryable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("influx: write to %s: %w", bucket, err)
	}
	return nil
}

// post sends one request and turns a non-2xx answer into *HTTPError.
func (c *Client) post(ctx context.Context, u, contentType, encoding string, body []byte) error {
	resp, err := c.do(ctx, http.MethodPost, u, contentType, encoding, body)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// do sends one request; non-2xx answers are returned as *HTTPError with the body read and closed.
func (c *Client) do(ctx context.Context, method, u, contentType, encoding string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, scrub(err, u)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	he := &HTTPError{Status: resp.StatusCode, Message: string(msg)}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			he.RetryAfter = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			he.RetryAfter = time.Until(t)
		}
	}
	return nil, he
}

// scrub keeps a transport error's meaning but drops the full request URL (its query string) from the text.
func scrub(err error, u string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, hostOf(u), ue.Err)
	}
	return err
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "influxdb"
	}
	return p.Scheme + "://" + p.Host + p.Path
}
