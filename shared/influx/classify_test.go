package influx_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

func TestClassifyErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want api.Code
	}{
		{"nil", nil, ""},
		{"deadline", fmt.Errorf("q: %w", context.DeadlineExceeded), api.Timeout},
		{"cancelled", fmt.Errorf("q: %w", context.Canceled), api.Timeout},
		{"429", &influx.HTTPError{Status: 429}, api.Unavailable},
		{"503 wrapped", fmt.Errorf("w: %w", &influx.HTTPError{Status: 503}), api.Unavailable},
		{"502", &influx.HTTPError{Status: 502}, api.Unavailable},
		{"504", &influx.HTTPError{Status: 504}, api.Timeout},
		{"404", &influx.HTTPError{Status: 404}, api.NotFound},
		{"ErrNotFound", fmt.Errorf("bucket x: %w", influx.ErrNotFound), api.NotFound},
		{"401 token refused", &influx.HTTPError{Status: 401}, api.Internal},
		{"403", &influx.HTTPError{Status: 403}, api.Internal},
		{"400", &influx.HTTPError{Status: 400}, api.Internal},
		{"500", &influx.HTTPError{Status: 500}, api.Internal},
		{"client-go flattened 503", errors.New("unavailable: service unavailable"), api.Unavailable},
		{"status line 429", errors.New("429 Too Many Requests: slow down"), api.Unavailable},
		{"refused", fmt.Errorf("post: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), api.Unavailable},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), api.Unavailable},
		{"EOF", fmt.Errorf("post: %w", io.EOF), api.Unavailable},
		{"unexpected EOF", fmt.Errorf("body: %w", io.ErrUnexpectedEOF), api.Unavailable},
		{"net timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, api.Timeout},
		{"api error kept", api.Errorf(api.Invalid, "bad"), api.Invalid},
		{"internal api error classified by cause", api.Wrap(api.Internal, syscall.ECONNREFUSED, "x"), api.Unavailable},
		{"other", errors.New("parse"), api.Internal},
	} {
		if got := influx.Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestClassifyRealFailures classifies what the client really returns for a closed port, a server that drops the
// connection, a server that answers each status, and a server slower than the caller's deadline.
func TestClassifyRealFailures(t *testing.T) {
	// a port that was just free: nothing listens, so the dial is refused
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer drop.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// reading the body lets the server notice the client hanging up
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	status := func(code int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"code":"x","message":"status %d"}`, code)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}

	for _, tc := range []struct {
		name    string
		url     string
		timeout time.Duration
		want    api.Code
	}{
		{"connection refused", refused, 0, api.Unavailable},
		{"connection dropped", drop.URL, 0, api.Unavailable},
		{"deadline", slow.URL, 200 * time.Millisecond, api.Timeout},
		{"429", status(429), 0, api.Unavailable},
		{"503", status(503), 0, api.Unavailable},
		{"404", status(404), 0, api.NotFound},
		{"401", status(401), 0, api.Internal},
		{"403", status(403), 0, api.Internal},
		{"500", status(500), 0, api.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if tc.timeout > 0 {
				ctx, cancel = context.WithTimeout(context.Background(), tc.timeout)
			}
			defer cancel()
			c := influx.New(tc.url, "token", "org", influx.Options{})
			defer c.Close()
			err := c.QueryRows(ctx, `buckets()`, nil, func(map[string]any) error { return nil })
			if err == nil {
				t.Fatal("query succeeded, want an error")
			}
			if got := influx.Classify(err); got != tc.want {
				t.Errorf("Classify(%v) = %q, want %q", err, got, tc.want)
			}
		})
	}
}
