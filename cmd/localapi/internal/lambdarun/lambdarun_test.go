package lambdarun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/testfn"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	echoBin string // the test-only echo bootstrap, built once
	root    string
)

func TestMain(m *testing.M) {
	root = testfn.Root()
	os.Exit(testfn.Main(m, &echoBin))
}

func echoSpec(t *testing.T, name string, size int) Spec {
	t.Helper()
	return Spec{Name: name, Bootstrap: echoBin, PoolSize: size, Timeout: 10 * time.Second,
		Env: []string{"PATH=/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME=" + name, "AWS_LAMBDA_FUNCTION_TIMEOUT=10", "ECHO_VAR=hello"}}
}

func newPool(t *testing.T, spec Spec) *Pool {
	t.Helper()
	p := NewPool(spec)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

func TestPoolNeverSendsTwoInvocationsToOneProcess(t *testing.T) {
	p := newPool(t, echoSpec(t, "Echo", 2))
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	pids := make(chan float64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := p.Invoke(ctx, []byte(`{"sleepMs":100}`))
			if err != nil {
				errs <- err
				return
			}
			if res.FunctionError != "" {
				errs <- fmt.Errorf("function error: %s", res.Payload)
				return
			}
			var out struct {
				Pid float64           `json:"pid"`
				Env map[string]string `json:"env"`
			}
			if err := json.Unmarshal(res.Payload, &out); err != nil {
				errs <- err
				return
			}
			if out.Env["ECHO_VAR"] != "hello" || out.Env["AWS_LAMBDA_FUNCTION_NAME"] != "Echo" {
				errs <- fmt.Errorf("env = %v", out.Env)
			}
			pids <- out.Pid
		}()
	}
	wg.Wait()
	close(errs)
	close(pids)
	for err := range errs {
		t.Error(err)
	}
	distinct := map[float64]bool{}
	for pid := range pids {
		distinct[pid] = true
	}
	st := p.Stats()
	if st.MaxConcurrent != 1 {
		t.Errorf("max concurrent invocations on one process = %d, want 1", st.MaxConcurrent)
	}
	if st.Starts < 1 || st.Starts > 2 {
		t.Errorf("process starts = %d, want 1..2 (pool of 2)", st.Starts)
	}
	if len(distinct) < 1 || len(distinct) > 2 {
		t.Errorf("distinct bootstrap processes = %d, want 1..2", len(distinct))
	}
}

func TestPoolFunctionErrorAndRestart(t *testing.T) {
	p := newPool(t, echoSpec(t, "Echo", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := p.Invoke(ctx, []byte(`{"fail":"went wrong"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "Unhandled" || !bytes.Contains(res.Payload, []byte("went wrong")) {
		t.Fatalf("got %q %s, want Unhandled with the error message", res.FunctionError, res.Payload)
	}
	// The process survives a function error.
	if _, err := p.Invoke(ctx, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().Starts; got != 1 {
		t.Fatalf("starts after a function error = %d, want 1", got)
	}
	// Kill the bootstrap behind the pool's back: the next invocation restarts it.
	in := p.all[0]
	if err := in.proc.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.proc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the bootstrap did not die")
	}
	res, err = p.Invoke(ctx, []byte(`{}`))
	if err != nil || res.FunctionError != "" {
		t.Fatalf("after crash: %v %s", err, res.Payload)
	}
	if got := p.Stats().Starts; got != 2 {
		t.Errorf("starts after a crash = %d, want 2", got)
	}
}

func TestPoolUnbuiltFunction(t *testing.T) {
	p := NewPool(Spec{Name: "Broken", BuildErr: errors.New("compile error")})
	_, err := p.Invoke(context.Background(), []byte(`{}`))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "compile error") {
		t.Errorf("err = %v, want ErrUnavailable naming the build error", err)
	}
}

func TestIsErrorPayload(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"errorMessage":"x","errorType":"y"}`, true},
		{`{"errorMessage":"x"}`, true},
		{`{"statusCode":200,"body":"{}"}`, false},
		{`{"statusCode":500,"errorMessage":"x"}`, false},
		{`"just a string"`, false},
		{`not json`, false},
	} {
		if got := IsErrorPayload([]byte(tc.body)); got != tc.want {
			t.Errorf("IsErrorPayload(%s) = %v, want %v", tc.body, got, tc.want)
		}
	}
}

func TestBuildReportsFailuresSeparately(t *testing.T) {
	dir := t.TempDir()
	mk := "build-Good:\n\tmkdir -p $(ARTIFACTS_DIR) && echo $(LAMBDA_GOARCH) > $(ARTIFACTS_DIR)/bootstrap\n" +
		"build-Bad:\n\t@echo 'functions/bad: undefined: foo' && exit 1\n" +
		"build-Empty:\n\t@true\n"
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	res := Build(context.Background(), dir, filepath.Join(dir, "out"), "amd64", []string{"Good", "Bad", "Empty"}, 2)
	if r := res["Good"]; r.Err != nil || r.Bootstrap != filepath.Join(dir, "out", "Good", "bootstrap") {
		t.Errorf("Good = %+v", r)
	} else if b, _ := os.ReadFile(r.Bootstrap); string(b) != "amd64\n" {
		t.Errorf("LAMBDA_GOARCH passed = %q, want amd64", b)
	}
	if r := res["Bad"]; r.Err == nil || !strings.Contains(r.Output, "undefined: foo") || r.Bootstrap != "" {
		t.Errorf("Bad = %+v, want an error with make's output", r)
	}
	if r := res["Empty"]; r.Err == nil {
		t.Errorf("Empty = %+v, want an error (no bootstrap written)", r)
	}
}

func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := NewPrefixWriter(&out, &mu, "Fn")
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\n"))
	if got, want := out.String(), "[Fn] one\n[Fn] two\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestPoolTimeout: the runner enforces the function's timeout; the overrun is a function error, the process is
// replaced and the pool keeps serving.
func TestPoolTimeout(t *testing.T) {
	spec := echoSpec(t, "Slow", 1)
	spec.Timeout = time.Second
	spec.Env = []string{"PATH=/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME=Slow", "AWS_LAMBDA_FUNCTION_TIMEOUT=1"}
	p := newPool(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.Invoke(ctx, []byte(`{"sleepMs":3000}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "Unhandled" || !IsErrorPayload(res.Payload) || !bytes.Contains(res.Payload, []byte("Sandbox.Timedout")) {
		t.Fatalf("overrun = %q %s, want a Sandbox.Timedout function error", res.FunctionError, res.Payload)
	}
	res, err = p.Invoke(ctx, []byte(`{}`))
	if err != nil || res.FunctionError != "" {
		t.Fatalf("after a timeout: %v %q %s", err, res.FunctionError, res.Payload)
	}
}
