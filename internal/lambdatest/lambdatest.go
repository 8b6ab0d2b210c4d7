// Package lambdatest runs a function's real bootstrap under the AWS Lambda Runtime Interface Emulator for tests:
// one emulator is one Lambda instance (its own process, cold start, clients and caches).
package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
)

// Emulator is one running emulator with its bootstrap.
type Emulator struct {
	Addr string          // host:port of the emulator's invoke endpoint
	Logs *syncbuf.Buffer // the emulator's and the function's output
}

// RIE returns the emulator binary (devstack.RIE: $RIE_BIN, bin/aws-lambda-rie, the go.mod tool).
func RIE(t testing.TB) string {
	t.Helper()
	root, err := devstack.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	rie, err := devstack.RIE(root, os.Getenv)
	if err != nil {
		t.Fatalf("the Lambda emulator is missing (run `make tools` or set RIE_BIN): %v", err)
	}
	return rie
}

// Build compiles the main package in dir (as the Makefile does, for the host) into a temporary bootstrap.
func Build(t testing.TB, dir string) string {
	t.Helper()
	boot := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", boot, dir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, b)
	}
	return boot
}

// Start runs bootstrap in a new emulator with exactly env (plus PATH), stopped at the end of the test (its process
// group, so the bootstrap too); its output is logged if the test failed.
func Start(t testing.TB, bootstrap string, env []string) *Emulator {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e := &Emulator{Addr: "127.0.0.1:" + strconv.Itoa(port), Logs: &syncbuf.Buffer{}}
	cmd := exec.Command(RIE(t), "--runtime-interface-emulator-address", e.Addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(rt), bootstrap)
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = e.Logs, e.Logs
	p, err := devstack.Start(cmd, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(syscall.SIGKILL, 10*time.Second)
		if t.Failed() {
			t.Logf("emulator %s output:\n%.4000s", e.Addr, e.Logs.String())
		}
	})
	if err := devstack.WaitListen(context.Background(), e.Addr, p.Done(), 10*time.Second); err != nil {
		t.Fatalf("emulator for %s: %v", bootstrap, err)
	}
	return e
}

// Invoke sends one event (marshalled to JSON) and returns the function's raw answer; transport failures are
// reported with t.Errorf and answered as nil, so concurrent callers may use it from goroutines.
func (e *Emulator) Invoke(t testing.TB, event any) []byte {
	t.Helper()
	b, err := json.Marshal(event)
	if err != nil {
		t.Errorf("marshalling the event: %v", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+e.Addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("invoking %s: %v", e.Addr, err)
		return nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return out
}

// WaitLogs waits (at most timeout) until ok accepts the output so far, and returns it. The function's output
// reaches the emulator through a pipe, so it can trail the invocation's answer by a moment.
func (e *Emulator) WaitLogs(timeout time.Duration, ok func(logs string) bool) string {
	deadline := time.Now().Add(timeout)
	for {
		logs := e.Logs.String()
		if ok(logs) || time.Now().After(deadline) {
			return logs
		}
		time.Sleep(20 * time.Millisecond)
	}
}
