package influx_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// tokens creates a bucket, a token that may write it and a revoked one.
func tokens(t *testing.T) (srv *influxtest.Server, bucket, good, revoked string) {
	t.Helper()
	srv, admin, ctx := shared(t)
	bucket = "tok_" + influxtest.RandomID(4)
	id, _, err := admin.EnsureBucket(ctx, bucket, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.DeleteBucket(context.Background(), bucket) })
	a, err := admin.CreateBucketAuthorization(ctx, "token test "+bucket, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.DeleteAuthorization(context.Background(), a.ID) })
	b, err := admin.CreateBucketAuthorization(ctx, "token test revoked "+bucket, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteAuthorization(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	return srv, bucket, a.Token, b.Token
}

// source stands in for the function's SSM parameter: it counts reads and returns what the test put there.
type source struct {
	reads atomic.Int32
	token atomic.Value
	err   error
}

func (s *source) read(context.Context) (string, error) {
	s.reads.Add(1)
	if s.err != nil {
		return "", s.err
	}
	return s.token.Load().(string), nil
}

// TestTokenReadAgainOnce: a client whose token was revoked re-reads it once on the 401 and repeats the request
// (concurrent requests share that one read); a re-read bringing no usable token is not repeated before
// RefreshEvery has passed.
func TestTokenReadAgainOnce(t *testing.T) {
	srv, bucket, good, revoked := tokens(t)
	ctx := ctxT(t)
	line := []byte("environment,clientId=tok Temperature=1\n")

	t.Run("replaced token", func(t *testing.T) {
		src := &source{}
		src.token.Store(good)
		c := influx.New(srv.URL, revoked, srv.Org, influx.Options{Refresh: src.read})
		defer c.Close()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = c.WriteLines(ctx, bucket, line) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("write %d: %v, want it repeated with the new token", i, err)
			}
		}
		if err := c.QueryRows(ctx, `from(bucket: b) |> range(start: -1h) |> limit(n: 1)`, influx.Extern{"b": bucket},
			func(map[string]any) error { return nil }); err != nil {
			t.Errorf("query after the re-read: %v", err)
		}
		if got := src.reads.Load(); got != 1 {
			t.Errorf("token read %d times, want 1", got)
		}
	})

	tests := []struct {
		name  string
		token string
		err   error
	}{
		{"same revoked token", revoked, nil},
		{"parameter unreadable", "", errors.New("ParameterNotFound")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &source{err: tc.err}
			src.token.Store(tc.token)
			c := influx.New(srv.URL, revoked, srv.Org, influx.Options{Refresh: src.read})
			defer c.Close()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			influx.SetClock(c, func() time.Time { return now })
			for i, want := range []int32{1, 1, 2} {
				if i == 2 {
					now = now.Add(influx.DefaultRefreshEvery)
				}
				err := c.WriteLines(ctx, bucket, line)
				if got := influx.StatusOf(err); got != http.StatusUnauthorized {
					t.Errorf("write %d: status %d (%v), want 401", i, got, err)
				}
				if got := src.reads.Load(); got != want {
					t.Errorf("after write %d: token read %d times, want %d", i, got, want)
				}
			}
		})
	}

	t.Run("no source", func(t *testing.T) {
		c := influx.New(srv.URL, revoked, srv.Org, influx.Options{})
		defer c.Close()
		if got := influx.StatusOf(c.WriteLines(ctx, bucket, line)); got != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", got)
		}
	})
}
