package setup

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// cfnEndpoint stands in for the pre-signed S3 URL CloudFormation hands out (an httptest server: S3 cannot run here).
type cfnEndpoint struct {
	*httptest.Server
	mu        sync.Mutex
	responses []response
	status    int // answered to PUTs
	puts      int
}

func newCFNEndpoint(t *testing.T) *cfnEndpoint {
	t.Helper()
	e := &cfnEndpoint{status: http.StatusOK}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.puts++
		if r.Method != http.MethodPut || r.Header.Get("Content-Type") != "" {
			t.Errorf("got %s with Content-Type %q, want PUT without one (the signature covers it)", r.Method, r.Header.Get("Content-Type"))
		}
		var resp response
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Errorf("response body is not JSON: %v: %s", err, body)
		}
		if len(body) > 4096 {
			t.Errorf("response body is %d bytes, CloudFormation takes 4096", len(body))
		}
		e.responses = append(e.responses, resp)
		w.WriteHeader(e.status)
	}))
	t.Cleanup(e.Close)
	return e
}

// only returns the single response received.
func (e *cfnEndpoint) only(t *testing.T) response {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.responses) != 1 {
		t.Fatalf("got %d responses, want 1: %+v", len(e.responses), e.responses)
	}
	r := e.responses[0]
	e.responses = nil
	return r
}

func event(e *cfnEndpoint, typ cfn.RequestType, physical string, props map[string]any) cfn.Event {
	return cfn.Event{RequestType: typ, RequestID: "req-" + influxtest.RandomID(4), ResponseURL: e.URL + "/signed?X-Amz-Signature=secret",
		ResourceType: "AWS::CloudFormation::CustomResource", LogicalResourceID: "InfluxSetup", PhysicalResourceID: physical,
		StackID: "arn:aws:cloudformation:eu-west-1:123456789012:stack/iot/1", ResourceProperties: props}
}

func loaderFor(srv *influxtest.Server, token string, o Options) Loader {
	return func(ctx context.Context, _ Target) (*influx.Client, Options, error) {
		return influx.New(srv.URL, token, srv.Org, influx.Options{}), o, nil
	}
}

func TestCustomResourceLifecycle(t *testing.T) {
	srv := influxtest.Shared(t)
	admin := srv.Client(t)
	o := testOptions(t, srv)
	ep := newCFNEndpoint(t)
	h := NewCustomResource(loaderFor(srv, srv.Token, o))
	ctx := testCtx(t, 2*time.Minute)
	props := map[string]any{"DataRetentionDays": "30", "DownsampledRetentionDays": "400", "ServiceToken": "arn:x"}

	// Create
	create := event(ep, cfn.RequestCreate, "", props)
	if err := h.Handle(ctx, create); err != nil {
		t.Fatal(err)
	}
	r := ep.only(t)
	physical := r.PhysicalResourceID
	if gen, ok := generationOf(physical); r.Status != cfn.StatusSuccess || !ok || gen == "" || r.RequestID != create.RequestID ||
		r.LogicalResourceID != "InfluxSetup" || r.StackID != create.StackID {
		t.Fatalf("create: got %+v, want SUCCESS echoing the event", r)
	}
	taskID, _ := r.Data["TaskId"].(string)
	if taskID == "" || r.Data["DataBucketId"] == "" || r.Data["DashboardId"] == "" {
		t.Errorf("create: Data %v lacks ids", r.Data)
	}

	// Update with a new retention: same physical id (no replacement), retention applied
	props["DataRetentionDays"] = "14"
	if err := h.Handle(ctx, event(ep, cfn.RequestUpdate, physical, props)); err != nil {
		t.Fatal(err)
	}
	r = ep.only(t)
	if r.Status != cfn.StatusSuccess || r.PhysicalResourceID != physical || r.Data["TaskId"] != taskID {
		t.Fatalf("update: got %+v, want SUCCESS with the same id and task", r)
	}
	if got := retentionOf(t, admin, r.Data["DataBucketId"].(string)); got != 14*86400 {
		t.Errorf("update: data retention got %ds, want %ds", got, 14*86400)
	}

	// Delete leaves the data alone
	if err := h.Handle(ctx, event(ep, cfn.RequestDelete, physical, props)); err != nil {
		t.Fatal(err)
	}
	if r = ep.only(t); r.Status != cfn.StatusSuccess {
		t.Fatalf("delete: got %+v, want SUCCESS", r)
	}
	for _, b := range []string{o.Bucket, o.BucketDownsampled} {
		if _, err := admin.BucketID(ctx, b); err != nil {
			t.Errorf("delete removed bucket %s: %v", b, err)
		}
	}
}

func TestCustomResourceFailedCreateThenDelete(t *testing.T) {
	srv := influxtest.Shared(t)
	o := testOptions(t, srv)
	ep := newCFNEndpoint(t)
	badToken := "wrong-token-" + influxtest.RandomID(8)
	h := NewCustomResource(loaderFor(srv, badToken, o))
	ctx := testCtx(t, time.Minute)

	create := event(ep, cfn.RequestCreate, "", nil)
	if err := h.Handle(ctx, create); err != nil {
		t.Fatal(err)
	}
	r := ep.only(t)
	if r.Status != cfn.StatusFailed || !strings.Contains(r.Reason, "token is not valid") {
		t.Fatalf("create: got %+v, want FAILED saying the token is not valid", r)
	}
	if strings.Contains(r.Reason, badToken) {
		t.Errorf("the reason carries the token: %q", r.Reason)
	}
	if r.PhysicalResourceID != create.RequestID {
		t.Errorf("failed create: physical id %q, want the request id %q", r.PhysicalResourceID, create.RequestID)
	}
	// CloudFormation rolls back with a Delete of that id: it must succeed, even though the config is still broken
	if err := h.Handle(ctx, event(ep, cfn.RequestDelete, create.RequestID, nil)); err != nil {
		t.Fatal(err)
	}
	if r := ep.only(t); r.Status != cfn.StatusSuccess || r.PhysicalResourceID != create.RequestID {
		t.Errorf("delete after failed create: got %+v, want SUCCESS for %s", r, create.RequestID)
	}
}

func TestCustomResourceAlwaysAnswers(t *testing.T) {
	srv := influxtest.Shared(t)
	o := testOptions(t, srv)
	tests := []struct {
		name       string
		load       Loader
		props      map[string]any
		typ        cfn.RequestType
		wantReason string
	}{
		{"config error", func(context.Context, Target) (*influx.Client, Options, error) {
			return nil, Options{}, errors.New("config: INFLUX_ORG is required")
		}, nil, cfn.RequestCreate, "INFLUX_ORG is required"},
		{"panic", func(context.Context, Target) (*influx.Client, Options, error) { panic("boom") }, nil, cfn.RequestCreate, "internal error"},
		{"bad retention", loaderFor(srv, srv.Token, o), map[string]any{"DataRetentionDays": "thirty"}, cfn.RequestUpdate, "DataRetentionDays"},
		{"zero retention", loaderFor(srv, srv.Token, o), map[string]any{"DownsampledRetentionDays": "0"}, cfn.RequestCreate, "DownsampledRetentionDays"},
		{"unknown type", loaderFor(srv, srv.Token, o), nil, cfn.RequestType("Dance"), "unknown request type"},
		{"influxdb hangs", func(ctx context.Context, _ Target) (*influx.Client, Options, error) {
			<-ctx.Done() // a dependency that never answers: the run's deadline must still leave time to answer
			return nil, Options{}, ctx.Err()
		}, nil, cfn.RequestCreate, "deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := newCFNEndpoint(t)
			h := NewCustomResource(tc.load)
			h.Reserve, h.AttemptTimeout, h.RetryPause = 500*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := h.Handle(ctx, event(ep, tc.typ, "", tc.props)); err != nil {
				t.Fatal(err)
			}
			r := ep.only(t)
			if r.Status != cfn.StatusFailed || !strings.Contains(r.Reason, tc.wantReason) {
				t.Errorf("got %s %q, want FAILED mentioning %q", r.Status, r.Reason, tc.wantReason)
			}
		})
	}
}

func TestCustomResourceDeliveryFailure(t *testing.T) {
	ep := newCFNEndpoint(t)
	ep.status = http.StatusForbidden
	h := NewCustomResource(nil)
	err := h.Handle(context.Background(), event(ep, cfn.RequestDelete, LegacyPhysicalID, nil))
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("got %v, want the 403 reported", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error carries the pre-signed URL: %v", err)
	}
	if ep.puts != maxSendAttempts {
		t.Errorf("got %d attempts, want %d", ep.puts, maxSendAttempts)
	}
}

// TestCustomResourceSlowResponseURL: a run that uses all the time it gets, then a response URL that hangs on the
// first attempts. The answer must still arrive before the invocation's deadline (Lambda kills the function there),
// even with a Reserve configured smaller than the retries take.
func TestCustomResourceSlowResponseURL(t *testing.T) {
	const attempt, pause = 300 * time.Millisecond, 100 * time.Millisecond
	var mu sync.Mutex
	var puts int
	var answeredAt time.Time
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		puts++
		n := puts
		mu.Unlock()
		_, _ = io.ReadAll(r.Body) // (the server notices a client hanging up only once the body is read)
		if n < maxSendAttempts {
			select { // hangs until the client gives up on this attempt (bounded)
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		mu.Lock()
		answeredAt = time.Now()
		mu.Unlock()
	}))
	defer ep.Close()
	h := NewCustomResource(func(ctx context.Context, _ Target) (*influx.Client, Options, error) {
		<-ctx.Done()
		return nil, Options{}, ctx.Err()
	})
	h.Reserve, h.AttemptTimeout, h.RetryPause = 50*time.Millisecond, attempt, pause
	if worst := h.WorstCaseSend(); worst != 3*attempt+pause+2*pause {
		t.Fatalf("WorstCaseSend = %s, want %s", worst, 3*attempt+3*pause)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	ev := cfn.Event{RequestType: cfn.RequestCreate, RequestID: "r1", ResponseURL: ep.URL + "/signed", StackID: "s", LogicalResourceID: "InfluxSetup"}
	if err := h.Handle(ctx, ev); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if puts != maxSendAttempts || answeredAt.IsZero() {
		t.Fatalf("got %d PUTs, answered %v; want %d with the last one answered", puts, !answeredAt.IsZero(), maxSendAttempts)
	}
	if !answeredAt.Before(deadline) {
		t.Errorf("answer delivered %s after the invocation's deadline", answeredAt.Sub(deadline))
	}
}

func TestNewCustomResourceReserveCoversTheSend(t *testing.T) {
	h := NewCustomResource(nil)
	if h.Reserve <= h.WorstCaseSend() {
		t.Errorf("Reserve %s <= worst-case send %s", h.Reserve, h.WorstCaseSend())
	}
	// the setup function's Timeout in template.yaml (120 s) leaves most of it to the run
	if h.reserve() > 60*time.Second {
		t.Errorf("reserve %s leaves too little of the 120 s invocation to the run", h.reserve())
	}
}

func TestCustomResourceRefusesPlainHTTPResponseURL(t *testing.T) {
	h := NewCustomResource(nil)
	for _, u := range []string{"http://example.com/x", "ftp://127.0.0.1/x", "", "://"} {
		if err := h.Handle(context.Background(), cfn.Event{RequestType: cfn.RequestDelete, ResponseURL: u}); err == nil {
			t.Errorf("ResponseURL %q: got nil, want an error", u)
		}
	}
}

func TestEnvLoader(t *testing.T) {
	env := map[string]string{"INFLUX_URL": "http://127.0.0.1:8086", "INFLUX_ORG": "o", "INFLUX_TOKEN": "t",
		"INFLUX_BUCKET": "d", "INFLUX_BUCKET_DOWNSAMPLED": "h"}
	c, o, err := EnvLoader(func(k string) string { return env[k] }, nil)(context.Background(), Target{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if o.Bucket != "d" || o.BucketDownsampled != "h" || c.Org() != "o" {
		t.Errorf("got %+v org %s", o, c.Org())
	}
	delete(env, "INFLUX_ORG")
	if _, _, err := EnvLoader(func(k string) string { return env[k] }, nil)(context.Background(), Target{}); err == nil {
		t.Errorf("without INFLUX_ORG: got nil, want an error")
	}
}
