package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/lambdarun"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/testfn"
)

var echoBin string

func TestMain(m *testing.M) { os.Exit(testfn.Main(m, &echoBin)) }

// testTemplate exercises what the local API reads: an HTTP API with a default Lambda authorizer, public routes,
// a greedy path, an async target with EventInvokeConfig, and a function whose build "failed".
const testTemplate = `
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 10
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Keys
        Authorizers:
          Keys:
            FunctionArn: !GetAtt AuthFunction.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity:
              ReauthorizeEvery: 0
  AuthFunction:
    Type: AWS::Serverless::Function
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Private:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /private/{id}
        Public:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: ANY
            Path: /public/{id}
            Auth: {Authorizer: NONE}
        Fail:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /fail
            Auth: {Authorizer: NONE}
        Panic:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /panic
            Auth: {Authorizer: NONE}
        Binary:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /binary
            Auth: {Authorizer: NONE}
        Plain:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /plain
            Auth: {Authorizer: NONE}
        Assets:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /assets/{proxy+}
            Auth: {Authorizer: NONE}
  GuardedFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Guarded:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /guarded
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      EventInvokeConfig:
        MaximumRetryAttempts: 2
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt Dlq.Arn
  Dlq:
    Type: AWS::SQS::Queue
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Broken:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /broken
            Auth: {Authorizer: NONE}
`

// testCreds are the credentials the fixture's gateway checks Invoke signatures with.
var testCreds = aws.Credentials{AccessKeyID: "ASIATEST", SecretAccessKey: "test-secret", SessionToken: "test-session"}

type fixture struct {
	url    string
	runner *lambdarun.Runner
	dlq    string
	logs   *lockedWriter
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	tpl, err := samtpl.Parse([]byte(testTemplate), nil)
	if err != nil {
		t.Fatal(err)
	}
	var specs []lambdarun.Spec
	for _, id := range tpl.IDs() {
		s := lambdarun.Spec{Name: id, Bootstrap: echoBin, PoolSize: 2, Timeout: 10 * time.Second,
			Env: []string{"PATH=/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME=" + id, "AWS_LAMBDA_FUNCTION_TIMEOUT=10"}}
		if id == "BrokenFunction" {
			s.Bootstrap, s.BuildErr = "", errors.New("make build-BrokenFunction: exit status 2")
		}
		specs = append(specs, s)
	}
	runner := lambdarun.NewRunner(specs)
	f := &fixture{runner: runner, dlq: filepath.Join(t.TempDir(), "dead-letter"), logs: &lockedWriter{w: &bytes.Buffer{}}}
	cfg := Config{Routes: tpl.Routes, Functions: tpl.Functions, Invoker: runner, DeadLetterDir: f.dlq,
		RetryDelay: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Credentials: testCreds}
	if mod != nil {
		mod(&cfg)
	}
	g := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	srv := httptest.NewServer(g)
	f.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		cancel()
		g.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		runner.Close(cctx)
	})
	return f
}

// lockedWriter serialises log writes from the gateway's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func do(t *testing.T, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if strings.Contains(url, "/2015-03-31/") {
		signRequest(t, req, testCreds, time.Now())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestGatewayHTTP(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		status             int
		wantBody           string // substring
	}{
		{"unknown path", "GET", "/nope", nil, "", 404, `{"message":"Not Found"}`},
		{"undeclared method", "DELETE", "/private/x", nil, "", 404, `{"message":"Not Found"}`},
		{"function error", "GET", "/fail", nil, "", 500, `{"message":"Internal Server Error"}`},
		{"function panic", "GET", "/panic", nil, "", 500, `{"message":"Internal Server Error"}`},
		{"build failed", "GET", "/broken", nil, "", 502, `BrokenFunction is unavailable`},
		{"plain JSON reply", "GET", "/plain", nil, "", 200, `{"hello":"world"}`},
		{"status from function", "GET", "/public/x?status=418", nil, "", 418, `"routeKey":"ANY /public/{id}"`},
		{"no key", "GET", "/private/x", nil, "", 403, `{"message":"Forbidden"}`},
		{"wrong key", "GET", "/private/x", map[string]string{"Authorization": "Bearer bad"}, "", 403, `{"message":"Forbidden"}`},
		{"authorizer error", "GET", "/private/x", map[string]string{"Authorization": "Bearer boom"}, "", 500, `{"message":"Internal Server Error"}`},
		{"authorized", "GET", "/private/x", map[string]string{"Authorization": "Bearer good"}, "", 200, `"lambda":{"role":"operator"}`},
		{"greedy", "GET", "/assets/css/site.css", nil, "", 200, `"pathParameters":{"proxy":"css/site.css"}`},
		{"binary request body", "POST", "/public/b", map[string]string{"Content-Type": "application/octet-stream"}, "\x00\x01", 200, `"body":"AAE=","isBase64Encoded":true`},
		{"text request body", "PUT", "/public/t", map[string]string{"Content-Type": "application/json"}, `{"k":"v"}`, 200, `"body":"{\"k\":\"v\"}","isBase64Encoded":false`},
		{"encoded text body", "POST", "/public/g", map[string]string{"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}, "hi", 200, `"body":"aGk=","isBase64Encoded":true`},
		// 4.8 MB of bytes is 6.4 MB in base64: more than Lambda accepts as an event
		{"event over 6 MB", "POST", "/public/b", map[string]string{"Content-Type": "application/octet-stream"}, strings.Repeat("\x00", 4_800_000), 413, `{"message":"Request Entity Too Large"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, f.url+tc.path, strings.NewReader(tc.body), tc.hdr)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("%s %s = %d %.300s, want %d containing %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type = %q, want JSON", ct)
			}
		})
	}
	// A refused request never reaches the route's function.
	if st := f.runner.Pool("GuardedFunction").Stats(); st.Starts != 0 {
		t.Fatalf("GuardedFunction started before the test: %+v", st)
	}
	resp, _ := do(t, "GET", f.url+"/guarded", nil, nil)
	if resp.StatusCode != 403 {
		t.Errorf("GET /guarded without a key = %d, want 403", resp.StatusCode)
	}
	if st := f.runner.Pool("GuardedFunction").Stats(); st.Starts != 0 {
		t.Errorf("GuardedFunction ran for a refused request: %+v", st)
	}

	resp, body := do(t, "GET", f.url+"/binary", nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, []byte{0, 1, 2, 255}) {
		t.Errorf("GET /binary = %d %v, want 200 [0 1 2 255]", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", f.url+"/public/h", nil, nil)
	if resp.Header.Get("X-Echo") != "yes" || len(resp.Header.Values("X-Multi")) != 2 || resp.Header.Get("Set-Cookie") != "c1=v1; Path=/" {
		t.Errorf("response headers = %v", resp.Header)
	}
}

func TestInvokeAPIWithSDK(t *testing.T) {
	f := newFixture(t, nil)
	client := awslambda.New(awslambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.url),
		Credentials:  credentials.NewStaticCredentialsProvider(testCreds.AccessKeyID, testCreds.SecretAccessKey, testCreds.SessionToken),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("WorkerFunction"), Payload: []byte(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || out.FunctionError != nil || !bytes.Contains(out.Payload, []byte(`"AWS_LAMBDA_FUNCTION_NAME":"WorkerFunction"`)) {
		t.Errorf("sync invoke = %d %v %s", out.StatusCode, out.FunctionError, out.Payload)
	}
	out, err = client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(samtpl.FunctionARN("WorkerFunction")), Payload: []byte(`{"fail":"nope"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || !bytes.Contains(out.Payload, []byte("nope")) {
		t.Errorf("failing sync invoke: FunctionError %q payload %s, want Unhandled", aws.ToString(out.FunctionError), out.Payload)
	}
	_, err = client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("NoSuchFunction"), Payload: []byte(`{}`)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("unknown function: err = %v, want ResourceNotFoundException", err)
	}

	// Event: 202 at once; a success runs once; a failure runs 1 + 2 retries, then lands in the dead-letter folder.
	dir := t.TempDir()
	okRec, failRec := filepath.Join(dir, "ok"), filepath.Join(dir, "fail")
	for _, p := range []string{fmt.Sprintf(`{"record":%q}`, okRec), fmt.Sprintf(`{"record":%q,"fail":"always"}`, failRec)} {
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("WorkerFunction"),
			InvocationType: types.InvocationTypeEvent, Payload: []byte(p)})
		if err != nil || out.StatusCode != 202 {
			t.Fatalf("event invoke = %v %v, want 202", out, err)
		}
	}
	var files []string
	for i := 0; i < 200 && len(files) == 0; i++ { // bounded: 200 x 50ms
		time.Sleep(50 * time.Millisecond)
		files, _ = filepath.Glob(filepath.Join(f.dlq, "WorkerFunction-*.json"))
	}
	if len(files) != 1 {
		t.Fatalf("dead-letter files = %v, want 1", files)
	}
	if n := lines(t, failRec); n != 3 {
		t.Errorf("failing event ran %d times, want 3 (1 + MaximumRetryAttempts 2)", n)
	}
	if n := lines(t, okRec); n != 1 {
		t.Errorf("succeeding event ran %d times, want 1", n)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec DeadLetterRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RequestContext.Condition != "RetriesExhausted" || rec.RequestContext.ApproximateInvokeCount != 3 ||
		rec.ResponseContext.FunctionError != "Unhandled" || !bytes.Contains(compact(rec.RequestPayload), []byte(`"fail":"always"`)) ||
		!bytes.Contains(rec.ResponsePayload, []byte("always")) || !strings.HasSuffix(rec.RequestContext.FunctionArn, ":function:WorkerFunction:$LATEST") {
		t.Errorf("dead-letter record = %s", b)
	}
	if st, _ := os.Stat(files[0]); st.Mode().Perm() != 0o600 {
		t.Errorf("dead-letter file mode = %v, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(f.logs.String(), "dead-lettered") {
		t.Errorf("no log line for the dead-lettered event in:\n%s", f.logs.String())
	}
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	_ = json.Compact(&out, b)
	return out.Bytes()
}

func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

func TestAsyncQueueIsBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AsyncWorkers, c.AsyncQueue, c.EnqueueWait = 1, 1, 50*time.Millisecond })
	post := func() int {
		resp, _ := do(t, "POST", f.url+"/2015-03-31/functions/WorkerFunction/invocations", strings.NewReader(`{"sleepMs":1500}`),
			map[string]string{"X-Amz-Invocation-Type": "Event"})
		return resp.StatusCode
	}
	// One running, one queued; the third finds the queue full.
	got := []int{post()}
	time.Sleep(300 * time.Millisecond) // let the worker take the first event
	got = append(got, post(), post())
	if got[0] != 202 || got[1] != 202 || got[2] != 429 {
		t.Errorf("statuses = %v, want [202 202 429]", got)
	}
}

func TestInvokeAPIRejects(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, path, typ, body string
		status                int
		code                  string
	}{
		{"bad JSON", "/2015-03-31/functions/WorkerFunction/invocations", "", "{", 400, "InvalidRequestContentException"},
		{"bad type", "/2015-03-31/functions/WorkerFunction/invocations", "Sometimes", "{}", 400, "InvalidParameterValueException"},
		{"too large event", "/2015-03-31/functions/WorkerFunction/invocations", "Event", `"` + strings.Repeat("x", MaxAsyncPayload) + `"`, 413, "RequestEntityTooLargeException"},
		{"dry run", "/2015-03-31/functions/WorkerFunction/invocations", "DryRun", "{}", 204, ""},
		{"unknown operation", "/2015-03-31/functions/WorkerFunction/configuration", "", "{}", 404, "UnknownOperationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, "POST", f.url+tc.path, strings.NewReader(tc.body), map[string]string{"X-Amz-Invocation-Type": tc.typ})
			if resp.StatusCode != tc.status || resp.Header.Get("X-Amzn-ErrorType") != tc.code {
				t.Errorf("= %d %s %s, want %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body, tc.status, tc.code)
			}
		})
	}
}

// signRequest signs req as the SDK's Lambda client does (SigV4, service lambda).
func signRequest(t *testing.T, req *http.Request, creds aws.Credentials, at time.Time) {
	t.Helper()
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
}

// TestInvokeAPIRefusesUnsignedCalls: only a call signed with the runner's credentials reaches a function.
func TestInvokeAPIRefusesUnsignedCalls(t *testing.T) {
	f := newFixture(t, nil)
	const path = "/2015-03-31/functions/WorkerFunction/invocations"
	send := func(sign func(*http.Request), host string) int {
		req, _ := http.NewRequest("POST", f.url+path, strings.NewReader(`{"x":1}`))
		if host != "" {
			req.Host = host
		}
		if sign != nil {
			sign(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	other := testCreds
	other.SecretAccessKey = "guessed"
	noSession := testCreds
	noSession.SessionToken = ""
	for _, tc := range []struct {
		name string
		sign func(*http.Request)
		host string
		want int
	}{
		{"signed", func(r *http.Request) { signRequest(t, r, testCreds, time.Now()) }, "", 200},
		{"unsigned", nil, "", 403},
		{"wrong secret", func(r *http.Request) { signRequest(t, r, other, time.Now()) }, "", 403},
		{"without the session token", func(r *http.Request) { signRequest(t, r, noSession, time.Now()) }, "", 403},
		{"stale signature", func(r *http.Request) { signRequest(t, r, testCreds, time.Now().Add(-10*time.Minute)) }, "", 403},
		{"body changed after signing", func(r *http.Request) {
			signRequest(t, r, testCreds, time.Now())
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(`{"x":2}`)), 7
		}, "", 403},
		{"signed, foreign Host", func(r *http.Request) { signRequest(t, r, testCreds, time.Now()) }, "evil.example.com", 403},
		{"signed, localhost", func(r *http.Request) { signRequest(t, r, testCreds, time.Now()) }, "localhost", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := send(tc.sign, tc.host); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestHostCheck: the HTTP API answers loopback names (and the allowed extra ones) only: DNS rebinding.
func TestHostCheck(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowHosts = []string{"iot.test"} })
	for _, tc := range []struct {
		host string
		want int
	}{
		{"", 200}, {"localhost:3000", 200}, {"[::1]:3000", 200}, {"127.0.0.1", 200}, {"IoT.Test:80", 200},
		{"attacker.example:3000", 403}, {"127.0.0.1.nip.io", 403}, {"10.0.0.1:3000", 403},
	} {
		req, _ := http.NewRequest("GET", f.url+"/public/x", nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %q: got %d, want %d", tc.host, resp.StatusCode, tc.want)
		}
	}
}
