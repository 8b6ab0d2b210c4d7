package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
)

// LocalAPIOptions say how to run cmd/localapi.
type LocalAPIOptions struct {
	Root                              string // module root (default ModuleRoot())
	Dir                               string // folder for the binary and the state (required)
	InfluxURL, InfluxToken, InfluxOrg string
	OperatorKey, DeviceKey            string   // default: random keys
	Args                              []string // more flags (-pool, -pool-for, -parameter-overrides, ...)
	Env                               []string // more environment variables (KEY=value), after the process's
	ReadyWithin                       time.Duration
}

// LocalAPI is cmd/localapi running as a subprocess over a given InfluxDB.
type LocalAPI struct {
	URL         string
	OperatorKey string
	DeviceKey   string // the provisioning key
	State       string
	Logs        *syncbuf.Buffer // everything it and its functions printed

	proc *Proc
}

// StartLocalAPI builds cmd/localapi, starts it on a free port and waits (bounded: building every function takes a
// while on a small machine) until /api/health answers 200. The process environment is passed on without its
// INFLUX_* and IOT_* variables, which the options replace.
func StartLocalAPI(o LocalAPIOptions) (*LocalAPI, error) {
	if o.Root == "" {
		root, err := ModuleRoot()
		if err != nil {
			return nil, err
		}
		o.Root = root
	}
	if o.Dir == "" {
		return nil, errors.New("testenv: LocalAPIOptions.Dir is required")
	}
	if o.ReadyWithin == 0 {
		o.ReadyWithin = 10 * time.Minute
	}
	if o.OperatorKey == "" {
		o.OperatorKey = "op-" + RandomHex(12)
	}
	if o.DeviceKey == "" {
		o.DeviceKey = "dev-" + RandomHex(12)
	}
	bin := filepath.Join(o.Dir, "localapi")
	build := exec.Command("go", "build", "-o", bin, "./cmd/localapi")
	build.Dir = o.Root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/localapi: %v\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	a := &LocalAPI{URL: "http://127.0.0.1:" + strconv.Itoa(port), OperatorKey: o.OperatorKey, DeviceKey: o.DeviceKey,
		State: filepath.Join(o.Dir, "state"), Logs: &syncbuf.Buffer{}}
	args := append([]string{"-root", o.Root, "-state", a.State, "-addr", "127.0.0.1:" + strconv.Itoa(port)}, o.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = o.Root
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFLUX_") && !strings.HasPrefix(kv, "IOT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "INFLUX_URL="+o.InfluxURL, "INFLUX_TOKEN="+o.InfluxToken, "INFLUX_ORG="+o.InfluxOrg,
		"IOT_OPERATOR_KEY="+a.OperatorKey, "IOT_DEVICE_KEY="+a.DeviceKey)
	cmd.Env = append(cmd.Env, o.Env...)
	cmd.Stdout, cmd.Stderr = a.Logs, a.Logs
	// SIGTERM if the test binary dies: the local API then stops the emulators it started
	if a.proc, err = Start(cmd, syscall.SIGTERM); err != nil {
		return nil, err
	}
	if err := WaitHealthy(context.Background(), a.URL+"/api/health", a.proc.Done(), o.ReadyWithin); err != nil {
		a.Stop()
		return nil, fmt.Errorf("the local API: %w:\n%s", err, a.Logs.Tail(6000))
	}
	return a, nil
}

// Answer is what the local API answered: the status, the headers and at most 8 MiB of the body.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// sendClient bounds every call: a function's cold start under the emulator on a busy machine takes a while.
var sendClient = &http.Client{Timeout: 2 * time.Minute}

// Send sends method path to the local API with body (JSON, when not empty) and key as the bearer ("" sends no
// Authorization header). It returns an error rather than failing a test, so tests may send from any goroutine.
func (a *LocalAPI) Send(method, path, key, body string) (Answer, error) {
	req, err := http.NewRequest(method, a.URL+path, strings.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := sendClient.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// RefusalMark begins the log message of every DynamoDB call the local API's IAM stand-in refused
// (cmd/localapi/internal/iampolicy); web/e2e/run.sh greps the same words.
const RefusalMark = "IAM stand-in refused a DynamoDB call"

// Refused returns the log lines of the DynamoDB calls the local API refused because the calling function's
// template policy does not allow them (AWS would answer AccessDenied): a test fails on any, even one whose error
// the function survived.
func (a *LocalAPI) Refused() []string {
	var out []string
	for _, line := range strings.Split(a.Logs.String(), "\n") {
		if strings.Contains(line, RefusalMark) {
			out = append(out, line)
		}
	}
	return out
}

// Stop sends SIGTERM (what Ctrl-C does: the local API stops its emulators and influxd) and waits; the group is
// killed if it has not exited within 30 s, which Stop reports as an error.
func (a *LocalAPI) Stop() error {
	if a == nil || a.proc == nil {
		return nil
	}
	if !a.proc.Stop(syscall.SIGTERM, 30*time.Second) {
		return errors.New("the local API did not stop within 30s of SIGTERM")
	}
	return nil
}
